package broker

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/pkg/tiering"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// metrics are the broker's event counters; gauges of farm state are
// collected at scrape time from the status document (farmCollector).
//
// Every labelled counter is initialised at 0 for its known label values,
// so that its series exist from the broker's start: a rate() over them is
// 0, not "no data", on an idle farm.
type metrics struct {
	reg               *prometheus.Registry
	granted           *prometheus.CounterVec
	released          *prometheus.CounterVec
	refused           *prometheus.CounterVec
	reclaimed         reasonCounter
	denied            *prometheus.CounterVec
	fallbacks         *prometheus.CounterVec
	cancelled         prometheus.Counter
	handshakeFailures prometheus.Counter
	wait              prometheus.Histogram
}

// Known label values, initialised at startup.
var (
	releaseOutcomes = []string{wire.OutcomeOK, wire.OutcomeCompileError, wire.OutcomeFailed, wire.OutcomeRejected, wire.OutcomeCancelled, wire.OutcomeDeclined, wire.OutcomeCached}
	// releaseLabels are the label values of leases_released_total: the
	// outcomes, and "other" for anything else a peer reports.
	releaseLabels   = append(slices.Clone(releaseOutcomes), "other")
	refuseReasons   = []string{"foreign_lease", "revoked", "not_host", "wrong_name", "not_in_farm", "not_user", "not_admin", "bad_role", "mismatch_limited", "api_credential"}
	reclaimReasons  = []string{"expired", "client_gone", "host_gone", "revoked"}
	denyReasons     = []string{"no_compiler", "local_faster", "timeout", "busy"}
	fallbackReasons = []string{"no_broker", "denied", "no_compiler", "timeout", "host_failed", "transport", "rejected", "agent", "local_faster", "busy", "cancelled", "diagnostics", "too_large", "other"}
	hostStates      = []string{string(tiering.Healthy), string(tiering.Probation), string(tiering.Blocked), string(tiering.Draining), string(tiering.Gone)}
)

func newMetrics(b *Broker) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_granted_total",
			Help: "Leases granted, by tier of the host."}, []string{"tier"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_released_total",
			Help: "Leases released by their holder, by job outcome."}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "refused_total",
			Help: "Requests refused because the peer's credential or ownership does not allow them, by reason."}, []string{"reason"}),
		reclaimed: reasonCounter{prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_reclaimed_total",
			Help: "Leases the broker took back, by reason (expired, client_gone, host_gone, revoked)."}, []string{"reason"})},
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "requests_denied_total",
			Help: "Lease requests answered with 'compile locally', by reason."}, []string{"reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "client", Name: "local_fallbacks_total",
			Help: "Local compiles reported by clients, by reason."}, []string{"reason"}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "requests_cancelled_total",
			Help: "Waiting requests whose client left."}),
		handshakeFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "handshake_failures_total",
			Help: "Connections refused during the handshake."}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dcc", Subsystem: "broker", Name: "lease_wait_seconds",
			Help: "Time from lease request to grant.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)}),
	}
	for _, o := range releaseLabels {
		m.released.WithLabelValues(o)
	}
	for _, r := range refuseReasons {
		m.refused.WithLabelValues(r)
	}
	for _, r := range reclaimReasons {
		m.reclaimed.WithLabelValues(r)
	}
	for _, r := range denyReasons {
		m.denied.WithLabelValues(r)
	}
	for _, r := range fallbackReasons {
		m.fallbacks.WithLabelValues(r)
	}
	// Tiers of the hosts in the farm file at startup; others appear when granted.
	for _, name := range b.farm.Names() {
		m.granted.WithLabelValues(strconv.Itoa(tiering.BaseTier(b.farm.Hosts[name].Power)))
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dcc", Subsystem: "broker", Name: "build_info",
		Help: "Always 1; the label names the broker's build.", ConstLabels: prometheus.Labels{"version": buildinfo.Version}})
	info.Set(1)
	start := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dcc", Subsystem: "broker", Name: "start_time_seconds",
		Help: "Unix time the broker started."})
	start.Set(float64(b.start.UnixNano()) / 1e9)
	m.reg.MustRegister(m.granted, m.released, m.refused, m.reclaimed.CounterVec, m.denied, m.fallbacks, m.cancelled, m.handshakeFailures, m.wait,
		info, start, newFarmCollector(b),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if b.cache != nil {
		m.reg.MustRegister(b.cache.collectors()...)
	}
	return m
}

// fallbackLabel bounds the label values a client can create.
func fallbackLabel(reason string) string {
	switch r := strings.ToLower(reason); r {
	case "no_broker", "denied", "no_compiler", "timeout", "host_failed", "transport", "rejected", "agent", "local_faster", "busy", "cancelled", "diagnostics", "too_large":
		return r
	}
	return "other"
}

// reasonCounter counts reclaims; it folds the reason spellings used at
// different call sites ("revoke", "revoked") into one label value.
type reasonCounter struct{ *prometheus.CounterVec }

func (r reasonCounter) WithLabelValues(reason string) prometheus.Counter {
	if reason == "revoke" {
		reason = "revoked"
	}
	return r.CounterVec.WithLabelValues(reason)
}

// farmCollector turns the status document into gauges at scrape time. It
// takes the broker's mutex once per scrape, for as long as Status does.
// The user label appears on gauges only, never on a histogram.
type farmCollector struct {
	b *Broker

	leases, queue, uptime                     *prometheus.Desc
	slots, busy, hosts                        *prometheus.Desc
	hostSlots, hostBusy, hostLoad, hostTier   *prometheus.Desc
	hostCPUs, hostPower, hostState, hostJobs  *prometheus.Desc
	hostFailures                              *prometheus.Desc
	userRunning, userWaiting, userUsage       *prometheus.Desc
	userShare, userWeight, reclaimsRemembered *prometheus.Desc
	compilerHosts                             *prometheus.Desc
}

