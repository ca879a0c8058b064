package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Pool keeps helpers started ahead of jobs, so that a job does not wait
// for a process to start before its compiler runs: a helper's start (a Go
// runtime, a few milliseconds) is on every job's critical path otherwise.
// A pooled helper is started exactly as Command starts one, with an empty
// environment, and waits unconfined, doing nothing, for its spec on its
// pipe; everything it enforces is set up after the spec arrives, as for a
// helper started for the job. When the pool is empty (more jobs at once
// than it holds), Command starts one for the job.
type Pool struct {
	helper string
	size   int

	mu     sync.Mutex
	idle   []*Cmd
	closed bool
	wg     sync.WaitGroup // refills in flight
}

// NewPool returns a pool of up to size helpers of helper ("" = this
// executable) and starts filling it.
func NewPool(helper string, size int) *Pool {
	if helper == "" {
		helper, _ = os.Executable() // an error leaves the pool empty: jobs start their own
	}
	p := &Pool{helper: helper, size: size}
	p.wg.Add(1)
	go p.refill()
	return p
}

// Command is sandbox.Command, with a helper from the pool when it has one.
func (p *Pool) Command(ctx context.Context, spec *Spec) (*Cmd, error) {
	b, err := encodeSpec(spec)
	if err != nil {
		return nil, err
	}
	c := p.take()
	if c == nil {
		return Command(ctx, p.helper, spec)
	}
	c.spec = b
	pgid := c.Cmd.Process.Pid
	c.unbind = context.AfterFunc(ctx, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	p.wg.Add(1)
	go p.refill()
	return c, nil
}

// take returns an idle helper that is still alive, or nil.
func (p *Pool) take() *Cmd {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if alive(c.Cmd.Process.Pid) {
			return c
		}
		go c.abort() // died waiting (killed by hand, out of memory): reap it
	}
	return nil
}

// alive reports whether the child pid has not exited, without reaping it.
func alive(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == 0
}

// refill starts helpers until the pool holds size of them.
func (p *Pool) refill() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		full := p.closed || len(p.idle) >= p.size
		p.mu.Unlock()
		if full {
			return
		}
		c, err := p.start()
		if err != nil {
			return // jobs start their own helpers, and say why if that fails too
		}
		p.mu.Lock()
		if p.closed || len(p.idle) >= p.size {
			p.mu.Unlock()
			c.abort()
			return
		}
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
}

// start starts one helper that waits for its spec.
func (p *Pool) start() (*Cmd, error) {
	if p.helper == "" {
		return nil, fmt.Errorf("%w: no helper", ErrSetup)
	}
	cmd := helperProcess(exec.Command(p.helper, HelperArg))
	c := &Cmd{Cmd: cmd, out: &switchWriter{}, errOut: &switchWriter{}}
	cmd.Stdout, cmd.Stderr = c.out, c.errOut
	if err := c.launch(); err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops the idle helpers (they exit when their spec pipe closes)
// and waits for them.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	p.wg.Wait()
	for _, c := range idle {
		c.abort()
	}
}

// switchWriter is a pooled helper's stdout or stderr: the job that takes
// the helper says where the compiler's output goes. Before that, the
// helper writes nothing.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return len(b), nil
	}
	return s.w.Write(b)
}
