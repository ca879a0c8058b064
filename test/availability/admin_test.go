package availability

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

func TestExternalLoad(t *testing.T) {
	t.Parallel()
	f := testfarm.New(t, testfarm.Host{Name: "mon", CPUs: 2, Power: 3})
	f.BrokerArgs = []string{"--overload", "0.9", "--saturated", "2"}
	f.StartBroker()
	volunteer(t, f, "mon", 2, "", "--load-source", "external")
	// The machine's own load (whatever else runs on it) is ignored: the
	// host is usable before any monitor has said anything.
	h := up(f, "mon").Hosts[0]
	if h.Tier != 3 || h.Load1 != 0 {
		t.Fatalf("external-load host before any report: %+v", h)
	}
	path := "/v1/hosts/mon/load"
	put := func(body string) {
		t.Helper()
		if code, resp := api(t, f, "admin", "PUT", path, body); code != 200 {
			t.Fatalf("PUT %s: %d %s", body, code, resp)
		}
	}

	put(`{"load1": 10, "load5": 8, "load15": 4}`)
	h = *waitHost(f, "mon", 2*time.Second, "tier 0", func(h *status.Host) bool { return h.Tier == 0 })
	if !strings.Contains(h.Reason, "foreign load") || h.Load1 != 10 || h.Load5 != 8 || h.Load15 != 4 || h.State != "healthy" {
		t.Fatalf("loaded host: %+v", h)
	}
	// The volunteer's own reports (every second) do not replace the figure.
	time.Sleep(1500 * time.Millisecond)
	r := f.DCC(t.TempDir(), "status", "--json")
	var doc status.Doc
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &doc) != nil {
		t.Fatalf("dcc status --json: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if h := testfarm.HostOf(&doc, "mon"); h == nil || h.Load1 != 10 || h.Tier != 0 {
		t.Fatalf("status JSON does not show the monitor's load: %+v", h)
	}
	// A saturated host gets no jobs: dcc compiles locally.
	dir := srcDir(t)
	if host, r := compile(t, f, dir, "gcc", "quick.c", "q1.o", "-O2"); host != "" || !strings.Contains(r.Stderr, "no usable host") {
		t.Fatalf("compile with the only host saturated went to %q:\n%s", host, r.Stderr)
	}

	put(`{"load1": 2.5}`) // 1.25 per cpu: above --overload, one tier down
	h = *waitHost(f, "mon", 2*time.Second, "tier 2", func(h *status.Host) bool { return h.Tier == 2 })
	if !strings.Contains(h.Reason, "foreign load") {
		t.Fatalf("overloaded host: %+v", h)
	}

	put(`{"load1": 0, "load5": 0, "load15": 0}`)
	h = *waitHost(f, "mon", 2*time.Second, "tier 3", func(h *status.Host) bool { return h.Tier == 3 })
	if h.Load1 != 0 || h.Reason != "power 3" {
		t.Fatalf("unloaded host: %+v", h)
	}
	if host, r := compile(t, f, dir, "gcc", "quick.c", "q2.o", "-O2"); host != "mon" {
		t.Fatalf("compile went to %q:\n%s", host, r.Stderr)
	}

	// Refused: bad body, unknown host, credentials that may not.
	if code, _ := api(t, f, "admin", "PUT", path, `{"load5": 1}`); code != 400 {
		t.Fatalf("body without load1: %d, want 400", code)
	}
	if code, _ := api(t, f, "admin", "PUT", "/v1/hosts/nosuch/load", `{"load1": 1}`); code != 404 {
		t.Fatalf("unknown host: %d, want 404", code)
	}
	// Only an admin or the host itself may say a host's load.
	for _, who := range []string{"user:bob", "host:other", "plain"} {
		if code, _ := api(t, f, who, "PUT", path, `{"load1": 50}`); code != 403 {
			t.Fatalf("load from %s: %d, want 403", who, code)
		}
	}
	if code, resp := api(t, f, "host:mon", "PUT", path, `{"load1": 0}`); code != 200 {
		t.Fatalf("the host's own load report: %d %s", code, resp)
	}
	time.Sleep(300 * time.Millisecond)
	if h := testfarm.HostOf(f.Status(), "mon"); h.Load1 != 0 || h.Tier != 3 {
		t.Fatalf("a refused request changed the host: %+v", h)
	}
}

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	f := newFarm(t, testfarm.Host{Name: "x", CPUs: 2, Power: 2}, testfarm.Host{Name: "y", CPUs: 2, Power: 1})
	f.StartBroker()
	ctl := volunteer(t, f, "x", 2, "")
	volunteer(t, f, "y", 2, "")
	up(f, "x", "y")
	dir := srcDir(t)
	farm := func(args ...string) testfarm.Result {
		t.Helper()
		return f.Admin(t.TempDir(), append([]string{"farm"}, args...)...)
	}
	ok := func(args ...string) {
		t.Helper()
		if r := farm(args...); r.Code != 0 {
			t.Fatalf("dcc farm %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	// steady checks that a state survives the volunteer's next reports.
	steady := func(state, note string) {
		t.Helper()
		waitState(f, "x", state, 2*time.Second)
		time.Sleep(1200 * time.Millisecond)
		h := testfarm.HostOf(f.Status(), "x")
		if h.State != state || (note != "" && h.Note != note) || (state != "healthy" && h.Tier != 0) {
			t.Fatalf("x after its volunteer reported again: state %q tier %d note %q; want %s, note %q", h.State, h.Tier, h.Note, state, note)
		}
	}

	ok("drain", "x", "--reason", "kernel update")
	steady("draining", "kernel update")
	if host, r := compile(t, f, dir, "gcc", "quick.c", "q1.o", "-O2"); host != "y" {
		t.Fatalf("compile went to %q while x is drained:\n%s", host, r.Stderr)
	}
	ok("undrain", "x")
	steady("healthy", "")
	if h := testfarm.HostOf(f.Status(), "x"); h.Note != "" || h.Tier != 2 {
		t.Fatalf("undrained host: %+v", h)
	}

	ok("block", "x", "--reason", "bad ram")
	steady("blocked", "bad ram")
	st := f.DCC(t.TempDir(), "status")
	if st.Code != 0 || !strings.Contains(st.Stdout, "bad ram") {
		t.Fatalf("dcc status does not say why x is blocked:\n%s%s", st.Stdout, st.Stderr)
	}
	if host, r := compile(t, f, dir, "gcc", "quick.c", "q2.o", "-O2"); host != "y" {
		t.Fatalf("compile went to %q while x is blocked:\n%s", host, r.Stderr)
	}
	ok("unblock", "x")
	steady("healthy", "")
	if h := testfarm.HostOf(f.Status(), "x"); h.Note != "" || h.Tier != 2 {
		t.Fatalf("unblocked host: %+v", h)
	}
	if host, r := compile(t, f, dir, "gcc", "quick.c", "q3.o", "-O2"); host != "x" {
		t.Fatalf("compile went to %q after unblock:\n%s", host, r.Stderr)
	}

	// An admin undrain does not override the owner's pause.
	pause(t, ctl, "lunch")
	waitState(f, "x", "draining", 2*time.Second)
	ok("drain", "x")
	ok("undrain", "x")
	steady("draining", "paused: lunch")
	resume(t, ctl)
	waitState(f, "x", "healthy", 2*time.Second)

	if r := farm("block", "x"); r.Code != 2 || !strings.Contains(r.Stderr, "--reason") {
		t.Fatalf("block without --reason: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := farm("drain", "nosuch"); r.Code == 0 || !strings.Contains(r.Stderr, "no such host") {
		t.Fatalf("drain of an unknown host: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := farm("reboot", "x"); r.Code != 2 {
		t.Fatalf("unknown action: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := farm("drain"); r.Code != 2 {
		t.Fatalf("no host: exit %d\n%s", r.Code, r.Stderr)
	}
	if h := testfarm.HostOf(f.Status(), "x"); h.State != "healthy" {
		t.Fatalf("refused commands changed x: %+v", h)
	}

	var lines []string
	for _, l := range strings.Split(f.BrokerProc().Output(), "\n") {
		if strings.Contains(l, "admin action") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 6 {
		t.Fatalf("%d admin action lines in the broker log, want 6:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, `"by": "admin ops@`) || !strings.Contains(l, `"host": "x"`) {
			t.Fatalf("admin action line does not name the user and host: %s", l)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), `"reason": "bad ram"`) {
		t.Fatalf("the block reason is not logged:\n%s", strings.Join(lines, "\n"))
	}
}
