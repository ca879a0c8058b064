package availability

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

func TestFarmFileReload(t *testing.T) {
	t.Parallel()
	keep := testfarm.Host{Name: "keep", CPUs: 2, Power: 1}
	doomed := testfarm.Host{Name: "doomed", CPUs: 2, Power: 5} // preferred: the held job runs there
	gate := testfarm.NewGate(t, "gcc")
	late := testfarm.Host{Name: "late", CPUs: 2, Power: 2}
	f := newFarm(t, keep, doomed)
	f.StartBroker()
	volunteer(t, f, "keep", 2, "")
	volunteer(t, f, "doomed", 2, "", "--compilers", gate.Path) // its jobs run until the test lets them
	volunteer(t, f, "late", 2, "")
	up(f, "keep", "doomed")
	reloads := func() int { return strings.Count(f.BrokerProc().Output(), "farm file reloaded") }

	// A host not in the farm file is refused, and keeps trying.
	waitLog(t, f.Volunteer("late"), "not in the farm file", 10*time.Second)
	if h := testfarm.HostOf(f.Status(), "late"); h != nil {
		t.Fatalf("a host not in the farm file appears in the status: %+v", h)
	}
	time.Sleep(2 * time.Second) // let its backoff grow
	start := time.Now()
	f.WriteFarm(keep, doomed, late)
	up(f, "late")
	t.Logf("late joined %s after the farm file named it", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("late joined only after %s", d)
	}

	// A power change takes effect within about a second.
	keep.Power = 4
	start = time.Now()
	f.WriteFarm(keep, doomed, late)
	waitHost(f, "keep", 1500*time.Millisecond, "tier 4", func(h *status.Host) bool { return h.Tier == 4 && h.Power == 4 })
	t.Logf("power change seen after %s", time.Since(start).Round(time.Millisecond))

	// Removing a host revokes its leases; the job is redone elsewhere.
	dir := srcDir(t)
	bg := startDCC(t, f, dir, nil, "gcc", "-O2", "-c", "held.c", "-o", "held.o")
	for gate.Held() == 0 {
		if bg.finished() {
			t.Fatalf("dcc ended before the job started:\n%s", bg.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.WriteFarm(keep, late)
	d := f.WaitStatus(func(d *status.Doc) bool {
		h := testfarm.HostOf(d, "doomed")
		return h == nil || h.State == "gone"
	}, 2*time.Second, "doomed gone")
	found := false
	for _, r := range d.Reclaims {
		if r.Host == "doomed" && strings.Contains(r.Reason, "host removed from farm file") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no revoked lease for the removed host: %+v", d.Reclaims)
	}
	if h := testfarm.HostOf(d, "doomed"); h != nil && (h.Tier != 0 || h.Busy != 0) {
		t.Fatalf("removed host still usable or busy: %+v", h)
	}
	code, stderr := bg.wait(t, 90*time.Second)
	if code != 0 {
		t.Fatalf("dcc exit %d\n%s", code, stderr)
	}
	if h := remoteHost(stderr); h == "doomed" {
		t.Fatalf("the job of a revoked lease finished on the removed host:\n%s", stderr)
	}
	checkHeldObject(t, dir, "held.o")
	waitLog(t, f.Volunteer("doomed"), "job cancelled by broker", time.Second)
	for i := 0; i < 3; i++ {
		if h, r := compile(t, f, dir, "gcc", "quick.c", "q.o", "-O2"); h == "doomed" || h == "" {
			t.Fatalf("compile after the removal went to %q:\n%s", h, r.Stderr)
		}
	}

	// A syntax error: the old farm stays, the log names the line.
	good, _ := json.Marshal(f.Status().Hosts)
	n := reloads()
	if err := os.WriteFile(f.FarmFile, []byte("# NAME NCPUS POWER\nkeep 2 4\nlate two 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, f.BrokerProc(), "farm file not reloaded", 3*time.Second)
	log := f.BrokerProc().Output()
	if !strings.Contains(log, `line 3 \"late two 2\"`) {
		t.Fatalf("the broker log does not name the bad line:\n%s", log[strings.LastIndex(log, "farm file not reloaded")-200:])
	}
	time.Sleep(300 * time.Millisecond)
	if reloads() != n {
		t.Fatal("a farm file with a syntax error was applied")
	}
	now, _ := json.Marshal(f.Status().Hosts)
	var a, b []status.Host
	json.Unmarshal(good, &a)
	json.Unmarshal(now, &b)
	if len(a) != len(b) {
		t.Fatalf("hosts changed after a bad farm file:\n%s\n%s", good, now)
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].State != b[i].State || a[i].Tier != b[i].Tier || a[i].Power != b[i].Power {
			t.Fatalf("hosts changed after a bad farm file:\n%+v\n%+v", a[i], b[i])
		}
	}
	// Fixing the file is picked up again.
	keep.Power = 1
	f.WriteFarm(keep, late)
	waitHost(f, "keep", 1500*time.Millisecond, "tier 1", func(h *status.Host) bool { return h.Tier == 1 })
}
