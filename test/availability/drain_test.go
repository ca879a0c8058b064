package availability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

// drainFarm starts a broker, volunteer "a" (power 3: jobs go there first)
// with the given drain rules, and volunteer "b" (power 1). Jobs run at the
// volunteers' normal priority (--nice 0) so that their speed depends on
// the compiler, not on what else the test machine runs.
// drainFarm starts hosts a (preferred; its compiles are held at the
// returned gate, shut) and b (plain gcc).
func drainFarm(t *testing.T, avail string) (*testfarm.Farm, string, *testfarm.Gate) {
	t.Helper()
	gate := testfarm.NewGate(t, "gcc")
	f := newFarm(t, testfarm.Host{Name: "a", CPUs: 2, Power: 3}, testfarm.Host{Name: "b", CPUs: 2, Power: 1})
	f.StartBroker()
	ctl := volunteer(t, f, "a", 2, avail, "--nice", "0", "--compilers", gate.Path)
	volunteer(t, f, "b", 2, "", "--nice", "0")
	up(f, "a", "b")
	return f, ctl, gate
}

// pause runs `volunteer pause` on the control socket.
func pause(t *testing.T, ctl, reason string) {
	t.Helper()
	r := testfarm.Run(t, t.TempDir(), nil, filepath.Join(testfarm.Bin(t), "volunteer"), "pause", "--reason", reason, "--control", ctl)
	if r.Code != 0 {
		t.Fatalf("volunteer pause: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func resume(t *testing.T, ctl string) {
	t.Helper()
	r := testfarm.Run(t, t.TempDir(), nil, filepath.Join(testfarm.Bin(t), "volunteer"), "resume", "--control", ctl)
	if r.Code != 0 {
		t.Fatalf("volunteer resume: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// heldOnA starts a compile of held.c and waits until it runs on host a,
// held at its gate.
func heldOnA(t *testing.T, f *testfarm.Farm, gate *testfarm.Gate, dir, out string) *background {
	t.Helper()
	bg := startDCC(t, f, dir, nil, "gcc", "-O2", "-c", "held.c", "-o", out)
	deadline := time.Now().Add(20 * time.Second)
	for gate.Held() == 0 {
		if time.Now().After(deadline) || bg.finished() {
			t.Fatalf("the held job did not start on a:\n%s", bg.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return bg
}

// jobNices returns the niceness of every process running a job of the
// farm's volunteers (their working directory is a dccjob- directory).
func jobNices(f *testfarm.Farm) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, filepath.Join(f.Dir, "dccjob-")) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// fields after the ")" that ends the command name: state is 3, nice is 19
		fs := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if len(fs) > 16 {
			n, _ := strconv.Atoi(fs[16])
			out = append(out, n)
		}
	}
	return out
}

func checkHeldObject(t *testing.T, dir, out string) {
	t.Helper()
	if !bytes.Equal(readFile(t, filepath.Join(dir, out)), localObject(t, "gcc", "held.c", "-O2")) {
		t.Fatal("object differs from a local gcc compile")
	}
}

func TestDrainWithJobsRunning(t *testing.T) {
	t.Parallel()

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		f, ctl, gate := drainFarm(t, "[availability]\ndrain = \"cancel\"\n")
		dir := srcDir(t)
		a := f.Volunteer("a")
		// Twice: the owner coming back is not the host's fault, so
		// cancelled jobs must not put it on probation.
		for round := 1; round <= 2; round++ {
			out := fmt.Sprintf("held%d.o", round)
			bg := heldOnA(t, f, gate, dir, out)
			pause(t, ctl, "owner back")
			waitLog(t, a, "job cancelled: host draining", 5*time.Second)
			code, stderr := bg.wait(t, 90*time.Second)
			if code != 0 {
				t.Fatalf("round %d: dcc exit %d\n%s", round, code, stderr)
			}
			host := remoteHost(stderr)
			if host == "a" {
				t.Fatalf("round %d: the cancelled job was reported as compiled on a:\n%s", round, stderr)
			}
			t.Logf("round %d: redone on %q (\"\" = locally)", round, host)
			checkHeldObject(t, dir, out)
			resume(t, ctl)
			h := waitState(f, "a", "healthy", 5*time.Second)
			if h.Busy != 0 {
				t.Fatalf("lease of the cancelled job still held: %+v", h)
			}
		}
		if n := strings.Count(a.Output(), "job cancelled: host draining"); n != 2 {
			t.Fatalf("%d drain cancellations logged, want 2", n)
		}
		if d := f.Status(); d.Leases != 0 {
			t.Fatalf("%d leases left", d.Leases)
		}
	})

	t.Run("finish", func(t *testing.T) {
		t.Parallel()
		f, ctl, gate := drainFarm(t, "[availability]\ndrain = \"finish\"\ngrace = \"60s\"\n")
		dir := srcDir(t)
		a := f.Volunteer("a")
		bg := heldOnA(t, f, gate, dir, "held.o")
		pause(t, ctl, "owner back")
		waitState(f, "a", "draining", 2*time.Second)
		waitLog(t, a, "host unavailable: draining", 2*time.Second)
		// The running job now runs at the lowest priority.
		ns := jobNices(f)
		t.Logf("job processes' niceness while draining: %v", ns)
		if len(ns) == 0 {
			t.Fatal("found no process of the running job")
		}
		for _, n := range ns {
			if n != 19 {
				t.Errorf("job process at nice %d while draining, want 19 (all: %v)", n, ns)
			}
		}
		// New jobs go to b while a finishes its job.
		for i := 0; i < 3; i++ {
			if h, r := compile(t, f, dir, "gcc", "quick.c", fmt.Sprintf("q%d.o", i), "-O2"); h != "b" {
				t.Fatalf("new job went to %q while a drains:\n%s", h, r.Stderr)
			}
		}
		if h := testfarm.HostOf(f.Status(), "a"); h.Busy != 1 || h.State != "draining" {
			t.Fatalf("a should still run its job: %+v", h)
		}
		gate.Open() // the job ends, well within the grace period
		code, stderr := bg.wait(t, 60*time.Second)
		if code != 0 || remoteHost(stderr) != "a" {
			t.Fatalf("the running job did not finish on a: exit %d\n%s", code, stderr)
		}
		checkHeldObject(t, dir, "held.o")
		if strings.Contains(a.Output(), "job cancelled") {
			t.Fatalf("a job was cancelled within the grace period:\n%s", a.Output())
		}
		resume(t, ctl)
		waitState(f, "a", "healthy", 5*time.Second)
	})

	t.Run("finish-grace-over", func(t *testing.T) {
		t.Parallel()
		f, ctl, gate := drainFarm(t, "[availability]\ndrain = \"finish\"\ngrace = \"1s\"\n")
		dir := srcDir(t)
		a := f.Volunteer("a")
		bg := heldOnA(t, f, gate, dir, "held.o")
		start := time.Now()
		pause(t, ctl, "owner back")
		waitLog(t, a, "job cancelled: drain grace period over", 10*time.Second)
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Fatalf("job cancelled %s after the drain began, before the 1s grace", d)
		}
		code, stderr := bg.wait(t, 90*time.Second)
		if code != 0 {
			t.Fatalf("dcc exit %d\n%s", code, stderr)
		}
		if h := remoteHost(stderr); h == "a" {
			t.Fatalf("the cancelled job was reported as compiled on a:\n%s", stderr)
		} else {
			t.Logf("redone on %q (\"\" = locally)", h)
		}
		checkHeldObject(t, dir, "held.o")
		resume(t, ctl)
		waitState(f, "a", "healthy", 5*time.Second)
	})
}
