package executor

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// feedPipe is a job's source file as a named pipe (Job.Feed): the compiler
// opens it by its usual name and reads the source as the volunteer writes
// it, and sees the end of the file when the volunteer closes its end.
//
// The volunteer opens its end for writing only once the compiler has the
// pipe open for reading (a non-blocking open fails until then): a pipe's
// contents die with its last open descriptor, so bytes written before the
// compiler opened it, and then closed, would be lost and the compiler
// would wait for a writer for ever. By the time the source comes (the
// client's preprocessor has finished) the compiler has long been waiting
// in read(), so this is one open.
type feedPipe struct {
	path string
	f    *os.File // the write end, once open
	// gone is set once the compiler has exited: what is still written is
	// dropped, as is what a compiler that closed its end does not read.
	gone atomic.Bool
	done chan struct{}
	err  error
	at   time.Time // when the whole source was written
}

func newFeedPipe(path string) (*feedPipe, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return &feedPipe{path: path, done: make(chan struct{})}, nil
}

// feed runs fn in the background; when it returns, the write end is
// closed (the end of the source for the compiler) and, if fn failed, the
// job is cancelled.
func (p *feedPipe) feed(ctx context.Context, cancel context.CancelFunc, fn func(context.Context, io.Writer) error) {
	go func() {
		defer close(p.done)
		p.err = fn(ctx, &feedWriter{p: p, ctx: ctx})
		p.at = time.Now()
		if p.f != nil {
			p.f.Close()
		}
		if p.err != nil {
			cancel()
		}
	}()
}

// feedWriter is the io.Writer Feed gets.
type feedWriter struct {
	p   *feedPipe
	ctx context.Context
}

func (w *feedWriter) Write(b []byte) (int, error) {
	p := w.p
	if p.f == nil {
		f, err := p.open(w.ctx)
		if err != nil {
			return 0, err
		}
		if f == nil {
			return len(b), nil // the compiler exited without opening it
		}
		p.f = f
	}
	n, err := p.f.Write(b)
	if err != nil && (p.gone.Load() || errors.Is(err, syscall.EPIPE)) {
		return len(b), nil // the compiler stopped reading: its exit status tells
	}
	return n, err
}

// open opens the write end as soon as the compiler has opened the pipe
// for reading; nil without an error if the compiler exits first.
func (p *feedPipe) open(ctx context.Context) (*os.File, error) {
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		f, err := os.OpenFile(p.path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
			return nil, err
		}
		if p.gone.Load() {
			return nil, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(wait)
	}
}

// wait marks the compiler gone (it has exited) and waits for the feed to
// end: its error, and when the source was complete.
func (p *feedPipe) wait() (time.Time, error) {
	p.gone.Store(true)
	<-p.done
	return p.at, p.err
}
