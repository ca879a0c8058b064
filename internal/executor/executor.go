// Package executor runs one compile job on a volunteer: in a private
// temporary directory, with the exact compiler that matched, at low
// priority and under resource limits, and returns the output file, stdout,
// stderr and exit status. It trusts nothing about the job: callers check
// the lease token and the arguments before calling Run.
package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound one job.
type Limits struct {
	Wall      time.Duration // wall-clock limit
	CPU       time.Duration // RLIMIT_CPU
	Memory    uint64        // RLIMIT_AS in bytes
	FileSize  uint64        // RLIMIT_FSIZE: largest file the compiler may write
	OutputCap int           // cap on captured stdout and stderr each
	Nice      int           // added niceness
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
	}
}

// Job is what to compile.
type Job struct {
	Compiler string   // absolute path of the compiler to run
	Args     []string // checked remote arguments
	Ext      string   // .i .ii .mi .mii .s
	Kind     string   // .o or .s
	Source   []byte
	Name     string // base name for the source file (without extension)
	TempDir  string // parent for the job directory ("" = os.TempDir())
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
}

// ErrLimit is wrapped when a job hits a resource limit.
var ErrLimit = errors.New("job exceeded a resource limit")

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

// Run compiles j. An error means the job did not run to completion for a
// farm reason (limits, I/O); a compiler failure is a Result with a non-zero
// ExitCode and a nil error.
func Run(ctx context.Context, j Job, lim Limits) (*Result, error) {
	if !exts[j.Ext] || !kinds[j.Kind] {
		return nil, fmt.Errorf("bad extension %q or kind %q", j.Ext, j.Kind)
	}
	dir, err := os.MkdirTemp(j.TempDir, "dccjob-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name := safeName(j.Name)
	src := name + j.Ext
	out := name + j.Kind
	if src == out { // foo.s compiled with -S
		out = name + ".out" + j.Kind
	}
	if err := os.WriteFile(filepath.Join(dir, src), j.Source, 0o600); err != nil {
		return nil, err
	}
	mode := "-c"
	if j.Kind == ".s" {
		mode = "-S"
	}
	args := append(append([]string{}, j.Args...), mode, src, "-o", out)
	ctx, cancel := context.WithTimeout(ctx, lim.Wall)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.Compiler, args...)
	cmd.Dir = dir
	cmd.Env = jobEnv(dir)
	cmd.Stdin = nil
	stdout := &capped{cap: lim.OutputCap}
	stderr := &capped{cap: lim.OutputCap}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", j.Compiler, err)
	}
	applyLimits(cmd.Process.Pid, lim)
	if j.OnStart != nil {
		j.OnStart(cmd.Process.Pid)
	}
	werr := cmd.Wait()
	res := &Result{Wall: time.Since(start), Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ps := cmd.ProcessState; ps != nil {
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
	f, err := os.Open(filepath.Join(dir, out))
	if err != nil {
		return nil, fmt.Errorf("compiler exited 0 but wrote no output: %w", err)
	}
	defer f.Close()
	res.Output, err = io.ReadAll(io.LimitReader(f, int64(lim.FileSize)+1))
	if err != nil {
		return nil, err
	}
	if uint64(len(res.Output)) > lim.FileSize {
		return nil, fmt.Errorf("%w: output over %d bytes", ErrLimit, lim.FileSize)
	}
	return res, nil
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

func applyLimits(pid int, lim Limits) {
	set := func(res int, v uint64) {
		if v > 0 {
			_ = unix.Prlimit(pid, res, &unix.Rlimit{Cur: v, Max: v}, nil)
		}
	}
	set(unix.RLIMIT_CPU, uint64(lim.CPU/time.Second))
	set(unix.RLIMIT_AS, lim.Memory)
	set(unix.RLIMIT_FSIZE, lim.FileSize)
	set(unix.RLIMIT_CORE, 0)
	if lim.Nice > 0 {
		_ = unix.Setpriority(unix.PRIO_PROCESS, pid, lim.Nice)
	}
}
