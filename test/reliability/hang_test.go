package reliability

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// runDCC runs one dcc compile and returns its stderr, how long it took and its error.
func runDCC(f *testfarm.Farm, dir, user string, env []string, args ...string) (string, time.Duration, error) {
	cmd := dccCmd(f, dir, user, env, args...)
	var se bytes.Buffer
	cmd.Stderr = &se
	start := time.Now()
	err := cmd.Run()
	return se.String(), time.Since(start), err
}

func sameObject(t *testing.T, got string, want []byte) {
	t.Helper()
	b, err := os.ReadFile(got)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("%s differs from a local gcc compile (%v)", got, err)
	}
}

// TestVolunteerStopped SIGSTOPs the volunteer that runs a job: the broker
// must declare it gone (it stops reporting) within its 5 s silence limit
// plus a tick, the agent's keepalive must break its session to it, the
// compile must still finish with the right object, and the broker must
// reclaim the stopped host's lease. The job is held at a gate until the
// volunteer is stopped, so it is running then whatever the machine's speed.
func TestVolunteerStopped(t *testing.T) {
	gate := testfarm.NewGate(t, "gcc")
	f := testfarm.New(t, testfarm.Host{Name: "a", CPUs: 16, Power: 2}, testfarm.Host{Name: "b", CPUs: 16, Power: 2})
	f.StartBroker()
	vols := map[string]*volunteer{"a": startVolunteer(f, "a", 2, "--compilers", gate.Path), "b": startVolunteer(f, "b", 2, "--compilers", gate.Path)}
	f.WaitHosts("a", "b")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slow.c"), smallSource(11))
	want := compileLocal(t, dir, "slow", "-O2")
	os.Remove(filepath.Join(dir, "slow.o"))

	type out struct {
		stderr string
		took   time.Duration
		err    error
	}
	res := make(chan out, 1)
	go func() {
		se, took, err := runDCC(f, dir, "sam", nil, "-O2", "-c", "slow.c", "-o", "slow.o")
		res <- out{se, took, err}
	}()
	gate.WaitHeld(t, 1, 15*time.Second)
	var victim string
	if _, ok := waitFor(5*time.Second, func() bool {
		for n, v := range vols {
			if v.running() == 1 {
				victim = n
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("held job not reported running")
	}
	p := f.Volunteer(victim)
	p.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	defer p.Signal(syscall.SIGCONT)
	gate.Open() // the retry elsewhere must not be held
	gone, ok := waitFor(8*time.Second, statusOK(f, func(d *status.Doc) bool {
		h := testfarm.HostOf(d, victim)
		return h != nil && h.State == "gone"
	}))
	if !ok {
		t.Fatalf("broker did not declare stopped host %s gone", victim)
	}
	var r out
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("dcc did not finish within 30 s of the volunteer hanging")
	}
	if r.err != nil {
		t.Fatalf("dcc failed: %v\n%s", r.err, r.stderr)
	}
	sameObject(t, filepath.Join(dir, "slow.o"), want)
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("lease on the stopped host not reclaimed: %+v", f.Status())
	}
	where := "locally"
	if m := remoteRe.FindStringSubmatch(r.stderr); m != nil {
		where = "on " + m[1]
	}
	p.Signal(syscall.SIGCONT)
	f.WaitHosts(victim) // it comes back and re-registers
	figure(t, "SIGSTOP of the volunteer running the job: host declared gone after %s; dcc finished %s %s after the stop (total %s), object identical; lease reclaimed; host re-registered after SIGCONT",
		gone.Round(time.Millisecond), where, time.Since(stopped).Round(time.Millisecond), r.took.Round(time.Millisecond))
	if !strings.Contains(p.Output(), "registered with broker") {
		t.Fatal("volunteer log lacks its registration")
	}
}

// TestLeaseTTL runs the broker with a 2 s lease TTL and a volunteer whose
// compiles are held at a gate, so that every job outlives the TTL by
// construction:
//   - a raw holder that never renews loses its lease within TTL plus a
//     tick, and the volunteer stops its job;
//   - a real dcc whose job is held for three TTLs keeps its lease by
//     renewing, and finishes on the farm once the gate opens;
//   - an agent frozen (SIGSTOP) mid-job loses its lease, and its dcc still
//     ends with the right object.
func TestLeaseTTL(t *testing.T) {
	const ttl = 2 * time.Second
	gate := testfarm.NewGate(t, "gcc")
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker("--lease-ttl", ttl.String())
	v := startVolunteer(f, "v1", 2, "--compilers", gate.Path)
	f.WaitHosts("v1")

	// A holder that never renews.
	held := preprocess(t, smallSource(400))
	s, g := grab(t, f, "nora", held)
	defer s.Close()
	if g.TTLMs != ttl.Milliseconds() {
		t.Fatalf("grant TTL %d ms", g.TTLMs)
	}
	granted := time.Now()
	vs, err := dialJobs(f, g, "nora")
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	st, _ := vs.OpenStream()
	jobFor(t, g, held, "-O2").send(wire.NewConn(st, wire.MaxJobFrame, 10*time.Second))
	gate.WaitHeld(t, 1, 10*time.Second)
	_, ok := waitFor(ttl+3*time.Second, statusOK(f, func(d *status.Doc) bool {
		return d.Leases == 0 && len(d.Reclaims) > 0 && strings.HasPrefix(d.Reclaims[0].Reason, "expired")
	}))
	if !ok {
		t.Fatalf("unrenewed lease not expired: %+v", f.Status())
	}
	expired := time.Since(granted)
	if expired < ttl {
		t.Fatalf("lease expired after %s, before its TTL", expired)
	}
	if _, ok := waitFor(5*time.Second, func() bool { return v.running() == 0 && gate.Held() == 0 }); !ok {
		t.Fatal("volunteer did not stop the job of the expired lease")
	}
	stoppedJob := time.Since(granted)
	s.Close()
	vs.Close()

	// A real compile held for three TTLs keeps its lease by renewing.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slow.c"), smallSource(401))
	want := compileLocal(t, dir, "slow", "-O2")
	os.Remove(filepath.Join(dir, "slow.o"))
	type out struct {
		stderr string
		took   time.Duration
		err    error
	}
	done := make(chan out, 1)
	go func() {
		se, took, err := runDCC(f, dir, "olga", nil, "-O2", "-c", "slow.c", "-o", "slow.o")
		done <- out{se, took, err}
	}()
	gate.WaitHeld(t, 1, 15*time.Second)
	time.Sleep(3 * ttl) // the job runs three TTLs: only renewals keep its lease
	if d := f.Status(); d.Leases != 1 {
		t.Fatalf("renewed lease lost while its job ran: %+v", d)
	}
	gate.Open()
	r := <-done
	if r.err != nil || remoteRe.FindStringSubmatch(r.stderr) == nil {
		t.Fatalf("long compile did not complete remotely: %v\n%s", r.err, r.stderr)
	}
	if r.took < 3*ttl {
		t.Fatalf("compile took %s, less than the time it was held", r.took)
	}
	sameObject(t, filepath.Join(dir, "slow.o"), want)
	for _, rc := range f.Status().Reclaims {
		if rc.User == "olga" {
			t.Fatalf("renewed lease was reclaimed: %+v", rc)
		}
	}

	// A frozen agent: its lease is taken back; after SIGCONT the dcc finishes.
	gate.Shut()
	os.Remove(filepath.Join(dir, "slow.o"))
	cmd := dccCmd(f, dir, "olga", nil, "-O2", "-c", "slow.c", "-o", "slow.o")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gate.WaitHeld(t, 1, 15*time.Second)
	pids := testfarm.AgentPIDs(f.RuntimeDir)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	frozen := time.Now()
	reclaimed, ok := waitFor(ttl+8*time.Second, statusOK(f, func(d *status.Doc) bool { return d.Leases == 0 }))
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	if !ok {
		t.Fatalf("lease of a frozen agent not reclaimed: %+v", f.Status())
	}
	reason := ""
	for _, rc := range f.Status().Reclaims {
		if rc.User == "olga" {
			reason = rc.Reason
			break
		}
	}
	gate.Open()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dcc failed after its agent was frozen: %v\n%s", err, stderr.String())
	}
	sameObject(t, filepath.Join(dir, "slow.o"), want)
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("not idle: %+v", f.Status())
	}
	figure(t, "TTL 2s, jobs held at a gate: unrenewed lease expired %s after grant, volunteer stopped its job %s after grant; a job held 3 TTLs renewed and kept its lease (compile %s, on the farm); agent SIGSTOPped mid-job: lease reclaimed after %s (%s), dcc finished %s after the freeze with the right object",
		expired.Round(time.Millisecond), stoppedJob.Round(time.Millisecond), r.took.Round(time.Millisecond), reclaimed.Round(time.Millisecond), reason, time.Since(frozen).Round(time.Millisecond))
}

