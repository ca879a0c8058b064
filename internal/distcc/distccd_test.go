package distcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run Debian's distccd (package distcc, from scripts/deps.sh)
// on a loopback port and compare what comes back with the same compile
// run locally.

// syncBuffer collects distccd's log, written by the daemon's processes
// through one pipe.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type daemon struct {
	addr string
	log  *syncBuffer
}

// count is the number of log lines containing s.
func (d *daemon) count(s string) int { return strings.Count(d.log.String(), s) }

// openDir returns a fresh directory that distccd can read: run by root it
// drops to "distcc" or "nobody", which t.TempDir's 0700 keeps out.
func openDir(t testing.TB) string {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startDistccd starts distccd --daemon on a free loopback port with env
// added to the test's environment, and stops it (its whole process group)
// when the test ends. allow is its --allow address.
func startDistccd(t testing.TB, allow string, env ...string) *daemon {
	t.Helper()
	if _, err := exec.LookPath("distccd"); err != nil {
		t.Fatalf("distccd is not installed (scripts/deps.sh installs package distcc): %v", err)
	}
	// distccd cannot be given port 0, so a free port is found first; if
	// another process takes it in between, distccd fails to bind and we
	// try another.
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		log := &syncBuffer{}
		cmd := exec.Command("distccd", "--daemon", "--no-detach",
			"--allow", allow, "--listen", "127.0.0.1", "--port", strconv.Itoa(port),
			"--log-stderr", "--log-level", "info", "--jobs", "4")
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = log, log
		// Its own process group: on SIGTERM distccd's parent signals
		// its whole group (kill(0, ...)), which must not be ours.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			<-exited
		}
		ready := false
		waitFor(t, "distccd to start", func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			ready = strings.Contains(log.String(), "daemon started")
			return ready
		})
		if ready {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("distccd log:\n%s", log.String())
				}
			})
			return &daemon{addr: fmt.Sprintf("127.0.0.1:%d", port), log: log}
		}
		stop()
		if attempt == 4 || !strings.Contains(log.String(), "bind") {
			t.Fatalf("distccd exited at start:\n%s", log.String())
		}
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// farmHost is a distccd configured like a team's host, except that its
// allowed compilers come from DISTCC_CMDLIST (a file the test writes)
// rather than the masquerade links in /usr/lib/distcc, so the test needs
// nothing installed beyond the packages. Besides the real compilers, the
// list holds wrappers the test controls.
type farmHost struct {
	*daemon
	dir string // readable by distccd; holds the wrappers
	// marks is writable by everyone: the wrappers leave files there.
	marks string
}

func startFarmHost(t testing.TB) *farmHost {
	dir := openDir(t)
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(marks, 0o777) // past the umask
	var list []string
	for _, c := range []string{"gcc", "g++", "clang"} {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Fatalf("%s: %v (scripts/deps.sh installs it)", c, err)
		}
		list = append(list, p)
	}
	gcc := list[0]
	wrappers := map[string]string{
		// Killed by a signal, as a crashing cc1 would be.
		"killcc": "#!/bin/sh\nkill -SEGV $$\n",
		// Held until the test releases it: a compile long by
		// construction. It marks that it started, then waits.
		"holdcc": fmt.Sprintf("#!/bin/sh\ntouch %[1]s/held.$$\nwhile [ ! -e %[1]s/release ]; do sleep 0.02; done\nexec %[2]s \"$@\"\n", marks, gcc),
	}
	for name, script := range wrappers {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		list = append(list, p)
	}
	// Listed but absent: distccd's exec fails on the host.
	list = append(list, filepath.Join(dir, "ghostcc"))
	cmdlist := filepath.Join(dir, "cmdlist")
	if err := os.WriteFile(cmdlist, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Release any held compile at the end, whatever happened: a held
	// wrapper runs in its own process group and would outlive distccd.
	t.Cleanup(func() { os.WriteFile(filepath.Join(marks, "release"), nil, 0o644) })
	d := startDistccd(t, "127.0.0.1", "DISTCC_CMDLIST="+cmdlist)
	return &farmHost{daemon: d, dir: dir, marks: marks}
}

