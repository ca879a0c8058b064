package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenCAIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by OpenCA
	a, err := OpenCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(a) != fingerprint(b) {
		t.Fatal("second OpenCA made a new CA")
	}
	c := a.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.Subject.CommonName != "dcc farm CA "+a.ID() {
		t.Fatalf("CA certificate: IsCA %v MaxPathLenZero %v CN %q", c.IsCA, c.MaxPathLenZero, c.Subject.CommonName)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 9*365*24*time.Hour {
		t.Fatalf("CA valid for %v, want about 10 years", life)
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("CA key is %T", c.PublicKey)
	}
	for file, want := range map[string]os.FileMode{caKeyFile: 0o600, caCertFile: 0o644, "": 0o700} {
		st, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%q has mode %04o, want %04o", file, st.Mode().Perm(), want)
		}
	}
}

// Goroutines and processes opening one empty state directory at once must
// end up with one CA, and no temporary files left behind.
func TestOpenCAConcurrent(t *testing.T) {
	dir := t.TempDir()
	const procs, goroutines = 4, 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0])
		cmds[i].Env = append(os.Environ(), helperEnv+"="+dir)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout = outs[i]
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	fps := make([]string, goroutines)
	var wg sync.WaitGroup
	for i := range fps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := OpenCA(dir)
			if err != nil {
				t.Error(err)
				return
			}
			fps[i] = fingerprint(ca)
		}()
	}
	wg.Wait()
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
		fps = append(fps, strings.TrimSpace(outs[i].String()))
	}
	for _, fp := range fps {
		if fp != fps[0] || len(fp) != 64 {
			t.Fatalf("fingerprints differ: %q", fps)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "ca.key ca.lock ca.pem" {
		t.Fatalf("state directory holds %q", names)
	}
}

func TestOpenCABrokenState(t *testing.T) {
	t.Run("certificate without key", func(t *testing.T) {
		ca := newCA(t)
		os.Remove(filepath.Join(ca.Dir(), caKeyFile))
		if _, err := OpenCA(ca.Dir()); err == nil || !strings.Contains(err.Error(), "key is lost") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		ca := newCA(t)
		os.Chmod(filepath.Join(ca.Dir(), caKeyFile), 0o640)
		if _, err := OpenCA(ca.Dir()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key without certificate is an interrupted creation", func(t *testing.T) {
		ca := newCA(t)
		os.Remove(filepath.Join(ca.Dir(), caCertFile))
		ca2, err := OpenCA(ca.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if fingerprint(ca2) == fingerprint(ca) {
			t.Fatal("expected a new CA")
		}
	})
	t.Run("mismatched key", func(t *testing.T) {
		a, b := newCA(t), newCA(t)
		key, _ := os.ReadFile(filepath.Join(b.Dir(), caKeyFile))
		os.WriteFile(filepath.Join(a.Dir(), caKeyFile), key, 0o600)
		if _, err := OpenCA(a.Dir()); err == nil || !strings.Contains(err.Error(), "do not belong together") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestIssueLoadRoundTrip(t *testing.T) {
	ca := newCA(t)
	for _, role := range []string{RoleHost, RoleUser, RoleAdmin} {
		t.Run(role, func(t *testing.T) {
			bundle, err := ca.Issue(role, "n-1."+role, 0)
			if err != nil {
				t.Fatal(err)
			}
			path := writeBundle(t, t.TempDir(), "id.pem", bundle)
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("bundle mode %04o", st.Mode().Perm())
			}
			id, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if id.Role != role || id.Name != "n-1."+role {
				t.Fatalf("loaded %s %s", id.Role, id.Name)
			}
			leaf := id.Cert.Leaf
			if leaf.SerialNumber.Cmp(id.Serial) != 0 || !leaf.NotAfter.Equal(id.NotAfter) {
				t.Fatal("Serial/NotAfter do not match the leaf")
			}
			if life := leaf.NotAfter.Sub(time.Now()); life < 364*24*time.Hour || life > 366*24*time.Hour {
				t.Fatalf("default validity gives %v", life)
			}
			if leaf.Subject.CommonName != id.Name || leaf.Subject.OrganizationalUnit[0] != role {
				t.Fatalf("subject %v", leaf.Subject)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "dcc://"+role+"/n-1."+role {
				t.Fatalf("URIs %v", leaf.URIs)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.CA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatal("client auth:", err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.CA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Fatal("server auth:", err)
			}
			if fingerprint(ca) != fingerprintCert(id.CACert) {
				t.Fatal("bundle holds another CA")
			}
		})
	}
	// The bundle's first certificate is the leaf, so standard tools that
	// take "cert chain + key" files accept it as is.
	bundle, _ := ca.Issue(RoleUser, "curl", 0)
	b, _ := pem.Decode(bundle)
	c, _ := x509.ParseCertificate(b.Bytes)
	if c.IsCA {
		t.Fatal("bundle starts with the CA certificate")
	}
}

func fingerprintCert(c *x509.Certificate) string { return fingerprint(&CA{cert: c}) }

func TestIssueRefusesBadInput(t *testing.T) {
	ca := newCA(t)
	for _, c := range []struct{ role, name string }{
		{"root", "x"}, {"", "x"}, {RoleUser, ""}, {RoleUser, "-x"}, {RoleUser, ".."},
		{RoleUser, "a/b"}, {RoleUser, "a b"}, {RoleUser, strings.Repeat("a", 65)}, {RoleUser, "é"},
	} {
		if _, err := ca.Issue(c.role, c.name, 0); err == nil {
			t.Errorf("Issue(%q, %q) succeeded", c.role, c.name)
		}
	}
	if _, err := ca.Issue(RoleUser, strings.Repeat("a", 64), 0); err != nil {
		t.Errorf("64-character name: %v", err)
	}
	// A leaf never outlives the CA.
	b, err := ca.Issue(RoleUser, "long", 50*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ParseBundle(b)
	if id.NotAfter.After(ca.Certificate().NotAfter) {
		t.Fatal("leaf outlives the CA")
	}
}

func TestIssueRecordsEveryCertificate(t *testing.T) {
	ca := newCA(t)
	a := issueID(t, ca, RoleUser, "bob")
	b := issueID(t, ca, RoleHost, "sun1")
	srv, err := ca.ServerIdentity([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Issued(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	want := []*Identity{a, b, srv}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		w := want[i]
		if r.Serial.Cmp(w.Serial) != 0 || r.Role != w.Role || r.Name != w.Name || !r.NotAfter.Equal(w.NotAfter.Truncate(time.Second)) {
			t.Errorf("record %d = %+v, want %s %s %s %v", i, r, w.Serial.Text(16), w.Role, w.Name, w.NotAfter)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	user, _ := ca.Issue(RoleUser, "bob", 0)
	admin, _ := ca.Issue(RoleAdmin, "root1", 0)
	userPath := writeBundle(t, dir, "user.pem", user)
	adminPath := writeBundle(t, dir, "admin.pem", admin)

	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(dir, "nope.pem")
		_, err := Load(p)
		want := "no identity at " + p + ": ask your farm admin for one: broker enroll user NAME"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v", err)
		}
		if _, err := Load(p, RoleHost); err == nil || !strings.Contains(err.Error(), "broker enroll host NAME") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("readable by others", func(t *testing.T) {
		p := filepath.Join(dir, "open.pem")
		os.WriteFile(p, user, 0o644)
		os.Chmod(p, 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), "mode 0644") || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		ca.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
		old, err := ca.Issue(RoleUser, "old", 24*time.Hour)
		ca.now = time.Now
		if err != nil {
			t.Fatal(err)
		}
		_, err = Load(writeBundle(t, dir, "old.pem", old))
		if err == nil || !strings.Contains(err.Error(), "user old expired on") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong role", func(t *testing.T) {
		_, err := Load(userPath, RoleHost)
		if err == nil || !strings.Contains(err.Error(), "is for user bob, but this needs a host identity") {
			t.Fatalf("err = %v", err)
		}
		if _, err := Load(adminPath, RoleUser); err != nil {
			t.Fatalf("an admin may act as a user: %v", err)
		}
		if _, err := Load(userPath, RoleAdmin); err == nil {
			t.Fatal("a user loaded as admin")
		}
	})
	t.Run("not a bundle", func(t *testing.T) {
		p := filepath.Join(dir, "junk.pem")
		os.WriteFile(p, []byte("hello\n"), 0o600)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "no private key") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("one line", func(t *testing.T) {
		for _, p := range []string{filepath.Join(dir, "nope.pem"), filepath.Join(dir, "junk.pem")} {
			if _, err := Load(p); err == nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q", err)
			}
		}
	})
}

func TestParseBundleMismatch(t *testing.T) {
	a, b := newCA(t), newCA(t)
	fromA, _ := a.Issue(RoleUser, "bob", 0)
	// Replace A's CA certificate in the bundle by B's.
	var blocks []*pem.Block
	rest := fromA
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	var mixed []byte
	mixed = append(mixed, pem.EncodeToMemory(blocks[0])...)
	mixed = append(mixed, b.CertPEM()...)
	mixed = append(mixed, pem.EncodeToMemory(blocks[2])...)
	if _, err := ParseBundle(mixed); err == nil || !strings.Contains(err.Error(), "not signed by the bundled farm CA") {
		t.Fatalf("err = %v", err)
	}
	// Without the key.
	if _, err := ParseBundle(append(pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1])...)); err == nil {
		t.Fatal("bundle without key accepted")
	}
	// Another key.
	other, _ := b.Issue(RoleUser, "eve", 0)
	var otherKey []byte
	for r := other; ; {
		var blk *pem.Block
		blk, r = pem.Decode(r)
		if blk.Type == "PRIVATE KEY" {
			otherKey = pem.EncodeToMemory(blk)
			break
		}
	}
	if _, err := ParseBundle(append(append(pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1])...), otherKey...)); err == nil {
		t.Fatal("bundle with another key accepted")
	}
}

// Only the dcc:// URI decides who a certificate's holder is.
func TestHolderOf(t *testing.T) {
	ca := newCA(t)
	mk := func(cn string, uris ...string) *x509.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		serial, _ := newSerial()
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{RoleAdmin}},
			NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		}
		for _, u := range uris {
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.URIs = append(tmpl.URIs, pu)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	for _, c := range []struct {
		uris       []string
		role, name string // empty: must fail
	}{
		{[]string{"dcc://user/bob"}, RoleUser, "bob"},
		{[]string{"https://example.com/", "dcc://host/sun1"}, RoleHost, "sun1"},
		{nil, "", ""},
		{[]string{"https://example.com/admin/bob"}, "", ""},
		{[]string{"dcc://user/bob", "dcc://admin/bob"}, "", ""},
		{[]string{"dcc://root/bob"}, "", ""},
		{[]string{"dcc://user/bob/x"}, "", ""},
		{[]string{"dcc://user/"}, "", ""},
		{[]string{"dcc://user:1/bob"}, "", ""},
		{[]string{"dcc://x@user/bob"}, "", ""},
		{[]string{"dcc://user/bob?admin"}, "", ""},
		{[]string{"dcc:user/bob"}, "", ""},
	} {
		role, name, err := holderOf(mk("bob", c.uris...))
		if c.role == "" {
			if err == nil {
				t.Errorf("%v: accepted as %s %s", c.uris, role, name)
			}
			continue
		}
		if err != nil || role != c.role || name != c.name {
			t.Errorf("%v: %s %s %v, want %s %s", c.uris, role, name, err, c.role, c.name)
		}
	}
}
