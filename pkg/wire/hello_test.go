package wire

import (
	"errors"
	"net"
	"testing"
	"time"
)

type transport struct {
	name string
	pair func(t *testing.T) (client, server net.Conn)
}

var transports = []transport{
	{"pipe", func(t *testing.T) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return c, r.c
}

type result[T any] struct {
	v   T
	err error
	dur time.Duration
}

// run runs the two sides concurrently, each closing its end when it
// returns, and fails the test if either hangs.
func run[C, S any](t *testing.T, cc, sc net.Conn, client func(net.Conn) (C, error), server func(net.Conn) (S, error)) (result[C], result[S]) {
	t.Helper()
	chC := make(chan result[C], 1)
	chS := make(chan result[S], 1)
	start := time.Now()
	go func() {
		v, err := client(cc)
		chC <- result[C]{v, err, time.Since(start)}
		cc.Close()
	}()
	go func() {
		v, err := server(sc)
		chS <- result[S]{v, err, time.Since(start)}
		sc.Close()
	}()
	timeout := time.After(HandshakeTimeout + 3*time.Second)
	var rc result[C]
	var rs result[S]
	for i := 0; i < 2; i++ {
		select {
		case rc = <-chC:
		case rs = <-chS:
		case <-timeout:
			cc.Close()
			sc.Close()
			t.Fatal("handshake hangs")
		}
	}
	return rc, rs
}

func TestHelloExchange(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cc, sc := tr.pair(t)
			rc, rs := run(t, cc, sc,
				func(c net.Conn) (*Welcome, error) {
					return ClientHello(c, Hello{Role: RoleVolunteer, Name: "h1", Build: "b"})
				},
				func(c net.Conn) (*Hello, error) {
					return ServerHello(c, func(h *Hello) (*Welcome, *Error) {
						return &Welcome{Session: 9, BrokerKey: []byte("k"), LeaseTTLMs: 3000}, nil
					})
				})
			if rc.err != nil || rs.err != nil {
				t.Fatalf("client %v, server %v", rc.err, rs.err)
			}
			if rc.v.Session != 9 || rs.v.Name != "h1" || rs.v.Version != ProtocolVersion {
				t.Fatalf("welcome %+v hello %+v", rc.v, rs.v)
			}
		})
	}
}

// TestHelloRefusals: a refusal from admit and a version mismatch reach
// the client as the *Error the server sent, and end the server's side
// with it too.
func TestHelloRefusals(t *testing.T) {
	refusal := &Error{Code: CodeAuth, Message: "a user credential cannot register as a host"}
	cases := []struct {
		name  string
		hello Hello
		admit func(*Hello) (*Welcome, *Error)
		code  int
	}{
		{"admit refuses", Hello{Role: RoleVolunteer, Name: "x"}, func(*Hello) (*Welcome, *Error) { return nil, refusal }, CodeAuth},
		{"other version", Hello{Role: RoleClient}, nil, CodeVersion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			rc, rs := run(t, cc, sc,
				func(c net.Conn) (*Welcome, error) {
					if tc.code == CodeVersion {
						// An old client: send a hello of another version by hand.
						h := tc.hello
						h.Version = ProtocolVersion + 1
						if err := helloConn(c).Send(&h); err != nil {
							return nil, err
						}
						return Expect[*Welcome](helloConn(c))
					}
					return ClientHello(c, tc.hello)
				},
				func(c net.Conn) (*Hello, error) { return ServerHello(c, tc.admit) })
			var ce, se *Error
			if !errors.As(rc.err, &ce) || ce.Code != tc.code {
				t.Fatalf("client got %v, want *Error code %d", rc.err, tc.code)
			}
			if !errors.As(rs.err, &se) || se.Code != tc.code {
				t.Fatalf("server got %v, want *Error code %d", rs.err, tc.code)
			}
		})
	}
}

// TestHelloBounded: a silent client and an oversized hello end the
// server's side within the handshake timeout, having read at most one
// small frame.
func TestHelloBounded(t *testing.T) {
	t.Run("silent", func(t *testing.T) {
		cc, sc := tcpPair(t)
		defer cc.Close()
		start := time.Now()
		_, err := ServerHello(sc, func(*Hello) (*Welcome, *Error) { return &Welcome{}, nil })
		if err == nil || time.Since(start) > HandshakeTimeout+2*time.Second {
			t.Fatalf("silent client: %v after %s", err, time.Since(start))
		}
	})
	t.Run("oversized", func(t *testing.T) {
		cc, sc := tcpPair(t)
		defer cc.Close()
		go cc.Write([]byte{0x7f, 0xff, 0xff, 0xff, byte(TypeHello)})
		_, err := ServerHello(sc, func(*Hello) (*Welcome, *Error) { return &Welcome{}, nil })
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("oversized hello: %v", err)
		}
	})
}
