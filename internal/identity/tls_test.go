package identity

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ioTimeout bounds every test connection; no test waits for it unless
// something is broken.
const ioTimeout = 10 * time.Second

// served is what the server side of one connection saw.
type served struct {
	state tls.ConnectionState
	err   error
}

// startServer accepts TLS connections on loopback with cfg; for each it
// runs the handshake, writes one byte, and reports on the channel.
func startServer(t testing.TB, cfg *tls.Config) (string, <-chan served) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan served, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				if err == nil {
					_, err = tc.Write([]byte{'x'})
				}
				ch <- served{tc.ConnectionState(), err}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), ch
}

// dial connects with cfg, handshakes and reads the server's byte: in TLS
// 1.3 a server's refusal of our certificate arrives only with that first
// read. The client writes nothing, so the server closes with nothing
// unread and its alert is not lost to a reset.
// It returns the handshake's state and the first error with its stage.
func dial(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return tls.ConnectionState{}, "handshake", err
	}
	if _, err := io.ReadFull(tc, make([]byte, 1)); err != nil {
		return tc.ConnectionState(), "read", err
	}
	return tc.ConnectionState(), "", nil
}

func recv(t testing.TB, ch <-chan served) served {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(2 * ioTimeout):
		t.Fatal("server never finished")
		return served{}
	}
}

