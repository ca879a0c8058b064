package sandbox

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

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// The test binary is its own helper: init in helper.go handles HelperArg
// before testing starts.

// probeBin compiles testdata/probe.c once: an ELF "compiler" that tries
// what its arguments say and prints each result.
var probeBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "dcc-sandbox-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "probe")
	out, err := exec.Command("gcc", "-O", "-o", bin, "testdata/probe.c").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc probe.c: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := probeBin(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func probe(t *testing.T) string {
	t.Helper()
	bin, err := probeBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// newJobDir makes a private job directory under a fresh parent.
func newJobDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(t.TempDir(), "dccjob-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// spec is a job running compiler with what Toolchain gives it.
func spec(t *testing.T, compiler string, args ...string) *Spec {
	t.Helper()
	p, err := Config{}.Paths(context.Background(), compiler)
	if err != nil {
		t.Fatal(err)
	}
	return &Spec{Compiler: compiler, Args: args, Env: []string{"PATH=/usr/bin:/bin"}, Dir: newJobDir(t), Paths: p, DenySockets: true}
}

type run struct {
	status         Status
	stdout, stderr string
	exit           int
}

// runSpec runs s through the helper and waits for the compiler.
func runSpec(t *testing.T, s *Spec) (*run, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Command(ctx, "", s)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	c.Cmd.Stdout, c.Cmd.Stderr = &stdout, &stderr
	st, err := c.Start()
	if err != nil {
		return nil, err
	}
	r := &run{status: st}
	if err := c.Exec(); err != nil {
		return nil, err
	}
	if err := c.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, err
		}
		r.exit = ee.ExitCode()
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r, nil
}

func mustRun(t *testing.T, s *Spec) *run {
	t.Helper()
	r, err := runSpec(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// unsandboxed runs the probe directly, to show a refusal is the sandbox's.
func unsandboxed(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(probe(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("probe %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func wantLine(t *testing.T, out, line string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line %q in:\n%s", line, out)
}

func rawABI(t *testing.T) int {
	// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1)
	if errno != 0 {
		return 0
	}
	return int(v)
}

func TestProbeReportsABI(t *testing.T) {
	c := Probe("")
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	raw := rawABI(t)
	if c.KernelABI != raw {
		t.Errorf("KernelABI %d, kernel says %d", c.KernelABI, raw)
	}
	want := min(raw, 11)
	if e, err := ll.LandlockGetErrata(); want >= 6 && (err != nil || e&2 == 0) {
		want = 5
	}
	if c.ABI != want || c.FS != (want >= 1) || c.Net != (want >= 4) || c.Scoped != (want >= 6) || !c.Sockets {
		t.Errorf("probe %+v for kernel ABI %d", c.Status, raw)
	}
	t.Logf("kernel Landlock ABI %d: %s", raw, c.Summary())
	if want >= 1 && !strings.HasPrefix(c.Summary(), fmt.Sprintf("landlock ABI %d: filesystem", want)) {
		t.Errorf("summary %q", c.Summary())
	}
	if want == 0 && !strings.HasPrefix(c.Summary(), "NO SANDBOX") {
		t.Errorf("no Landlock, but the summary is quiet: %q", c.Summary())
	}
}

func TestStatusStrings(t *testing.T) {
	for _, c := range []struct {
		s    Status
		want string
	}{
		{Status{}, "NO SANDBOX: kernel has no Landlock; compilers can read every file this user can; NETWORK OPEN: compilers can connect out"},
		{Status{Sockets: true}, "NO SANDBOX: kernel has no Landlock; compilers can read every file this user can; seccomp: no sockets"},
		{Status{ABI: 3, FS: true, Sockets: true}, "landlock ABI 3: filesystem restricted; seccomp: no sockets"},
		{Status{ABI: 7, FS: true, Net: true, Scoped: true, Sockets: true}, "landlock ABI 7: filesystem and network restricted, signals scoped; seccomp: no sockets"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.s, got, c.want)
		}
	}
}

// TestFilesystem: the compiler reads the allowed directories and its job
// directory, writes only the job directory, and cannot read a file this
// user can read elsewhere.
func TestFilesystem(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "planted")
	args := []string{"read=" + secret, "read=/usr/include/stdio.h", "write=" + outside, "write=x.o", "read=x.o"}
	ctl := unsandboxed(t, args[0], args[1])
	wantLine(t, ctl, "read "+secret+": ok")
	s := spec(t, probe(t), args...)
	r := mustRun(t, s)
	if !r.status.FS {
		wantLine(t, r.stdout, "read "+secret+": ok")
		t.Fatalf("no Landlock here (%s): the secret was readable", r.status)
	}
	wantLine(t, r.stdout, "read "+secret+": Permission denied")
	wantLine(t, r.stdout, "read /usr/include/stdio.h: ok")
	wantLine(t, r.stdout, "write "+outside+": Permission denied")
	wantLine(t, r.stdout, "write x.o: ok")
	wantLine(t, r.stdout, "read x.o: ok")
	if _, err := os.Stat(outside); err == nil {
		t.Error("the compiler created a file outside its job directory")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "x.o")); err != nil {
		t.Errorf("the compiler's output is not in the job directory: %v", err)
	}
}

// listeners starts a TCP and a UDP listener and a unix socket on loopback.
func listeners(t *testing.T) (tcp *net.TCPListener, udp *net.UDPConn, sock *net.UnixListener) {
	t.Helper()
	var err error
	if tcp, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if sock, err = net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "sock"), Net: "unix"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close(); udp.Close(); sock.Close() })
	return tcp, udp, sock
}

