package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	testKey  = []byte("correct horse battery staple, farm key")
	otherKey = []byte("another farm's key, not ours at all")
)

// recorder keeps every byte written on both ends of a connection.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf.Bytes()...)
}

type recConn struct {
	net.Conn
	rec *recorder
}

func (c recConn) Write(p []byte) (int, error) {
	c.rec.mu.Lock()
	c.rec.buf.Write(p)
	c.rec.mu.Unlock()
	return c.Conn.Write(p)
}

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

func admitAll(session uint64) (func(*Hello) (*Welcome, *Error), *[]Hello) {
	var seen []Hello
	var mu sync.Mutex
	return func(h *Hello) (*Welcome, *Error) {
		mu.Lock()
		seen = append(seen, *h)
		mu.Unlock()
		return &Welcome{Session: session, BrokerKey: []byte("bkey"), LeaseTTLMs: 30000}, nil
	}, &seen
}

func TestHandshake(t *testing.T) {
	hello := Hello{Role: RoleVolunteer, Name: "vol-1", User: "bob", Build: "test"}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Run("success", func(t *testing.T) {
				rec := &recorder{}
				c, s := tr.pair(t)
				admit, seen := admitAll(77)
				rc, rs := run(t, recConn{c, rec}, recConn{s, rec},
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, hello) },
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				if rc.err != nil || rs.err != nil {
					t.Fatalf("client err %v, server err %v", rc.err, rs.err)
				}
				if want := (&Welcome{Session: 77, BrokerKey: []byte("bkey"), LeaseTTLMs: 30000}); !equalWelcome(rc.v, want) {
					t.Errorf("welcome %#v, want %#v", rc.v, want)
				}
				h := rs.v
				if h.Version != ProtocolVersion || h.Role != hello.Role || h.Name != hello.Name || h.User != hello.User || h.Build != hello.Build || len(h.Nonce) != NonceSize {
					t.Errorf("server got hello %#v", h)
				}
				if len(*seen) != 1 || (*seen)[0].Name != "vol-1" {
					t.Errorf("admit saw %v", *seen)
				}
				onWire := rec.bytes()
				if len(onWire) == 0 {
					t.Fatal("recorder saw nothing")
				}
				if bytes.Contains(onWire, testKey) || bytes.Contains(onWire, testKey[:MinKeySize]) {
					t.Error("the farm key crossed the wire")
				}
			})

			t.Run("wrong key on client", func(t *testing.T) {
				rec := &recorder{}
				c, s := tr.pair(t)
				admit, seen := admitAll(1)
				rc, rs := run(t, recConn{c, rec}, recConn{s, rec},
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, otherKey, hello) },
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				// The server proves first, so a client with another key
				// notices the mismatch and refuses before sending its proof.
				if !errors.Is(rc.err, ErrAuth) {
					t.Errorf("client err = %v, want ErrAuth", rc.err)
				}
				if rs.err == nil {
					t.Error("server completed a handshake with a client holding another key")
				}
				if len(*seen) != 0 {
					t.Error("admit called for an unauthenticated client")
				}
				if bytes.Contains(rec.bytes(), testKey) || bytes.Contains(rec.bytes(), otherKey) {
					t.Error("a key crossed the wire")
				}
			})

			t.Run("rogue client without key", func(t *testing.T) {
				c, s := tr.pair(t)
				admit, seen := admitAll(1)
				rc, rs := run(t, c, s,
					func(c net.Conn) (*Welcome, error) {
						// Skips the server-proof check and answers with a proof
						// made with another key.
						conn := NewConn(c, MaxHandshakeFrame, 0)
						h := hello
						h.Version = ProtocolVersion
						h.Nonce = bytes.Repeat([]byte{9}, NonceSize)
						if err := conn.Send(&h); err != nil {
							return nil, err
						}
						ch, err := Expect[*Challenge](conn)
						if err != nil {
							return nil, err
						}
						if err := conn.Send(&Auth{Proof: proof(otherKey, "dcc-client\x00", ch.Nonce, h.Nonce, &h)}); err != nil {
							return nil, err
						}
						return Expect[*Welcome](conn)
					},
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				if !errors.Is(rs.err, ErrAuth) {
					t.Errorf("server err = %v, want ErrAuth", rs.err)
				}
				var e *Error
				if !errors.As(rc.err, &e) || e.Code != CodeAuth {
					t.Errorf("client err = %v, want *Error with CodeAuth", rc.err)
				}
				if len(*seen) != 0 {
					t.Error("admit called for an unauthenticated client")
				}
			})

			t.Run("replayed client proof", func(t *testing.T) {
				// Record a good session, then replay its Auth in a new one:
				// the server's fresh nonce must make it worthless.
				rec := &recorder{}
				c, s := tr.pair(t)
				admit, _ := admitAll(1)
				rc, rs := run(t, recConn{c, rec}, s,
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, hello) },
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				if rc.err != nil || rs.err != nil {
					t.Fatalf("first session: %v / %v", rc.err, rs.err)
				}
				sent := NewConn(bytes.NewBuffer(rec.bytes()), MaxHandshakeFrame, 0)
				oldHello, err := Expect[*Hello](sent)
				if err != nil {
					t.Fatal(err)
				}
				oldAuth, err := Expect[*Auth](sent)
				if err != nil {
					t.Fatal(err)
				}
				c, s = tr.pair(t)
				rc, rs = run(t, c, s,
					func(c net.Conn) (*Welcome, error) {
						conn := NewConn(c, MaxHandshakeFrame, 0)
						if err := conn.Send(oldHello); err != nil {
							return nil, err
						}
						if _, err := Expect[*Challenge](conn); err != nil {
							return nil, err
						}
						if err := conn.Send(oldAuth); err != nil {
							return nil, err
						}
						return Expect[*Welcome](conn)
					},
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				if !errors.Is(rs.err, ErrAuth) {
					t.Errorf("replay: server err = %v, want ErrAuth", rs.err)
				}
				var e *Error
				if !errors.As(rc.err, &e) || e.Code != CodeAuth {
					t.Errorf("replay: client err = %v, want CodeAuth", rc.err)
				}
			})

			t.Run("wrong key on server", func(t *testing.T) {
				c, s := tr.pair(t)
				admit, seen := admitAll(1)
				rc, rs := run(t, c, s,
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, hello) },
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, otherKey, admit) })
				if !errors.Is(rc.err, ErrAuth) || rc.v != nil {
					t.Errorf("client = %v, %v; want ErrAuth", rc.v, rc.err)
				}
				if rs.err == nil || len(*seen) != 0 {
					t.Errorf("server err = %v, admitted %d", rs.err, len(*seen))
				}
			})

			for _, v := range []int{0, ProtocolVersion + 1, -1} {
				t.Run(fmt.Sprint("wrong version ", v), func(t *testing.T) {
					c, s := tr.pair(t)
					admit, seen := admitAll(1)
					rc, rs := run(t, c, s,
						func(c net.Conn) (*Challenge, error) {
							conn := NewConn(c, MaxHandshakeFrame, 0)
							if err := conn.Send(&Hello{Version: v, Role: RoleClient, Name: "old", Nonce: make([]byte, NonceSize)}); err != nil {
								return nil, err
							}
							return Expect[*Challenge](conn)
						},
						func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
					var e *Error
					if !errors.As(rc.err, &e) || e.Code != CodeVersion {
						t.Errorf("version %d: client err = %v, want CodeVersion", v, rc.err)
					}
					if !errors.As(rs.err, &e) || e.Code != CodeVersion {
						t.Errorf("version %d: server err = %v, want CodeVersion", v, rs.err)
					}
					if len(*seen) != 0 {
						t.Error("admitted")
					}
				})
			}

			for _, n := range []int{0, NonceSize - 1, NonceSize + 1} {
				t.Run(fmt.Sprint("bad nonce ", n), func(t *testing.T) {
					c, s := tr.pair(t)
					admit, _ := admitAll(1)
					rc, rs := run(t, c, s,
						func(c net.Conn) (*Challenge, error) {
							conn := NewConn(c, MaxHandshakeFrame, 0)
							if err := conn.Send(&Hello{Version: ProtocolVersion, Nonce: make([]byte, n)}); err != nil {
								return nil, err
							}
							return Expect[*Challenge](conn)
						},
						func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
					var e *Error
					if !errors.As(rc.err, &e) || e.Code != CodeBadRequest {
						t.Errorf("nonce %d: client err = %v, want CodeBadRequest", n, rc.err)
					}
					if rs.err == nil {
						t.Error("server accepted")
					}
				})
			}

			t.Run("server challenge with short nonce", func(t *testing.T) {
				c, s := tr.pair(t)
				rc, _ := run(t, c, s,
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, hello) },
					func(s net.Conn) (*Hello, error) {
						conn := NewConn(s, MaxHandshakeFrame, 0)
						h, err := Expect[*Hello](conn)
						if err != nil {
							return nil, err
						}
						sn := []byte("short")
						return h, conn.Send(&Challenge{Version: ProtocolVersion, Nonce: sn, Proof: proof(testKey, "dcc-server\x00", h.Nonce, sn, h)})
					})
				if !errors.Is(rc.err, ErrAuth) {
					t.Errorf("client err = %v, want ErrAuth", rc.err)
				}
			})

			t.Run("admit refuses", func(t *testing.T) {
				c, s := tr.pair(t)
				refusal := &Error{Code: CodeUnknown, Message: "no such host vol-1"}
				rc, rs := run(t, c, s,
					func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, hello) },
					func(s net.Conn) (*Hello, error) {
						return ServerHandshake(s, testKey, func(*Hello) (*Welcome, *Error) { return nil, refusal })
					})
				var e *Error
				if !errors.As(rc.err, &e) || *e != *refusal {
					t.Errorf("client err = %v, want %v", rc.err, refusal)
				}
				if !errors.As(rs.err, &e) || *e != *refusal {
					t.Errorf("server err = %v, want %v", rs.err, refusal)
				}
				if rc.v != nil || rs.v != nil {
					t.Error("values returned with a refusal")
				}
			})

			t.Run("message out of order", func(t *testing.T) {
				c, s := tr.pair(t)
				admit, _ := admitAll(1)
				_, rs := run(t, c, s,
					func(c net.Conn) (any, error) {
						return nil, NewConn(c, MaxHandshakeFrame, 0).Send(&Auth{Proof: []byte("x")})
					},
					func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
				if !errors.Is(rs.err, ErrUnexpected) {
					t.Errorf("server err = %v, want ErrUnexpected", rs.err)
				}
			})

			garbage := []struct {
				name  string
				bytes []byte
				want  error
			}{
				{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrFrameTooLarge},
				{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, ErrFrameTooLarge},
				{"zero length", []byte{0, 0, 0, 0, 1}, ErrMalformed},
				{"small bad frame", []byte{0, 0, 0, 3, 1, 0xc1, 0xc1}, ErrMalformed},
				{"unknown type", []byte{0, 0, 0, 2, 0xee, 0x80}, ErrUnknownType},
			}
			for _, g := range garbage {
				t.Run("garbage before hello/"+g.name, func(t *testing.T) {
					c, s := tr.pair(t)
					admit, _ := admitAll(1)
					serverDone := make(chan struct{})
					_, rs := run(t, c, s,
						func(c net.Conn) (any, error) {
							frame, _ := AppendFrame(append([]byte(nil), g.bytes...), &Hello{Version: ProtocolVersion, Nonce: make([]byte, NonceSize)})
							go func() { _, _ = c.Write(frame) }()
							// Keep the connection open until the server gives
							// up: it must not depend on the client closing it.
							select {
							case <-serverDone:
							case <-time.After(2 * HandshakeTimeout):
							}
							return nil, nil
						},
						func(s net.Conn) (*Hello, error) {
							defer close(serverDone)
							return ServerHandshake(s, testKey, admit)
						})
					if !errors.Is(rs.err, g.want) {
						t.Errorf("server err = %v, want %v", rs.err, g.want)
					}
					if rs.dur > HandshakeTimeout/2 {
						t.Errorf("server took %v to refuse garbage", rs.dur)
					}
				})
			}
		})
	}
}

