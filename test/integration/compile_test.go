// Package integration runs the real broker, volunteer and dcc binaries on
// loopback with a real compiler and checks what a user of distcc would:
// objects identical to a local compile, diagnostics and exit codes passed
// through, local fallback whenever the farm cannot serve.
package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

var sources = map[string]string{
	"util.h": "#pragma once\n#define SQUARE(x) ((x) * (x))\nint helper(int);\n",
	"plain.c": `#include <stdio.h>
#include "util.h"
int helper(int v) { return SQUARE(v) + 1; }
int main(void) { printf("%d\n", helper(3)); return 0; }
`,
	"warn.c": `#include "util.h"
int f(int a) { int unused; return SQUARE(a); }
`,
	"bad.c": `int g(void) { return undefined_symbol + 1; }
`,
	"deps.c": `#include "util.h"
#include <string.h>
int h(const char *s) { return (int)strlen(s) + helper(2); }
`,
	"cxx.cpp": `#include <vector>
#include <string>
#include "util.h"
std::string join(const std::vector<std::string>& v) { std::string r; for (auto& s : v) r += s; return r; }
int sq(int x) { return SQUARE(x); }
`,
}

func writeSources(t *testing.T, dir string) {
	t.Helper()
	for name, text := range sources {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startFarm starts a broker and two volunteers.
func startFarm(t *testing.T) *testfarm.Farm {
	t.Helper()
	f := testfarm.New(t, testfarm.Host{Name: "fast", CPUs: 2, Power: 3}, testfarm.Host{Name: "slow", CPUs: 2, Power: 1})
	f.StartBroker()
	f.StartVolunteer("fast", 2)
	f.StartVolunteer("slow", 2)
	f.WaitHosts("fast", "slow")
	return f
}

var remoteRe = regexp.MustCompile(`compiled (\S+) on (\S+) \(tier`)

// remoteHost returns the host a dcc run compiled on, or "" if it was local.
func remoteHost(stderr string) string {
	if m := remoteRe.FindStringSubmatch(stderr); m != nil {
		return m[2]
	}
	return ""
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stripDebug returns the object without debug sections.
func stripDebug(t *testing.T, obj string) []byte {
	t.Helper()
	out := obj + ".stripped"
	if b, err := exec.Command("objcopy", "--strip-debug", obj, out).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v %s", err, b)
	}
	return readFile(t, out)
}

func TestObjectsIdenticalToLocal(t *testing.T) {
	f := startFarm(t)
	cases := []struct {
		name     string
		compiler string
		src      string
		flags    []string
	}{
		{"c-O2", "gcc", "plain.c", []string{"-O2"}},
		{"c-deps", "gcc", "deps.c", []string{"-O2", "-MD", "-MF", "deps.d"}},
		{"c-MMD-default", "gcc", "deps.c", []string{"-MMD"}},
		{"cxx", "g++", "cxx.cpp", []string{"-O2", "-std=c++17"}},
		{"c-g", "gcc", "plain.c", []string{"-g", "-O0"}},
		{"cxx-g", "g++", "cxx.cpp", []string{"-g", "-O2"}},
		{"cc-driver", "cc", "plain.c", []string{"-Os"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			localDir, remoteDir := t.TempDir(), t.TempDir()
			writeSources(t, localDir)
			writeSources(t, remoteDir)
			obj := strings.TrimSuffix(tc.src, filepath.Ext(tc.src)) + ".o"
			args := append(append([]string{}, tc.flags...), "-c", tc.src, "-o", obj)
			loc := testfarm.Run(t, localDir, nil, tc.compiler, args...)
			rem := f.DCC(remoteDir, append([]string{tc.compiler}, args...)...)
			if loc.Code != 0 || rem.Code != 0 {
				t.Fatalf("exit local %d remote %d\nlocal stderr: %s\ndcc stderr: %s", loc.Code, rem.Code, loc.Stderr, rem.Stderr)
			}
			if h := remoteHost(rem.Stderr); h == "" {
				t.Fatalf("did not compile remotely:\n%s", rem.Stderr)
			}
			lo, ro := filepath.Join(localDir, obj), filepath.Join(remoteDir, obj)
			debug := false
			for _, fl := range tc.flags {
				debug = debug || strings.HasPrefix(fl, "-g")
			}
			if !debug {
				if !bytes.Equal(readFile(t, lo), readFile(t, ro)) {
					t.Fatalf("object differs from local compile")
				}
			} else {
				if !bytes.Equal(stripDebug(t, lo), stripDebug(t, ro)) {
					t.Fatalf("code differs from local compile once debug info is stripped")
				}
				info, err := exec.Command("readelf", "--debug-dump=info", ro).CombinedOutput()
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(info), remoteDir) {
					t.Fatalf("debug info does not name the source directory %s (DW_AT_comp_dir)", remoteDir)
				}
				if !strings.Contains(string(info), tc.src) {
					t.Fatalf("debug info does not name the source file %s", tc.src)
				}
			}
			// Dependency files must be what a local compile writes (paths differ only by directory).
			for _, d := range []string{"deps.d"} {
				lb, lerr := os.ReadFile(filepath.Join(localDir, d))
				rb, rerr := os.ReadFile(filepath.Join(remoteDir, d))
				if (lerr == nil) != (rerr == nil) {
					t.Fatalf("dependency file %s: local %v, dcc %v", d, lerr, rerr)
				}
				if lerr == nil && !bytes.Equal(bytes.ReplaceAll(lb, []byte(localDir), []byte(remoteDir)), rb) {
					t.Fatalf("dependency file differs:\nlocal:\n%s\ndcc:\n%s", lb, rb)
				}
			}
		})
	}
}

// TestCompileErrorIsReturnedNotRetried: a real compile error is the
// user's, not the farm's: it is not tried on another host and does not
// count against the host. gcc's diagnostics from preprocessed text are not
// local gcc's, so dcc prints them by compiling here (exactly local gcc's
// stderr and exit code), and the next build of the file goes there at once.
func TestCompileErrorIsReturnedNotRetried(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	loc := testfarm.Run(t, dir, nil, "gcc", "-c", "bad.c", "-o", "bad.o")
	for build := 1; build <= 2; build++ {
		rem := f.DCC(dir, "gcc", "-c", "bad.c", "-o", "bad.o")
		if loc.Code == 0 || rem.Code != loc.Code {
			t.Fatalf("build %d: exit codes: local %d, dcc %d", build, loc.Code, rem.Code)
		}
		if stripDCC(rem.Stderr) != loc.Stderr {
			t.Fatalf("build %d: diagnostics differ from local gcc's:\n--- local\n%s--- dcc\n%s", build, loc.Stderr, rem.Stderr)
		}
		if strings.Contains(rem.Stderr, "asking for a host other than") {
			t.Fatalf("build %d: a real compile error was tried on another host:\n%s", build, rem.Stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "bad.o")); err == nil {
			t.Fatal("an object was written for a failed compile")
		}
	}
	d := f.WaitStatus(func(d *status.Doc) bool { return farmJobs(d) == 1 }, 5*time.Second, "one farm compile, then local")
	for _, h := range d.Hosts {
		if h.Failures != 0 || h.State != "healthy" {
			t.Fatalf("a compile error counted against host %s: %+v", h.Name, h)
		}
	}
}

func TestPreprocessorErrorIsReturned(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "noinc.c"), []byte("#include \"missing.h\"\nint x;\n"), 0o644)
	loc := testfarm.Run(t, dir, nil, "gcc", "-c", "noinc.c")
	rem := f.DCC(dir, "gcc", "-c", "noinc.c")
	if loc.Code == 0 || rem.Code != loc.Code || !strings.Contains(rem.Stderr, "missing.h") {
		t.Fatalf("local %d, dcc %d: %s", loc.Code, rem.Code, rem.Stderr)
	}
}

