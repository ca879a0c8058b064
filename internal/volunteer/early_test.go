package volunteer_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/internal/volunteer"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// earlyFarm is a broker and a one-slot volunteer whose gcc is a gate, and
// a client session to both.
type earlyFarm struct {
	t    *testing.T
	p    *testfarm.InProcess
	v    *volunteer.Volunteer
	gate *testfarm.Gate
	fp   string
}

func startEarlyFarm(t *testing.T) *earlyFarm {
	p := testfarm.StartInProcess(t, "v1 16 2 slots=1\n", false)
	gate := testfarm.NewGate(t, "gcc")
	v := p.StartVolunteer(t, "v1", 1, func(c *volunteer.Config) { c.Compilers = []string{gate.Path} })
	return &earlyFarm{t: t, p: p, v: v, gate: gate, fp: v.Compilers()[0].Fingerprint}
}

func (f *earlyFarm) close() {
	f.v.Close()
	f.p.Broker.Close()
}

// grant leases the slot the way an agent does while its preprocessor
// runs: with no digest, so the token is bound to none.
func (f *earlyFarm) grant() (*wire.Conn, *wire.LeaseGrant) {
	t := f.t
	t.Helper()
	cs := f.p.Client(t, "alice")
	t.Cleanup(func() { cs.Close() })
	st, err := cs.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	lc := wire.NewConn(st, wire.MaxControlFrame, 10*time.Second)
	lc.Send(&wire.LeaseRequest{Fingerprint: f.fp, Lang: "c", SourceBytes: 100, MaxWaitMs: 10000})
	for {
		m, err := lc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := m.(*wire.LeaseGrant); ok {
			return lc, g
		}
		if _, ok := m.(*wire.LeaseQueued); !ok {
			t.Fatalf("got %T %+v", m, m)
		}
	}
}

// job opens a job stream to the volunteer and sends an early header.
func (f *earlyFarm) job(g *wire.LeaseGrant, ext string) *wire.Conn {
	t := f.t
	t.Helper()
	vs := f.p.DialVolunteer(t, f.v.Addr(), "v1", "alice")
	t.Cleanup(func() { vs.Close() })
	st, err := vs.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	jc := wire.NewConn(st, wire.MaxJobFrame, 30*time.Second)
	if err := jc.Send(&wire.JobRequest{Token: g.Token, Compiler: "gcc", Fingerprint: f.fp, Ext: ext, Kind: ".o",
		Args: []string{"-O2"}, SourceName: "x" + ext, Early: true}); err != nil {
		t.Fatal(err)
	}
	return jc
}

// TestEarlyJob: an early header starts the compiler before any source
// exists; the source, when it comes, gives the object gcc makes from a
// file.
func TestEarlyJob(t *testing.T) {
	f := startEarlyFarm(t)
	defer f.close()
	_, g := f.grant()
	jc := f.job(g, ".i")
	// The gate holds the compiler that the header alone started.
	f.gate.WaitHeld(t, 1, 10*time.Second)
	f.gate.Open()
	src := preprocess(t, "int f(int x) { return x * 7; }\n")
	sum := sha256.Sum256(src)
	if err := jc.Send(&wire.JobSource{Source: src, Digest: sum[:]}); err != nil {
		t.Fatal(err)
	}
	r, err := wire.Expect[*wire.JobResult](jc)
	if err != nil || r.Code != wire.RejectNone || r.ExitCode != 0 {
		t.Fatalf("early job: %v %+v", err, r)
	}
	if want := compileFile(t, src); !bytes.Equal(r.Output, want) {
		t.Fatalf("early object (%d bytes) differs from gcc's from a file (%d bytes)", len(r.Output), len(want))
	}
}

// TestEarlyJobRefusals: an early job whose source fails its digest gets
// no object; one the host compiles only from a file (assembler), or whose
// header names a size, is refused before anything runs.
func TestEarlyJobRefusals(t *testing.T) {
	f := startEarlyFarm(t)
	defer f.close()
	f.gate.Open()
	src := preprocess(t, "int f(int x) { return x * 7; }\n")

	_, g := f.grant()
	jc := f.job(g, ".i")
	wrong := sha256.Sum256([]byte("another source"))
	jc.Send(&wire.JobSource{Source: src, Digest: wrong[:]})
	if r, err := wire.Expect[*wire.JobResult](jc); err != nil || r.Code != wire.RejectToken || len(r.Output) != 0 {
		t.Fatalf("source with a wrong digest: %v %+v", err, r)
	}

	lc, g := f.grant() // the slot is free again
	jc = f.job(g, ".s")
	if r, err := wire.Expect[*wire.JobResult](jc); err != nil || r.Code != wire.RejectBadRequest {
		t.Fatalf("early assembler job: %v %+v", err, r)
	}
	lc.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: wire.OutcomeCancelled})
}

// TestEarlyJobWithdrawn: a client that goes away before its source (a
// preprocessing error, a cache hit) ends its side of the stream; the
// volunteer kills the waiting compiler and answers "cancelled" once the
// slot is free, so the next job, granted as soon as the lease goes back,
// finds the slot free (this one-slot host would refuse it as busy
// otherwise); nothing outlives the volunteer.
func TestEarlyJobWithdrawn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := startEarlyFarm(t)
	defer f.close()
	f.gate.Open()
	lc, g := f.grant()
	jc := f.job(g, ".i")
	waitCompiler(t, f.p.Dir) // gcc waits for its source
	jc.Close()               // yamux half-closes: the answer can still come
	if r, err := wire.Expect[*wire.JobResult](jc); err != nil || r.Code != wire.RejectCancelled {
		t.Fatalf("a withdrawn early job: %v %+v, want RejectCancelled", err, r)
	}
	lc.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: wire.OutcomeCancelled})

	_, g = f.grant()
	jc = f.job(g, ".i")
	src := preprocess(t, "int h(void) { return 3; }\n")
	sum := sha256.Sum256(src)
	jc.Send(&wire.JobSource{Source: src, Digest: sum[:]})
	if r, err := wire.Expect[*wire.JobResult](jc); err != nil || r.Code != wire.RejectNone || r.ExitCode != 0 {
		t.Fatalf("the job after a withdrawn one: %v %+v", err, r)
	}
}

// waitCompiler waits until a job directory under dir holds the source
// pipe that a started compiler waits on.
func waitCompiler(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dir, "dccjob-*", "x.i")); len(m) > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no job started")
}

// compileFile is gcc -O2 -c on src written to x.i, as a volunteer runs it.
func compileFile(t *testing.T, src []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.i"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gcc", "-O2", "-c", "x.i", "-o", "x.o")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v %s", err, out)
	}
	out, err := os.ReadFile(filepath.Join(dir, "x.o"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
