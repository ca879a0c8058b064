package reliability

import (
	"fmt"
	"os"
	"path/filepath"
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
// The build must finish with 0 failed compiles and identical objects; the
// restarted broker must adopt the lease of a job still running on a
// volunteer when it reconnects; and usage saved before the crash must
// survive it.
func TestBrokerRestartMidBuild(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "a", CPUs: 16, Power: 2}, testfarm.Host{Name: "b", CPUs: 16, Power: 2})
	f.StartBroker()
	brokerUp := time.Now()
	startVolunteer(f, "a", 3)
	startVolunteer(f, "b", 3)
	f.WaitHosts("a", "b")
	env := []string{"DCC_LOCAL_POWER=0.000001"}

	// "early" compiles before the broker's periodic usage save (every 10 s).
	early := newBuild(t, 3, func(i int) string { return slowSource(60, fmt.Sprint("early", i)) }, "-O2")
	early.run(f, "early", 3, env...)
	early.check(t)
	d, _ := waitFor(5*time.Second, statusOK(f, func(d *status.Doc) bool { return userOf(d, "early") != nil }))
	_ = d
	eu := userOf(f.Status(), "early")
	if eu == nil {
		t.Fatal("early's usage does not show")
	}
	usageBefore := eu.Usage

	// The main build; midway, a long job runs when the broker dies.
	b := newBuild(t, 40, func(i int) string { return slowSource(10, fmt.Sprint("main", i)) }, "-O2")
	long := t.TempDir()
	writeFile(t, filepath.Join(long, "long.c"), slowSource(250, "long"))
	wantLong := compileLocal(t, long, "long", "-O2")
	os.Remove(filepath.Join(long, "long.o"))
	time.Sleep(time.Until(brokerUp.Add(saveAfter - 2*time.Second)))
	built := make(chan struct{})
	go func() { b.run(f, "builder", 8, env...); close(built) }()
	time.Sleep(time.Until(brokerUp.Add(saveAfter)))
	type out struct {
		stderr string
		err    error
	}
	longDone := make(chan out, 1)
	go func() {
		se, _, err := runDCC(f, long, "longjob", env, "-O2", "-c", "long.c", "-o", "long.o")
		longDone <- out{se, err}
	}()
	if _, ok := waitFor(20*time.Second, statusOK(f, func(d *status.Doc) bool {
		u := userOf(d, "longjob")
		return u != nil && u.Running == 1
	})); !ok {
		t.Fatal("long job never got a lease")
	}
	time.Sleep(300 * time.Millisecond) // let it reach the volunteer
	doneAtKill := b.done.Load()
	bp := f.BrokerProc()
	logBefore := len(bp.Output())
	bp.Signal(syscall.SIGKILL)
	bp.Wait()
	killed := time.Now()
	time.Sleep(time.Second)
	f.StartBroker()
	down := time.Since(killed)

	// Volunteers re-register; the long job's lease is adopted.
	f.WaitHosts("a", "b")
	adopted, ok := waitFor(10*time.Second, func() bool {
		return strings.Contains(f.BrokerProc().Output()[logBefore:], "adopt")
	})
	if !ok {
		t.Fatalf("restarted broker adopted no running lease; log:\n%s", f.BrokerProc().Output()[logBefore:])
	}
	eu = userOf(f.Status(), "early")
	if eu == nil || eu.Usage < usageBefore*0.95 {
		t.Fatalf("usage of early before the crash %.2f, after %+v", usageBefore, eu)
	}
	r := <-longDone
	if r.err != nil {
		t.Fatalf("long compile failed: %v\n%s", r.err, r.stderr)
	}
	sameObject(t, filepath.Join(long, "long.o"), wantLong)
	<-built
	remote, local, fallbacks := b.check(t)
	if _, ok := waitFor(10*time.Second, statusOK(f, idle)); !ok {
		t.Fatalf("leases left after the build (adopted leases not released?): %+v", f.Status())
	}
	adoptLines := strings.Count(f.BrokerProc().Output()[logBefore:], "\tadopt\t")
	longWhere := "locally"
	if m := remoteRe.FindStringSubmatch(r.stderr); m != nil {
		longWhere = "on " + m[1]
	}
	figure(t, "broker kill -9 after %d of 40 files (-j8, 2 volunteers x 3 slots) with a long job running, restarted %s later; %d lease(s) adopted %s after restart; long job finished %s, object identical; build: remote %v, local %d (reasons %v), 0 failed, objects identical; usage of a user saved before the crash %.2f -> %.2f after restart",
		doneAtKill, down.Round(time.Millisecond), adoptLines, adopted.Round(time.Millisecond), longWhere, remote, local, fallbacks, usageBefore, eu.Usage)
}

// saveAfter is when, after the broker starts, its first periodic usage save
// (every 10 s) has surely happened.
const saveAfter = 10*time.Second + 700*time.Millisecond
