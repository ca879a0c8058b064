package volunteer_test

import (
	"bytes"
	"crypto/sha256"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/internal/volunteer"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestNoGoroutineLeak runs a broker and a volunteer in-process, leases a
// slot and compiles a job on the volunteer through the real protocol,
// sends a second job whose client vanishes mid-compile, and closes
// everything: no goroutine may outlive the volunteer.
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := testfarm.StartInProcess(t, "v1 16 2 slots=2\n", false)
	b := p.Broker
	defer b.Close()
	gate := testfarm.NewGate(t, "gcc")
	gate.Open()
	v := p.StartVolunteer(t, "v1", 2, func(c *volunteer.Config) { c.HTTP = "127.0.0.1:0"; c.Compilers = []string{gate.Path} })
	fp := v.Compilers()[0].Fingerprint

	run := func(src []byte, vanish bool) {
		t.Helper()
		sum := sha256.Sum256(src)
		cs := p.Client(t, "alice")
		defer cs.Close()
		st, _ := cs.OpenStream()
		lc := wire.NewConn(st, wire.MaxControlFrame, 10*time.Second)
		lc.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: int64(len(src)), Digest: sum[:], MaxWaitMs: 5000})
		var g *wire.LeaseGrant
		for g == nil {
			m, err := lc.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if gg, ok := m.(*wire.LeaseGrant); ok {
				g = gg
			} else if _, ok := m.(*wire.LeaseQueued); !ok {
				t.Fatalf("got %T %+v", m, m)
			}
		}
		vs := p.DialVolunteer(t, v.Addr(), "v1", "alice")
		defer vs.Close()
		js, _ := vs.OpenStream()
		jc := wire.NewConn(js, wire.MaxJobFrame, 30*time.Second)
		jc.Send(&wire.JobRequest{Token: g.Token, Compiler: "gcc", Fingerprint: fp, Ext: ".i", Kind: ".o", Args: []string{"-O2"},
			SourceName: "x.i", SourceBytes: int64(len(src)), Digest: sum[:]})
		jc.Send(&wire.JobSource{Source: src})
		if vanish {
			gate.WaitHeld(t, 1, 10*time.Second) // the compiler runs; then the client is gone
			return
		}
		r, err := wire.Expect[*wire.JobResult](jc)
		if err != nil || r.Rejected != "" || r.ExitCode != 0 || len(r.Output) == 0 {
			t.Fatalf("job: %v %+v", err, r)
		}
		lc.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: wire.OutcomeOK})
	}
	run(preprocess(t, "int f(int x) { return x * 3; }\n"), false)
	gate.Shut() // the next job is held until its client vanishes
	run(preprocess(t, "int g(int x) { return x * 5; }\n"), true)
	deadline := time.Now().Add(5 * time.Second)
	for b.Status("").Leases != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.Status("").Leases; n != 0 {
		t.Fatalf("%d leases left", n)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
}

func preprocess(t *testing.T, src string) []byte {
	t.Helper()
	cmd := exec.Command("gcc", "-E", "-x", "c", "-")
	cmd.Stdin = bytes.NewReader([]byte(src))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
