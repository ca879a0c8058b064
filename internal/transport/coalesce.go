package transport

import (
	"encoding/binary"
	"net"
)

// yamux frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
	coalesceMax     = 16 << 10
)

// coalescingConn joins a yamux data frame's header with its body.
// yamux's send loop writes the 12-byte header and the body with two
// Write calls, which costs two system calls (and often two TCP segments)
// per frame; a lease exchange is a handful of small frames, so this
// halves the broker's write system calls. It is deterministic, with no
// timers: a data-frame header with a non-empty body is held back and
// written together with the very next Write, which yamux's single send
// goroutine always makes at once; everything else passes straight
// through. Only small bodies are joined, so large transfers are not
// copied.
type coalescingConn struct {
	net.Conn
	held []byte
	buf  []byte
}

func newCoalescingConn(c net.Conn) net.Conn { return &coalescingConn{Conn: c} }

func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.held == nil {
		if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData {
			if n := binary.BigEndian.Uint32(p[8:12]); n > 0 && n <= coalesceMax {
				c.held = append(c.buf[:0], p...)
				return len(p), nil
			}
		}
		return c.Conn.Write(p)
	}
	frame := append(c.held, p...)
	c.held = nil
	n, err := c.Conn.Write(frame)
	c.buf = frame[:0]
	n -= yamuxHeaderSize
	if n < 0 {
		n = 0
	}
	return n, err
}