// TestEarlyJobWithdrawn: the volunteer starts the compiler of an early
// job (docs/protocol.md) while dcc still preprocesses; when preprocessing
// then fails, dcc reports gcc's error as is, the volunteer's waiting
// compiler is cancelled without counting against the host, the lease
// comes back, and the next compile goes to the farm early again. The
// client's gcc is a gate, so the preprocessor is held until the farm has
// started the compiler: by construction, not by how fast anything runs.
func TestEarlyJobWithdrawn(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	os.WriteFile(filepath.Join(dir, "noinc.c"), []byte("#include \"missing.h\"\nint x;\n"), 0o644)
	gate := testfarm.NewGate(t, "gcc")
	loc := testfarm.Run(t, dir, nil, "gcc", "-c", "noinc.c")

	cmd := exec.Command(filepath.Join(testfarm.Bin(t), "dcc"), gate.Path, "-c", "noinc.c")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), f.Env("tester")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gate.WaitHeld(t, 1, 30*time.Second) // gcc -E, held
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The volunteer's job directory holds the pipe its compiler waits on.
		if m, _ := filepath.Glob(filepath.Join(f.Dir, "dccjob-*", "noinc.i")); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no early job started on the farm:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	gate.Open()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != loc.Code || loc.Code == 0 {
		t.Fatalf("dcc: %v, local gcc exit %d\n%s", err, loc.Code, stderr.String())
	}
	if got := stripDCC(stderr.String()); got != loc.Stderr {
		t.Fatalf("preprocessor error differs from local gcc's:\n--- local\n%s--- dcc\n%s", loc.Stderr, got)
	}
	d := f.WaitStatus(func(d *status.Doc) bool { return d.Leases == 0 && d.Busy == 0 }, 10*time.Second, "the withdrawn job's lease back")
	for _, h := range d.Hosts {
		if h.Failures != 0 || h.State != "healthy" {
			t.Fatalf("a withdrawn early job counted against host %s: %+v", h.Name, h)
		}
	}
	// The volunteer kills the waiting compiler and removes its directory
	// (the lease may come back first).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(f.Dir, "dccjob-*"))
		if len(m) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job directories left: %v", m)
		}
	}
	rem := f.DCC(dir, "gcc", "-O2", "-c", "plain.c")
	if rem.Code != 0 || remoteHost(rem.Stderr) == "" || !strings.Contains(rem.Stderr, "job header sent early") {
		t.Fatalf("the next compile did not go to the farm early:\n%s", rem.Stderr)
	}
}

