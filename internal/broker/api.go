package broker

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// The API that changes state (load and availability from outside
// monitors, admin actions) is served only over HTTPS with a client
// certificate of the farm (`broker --https`): an admin's credential, or
// for a host's own load and availability that host's credential. Over
// plain HTTP those paths answer 403 and say where to go; the read-only
// paths (/, /v1/status, /metrics) are served on both.
const apiMaxBody = 64 << 10

func (b *Broker) registerAPI(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/hosts/{name}/availability", b.authed(b.putAvailability, true))
	mux.HandleFunc("PUT /v1/hosts/{name}/load", b.authed(b.putLoad, true))
	mux.HandleFunc("POST /v1/hosts/{name}/admin", b.authed(b.postAdmin, false))
}

// registerPlainAPI answers the API's paths on plain HTTP with where to go.
func (b *Broker) registerPlainAPI(mux *http.ServeMux) {
	refuse := func(w http.ResponseWriter, r *http.Request) {
		where := "the broker's --https address"
		if a := b.HTTPSAddr(); a != "" {
			where = "https://" + a
		}
		http.Error(w, "this API changes the farm: use "+where+" with a client certificate (curl --cacert ca.pem --cert FILE)", http.StatusForbidden)
	}
	for _, p := range []string{"PUT /v1/hosts/{name}/availability", "PUT /v1/hosts/{name}/load", "POST /v1/hosts/{name}/admin"} {
		mux.HandleFunc(p, refuse)
	}
}

// authed runs h for a request whose client certificate allows it: an
// admin's, or (ownHost) the credential of the host the path names.
func (b *Broker) authed(h func(w http.ResponseWriter, r *http.Request, body []byte), ownHost bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "HTTPS with a client certificate required", http.StatusForbidden)
			return
		}
		p, err := identity.PeerOf(*r.TLS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		name := r.PathValue("name")
		switch {
		case b.revoked.Revoked(p.Serial):
			http.Error(w, b.refuse("revoked", p, "credential %s %s is revoked", p.Role, p.Name).Message, http.StatusForbidden)
			return
		case p.ActsAs(identity.RoleAdmin):
		case ownHost && p.Role == identity.RoleHost && p.Name == name:
		default:
			what := "an admin credential"
			if ownHost {
				what = "an admin credential or host " + name + "'s own"
			}
			http.Error(w, b.refuse("api_credential", p, "%s %s needs %s; this is %s %s", r.Method, r.URL.Path, what, p.Role, p.Name).Message, http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, apiMaxBody+1))
		if err != nil || len(body) > apiMaxBody {
			http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
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
	p, _ := identity.PeerOf(*r.TLS)
	ok, msg := b.Admin(req.Action, r.PathValue("name"), req.Reason, "https:"+p.Role+" "+p.Name+"@"+r.RemoteAddr)
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
	sandbox     string        // what confines its compiles, from its registration
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
