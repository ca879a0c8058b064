package broker_test

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestNoGoroutineLeak runs a broker in-process, registers a volunteer and
// a client through the real protocol, grants, renews and releases a lease,
// drops a second lease by closing its session, serves the status API, and
// closes everything: no goroutine may outlive the broker.
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := testfarm.StartInProcess(t, "v1 16 2 slots=4\n", true)
	b := p.Broker
	// A volunteer registers.
	vs := p.Dial(t, "host", "v1", wire.Hello{Role: wire.RoleVolunteer, Name: "v1"})
	vst, _ := vs.OpenStream()
	vc := wire.NewConn(vst, wire.MaxControlFrame, 5*time.Second)
	const fp = "x86_64-linux-gnu gcc version 1"
	if err := vc.Send(&wire.Register{Name: "v1", Addr: "127.0.0.1:9", CPUs: 16, Slots: 4,
		Compilers: []wire.CompilerInfo{{Name: "gcc", Fingerprint: fp}}, Status: wire.HostStatus{Available: true}}); err != nil {
		t.Fatal(err)
	}
	vc.Send(&wire.HostStatus{Available: true})
	// The registration travels on another connection than the lease
	// request below: wait until the broker has it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if d := b.Status(""); len(d.Hosts) == 1 && d.Hosts[0].Tier > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("volunteer not usable: %+v", b.Status(""))
		}
	}

	// A client leases, renews and releases.
	cs := p.Client(t, "alice")
	st, _ := cs.OpenStream()
	lc := wire.NewConn(st, wire.MaxControlFrame, 5*time.Second)
	lc.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: 10, Digest: make([]byte, 32), MaxWaitMs: 5000})
	var g *wire.LeaseGrant
	for g == nil {
		m, err := lc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.LeaseGrant:
			g = m
		case *wire.LeaseQueued:
		default:
			t.Fatalf("got %T %+v", m, m)
		}
	}
	lc.Send(&wire.LeaseRenew{LeaseID: g.LeaseID})
	lc.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: wire.OutcomeOK})
	st.Close()

	// A second client holds a lease and vanishes.
	cs2 := p.Client(t, "bob")
	st2, _ := cs2.OpenStream()
	lc2 := wire.NewConn(st2, wire.MaxControlFrame, 5*time.Second)
	lc2.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: 10, Digest: make([]byte, 32), MaxWaitMs: 5000})
	if _, err := wire.Expect[*wire.LeaseGrant](lc2); err != nil {
		t.Fatal(err)
	}
	cs2.Close()

	resp, err := http.Get("http://" + b.HTTPAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(3 * time.Second)
	for b.Status("").Leases != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.Status("").Leases; n != 0 {
		t.Fatalf("%d leases left", n)
	}
	cs.Close()
	vs.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
