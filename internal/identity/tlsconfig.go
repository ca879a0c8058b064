package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"reflect"
	"time"
)

// sessionCacheSize is how many peers' sessions a client config remembers:
// an agent talks to one broker and at most a few dozen hosts.
const sessionCacheSize = 256

// ServerConfig is the TLS 1.3 config for accepting farm connections as id:
// the peer must present a certificate from the farm CA (Go verifies the
// chain), then accept is called with who it is, on full handshakes and on
// resumed ones alike (VerifyConnection runs for both), and refuses the
// connection by returning an error. accept is where the caller checks the
// role and revocation (see Accept). Session tickets are on, so a returning
// peer costs no signature; reuse one config for all connections, since the
// ticket keys live in it.
func ServerConfig(id *Identity, accept func(p Peer) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.CA,
		VerifyConnection: func(cs tls.ConnectionState) error {
			p, err := PeerOf(cs)
			if err != nil {
				return err
			}
			if accept != nil {
				return accept(p)
			}
			return nil
		},
	}
}

// ClientConfig is the TLS 1.3 config for dialling a farm peer as id. Peers
// are addressed by IP or host:port, not by a DNS name in their
// certificate, so the config verifies the server's chain against the farm
// CA itself, without a host name check, and expect decides whether the
// peer is the one wanted (see Expect: the broker, or the host named in a
// grant). That check runs on resumed sessions too. Our certificate is sent
// whatever CAs the server names, so a server of another farm reports an
// unknown CA instead of a missing certificate. The config carries a
// session cache keyed by address: reuse it (or Clone it, which shares the
// cache) for every connection.
func ClientConfig(id *Identity, expect func(p Peer) error) *tls.Config {
	cert := id.Cert
	roots, caCert := id.CA, id.CACert
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		// The chain is verified in VerifyConnection below; only the host
		// name check is skipped.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyPeerChain(cs, roots, caCert, time.Now()); err != nil {
				return err
			}
			p, err := PeerOf(cs)
			if err != nil {
				return err
			}
			if expect != nil {
				return expect(p)
			}
			return nil
		},
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
	}
}

// verifyPeerChain checks that the server's certificate was issued by the
// farm CA, is valid now and is for server use. It runs on resumed sessions
// too: the session's certificates are the ones verified when it began, and
// checking them again costs one signature check, while it keeps the rule
// "no expired certificate is ever accepted" free of reasoning about caches.
func verifyPeerChain(cs tls.ConnectionState, roots *x509.CertPool, ca *x509.Certificate, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return describeVerifyError(leaf, ca.Subject.CommonName, err)
	}
	return nil
}

// PeerOf says who the peer of a verified connection is, from its leaf
// certificate's dcc:// URI. It does not verify the chain: call it on the
// state of a connection made with ServerConfig or ClientConfig.
func PeerOf(cs tls.ConnectionState) (Peer, error) {
	if len(cs.PeerCertificates) == 0 {
		return Peer{}, errors.New("the peer sent no certificate")
	}
	return peerOfCert(cs.PeerCertificates[0])
}

// Expect returns an expect function for ClientConfig accepting a peer that
// may act as role and, if name is not empty, is called name.
func Expect(role, name string) func(Peer) error {
	return func(p Peer) error {
		if !p.ActsAs(role) {
			return fmt.Errorf("the peer is %s %s, not a %s", p.Role, p.Name, role)
		}
		if name != "" && p.Name != name {
			return fmt.Errorf("the peer is %s %s, not %s %s", p.Role, p.Name, role, name)
		}
		return nil
	}
}

// Accept returns an accept function for ServerConfig refusing a revoked
// credential (rev may be nil) and one that may act as none of roles (no
// roles: any role).
func Accept(rev *Revocations, roles ...string) func(Peer) error {
	return func(p Peer) error {
		if rev.Revoked(p.Serial) {
			return fmt.Errorf("%w: %s %s (serial %s)", ErrRevoked, p.Role, p.Name, p.Serial.Text(16))
		}
		if len(roles) > 0 && !anyRole(p.Role, roles) {
			return fmt.Errorf("%s %s may not connect here (want %v)", p.Role, p.Name, roles)
		}
		return nil
	}
}

// describeVerifyError turns an x509 verification failure into one line
// naming the certificate's holder and what is wrong with it; ourCA is this
// farm's CA common name, if known.
func describeVerifyError(leaf *x509.Certificate, ourCA string, err error) error {
	who := certLabel(leaf)
	var ua x509.UnknownAuthorityError
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua) && ourCA != "":
		return fmt.Errorf("the certificate of %s is from another farm's CA (%q), not this farm's (%q): %w",
			who, leaf.Issuer.CommonName, ourCA, err)
	case errors.As(err, &ua):
		return fmt.Errorf("the certificate of %s is from another farm's CA (%q): %w", who, leaf.Issuer.CommonName, err)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Errorf("the certificate of %s is not valid now (valid %s to %s): %w",
			who, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), err)
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return fmt.Errorf("the certificate of %s is not for TLS use here: %w", who, err)
	}
	return fmt.Errorf("the certificate of %s does not verify: %w", who, err)
}

// certLabel names a certificate's holder for an error message, falling back
// to its common name when it has no valid dcc:// URI.
func certLabel(c *x509.Certificate) string {
	if role, name, err := holderOf(c); err == nil {
		return role + " " + name
	}
	return fmt.Sprintf("%q", c.Subject.CommonName)
}

// Explain rewrites a TLS handshake or first-read error as one line a
// person can act on, wrapping the original (errors.Is still works):
//   - on the server, Go's own chain verification error (another farm's CA,
//     expired) gets the same wording ClientConfig's checks use;
//   - on either side, an alert from the peer says why the peer refused us.
//
// In TLS 1.3 a client's Handshake returns before the server has checked
// the client's certificate, so a refusal reaches the client on its first
// Read: pass that error here too. Other errors are returned unchanged.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		return describeVerifyError(cve.UnverifiedCertificates[0], "", err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		// crypto/tls reports a peer's alert as an unexported uint8 type.
		if v := reflect.ValueOf(op.Err); v.IsValid() && v.Kind() == reflect.Uint8 {
			if why := alertReason(uint8(v.Uint())); why != "" {
				return fmt.Errorf("the peer refused our credential: %s (%w)", why, err)
			}
		}
	}
	return err
}

// TLS alert codes (RFC 8446 section 6) a farm peer sends when it refuses a
// certificate.
const (
	alertBadCertificate     = 42
	alertCertificateExpired = 45
	alertUnknownCA          = 48
	alertCertificateNeeded  = 116
)

func alertReason(a uint8) string {
	switch a {
	case alertBadCertificate:
		return "it is revoked, not allowed here, or the peer's own check failed"
	case alertCertificateExpired:
		return "it has expired: ask your farm admin for a new one"
	case alertUnknownCA:
		return "it is from another farm's CA"
	case alertCertificateNeeded:
		return "it sent none"
	}
	return ""
}
