package reliability

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// freeWithin is how fast the broker must free a dead client's lease or request.
const freeWithin = 3 * time.Second

type latencies []time.Duration

func (l latencies) max() time.Duration {
	m := time.Duration(0)
	for _, d := range l {
		m = max(m, d)
	}
	return m
}

func (l latencies) p(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

// heldFarm is oneHostFarm whose volunteer compiles with a gate that stays
// shut: every job it runs is held for as long as the test needs it to run.
func heldFarm(t *testing.T, slots int) (*testfarm.Farm, *volunteer) {
	gate := testfarm.NewGate(t, "gcc")
	return oneHostFarm(t, slots, "--compilers", gate.Path)
}

func oneHostFarm(t *testing.T, slots int, extra ...string) (*testfarm.Farm, *volunteer) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	v := startVolunteer(f, "v1", slots, extra...)
	f.WaitHosts("v1")
	return f, v
}

// TestClientDeathRawCycles kills 1,000 raw clients (sessions dropped
// without a release) while they hold a lease, while they wait in the
// queue, and while their job runs on the volunteer; after each the broker
// must be back to its previous state within 3 s, and at the end no lease
// is leaked and every slot is free.
func TestClientDeathRawCycles(t *testing.T) {
	f, v := heldFarm(t, 2)
	fp := gccFP(t)
	src := preprocess(t, smallSource(1))
	const holdCycles, queueCycles, streamCycles = 400, 400, 200

	// Phase 1: the client holds a lease and dies.
	var hold latencies
	for i := 0; i < holdCycles; i++ {
		s := dialBroker(t, f, "alice")
		g := requestLease(t, s, fp, src).grant(t)
		if g.Host != "v1" {
			t.Fatalf("granted on %q", g.Host)
		}
		s.Close() // the TCP connection drops: the same as kill -9 of the holder
		d, ok := waitFor(5*time.Second, statusOK(f, idle))
		if !ok {
			t.Fatalf("hold cycle %d: lease not freed: %+v", i, f.Status())
		}
		hold = append(hold, d)
	}

	// Phase 2: both slots are held; the client waits in the queue and dies.
	var queue latencies
	b1, _ := grab(t, f, "blocker", src)
	b2, _ := grab(t, f, "blocker", src)
	busy := func(d *status.Doc) bool { return d.Leases == 2 && d.Queue == 0 }
	for i := 0; i < queueCycles; i++ {
		s := dialBroker(t, f, "bob")
		lr := requestLease(t, s, fp, src)
		if m, ok := lr.next(t).(*wire.LeaseQueued); !ok {
			t.Fatalf("queue cycle %d: got %T, want LeaseQueued", i, m)
		}
		s.Close()
		d, ok := waitFor(5*time.Second, statusOK(f, busy))
		if !ok {
			t.Fatalf("queue cycle %d: request not dropped: %+v", i, f.Status())
		}
		queue = append(queue, d)
	}
	b1.Close()
	b2.Close()
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("blockers' leases not freed: %+v", f.Status())
	}

	// Phase 3: the client's job runs on the volunteer; the client dies.
	slow := preprocess(t, smallSource(300)) // held at the gate: it runs until the client dies
	var stream, stop latencies
	cancelledBefore := v.jobs(wire.OutcomeCancelled)
	for i := 0; i < streamCycles; i++ {
		s, g := grab(t, f, "carol", slow)
		vs, err := dialJobs(f, g, "carol")
		if err != nil {
			t.Fatal(err)
		}
		st, err := vs.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if err := jobFor(t, g, slow, "-O2").send(wire.NewConn(st, wire.MaxJobFrame, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitFor(10*time.Second, func() bool { return v.running() == 1 }); !ok {
			t.Fatalf("stream cycle %d: job did not start", i)
		}
		killed := time.Now()
		s.Close()
		vs.Close()
		d, ok := waitFor(5*time.Second, statusOK(f, idle))
		if !ok {
			t.Fatalf("stream cycle %d: lease not freed: %+v", i, f.Status())
		}
		stream = append(stream, d)
		if _, ok := waitFor(5*time.Second, func() bool { return v.running() == 0 && jobProcs(f.Dir) == 0 }); !ok {
			t.Fatalf("stream cycle %d: orphaned job still runs (running %v, compiler processes %d)", i, v.running(), jobProcs(f.Dir))
		}
		stop = append(stop, time.Since(killed))
	}
	if got := v.jobs(wire.OutcomeCancelled) - cancelledBefore; got != streamCycles {
		t.Errorf("volunteer cancelled %v jobs, want %d", got, streamCycles)
	}
	for name, l := range map[string]latencies{"hold": hold, "queue": queue, "stream": stream} {
		if l.max() > freeWithin {
			t.Errorf("%s: slowest release took %s (limit %s)", name, l.max(), freeWithin)
		}
	}
	d := f.Status()
	if !idle(d) || d.Slots != 2 {
		t.Fatalf("after %d cycles: leases %d queue %d busy %d slots %d", holdCycles+queueCycles+streamCycles, d.Leases, d.Queue, d.Busy, d.Slots)
	}
	figure(t, "raw client killed: holding lease %d cycles (freed p50 %s, max %s); queued %d cycles (dropped p50 %s, max %s); job running %d cycles (lease freed p50 %s, max %s; compiler stopped max %s); leaked leases 0, slots %d/%d free",
		holdCycles, hold.p(0.5), hold.max(), queueCycles, queue.p(0.5), queue.max(), streamCycles, stream.p(0.5), stream.max(), stop.max(), d.Slots, d.Slots)
}

// TestClientDeathRealDCC kills real dcc processes with SIGKILL while they
// wait in the queue and while their job compiles on the volunteer, and kills
// the agent itself mid-job. The broker must free the lease or drop the
// request within 3 s, the volunteer must stop the compiler, and a dcc whose
// agent died must still produce the right object (locally).
func TestClientDeathRealDCC(t *testing.T) {
	f, v := heldFarm(t, 2) // every farm job runs until its client dies
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "small.c"), smallSource(7))
	writeFile(t, filepath.Join(dir, "slow.c"), smallSource(8))
	// A tiny local power makes a local compile look slow, so the broker
	// queues the request instead of sending it home.
	env := []string{"DCC_LOCAL_POWER=0.000001"}
	const queueCycles, compileCycles, agentCycles = 20, 20, 5

	// dcc killed while queued: both slots are held by a raw client.
	b1, _ := grab(t, f, "blocker", []byte("x"))
	b2, _ := grab(t, f, "blocker", []byte("y"))
	var queue latencies
	for i := 0; i < queueCycles; i++ {
		cmd := dccCmd(f, dir, "dave", env, "-O2", "-c", "small.c", "-o", "small.o")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitFor(15*time.Second, statusOK(f, func(d *status.Doc) bool { return d.Queue == 1 })); !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("queue cycle %d: dcc never queued: %+v", i, f.Status())
		}
		cmd.Process.Kill()
		cmd.Wait()
		d, ok := waitFor(5*time.Second, statusOK(f, func(d *status.Doc) bool { return d.Queue == 0 && d.Leases == 2 }))
		if !ok {
			t.Fatalf("queue cycle %d: request of a killed dcc not dropped: %+v", i, f.Status())
		}
		queue = append(queue, d)
	}
	b1.Close()
	b2.Close()
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("not idle: %+v", f.Status())
	}

	// dcc killed while its job compiles on the volunteer.
	var compile, stop latencies
	for i := 0; i < compileCycles; i++ {
		cmd := dccCmd(f, dir, "erin", env, "-O2", "-c", "slow.c", "-o", "slow.o")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitFor(15*time.Second, func() bool { return v.running() == 1 }); !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("compile cycle %d: job never started on the volunteer", i)
		}
		cmd.Process.Kill()
		cmd.Wait()
		killed := time.Now()
		d, ok := waitFor(5*time.Second, statusOK(f, idle))
		if !ok {
			t.Fatalf("compile cycle %d: lease of a killed dcc not freed: %+v", i, f.Status())
		}
		compile = append(compile, d)
		if _, ok := waitFor(5*time.Second, func() bool { return v.running() == 0 && jobProcs(f.Dir) == 0 }); !ok {
			t.Fatalf("compile cycle %d: orphaned compiler still runs", i)
		}
		stop = append(stop, time.Since(killed))
	}

	// The agent (which holds the broker and volunteer sessions) is killed mid-job.
	want := compileLocal(t, dir, "slow", "-O2")
	var agent latencies
	for i := 0; i < agentCycles; i++ {
		os.Remove(filepath.Join(dir, "slow.o"))
		cmd := dccCmd(f, dir, "frank", env, "-O2", "-c", "slow.c", "-o", "slow.o")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitFor(15*time.Second, func() bool { return v.running() == 1 }); !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("agent cycle %d: job never started", i)
		}
		pids := testfarm.AgentPIDs(f.RuntimeDir)
		if len(pids) == 0 {
			t.Fatal("no agent found")
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		d, ok := waitFor(5*time.Second, statusOK(f, idle))
		if !ok {
			t.Fatalf("agent cycle %d: lease of a killed agent not freed: %+v", i, f.Status())
		}
		agent = append(agent, d)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("agent cycle %d: dcc failed after its agent died: %v\n%s", i, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "compiling locally") {
			t.Fatalf("agent cycle %d: expected a local compile:\n%s", i, stderr.String())
		}
		got, err := os.ReadFile(filepath.Join(dir, "slow.o"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("agent cycle %d: object differs from a local compile (%v)", i, err)
		}
		if _, ok := waitFor(5*time.Second, func() bool { return v.running() == 0 && jobProcs(f.Dir) == 0 }); !ok {
			t.Fatalf("agent cycle %d: orphaned compiler still runs", i)
		}
	}
	for name, l := range map[string]latencies{"queue": queue, "compile": compile, "agent": agent} {
		if l.max() > freeWithin {
			t.Errorf("%s: slowest release took %s (limit %s)", name, l.max(), freeWithin)
		}
	}
	d := f.Status()
	if !idle(d) || d.Slots != 2 {
		t.Fatalf("farm not idle at the end: %+v", d)
	}
	figure(t, "dcc kill -9 while queued %d cycles (request dropped p50 %s, max %s); while compiling remotely %d cycles (lease freed p50 %s, max %s; compiler stopped max %s); agent kill -9 mid-job %d cycles (lease freed max %s, dcc compiled locally, objects identical); leaked leases 0",
		queueCycles, queue.p(0.5), queue.max(), compileCycles, compile.p(0.5), compile.max(), stop.max(), agentCycles, agent.max())
}

var _ *yamux.Session