// TestWithdrawnJobsLeaveTheSlotFree: cache hits withdraw their early jobs
// (the job's header went out while dcc preprocessed, on a slot that was
// free); other compiles run beside them on the same two slots, which the
// broker grants again the moment a lease comes back. The agent returns a
// withdrawn job's lease only once the host has freed the slot, so no
// grant finds the slot busy and the host stays healthy with no failures.
// (Before, about one grant in thirty after a hit was refused as busy.)
func TestWithdrawnJobsLeaveTheSlotFree(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "one", CPUs: 16, Power: 2, Extra: "slots=2"})
	f.StartBroker("--cache-size", "64MiB")
	f.StartVolunteer("one", 2)
	f.WaitHosts("one")
	dir := t.TempDir()
	writeSources(t, dir)
	if r := f.DCC(dir, "gcc", "-O2", "-c", "plain.c", "-o", "warm.o"); r.Code != 0 || remoteHost(r.Stderr) == "" {
		t.Fatalf("first compile: %+v", r)
	}
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	errs := make(chan string, 64)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				env := f.Env("tester")
				src, out := "plain.c", fmt.Sprintf("hit%d.o", w) // a cache hit
				if w > 1 {
					env = append(env, "DCC_CACHE=0") // the farm compiles it
					src, out = "deps.c", fmt.Sprintf("d%d.o", w)
				}
				if r := testfarm.Run(t, dir, env, dcc, "gcc", "-O2", "-c", src, "-o", out); r.Code != 0 {
					errs <- r.Stderr
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a compile failed:\n%s", e)
	}
	d := f.Status()
	for _, h := range d.Hosts {
		if h.Failures != 0 || h.State != "healthy" {
			t.Fatalf("host %s after withdrawn jobs: %+v", h.Name, h)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(f.Dir, "volunteer-one.log")); bytes.Contains(b, []byte("slots busy")) {
		t.Fatal("the host refused a granted job as busy")
	}
}

// TestRelativeCompilerPath: a compiler named by a relative path
// (CC=./tools/gcc) goes to the farm like any other; the agent, which runs
// elsewhere, gets the file it names.
func TestRelativeCompilerPath(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "tools"), 0o755)
	if err := os.Symlink(gcc, filepath.Join(dir, "tools", "gcc")); err != nil {
		t.Fatal(err)
	}
	rem := f.DCC(dir, "./tools/gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if rem.Code != 0 || remoteHost(rem.Stderr) == "" {
		t.Fatalf("dcc ./tools/gcc did not compile on the farm:\n%s", rem.Stderr)
	}
}

func TestLocalOnlyCommandsStayLocal(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	for _, args := range [][]string{
		{"gcc", "-E", "plain.c"},
		{"gcc", "-march=native", "-c", "plain.c"},
		{"gcc", "plain.c", "-o", "prog"}, // a link
		{"gcc", "-fprofile-arcs", "-c", "plain.c"},
	} {
		r := f.DCC(dir, args...)
		if r.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.Code, r.Stderr)
		}
		if remoteHost(r.Stderr) != "" || !strings.Contains(r.Stderr, "local:") {
			t.Fatalf("%v should have stayed local:\n%s", args, r.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "prog")); err != nil {
		t.Fatal("link did not produce the program")
	}
}

