package broker

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the broker's event counters; gauges of farm state are
// collected at scrape time from the status document.
type metrics struct {
	reg               *prometheus.Registry
	granted           *prometheus.CounterVec
	released          *prometheus.CounterVec
	reclaimed         *prometheus.CounterVec
	denied            *prometheus.CounterVec
	fallbacks         *prometheus.CounterVec
	cancelled         prometheus.Counter
	handshakeFailures prometheus.Counter
	wait              prometheus.Histogram
}

func newMetrics(b *Broker) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_granted_total",
			Help: "Leases granted, by tier of the host."}, []string{"tier"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_released_total",
			Help: "Leases released by their holder, by job outcome."}, []string{"outcome"}),
		reclaimed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "broker", Name: "leases_reclaimed_total",
			Help: "Leases the broker took back, by reason."}, []string{"reason"}),
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
	m.reg.MustRegister(m.granted, m.released, m.reclaimed, m.denied, m.fallbacks, m.cancelled, m.handshakeFailures, m.wait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// fallbackLabel bounds the label values a client can create.
func fallbackLabel(reason string) string {
	switch r := strings.ToLower(reason); r {
	case "no_broker", "denied", "no_compiler", "timeout", "host_failed", "transport", "rejected", "agent", "local_faster", "busy":
		return r
	}
	return "other"
}