func TestHandshakeUserToBroker(t *testing.T) {
	ca := newCA(t)
	broker, err := ca.ServerIdentity(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	user := issueID(t, ca, RoleUser, "bob")
	var accepted []Peer
	var mu sync.Mutex
	addr, ch := startServer(t, ServerConfig(broker, func(p Peer) error {
		mu.Lock()
		accepted = append(accepted, p)
		mu.Unlock()
		return Accept(nil, RoleUser)(p)
	}))
	cs, stage, err := dial(t, addr, ClientConfig(user, Expect(RoleBroker, "")))
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	s := recv(t, ch)
	if s.err != nil {
		t.Fatal("server:", s.err)
	}
	if cs.Version != tls.VersionTLS13 || s.state.Version != tls.VersionTLS13 {
		t.Fatalf("versions %x %x", cs.Version, s.state.Version)
	}
	p, err := PeerOf(s.state)
	if err != nil || p.Role != RoleUser || p.Name != "bob" || p.Serial.Cmp(user.Serial) != 0 {
		t.Fatalf("server sees %+v, %v", p, err)
	}
	if b, err := PeerOf(cs); err != nil || b.Role != RoleBroker {
		t.Fatalf("client sees %+v, %v", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(accepted) != 1 || accepted[0].Name != "bob" {
		t.Fatalf("accept saw %v", accepted)
	}
}

// The client refuses a host whose certificate names another host than the
// one it was granted.
func TestHandshakeWrongHostName(t *testing.T) {
	ca := newCA(t)
	sun2 := issueID(t, ca, RoleHost, "sun2")
	user := issueID(t, ca, RoleUser, "bob")
	addr, ch := startServer(t, ServerConfig(sun2, Accept(nil, RoleUser)))
	_, stage, err := dial(t, addr, ClientConfig(user, Expect(RoleHost, "sun1")))
	if stage != "handshake" || err == nil || !strings.Contains(err.Error(), "the peer is host sun2, not host sun1") {
		t.Fatalf("%s: %v", stage, err)
	}
	if s := recv(t, ch); s.err == nil {
		t.Fatal("server finished a handshake the client refused")
	}
	// The right name works.
	if _, stage, err := dial(t, addr, ClientConfig(user, Expect(RoleHost, "sun2"))); err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	recv(t, ch)
	// A user certificate does not pass for a host.
	other := issueID(t, ca, RoleUser, "sun1")
	addr2, ch2 := startServer(t, ServerConfig(other, nil))
	if _, _, err := dial(t, addr2, ClientConfig(user, Expect(RoleHost, "sun1"))); err == nil || !strings.Contains(err.Error(), "not a host") {
		t.Fatalf("err = %v", err)
	}
	recv(t, ch2)
}

func TestHandshakeRoleRefused(t *testing.T) {
	ca := newCA(t)
	host := issueID(t, ca, RoleHost, "sun1")
	admin := issueID(t, ca, RoleAdmin, "root1")
	other := issueID(t, ca, RoleHost, "sun2")
	addr, ch := startServer(t, ServerConfig(host, Accept(nil, RoleUser)))
	// An admin may compile as a user.
	if _, stage, err := dial(t, addr, ClientConfig(admin, Expect(RoleHost, "sun1"))); err != nil {
		t.Fatalf("admin: %s: %v", stage, err)
	}
	recv(t, ch)
	// Another host may not.
	_, stage, err := dial(t, addr, ClientConfig(other, Expect(RoleHost, "sun1")))
	if stage != "read" || err == nil {
		t.Fatalf("host as client: %s: %v", stage, err)
	}
	if e := Explain(err); !strings.Contains(e.Error(), "the peer refused our credential") {
		t.Fatalf("Explain = %v", e)
	}
	if s := recv(t, ch); s.err == nil || !strings.Contains(s.err.Error(), "host sun2 may not connect here") {
		t.Fatalf("server: %v", s.err)
	}
}

// A credential of another farm fails on both sides, whichever side holds
// it, with an error saying so.
func TestHandshakeOtherFarm(t *testing.T) {
	ours, theirs := newCA(t), newCA(t)
	broker, _ := ours.ServerIdentity(nil, nil)
	user := issueID(t, ours, RoleUser, "bob")
	stranger := issueID(t, theirs, RoleUser, "bob")
	addr, ch := startServer(t, ServerConfig(broker, Accept(nil)))

	t.Run("foreign client", func(t *testing.T) {
		// Trusts our CA, so the client side goes as far as it can.
		fake := *stranger
		fake.CA, fake.CACert = user.CA, user.CACert
		_, stage, err := dial(t, addr, ClientConfig(&fake, Expect(RoleBroker, "")))
		if err == nil {
			t.Fatal("accepted")
		}
		if e := Explain(err); !strings.Contains(e.Error(), "from another farm's CA") {
			t.Fatalf("client %s: %v", stage, e)
		}
		s := recv(t, ch)
		if s.err == nil {
			t.Fatal("server accepted")
		}
		e := Explain(s.err)
		if !strings.Contains(e.Error(), `the certificate of user bob is from another farm's CA ("dcc farm CA `+theirs.ID()+`")`) {
			t.Fatalf("server: %v", e)
		}
		if strings.Contains(e.Error(), "\n") {
			t.Fatalf("not one line: %q", e)
		}
	})
	t.Run("foreign server", func(t *testing.T) {
		theirBroker, _ := theirs.ServerIdentity(nil, nil)
		addr2, ch2 := startServer(t, ServerConfig(theirBroker, nil))
		_, stage, err := dial(t, addr2, ClientConfig(user, Expect(RoleBroker, "")))
		want := `the certificate of broker broker is from another farm's CA ("dcc farm CA ` + theirs.ID() + `"), not this farm's ("dcc farm CA ` + ours.ID() + `")`
		if stage != "handshake" || err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("client %s: %v", stage, err)
		}
		if s := recv(t, ch2); s.err == nil || !strings.Contains(Explain(s.err).Error(), "the peer refused our credential") {
			t.Fatalf("server: %v", s.err)
		}
	})
}

func TestHandshakeExpired(t *testing.T) {
	ca := newCA(t)
	broker, _ := ca.ServerIdentity(nil, nil)
	user := issueID(t, ca, RoleUser, "bob")
	old := issueExpired(t, ca, RoleUser, "old")
	oldHost := issueExpired(t, ca, RoleHost, "sun1")

	addr, ch := startServer(t, ServerConfig(broker, Accept(nil)))
	_, stage, err := dial(t, addr, ClientConfig(old, Expect(RoleBroker, "")))
	if err == nil || !strings.Contains(Explain(err).Error(), "it has expired") {
		t.Fatalf("client %s: %v", stage, err)
	}
	if s := recv(t, ch); s.err == nil || !strings.Contains(Explain(s.err).Error(), "the certificate of user old is not valid now") {
		t.Fatalf("server: %v", s.err)
	}

	addr2, ch2 := startServer(t, ServerConfig(oldHost, nil))
	if _, stage, err := dial(t, addr2, ClientConfig(user, Expect(RoleHost, "sun1"))); stage != "handshake" ||
		err == nil || !strings.Contains(err.Error(), "the certificate of host sun1 is not valid now") {
		t.Fatalf("client %s: %v", stage, err)
	}
	recv(t, ch2)
}

func TestHandshakeTLS12Refused(t *testing.T) {
	ca := newCA(t)
	broker, _ := ca.ServerIdentity(nil, nil)
	user := issueID(t, ca, RoleUser, "bob")
	addr, ch := startServer(t, ServerConfig(broker, nil))
	cfg := ClientConfig(user, nil)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, _, err := dial(t, addr, cfg); err == nil {
		t.Fatal("TLS 1.2 accepted")
	}
	recv(t, ch)
}

// The second connection resumes the first's session, VerifyConnection runs
// on both sides for it, and a credential revoked in between is refused
// even though its session would resume.
func TestHandshakeResumption(t *testing.T) {
	ca := newCA(t)
	broker, _ := ca.ServerIdentity(nil, nil)
	user := issueID(t, ca, RoleUser, "bob")
	rev, err := LoadRevocations(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var accepts, expects atomic.Int32
	accept := Accept(rev, RoleUser)
	addr, ch := startServer(t, ServerConfig(broker, func(p Peer) error { accepts.Add(1); return accept(p) }))
	ccfg := ClientConfig(user, func(p Peer) error { expects.Add(1); return Expect(RoleBroker, "")(p) })

	first, stage, err := dial(t, addr, ccfg)
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	if s := recv(t, ch); s.err != nil || s.state.DidResume || first.DidResume {
		t.Fatalf("first connection: %v resumed %v/%v", s.err, s.state.DidResume, first.DidResume)
	}
	second, stage, err := dial(t, addr, ccfg)
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	s := recv(t, ch)
	if s.err != nil || !second.DidResume || !s.state.DidResume {
		t.Fatalf("second connection: %v resumed %v/%v", s.err, second.DidResume, s.state.DidResume)
	}
	if accepts.Load() != 2 || expects.Load() != 2 {
		t.Fatalf("accept ran %d times, expect %d: want 2 each", accepts.Load(), expects.Load())
	}
	// The resumed connection still says who the peer is.
	if p, err := PeerOf(s.state); err != nil || p.Name != "bob" || p.Serial.Cmp(user.Serial) != 0 {
		t.Fatalf("resumed peer %+v, %v", p, err)
	}
	if p, err := PeerOf(second); err != nil || p.Role != RoleBroker {
		t.Fatalf("resumed peer %+v, %v", p, err)
	}

	if _, err := Revoke(ca.Dir(), RoleUser, "bob"); err != nil {
		t.Fatal(err)
	}
	if changed, err := rev.ReloadIfChanged(); !changed || err != nil {
		t.Fatal(changed, err)
	}
	_, stage, err = dial(t, addr, ccfg)
	if err == nil {
		t.Fatal("revoked credential accepted")
	}
	s = recv(t, ch)
	if !errors.Is(s.err, ErrRevoked) || !s.state.DidResume {
		t.Fatalf("server: %v (resumed %v): want a refused resumption", s.err, s.state.DidResume)
	}
	if e := Explain(err); stage != "read" || !strings.Contains(e.Error(), "the peer refused our credential") {
		t.Fatalf("client %s: %v", stage, e)
	}
}

// The broker's serving certificate is an ordinary server certificate for
// the names given, as an HTTPS client verifying host names sees it.
func TestServerIdentityHTTPS(t *testing.T) {
	ca := newCA(t)
	id, err := ca.ServerIdentity([]string{"localhost", "broker.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != RoleBroker || id.Name != RoleBroker {
		t.Fatalf("%s %s", id.Role, id.Name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ErrorLog:  log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.Cert}},
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	for _, c := range []struct {
		name string
		ok   bool
	}{{"localhost", true}, {"broker.example", true}, {"127.0.0.1", true}, {"other.example", false}} {
		client := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: c.name},
		}}
		resp, err := client.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("name %s: err %v, want ok %v", c.name, err, c.ok)
		}
		client.CloseIdleConnections()
	}
}
