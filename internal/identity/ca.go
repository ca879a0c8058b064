package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is the farm's certificate authority, loaded from a state directory.
// Its methods may be called from several goroutines.
type CA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	// now is the clock for validity periods; tests move it.
	now func() time.Time
}

// OpenCA loads the farm CA from stateDir (ca.pem and ca.key), creating the
// directory and a new CA if there is none. Creation happens under the
// state directory's exclusive flock, so a broker starting while `broker
// enroll` runs, or two enrolls at once, still make exactly one CA.
func OpenCA(stateDir string) (*CA, error) {
	if stateDir == "" {
		return nil, errors.New("no state directory given")
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockState(stateDir, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ca, err := loadCA(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		ca, err = createCA(stateDir, time.Now())
	}
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// loadCA reads ca.pem and ca.key; os.ErrNotExist means there is no CA yet.
// ca.key is written before ca.pem, so a key without a certificate is the
// remnant of an interrupted creation (nothing was ever signed with it) and
// counts as no CA; a certificate without its key is a lost CA.
func loadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	cert, err := parseOneCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", certPath, err)
	}
	st, err := os.Stat(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s exists but %s does not: the farm CA's key is lost (move the state directory's ca.* files away to start a new farm CA, then re-enrol everyone)", certPath, keyPath)
	}
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %04o): run chmod 600 %s", keyPath, perm, keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	signer, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", keyPath, err)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: want an ECDSA key, have %T", keyPath, signer)
	}
	if !cert.IsCA || !publicKeyEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s and %s do not belong together", certPath, keyPath)
	}
	return caFrom(dir, cert, key), nil
}

func caFrom(dir string, cert *x509.Certificate, key *ecdsa.PrivateKey) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{dir: dir, cert: cert, key: key, pool: pool, now: time.Now}
}

func createCA(dir string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	id := farmID(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dcc farm CA " + id, Organization: []string{"dcc farm"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // it signs leaves only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Key first: ca.pem's presence is what says a CA exists (see loadCA).
	if err := writeFileAtomic(filepath.Join(dir, caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return caFrom(dir, cert, key), nil
}

// farmID is a short fingerprint of the CA's public key, put in its common
// name so that an error about another farm's certificate can say which.
func farmID(pkix []byte) string {
	sum := sha256.Sum256(pkix)
	return hex.EncodeToString(sum[:4])
}

func parseOneCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// newSerial returns a random positive 127-bit serial number: unique without
// coordination, and within RFC 5280's 20 octets.
func newSerial() (*big.Int, error) {
	for {
		s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, err
		}
		if s.Sign() > 0 {
			return s, nil
		}
	}
}

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a pool holding only the CA's certificate.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// CertPEM returns the CA certificate as PEM, e.g. for curl --cacert.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// ID is the farm's short fingerprint, also the end of the CA's common name.
func (ca *CA) ID() string { return farmID(ca.cert.RawSubjectPublicKeyInfo) }

// Dir is the state directory the CA lives in.
func (ca *CA) Dir() string { return ca.dir }

// Issue creates a credential for name in role, valid for validity
// (DefaultValidity if zero or less), records it in issued.log, and returns
// the PEM bundle: the leaf certificate, the farm CA certificate and the
// leaf's private key. The record is durable before the bundle is returned,
// so every credential in anyone's hands can be revoked by name.
func (ca *CA) Issue(role, name string, validity time.Duration) ([]byte, error) {
	leaf, key, err := ca.issue(role, name, validity, nil, nil)
	if err != nil {
		return nil, err
	}
	return encodeBundle(leaf.Raw, ca.cert.Raw, key)
}

// ServerIdentity issues the broker's own serving certificate (role broker,
// name "broker") for dnsNames and ips, valid for DefaultValidity, and
// returns it as an Identity whose key never touches the disk. Besides
// serving farm connections, it is a normal server certificate for those
// names, so an HTTPS API using it is accepted by curl --cacert ca.pem.
func (ca *CA) ServerIdentity(dnsNames []string, ips []net.IP) (*Identity, error) {
	leaf, key, err := ca.issue(RoleBroker, RoleBroker, DefaultValidity, dnsNames, ips)
	if err != nil {
		return nil, err
	}
	return &Identity{
		Role:     RoleBroker,
		Name:     RoleBroker,
		Serial:   leaf.SerialNumber,
		NotAfter: leaf.NotAfter,
		Cert:     tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
		CA:       ca.pool,
		CACert:   ca.cert,
	}, nil
}

func (ca *CA) issue(role, name string, validity time.Duration, dnsNames []string, ips []net.IP) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := checkRoleName(role, name); err != nil {
		return nil, nil, err
	}
	if validity <= 0 {
		validity = DefaultValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := ca.now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter // a leaf cannot outlive its CA
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         name,
			OrganizationalUnit: []string{role},
			Organization:       []string{"dcc farm"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{holderURI(role, name)},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	rec := Record{Serial: serial, Role: role, Name: name, NotAfter: leaf.NotAfter, At: now}
	if err := ca.record(rec); err != nil {
		return nil, nil, fmt.Errorf("record issued certificate: %w", err)
	}
	return leaf, key, nil
}

func (ca *CA) record(rec Record) error {
	unlock, err := lockState(ca.dir, true)
	if err != nil {
		return err
	}
	defer unlock()
	return appendLines(filepath.Join(ca.dir, issuedFile), rec.line())
}