// arrived says what reached the listeners. The probe's attempts are
// synchronous, so by the time it has exited a connection or datagram is
// already queued: one non-blocking accept or read per socket collects it.
func arrived(t *testing.T, tcp *net.TCPListener, udp *net.UDPConn, sock *net.UnixListener) []string {
	t.Helper()
	try := func(c syscall.Conn, f func(fd int) error) bool {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		ferr := errors.New("not called")
		if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
			t.Fatal(err)
		}
		return ferr == nil
	}
	accept := func(fd int) error {
		nfd, _, err := unix.Accept(fd)
		if err == nil {
			unix.Close(nfd)
		}
		return err
	}
	var got []string
	if try(tcp, accept) {
		got = append(got, "tcp")
	}
	if try(udp, func(fd int) error { _, _, err := unix.Recvfrom(fd, make([]byte, 16), unix.MSG_DONTWAIT); return err }) {
		got = append(got, "udp")
	}
	if try(sock, accept) {
		got = append(got, "unix")
	}
	return got
}

// TestNetwork: with the seccomp filter no socket can be made at all; with
// Landlock alone TCP is refused where the kernel has network rules; an
// unsandboxed run reaches all three listeners, so the refusals are the
// sandbox's.
func TestNetwork(t *testing.T) {
	tcp, udp, sock := listeners(t)
	args := []string{
		"tcp=" + strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port),
		"udp=" + strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port),
		"unix=" + sock.Addr().String(),
	}
	out := unsandboxed(t, args...)
	if got := arrived(t, tcp, udp, sock); len(got) != 3 {
		t.Fatalf("unsandboxed probe reached only %v:\n%s", got, out)
	}

	r := mustRun(t, spec(t, probe(t), args...))
	if !r.status.Sockets {
		t.Fatalf("seccomp filter not in force: %s", r.status)
	}
	for _, l := range []string{"tcp-socket " + args[0][4:], "udp-socket " + args[1][4:], "unix-socket " + args[2][5:]} {
		wantLine(t, r.stdout, l+": Permission denied")
	}
	if got := arrived(t, tcp, udp, sock); len(got) != 0 {
		t.Errorf("with sockets denied, %v got through:\n%s", got, r.stdout)
	}

	s := spec(t, probe(t), args...)
	s.DenySockets = false
	r = mustRun(t, s)
	if r.status.Sockets {
		t.Fatal("Sockets reported without the filter")
	}
	if r.status.Net != (r.status.ABI >= 4) {
		t.Errorf("ABI %d, network restricted %v", r.status.ABI, r.status.Net)
	}
	// What Landlock alone stops, by ABI: TCP from 4, named unix sockets
	// from 9, UDP from 10. The rest is why the seccomp filter exists.
	got := strings.Join(arrived(t, tcp, udp, sock), " ")
	var want []string
	for _, c := range []struct {
		name string
		abi  int
	}{{"tcp", 4}, {"udp", 10}, {"unix", 9}} {
		if r.status.ABI < c.abi {
			want = append(want, c.name)
		}
	}
	if got != strings.Join(want, " ") {
		t.Errorf("Landlock ABI %d alone let through %q, want %q:\n%s", r.status.ABI, got, want, r.stdout)
	}
	if r.status.ABI >= 4 {
		wantLine(t, r.stdout, "tcp-connect "+args[0][4:]+": Permission denied")
	}
	t.Logf("Landlock ABI %d alone let through %q", r.status.ABI, got)
}

