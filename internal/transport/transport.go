// Package transport opens and accepts the authenticated, multiplexed
// connections every dcc component uses: a TCP connection, the wire
// challenge–response handshake on the raw socket, then a yamux session
// tuned to notice a dead peer within seconds.
package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/pkg/wire"
)

// Timeouts for sessions. yamux's defaults (30 s keepalive) would leave a
// dead peer unnoticed for ~40 s; these notice it within ~6 s.
const (
	DialTimeout       = 3 * time.Second
	KeepAliveInterval = 2 * time.Second
	WriteTimeout      = 4 * time.Second
)

// YamuxConfig returns the session configuration shared by all components.
func YamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = KeepAliveInterval
	c.ConnectionWriteTimeout = WriteTimeout
	c.StreamOpenTimeout = 5 * time.Second
	c.StreamCloseTimeout = 30 * time.Second
	c.MaxStreamWindowSize = 4 << 20
	c.LogOutput = io.Discard
	c.AcceptBacklog = 1024
	return c
}

// Dial connects to addr, authenticates with key and returns the client side
// of a yamux session with the server's Welcome.
func Dial(ctx context.Context, addr string, key []byte, hello wire.Hello) (*yamux.Session, *wire.Welcome, error) {
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w, err := wire.ClientHandshake(conn, key, hello)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	s, err := yamux.Client(newCoalescingConn(conn), YamuxConfig())
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("yamux: %w", err)
	}
	return s, w, nil
}

// Accept runs the server handshake on conn and, if the peer is admitted,
// returns the server side of a yamux session. conn is closed on failure.
func Accept(conn net.Conn, key []byte, admit func(*wire.Hello) (*wire.Welcome, *wire.Error)) (*yamux.Session, *wire.Hello, error) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	h, err := wire.ServerHandshake(conn, key, admit)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	s, err := yamux.Server(newCoalescingConn(conn), YamuxConfig())
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("yamux: %w", err)
	}
	return s, h, nil
}
