package availability

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// crashingGCC answers -v exactly like gcc (so its fingerprint is gcc's),
// passes the volunteer's start-up check compile, and crashes on every
// job: a host that broke after it started, not the user's fault.
const crashingGCC = `if [ "$1" = -v ]; then exec gcc -v; fi
for a in "$@"; do case "$a" in *dcc-check.*) exec gcc "$@" ;; esac; done
kill -SEGV $$
`

// lyingGCC answers -v like gcc but compiles without optimisation, so its
// objects differ from gcc's for any -O2 compile.
const lyingGCC = `if [ "$1" = -v ]; then exec gcc -v; fi
exec gcc "$@" -O0
`

func TestHostHealth(t *testing.T) {
	t.Parallel()
	f := newFarm(t, testfarm.Host{Name: "broken", CPUs: 2, Power: 3}, testfarm.Host{Name: "good", CPUs: 2, Power: 1})
	f.StartBroker()
	volunteer(t, f, "broken", 2, "", "--compilers", wrapper(t, "gcc", crashingGCC))
	volunteer(t, f, "good", 2, "", "--compilers", "gcc")
	d := up(f, "broken", "good")
	if b, g := testfarm.HostOf(d, "broken"), testfarm.HostOf(d, "good"); fmt.Sprint(b.Compilers) != fmt.Sprint(g.Compilers) {
		t.Fatalf("the wrapper's fingerprint differs from gcc's: %v vs %v", b.Compilers, g.Compilers)
	}
	dir := srcDir(t)
	want := localObject(t, "gcc", "quick.c", "-O2")

	// Every compile succeeds; the broken host goes healthy -> probation
	// (2 farm failures) -> blocked (5).
	var states []string
	for i := 0; i < 10; i++ {
		out := fmt.Sprintf("q%d.o", i)
		host, r := compile(t, f, dir, "gcc", "quick.c", out, "-O2")
		if host == "broken" {
			t.Fatalf("compile %d reported as done on the broken host:\n%s", i, r.Stderr)
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, out)), want) {
			t.Fatalf("compile %d: object differs from local gcc", i)
		}
		h := testfarm.HostOf(f.Status(), "broken")
		states = append(states, fmt.Sprintf("%d:%s", h.Failures, h.State))
		want := "healthy"
		switch {
		case h.Failures >= 5:
			want = "blocked"
		case h.Failures >= 2:
			want = "probation"
		}
		if h.State != want {
			t.Fatalf("broken host with %d farm failures is %s, want %s (history %v)", h.Failures, h.State, want, states)
		}
		if h.State == "blocked" {
			if h.Tier != 0 || !strings.Contains(h.Note, "farm failures") {
				t.Fatalf("blocked host: %+v", h)
			}
			break
		}
	}
	t.Logf("broken host: %v", states)
	h := testfarm.HostOf(f.Status(), "broken")
	if h.State != "blocked" {
		t.Fatalf("broken host never blocked: %v", states)
	}
	// The block holds (the volunteer's reports do not lift it) and new
	// jobs go to the good host.
	time.Sleep(1200 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if host, r := compile(t, f, dir, "gcc", "quick.c", "after.o", "-O2"); host != "good" {
			t.Fatalf("compile after the block went to %q:\n%s", host, r.Stderr)
		}
	}
	if h := testfarm.HostOf(f.Status(), "broken"); h.State != "blocked" || !strings.Contains(h.Note, "farm failures") {
		t.Fatalf("block did not hold: %+v", h)
	}

	// Errors in the user's code are not the host's fault.
	loc := testfarm.Run(t, dir, nil, "gcc", "-c", "bad.c", "-o", "bad.o")
	for i := 0; i < 6; i++ {
		r := f.DCC(dir, "gcc", "-c", "bad.c", "-o", "bad.o")
		// The first goes to the farm (dcc then prints gcc's own
		// diagnostics by compiling here); the agent sends the rest home.
		if r.Code != loc.Code || !strings.Contains(r.Stderr, loc.Stderr) || (i == 0 && !strings.Contains(r.Stderr, "farm's compile on good printed diagnostics")) {
			t.Fatalf("compile error %d: exit %d (local %d)\n%s", i, r.Code, loc.Code, r.Stderr)
		}
	}
	g := testfarm.HostOf(f.Status(), "good")
	if g.State != "healthy" || g.Failures != 0 || g.Tier != 1 {
		t.Fatalf("compile errors moved the good host off healthy: %+v", g)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	f := newFarm(t, testfarm.Host{Name: "liar", CPUs: 2, Power: 3}, testfarm.Host{Name: "honest", CPUs: 2, Power: 1})
	f.StartBroker()
	volunteer(t, f, "liar", 2, "", "--compilers", wrapper(t, "gcc", lyingGCC))
	volunteer(t, f, "honest", 2, "", "--compilers", "gcc")
	up(f, "liar", "honest")
	dir := srcDir(t)
	want := localObject(t, "gcc", "quick.c", "-O2")
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	run := func(verify, out string) (string, testfarm.Result) {
		t.Helper()
		r := testfarm.Run(t, dir, append(f.Env("tester"), "DCC_VERIFY="+verify), dcc, "gcc", "-O2", "-c", "quick.c", "-o", out)
		if r.Code != 0 {
			t.Fatalf("DCC_VERIFY=%q: exit %d\n%s", verify, r.Code, r.Stderr)
		}
		return remoteHost(r.Stderr), r
	}

	// Unset: nothing checks; the liar's object is used (and differs).
	host, r := run("", "unchecked.o")
	if host != "liar" {
		t.Fatalf("compiled on %q, want liar:\n%s", host, r.Stderr)
	}
	if bytes.Equal(readFile(t, filepath.Join(dir, "unchecked.o")), want) {
		t.Fatal("the lying wrapper's object equals local gcc's: the test proves nothing")
	}
	if strings.Contains(r.Stderr, "verify") {
		t.Fatalf("verified without DCC_VERIFY:\n%s", r.Stderr)
	}
	if h := testfarm.HostOf(f.Status(), "liar"); h.State != "healthy" {
		t.Fatalf("liar blocked without verification: %+v", h)
	}

	// DCC_VERIFY=1: every remote object is checked. A mismatch is evidence
	// against the host, once per reporter: one user cannot take a host
	// out; two put it on probation; a third blocks it.
	runAs := func(user, out string) (string, testfarm.Result) {
		t.Helper()
		r := testfarm.Run(t, dir, append(f.Env(user), "DCC_VERIFY=1"), dcc, "gcc", "-O2", "-c", "quick.c", "-o", out)
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", user, r.Code, r.Stderr)
		}
		return remoteHost(r.Stderr), r
	}
	for i, step := range []struct{ user, state string }{{"tester", "healthy"}, {"tester", "healthy"}, {"tess", "probation"}, {"tom", "blocked"}} {
		out := fmt.Sprintf("checked%d.o", i)
		host, r = runAs(step.user, out)
		if host != "liar" || !strings.Contains(r.Stderr, "differs from a local compile") {
			t.Fatalf("report %d (%s): mismatch not detected (host %q):\n%s", i, step.user, host, r.Stderr)
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, out)), want) {
			t.Fatal("dcc did not write the local object after a mismatch")
		}
		h := waitState(f, "liar", step.state, 2*time.Second)
		if step.state == "blocked" && (h.Tier != 0 || !strings.Contains(h.Note, "DCC_VERIFY")) {
			t.Fatalf("reported host: %+v", h)
		}
	}
	if !strings.Contains(f.BrokerProc().Output(), "verification mismatch") {
		t.Fatal("the broker did not log the mismatch")
	}
	time.Sleep(1200 * time.Millisecond) // the volunteer reports again
	if h := testfarm.HostOf(f.Status(), "liar"); h.State != "blocked" || !strings.Contains(h.Note, "DCC_VERIFY") {
		t.Fatalf("block did not hold: %+v", h)
	}
	// The honest host verifies fine and stays healthy.
	host, r = run("1", "honest.o")
	if host != "honest" || !strings.Contains(r.Stderr, "matches a local compile") {
		t.Fatalf("honest compile (host %q):\n%s", host, r.Stderr)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "honest.o")), want) {
		t.Fatal("object differs from local gcc")
	}
	if h := testfarm.HostOf(f.Status(), "honest"); h.State != "healthy" {
		t.Fatalf("honest host: %+v", h)
	}
}