// TestSignalsScoped: on ABI >= 6 the compiler cannot signal processes
// outside its sandbox (here the test itself, which an unsandboxed probe
// can).
func TestSignalsScoped(t *testing.T) {
	arg := "kill=" + strconv.Itoa(os.Getpid())
	wantLine(t, unsandboxed(t, arg), arg[:4]+" "+arg[5:]+": ok")
	r := mustRun(t, spec(t, probe(t), arg))
	want := "ok"
	if r.status.ABI >= 6 {
		want = "Operation not permitted"
	}
	wantLine(t, r.stdout, "kill "+arg[5:]+": "+want)
}

// TestLimitsAndNice: the exec'd compiler already runs under the rlimits
// and at the niceness of the spec, since the helper set them on itself.
func TestLimitsAndNice(t *testing.T) {
	s := spec(t, probe(t), "info=1")
	s.Nice = 9
	s.Limits = Rlimits{CPU: 77, AS: 3 << 30, FSize: 5 << 20, NProc: 999}
	r := mustRun(t, s)
	for _, l := range []string{"nice: 9", "limit cpu: 77", "limit as: 3221225472", "limit fsize: 5242880", "limit nproc: 999", "limit core: 0", "cwd: " + s.Dir} {
		wantLine(t, r.stdout, l)
	}
}

// TestExecOnlyWhatIsAllowed: a program outside the exec rules does not
// start, and the helper reports it as a setup failure, not a compile error.
func TestExecOnlyWhatIsAllowed(t *testing.T) {
	s := spec(t, probe(t))
	other := filepath.Join(t.TempDir(), "other")
	b, err := os.ReadFile(probe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Compiler = other // the rules still name the probe
	_, err = runSpec(t, s)
	if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "exec "+other) {
		t.Fatalf("err %v, want a setup error about exec", err)
	}
	if Probe("").FS && !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("exec refused for another reason: %v", err)
	}
}

func TestHelperRefusesBadSpecs(t *testing.T) {
	open := newJobDir(t)
	os.Chmod(open, 0o755)
	for name, mod := range map[string]func(*Spec){
		"relative compiler": func(s *Spec) { s.Compiler = "probe" },
		"relative dir":      func(s *Spec) { s.Dir = "dccjob" },
		"missing dir":       func(s *Spec) { s.Dir = filepath.Join(s.Dir, "nope") },
		"dir open to all":   func(s *Spec) { s.Dir = open },
		"dir is a link": func(s *Spec) {
			l := filepath.Join(t.TempDir(), "link")
			os.Symlink(s.Dir, l)
			s.Dir = l
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := spec(t, probe(t), "write=ran")
			dir := s.Dir
			mod(s)
			if _, err := runSpec(t, s); !errors.Is(err, ErrSetup) {
				t.Fatalf("err %v, want ErrSetup", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Fatal("the compiler ran")
			}
		})
	}
}

// TestNoWordNoCompiler: a helper whose parent never calls Exec exits
// without starting the compiler.
func TestNoWordNoCompiler(t *testing.T) {
	s := spec(t, probe(t), "write=ran")
	c, err := Command(context.Background(), "", s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err == nil {
		t.Fatal("helper without the word exited 0")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "ran")); err == nil {
		t.Fatal("the compiler ran")
	}
}