// TestJobTimeLimit offers a "gcc" that never finishes a compile (it answers
// -v like the real gcc, so the fingerprints match) on a volunteer with a
// 2 s job limit: the job must be killed at the limit, nothing of it must
// survive, and the build must still succeed (locally).
func TestJobTimeLimit(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal(err)
	}
	wrapDir := t.TempDir()
	wrapper := filepath.Join(wrapDir, "gcc")
	// gcc's identity and start-up check compile, then every job hangs
	writeFile(t, wrapper, "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -v|*dcc-check.*) exec "+gcc+" \"$@\" ;; esac; done\nexec sleep 3600\n")
	os.Chmod(wrapper, 0o755)

	f := testfarm.New(t, testfarm.Host{Name: "h", CPUs: 16, Power: 2})
	f.StartBroker()
	v := startVolunteer(f, "h", 2, "--job-timeout", "2s", "--compilers", wrapper)
	f.WaitHosts("h")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.c"), smallSource(3))
	want := compileLocal(t, dir, "x", "-O2")
	os.Remove(filepath.Join(dir, "x.o"))
	se, took, err := runDCC(f, dir, "hank", []string{"DCC_LOCAL_POWER=0.000001"}, "-O2", "-c", "x.c", "-o", "x.o")
	if err != nil {
		t.Fatalf("dcc failed: %v\n%s", err, se)
	}
	if !strings.Contains(se, "compiling locally") {
		t.Fatalf("expected a local compile after the job limit:\n%s", se)
	}
	sameObject(t, filepath.Join(dir, "x.o"), want)
	failed := v.jobs(wire.OutcomeFailed)
	if failed < 1 {
		t.Fatalf("volunteer reports %v failed jobs; dcc said:\n%s", failed, se)
	}
	if took < 2*time.Second || took > time.Duration(failed)*2*time.Second+8*time.Second {
		t.Fatalf("compile took %s with %v jobs killed at a 2 s limit", took, failed)
	}
	if n := jobProcs(f.Dir); n != 0 {
		t.Fatalf("%d processes of killed jobs survive", n)
	}
	if !strings.Contains(se, "wall time 2s") {
		t.Fatalf("the fallback does not name the wall-time limit:\n%s", se)
	}
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("not idle: %+v", f.Status())
	}
	figure(t, "compiler that never ends, --job-timeout 2s: %v job(s) killed at the limit, no process left, dcc compiled locally in %s total, object identical", failed, took.Round(time.Millisecond))
}