func newFarmCollector(b *Broker) *farmCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("dcc_broker_"+name, help, labels, nil)
	}
	return &farmCollector{
		b:                  b,
		leases:             d("leases_active", "Leases held now."),
		queue:              d("queue_length", "Lease requests waiting now."),
		uptime:             d("uptime_seconds", "Seconds since the broker started."),
		slots:              d("slots", "Slots of connected hosts, by the host's current tier (0: not used now).", "tier"),
		busy:               d("busy_slots", "Leased slots, by the host's current tier.", "tier"),
		hosts:              d("hosts", "Hosts in the farm file or connected, by state.", "state"),
		hostSlots:          d("host_slots", "Slots of a host.", "host"),
		hostBusy:           d("host_busy_slots", "Leased slots of a host.", "host"),
		hostLoad:           d("host_load1", "One-minute load average a host reported (our jobs included).", "host"),
		hostTier:           d("host_tier", "Current tier of a host (higher is better, 0: not used now).", "host"),
		hostCPUs:           d("host_cpus", "CPUs of a host, from the farm file.", "host"),
		hostPower:          d("host_power", "Power index of a host, from the farm file.", "host"),
		hostState:          d("host_state", "1 for the state a host is in, 0 for the others.", "host", "state"),
		hostJobs:           d("host_jobs_total", "Leases on a host that ended, since the broker started.", "host"),
		hostFailures:       d("host_farm_failures_total", "Farm failures (failed or rejected jobs, not compile errors) clients reported for a host.", "host"),
		userRunning:        d("user_running_leases", "Leases a user holds now.", "user"),
		userWaiting:        d("user_waiting_requests", "Lease requests of a user waiting now.", "user"),
		userUsage:          d("user_usage_slot_seconds", "A user's decayed fair-share usage, in power-weighted slot-seconds.", "user"),
		userShare:          d("user_share_ratio", "A user's fraction of the power-weighted busy slots now.", "user"),
		userWeight:         d("user_weight", "A user's fair-share weight.", "user"),
		reclaimsRemembered: d("recent_reclaims", "Reclaimed leases the status page lists."),
		compilerHosts:      d("compiler_hosts", "Connected hosts offering a compiler fingerprint.", "fingerprint"),
	}
}

func (c *farmCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{c.leases, c.queue, c.uptime, c.slots, c.busy, c.hosts, c.hostSlots, c.hostBusy, c.hostLoad,
		c.hostTier, c.hostCPUs, c.hostPower, c.hostState, c.hostJobs, c.hostFailures, c.userRunning, c.userWaiting,
		c.userUsage, c.userShare, c.userWeight, c.reclaimsRemembered, c.compilerHosts}
}

// Describe implements prometheus.Collector.
func (c *farmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *farmCollector) Collect(ch chan<- prometheus.Metric) {
	doc := c.b.Status("")
	c.collectDoc(doc, ch)
}

func (c *farmCollector) collectDoc(doc *status.Doc, ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(c.leases, float64(doc.Leases))
	g(c.queue, float64(doc.Queue))
	g(c.uptime, doc.Uptime)
	g(c.reclaimsRemembered, float64(len(doc.Reclaims)))

	states := map[string]int{}
	for _, s := range hostStates {
		states[s] = 0
	}
	// Tier series exist for every tier a farm-file host can reach, so that
	// "slots by tier" has a line per tier even while it is empty.
	tierSlots, tierBusy := map[int]int{0: 0}, map[int]int{0: 0}
	comps := map[string]int{}
	for _, h := range doc.Hosts {
		for t := 1; t <= tiering.BaseTier(h.Power); t++ {
			tierSlots[t] += 0
			tierBusy[t] += 0
		}
		states[h.State]++
		if h.State != string(tiering.Gone) {
			tierSlots[h.Tier] += h.Slots
			for _, fp := range h.Compilers {
				comps[fp]++
			}
		}
		tierBusy[h.Tier] += h.Busy
		g(c.hostSlots, float64(h.Slots), h.Name)
		g(c.hostBusy, float64(h.Busy), h.Name)
		g(c.hostLoad, h.Load1, h.Name)
		g(c.hostTier, float64(h.Tier), h.Name)
		g(c.hostCPUs, float64(h.CPUs), h.Name)
		g(c.hostPower, h.Power, h.Name)
		ch <- prometheus.MustNewConstMetric(c.hostJobs, prometheus.CounterValue, float64(h.JobsDone), h.Name)
		ch <- prometheus.MustNewConstMetric(c.hostFailures, prometheus.CounterValue, float64(h.Failures), h.Name)
		for _, s := range hostStates {
			v := 0.0
			if s == h.State {
				v = 1
			}
			g(c.hostState, v, h.Name, s)
		}
	}
	for s, n := range states {
		g(c.hosts, float64(n), s)
	}
	for t, n := range tierSlots {
		g(c.slots, float64(n), strconv.Itoa(t))
	}
	for t, n := range tierBusy {
		g(c.busy, float64(n), strconv.Itoa(t))
	}
	for fp, n := range comps {
		g(c.compilerHosts, float64(n), fp)
	}
	for _, u := range doc.Users {
		g(c.userRunning, float64(u.Running), u.Name)
		g(c.userWaiting, float64(u.Waiting), u.Name)
		g(c.userUsage, u.Usage, u.Name)
		g(c.userShare, u.Share, u.Name)
		g(c.userWeight, u.Weight, u.Name)
	}
}
