package broker

import (
	"crypto/ed25519"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// volunteerSilence is how long a volunteer may send nothing before the
// broker declares it gone (it reports every second).
const volunteerSilence = 5 * time.Second

func (b *Broker) serveVolunteer(sess *yamux.Session, hello *wire.Hello) {
	name := hello.Name
	timer := time.AfterFunc(wire.ControlTimeout, func() { sess.Close() })
	st, err := sess.AcceptStream()
	timer.Stop()
	if err != nil {
		return
	}
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	reg, err := wire.Expect[*wire.Register](c)
	if err != nil {
		b.log.Warn("volunteer register", zap.String("host", name), zap.Error(err))
		return
	}
	vc := &volunteerConn{name: name, session: sess, cmds: make(chan *wire.Command, 64)}
	now := time.Now()
	comps := make(map[string]string, len(reg.Compilers))
	var names []string
	for _, ci := range reg.Compilers {
		target, _, _ := strings.Cut(ci.Fingerprint, " ")
		comps[ci.Fingerprint] = target
		names = append(names, ci.Name+" ("+ci.Fingerprint+")")
	}
	b.mu.Lock()
	if old := b.vols[name]; old != nil {
		old.session.Close() // a reconnecting volunteer replaces its stale session
		for _, l := range b.sched.Disconnect(name, now) {
			b.reclaimed(l, "revoked", "host reconnected", now)
		}
	}
	b.vols[name] = vc
	b.sched.Connect(name, scheduler.Registration{Addr: reg.Addr, CPUs: reg.CPUs, Slots: reg.Slots, Compilers: comps}, now)
	b.ext(name).last = &reg.Status
	b.applyHostStatusLocked(name, now)
	adopted := 0
	pub := b.sign.Public().(ed25519.PublicKey)
	for _, tok := range reg.Running {
		cl, signed, sig, err := wire.ParseToken(tok)
		if err != nil || cl.Host != name || !ed25519.Verify(pub, signed, sig) {
			continue
		}
		l := lease.Lease{ID: lease.ID(cl.Lease), User: cl.User, Host: name, Granted: now, Expires: time.UnixMilli(cl.ExpiresMs)}
		if b.sched.Adopt(l, now) {
			adopted++
			b.lease.Info("adopt", zap.Uint64("lease", cl.Lease), zap.String("user", cl.User), zap.String("host", name))
		}
	}
	b.dispatchLocked(now)
	b.mu.Unlock()
	b.log.Info("volunteer joined", zap.String("host", name), zap.String("addr", reg.Addr), zap.Int("slots", reg.Slots),
		zap.Int("cpus", reg.CPUs), zap.Strings("compilers", names), zap.Int("adopted_leases", adopted))

	done := make(chan struct{})
	go func() {
		for {
			select {
			case cmd := <-vc.cmds:
				if err := c.Send(cmd); err != nil {
					sess.Close()
					return
				}
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		now := time.Now()
		b.mu.Lock()
		if b.vols[name] == vc {
			delete(b.vols, name)
			for _, l := range b.sched.Disconnect(name, now) {
				b.reclaimed(l, "host_gone", "volunteer disconnected", now)
			}
			b.dispatchLocked(now)
		}
		b.mu.Unlock()
		b.log.Info("volunteer left", zap.String("host", name))
	}()
	for {
		m, err := c.RecvTimeout(volunteerSilence)
		if err != nil {
			b.log.Info("volunteer stream ended", zap.String("host", name), zap.Error(err))
			return
		}
		now := time.Now()
		switch m := m.(type) {
		case *wire.HostStatus:
			b.mu.Lock()
			b.ext(name).last = m
			b.applyHostStatusLocked(name, now)
			b.dispatchLocked(now)
			b.mu.Unlock()
		case *wire.JobDone:
			b.mu.Lock()
			if l, ok := b.sched.Release(lease.ID(m.LeaseID), now); ok {
				if l.Holder == 0 { // adopted after a restart: no client will report it
					b.reportOutcomeLocked(l.Host, m.Outcome, now)
				}
				b.lease.Info("release", zap.Uint64("lease", uint64(l.ID)), zap.String("user", l.User), zap.String("host", l.Host),
					zap.String("by", "volunteer"), zap.String("outcome", m.Outcome))
				b.m.released.WithLabelValues(m.Outcome).Inc()
				b.dispatchLocked(now)
			}
			b.mu.Unlock()
		default:
			b.log.Warn("volunteer sent unexpected message", zap.String("host", name), zap.String("type", typeName(m)))
			return
		}
	}
}

func loadOf(s *wire.HostStatus) scheduler.Load {
	return scheduler.Load{Load1: s.Load1, Load5: s.Load5, Load15: s.Load15, Available: s.Available, Reason: s.Reason,
		Own1: s.Own1, OwnKnown: s.OwnKnown}
}

// cancelOnHost asks a volunteer to stop the job of a reclaimed lease.
// Caller holds mu.
func (b *Broker) cancelOnHost(l lease.Lease, reason string) {
	if vc := b.vols[l.Host]; vc != nil {
		select {
		case vc.cmds <- &wire.Command{Kind: wire.CommandCancel, LeaseID: uint64(l.ID), Reason: reason}:
		default:
		}
	}
}
