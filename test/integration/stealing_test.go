package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// pingAgent asks the agent serving farm f for its state.
func pingAgent(t *testing.T, f *testfarm.Farm) *wire.AgentPong {
	t.Helper()
	// The socket's name hashes the dcc binary's build id, which is not
	// this test's: the farm's runtime dir holds this one user's agent.
	socks, _ := filepath.Glob(filepath.Join(f.RuntimeDir, "agent-*.sock"))
	if len(socks) != 1 {
		t.Fatalf("want one agent socket, found %v", socks)
	}
	conn, err := net.Dial("unix", socks[0])
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	defer conn.Close()
	c := wire.NewConn(conn, wire.MaxControlFrame, 5*time.Second)
	if err := c.Send(&wire.AgentPing{Version: wire.ProtocolVersion}); err != nil {
		t.Fatal(err)
	}
	p, err := wire.Expect[*wire.AgentPong](c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWorkStealingKeepsSlots: with the farm's only slot held at a gate,
// a user's queued jobs are taken home one by one as their local slot
// frees (work stealing); every object is right, and when all is done the
// agent holds no local slot and no queued job: a steal never leaks a slot
// or takes a granted job's lease.
func TestWorkStealingKeepsSlots(t *testing.T) {
	gate := testfarm.NewGate(t, "gcc")
	gate.Open()
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 64, Power: 2, Extra: "slots=1"})
	f.StartBroker()
	f.StartVolunteer("v1", 1, "--compilers", gate.Path)
	f.WaitHosts("v1")
	dir := t.TempDir()
	const n = 6
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("int f%d(int x) { return x * %d + %d; }\n", i, i+2, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%d.c", i)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A machine at a quarter of the host's speed (the host's 64 CPUs keep its speed
	// at its power whatever this machine's load), one local slot.
	env := append(f.Env("ulla"), "DCC_LOCAL_SLOTS=1", "DCC_LOCAL_POWER=0.5")
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	compile := func(i int) testfarm.Result {
		return testfarm.Run(t, dir, env, dcc, "gcc", "-O2", "-c", fmt.Sprintf("s%d.c", i), "-o", fmt.Sprintf("s%d.o", i))
	}
	// The broker learns a lease time from one job, so that it can estimate waits.
	if r := compile(0); r.Code != 0 {
		t.Fatalf("first compile: %+v", r)
	}
	gate.Shut()
	results := make([]testfarm.Result, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); results[0] = compile(0) }()
	gate.WaitHeld(t, 1, 15*time.Second) // the farm's slot is taken
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = compile(i) }()
	}
	// The others end at home, but for the last queued one, which waits
	// for the farm's slot.
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := f.Status()
		p := pingAgent(t, f)
		if d.Queue <= 1 && p.LocalBusy == 0 && localDone(dir, n) >= n-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs did not go home: queue %d, agent %+v", d.Queue, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gate.Open()
	wg.Wait()
	stolen := 0
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("s%d: exit %d\n%s", i, r.Code, r.Stderr)
		}
		if strings.Contains(r.Stderr, "a local slot freed while queued") {
			stolen++
		}
		want := localObject(t, dir, fmt.Sprintf("s%d", i))
		got, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("s%d.o", i)))
		if !bytes.Equal(got, want) {
			t.Fatalf("s%d.o differs from a local compile", i)
		}
	}
	if stolen == 0 {
		t.Fatalf("no queued job was taken home:\n%s", results[1].Stderr+results[2].Stderr)
	}
	p := pingAgent(t, f)
	if p.LocalBusy != 0 || p.Queued != 0 {
		t.Fatalf("agent after the build: %d local slots busy, %d queued (want 0, 0)", p.LocalBusy, p.Queued)
	}
	f.WaitStatus(func(d *status.Doc) bool { return d.Leases == 0 && d.Queue == 0 }, 10*time.Second, "an idle farm")
	t.Logf("%d of %d queued jobs taken home by a freed local slot", stolen, n-1)
}

// localDone counts the objects written so far.
func localDone(dir string, n int) int {
	c := 0
	for i := 0; i < n; i++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("s%d.o", i))); err == nil {
			c++
		}
	}
	return c
}

// localObject compiles name.c with gcc in a scratch copy and returns the object.
func localObject(t *testing.T, dir, name string) []byte {
	t.Helper()
	scratch := t.TempDir()
	src, _ := os.ReadFile(filepath.Join(dir, name+".c"))
	os.WriteFile(filepath.Join(scratch, name+".c"), src, 0o644)
	if r := testfarm.Run(t, scratch, nil, "gcc", "-O2", "-c", name+".c", "-o", name+".o"); r.Code != 0 {
		t.Fatalf("local gcc: %s", r.Stderr)
	}
	b, _ := os.ReadFile(filepath.Join(scratch, name+".o"))
	return b
}
