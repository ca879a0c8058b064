package broker_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/broker"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

const testFP = "x86_64-linux-gnu gcc version test"

func scrape(t *testing.T, b *broker.Broker) string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestQueuedRequestsPerUserBounded: past --max-queued waiting requests,
// a user's next request is told to compile locally at once.
func TestQueuedRequestsPerUserBounded(t *testing.T) {
	p := testfarm.StartInProcessWith(t, "v1 1 2 slots=1\n", true, func(c *broker.Config) { c.MaxQueued = 3 })
	defer p.Broker.Close()
	v := p.RegisterVolunteer(t, "v1", 1, testFP)
	defer v.Close()
	s := p.Client(t, "alice")
	defer s.Close()
	if _, m := testfarm.RequestLease(t, s, testFP, 5*time.Second); m == nil {
		t.Fatal("first request not granted")
	}
	for i := 0; i < 3; i++ {
		if _, m := testfarm.RequestLease(t, s, testFP, 200*time.Millisecond); m != nil {
			t.Fatalf("request %d: got %T %+v, want it queued", i, m, m)
		}
	}
	_, m := testfarm.RequestLease(t, s, testFP, 5*time.Second)
	d, ok := m.(*wire.LeaseDenied)
	if !ok || d.Code != wire.DenyBusy {
		t.Fatalf("request past the cap: %T %+v, want DenyBusy", m, m)
	}
	// Another user is not limited by alice's queue.
	s2 := p.Client(t, "bob")
	defer s2.Close()
	if _, m := testfarm.RequestLease(t, s2, testFP, 200*time.Millisecond); m != nil {
		t.Fatalf("bob's request: %T %+v, want it queued", m, m)
	}
	if !strings.Contains(scrape(t, p.Broker), `dcc_broker_requests_denied_total{reason="busy"} 1`) {
		t.Fatal("the refusal is not counted")
	}
}

// TestStreamsPerSessionBounded: past --max-streams open streams on one
// session, a new stream is answered "compile locally" without queueing.
func TestStreamsPerSessionBounded(t *testing.T) {
	p := testfarm.StartInProcessWith(t, "v1 1 2 slots=1\n", false, func(c *broker.Config) { c.MaxStreams = 4 })
	defer p.Broker.Close()
	v := p.RegisterVolunteer(t, "v1", 1, testFP)
	defer v.Close()
	s := p.Client(t, "alice")
	defer s.Close()
	testfarm.RequestLease(t, s, testFP, 5*time.Second) // holds the slot
	for i := 0; i < 3; i++ {
		if _, m := testfarm.RequestLease(t, s, testFP, 200*time.Millisecond); m != nil {
			t.Fatalf("stream %d: got %T %+v, want it queued", i, m, m)
		}
	}
	_, m := testfarm.RequestLease(t, s, testFP, 5*time.Second)
	if d, ok := m.(*wire.LeaseDenied); !ok || d.Code != wire.DenyBusy {
		t.Fatalf("stream past the cap: %T %+v, want DenyBusy", m, m)
	}
	if q := p.Broker.Status("").Queue; q != 3 {
		t.Fatalf("queue %d, want the 3 streams under the cap", q)
	}
}

// TestJobDoneOnlyForOwnLeases: a volunteer may end only leases on itself;
// a JobDone naming another host's lease is ignored and counted.
func TestJobDoneOnlyForOwnLeases(t *testing.T) {
	p := testfarm.StartInProcess(t, "v1 1 2 slots=1\nv2 1 1 slots=1\n", true)
	defer p.Broker.Close()
	v1 := p.RegisterVolunteer(t, "v1", 1, testFP)
	defer v1.Close()
	v2 := p.RegisterVolunteer(t, "v2", 1, testFP)
	defer v2.Close()
	s := p.Client(t, "alice")
	defer s.Close()
	_, m := testfarm.RequestLease(t, s, testFP, 5*time.Second)
	g, ok := m.(*wire.LeaseGrant)
	if !ok || g.Host != "v1" {
		t.Fatalf("want a grant on v1 (the faster host), got %T %+v", m, m)
	}
	v2.C.Send(&wire.JobDone{LeaseID: g.LeaseID, Outcome: wire.OutcomeOK})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(scrape(t, p.Broker), `dcc_broker_refused_total{reason="foreign_lease"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("the foreign JobDone is not counted as refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.Broker.Status("").Leases; n != 1 {
		t.Fatalf("v2 released v1's lease: %d leases left", n)
	}
	// The owner may.
	v1.C.Send(&wire.JobDone{LeaseID: g.LeaseID, Outcome: wire.OutcomeOK})
	for p.Broker.Status("").Leases != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the owner's JobDone did not release its lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReleaseOutcomeLabelsBounded: a free-form outcome from a client is
// counted as "other", never as a new label value.
func TestReleaseOutcomeLabelsBounded(t *testing.T) {
	p := testfarm.StartInProcess(t, "v1 1 2 slots=1\n", true)
	defer p.Broker.Close()
	v := p.RegisterVolunteer(t, "v1", 1, testFP)
	defer v.Close()
	s := p.Client(t, "alice")
	defer s.Close()
	for i, outcome := range []string{"mallory-was-here", "x\ny", wire.OutcomeOK} {
		c, m := testfarm.RequestLease(t, s, testFP, 5*time.Second)
		g, ok := m.(*wire.LeaseGrant)
		if !ok {
			t.Fatalf("lease %d: %T %+v", i, m, m)
		}
		c.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: outcome})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape(t, p.Broker)
		if strings.Contains(body, `dcc_broker_leases_released_total{outcome="other"} 2`) && strings.Contains(body, `dcc_broker_leases_released_total{outcome="ok"} 1`) {
			if strings.Contains(body, "mallory") {
				t.Fatal("a client's outcome text became a label")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("released counts wrong:\n%s", grep(body, "leases_released"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
