package fairness

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/sim"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

const fakeFP = "x86_64-linux-gnu gcc fake-1.0"

// liveTolerance is how far (absolute share of slot-time) the live broker
// may differ from the simulator for each user. Real sockets add a few
// milliseconds between a release and the client's next request, which the
// virtual clock does not have.
const liveTolerance = 0.05

// TestLiveBrokerMatchesSimulator starts a real broker with the farm of
// scenarios/live3.json, registers fake volunteers, and runs fake clients
// that keep each user's -j lease requests in flight, hold each lease for
// the job time (200 ms) and release it. The slot-time share each user gets
// over the contended window must match the simulator's share for the same
// scenario under the dcc policy.
func TestLiveBrokerMatchesSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	sc, err := sim.Load("../../scenarios/live3.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := sim.RunNamed(sc, "dcc")
	if err != nil {
		t.Fatal(err)
	}

	var hosts []testfarm.Host
	for _, h := range sc.Hosts {
		hosts = append(hosts, testfarm.Host{Name: h.Name, CPUs: h.CPUs, Power: h.Power, Extra: fmt.Sprintf("slots=%d", h.Slots)})
	}
	f := testfarm.New(t, hosts...)
	farmText, err := os.ReadFile(f.FarmFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range sc.Users {
		if u.Weight > 0 {
			farmText = fmt.Appendf(farmText, "user %s weight=%g\n", u.Name, u.Weight)
		}
	}
	if err := os.WriteFile(f.FarmFile, farmText, 0o644); err != nil {
		t.Fatal(err)
	}
	f.StartBroker()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, h := range sc.Hosts {
		go fakeVolunteer(ctx, t, f, h)
	}
	names := make([]string, len(sc.Hosts))
	for i, h := range sc.Hosts {
		names[i] = h.Name
	}
	f.WaitHosts(names...)

	job := time.Duration(sc.Users[0].Builds[0].JobS.Mean * float64(time.Second))
	const run = 6 * time.Second
	start := time.Now()
	stop := start.Add(run)
	var mu sync.Mutex
	held := map[string]time.Duration{}
	grants := map[string]int{}
	// The contended window skips the first second (ramp-up) and ends
	// before the clients stop.
	w0, w1 := start.Add(time.Second), stop.Add(-200*time.Millisecond)
	var wg sync.WaitGroup
	for _, u := range sc.Users {
		sess, err := f.Dial("user", u.Name, wire.Hello{Role: wire.RoleClient, Name: "machine-" + u.Name})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		for range u.Builds[0].Parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					g, r, err := lease(sess, job)
					if err != nil {
						if ctx.Err() == nil && time.Now().Before(stop) {
							t.Errorf("%s: %v", u.Name, err)
						}
						return
					}
					a, b := maxTime(g, w0), minTime(r, w1)
					mu.Lock()
					if b.After(a) {
						held[u.Name] += b.Sub(a)
					}
					grants[u.Name]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	var total time.Duration
	for _, d := range held {
		total += d
	}
	if total == 0 {
		t.Fatal("no slot-time measured")
	}
	for _, u := range sc.Users {
		got := held[u.Name].Seconds() / total.Seconds()
		exp := want.Users[u.Name].Share
		t.Logf("%-6s live share %.3f (%d grants), simulator %.3f", u.Name, got, grants[u.Name], exp)
		if math.Abs(got-exp) > liveTolerance {
			t.Errorf("%s: live share %.3f, simulator %.3f (tolerance %.2f)", u.Name, got, exp, liveTolerance)
		}
	}
}

// lease asks for one lease on a new stream, holds it for d and releases it.
func lease(sess *yamux.Session, d time.Duration) (granted, released time.Time, err error) {
	st, err := sess.OpenStream()
	if err != nil {
		return granted, released, err
	}
	defer st.Close()
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	if err := c.Send(&wire.LeaseRequest{Fingerprint: fakeFP, Lang: "c", MaxWaitMs: 30000, File: "fake.c"}); err != nil {
		return granted, released, err
	}
	for {
		m, err := c.RecvTimeout(30 * time.Second)
		if err != nil {
			return granted, released, err
		}
		switch m := m.(type) {
		case *wire.LeaseQueued:
			continue
		case *wire.LeaseGrant:
			granted = time.Now()
			time.Sleep(d)
			released = time.Now()
			err := c.Send(&wire.LeaseRelease{LeaseID: m.LeaseID, Outcome: wire.OutcomeOK})
			return granted, released, err
		default:
			return granted, released, fmt.Errorf("unexpected %T %+v", m, m)
		}
	}
}

// fakeVolunteer registers h with the broker and reports a low load every
// 500 ms until ctx ends. It runs no jobs: the fake clients only hold leases.
func fakeVolunteer(ctx context.Context, t *testing.T, f *testfarm.Farm, h sim.Host) {
	sess, err := f.Dial("host", h.Name, wire.Hello{Role: wire.RoleVolunteer, Name: h.Name})
	if err != nil {
		t.Errorf("volunteer %s: %v", h.Name, err)
		return
	}
	defer sess.Close()
	st, err := sess.OpenStream()
	if err != nil {
		t.Errorf("volunteer %s: %v", h.Name, err)
		return
	}
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	status := wire.HostStatus{Load1: 0.1, Load5: 0.1, Load15: 0.1, Available: true}
	if err := c.Send(&wire.Register{Name: h.Name, Addr: "127.0.0.1:1", CPUs: h.CPUs, Slots: h.Slots,
		Compilers: []wire.CompilerInfo{{Name: "gcc", Fingerprint: fakeFP}}, Status: status}); err != nil {
		t.Errorf("volunteer %s: register: %v", h.Name, err)
		return
	}
	go func() { // drain broker commands
		for {
			if _, err := c.RecvTimeout(0); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := c.Send(&status); err != nil {
				return
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