func equalWelcome(a, b *Welcome) bool {
	return a != nil && b != nil && a.Session == b.Session && bytes.Equal(a.BrokerKey, b.BrokerKey) && a.LeaseTTLMs == b.LeaseTTLMs
}

// A peer that connects and sends nothing (or half a frame) is dropped after
// HandshakeTimeout, on either side. These are the slow tests of the
// package; they run in parallel with each other and the rest.
func TestHandshakeSilentPeerTimesOut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes HandshakeTimeout")
	}
	admit, _ := admitAll(1)
	tests := []struct {
		name   string
		send   []byte // what the silent peer sends before going quiet
		client bool   // the silent peer is the server; ClientHandshake waits
	}{
		{"client sends nothing", nil, false},
		// A header declaring 100 bytes and only 3 of them.
		{"client sends half a frame", []byte{0, 0, 0, 101, byte(TypeHello), 0x80, 0x80, 0x80}, false},
		{"server sends nothing", nil, true},
	}
	// The cases run concurrently in goroutines rather than as parallel
	// subtests, so that -parallel does not serialise them.
	type outcome struct {
		err error
		d   time.Duration
	}
	outcomes := make([]chan outcome, len(tests))
	for i, tt := range tests {
		c, s := tcpPair(t)
		defer c.Close()
		defer s.Close()
		silent, waiting := c, s
		if tt.client {
			silent, waiting = s, c
		}
		if _, err := silent.Write(tt.send); err != nil {
			t.Fatal(err)
		}
		outcomes[i] = make(chan outcome, 1)
		go func() {
			start := time.Now()
			var err error
			if tt.client {
				_, err = ClientHandshake(waiting, testKey, Hello{Role: RoleClient})
			} else {
				_, err = ServerHandshake(waiting, testKey, admit)
			}
			outcomes[i] <- outcome{err, time.Since(start)}
		}()
	}
	deadline := time.After(HandshakeTimeout + 5*time.Second)
	for i, tt := range tests {
		select {
		case o := <-outcomes[i]:
			var ne net.Error
			if !errors.As(o.err, &ne) || !ne.Timeout() {
				t.Errorf("%s: handshake err = %v, want a timeout", tt.name, o.err)
			}
			if o.d < HandshakeTimeout-100*time.Millisecond || o.d > HandshakeTimeout+2*time.Second {
				t.Errorf("%s: handshake returned after %v, want about %v", tt.name, o.d, HandshakeTimeout)
			}
		case <-deadline:
			t.Fatalf("%s: handshake still waiting for a silent peer", tt.name)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want string
		ok   bool
	}{
		{"no path", "", "", false},
		{"missing", filepath.Join(dir, "nope"), "", false},
		{"empty", write("empty", ""), "", false},
		{"short", write("short", "0123456789abcde"), "", false},
		{"short after trim", write("shorttrim", "  0123456789abcde \n\n"), "", false},
		{"exactly min", write("min", "0123456789abcdef"), "0123456789abcdef", true},
		{"trimmed", write("trim", "\t 0123456789abcdef0123 \r\n"), "0123456789abcdef0123", true},
		{"inner space kept", write("inner", "0123456789 abcdef\n"), "0123456789 abcdef", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(tt.path)
			if tt.ok != (err == nil) {
				t.Fatalf("LoadKey = %q, %v", k, err)
			}
			if string(k) != tt.want {
				t.Errorf("key %q, want %q", k, tt.want)
			}
		})
	}
}

