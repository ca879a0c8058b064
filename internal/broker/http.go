package broker

import (
	"crypto/tls"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler serves, on plain HTTP, the status page at /, the status
// document at /v1/status and Prometheus metrics at /metrics.
func (b *Broker) httpHandler() http.Handler {
	mux := b.readOnly()
	b.registerPlainAPI(mux)
	return mux
}

// httpsHandler serves the same over HTTPS, and the API that changes state.
func (b *Broker) httpsHandler() http.Handler {
	mux := b.readOnly()
	b.registerAPI(mux)
	return mux
}

// httpsTLS is the HTTPS listener's configuration: the broker's identity,
// and a client certificate of the farm required.
func (b *Broker) httpsTLS() *tls.Config {
	c := b.tls.Clone()
	c.NextProtos = []string{"http/1.1"}
	return c
}

func (b *Broker) readOnly() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(b.Status(r.URL.Query().Get("explain")))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.m.reg, promhttp.HandlerOpts{ErrorLog: zapPrintln{b}}))
	mux.HandleFunc("GET /{$}", b.statusPage)
	return mux
}

// zapPrintln lets promhttp log collection errors through the broker's logger.
type zapPrintln struct{ b *Broker }

func (z zapPrintln) Println(v ...any) { z.b.log.Sugar().Warnln(v...) }
