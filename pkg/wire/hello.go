package wire

import (
	"fmt"
	"io"
	"net"
	"time"
)

// The hello exchange runs on every connection right after the mutual TLS
// handshake (internal/transport), before the multiplexer: the client says
// which role it takes and which build it runs, the server admits it or
// refuses it with an Error. Who the peer is comes from its certificate,
// not from anything it says here; the names in a Hello are checked
// against the certificate (a volunteer) or only logged (a client's
// machine name).

// helloConn wraps conn for the exchange without exposing its deadline
// methods: a Conn with timeout 0 clears the read deadline on every Recv,
// which would lift the HandshakeTimeout set on conn and let a silent peer
// hold the exchange open for ever.
func helloConn(conn net.Conn) *Conn {
	return NewConn(struct{ io.ReadWriter }{conn}, MaxHandshakeFrame, 0)
}

// ClientHello sends h and returns the server's Welcome, or its refusal
// as an *Error. The whole exchange is bounded by HandshakeTimeout.
func ClientHello(conn net.Conn, h Hello) (*Welcome, error) {
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	c := helloConn(conn)
	h.Version = ProtocolVersion
	if err := c.Send(&h); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	w, err := Expect[*Welcome](c)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	return w, nil
}

// ServerHello reads the client's Hello and answers it with what admit
// returns: the Welcome, or an *Error refusal (also returned as the error,
// with the Hello).
// Nothing but one Hello of at most MaxHandshakeFrame bytes is read.
func ServerHello(conn net.Conn, admit func(*Hello) (*Welcome, *Error)) (*Hello, error) {
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	c := helloConn(conn)
	refuse := func(e *Error) error {
		_ = c.Send(e)
		return e
	}
	h, err := Expect[*Hello](c)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if h.Version != ProtocolVersion {
		return nil, refuse(&Error{Code: CodeVersion, Message: fmt.Sprintf("protocol version %d not supported (this is %d): upgrade dcc", h.Version, ProtocolVersion)})
	}
	w, e := admit(h)
	if e != nil {
		return h, refuse(e) // the hello, for the refusal's log line
	}
	if err := c.Send(w); err != nil {
		return nil, fmt.Errorf("hello: send welcome: %w", err)
	}
	return h, nil
}