func TestNoBrokerFallsBackLocally(t *testing.T) {
	dir := t.TempDir()
	writeSources(t, dir)
	f := testfarm.New(t, testfarm.Host{Name: "x", CPUs: 1, Power: 1}) // broker never started
	r := f.DCC(dir, "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if r.Code != 0 || !strings.Contains(r.Stderr, "compiling locally") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	loc := t.TempDir()
	writeSources(t, loc)
	testfarm.Run(t, loc, nil, "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if !bytes.Equal(readFile(t, filepath.Join(dir, "plain.o")), readFile(t, filepath.Join(loc, "plain.o"))) {
		t.Fatal("fallback object differs")
	}
}

// TestForeignOrMissingCredentialCompilesLocally: without a credential of
// this farm (another farm's, or none at all), dcc gets nothing from the
// farm, says why once, and still compiles locally.
func TestForeignOrMissingCredentialCompilesLocally(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	other, err := testfarm.Enroll(filepath.Join(t.TempDir(), "other-farm"), "user", "mallory", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, cred := range map[string]string{"another farm's": other, "missing": filepath.Join(dir, "no-such.pem")} {
		env := append(f.Env("mallory"), "DCC_IDENTITY="+cred)
		r := testfarm.Run(t, dir, env, filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-c", "plain.c", "-o", "plain.o")
		if r.Code != 0 || remoteHost(r.Stderr) != "" || !strings.Contains(r.Stderr, "compiling locally") {
			t.Fatalf("%s credential: exit %d:\n%s", name, r.Code, r.Stderr)
		}
	}
	d := f.Status()
	for _, h := range d.Hosts {
		if h.JobsDone != 0 {
			t.Fatalf("host %s ran %d jobs for a client without a credential of the farm", h.Name, h.JobsDone)
		}
	}
	for _, u := range d.Users {
		if u.Name == "mallory" {
			t.Fatal("a user without a credential of the farm appears in the broker's users")
		}
	}
}

func TestMasqueradeSymlinkAndLauncherForms(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	masq := t.TempDir()
	for _, n := range []string{"gcc", "cc", "g++"} {
		if err := os.Symlink(filepath.Join(testfarm.Bin(t), "dcc"), filepath.Join(masq, n)); err != nil {
			t.Fatal(err)
		}
	}
	env := append(f.Env("tester"), "PATH="+masq+":"+os.Getenv("PATH"))
	// masquerade: "gcc" on PATH is dcc; dcc must find the real gcc behind it.
	r := testfarm.Run(t, dir, env, filepath.Join(masq, "gcc"), "-O2", "-c", "plain.c", "-o", "m.o")
	if r.Code != 0 || remoteHost(r.Stderr) == "" {
		t.Fatalf("masquerade: exit %d:\n%s", r.Code, r.Stderr)
	}
	// `dcc gcc` with the masquerade dir first on PATH must not recurse.
	r = testfarm.Run(t, dir, env, filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-O2", "-c", "plain.c", "-o", "d.o")
	if r.Code != 0 || remoteHost(r.Stderr) == "" {
		t.Fatalf("dcc gcc under masquerade PATH: exit %d:\n%s", r.Code, r.Stderr)
	}
	// CMAKE_C_COMPILER_LAUNCHER form: dcc /abs/path/to/cc ARGS
	cc, _ := exec.LookPath("cc")
	r = f.DCC(dir, cc, "-O2", "-c", "plain.c", "-o", "l.o")
	if r.Code != 0 || remoteHost(r.Stderr) == "" {
		t.Fatalf("launcher form: exit %d:\n%s", r.Code, r.Stderr)
	}
	a, b, c := readFile(t, filepath.Join(dir, "m.o")), readFile(t, filepath.Join(dir, "d.o")), readFile(t, filepath.Join(dir, "l.o"))
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatal("objects differ between invocation forms")
	}
}

func TestUnknownCompilerFingerprintCompilesLocally(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	// A "cross compiler" whose identity no volunteer offers.
	fake := filepath.Join(dir, "sparc-gcc")
	script := "#!/bin/sh\nif [ \"$1\" = -v ]; then echo 'Target: sparc-sun-solaris2.10' >&2; echo 'gcc version 12.2.0 (fake sparc)' >&2; exit 0; fi\nexec gcc \"$@\"\n"
	os.WriteFile(fake, []byte(script), 0o755)
	r := f.DCC(dir, fake, "-c", "plain.c", "-o", "plain.o")
	if r.Code != 0 || remoteHost(r.Stderr) != "" || !strings.Contains(r.Stderr, "no usable host offers") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
}
