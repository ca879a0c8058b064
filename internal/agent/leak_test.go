package agent_test

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/agent"
	"github.com/dcc-farm/dcc/internal/agentlink"
	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestNoGoroutineLeak runs a broker, a volunteer and an agent in-process,
// compiles one job through the agent's unix socket (lease, job, release),
// abandons a second request by closing the socket, and closes everything:
// no goroutine may outlive the agent.
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := testfarm.StartInProcess(t, "v1 16 2 slots=2\n", false)
	b := p.Broker
	defer b.Close()
	v := p.StartVolunteer(t, "v1", 2, nil)
	defer v.Close()
	cred := p.Identity(t, "user", "alice")

	rt, err := os.MkdirTemp("", "dccleak-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(rt)
	o := agent.Options{Broker: b.Addr(), Identity: cred, RuntimeDir: rt, Idle: time.Minute, LocalSlots: 1, LocalPower: 0.000001}
	sock := agentlink.SocketPath(o)
	a, err := agent.New(o, sock, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	go func() { a.Run(); close(ran) }()

	gcc, _ := exec.LookPath("gcc")
	src, err := exec.Command("sh", "-c", "echo 'int f(int x) { return x + 1; }' | gcc -E -x c -").Output()
	if err != nil {
		t.Fatal(err)
	}
	req := &wire.AgentCompile{Version: wire.ProtocolVersion, Build: buildinfo.ID(), Compiler: gcc, Driver: "gcc", Lang: "c",
		Ext: ".i", Kind: ".o", Args: []string{"-O2"}, SourceName: "x.i", Source: src, File: "x.c", MaxWaitMs: 5000}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(conn, wire.MaxJobFrame, 30*time.Second)
	c.Send(req)
	res, err := wire.Expect[*wire.AgentResult](c)
	conn.Close()
	if err != nil || res.Fallback != "" || res.Result.ExitCode != 0 || len(res.Result.Output) == 0 {
		t.Fatalf("compile through the agent: %v %+v", err, res)
	}
	// A dcc that sends a job and goes away at once.
	conn, err = net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	wire.NewConn(conn, wire.MaxJobFrame, 5*time.Second).Send(req)
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for b.Status("").Leases != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.Status("").Leases; n != 0 {
		t.Fatalf("%d leases left", n)
	}
	a.Close()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop")
	}
}