func (h *farmHost) held() int {
	m, _ := filepath.Glob(filepath.Join(h.marks, "held.*"))
	return len(m)
}

// preprocess writes src as name in a fresh directory, runs the compiler
// with -E there and deletes the source, so that neither the local nor the
// remote compile can show source lines from it: both see only the
// linemarkers, as a farm host sees a client's file.
func preprocess(t testing.TB, compiler, name, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(compiler, "-E", name)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -E %s: %v", compiler, name, err)
	}
	os.Remove(filepath.Join(dir, name))
	return out
}

// localCompile runs the compile the job describes on this machine, with
// the same arguments, and returns exit code, stdout, stderr and output.
func localCompile(t *testing.T, job Job) (int, []byte, []byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "local"+job.Ext)
	if err := os.WriteFile(in, job.Source, 0o644); err != nil {
		t.Fatal(err)
	}
	action := map[string]string{".o": "-c", ".s": "-S"}[job.Kind]
	out := filepath.Join(dir, "local"+job.Kind)
	args := append(append([]string{}, job.Args...), action, in, "-o", out)
	cmd := exec.Command(job.Compiler, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	obj, _ := os.ReadFile(out)
	if code != 0 {
		obj = nil
	}
	return code, stdout.Bytes(), stderr.Bytes(), obj
}

const (
	cClean = `#include <string.h>
int count(const char *s, char c) { int n = 0; for (; *s; s++) n += *s == c; return n; }
size_t twice(const char *s) { return 2 * strlen(s); }
`
	cWarn = `#include <stdio.h>
int main(void) { int x; printf("%d\n", x); return 0; }
static int unused(int y) { return y; }
`
	cError = `int f(void) { return 1 }
int g(void) { undeclared(); return missing; }
`
	cxxClean = `#include <vector>
#include <numeric>
template <typename T> T sum(const std::vector<T>& v) { return std::accumulate(v.begin(), v.end(), T{}); }
int total() { std::vector<int> v{1, 2, 3}; return sum(v); }
`
	cxxWarn = `#include <string>
int size(const std::string& s, int unused) { int copy = s.size(); return copy; }
bool cmp(int a, unsigned b) { return a < b; }
`
)

// TestCompileMatchesLocal is the point of the package: a compile through
// a stock distccd gives the object, stderr and exit code of the same
// compile run here.
func TestCompileMatchesLocal(t *testing.T) {
	h := startFarmHost(t)
	cases := []struct {
		name     string
		compiler string
		file     string
		src      string
		args     []string
		kind     string
		wantExit int
		wantErr  bool // stderr non-empty
	}{
		{"c clean", "gcc", "clean.c", cClean, []string{"-O2"}, ".o", 0, false},
		{"c warnings", "gcc", "warn.c", cWarn, []string{"-O2", "-Wall", "-Wextra"}, ".o", 0, true},
		{"c error", "gcc", "bad.c", cError, []string{"-O2", "-Wall"}, ".o", 1, true},
		{"c assembly", "gcc", "clean.c", cClean, []string{"-O1"}, ".s", 0, false},
		{"c++ clean", "g++", "sum.cc", cxxClean, []string{"-O2", "-std=c++17"}, ".o", 0, false},
		{"c++ warnings", "g++", "warn.cc", cxxWarn, []string{"-O1", "-Wall", "-Wextra"}, ".o", 0, true},
		{"clang warnings", "clang", "warn.c", cWarn, []string{"-O2", "-Wall"}, ".o", 0, true},
	}
	ok, failed := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext := ".i"
			if tc.compiler == "g++" {
				ext = ".ii"
			}
			job := Job{Compiler: tc.compiler, Args: tc.args, Kind: tc.kind, Ext: ext,
				Source: preprocess(t, tc.compiler, tc.file, tc.src)}
			res, err := Compile(context.Background(), h.addr, job, Limits{})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			code, stdout, stderr, obj := localCompile(t, job)
			if res.ExitCode != code || code != tc.wantExit {
				t.Errorf("exit: remote %d, local %d, want %d", res.ExitCode, code, tc.wantExit)
			}
			if !bytes.Equal(res.Stderr, stderr) {
				t.Errorf("stderr differs:\nremote:\n%s\nlocal:\n%s", res.Stderr, stderr)
			}
			if (len(stderr) > 0) != tc.wantErr {
				t.Errorf("local stderr %q: want non-empty %v (the case tests nothing)", stderr, tc.wantErr)
			}
			if !bytes.Equal(res.Stdout, stdout) {
				t.Errorf("stdout differs: remote %q, local %q", res.Stdout, stdout)
			}
			if !bytes.Equal(res.Object, obj) {
				t.Errorf("object differs: remote %d bytes, local %d bytes", len(res.Object), len(obj))
			}
			if code == 0 && len(obj) == 0 {
				t.Errorf("local compile produced nothing")
			}
			if res.Wall <= 0 {
				t.Errorf("Wall %v", res.Wall)
			}
		})
		if tc.wantExit == 0 {
			ok++
		} else {
			failed++
		}
	}
	// distccd logs its verdict after sending the reply.
	waitFor(t, "distccd's COMPILE_OK lines", func() bool {
		return h.count("COMPILE_OK") == ok && h.count("COMPILE_ERROR") == failed
	})
}

