// Package executor runs one compile job on a volunteer: in a private
// temporary directory, with the exact compiler that matched, through the
// sandbox helper (package sandbox: rlimits, niceness, Landlock, no
// sockets), and returns the output file, stdout, stderr and exit status.
// It trusts nothing about the job: callers check the lease token and the
// arguments before calling Run.
package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/internal/sandbox"
)

// Limits bound one job.
type Limits struct {
	Wall      time.Duration // wall-clock limit
	CPU       time.Duration // RLIMIT_CPU
	Memory    uint64        // RLIMIT_AS in bytes
	FileSize  uint64        // RLIMIT_FSIZE: largest file the compiler may write
	OutputCap int           // cap on captured stdout and stderr each
	Nice      int           // niceness of the compiler (at least)
	// Procs is how many processes and threads a job may add to those
	// running when it starts (0 = no limit). RLIMIT_NPROC counts all of
	// the user's, and a volunteer running as a desktop user may have
	// thousands: the limit is set to the machine's task count plus Procs,
	// which stops a fork bomb without failing a compile (as a false
	// compile error) because the owner's browser has many threads.
	Procs uint64
	// Sandbox is the admin's sandbox policy (extra directories, require).
	Sandbox sandbox.Config
}

// DefaultLimits are generous for real compiles and stop runaway ones.
func DefaultLimits() Limits {
	return Limits{
		Wall:      10 * time.Minute,
		CPU:       10 * time.Minute,
		Memory:    8 << 30,
		FileSize:  512 << 20,
		OutputCap: 1 << 20,
		Nice:      10,
		Procs:     512,
	}
}

// Job is what to compile.
type Job struct {
	Compiler string   // absolute path of the compiler to run
	Args     []string // checked remote arguments
	Ext      string   // .i .ii .mi .mii .s, or a source extension (.c .cc ...) with Lang
	Lang     string   // the language of a source whose includes were inlined (clang -frewrite-includes)
	Kind     string   // .o or .s
	Source   []byte
	// Feed, when set, supplies the source while the compiler already
	// runs (Source is then unused): the source file is a pipe at the
	// same name, so the compiler's start-up (the driver, cc1 loading)
	// overlaps the client's preprocessing, with the same arguments and
	// the same object as from a file. Feed writes the whole source to w
	// and returns nil, or fails the job with an error (the client went
	// away, the source failed its check); it must return once ctx ends.
	// The job's Wall then counts from the moment the source was complete.
	Feed    func(ctx context.Context, w io.Writer) error
	Name    string // base name for the source file (without extension)
	TempDir string // parent for the job directory ("" = os.TempDir())
	// OnStart, if set, is called with the compiler's process group id once
	// it runs (so a draining volunteer can lower its priority).
	OnStart func(pgid int)
}

// Result is what the compiler produced.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Output   []byte // nil when the compiler failed
	Wall     time.Duration
	CPU      time.Duration
	// Sandbox is what the helper found enforced for this job.
	Sandbox sandbox.Status
}

// ErrLimit is wrapped when a job hits a resource limit.
var ErrLimit = errors.New("job exceeded a resource limit")

// rewritten reports whether ext names a source of language lang: a
// source with its includes inlined (compilerargs.RewriteIncludes), which
// the compiler preprocesses once more from the file's own name.
func rewritten(ext, lang string) bool {
	l, ok := compilerargs.SourceExt(ext)
	return ok && l == lang
}

// Allowed extensions and kinds.
var (
	exts  = map[string]bool{".i": true, ".ii": true, ".mi": true, ".mii": true, ".s": true}
	kinds = map[string]bool{".o": true, ".s": true}
)

type capped struct {
	bytes.Buffer
	cap       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.cap - c.Len(); room < len(p) {
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		c.truncated = true
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// ReadFrom sends io.Copy (which exec uses for the compiler's stdout and
// stderr) through Write: the embedded Buffer's ReadFrom would bypass the cap.
func (c *capped) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c}, r)
}

// safeName reduces a client-supplied name to a plain file name.
func safeName(n string) string {
	n = filepath.Base(n)
	var b strings.Builder
	for _, r := range n {
		if r == '.' || r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), ".-")
	if s == "" || len(s) > 100 {
		s = "job"
	}
	return s
}

