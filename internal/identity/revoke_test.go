package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRevokeReloadRotate(t *testing.T) {
	ca := newCA(t)
	dir := ca.Dir()
	bob1 := issueID(t, ca, RoleUser, "bob")
	bob2 := issueID(t, ca, RoleUser, "bob") // a second laptop
	alice := issueID(t, ca, RoleUser, "alice")
	bobHost := issueID(t, ca, RoleHost, "bob") // same name, other role

	rev, err := LoadRevocations(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Len() != 0 {
		t.Fatalf("fresh set holds %d", rev.Len())
	}
	if changed, err := rev.ReloadIfChanged(); changed || err != nil {
		t.Fatalf("ReloadIfChanged before any revocation = %v, %v", changed, err)
	}

	n, err := Revoke(dir, RoleUser, "bob")
	if err != nil || n != 2 {
		t.Fatalf("Revoke = %d, %v; want 2", n, err)
	}
	if rev.Revoked(bob1.Serial) {
		t.Fatal("seen before reload")
	}
	if changed, err := rev.ReloadIfChanged(); !changed || err != nil {
		t.Fatalf("ReloadIfChanged after revoke = %v, %v", changed, err)
	}
	for _, c := range []struct {
		id   *Identity
		want bool
	}{{bob1, true}, {bob2, true}, {alice, false}, {bobHost, false}} {
		if got := rev.Revoked(c.id.Serial); got != c.want {
			t.Errorf("Revoked(%s %s) = %v", c.id.Role, c.id.Name, got)
		}
	}
	if changed, err := rev.ReloadIfChanged(); changed || err != nil {
		t.Fatalf("second ReloadIfChanged = %v, %v", changed, err)
	}

	// Revoking again revokes nothing new.
	if n, err := Revoke(dir, RoleUser, "bob"); n != 0 || err != nil {
		t.Fatalf("Revoke again = %d, %v", n, err)
	}
	// Re-enrolling gives a working credential: rotation.
	bob3 := issueID(t, ca, RoleUser, "bob")
	rev.ReloadIfChanged()
	if rev.Revoked(bob3.Serial) {
		t.Fatal("new credential revoked")
	}
	// It survives a restart.
	again, err := LoadRevocations(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Revoked(bob1.Serial) || !again.Revoked(bob2.Serial) || again.Revoked(bob3.Serial) || again.Len() != 2 {
		t.Fatal("reloaded set differs")
	}
	// Revoking the new one too revokes just it.
	if n, err := Revoke(dir, RoleUser, "bob"); n != 1 || err != nil {
		t.Fatalf("Revoke after re-enrol = %d, %v", n, err)
	}

	if _, err := Revoke(dir, RoleUser, "nobody"); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("Revoke of an unknown name: %v", err)
	}
	if _, err := Revoke(dir, RoleAdmin, "alice"); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("Revoke with the wrong role: %v", err)
	}
	if _, err := Revoke(dir, RoleUser, "../x"); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := Revoke(filepath.Join(dir, "missing"), RoleUser, "bob"); err == nil {
		t.Fatal("missing state directory accepted")
	}
}

