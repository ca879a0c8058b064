package volunteer

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg      *prometheus.Registry
	results  *prometheus.CounterVec
	duration prometheus.Histogram
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "jobs_total",
			Help: "Jobs by result: ok, compile_error, rejected, failed, cancelled, refused."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "job_duration_seconds",
			Help: "Wall time of compiles run.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "received_bytes_total",
			Help: "Preprocessed source bytes received."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "volunteer", Name: "sent_bytes_total",
			Help: "Object bytes sent."}),
	}
	m.reg.MustRegister(m.results, m.duration, m.bytesIn, m.bytesOut,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (v *Volunteer) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(v.m.reg, promhttp.HandlerOpts{}))
	return mux
}
