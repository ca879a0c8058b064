package reliability

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

func userOf(d *status.Doc, name string) *status.User {
	for i := range d.Users {
		if d.Users[i].Name == name {
			return &d.Users[i]
		}
	}
	return nil
}

// TestBrokerRestartMidBuild kills the broker with SIGKILL during a build
// and starts it again on the same state directory about a second later.
// The volunteers compile through a gate, shut when the broker dies, so
// that every slot runs a job then, and held long after the restart:
//   - the restarted broker adopts the leases of the running jobs when the
//     volunteers reconnect;
//   - those jobs outlive two lease TTLs after the restart (nothing renews
//     them but the volunteers' reports) and each finishes once, on the
//     farm: no lease expires, no job is cancelled or compiled again;
//   - the build finishes with 0 failed compiles and identical objects;
//   - usage saved before the crash survives it.
func TestBrokerRestartMidBuild(t *testing.T) {
	const ttl = 3 * time.Second
	gate := testfarm.NewGate(t, "gcc")
	gate.Open()
	f := testfarm.New(t, testfarm.Host{Name: "a", CPUs: 16, Power: 2}, testfarm.Host{Name: "b", CPUs: 16, Power: 2})
	f.BrokerArgs = []string{"--lease-ttl", ttl.String()}
	f.StartBroker()
	brokerUp := time.Now()
	va := startVolunteer(f, "a", 3, "--compilers", gate.Path)
	vb := startVolunteer(f, "b", 3, "--compilers", gate.Path)
	f.WaitHosts("a", "b")

	// "early" compiles before the broker's periodic usage save (every 10 s).
	// Its jobs are held a second on the farm, so that its usage (3 slots
	// x 1 s x power 2) shows in the status however fast this machine
	// compiles.
	early := newBuild(t, 3, func(i int) string { return smallSource(1000 + i) }, "-O2")
	gate.Shut()
	earlyDone := make(chan struct{})
	go func() { early.run(f, "early", 3); close(earlyDone) }()
	gate.WaitHeld(t, 3, 30*time.Second)
	time.Sleep(time.Second)
	gate.Open()
	<-earlyDone
	early.check(t)
	waitFor(5*time.Second, statusOK(f, func(d *status.Doc) bool { return userOf(d, "early") != nil }))
	eu := userOf(f.Status(), "early")
	if eu == nil {
		t.Fatal("early's usage does not show")
	}
	usageBefore := eu.Usage
	okBefore := va.jobs("ok") + vb.jobs("ok")

	// The main build: once usage has been saved, every slot's job is held
	// and the broker dies.
	b := newBuild(t, 40, smallSource, "-O2")
	time.Sleep(time.Until(brokerUp.Add(saveAfter)))
	gate.Shut()
	built := make(chan struct{})
	go func() { b.run(f, "builder", 8); close(built) }()
	gate.WaitHeld(t, 6, 30*time.Second)
	doneAtKill := b.done.Load()
	bp := f.BrokerProc()
	logBefore := len(bp.Output())
	bp.Signal(syscall.SIGKILL)
	bp.Wait()
	killed := time.Now()
	time.Sleep(time.Second)
	f.StartBroker()
	restarted := time.Now()
	down := restarted.Sub(killed)

	// Volunteers re-register; the six running jobs' leases are adopted.
	f.WaitHosts("a", "b")
	adopted, ok := waitFor(10*time.Second, func() bool {
		return strings.Count(f.BrokerProc().Output()[logBefore:], "\tadopt\t") >= 6
	})
	if !ok {
		t.Fatalf("restarted broker did not adopt the 6 running leases; log:\n%s", f.BrokerProc().Output()[logBefore:])
	}
	eu = userOf(f.Status(), "early")
	if eu == nil || eu.Usage < usageBefore*0.95 {
		t.Fatalf("usage of early before the crash %.2f, after %+v", usageBefore, eu)
	}
	// The held jobs outlive two TTLs after the restart.
	time.Sleep(time.Until(restarted.Add(2*ttl + time.Second)))
	if d := f.Status(); d.Leases != 6 {
		t.Fatalf("adopted leases lost while their jobs ran: %d of 6 left; reclaims %+v", d.Leases, d.Reclaims)
	}
	if n := gate.Held(); n != 6 {
		t.Fatalf("%d held jobs left of 6: jobs were cancelled", n)
	}
	gate.Open()
	<-built
	remote, local, fallbacks := b.check(t)
	if _, ok := waitFor(10*time.Second, statusOK(f, idle)); !ok {
		t.Fatalf("leases left after the build (adopted leases not released?): %+v", f.Status())
	}
	for _, r := range f.Status().Reclaims {
		if strings.HasPrefix(r.Reason, "expired") {
			t.Fatalf("a lease expired: %+v", r)
		}
	}
	cancelled := va.jobs("cancelled") + vb.jobs("cancelled")
	if cancelled != 0 {
		t.Fatalf("%v jobs were cancelled on the volunteers", cancelled)
	}
	// Every file the farm compiled, it compiled once: the held six
	// included, none compiled twice.
	farmJobs := va.jobs("ok") + vb.jobs("ok") - okBefore
	nRemote := 0
	for _, n := range remote {
		nRemote += n
	}
	if int(farmJobs) != nRemote || nRemote < 6 {
		t.Fatalf("volunteers ran %v jobs for %d remote compiles (want equal, at least the 6 held)", farmJobs, nRemote)
	}
	figure(t, "broker kill -9 with all 6 slots running held jobs (%d of 40 files done, -j8), restarted %s later; 6 leases adopted %s after restart and kept alive by the volunteers' reports for 2 TTLs (%s); each held job finished once on the farm, no lease expired, 0 jobs cancelled; build: remote %v, local %d (reasons %v), 0 failed, objects identical; usage of a user saved before the crash %.2f -> %.2f after restart",
		doneAtKill, down.Round(time.Millisecond), adopted.Round(time.Millisecond), ttl, remote, local, fallbacks, usageBefore, eu.Usage)
}

// saveAfter is when, after the broker starts, its first periodic usage save
// (every 10 s) has surely happened.
const saveAfter = 10*time.Second + 700*time.Millisecond