// TestStockWhitelist uses distccd exactly as Debian configures it: the
// compilers it runs are the masquerade links in /usr/lib/distcc that the
// package's postinst (update-distcc-symlinks) makes for every installed
// gcc and clang.
func TestStockWhitelist(t *testing.T) {
	if _, err := os.Stat("/usr/lib/distcc/gcc"); err != nil {
		t.Fatalf("/usr/lib/distcc/gcc missing (run update-distcc-symlinks): %v", err)
	}
	d := startDistccd(t, "127.0.0.1")
	src := preprocess(t, "gcc", "clean.c", cClean)
	job := Job{Compiler: "gcc", Args: []string{"-O2", "-Wall"}, Kind: ".o", Ext: ".i", Source: src}
	res, err := Compile(context.Background(), d.addr, job, Limits{})
	if err != nil {
		t.Fatalf("gcc: %v", err)
	}
	code, _, stderr, obj := localCompile(t, job)
	if res.ExitCode != 0 || code != 0 || !bytes.Equal(res.Object, obj) || !bytes.Equal(res.Stderr, stderr) {
		t.Fatalf("gcc: remote exit %d, %d object bytes, stderr %q; local exit %d, %d bytes, stderr %q",
			res.ExitCode, len(res.Object), res.Stderr, code, len(obj), stderr)
	}
	// A name with no masquerade link is refused by closing the connection.
	_, err = Compile(context.Background(), d.addr, Job{Compiler: "sh", Kind: ".o", Ext: ".i", Source: src}, Limits{})
	if !errors.Is(err, ErrRefused) || !IsHostFault(err) {
		t.Fatalf("sh: %v, want ErrRefused", err)
	}
	waitFor(t, "the whitelist refusal in the log", func() bool { return d.count("sh not in") == 1 })
}