// TestHelperByHand: run without its pipes, the helper explains and exits.
func TestHelperByHand(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(self, HelperArg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitSetup || !strings.Contains(string(out), "not run by hand") {
		t.Fatalf("err %v, output %q", err, out)
	}
}

// TestToolchain: the derived paths name the programs gcc and clang run,
// and a script gets its interpreter's directory.
func TestToolchain(t *testing.T) {
	ctx := context.Background()
	real := func(p string) string {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	has := func(l []string, p string) bool {
		for _, x := range l {
			if x == p {
				return true
			}
		}
		return false
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Toolchain(ctx, gcc)
	if err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"cc1", "cc1plus"} {
		out, err := exec.Command(gcc, "-print-prog-name="+prog).Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := real(strings.TrimSpace(string(out))); !has(p.ExecFiles, want) {
			t.Errorf("gcc: %s missing from %v", want, p.ExecFiles)
		}
	}
	as, err := exec.LookPath("as")
	if err != nil {
		t.Fatal(err)
	}
	if !has(p.ExecFiles, real(as)) || !has(p.ExecFiles, real(gcc)) {
		t.Errorf("gcc: as or gcc missing from %v", p.ExecFiles)
	}
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = Toolchain(ctx, clang); err != nil {
		t.Fatal(err)
	}
	if !has(p.ExecFiles, real(clang)) {
		t.Errorf("clang: %s missing from %v", real(clang), p.ExecFiles)
	}
	script := filepath.Join(t.TempDir(), "cc")
	os.WriteFile(script, []byte("#!/bin/sh\nexec gcc \"$@\"\n"), 0o755)
	if p, err = Toolchain(ctx, script); err != nil {
		t.Fatal(err)
	}
	if !has(p.ExecDirs, filepath.Dir(real("/bin/sh"))) || !has(p.ExecDirs, filepath.Dir(script)) {
		t.Errorf("script: exec dirs %v", p.ExecDirs)
	}
	if _, err := Toolchain(ctx, "/etc/passwd"); err == nil {
		t.Error("a text file taken for a compiler")
	}
}

// TestNormalize: links resolve, missing paths go, and what a broader rule
// covers is dropped.
func TestNormalize(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"a/b", "x"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	os.WriteFile(filepath.Join(d, "a/b/f"), nil, 0o644)
	os.WriteFile(filepath.Join(d, "x/tool"), nil, 0o755)
	os.Symlink(filepath.Join(d, "x"), filepath.Join(d, "lx"))
	got := normalize(Paths{
		ExecFiles: []string{d + "/a/b/f", d + "/x/tool", d + "/x"},
		ExecDirs:  []string{d + "/lx"},
		ReadDirs:  []string{d + "/a", d + "/a/b", d + "/x", d + "/missing", d + "/a/b/f"},
		ReadFiles: []string{d + "/a/b/f", d + "/x/tool"},
	})
	want := Paths{
		ExecFiles: []string{d + "/a/b/f"}, // read of a/ does not cover exec
		ExecDirs:  []string{d + "/x"},
		ReadDirs:  []string{d + "/a"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("normalize:\n got %v\nwant %v", got, want)
	}
}

// BenchmarkJob is the sandbox's cost per job: starting the helper,
// confining it and exec'ing a compiler that exits at once (the probe with
// no arguments). BenchmarkDirect is the same program without the helper.
func BenchmarkJob(b *testing.B) {
	bin, err := probeBin()
	if err != nil {
		b.Fatal(err)
	}
	p, err := Config{}.Paths(context.Background(), bin)
	if err != nil {
		b.Fatal(err)
	}
	parent := b.TempDir()
	for b.Loop() {
		dir, err := os.MkdirTemp(parent, "dccjob-")
		if err != nil {
			b.Fatal(err)
		}
		c, err := Command(context.Background(), "", &Spec{Compiler: bin, Dir: dir, Paths: p, DenySockets: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Start(); err != nil {
			b.Fatal(err)
		}
		if err := c.Exec(); err != nil {
			b.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			b.Fatal(err)
		}
		os.Remove(dir)
	}
}

func BenchmarkDirect(b *testing.B) {
	bin, err := probeBin()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := exec.Command(bin).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
