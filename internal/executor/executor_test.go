package executor

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
	"syscall"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/sandbox"
	"golang.org/x/sys/unix"
)

// The test binary is the sandbox helper: package sandbox handles its
// re-execution as `executor.test __sandbox` in an init function, so
// Limits.Sandbox.Helper stays "" (this executable) as in the volunteer.

// fake writes a shell script standing in for a compiler, in a directory of
// its own (the sandbox lets a script compiler run what is beside it).
func fake(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fakecc")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func job(compiler, parent string) Job {
	return Job{Compiler: compiler, Ext: ".i", Kind: ".o", Source: []byte("int x;\n"), Name: "../../etc/x", TempDir: parent}
}

// writeOut sets $last to the script's last argument, the output file.
const writeOut = `for a; do last=$a; done; `

// gate is a fifo a fake compiler blocks on (`read x < path`) until the
// test releases it: long jobs are long by construction, not by size.
type gate struct{ dir, path string }

func newGate(t *testing.T, lim *Limits) *gate {
	t.Helper()
	g := &gate{dir: t.TempDir()}
	g.path = filepath.Join(g.dir, "gate")
	if err := unix.Mkfifo(g.path, 0o600); err != nil {
		t.Fatal(err)
	}
	// The fifo's directory is one an admin added: readable, not writable.
	lim.Sandbox.ReadDirs = append(lim.Sandbox.ReadDirs, g.dir)
	return g
}

// release opens the fifo for writing (which waits for the compiler to
// open it for reading) and closes it, ending the compiler's read.
func (g *gate) release(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(g.path, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString("go\n")
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the compiler never opened the gate")
	}
}

type outcome struct {
	res *Result
	err error
}

// start runs j in the background and returns the compiler's process
// group id once it runs, and the channel with Run's outcome.
func start(t *testing.T, ctx context.Context, j Job, lim Limits) (int, <-chan outcome) {
	t.Helper()
	pgid := make(chan int, 1)
	j.OnStart = func(p int) { pgid <- p }
	done := make(chan outcome, 1)
	go func() {
		res, err := Run(ctx, j, lim)
		done <- outcome{res, err}
	}()
	select {
	case p := <-pgid:
		return p, done
	case o := <-done:
		t.Fatalf("job ended before it started: %+v %v", o.res, o.err)
	case <-time.After(time.Minute):
		t.Fatal("the compiler did not start")
	}
	return 0, nil
}

func wait(t *testing.T, done <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(time.Minute):
		t.Fatal("Run did not return")
	}
	return outcome{}
}

func gone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("job directory %s left behind (%v)", dir, err)
	}
}

// procField returns field n (1-based, as in proc(5)) of /proc/pid/stat.
func procField(t *testing.T, pid, n int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which may hold spaces, start at 3.
	rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return rest[n-3]
}

