package availability

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

// signalFarm starts a broker, a volunteer "desk" (power 3, preferred) with
// the given [availability] table and a volunteer "spare" (power 1).
func signalFarm(t *testing.T, avail string) (*testfarm.Farm, string) {
	t.Helper()
	f := newFarm(t, testfarm.Host{Name: "desk", CPUs: 2, Power: 3}, testfarm.Host{Name: "spare", CPUs: 2, Power: 1})
	f.StartBroker()
	ctl := volunteer(t, f, "desk", 2, avail)
	volunteer(t, f, "spare", 2, "")
	return f, ctl
}

// compilesOn checks that a quick compile lands on host and gives the local object.
func compilesOn(t *testing.T, f *testfarm.Farm, dir, host string) {
	t.Helper()
	out := fmt.Sprintf("q%d.o", time.Now().UnixNano())
	got, r := compile(t, f, dir, "gcc", "quick.c", out, "-O2")
	if got != host {
		t.Fatalf("compiled on %q, want %q:\n%s", got, host, r.Stderr)
	}
	if string(readFile(t, filepath.Join(dir, out))) != string(localObject(t, "gcc", "quick.c", "-O2")) {
		t.Fatal("object differs from a local compile")
	}
}

func TestAvailabilitySignals(t *testing.T) {
	t.Parallel()

	t.Run("owner-idle", func(t *testing.T) {
		t.Parallel()
		idle := filepath.Join(t.TempDir(), "idle")
		writeFile(t, filepath.Dir(idle), "idle", "3600\n", 0o644)
		f, _ := signalFarm(t, fmt.Sprintf("[availability]\nowner_idle = \"1m\"\nidle_source = \"file:%s\"\n", idle))
		up(f, "desk", "spare")
		dir := srcDir(t)
		compilesOn(t, f, dir, "desk")

		// The owner touches the keyboard: idle 5 s < 1 m.
		start := time.Now()
		writeFile(t, filepath.Dir(idle), "idle", "5\n", 0o644)
		h := waitState(f, "desk", "draining", 2*time.Second)
		t.Logf("draining after %s", time.Since(start).Round(time.Millisecond))
		if h.Tier != 0 || !strings.Contains(h.Note+h.Reason, "owner") {
			t.Fatalf("draining host: tier %d reason %q note %q; want tier 0 and a reason naming the owner", h.Tier, h.Reason, h.Note)
		}
		compilesOn(t, f, dir, "spare")
		compilesOn(t, f, dir, "spare")

		// Idle again.
		writeFile(t, filepath.Dir(idle), "idle", "900\n", 0o644)
		h = waitState(f, "desk", "healthy", 2*time.Second)
		if h.Tier != 3 || h.Note != "" {
			t.Fatalf("back from idle: tier %d note %q", h.Tier, h.Note)
		}
		compilesOn(t, f, dir, "desk")
	})

	t.Run("schedule", func(t *testing.T) {
		t.Parallel()
		clock := filepath.Join(t.TempDir(), "clock")
		// 2026-11-23 is a Monday; 12:00 is outside "weekdays 19:00-07:00".
		writeFile(t, filepath.Dir(clock), "clock", "2026-11-23T12:00:00Z\n", 0o644)
		f, _ := signalFarm(t, fmt.Sprintf("[availability]\nschedule = [\"weekdays 19:00-07:00\", \"weekends all day\"]\nclock_file = %q\n", clock))
		up(f, "spare")
		h := waitState(f, "desk", "draining", 10*time.Second)
		if h.Tier != 0 || h.Note != "outside the volunteering schedule" {
			t.Fatalf("outside the schedule: tier %d note %q", h.Tier, h.Note)
		}
		dir := srcDir(t)
		compilesOn(t, f, dir, "spare")

		writeFile(t, filepath.Dir(clock), "clock", "2026-11-23T20:30:00Z\n", 0o644) // Monday evening
		waitState(f, "desk", "healthy", 2*time.Second)
		compilesOn(t, f, dir, "desk")

		writeFile(t, filepath.Dir(clock), "clock", "2026-11-24T07:00:00Z\n", 0o644) // Tuesday morning: window over
		h = waitState(f, "desk", "draining", 2*time.Second)
		if h.Note != "outside the volunteering schedule" {
			t.Fatalf("note %q", h.Note)
		}
		writeFile(t, filepath.Dir(clock), "clock", "2026-11-28T11:00:00Z\n", 0o644) // Saturday
		waitState(f, "desk", "healthy", 2*time.Second)
	})

	t.Run("pause-resume", func(t *testing.T) {
		t.Parallel()
		f := newFarm(t, testfarm.Host{Name: "desk", CPUs: 2, Power: 3}, testfarm.Host{Name: "spare", CPUs: 2, Power: 1})
		f.StartBroker()
		// The control socket comes from the config file, as in a systemd setup.
		ctl := controlPath(t, "desk")
		cfg := writeFile(t, f.Dir, "desk.toml", fmt.Sprintf("control = %q\n", ctl), 0o644)
		f.StartVolunteer("desk", 2, "--config", cfg)
		volunteer(t, f, "spare", 2, "")
		up(f, "desk", "spare")
		vol := filepath.Join(testfarm.Bin(t), "volunteer")

		r := testfarm.Run(t, t.TempDir(), nil, vol, "pause", "--reason", "lunch", "--control", ctl)
		if r.Code != 0 || !strings.Contains(r.Stdout, "paused: lunch") {
			t.Fatalf("volunteer pause: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		h := waitState(f, "desk", "draining", 2*time.Second)
		if h.Tier != 0 || h.Note != "paused: lunch" {
			t.Fatalf("paused: tier %d note %q", h.Tier, h.Note)
		}
		// dcc status shows why.
		st := f.DCC(t.TempDir(), "status")
		if st.Code != 0 || !strings.Contains(st.Stdout, "lunch") {
			t.Fatalf("dcc status does not show the pause reason: exit %d\n%s%s", st.Code, st.Stdout, st.Stderr)
		}
		dir := srcDir(t)
		compilesOn(t, f, dir, "spare")

		r = testfarm.Run(t, t.TempDir(), nil, vol, "resume", "--control", ctl)
		if r.Code != 0 || !strings.Contains(r.Stdout, "resumed") {
			t.Fatalf("volunteer resume: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		h = waitState(f, "desk", "healthy", 2*time.Second)
		if h.Note != "" {
			t.Fatalf("resumed host keeps note %q", h.Note)
		}
		compilesOn(t, f, dir, "desk")

		// No volunteer on the socket: an error, not a hang.
		r = testfarm.Run(t, t.TempDir(), nil, vol, "pause", "--control", filepath.Join(filepath.Dir(ctl), "nobody.sock"))
		if r.Code == 0 {
			t.Fatal("pause with no volunteer on the socket succeeded")
		}
	})

	t.Run("broker-api", func(t *testing.T) {
		t.Parallel()
		f, _ := signalFarm(t, "")
		up(f, "desk", "spare")
		path := "/v1/hosts/desk/availability"

		code, body := api(t, f, "admin", "PUT", path, `{"available": false, "reason": "owner is back"}`)
		if code != 200 {
			t.Fatalf("PUT availability: %d %s", code, body)
		}
		h := waitState(f, "desk", "draining", 2*time.Second)
		if h.Tier != 0 || h.Note != "owner is back" {
			t.Fatalf("unavailable by API: tier %d note %q", h.Tier, h.Note)
		}
		// The volunteer's own reports (every second) must not undo it.
		time.Sleep(1500 * time.Millisecond)
		if h := testfarm.HostOf(f.Status(), "desk"); h.State != "draining" {
			t.Fatalf("the volunteer's report undid the API's availability: %+v", h)
		}
		compilesOn(t, f, srcDir(t), "spare")

		code, body = api(t, f, "admin", "PUT", path, `{"available": true}`)
		if code != 200 {
			t.Fatalf("PUT availability: %d %s", code, body)
		}
		waitState(f, "desk", "healthy", 2*time.Second)

		// Credentials that may not, plain HTTP, no certificate: refused, no change.
		off := `{"available": false, "reason": "forged"}`
		for who, want := range map[string]int{"user:bob": 403, "host:spare": 403, "plain": 403, "nocert": 0} {
			if code, resp := api(t, f, who, "PUT", path, off); code != want {
				t.Fatalf("availability from %s: %d %s, want %d", who, code, resp, want)
			}
		}
		if code, resp := api(t, f, "host:desk", "PUT", path, `{"available": true}`); code != 200 {
			t.Fatalf("the host's own availability: %d %s", code, resp)
		}
		time.Sleep(300 * time.Millisecond)
		if h := testfarm.HostOf(f.Status(), "desk"); h.State != "healthy" || h.Tier != 3 {
			t.Fatalf("a refused request changed the host: %+v", h)
		}
		if !strings.Contains(f.BrokerProc().Output(), "api_credential") {
			t.Fatal("refused API requests are not logged")
		}
		// Unknown host and bad bodies.
		if code, _ := api(t, f, "admin", "PUT", "/v1/hosts/nosuch/availability", off); code != 404 {
			t.Fatalf("unknown host: %d, want 404", code)
		}
		if code, _ := api(t, f, "admin", "PUT", path, `{"reason": "no flag"}`); code != 400 {
			t.Fatalf("body without available: %d, want 400", code)
		}
		d := f.Status()
		if h := testfarm.HostOf(d, "desk"); h.State != "healthy" {
			t.Fatalf("desk %+v", h)
		}
	})
}
