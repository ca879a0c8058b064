// Package transport opens and accepts the connections every dcc component
// uses: TCP, mutual TLS 1.3 with the farm's certificates
// (internal/identity), the hello exchange (pkg/wire), then a yamux session
// tuned to notice a dead peer within seconds. Who a peer is comes from its
// verified certificate; what it may do is decided by the caller's admit
// function, from that identity and its hello.
package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/identity"
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

// Dial connects to addr over mutual TLS with cfg (identity.ClientConfig:
// it presents this side's credential and checks the server's), says
// hello and returns the client side of a yamux session with the server's
// Welcome. A refusal is one clear line (identity.Explain, or the
// server's *wire.Error).
func Dial(ctx context.Context, addr string, cfg *tls.Config, hello wire.Hello) (*yamux.Session, *wire.Welcome, error) {
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	noDelay(raw)
	conn := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, wire.HandshakeTimeout)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("tls with %s: %w", addr, identity.Explain(err))
	}
	// In TLS 1.3 the server checks the client's certificate after the
	// client's handshake ends: its refusal comes as the first read here.
	w, err := wire.ClientHello(conn, hello)
	if err != nil {
		conn.Close()
		return nil, nil, identity.Explain(err)
	}
	s, err := yamux.Client(newCoalescingConn(conn), YamuxConfig())
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("yamux: %w", err)
	}
	return s, w, nil
}

// Admit decides whether a verified peer may open a session with hello:
// it returns the Welcome, or the refusal to send.
type Admit func(p identity.Peer, h *wire.Hello) (*wire.Welcome, *wire.Error)

// Accept runs the TLS handshake (cfg from identity.ServerConfig: the
// client must present a certificate of this farm's CA) and the hello
// exchange on conn and, if admit lets the peer in, returns the server side
// of a yamux session with the peer and its hello. conn is closed on
// failure. The whole exchange is bounded by wire.HandshakeTimeout.
func Accept(conn net.Conn, cfg *tls.Config, admit Admit) (*yamux.Session, identity.Peer, *wire.Hello, error) {
	noDelay(conn)
	tc := tls.Server(conn, cfg)
	_ = conn.SetDeadline(time.Now().Add(wire.HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, identity.Peer{}, nil, fmt.Errorf("tls: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	peer, err := identity.PeerOf(tc.ConnectionState())
	if err != nil {
		conn.Close()
		return nil, identity.Peer{}, nil, err
	}
	h, err := wire.ServerHello(tc, func(h *wire.Hello) (*wire.Welcome, *wire.Error) { return admit(peer, h) })
	if err != nil {
		conn.Close()
		return nil, peer, h, err
	}
	s, err := yamux.Server(newCoalescingConn(tc), YamuxConfig())
	if err != nil {
		conn.Close()
		return nil, peer, h, fmt.Errorf("yamux: %w", err)
	}
	return s, peer, h, nil
}

func noDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}
