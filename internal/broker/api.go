package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// API authentication: every write request carries
//
//	X-DCC-Timestamp: unix seconds
//	X-DCC-Signature: hex(HMAC-SHA256(farm key, METHOD "\n" PATH "\n" TIMESTAMP "\n" BODY))
//
// so outside load monitors prove they hold the farm key without sending it.
// A request more than apiSkew away from the broker's clock is refused.
const (
	apiSkew    = 5 * time.Minute
	apiMaxBody = 64 << 10
)

// APISignature computes the signature header for a request.
func APISignature(key []byte, method, path, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%s\n%s\n", method, path, timestamp)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (b *Broker) registerAPI(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/hosts/{name}/availability", b.authed(b.putAvailability))
	mux.HandleFunc("PUT /v1/hosts/{name}/load", b.authed(b.putLoad))
	mux.HandleFunc("POST /v1/hosts/{name}/admin", b.authed(b.postAdmin))
}

func (b *Broker) authed(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, apiMaxBody+1))
		if err != nil || len(body) > apiMaxBody {
			http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		ts := r.Header.Get("X-DCC-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > apiSkew {
			b.log.Warn("api request refused: bad timestamp", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
			http.Error(w, "missing or stale X-DCC-Timestamp", http.StatusUnauthorized)
			return
		}
		want := APISignature(b.key, r.Method, r.URL.Path, ts, body)
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-DCC-Signature"))) {
			b.log.Warn("api request refused: bad signature", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
			http.Error(w, "bad X-DCC-Signature", http.StatusUnauthorized)
			return
		}
		h(w, r, body)
	}
}

func (b *Broker) knownHost(w http.ResponseWriter, name string) bool {
	b.mu.Lock()
	_, ok := b.farm.Hosts[name]
	b.mu.Unlock()
	if !ok {
		http.Error(w, "no such host in the farm file", http.StatusNotFound)
	}
	return ok
}

// putAvailability: {"available": false, "reason": "owner is back"}.
func (b *Broker) putAvailability(w http.ResponseWriter, r *http.Request, body []byte) {
	name := r.PathValue("name")
	var req struct {
		Available *bool  `json:"available"`
		Reason    string `json:"reason"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Available == nil {
		http.Error(w, `want {"available": true|false, "reason": "..."}`, http.StatusBadRequest)
		return
	}
	if !b.knownHost(w, name) {
		return
	}
	reason := ""
	if !*req.Available {
		reason = req.Reason
		if reason == "" {
			reason = "unavailable (external monitor)"
		}
	}
	now := time.Now()
	b.mu.Lock()
	b.ext(name).unavailable = reason
	b.applyHostStatusLocked(name, now)
	b.dispatchLocked(now)
	b.mu.Unlock()
	b.log.Info("external availability", zap.String("host", name), zap.Bool("available", *req.Available), zap.String("reason", req.Reason))
	writeJSON(w, map[string]any{"host": name, "available": *req.Available})
}

// putLoad: {"load1": 1.5, "load5": 1.2, "load15": 0.9}.
func (b *Broker) putLoad(w http.ResponseWriter, r *http.Request, body []byte) {
	name := r.PathValue("name")
	var req struct {
		Load1  *float64 `json:"load1"`
		Load5  float64  `json:"load5"`
		Load15 float64  `json:"load15"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Load1 == nil {
		http.Error(w, `want {"load1": N, "load5": N, "load15": N}`, http.StatusBadRequest)
		return
	}
	if !b.knownHost(w, name) {
		return
	}
	now := time.Now()
	b.mu.Lock()
	e := b.ext(name)
	e.load = &scheduler.Load{Load1: *req.Load1, Load5: req.Load5, Load15: req.Load15}
	b.applyHostStatusLocked(name, now)
	b.dispatchLocked(now)
	b.mu.Unlock()
	writeJSON(w, map[string]any{"host": name, "load1": *req.Load1})
}

// postAdmin: {"action": "drain"|"undrain"|"block"|"unblock", "reason": "..."}.
func (b *Broker) postAdmin(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Action string `json:"action"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `want {"action": "drain|undrain|block|unblock", "reason": "..."}`, http.StatusBadRequest)
		return
	}
	ok, msg := b.Admin(req.Action, r.PathValue("name"), req.Reason, "http:"+r.RemoteAddr)
	if !ok {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	writeJSON(w, map[string]any{"ok": true, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// external is what outside monitors said about a host.
type external struct {
	unavailable string          // non-empty: unavailable, and why
	load        *scheduler.Load // nil: none reported
	last        *wire.HostStatus
	skew        time.Duration // the volunteer's clock minus the broker's, from its last report
}

func (b *Broker) ext(name string) *external {
	e := b.exts[name]
	if e == nil {
		e = &external{}
		b.exts[name] = e
	}
	return e
}

// applyHostStatusLocked feeds the scheduler a host's state: the volunteer's
// last report merged with what outside monitors said. Caller holds mu.
func (b *Broker) applyHostStatusLocked(name string, now time.Time) {
	e := b.ext(name)
	var l scheduler.Load
	if e.last != nil {
		l = loadOf(e.last)
	} else {
		l.Available = true
	}
	if e.load != nil && (e.last == nil || e.last.ExternalLoad) {
		l.Load1, l.Load5, l.Load15 = e.load.Load1, e.load.Load5, e.load.Load15
	}
	if e.unavailable != "" {
		l.Available = false
		l.Reason = e.unavailable
	}
	b.sched.UpdateLoad(name, l, now)
}