func TestHeterogeneousCompilers(t *testing.T) {
	t.Parallel()
	hostA := testfarm.Host{Name: "a", CPUs: 2, Power: 2}
	hostB := testfarm.Host{Name: "b", CPUs: 2, Power: 2}
	f := newFarm(t, hostA, hostB)
	f.StartBroker()
	volunteer(t, f, "a", 2, "", "--compilers", "gcc")
	volunteer(t, f, "b", 2, "", "--compilers", "clang")
	up(f, "a", "b")
	dir := srcDir(t)

	for _, c := range []struct{ compiler, host string }{{"gcc", "a"}, {"clang", "b"}} {
		want := localObject(t, c.compiler, "quick.c", "-O2")
		for i := 0; i < 6; i++ {
			out := fmt.Sprintf("%s%d.o", c.compiler, i)
			if host, r := compile(t, f, dir, c.compiler, "quick.c", out, "-O2"); host != c.host {
				t.Fatalf("dcc %s run %d compiled on %q, want %s:\n%s", c.compiler, i, host, c.host, r.Stderr)
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, out)), want) {
				t.Fatalf("dcc %s: object differs from a local compile", c.compiler)
			}
		}
	}

	// A compiler nobody offers compiles locally.
	sparc := wrapper(t, "sparc-sun-solaris2.10-gcc", `if [ "$1" = -v ]; then
  echo 'Target: sparc-sun-solaris2.10' >&2
  echo 'gcc version 12.2.0 (fake)' >&2
  exit 0
fi
exec gcc "$@"
`)
	if host, r := compile(t, f, dir, sparc, "quick.c", "sparc.o", "-O2"); host != "" || !strings.Contains(r.Stderr, "no usable host") {
		t.Fatalf("fake sparc compiler went to %q:\n%s", host, r.Stderr)
	}

	// dcc status lists which compilers each host offers.
	st := f.DCC(t.TempDir(), "status")
	if st.Code != 0 {
		t.Fatalf("dcc status: exit %d\n%s", st.Code, st.Stderr)
	}
	gccV, clangV := versionLine(t, "gcc"), versionLine(t, "clang")
	var gccLine, clangLine string
	for _, l := range strings.Split(st.Stdout, "\n") {
		switch {
		case strings.Contains(l, gccV):
			gccLine = l
		case strings.Contains(l, clangV):
			clangLine = l
		}
	}
	if hosts := lastField(gccLine); hosts != "a" {
		t.Fatalf("status lists gcc on %q, want a:\n%s", hosts, st.Stdout)
	}
	if hosts := lastField(clangLine); hosts != "b" {
		t.Fatalf("status lists clang on %q, want b:\n%s", hosts, st.Stdout)
	}

	// targets=sparc-sun-solaris2.10 on a: it serves no x86 gcc jobs any more.
	n := strings.Count(f.BrokerProc().Output(), "farm file reloaded")
	hostA.Extra = "targets=sparc-sun-solaris2.10"
	f.WriteFarm(hostA, hostB)
	f.WaitStatus(func(*status.Doc) bool {
		return strings.Count(f.BrokerProc().Output(), "farm file reloaded") > n
	}, 5*time.Second, "farm file reload")
	for i := 0; i < 3; i++ {
		if host, r := compile(t, f, dir, "gcc", "quick.c", "t.o", "-O2"); host != "" || !strings.Contains(r.Stderr, "no usable host") {
			t.Fatalf("x86 gcc job went to %q with a restricted to sparc:\n%s", host, r.Stderr)
		}
	}
	if host, r := compile(t, f, dir, "clang", "quick.c", "t.o", "-O2"); host != "b" {
		t.Fatalf("clang job went to %q:\n%s", host, r.Stderr)
	}
}

// versionLine is the line of `compiler -v` that names its version.
func versionLine(t *testing.T, compiler string) string {
	t.Helper()
	out, _ := exec.Command(compiler, "-v").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "version ") && !strings.HasPrefix(l, "Configured") {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("%s -v names no version:\n%s", compiler, out)
	return ""
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