// Run compiles j in the sandbox (package sandbox). An error means the job
// did not run to completion for a farm reason (the sandbox, limits, I/O); a
// compiler failure is a Result with a non-zero ExitCode and a nil error.
func Run(ctx context.Context, j Job, lim Limits) (*Result, error) {
	if !kinds[j.Kind] || !(exts[j.Ext] || rewritten(j.Ext, j.Lang)) {
		return nil, fmt.Errorf("bad extension %q, language %q or kind %q", j.Ext, j.Lang, j.Kind)
	}
	paths, err := lim.Sandbox.Paths(ctx, j.Compiler)
	if err != nil {
		return nil, fmt.Errorf("%w: toolchain of %s: %v", sandbox.ErrSetup, j.Compiler, err)
	}
	// The volunteer, not the helper, makes and removes the job directory,
	// so it is gone afterwards however the helper or the compiler ends.
	dir, err := os.MkdirTemp(j.TempDir, "dccjob-")
	if err != nil {
		return nil, err
	}
	defer removeJobDir(dir)
	name := safeName(j.Name)
	src := name + j.Ext
	out := name + j.Kind
	if src == out { // foo.s compiled with -S
		out = name + ".out" + j.Kind
	}
	var pipe *feedPipe
	if j.Feed != nil {
		if pipe, err = newFeedPipe(filepath.Join(dir, src)); err != nil {
			return nil, err
		}
	} else if err := os.WriteFile(filepath.Join(dir, src), j.Source, 0o600); err != nil {
		return nil, err
	}
	mode := "-c"
	if j.Kind == ".s" {
		mode = "-S"
	}
	ctx, cancel := context.WithTimeout(ctx, lim.Wall)
	defer cancel()
	command := func(ctx context.Context, spec *sandbox.Spec) (*sandbox.Cmd, error) {
		return sandbox.Command(ctx, lim.Sandbox.Helper, spec)
	}
	if lim.Sandbox.Pool != nil {
		command = lim.Sandbox.Pool.Command
	}
	cmd, err := command(ctx, &sandbox.Spec{
		Compiler:    j.Compiler,
		Args:        append(append([]string{}, j.Args...), mode, src, "-o", out),
		Env:         jobEnv(dir),
		Dir:         dir,
		Limits:      rlimits(lim),
		Nice:        lim.Nice,
		Paths:       paths,
		Require:     lim.Sandbox.Require,
		DenySockets: true,
	})
	if err != nil {
		return nil, err
	}
	stdout := &capped{cap: lim.OutputCap}
	stderr := &capped{cap: lim.OutputCap}
	cmd.SetOutput(stdout, stderr)
	start := time.Now()
	status, err := cmd.Start()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%w: wall time %s", ErrLimit, lim.Wall)
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	// The helper has set its niceness and waits: a renice from OnStart
	// holds for the compiler from its first instruction.
	if j.OnStart != nil {
		j.OnStart(cmd.Cmd.Process.Pid)
	}
	if err := cmd.Exec(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if pipe != nil {
		pipe.feed(ctx, cancel, j.Feed)
	}
	werr := cmd.Wait()
	if pipe != nil {
		// A compiler that exits before its source is complete (an option
		// it refuses) leaves the rest to be read and dropped: the job
		// ends when the source has come and passed its check, or failed.
		fedAt, ferr := pipe.wait()
		if ferr != nil && ctx.Err() != context.DeadlineExceeded {
			return nil, fmt.Errorf("source: %w", ferr)
		}
		if fedAt.After(start) {
			start = fedAt
		}
	}

	res := &Result{Wall: time.Since(start), Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Sandbox: status}
	if ps := cmd.Cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("%w: wall time %s", ErrLimit, lim.Wall)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return nil, werr
		}
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			switch st.Signal() {
			case syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGKILL, syscall.SIGSEGV:
				// A killed or limited compiler is not the user's error.
				return nil, fmt.Errorf("%w: compiler killed by %s", ErrLimit, st.Signal())
			}
		}
		res.ExitCode = ee.ExitCode()
		if res.ExitCode <= 0 {
			res.ExitCode = 1
		}
		return res, nil
	}
	if stdout.truncated || stderr.truncated {
		return nil, fmt.Errorf("%w: compiler output over %d bytes", ErrLimit, lim.OutputCap)
	}
	res.Output, err = readOutput(filepath.Join(dir, out), lim.FileSize)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkSources are what Check compiles, per source extension.
