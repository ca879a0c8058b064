package volunteer

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// jobResults are the values of the result label of dcc_volunteer_jobs_total;
// each series exists from the start at 0.
var jobResults = []string{wire.OutcomeOK, wire.OutcomeCompileError, wire.OutcomeRejected, wire.OutcomeFailed, wire.OutcomeCancelled, "refused"}

type metrics struct {
	reg      *prometheus.Registry
	results  *prometheus.CounterVec
	duration prometheus.Histogram
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	// cachePuts counts results sent to the broker's result cache.
	cachePuts prometheus.Counter

	stateOnce sync.Once // registers the state collector, which needs the Volunteer
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "jobs_total",
			Help: "Jobs by result: ok, compile_error, rejected, failed, cancelled, refused (handshake)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "job_duration_seconds",
			Help: "Wall time of compiles run.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "received_bytes_total",
			Help: "Preprocessed source bytes received."}),
		cachePuts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "cache_puts_total",
			Help: "Results this host sent to the farm's result cache."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "sent_bytes_total",
			Help: "Object bytes sent."}),
	}
	for _, r := range jobResults {
		m.results.WithLabelValues(r)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "build_info",
		Help: "Always 1; the label names the volunteer's build.", ConstLabels: prometheus.Labels{"version": buildinfo.Version}})
	info.Set(1)
	m.reg.MustRegister(m.results, m.duration, m.bytesIn, m.bytesOut, m.cachePuts, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (v *Volunteer) httpHandler() http.Handler {
	v.m.stateOnce.Do(func() { v.m.reg.MustRegister(&stateCollector{v: v}) })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(v.m.reg, promhttp.HandlerOpts{}))
	return mux
}

// gauges reads the volunteer's live state under its mutex.
func (v *Volunteer) gauges() (slots, running int, available bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cfg.Slots, len(v.running), v.avail.decision.Available
}

// stateCollector reports the volunteer's slots, running jobs and
// availability at scrape time.
type stateCollector struct{ v *Volunteer }

var (
	descSlots     = prometheus.NewDesc("dcc_volunteer_slots", "Jobs this host runs at once.", nil, nil)
	descRunning   = prometheus.NewDesc("dcc_volunteer_running_jobs", "Jobs running now.", nil, nil)
	descAvailable = prometheus.NewDesc("dcc_volunteer_available", "1 if the host offers its slots now, 0 if paused or drained.", nil, nil)
	descCompilers = prometheus.NewDesc("dcc_volunteer_compilers", "Compilers this host offers.", nil, nil)
	descLoad1     = prometheus.NewDesc("dcc_volunteer_load1", "One-minute load average of this host.", nil, nil)
	descSandbox   = prometheus.NewDesc("dcc_volunteer_sandbox_enforced", "1 if compiles here are confined to their directories (Landlock), 0 if not: then they can read every file the volunteer can.", nil, nil)
	descLandlock  = prometheus.NewDesc("dcc_volunteer_sandbox_landlock_abi", "Landlock ABI version enforced on compiles (0: none).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSlots
	ch <- descRunning
	ch <- descAvailable
	ch <- descCompilers
	ch <- descLoad1
	ch <- descSandbox
	ch <- descLandlock
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	slots, running, available := c.v.gauges()
	avail := 0.0
	if available {
		avail = 1
	}
	l1, _, _ := readLoad()
	ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(slots))
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(descAvailable, prometheus.GaugeValue, avail)
	ch <- prometheus.MustNewConstMetric(descCompilers, prometheus.GaugeValue, float64(len(c.v.compilers)))
	ch <- prometheus.MustNewConstMetric(descLoad1, prometheus.GaugeValue, l1)
	enforced := 0.0
	if c.v.sandbox.Enforced() {
		enforced = 1
	}
	ch <- prometheus.MustNewConstMetric(descSandbox, prometheus.GaugeValue, enforced)
	ch <- prometheus.MustNewConstMetric(descLandlock, prometheus.GaugeValue, float64(c.v.sandbox.Status.ABI))
}