func TestSerialsPrunesExpired(t *testing.T) {
	ca := newCA(t)
	old := issueExpired(t, ca, RoleUser, "old")
	cur := issueID(t, ca, RoleUser, "cur")
	for _, n := range []string{"old", "cur"} {
		if _, err := Revoke(ca.Dir(), RoleUser, n); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := LoadRevocations(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Revoked(old.Serial) || !rev.Revoked(cur.Serial) {
		t.Fatal("both must count as revoked")
	}
	s := rev.Serials()
	if len(s) != 1 || !bytes.Equal(s[0], cur.Serial.Bytes()) {
		t.Fatalf("Serials = %x, want only %x", s, cur.Serial.Bytes())
	}
	// What a volunteer builds from the pushed list.
	v := NewRevocations(s)
	if !v.Revoked(cur.Serial) || v.Revoked(old.Serial) || v.Len() != 1 {
		t.Fatal("pushed set differs")
	}
	if _, err := v.ReloadIfChanged(); err == nil {
		t.Fatal("a pushed set has no file to reload")
	}
	v.Replace([][]byte{old.Serial.Bytes(), nil, make([]byte, MaxSerialLen+1)})
	if v.Revoked(cur.Serial) || !v.Revoked(old.Serial) || v.Len() != 1 {
		t.Fatal("Replace: want exactly the valid serial")
	}
	var none *Revocations
	if none.Revoked(cur.Serial) || none.Len() != 0 || none.Serials() != nil {
		t.Fatal("nil set must revoke nothing")
	}
}

// A crash mid-append leaves a torn last line: it is ignored, and the next
// revocation seals it so that both records stay readable.
func TestRevokedLogTornTail(t *testing.T) {
	ca := newCA(t)
	a := issueID(t, ca, RoleUser, "a")
	b := issueID(t, ca, RoleUser, "b")
	Revoke(ca.Dir(), RoleUser, "a")
	path := filepath.Join(ca.Dir(), revokedFile)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("7f3a user b 20")
	f.Close()
	rev, err := LoadRevocations(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Revoked(a.Serial) || rev.Len() != 1 {
		t.Fatal("torn tail not ignored")
	}
	if n, err := Revoke(ca.Dir(), RoleUser, "b"); n != 1 || err != nil {
		t.Fatalf("Revoke = %d, %v", n, err)
	}
	if changed, err := rev.ReloadIfChanged(); !changed || err != nil {
		t.Fatalf("ReloadIfChanged = %v, %v", changed, err)
	}
	if !rev.Revoked(a.Serial) || !rev.Revoked(b.Serial) {
		t.Fatal("records lost around the sealed fragment")
	}
}

// A complete line that does not parse is an error, and the set in force
// stays as it was.
func TestRevokedLogCorruptKeepsPrevious(t *testing.T) {
	ca := newCA(t)
	a := issueID(t, ca, RoleUser, "a")
	Revoke(ca.Dir(), RoleUser, "a")
	rev, err := LoadRevocations(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(ca.Dir(), revokedFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("zz user b 2030-01-01T00:00:00Z 2030-01-01T00:00:00Z\n")
	f.Close()
	if _, err := rev.ReloadIfChanged(); err == nil {
		t.Fatal("corrupt line accepted")
	}
	if !rev.Revoked(a.Serial) {
		t.Fatal("previous set lost")
	}
	if _, err := LoadRevocations(ca.Dir()); err == nil {
		t.Fatal("corrupt file loaded")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	ca := newCA(t)
	id := issueID(t, ca, RoleAdmin, "ops.team-1")
	r := Record{Serial: id.Serial, Role: id.Role, Name: id.Name, NotAfter: id.NotAfter, At: time.Now()}
	got, err := parseRecords("x", append([]byte("# comment\n\n"), r.line()...))
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	g := got[0]
	if g.Serial.Cmp(r.Serial) != 0 || g.Role != r.Role || g.Name != r.Name ||
		!g.NotAfter.Equal(r.NotAfter.Truncate(time.Second)) || !g.At.Equal(r.At.Truncate(time.Second)) {
		t.Fatalf("%+v != %+v", g, r)
	}
	for _, bad := range []string{
		"1 user bob 2030-01-01T00:00:00Z\n",
		"-1 user bob 2030-01-01T00:00:00Z 2030-01-01T00:00:00Z\n",
		"1 root bob 2030-01-01T00:00:00Z 2030-01-01T00:00:00Z\n",
		"1 user bob yesterday 2030-01-01T00:00:00Z\n",
		"1 user b/b 2030-01-01T00:00:00Z 2030-01-01T00:00:00Z\n",
	} {
		if _, err := parseRecords("x", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