var checkSources = map[string]string{
	".i":  "int dcc_check(int x) { return x + 1; }\n",
	".ii": "template <class T> T dcc_check(T x) { return x + 1; }\nint dcc_use() { return dcc_check(1); }\n",
	".s":  "\t.text\n\t.globl dcc_check\ndcc_check:\n\tnop\n",
}

// ErrSandboxed is wrapped by Check when a compile fails in the sandbox
// and succeeds outside it: the sandbox, not the compiler, is at fault.
var ErrSandboxed = errors.New("compiler works only outside the sandbox")

// Check compiles a trivial source of extension ext (.i, .ii or .s) with
// compiler exactly as a job would, sandbox included, and if that fails,
// once more outside the sandbox to say whose fault it is. It is for a new
// toolchain (a `volunteer check` command, a start-up self-test): one the
// sandbox does not fully allow (a cc1 where the lookup does not find it)
// fails every job as a compile error, which clients return to the user
// instead of compiling locally. The caller bounds it with ctx (a compiler
// can hang).
func Check(ctx context.Context, compiler, ext, tempDir string, lim Limits) error {
	src, ok := checkSources[ext]
	if !ok {
		return fmt.Errorf("no check source for %q", ext)
	}
	j := Job{Compiler: compiler, Ext: ext, Kind: ".o", Source: []byte(src), Name: "dcc-check", TempDir: tempDir}
	res, err := Run(ctx, j, lim)
	if err == nil && res.ExitCode == 0 && len(res.Output) > 0 {
		return nil
	}
	why := fmt.Sprint(err)
	if err == nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(string(res.Stderr)), "\n")
		why = fmt.Sprintf("exit %d: %s", res.ExitCode, msg)
	}
	if derr := direct(ctx, j); derr != nil {
		return fmt.Errorf("check %s on %s: %s (and outside the sandbox: %v)", compiler, ext, why, derr)
	}
	return fmt.Errorf("%w: check %s on %s: %s", ErrSandboxed, compiler, ext, why)
}

// direct compiles j as Run does, without the sandbox, for Check.
func direct(ctx context.Context, j Job) error {
	dir, err := os.MkdirTemp(j.TempDir, "dccjob-")
	if err != nil {
		return err
	}
	defer removeJobDir(dir)
	src := safeName(j.Name) + j.Ext
	if err := os.WriteFile(filepath.Join(dir, src), j.Source, 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, j.Compiler, "-c", src, "-o", "out.o")
	cmd.Dir, cmd.Env = dir, jobEnv(dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%v: %s", err, msg)
	}
	return nil
}

// readOutput reads the object the compiler left, refusing anything but a
// regular file: a link would make the volunteer read (and return) a file
// the sandbox kept from the compiler, and a fifo would block it.
func readOutput(path string, limit uint64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("compiler exited 0 but wrote no output: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("compiler output %s is not a regular file (%s)", filepath.Base(path), fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) > limit {
		return nil, fmt.Errorf("%w: output over %d bytes", ErrLimit, limit)
	}
	return b, nil
}

// removeJobDir removes a job directory even if the compiler left
// directories in it without search or write permission for their owner.
func removeJobDir(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

func jobEnv(dir string) []string {
	env := []string{"HOME=" + dir, "TMPDIR=" + dir, "PWD=" + dir}
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Renice sets the niceness of every process of a job's process group.
func Renice(pgid, nice int) error {
	return unix.Setpriority(unix.PRIO_PGRP, pgid, nice)
}

// rlimits converts the job's limits for the helper. RLIMIT_CPU is in whole
// seconds, rounded up.
func rlimits(lim Limits) sandbox.Rlimits {
	return sandbox.Rlimits{
		CPU:   uint64((lim.CPU + time.Second - 1) / time.Second),
		AS:    lim.Memory,
		FSize: lim.FileSize,
		NProc: nprocLimit(lim.Procs, loadavg()),
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}

// nprocLimit is RLIMIT_NPROC for a job that may add extra tasks, given
// /proc/loadavg ("0.50 0.40 0.30 2/1234 5678": 1234 tasks exist), or 0 (no
// limit) when extra is 0 or the count is unknown.
func nprocLimit(extra uint64, loadavg string) uint64 {
	f := strings.Fields(loadavg)
	if extra == 0 || len(f) < 4 {
		return 0
	}
	_, total, ok := strings.Cut(f[3], "/")
	n, err := strconv.ParseUint(total, 10, 32)
	if !ok || err != nil {
		return 0
	}
	return n + extra
}
