package testfarm

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Raw peers speak the protocol directly, for tests of the broker's rules
// that need exact control of what a client or a volunteer sends.

// DialAs opens a session to addr with the credential file cred, as hello
// says, expecting the server to hold the credential expect checks.
func DialAs(addr, cred string, expect func(identity.Peer) error, hello wire.Hello) (*yamux.Session, error) {
	id, err := identity.Load(cred)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, _, err := transport.Dial(ctx, addr, identity.ClientConfig(id, expect), hello)
	return s, err
}

// Dial opens a session to the broker with a credential for name in role
// (a host, a user or an admin); the test closes it.
func (p *InProcess) Dial(t testing.TB, role, name string, hello wire.Hello) *yamux.Session {
	t.Helper()
	s, err := DialAs(p.Broker.Addr(), p.Identity(t, role, name), identity.Expect(identity.RoleBroker, ""), hello)
	if err != nil {
		t.Fatalf("dial the broker as %s %s: %v", role, name, err)
	}
	return s
}

// DialVolunteer opens a job session to volunteer host at addr as user.
func (p *InProcess) DialVolunteer(t testing.TB, addr, host, user string) *yamux.Session {
	t.Helper()
	s, err := DialAs(addr, p.Identity(t, "user", user), identity.Expect(identity.RoleHost, host), wire.Hello{Role: wire.RoleClient, Name: "test"})
	if err != nil {
		t.Fatalf("dial volunteer %s as %s: %v", host, user, err)
	}
	return s
}

// Client opens a client session to the broker as user.
func (p *InProcess) Client(t testing.TB, user string) *yamux.Session {
	return p.Dial(t, "user", user, wire.Hello{Role: wire.RoleClient, Name: "test-" + user})
}

// RawVolunteer is a fake volunteer registered through the protocol: it
// sends what the test tells it and runs nothing.
type RawVolunteer struct {
	Sess *yamux.Session
	C    *wire.Conn
}

// RegisterVolunteer registers name with slots offering the compiler fp,
// and waits until the broker can lease its slots.
func (p *InProcess) RegisterVolunteer(t testing.TB, name string, slots int, fp string) *RawVolunteer {
	t.Helper()
	s := p.Dial(t, "host", name, wire.Hello{Role: wire.RoleVolunteer, Name: name})
	st, err := s.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(st, wire.MaxControlFrame, 5*time.Second)
	if err := c.Send(&wire.Register{Name: name, Addr: "127.0.0.1:9", CPUs: slots, Slots: slots,
		Compilers: []wire.CompilerInfo{{Name: "gcc", Fingerprint: fp}}, Status: wire.HostStatus{Available: true}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		d := p.Broker.Status("")
		if h := HostOf(d, name); h != nil && h.Tier > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("volunteer %s not usable: %+v", name, d)
		}
	}
	return &RawVolunteer{Sess: s, C: c}
}

// Close ends the fake volunteer's session.
func (v *RawVolunteer) Close() { v.Sess.Close() }

// RequestLease opens a lease stream on s and asks for a slot for fp. It
// returns the stream and the broker's first answer other than a queue
// notice, or nil if the request is still queued after wait.
func RequestLease(t testing.TB, s *yamux.Session, fp string, wait time.Duration) (*wire.Conn, wire.Message) {
	t.Helper()
	st, err := s.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(st, wire.MaxControlFrame, 5*time.Second)
	if err := c.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: 10, Digest: make([]byte, 32), MaxWaitMs: 60000}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.RecvTimeout(wait)
		if err != nil {
			return c, nil // still waiting (a timeout), or the stream ended
		}
		if _, ok := m.(*wire.LeaseQueued); !ok {
			return c, m
		}
	}
}

// Dial opens a session to the farm's broker with a credential for name in
// role (host, user or admin), as hello says.
func (f *Farm) Dial(role, name string, hello wire.Hello) (*yamux.Session, error) {
	return DialAs(f.Broker, f.Identity(role, name), identity.Expect(identity.RoleBroker, ""), hello)
}

// DialVolunteer opens a job session to the volunteer host at addr as user.
func (f *Farm) DialVolunteer(addr, host, user string) (*yamux.Session, error) {
	return DialAs(addr, f.Identity("user", user), identity.Expect(identity.RoleHost, host), wire.Hello{Role: wire.RoleClient, Name: "test"})
}
