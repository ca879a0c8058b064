package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// NonceSize is the size of handshake nonces.
const NonceSize = 32

// MinKeySize is the shortest farm secret accepted.
const MinKeySize = 16

// LoadKey reads a farm key file: the secret is the file's content with
// surrounding white space removed.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no key file given")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k := []byte(strings.TrimSpace(string(b)))
	if len(k) < MinKeySize {
		return nil, fmt.Errorf("key file %s: secret shorter than %d bytes", path, MinKeySize)
	}
	return k, nil
}

func proof(key []byte, label string, a, b []byte, h *Hello) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	for _, p := range [][]byte{a, b, []byte(h.Role), []byte(h.Name), []byte(h.User)} {
		var l [4]byte
		l[0], l[1], l[2], l[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		m.Write(l[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

func nonce() []byte {
	b := make([]byte, NonceSize)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic("wire: no randomness: " + err.Error())
	}
	return b
}

// handshakeConn wraps conn for the handshake without exposing its deadline
// methods: a Conn with timeout 0 clears the read deadline on every Recv,
// which would lift the HandshakeTimeout set on conn and let a silent peer
// hold the handshake open forever.
func handshakeConn(conn net.Conn) *Conn {
	return NewConn(struct{ io.ReadWriter }{conn}, MaxHandshakeFrame, 0)
}

// ClientHandshake proves to the server that the client holds key and checks
// that the server holds it too; the key itself never crosses the wire. It
// runs on the raw connection, before the multiplexer.
func ClientHandshake(conn net.Conn, key []byte, h Hello) (*Welcome, error) {
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	c := handshakeConn(conn)
	h.Version = ProtocolVersion
	h.Nonce = nonce()
	if err := c.Send(&h); err != nil {
		return nil, fmt.Errorf("handshake: send hello: %w", err)
	}
	ch, err := Expect[*Challenge](c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if len(ch.Nonce) != NonceSize || !hmac.Equal(ch.Proof, proof(key, "dcc-server\x00", h.Nonce, ch.Nonce, &h)) {
		return nil, fmt.Errorf("%w: server does not hold the farm key", ErrAuth)
	}
	if err := c.Send(&Auth{Proof: proof(key, "dcc-client\x00", ch.Nonce, h.Nonce, &h)}); err != nil {
		return nil, fmt.Errorf("handshake: send auth: %w", err)
	}
	w, err := Expect[*Welcome](c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return w, nil
}

// ServerHandshake runs the server side. admit is called with the
// authenticated Hello and returns the Welcome to send or an *Error refusal.
// Nothing but these four messages is read before the client has proved it
// holds the key.
func ServerHandshake(conn net.Conn, key []byte, admit func(*Hello) (*Welcome, *Error)) (*Hello, error) {
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	c := handshakeConn(conn)
	refuse := func(code int, msg string) error {
		_ = c.Send(&Error{Code: code, Message: msg})
		return &Error{Code: code, Message: msg}
	}
	h, err := Expect[*Hello](c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if h.Version != ProtocolVersion {
		return nil, refuse(CodeVersion, fmt.Sprintf("protocol version %d not supported (want %d)", h.Version, ProtocolVersion))
	}
	if len(h.Nonce) != NonceSize {
		return nil, refuse(CodeBadRequest, "bad nonce")
	}
	sn := nonce()
	if err := c.Send(&Challenge{Version: ProtocolVersion, Nonce: sn, Proof: proof(key, "dcc-server\x00", h.Nonce, sn, h)}); err != nil {
		return nil, fmt.Errorf("handshake: send challenge: %w", err)
	}
	a, err := Expect[*Auth](c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !hmac.Equal(a.Proof, proof(key, "dcc-client\x00", sn, h.Nonce, h)) {
		_ = refuse(CodeAuth, "authentication failed")
		return nil, fmt.Errorf("%w: client %q (%s) does not hold the farm key", ErrAuth, h.Name, conn.RemoteAddr())
	}
	w, e := admit(h)
	if e != nil {
		return nil, refuse(e.Code, e.Message)
	}
	if err := c.Send(w); err != nil {
		return nil, fmt.Errorf("handshake: send welcome: %w", err)
	}
	return h, nil
}
