// Package identity owns the farm's certificate authority and the
// credentials it issues: one certificate per host, engineer and admin, and
// the broker's own serving certificate. It creates and loads the CA in the
// broker's state directory, issues and records certificates, revokes them,
// loads a credential from its PEM bundle, and builds the TLS 1.3 configs
// (mutual authentication, session resumption) every connection uses.
//
// A certificate says who its holder is in exactly one place: a URI SAN
// dcc://ROLE/NAME (CN = NAME and OU = ROLE are only for humans reading it
// with openssl). Decisions read only that URI, so a name can never be
// mistaken for a role or a host name for a user name.
//
// The state directory, shared by the running broker and the `broker
// enroll` and `broker revoke` commands (separate processes that cannot open
// the broker's bbolt database while it runs):
//
//	ca.pem       the farm CA certificate (0644), self-signed, 10 years
//	ca.key       its ECDSA P-256 private key, PKCS#8 (0600)
//	ca.lock      flock(2) taken around every change and every read of the files below
//	issued.log   append-only: one line per certificate ever issued
//	revoked.log  append-only: one line per revoked certificate
//
// Both logs hold lines "SERIAL ROLE NAME NOT_AFTER AT" (hex serial,
// RFC 3339 times; AT is when it was issued or revoked), so an admin can
// read them with grep. Nothing here starts a goroutine: the broker polls
// (*Revocations).ReloadIfChanged, which costs one stat when nothing
// changed.
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Roles. An admin may also do everything a user may (see ActsAs).
const (
	RoleHost   = "host"   // a volunteer: TLS client of the broker, TLS server to users
	RoleUser   = "user"   // an engineer's dcc and agent
	RoleAdmin  = "admin"  // a user who may also administer the farm
	RoleBroker = "broker" // the broker's own serving certificate, issued by itself at start
)

// Defaults for certificate lifetimes.
const (
	DefaultValidity = 365 * 24 * time.Hour
	caValidity      = 10 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a credential issued on the
	// broker works at once on a machine whose clock is a little behind.
	clockSkew = 5 * time.Minute
)

// uriScheme is the scheme of the URI SAN naming a certificate's holder.
const uriScheme = "dcc"

// maxBundleSize bounds what Load reads: a bundle is about 1.5 KiB.
const maxBundleSize = 256 << 10

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidRole reports whether role is one of the four roles.
func ValidRole(role string) bool {
	switch role {
	case RoleHost, RoleUser, RoleAdmin, RoleBroker:
		return true
	}
	return false
}

// CheckName returns an error unless name is a valid holder name: a letter
// or digit, then up to 63 letters, digits, '.', '_' or '-'. Such a name is
// also a safe file name (NAME.pem) and needs no escaping in the URI SAN.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid name %q: want a letter or digit, then up to 63 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

func checkRoleName(role, name string) error {
	if !ValidRole(role) {
		return fmt.Errorf("invalid role %q: want host, user, admin or broker", role)
	}
	return CheckName(name)
}

// actsAs reports whether a holder of role have may act as want.
func actsAs(have, want string) bool {
	return have == want || (want == RoleUser && have == RoleAdmin)
}

// holderURI is the URI SAN for (role, name).
func holderURI(role, name string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: role, Path: "/" + name}
}

// holderOf reads (role, name) from a certificate's dcc:// URI SAN. Exactly
// one such URI must be present, in exactly the form holderURI writes.
func holderOf(c *x509.Certificate) (role, name string, err error) {
	var found *url.URL
	for _, u := range c.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		if found != nil {
			return "", "", errors.New("certificate names more than one dcc:// holder")
		}
		found = u
	}
	if found == nil {
		return "", "", errors.New("certificate has no dcc://ROLE/NAME URI: not a dcc farm credential")
	}
	u := found
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", "", fmt.Errorf("malformed holder URI %q", u.String())
	}
	role, name = u.Host, u.Path[1:]
	if err := checkRoleName(role, name); err != nil {
		return "", "", fmt.Errorf("holder URI %q: %v", u.String(), err)
	}
	return role, name, nil
}

// Peer is who is at the other end of a verified TLS connection.
type Peer struct {
	Role     string
	Name     string
	Serial   *big.Int
	NotAfter time.Time
}

// ActsAs reports whether the peer may act as role: its own role, or user
// for an admin.
func (p Peer) ActsAs(role string) bool { return actsAs(p.Role, role) }

func (p Peer) String() string { return p.Role + " " + p.Name }

