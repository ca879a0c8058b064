package identity

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(cmd func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmd(args, &out, &errb)
	return code, out.String(), errb.String()
}

func enroll(a []string, o, e *bytes.Buffer) int { return EnrollCmd(a, o, e) }
func revoke(a []string, o, e *bytes.Buffer) int { return RevokeCmd(a, o, e) }

func TestEnrollCmd(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	dir := t.TempDir()
	bob := filepath.Join(dir, "bob.pem")

	code, out, errs := run(enroll, "user", "bob", "--state", state, "--out", bob)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	id, err := Load(bob, RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := OpenCA(state) // enroll created it
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("wrote %s: user bob, serial %s, valid until %s, farm CA %s\n",
		bob, id.Serial.Text(16), id.NotAfter.UTC().Format(time.DateOnly), ca.ID())
	if out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}

	// Flags before, between and after the positionals; --validity in days.
	host := filepath.Join(dir, "sun1.pem")
	if code, _, errs := run(enroll, "--state", state, "host", "--validity", "90d", "sun1", "--out", host); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	h, err := Load(host, RoleHost)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(h.NotAfter); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Fatalf("90d gives %v", d)
	}

	// An existing file is refused, then replaced with --force.
	code, _, errs = run(enroll, "user", "bob", "--state", state, "--out", bob)
	if code != 1 || errs != "broker enroll: "+bob+" already exists: remove it or pass --force\n" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if code, _, errs := run(enroll, "user", "bob", "--state", state, "--out", bob, "--force"); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errs)
	}

	// Bulk.
	names := filepath.Join(dir, "team.txt")
	os.WriteFile(names, []byte("alice\ncarol\n"), 0o644)
	outDir := filepath.Join(dir, "team")
	code, out, errs = run(enroll, "user", "--from", names, "--state", state, "--out-dir", outDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, n := range []string{"alice", "carol"} {
		p := filepath.Join(outDir, n+".pem")
		if !strings.Contains(out, "wrote "+p+"\n") {
			t.Errorf("stdout %q lacks %s", out, p)
		}
		if _, err := Load(p, RoleUser); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(out, "enrolled 2 users") {
		t.Errorf("stdout %q", out)
	}
	if code, _, errs := run(enroll, "user", "--from", names, "--state", state, "--out-dir", outDir); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("second bulk run: exit %d: %s", code, errs)
	}
}

func TestEnrollCmdUsage(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "x.pem")
	names := filepath.Join(dir, "n.txt")
	os.WriteFile(names, []byte("a\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "missing the role"},
		{[]string{"wizard", "bob", "--state", state, "--out", out}, `unknown role "wizard"`},
		{[]string{"broker", "bob", "--state", state, "--out", out}, `unknown role "broker"`},
		{[]string{"user", "--state", state, "--out", out}, "missing NAME"},
		{[]string{"user", "bob", "--out", out}, "missing --state DIR"},
		{[]string{"user", "bob", "--state", state}, "missing --out FILE"},
		{[]string{"user", "bob", "extra", "--state", state, "--out", out}, `unexpected argument "extra"`},
		{[]string{"user", "b/ob", "--state", state, "--out", out}, "invalid name"},
		{[]string{"user", "bob", "--from", names, "--state", state, "--out-dir", dir}, "NAME or --from FILE, not both"},
		{[]string{"user", "--from", names, "--state", state}, "missing --out-dir DIR"},
		{[]string{"user", "--from", names, "--state", state, "--out", out}, "--out goes with NAME"},
		{[]string{"user", "bob", "--state", state, "--out-dir", dir}, "--out-dir goes with --from"},
		{[]string{"user", "bob", "--state", state, "--out", out, "--validity", "forever"}, "--validity"},
		{[]string{"user", "bob", "--state", state, "--out", out, "--validity", "-1h"}, "--validity"},
		{[]string{"user", "bob", "--state", state, "--out", out, "--colour"}, "flag provided but not defined: -colour"},
	} {
		code, stdout, errs := run(enroll, c.args...)
		if code != 2 || stdout != "" || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout, errs, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused command wrote a credential")
	}
	code, stdout, _ := run(enroll, "--help")
	if code != 0 || !strings.HasPrefix(stdout, "Usage:\n  broker enroll host|user|admin NAME --state DIR --out FILE") {
		t.Fatalf("help: exit %d, %q", code, stdout)
	}
	// A state directory that cannot be made is a failure, not a usage error.
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	if code, _, errs := run(enroll, "user", "bob", "--state", filepath.Join(blocker, "state"), "--out", out); code != 1 || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestRevokeCmd(t *testing.T) {
	state := t.TempDir()
	bob := filepath.Join(t.TempDir(), "bob.pem")
	if code, _, errs := run(enroll, "user", "bob", "--state", state, "--out", bob); code != 0 {
		t.Fatal(errs)
	}
	id, _ := Load(bob)
	rev, err := LoadRevocations(state)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := run(revoke, "user", "bob", "--state", state)
	if code != 0 || errs != "" || out != "revoked 1 credential of user bob; a running broker refuses it within 5 s\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if changed, err := rev.ReloadIfChanged(); !changed || err != nil || !rev.Revoked(id.Serial) {
		t.Fatalf("broker's view: changed %v, %v, revoked %v", changed, err, rev.Revoked(id.Serial))
	}
	code, out, _ = run(revoke, "--state", state, "user", "bob")
	if code != 0 || out != "user bob: every credential was already revoked\n" {
		t.Fatalf("again: exit %d, %q", code, out)
	}
	code, _, errs = run(revoke, "user", "bobb", "--state", state)
	if code != 1 || !strings.HasPrefix(errs, "broker revoke: no certificate was ever issued for user bobb in ") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("unknown name: exit %d, %q", code, errs)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "missing the role"},
		{[]string{"user"}, "missing NAME"},
		{[]string{"user", "bob"}, "missing --state DIR"},
		{[]string{"root", "bob", "--state", state}, `unknown role "root"`},
		{[]string{"user", "bob", "x", "--state", state}, `unexpected argument "x"`},
		{[]string{"user", "-", "--state", state}, "invalid name"},
	} {
		if code, _, errs := run(revoke, c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, %q; want %q", c.args, code, errs, c.want)
		}
	}
	if code, out, _ := run(revoke, "-h"); code != 0 || !strings.HasPrefix(out, "Usage:\n  broker revoke host|user|admin NAME --state DIR") {
		t.Fatalf("help: %d %q", code, out)
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  string
		v    string
	}{
		{[]string{"a", "b", "-v", "1"}, "a b", "1"},
		{[]string{"-v", "1", "a", "b"}, "a b", "1"},
		{[]string{"a", "--v=1", "b"}, "a b", "1"},
		{[]string{"a", "--", "-v", "b"}, "a -v b", ""},
	} {
		fs := newTestFlagSet()
		v := fs.String("v", "", "")
		pos, err := parseInterleaved(fs, c.args)
		if err != nil || strings.Join(pos, " ") != c.pos || *v != c.v {
			t.Errorf("%q: %q v=%q %v", c.args, pos, *v, err)
		}
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