// TestSandboxedJob: the compiler runs in a fresh private directory under
// TempDir with the source inside it, under the limits and niceness from
// its first instruction (seen from outside while it waits at the gate,
// and from inside), with a clean environment, writing only there; the
// directory is gone afterwards.
func TestSandboxedJob(t *testing.T) {
	parent := t.TempDir()
	lim := DefaultLimits()
	lim.Nice, lim.CPU, lim.Memory, lim.FileSize, lim.Procs = 7, 30*time.Second, 1<<30, 1<<20, 1000
	g := newGate(t, &lim)
	cc := fake(t, writeOut+`read x < `+g.path+`
{ pwd; ls | tr '\n' ' '; echo; nice; ulimit -t; ulimit -v; ulimit -f; ulimit -c; ulimit -p; echo "$HOME"; echo "$TMPDIR"; env | sort | tr '\n' ' '; } > "$last"`)
	pgid, done := start(t, context.Background(), job(cc, parent), lim)

	dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pgid))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != parent || !strings.HasPrefix(filepath.Base(dir), "dccjob-") {
		t.Fatalf("runs in %s, not a private directory under %s", dir, parent)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("job directory %v %v", fi.Mode(), err)
	}
	if nice := procField(t, pgid, 19); nice != "7" {
		t.Errorf("niceness %s at start, want 7", nice)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pgid))
	if err != nil {
		t.Fatal(err)
	}
	// The machine's task count changes under other tests: the formula is
	// TestNprocLimit's; here the limit is above the extra and below the
	// most tasks a kernel allows (pid_max <= 2^22).
	if nproc := limitOf(t, limits, "Max processes"); nproc <= 1000 || nproc > 1000+1<<22 {
		t.Errorf("RLIMIT_NPROC %d, want the machine's task count + 1000", nproc)
	}
	for _, want := range [][]string{
		{"Max", "cpu", "time", "30", "30", "seconds"},
		{"Max", "file", "size", "1048576", "1048576", "bytes"},
		{"Max", "core", "file", "size", "0", "0", "bytes"},
		{"Max", "address", "space", "1073741824", "1073741824", "bytes"},
	} {
		if !strings.Contains(" "+strings.Join(strings.Fields(string(limits)), " ")+" ", " "+strings.Join(want, " ")+" ") {
			t.Errorf("no %q at start in\n%s", want, limits)
		}
	}
	g.release(t)
	o := wait(t, done)
	if o.err != nil || o.res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", o.err, o.res)
	}
	lines := strings.Split(strings.TrimSpace(string(o.res.Output)), "\n")
	want := []string{dir, "x.i x.o ", "7", "30", "1048576", "2048", "0", strconv.FormatUint(limitOf(t, limits, "Max processes"), 10), dir, dir}
	if len(lines) != len(want)+1 {
		t.Fatalf("output: %q", o.res.Output)
	}
	for i, w := range want {
		if strings.TrimSpace(lines[i]) != strings.TrimSpace(w) {
			t.Errorf("line %d: %q, want %q (pwd, ls, nice, ulimit -t -v(KiB) -f(512 B) -c -p, HOME, TMPDIR; dash spells -u as -p)", i, lines[i], w)
		}
	}
	for _, kv := range strings.Fields(lines[len(want)]) {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "TMPDIR", k == "PWD", k == "PATH", k == "LANG", strings.HasPrefix(k, "LC_"):
		case k == "SHLVL", k == "_", k == "OLDPWD": // the shell's own
		default:
			t.Errorf("environment variable %s reached the compiler", k)
		}
	}
	if p := sandbox.Probe(""); o.res.Sandbox != p.Status {
		t.Errorf("job reports sandbox %+v, probe %+v", o.res.Sandbox, p.Status)
	}
	gone(t, dir)
}