var _ io.ReadWriter = recConn{}

// deadlineConn records the deadlines set on a connection and the read
// deadline in force at every Read.
type deadlineConn struct {
	net.Conn
	mu            sync.Mutex
	read, write   time.Time
	readsUnder    []time.Time
	setReadCalls  int
	setWriteCalls int
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.read, c.write = t, t
	c.setReadCalls++
	c.setWriteCalls++
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.read = t
	c.setReadCalls++
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.write = t
	c.setWriteCalls++
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.readsUnder = append(c.readsUnder, c.read)
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// Every read of the handshake, on both sides, runs under a deadline at most
// HandshakeTimeout from the start, and none is left set afterwards. (A Conn
// with timeout 0 used to clear the deadline before each read, so a silent
// peer held a handshake open forever.)
func TestHandshakeDeadlines(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := tr.pair(t)
			dc, ds := &deadlineConn{Conn: c}, &deadlineConn{Conn: s}
			admit, _ := admitAll(3)
			start := time.Now()
			rc, rs := run(t, dc, ds,
				func(c net.Conn) (*Welcome, error) { return ClientHandshake(c, testKey, Hello{Role: RoleClient}) },
				func(s net.Conn) (*Hello, error) { return ServerHandshake(s, testKey, admit) })
			if rc.err != nil || rs.err != nil {
				t.Fatal(rc.err, rs.err)
			}
			for side, d := range map[string]*deadlineConn{"client": dc, "server": ds} {
				d.mu.Lock()
				if len(d.readsUnder) == 0 {
					t.Errorf("%s: no reads recorded", side)
				}
				for i, dl := range d.readsUnder {
					if dl.IsZero() || dl.After(start.Add(HandshakeTimeout+time.Second)) {
						t.Errorf("%s: read %d under deadline %v (start %v)", side, i, dl, start)
					}
				}
				if !d.read.IsZero() || !d.write.IsZero() {
					t.Errorf("%s: deadlines left set: read %v write %v", side, d.read, d.write)
				}
				d.mu.Unlock()
			}
		})
	}
}
