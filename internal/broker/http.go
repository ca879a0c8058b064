package broker

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler serves the status page at /, the status document at
// /v1/status and Prometheus metrics at /metrics.
func (b *Broker) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(b.Status(r.URL.Query().Get("explain")))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.m.reg, promhttp.HandlerOpts{ErrorLog: zapPrintln{b}}))
	mux.HandleFunc("GET /{$}", b.statusPage)
	b.registerAPI(mux)
	return mux
}

// zapPrintln lets promhttp log collection errors through the broker's logger.
type zapPrintln struct{ b *Broker }

func (z zapPrintln) Println(v ...any) { z.b.log.Sugar().Warnln(v...) }
