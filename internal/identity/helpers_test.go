package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process that opens the CA in
// the directory it names and prints the CA certificate's fingerprint: the
// cross-process creation race test runs several at once.
const helperEnv = "IDENTITY_TEST_OPENCA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		ca, err := OpenCA(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(fingerprint(ca))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fingerprint(ca *CA) string {
	sum := sha256.Sum256(ca.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

func newCA(t testing.TB) *CA {
	t.Helper()
	ca, err := OpenCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueID issues a credential and parses it back, without Load's checks of
// the clock, so tests can hold expired credentials too.
func issueID(t testing.TB, ca *CA, role, name string) *Identity {
	t.Helper()
	b, err := ca.Issue(role, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// issueExpired issues a credential that expired an hour ago.
func issueExpired(t testing.TB, ca *CA, role, name string) *Identity {
	t.Helper()
	ca.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	defer func() { ca.now = time.Now }()
	b, err := ca.Issue(role, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func writeBundle(t testing.TB, dir, name string, bundle []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := WriteBundle(p, bundle, false); err != nil {
		t.Fatal(err)
	}
	return p
}
