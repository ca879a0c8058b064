package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// A farm of the tests' own: its CA, the server's identity and a user's.
var (
	pkiOnce              sync.Once
	serverTLS, clientTLS *tls.Config
	otherFarmTLS         *tls.Config // a user of another farm's CA
)

func newFarmPKI(t *testing.T, dir string) (server, user *tls.Config) {
	ca, err := identity.OpenCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := ca.ServerIdentity([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ca.Issue(identity.RoleUser, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := identity.ParseBundle(pem)
	if err != nil {
		t.Fatal(err)
	}
	return identity.ServerConfig(sid, nil), identity.ClientConfig(uid, identity.Expect(identity.RoleBroker, ""))
}

func pki(t *testing.T) {
	pkiOnce.Do(func() {
		serverTLS, clientTLS = newFarmPKI(t, filepath.Join(os.TempDir(), fmt.Sprintf("dcc-transport-test-%d-a", os.Getpid())))
		_, otherFarmTLS = newFarmPKI(t, filepath.Join(os.TempDir(), fmt.Sprintf("dcc-transport-test-%d-b", os.Getpid())))
	})
}

type server struct {
	ln       net.Listener
	sessions chan *yamux.Session
	hellos   chan *wire.Hello
	errs     chan error
}

func startServer(t *testing.T, admit func(*wire.Hello) (*wire.Welcome, *wire.Error)) *server {
	t.Helper()
	pki(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, sessions: make(chan *yamux.Session, 4), hellos: make(chan *wire.Hello, 4), errs: make(chan error, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sess, _, h, err := Accept(c, serverTLS, func(_ identity.Peer, h *wire.Hello) (*wire.Welcome, *wire.Error) { return admit(h) })
				if err != nil {
					s.errs <- err
					return
				}
				s.hellos <- h
				s.sessions <- sess
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func admitAll(*wire.Hello) (*wire.Welcome, *wire.Error) { return &wire.Welcome{Session: 7}, nil }

func dial(t *testing.T, s *server, cfg *tls.Config) (*yamux.Session, *wire.Welcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Dial(ctx, s.ln.Addr().String(), cfg, wire.Hello{Role: wire.RoleClient, Name: "tester", User: "alice"})
}

func connect(t *testing.T) (client, srv *yamux.Session) {
	t.Helper()
	s := startServer(t, admitAll)
	c, w, err := dial(t, s, clientTLS)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if w == nil || w.Session != 7 {
		t.Fatalf("welcome %+v", w)
	}
	select {
	case srv = <-s.sessions:
	case err := <-s.errs:
		t.Fatalf("Accept: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no server session")
	}
	h := <-s.hellos
	if h.Name != "tester" || h.User != "alice" || h.Role != wire.RoleClient {
		t.Errorf("hello %+v", h)
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv
}

// echo serves every stream of sess by copying it back.
func echo(sess *yamux.Session) {
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			io.Copy(st, st)
		}()
	}
}

func TestEndToEndEcho(t *testing.T) {
	client, srv := connect(t)
	go echo(srv)
	big := make([]byte, 1<<20)
	rand.Read(big)
	tests := []struct {
		name string
		msgs [][]byte
	}{
		{"1 MiB", [][]byte{big}},
		{"many small", func() [][]byte {
			var out [][]byte
			for i := range 2000 {
				out = append(out, bytes.Repeat([]byte{byte(i)}, 1+i%300))
			}
			return out
		}()},
		{"mixed sizes around 16 KiB", [][]byte{make([]byte, 16<<10), make([]byte, 16<<10+1), make([]byte, 16<<10-1), {1}, big[:100000]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := client.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(20 * time.Second))
			var want []byte
			for _, m := range tt.msgs {
				want = append(want, m...)
			}
			errc := make(chan error, 1)
			go func() {
				for _, m := range tt.msgs {
					if _, err := st.Write(m); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(st, got); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("echoed bytes differ")
			}
		})
	}
}

// Request/response both ways: the server opens streams to the client too,
// and many streams run at once.
func TestEndToEndBothWaysConcurrent(t *testing.T) {
	client, srv := connect(t)
	go echo(srv)
	go echo(client)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		opener := client
		if i%2 == 1 {
			opener = srv
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := opener.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(20 * time.Second))
			for j := range 100 {
				msg := make([]byte, 8+(i*j)%500)
				binary.BigEndian.PutUint32(msg, uint32(i))
				binary.BigEndian.PutUint32(msg[4:], uint32(j))
				if _, err := st.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(st, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- errors.New("reply differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDialOtherFarm: a credential from another farm's CA is refused by
// the TLS handshake on both sides, with a clear error, before any hello.
func TestDialOtherFarm(t *testing.T) {
	s := startServer(t, admitAll)
	sess, _, err := dial(t, s, otherFarmTLS)
	if err == nil {
		sess.Close()
		t.Fatal("Dial with another farm's credential succeeded")
	}
	if !strings.Contains(err.Error(), "another farm") {
		t.Errorf("err = %v, want it to say the certificate is another farm's", err)
	}
	select {
	case <-s.sessions:
		t.Fatal("server accepted a session")
	case err := <-s.errs:
		if err == nil {
			t.Fatal("server Accept returned nil error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server Accept did not fail")
	}
}

func TestAdmitRefusal(t *testing.T) {
	s := startServer(t, func(h *wire.Hello) (*wire.Welcome, *wire.Error) {
		return nil, &wire.Error{Code: 403, Message: "go away " + h.Name}
	})
	sess, _, err := dial(t, s, clientTLS)
	if err == nil {
		sess.Close()
		t.Fatal("Dial succeeded though admit refused")
	}
	var we *wire.Error
	if !errors.As(err, &we) || we.Message != "go away tester" {
		t.Fatalf("err = %v, want the refusal", err)
	}
}

func TestDialNobodyListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	if _, _, err := Dial(context.Background(), addr, clientTLS, wire.Hello{Role: wire.RoleClient}); err == nil {
		t.Fatal("Dial succeeded")
	}
	if d := time.Since(start); d > DialTimeout+time.Second {
		t.Fatalf("Dial took %v", d)
	}
}

func TestPeerCloseNoticed(t *testing.T) {
	tests := []struct {
		name   string
		closer func(client, srv *yamux.Session) *yamux.Session // returns the session that must notice
	}{
		{"server closes", func(c, s *yamux.Session) *yamux.Session { s.Close(); return c }},
		{"client closes", func(c, s *yamux.Session) *yamux.Session { c.Close(); return s }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, srv := connect(t)
			watcher := tt.closer(client, srv)
			select {
			case <-watcher.CloseChan():
			case <-time.After(5 * time.Second):
				t.Fatal("peer close not noticed within 5 s")
			}
			if !watcher.IsClosed() {
				t.Fatal("IsClosed = false")
			}
		})
	}
}

// A peer whose TCP connection is cut (no FIN from yamux) is noticed too.
func TestPeerConnectionCutNoticed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		raw <- c
		if _, _, _, err := Accept(c, serverTLS, func(identity.Peer, *wire.Hello) (*wire.Welcome, *wire.Error) { return admitAll(nil) }); err != nil {
			return
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, _, err := Dial(ctx, ln.Addr().String(), clientTLS, wire.Hello{Role: wire.RoleVolunteer, Name: "v"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	(<-raw).Close()
	select {
	case <-sess.CloseChan():
	case <-time.After(3*KeepAliveInterval + WriteTimeout):
		t.Fatal("cut connection not noticed")
	}
}

func TestYamuxConfigValid(t *testing.T) {
	if err := yamux.VerifyConfig(YamuxConfig()); err != nil {
		t.Fatal(err)
	}
	c := YamuxConfig()
	if c.KeepAliveInterval > 5*time.Second || !c.EnableKeepAlive {
		t.Fatalf("keepalive %v enabled %v", c.KeepAliveInterval, c.EnableKeepAlive)
	}
}

// A peer that hangs (connection open, nothing answered) is noticed by the
// keepalive within seconds, not yamux's default ~40 s.
func TestHungPeerNoticed(t *testing.T) {
	t.Parallel()
	s := startServer(t, admitAll)
	go func() {
		for sess := range s.sessions {
			go echo(sess)
		}
	}()
	// A proxy that forwards until frozen, then holds the connection open
	// and silent.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	var mu sync.Mutex
	frozen := false
	var conns []net.Conn
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			f := frozen
			mu.Unlock()
			if f {
				continue // swallow
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		c, err := pl.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", s.ln.Addr().String())
		if err != nil {
			c.Close()
			return
		}
		mu.Lock()
		conns = append(conns, c, up)
		mu.Unlock()
		go pipe(up, c)
		go pipe(c, up)
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, _, err := Dial(ctx, pl.Addr().String(), clientTLS, wire.Hello{Role: wire.RoleClient, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Ping(); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	mu.Lock()
	frozen = true
	mu.Unlock()
	start := time.Now()
	select {
	case <-sess.CloseChan():
		t.Logf("hung peer noticed after %v", time.Since(start).Round(100*time.Millisecond))
	case <-time.After(2*KeepAliveInterval + WriteTimeout + 2*time.Second):
		t.Fatal("hung peer not noticed")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []string{"a", "b"} {
		os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("dcc-transport-test-%d-%s", os.Getpid(), s)))
	}
	os.Exit(code)
}