// limitOf returns the soft limit on the line of /proc/pid/limits named name.
func limitOf(t *testing.T, limits []byte, name string) uint64 {
	t.Helper()
	for _, l := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(l, name+" ") {
			n, err := strconv.ParseUint(strings.Fields(l[len(name):])[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %q in %s", name, limits)
	return 0
}

func TestNprocLimit(t *testing.T) {
	for _, c := range []struct {
		extra   uint64
		loadavg string
		want    uint64
	}{
		{512, "0.50 0.40 0.30 2/1234 5678\n", 1746},
		{0, "0.50 0.40 0.30 2/1234 5678\n", 0},
		{512, "0.50 0.40 0.30", 0},
		{512, "0.50 0.40 0.30 2-1234 5678", 0},
		{512, "", 0},
	} {
		if got := nprocLimit(c.extra, c.loadavg); got != c.want {
			t.Errorf("nprocLimit(%d, %q) = %d, want %d", c.extra, c.loadavg, got, c.want)
		}
	}
}

// TestOnStartReniceHoldsFromTheStart: a renice in OnStart (a draining
// host) applies before the compiler's first instruction, and the helper
// does not undo it.
func TestOnStartReniceHoldsFromTheStart(t *testing.T) {
	cc := fake(t, writeOut+`nice > "$last"`)
	j := job(cc, t.TempDir())
	j.OnStart = func(pgid int) {
		if err := Renice(pgid, 15); err != nil {
			t.Error(err)
		}
	}
	res, err := Run(context.Background(), j, DefaultLimits())
	if err != nil || strings.TrimSpace(string(res.Output)) != "15" {
		t.Fatalf("niceness at the compiler's start: %v %q, want 15", err, res.Output)
	}
}

func TestJobDirRemovedOnFailure(t *testing.T) {
	cc := fake(t, `pwd >&2; echo "x.i:1: error: nope" >&2; exit 3`)
	res, err := Run(context.Background(), job(cc, t.TempDir()), DefaultLimits())
	if err != nil || res.ExitCode != 3 || !strings.Contains(string(res.Stderr), "error: nope") {
		t.Fatalf("run: %v %+v", err, res)
	}
	gone(t, strings.SplitN(string(res.Stderr), "\n", 2)[0])
}

// findProc returns the pid of a live process whose command line is argv.
func findProc(argv ...string) int {
	want := strings.Join(argv, "\x00") + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want {
			return pid
		}
	}
	return 0
}

// alive says whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// TestCancelKillsProcessGroup: cancelling a running job kills the compiler
// and what it started, and removes the job directory.
func TestCancelKillsProcessGroup(t *testing.T) {
	nonce := fmt.Sprintf("600.%d", time.Now().UnixNano()%1e9)
	cc := fake(t, `sleep `+nonce+` & wait`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pgid, done := start(t, ctx, job(cc, t.TempDir()), DefaultLimits())
	dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pgid))
	if err != nil {
		t.Fatal(err)
	}
	var child int
	eventually(t, "the compiler's child to start", func() bool { child = findProc("sleep", nonce); return child != 0 })
	cancel()
	if o := wait(t, done); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled job: %+v %v", o.res, o.err)
	}
	eventually(t, "the compiler's child to die", func() bool { return !alive(child) })
	gone(t, dir)
}

func TestWallLimit(t *testing.T) {
	parent := t.TempDir()
	cc := fake(t, `exec sleep 600`)
	lim := DefaultLimits()
	lim.Wall = 300 * time.Millisecond
	if _, err := Run(context.Background(), job(cc, parent), lim); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "wall") {
		t.Fatalf("err %v, want the wall limit", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("left in TempDir: %v", ents)
	}
}

func TestCPULimit(t *testing.T) {
	cc := fake(t, `while :; do :; done`)
	lim := DefaultLimits()
	lim.CPU = time.Second
	if _, err := Run(context.Background(), job(cc, t.TempDir()), lim); !errors.Is(err, ErrLimit) || strings.Contains(err.Error(), "wall") {
		t.Fatalf("err %v, want ErrLimit (CPU)", err)
	}
}

// TestMemoryLimit: the limit binds from the first instruction (the old
// executor set it after start and needed the compiler to sleep first);
// the same job passes with room.
func TestMemoryLimit(t *testing.T) {
	cc := fake(t, writeOut+`exec awk 'BEGIN { s = "x"; for (i = 0; i < 27; i++) s = s s; print length(s) }' > "$last"`)
	lim := DefaultLimits()
	lim.Memory = 64 << 20
	if res, err := Run(context.Background(), job(cc, t.TempDir()), lim); err == nil && res.ExitCode == 0 {
		t.Fatalf("allocating 128 MiB under a 64 MiB limit succeeded: %+v", res)
	}
	lim.Memory = 2 << 30
	res, err := Run(context.Background(), job(cc, t.TempDir()), lim)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(string(res.Output)) != "134217728" {
		t.Fatalf("with 2 GiB: %v %+v", err, res)
	}
}

func TestOutputCaps(t *testing.T) {
	lim := DefaultLimits()
	lim.OutputCap = 1000
	cc := fake(t, `exec head -c 100000 /dev/urandom`)
	if _, err := Run(context.Background(), job(cc, t.TempDir()), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("stdout over the cap: %v", err)
	}
	lim = DefaultLimits()
	lim.FileSize = 4096
	cc = fake(t, writeOut+`exec head -c 100000 /dev/urandom > "$last"`)
	if _, err := Run(context.Background(), job(cc, t.TempDir()), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("object over the cap: %v", err)
	}
}

func TestBadExtensionRunsNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	cc := fake(t, `touch `+marker)
	for _, ek := range [][2]string{{"/../x.i", ".o"}, {".c", ".o"}, {".i", ".so"}, {".i", "/x"}} {
		j := job(cc, t.TempDir())
		j.Ext, j.Kind = ek[0], ek[1]
		if _, err := Run(context.Background(), j, DefaultLimits()); err == nil {
			t.Fatalf("ext %q kind %q accepted", ek[0], ek[1])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the compiler ran")
	}
}

// compilers are the real ones, with a source for each.
var compilers = []struct{ name, ext, src string }{
	{"gcc", ".i", "#include <stdio.h>\nstatic int sq(int x) { return x * x; }\nint main(void) { printf(\"%d\\n\", sq(7)); return 0; }\n"},
	{"g++", ".ii", "#include <cstddef>\ntemplate <class T, std::size_t N> T sum(const T (&a)[N]) { T s{}; for (auto x : a) s += x; return s; }\nint f() { static const int a[] = {1, 2, 3}; return sum(a); }\n"},
	{"clang", ".i", "#include <stdio.h>\nstatic int sq(int x) { return x * x; }\nint main(void) { printf(\"%d\\n\", sq(7)); return 0; }\n"},
	{"clang++", ".ii", "#include <cstddef>\ntemplate <class T, std::size_t N> T sum(const T (&a)[N]) { T s{}; for (auto x : a) s += x; return s; }\nint f() { static const int a[] = {1, 2, 3}; return sum(a); }\n"},
}

// preprocess runs cc -E on src (as the client does before sending).
func preprocess(t *testing.T, cc, ext, src string) []byte {
	t.Helper()
	lang := "c"
	if ext == ".ii" {
		lang = "c++"
	}
	cmd := exec.Command(cc, "-E", "-x", lang, "-")
	cmd.Stdin = strings.NewReader(src)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -E: %v", cc, err)
	}
	return out
}

// compileDirect compiles source the way Run does, without the sandbox, in a
// directory of the same shape, and returns the object (or the error).
func compileDirect(t *testing.T, cc, ext string, source []byte, args ...string) ([]byte, error) {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "dccjob-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"+ext), source, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cc, append(args, "-c", "x"+ext, "-o", "x.o")...)
	cmd.Dir, cmd.Env = dir, jobEnv(dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "x.o"))
}

func realJob(t *testing.T, cc, ext string, source []byte, args ...string) Job {
	t.Helper()
	path, err := exec.LookPath(cc)
	if err != nil {
		t.Fatal(err)
	}
	return Job{Compiler: path, Args: args, Ext: ext, Kind: ".o", Source: source, Name: "x", TempDir: t.TempDir()}
}

// TestRealCompilersSameObject: gcc, g++, clang and clang++ build the same
// object in the sandbox as outside it.
func TestRealCompilersSameObject(t *testing.T) {
	for _, c := range compilers {
		t.Run(c.name, func(t *testing.T) {
			src := preprocess(t, c.name, c.ext, c.src)
			res, err := Run(context.Background(), realJob(t, c.name, c.ext, src, "-O2"), DefaultLimits())
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("sandboxed: %v %+v", err, res)
			}
			want, err := compileDirect(t, c.name, c.ext, src, "-O2")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Output, want) {
				t.Fatalf("sandboxed object (%d bytes) differs from the direct one (%d bytes); stderr %s", len(res.Output), len(want), res.Stderr)
			}
			if !res.Sandbox.FS && sandbox.Probe("").FS {
				t.Fatalf("job ran without the sandbox the probe found: %+v", res.Sandbox)
			}
		})
	}
}

// TestWrapperScript: a compiler that is a script running gcc (as Debian's
// c89 is) works in the sandbox, although the sandbox cannot know what the
// script runs.
func TestWrapperScript(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal(err)
	}
	cc := fake(t, `exec `+gcc+` "$@"`)
	src := preprocess(t, "gcc", ".i", compilers[0].src)
	j := realJob(t, "gcc", ".i", src, "-O2")
	j.Compiler = cc
	res, err := Run(context.Background(), j, DefaultLimits())
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v %s", err, res, res.Stderr)
	}
	want, err := compileDirect(t, "gcc", ".i", src, "-O2")
	if err != nil || !bytes.Equal(res.Output, want) {
		t.Fatalf("object differs from gcc's own (%v)", err)
	}
}

