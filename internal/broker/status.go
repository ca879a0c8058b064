package broker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/pkg/tiering"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Status builds the status document. explain names a host to explain.
func (b *Broker) Status(explain string) *status.Doc {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sched
	doc := &status.Doc{Time: now, Broker: b.Addr(), Leases: s.Leases().Len(), Queue: s.Queue().Len(), Uptime: now.Sub(b.start).Seconds()}
	for _, name := range s.HostNames() {
		h, _ := s.Host(name)
		if !h.InFarm && !h.Connected {
			continue
		}
		v, _ := s.Verdict(name)
		comps := make([]string, 0, len(h.Compilers))
		for fp := range h.Compilers {
			comps = append(comps, fp)
		}
		sort.Strings(comps)
		doc.Hosts = append(doc.Hosts, status.Host{
			Name: name, Addr: h.Addr, CPUs: h.CPUs, Power: h.Power, Slots: h.Slots, Busy: h.Busy,
			Tier: v.Tier, Reason: v.Reason, State: string(h.State), Load1: h.Load1, Load5: h.Load5, Load15: h.Load15,
			JobsDone: h.JobsDone, Failures: h.Failures, Compilers: comps, Note: h.Note, ClockSkewMs: b.ext(name).skew.Milliseconds(),
			Protocol: "dcc", Auth: "mtls", Users: h.Users, Sandbox: b.ext(name).sandbox,
		})
		if h.Distcc {
			hs := &doc.Hosts[len(doc.Hosts)-1]
			hs.Protocol, hs.Auth = "distcc", "unauthenticated"
			if d := b.distcc[name]; d != nil {
				hs.Addr = d.addr
				if d.err != "" {
					hs.Note = strings.TrimPrefix(hs.Note+"; "+d.err, "; ")
				} else if d.probeFail != "" && !h.Connected {
					hs.Note = strings.TrimPrefix(hs.Note+"; distccd does not answer: "+d.probeFail, "; ")
				}
				if len(comps) == 0 && d.fingerprint != "" {
					hs.Compilers = []string{d.fingerprint}
				}
			}
		}
		if v.Tier > 0 {
			doc.Slots += h.Slots
		}
		doc.Busy += h.Busy
		if explain != "" && explain == name {
			doc.Explain = explainHost(h.Host, v, s.Config().Tiering, h.Note, b.ext(name).skew)
			if sb := b.ext(name).sandbox; sb != "" {
				doc.Explain.Detail += "; sandbox: " + sb
			}
		}
	}
	sort.SliceStable(doc.Hosts, func(i, j int) bool { return doc.Hosts[i].Tier > doc.Hosts[j].Tier })
	users := map[string]bool{}
	for _, u := range s.RunningUsers() {
		users[u] = true
	}
	for _, u := range s.Queue().Users() {
		users[u] = true
	}
	led := s.Ledger()
	for _, u := range led.Users() {
		if led.Usage(u, now) >= 0.5 {
			users[u] = true
		}
	}
	var totalPower float64
	for u := range users {
		_, p := s.UserRunning(u)
		totalPower += p
	}
	for u := range users {
		n, p := s.UserRunning(u)
		share := 0.0
		if totalPower > 0 {
			share = p / totalPower
		}
		doc.Users = append(doc.Users, status.User{Name: u, Running: n, Waiting: s.Queue().Waiting(u), Usage: led.Usage(u, now), Weight: led.Weight(u), Share: share})
	}
	sort.Slice(doc.Users, func(i, j int) bool { return doc.Users[i].Name < doc.Users[j].Name })
	for i := len(b.reclaims) - 1; i >= 0; i-- {
		doc.Reclaims = append(doc.Reclaims, b.reclaims[i])
	}
	if b.cache != nil {
		doc.Cache = b.cache.status()
	}
	if explain != "" && doc.Explain == nil {
		doc.Explain = &status.Explain{Host: explain, Detail: "no such host"}
	}
	return doc
}

func explainHost(h tiering.Host, v tiering.Verdict, c tiering.Config, note string, skew time.Duration) *status.Explain {
	var d strings.Builder
	fmt.Fprintf(&d, "state %s", h.State)
	if note != "" {
		fmt.Fprintf(&d, " (%s)", note)
	}
	fmt.Fprintf(&d, "; power %g gives base tier %d", h.Power, tiering.BaseTier(h.Power))
	fmt.Fprintf(&d, "; load1 %.2f with %d of our jobs on %d cpus: foreign load %.2f per cpu (drop a tier above %.2f, unused above %.2f)",
		h.Load1, h.Busy, h.CPUs, h.ForeignLoad(), c.Overload, c.Saturated)
	fmt.Fprintf(&d, "; %d of %d slots busy", h.Busy, h.Slots)
	switch {
	case skew > time.Second:
		fmt.Fprintf(&d, "; its clock runs %s ahead of the broker's (lease tokens allow the volunteer's --clock-skew)", skew.Round(time.Millisecond))
	case skew < -time.Second:
		fmt.Fprintf(&d, "; its clock runs %s behind the broker's", (-skew).Round(time.Millisecond))
	default:
		fmt.Fprintf(&d, "; clock within 1s of the broker's")
	}
	return &status.Explain{Host: h.Name, Tier: v.Tier, State: string(h.State), Reason: v.Reason, Detail: d.String()}
}

// Admin applies an admin action to a host.
func (b *Broker) Admin(action, host, reason, by string) (bool, string) {
	if action == wire.AdminCacheClear {
		return b.clearCache(by)
	}
	t, f := true, false
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var ok bool
	switch action {
	case wire.AdminDrain:
		ok = b.sched.SetAdmin(host, &t, nil, reason, now)
	case wire.AdminUndrain:
		ok = b.sched.SetAdmin(host, &f, nil, "", now)
	case wire.AdminBlock:
		ok = b.sched.SetAdmin(host, nil, &t, reason, now)
	case wire.AdminUnblock:
		ok = b.sched.SetAdmin(host, nil, &f, "", now)
	default:
		return false, "unknown action " + action
	}
	if !ok {
		return false, "no such host " + host
	}
	b.log.Info("admin action", zap.String("action", action), zap.String("host", host), zap.String("reason", reason), zap.String("by", by))
	b.dispatchLocked(now)
	return true, action + " " + host
}
