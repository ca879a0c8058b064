package wire

import (
	"fmt"
	"io"
	"time"
)

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Conn sends and receives messages on one stream (a TCP connection, a yamux
// stream or a unix socket) with a frame cap and per-operation deadlines.
// Like the stream under it, a Conn is safe for one reader and one writer at
// a time, not for several concurrent readers or writers.
type Conn struct {
	rw           io.ReadWriter
	dl           deadliner
	MaxFrame     int           // cap on received frames
	ReadTimeout  time.Duration // 0: no deadline (the caller bounds the wait otherwise)
	WriteTimeout time.Duration // 0: no deadline
}

// NewConn wraps rw. If rw supports deadlines they are applied on every operation.
func NewConn(rw io.ReadWriter, maxFrame int, timeout time.Duration) *Conn {
	c := &Conn{rw: rw, MaxFrame: maxFrame, ReadTimeout: timeout, WriteTimeout: timeout}
	c.dl, _ = rw.(deadliner)
	return c
}

// Send writes m as one frame.
func (c *Conn) Send(m Message) error {
	if c.dl != nil && c.WriteTimeout > 0 {
		_ = c.dl.SetWriteDeadline(time.Now().Add(c.WriteTimeout))
	}
	return WriteFrame(c.rw, m)
}

// Recv reads and decodes one message. A received *Error is returned as a
// message, not as an error; see Expect.
func (c *Conn) Recv() (Message, error) {
	return c.RecvTimeout(c.ReadTimeout)
}

// RecvTimeout is Recv with an explicit deadline (0: none).
func (c *Conn) RecvTimeout(d time.Duration) (Message, error) {
	if c.dl != nil {
		var t time.Time
		if d > 0 {
			t = time.Now().Add(d)
		}
		_ = c.dl.SetReadDeadline(t)
	}
	t, body, err := ReadFrame(c.rw, c.MaxFrame)
	if err != nil {
		return nil, err
	}
	return Decode(t, body)
}

// Expect receives one message and requires it to be a T. A peer's *Error is
// returned as the error.
func Expect[T Message](c *Conn) (T, error) {
	var zero T
	m, err := c.Recv()
	if err != nil {
		return zero, err
	}
	if t, ok := m.(T); ok {
		return t, nil
	}
	if e, ok := m.(*Error); ok {
		return zero, e
	}
	return zero, fmt.Errorf("%w: got %T, want %T", ErrUnexpected, m, zero)
}

// Close closes the underlying stream if it can be closed.
func (c *Conn) Close() error {
	if cl, ok := c.rw.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