// peerOfCert reads a Peer from a certificate the caller has verified.
func peerOfCert(c *x509.Certificate) (Peer, error) {
	role, name, err := holderOf(c)
	if err != nil {
		return Peer{}, err
	}
	return Peer{Role: role, Name: name, Serial: c.SerialNumber, NotAfter: c.NotAfter}, nil
}

// Identity is a loaded credential: who we are, our certificate and key,
// and the farm CA we trust.
type Identity struct {
	Role     string
	Name     string
	Serial   *big.Int
	NotAfter time.Time
	Cert     tls.Certificate   // our leaf and key; Cert.Leaf is set
	CA       *x509.CertPool    // holds exactly CACert
	CACert   *x509.Certificate // the farm CA
}

// ActsAs reports whether this identity may act as role.
func (id *Identity) ActsAs(role string) bool { return actsAs(id.Role, role) }

// Peer returns the identity as its peers see it.
func (id *Identity) Peer() Peer {
	return Peer{Role: id.Role, Name: id.Name, Serial: id.Serial, NotAfter: id.NotAfter}
}

// Load reads a credential bundle written by `broker enroll` (or Issue).
// It refuses a file other users could read, as ssh does, and a credential
// that has expired, is not yet valid, or (when roles are given) may act as
// none of them. Errors are one line and say what to do.
func Load(path string, roles ...string) (*Identity, error) {
	hint := RoleUser
	if len(roles) > 0 && roles[0] != RoleBroker {
		hint = roles[0]
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no identity at %s: ask your farm admin for one: broker enroll %s NAME --state DIR --out NAME.pem", path, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("identity %s: its private key is readable by other users (mode %04o): run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("identity %s: larger than %d bytes: not a credential bundle", path, maxBundleSize)
	}
	id, err := ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if err := checkTimes(id, time.Now()); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if len(roles) > 0 && !anyRole(id.Role, roles) {
		return nil, fmt.Errorf("identity %s is for %s %s, but this needs a %s identity", path, id.Role, id.Name, strings.Join(roles, " or "))
	}
	return id, nil
}

func anyRole(have string, want []string) bool {
	for _, w := range want {
		if actsAs(have, w) {
			return true
		}
	}
	return false
}

func checkTimes(id *Identity, now time.Time) error {
	leaf := id.Cert.Leaf
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the credential of %s %s expired on %s: ask your farm admin for a new one", id.Role, id.Name, leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("the credential of %s %s is not valid before %s: is this machine's clock right?", id.Role, id.Name, leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(id.CACert.NotAfter):
		return fmt.Errorf("the farm CA expired on %s", id.CACert.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}

// ParseBundle parses a PEM bundle holding a leaf certificate, the farm CA
// certificate that signed it and the leaf's private key, in any order. It
// checks that they belong together but not the time of day (Load does).
func ParseBundle(data []byte) (*Identity, error) {
	var certs []*x509.Certificate
	var key crypto.Signer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("bad certificate: %v", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := parseKey(b)
			if err != nil {
				return nil, err
			}
			key = k
		default:
			return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
	}
	if key == nil {
		return nil, errors.New("no private key: not a credential bundle")
	}
	var leaf, ca *x509.Certificate
	for _, c := range certs {
		switch {
		case publicKeyEqual(c.PublicKey, key.Public()):
			if leaf != nil {
				return nil, errors.New("two certificates for one key")
			}
			leaf = c
		case c.IsCA:
			if ca != nil {
				return nil, errors.New("more than one CA certificate")
			}
			ca = c
		default:
			return nil, fmt.Errorf("unexpected certificate %q: neither the key's nor a CA", c.Subject.CommonName)
		}
	}
	if leaf == nil {
		return nil, errors.New("no certificate matches the private key")
	}
	if ca == nil {
		return nil, errors.New("no farm CA certificate")
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("the certificate is not signed by the bundled farm CA: %v", err)
	}
	role, name, err := holderOf(leaf)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Identity{
		Role:     role,
		Name:     name,
		Serial:   leaf.SerialNumber,
		NotAfter: leaf.NotAfter,
		Cert:     tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
		CA:       pool,
		CACert:   ca,
	}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	if b.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(b.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("bad private key: %v", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

// encodeBundle writes leaf, CA and key as PEM, leaf first: that is the
// order tls.X509KeyPair, curl --cert and openssl -cert expect, so the file
// works with them as is (curl --cert F --key F --cacert F).
func encodeBundle(leafDER, caDER []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	var out []byte
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})...)
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})...)
	return out, nil
}
