package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeNames(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "names.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnrollFromFile(t *testing.T) {
	ca := newCA(t)
	names := writeNames(t, "# the compiler team\nalice\n\n  bob  # laptop\ncarol.d\n")
	out := filepath.Join(t.TempDir(), "creds") // created
	files, err := EnrollFromFile(ca, RoleUser, names, out, EnrollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice", "bob", "carol.d"}
	if len(files) != len(want) {
		t.Fatalf("wrote %v", files)
	}
	for i, n := range want {
		if files[i] != filepath.Join(out, n+".pem") {
			t.Fatalf("file %d = %s", i, files[i])
		}
		st, _ := os.Stat(files[i])
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %04o", files[i], st.Mode().Perm())
		}
		id, err := Load(files[i], RoleUser)
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != n || id.Role != RoleUser {
			t.Fatalf("%s holds %s %s", files[i], id.Role, id.Name)
		}
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o700 {
		t.Fatalf("out dir mode %04o", st.Mode().Perm())
	}
	recs, _ := Issued(ca.Dir())
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}

	// A second run refuses to overwrite and issues nothing.
	if _, err := EnrollFromFile(ca, RoleUser, names, out, EnrollOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
	if recs, _ := Issued(ca.Dir()); len(recs) != 3 {
		t.Fatalf("refused run issued credentials: %d records", len(recs))
	}
	// Unless told to.
	old, _ := Load(files[0])
	if _, err := EnrollFromFile(ca, RoleUser, names, out, EnrollOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if now, _ := Load(files[0]); now.Serial.Cmp(old.Serial) == 0 {
		t.Fatal("not overwritten")
	}
}

func TestEnrollFromFileRefusesBadNames(t *testing.T) {
	ca := newCA(t)
	for _, c := range []struct{ text, want string }{
		{"alice\nbad/name\n", "line 2: invalid name"},
		{"alice\nbob\nalice\n", "line 3: alice is already on line 1"},
		{"# nobody\n\n", "names no one"},
		{"a b\n", "line 1: invalid name"},
	} {
		out := t.TempDir()
		_, err := EnrollFromFile(ca, RoleUser, writeNames(t, c.text), out, EnrollOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.text, err, c.want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("%q: wrote %d files", c.text, len(ents))
		}
	}
	if recs, _ := Issued(ca.Dir()); len(recs) != 0 {
		t.Fatalf("issued %d", len(recs))
	}
	if _, err := EnrollFromFile(ca, RoleBroker, writeNames(t, "x\n"), t.TempDir(), EnrollOptions{}); err == nil {
		t.Fatal("enrolled a broker")
	}
	if _, err := EnrollFromFile(ca, RoleUser, filepath.Join(t.TempDir(), "none"), t.TempDir(), EnrollOptions{}); err == nil {
		t.Fatal("missing names file accepted")
	}
}