// TestCheck: the start-up check passes for the real compilers and fails
// for a toolchain whose programs the sandbox does not allow, until an
// admin adds their directory.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"gcc", "clang"} {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{".i", ".ii", ".s"} {
			if err := Check(ctx, path, ext, t.TempDir(), DefaultLimits()); err != nil {
				t.Errorf("%s %s: %v", name, ext, err)
			}
		}
	}
	// A driver that runs a program from a directory of its own.
	libexec := t.TempDir()
	tool := filepath.Join(libexec, "cc1")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"+writeOut+`echo obj > "$last"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cc := fake(t, `exec `+tool+` "$@"`)
	out := filepath.Join(t.TempDir(), "x.o")
	if b, err := exec.Command(cc, "-c", "x.i", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("unsandboxed: %v %s", err, b)
	}
	lim := DefaultLimits()
	err := Check(ctx, cc, ".i", t.TempDir(), lim)
	if sandbox.Probe("").FS && (!errors.Is(err, ErrSandboxed) || !strings.Contains(err.Error(), "Permission denied")) {
		t.Fatalf("check of a driver whose cc1 is not allowed: %v", err)
	}
	// A compiler that fails everywhere is not the sandbox's fault.
	if err := Check(ctx, fake(t, `echo broken >&2; exit 4`), ".i", t.TempDir(), lim); err == nil || errors.Is(err, ErrSandboxed) {
		t.Fatalf("check of a broken compiler: %v", err)
	}
	lim.Sandbox.ExecDirs = []string{libexec}
	if err := Check(ctx, cc, ".i", t.TempDir(), lim); err != nil {
		t.Fatalf("with exec_dirs: %v", err)
	}
	if err := Check(ctx, cc, ".c", t.TempDir(), lim); err == nil {
		t.Fatal("a check for .c")
	}
}

// TestIncbin: an .incbin of a file this user can read, outside the allowed
// directories, fails on the farm with gcc (as) and clang (its integrated
// assembler), though it works outside the sandbox; an .incbin of a system
// header still works, so it is the sandbox that refused.
func TestIncbin(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("PRIVATE-KEY-MATERIAL"), 0o600); err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile("/usr/include/stdio.h")
	if err != nil {
		t.Fatal(err)
	}
	incbin := func(path string) []byte {
		return []byte(fmt.Sprintf("__asm__(\".section .rodata\\n.incbin \\\"%s\\\"\\n.text\");\nint x;\n", path))
	}
	enforced := sandbox.Probe("").FS
	for _, cc := range []string{"gcc", "clang"} {
		t.Run(cc, func(t *testing.T) {
			if obj, err := compileDirect(t, cc, ".i", incbin(secret)); err != nil || !bytes.Contains(obj, []byte("PRIVATE-KEY-MATERIAL")) {
				t.Fatalf("outside the sandbox the .incbin should work: %v", err)
			}
			res, err := Run(context.Background(), realJob(t, cc, ".i", incbin(secret)), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if !enforced {
				t.Fatalf("NO SANDBOX on this kernel (%s): the secret went into the object", res.Sandbox)
			}
			if res.ExitCode == 0 || bytes.Contains(res.Output, []byte("PRIVATE-KEY-MATERIAL")) {
				t.Fatalf("an .incbin of %s compiled: exit %d, stderr %s", secret, res.ExitCode, res.Stderr)
			}
			if !strings.Contains(string(res.Stderr), secret) {
				t.Errorf("stderr does not name the file: %s", res.Stderr)
			}
			res, err = Run(context.Background(), realJob(t, cc, ".i", incbin("/usr/include/stdio.h")), DefaultLimits())
			if err != nil || res.ExitCode != 0 || !bytes.Contains(res.Output, header) {
				t.Fatalf("an .incbin of a system header: %v %+v", err, res)
			}
		})
	}
}