// TestRefusals covers the ways a real distccd says no: all are
// KindRefused (no reply at all), quickly.
func TestRefusals(t *testing.T) {
	h := startFarmHost(t)
	src := preprocess(t, "gcc", "clean.c", cClean)

	t.Run("compiler not listed", func(t *testing.T) {
		_, err := Compile(context.Background(), h.addr, Job{Compiler: "cc1", Kind: ".o", Ext: ".i", Source: src}, Limits{})
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want ErrRefused", err)
		}
		waitFor(t, "the refusal in the log", func() bool { return h.count("lookup of cc1 in DISTCC_CMDLIST failed") == 1 })
	})

	t.Run("client not allowed", func(t *testing.T) {
		d := startDistccd(t, "127.0.0.2")
		_, err := Compile(context.Background(), d.addr, Job{Compiler: "gcc", Kind: ".o", Ext: ".i", Source: src}, Limits{})
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want ErrRefused", err)
		}
	})

	// Why Job refuses Ext ".s": sent anyway (bypassing Job's check), the
	// real distccd finds "no visible input file" and hangs up.
	t.Run("assembly source", func(t *testing.T) {
		if _, err := (&Job{Compiler: "gcc", Kind: ".o", Ext: ".s"}).argv(); !errors.Is(err, ErrBadJob) {
			t.Fatalf("Job with Ext .s: %v, want ErrBadJob", err)
		}
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		dc := &deadlineConn{conn: conn, end: time.Now().Add(time.Minute), stall: time.Minute}
		_, err = exchange(dc, []string{"gcc", "-c", "dcc.s", "-o", "dcc.o"}, []byte("\t.text\n"), Limits{}.withDefaults())
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want ErrRefused", err)
		}
		waitFor(t, "the refusal in the log", func() bool { return h.count("no visible input file") == 1 })
	})
}

// TestRemoteFailures: a compiler killed by a signal and a compiler that
// cannot be run are errors, not exit codes.
func TestRemoteFailures(t *testing.T) {
	h := startFarmHost(t)
	src := preprocess(t, "gcc", "clean.c", cClean)

	res, err := Compile(context.Background(), h.addr, Job{Compiler: "killcc", Kind: ".o", Ext: ".i", Source: src}, Limits{})
	if !errors.Is(err, ErrRemote) || res != nil || !strings.Contains(err.Error(), "signal 11") {
		t.Fatalf("killcc: %+v, %v; want ErrRemote for signal 11", res, err)
	}

	res, err = Compile(context.Background(), h.addr, Job{Compiler: "ghostcc", Kind: ".o", Ext: ".i", Source: src}, Limits{})
	if !errors.Is(err, ErrRemote) || res != nil || !strings.Contains(err.Error(), "compiler missing") {
		t.Fatalf("ghostcc: %+v, %v; want ErrRemote for a missing compiler", res, err)
	}
}

// TestCancelKillsRemoteJob: cancelling the context closes the connection
// at once, and distccd, seeing the client gone, kills the compiler.
func TestCancelKillsRemoteJob(t *testing.T) {
	h := startFarmHost(t)
	src := preprocess(t, "gcc", "clean.c", cClean)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Compile(ctx, h.addr, Job{Compiler: "holdcc", Kind: ".o", Ext: ".i", Source: src}, Limits{})
		errc <- err
	}()
	waitFor(t, "the compile to be held on the host", func() bool { return h.held() == 1 })
	cancel()
	err := <-errc
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) || IsHostFault(err) {
		t.Fatalf("got %v, want ErrCanceled wrapping context.Canceled", err)
	}
	waitFor(t, "distccd to kill the job", func() bool { return h.count("Client fd disconnected, killing job") == 1 })
}

// TestIOTimeout: a compile that outlives IOTimeout (held, so long by
// construction) fails with ErrTimeout; released, the next one succeeds.
func TestIOTimeout(t *testing.T) {
	h := startFarmHost(t)
	src := preprocess(t, "gcc", "clean.c", cClean)
	job := Job{Compiler: "holdcc", Args: []string{"-O2"}, Kind: ".o", Ext: ".i", Source: src}
	_, err := Compile(context.Background(), h.addr, job, Limits{IOTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || !IsHostFault(err) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	os.WriteFile(filepath.Join(h.marks, "release"), nil, 0o644)
	res, err := Compile(context.Background(), h.addr, job, Limits{})
	if err != nil || res.ExitCode != 0 || len(res.Object) == 0 {
		t.Fatalf("released: %+v, %v", res, err)
	}
}
