package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dcc-farm/dcc/internal/status"
)

func sampleDoc() *status.Doc {
	now := time.Now()
	return &status.Doc{
		Time: now, Broker: "127.0.0.1:3633", Leases: 3, Queue: 2, Slots: 6, Busy: 3, Uptime: 3725,
		Hosts: []status.Host{
			{Name: "fast1", CPUs: 8, Power: 3, Slots: 4, Busy: 3, Tier: 3, State: "healthy", Reason: "power 3", Load1: 3.2, JobsDone: 42, Compilers: []string{"x86_64-linux-gnu gcc version 12.2.0"}},
			{Name: "slow<script>alert(1)</script>", CPUs: 2, Power: 1, Slots: 2, Tier: 1, State: "probation", Reason: "power 1, probation: -1", Compilers: []string{"x86_64-linux-gnu gcc version 12.2.0"}},
			{Name: "desk9", CPUs: 2, Power: 1, Slots: 2, Tier: 0, State: "draining", Reason: "draining", Note: "owner at work"},
			{Name: "old", CPUs: 2, Power: 2, Tier: 0, State: "gone", Reason: "gone"},
		},
		Users: []status.User{
			{Name: "alice", Running: 2, Waiting: 1, Usage: 120.5, Weight: 1, Share: 0.67},
			{Name: "bob\"><b>", Running: 1, Waiting: 1, Usage: 30, Weight: 2, Share: 0.33},
		},
		Reclaims: []status.Reclaim{{Time: now.Add(-90 * time.Second), Lease: 77, User: "alice", Host: "old", Reason: "host_gone: volunteer disconnected"}},
		Cache: &status.Cache{Store: "disk /var/lib/dcc-broker/cache", Entries: 12, Bytes: 3 << 20, Hits: 3, Misses: 1,
			Users: []status.CacheUser{{Name: "carol", Hits: 1, Misses: 3}}},
	}
}

func TestStatusPageRendersAndEscapes(t *testing.T) {
	var b strings.Builder
	if err := renderPage(&b, sampleDoc()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`, "Tier 3", "Tier 1", "Not used", "fast1", "desk9", "owner at work",
		"alice", "draining", "probation", "3 busy · 1 free", "host_gone: volunteer disconnected", "1m30s ago",
		"x86_64-linux-gnu gcc version 12.2.0", "67%", "2 requests waiting",
		"Result cache", `<b class="hit-rate">75%</b>`, "12 entries, 3.0 MiB", `data-user="carol"`, "25%",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", `bob"><b>`} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if !strings.Contains(page, "slow&lt;script&gt;") {
		t.Error("hostile host name not escaped as text")
	}
	// best tier first, "not used" last
	if i, j, k := strings.Index(page, "Tier 3"), strings.Index(page, "Tier 1"), strings.Index(page, "Not used"); !(i < j && j < k) {
		t.Errorf("tier groups out of order: %d %d %d", i, j, k)
	}
}

func TestStatusPageEmptyFarm(t *testing.T) {
	var b strings.Builder
	if err := renderPage(&b, &status.Doc{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No hosts in the farm file.", "Nobody has used the farm recently.", "No request is waiting."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
}

// docCollector feeds a fixed document through the farm collector.
type docCollector struct {
	*farmCollector
	doc *status.Doc
}

func (d docCollector) Collect(ch chan<- prometheus.Metric) { d.collectDoc(d.doc, ch) }

func TestFarmCollector(t *testing.T) {
	c := docCollector{newFarmCollector(nil), sampleDoc()}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP dcc_broker_hosts Hosts in the farm file or connected, by state.
# TYPE dcc_broker_hosts gauge
dcc_broker_hosts{state="blocked"} 0
dcc_broker_hosts{state="draining"} 1
dcc_broker_hosts{state="gone"} 1
dcc_broker_hosts{state="healthy"} 1
dcc_broker_hosts{state="probation"} 1
# HELP dcc_broker_busy_slots Leased slots, by the host's current tier.
# TYPE dcc_broker_busy_slots gauge
dcc_broker_busy_slots{tier="0"} 0
dcc_broker_busy_slots{tier="1"} 0
dcc_broker_busy_slots{tier="2"} 0
dcc_broker_busy_slots{tier="3"} 3
# HELP dcc_broker_user_running_leases Leases a user holds now.
# TYPE dcc_broker_user_running_leases gauge
dcc_broker_user_running_leases{user="alice"} 2
dcc_broker_user_running_leases{user="bob\"><b>"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dcc_broker_hosts", "dcc_broker_busy_slots", "dcc_broker_user_running_leases"); err != nil {
		t.Error(err)
	}
}

func TestReclaimReasonSpellings(t *testing.T) {
	r := reasonCounter{prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"reason"})}
	r.WithLabelValues("revoke").Inc()
	r.WithLabelValues("revoked").Inc()
	if got := testutil.ToFloat64(r.CounterVec.WithLabelValues("revoked")); got != 2 {
		t.Errorf("revoked = %v, want 2", got)
	}
}