// TestWriteOutsideRefused: a compiler cannot create or change a file
// outside its job directory.
func TestWriteOutsideRefused(t *testing.T) {
	outside := t.TempDir()
	existing := filepath.Join(outside, "existing")
	if err := os.WriteFile(existing, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := fake(t, writeOut+`{ echo x > `+outside+`/planted; echo x >> `+existing+`; mkdir `+outside+`/d; echo x > /tmp/dcc-planted-$$; } 2> "$last"; echo done >> "$last"`)
	res, err := Run(context.Background(), job(cc, t.TempDir()), DefaultLimits())
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	if !res.Sandbox.FS {
		t.Fatalf("NO SANDBOX on this kernel: %s", res.Sandbox)
	}
	if n := strings.Count(string(res.Output), "Permission denied"); n != 4 {
		t.Errorf("%d of 4 writes refused:\n%s", n, res.Output)
	}
	ents, _ := os.ReadDir(outside)
	b, _ := os.ReadFile(existing)
	if len(ents) != 1 || string(b) != "before" {
		t.Errorf("outside the job directory: %v, %q", ents, b)
	}
}

// TestNetworkRefused: a compiler cannot connect to a listener on this
// machine, which a process outside the sandbox reaches.
func TestNetworkRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	script := filepath.Join(t.TempDir(), "netcc")
	body := "#!/bin/bash\nfor a; do last=$a; done\n{ exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected; } 2> \"$last\"\necho done >> \"$last\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	out := filepath.Join(t.TempDir(), "out")
	if b, err := exec.Command(script, out).CombinedOutput(); err != nil {
		t.Fatalf("control: %v %s", err, b)
	}
	<-accepted // the listener is reachable outside the sandbox

	res, err := Run(context.Background(), job(script, t.TempDir()), DefaultLimits())
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	if strings.Contains(string(res.Output), "connected") || !strings.Contains(string(res.Output), "Permission denied") {
		t.Fatalf("connect from the sandbox: %s", res.Output)
	}
	// The attempt was synchronous: a connection would be queued by now,
	// and a second control run shows the accept loop still serves.
	if b, err := exec.Command(script, out).CombinedOutput(); err != nil {
		t.Fatalf("control: %v %s", err, b)
	}
	<-accepted
	select {
	case <-accepted:
		t.Fatal("the sandboxed compiler connected")
	default:
	}
}

// TestReadOutputRefusesLinksAndFifos: the volunteer, which is not
// sandboxed, must not follow a link the compiler left as its output (to
// a file the sandbox kept from it) or block on a fifo.
func TestReadOutputRefusesLinksAndFifos(t *testing.T) {
	d := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	os.Symlink(secret, filepath.Join(d, "link.o"))
	unix.Mkfifo(filepath.Join(d, "fifo.o"), 0o600)
	os.WriteFile(filepath.Join(d, "ok.o"), []byte("obj"), 0o600)
	for _, n := range []string{"link.o", "fifo.o"} {
		if b, err := readOutput(filepath.Join(d, n), 1<<20); err == nil {
			t.Errorf("%s read: %q", n, b)
		}
	}
	if b, err := readOutput(filepath.Join(d, "ok.o"), 1<<20); err != nil || string(b) != "obj" {
		t.Errorf("regular output: %q %v", b, err)
	}
}

// TestRequireWithoutHelper: a helper that cannot run is a farm error,
// never a compile error.
func TestBrokenHelperIsAFarmError(t *testing.T) {
	lim := DefaultLimits()
	lim.Sandbox.Helper = fake(t, `exit 0`) // not a helper: never reports
	_, err := Run(context.Background(), job(fake(t, `exit 0`), t.TempDir()), lim)
	if !errors.Is(err, sandbox.ErrSetup) {
		t.Fatalf("err %v, want sandbox.ErrSetup", err)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || errors.Is(err, syscall.ENOENT) {
		t.Fatalf("err %v", err)
	}
}
