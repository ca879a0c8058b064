package broker

import (
	"crypto/ed25519"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// volunteerSilence is how long a volunteer may send nothing before the
// broker declares it gone (it reports every second).
const volunteerSilence = 5 * time.Second

// serveVolunteer runs one volunteer's session: its registration, then its
// reports until it leaves, while commands flow the other way.
func (b *Broker) serveVolunteer(sess *yamux.Session, peer identity.Peer) {
	// The host's name is its credential's (admit checked the hello).
	c, reg, ok := b.acceptRegistration(sess, peer.Name)
	if !ok {
		return
	}
	vc := &volunteerConn{name: peer.Name, session: sess, cmds: make(chan *wire.Command, 64)}
	b.join(vc, reg)
	done := make(chan struct{})
	go b.sendCommands(vc, c, done)
	go b.serveCachePuts(sess, peer.Name)
	defer func() {
		close(done)
		b.leave(vc)
	}()
	b.readReports(vc, c)
}

// acceptRegistration waits for the volunteer's control stream and its
// Register message.
func (b *Broker) acceptRegistration(sess *yamux.Session, name string) (*wire.Conn, *wire.Register, bool) {
	timer := time.AfterFunc(wire.ControlTimeout, func() { sess.Close() })
	st, err := sess.AcceptStream()
	timer.Stop()
	if err != nil {
		return nil, nil, false
	}
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	reg, err := wire.Expect[*wire.Register](c)
	if err != nil {
		b.log.Warn("volunteer register", zap.String("host", name), zap.Error(err))
		return nil, nil, false
	}
	return c, reg, true
}

// join makes a registered volunteer's host usable: it replaces a stale
// session of the same host, records its compilers and status, and adopts
// the leases of jobs it still runs (after a broker restart).
func (b *Broker) join(vc *volunteerConn, reg *wire.Register) {
	name := vc.name
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
	b.ext(name).sandbox = reg.Sandbox
	b.applyHostStatusLocked(name, now)
	adopted := b.adoptLocked(name, reg.Running, now)
	b.dispatchLocked(now)
	b.mu.Unlock()
	b.log.Info("volunteer joined", zap.String("host", name), zap.String("addr", reg.Addr), zap.Int("slots", reg.Slots),
		zap.Int("cpus", reg.CPUs), zap.Strings("compilers", names), zap.Int("adopted_leases", adopted))
}

// adoptLocked takes over the leases of jobs a volunteer reports running,
// from their tokens (signed with the key this broker keeps across
// restarts, and issued for this host). Adopted leases have no holder;
// the volunteer's reports keep them alive until its JobDone releases
// them. Caller holds mu.
func (b *Broker) adoptLocked(name string, tokens [][]byte, now time.Time) int {
	adopted := 0
	pub := b.sign.Public().(ed25519.PublicKey)
	for _, tok := range tokens {
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
	return adopted
}

// sendCommands forwards commands (cancel, drain, resume) to the volunteer.
func (b *Broker) sendCommands(vc *volunteerConn, c *wire.Conn, done <-chan struct{}) {
	for {
		select {
		case cmd := <-vc.cmds:
			if err := c.Send(cmd); err != nil {
				vc.session.Close()
				return
			}
		case <-done:
			return
		}
	}
}

// readReports handles the volunteer's messages until it goes silent or
// its stream ends.
func (b *Broker) readReports(vc *volunteerConn, c *wire.Conn) {
	for {
		m, err := c.RecvTimeout(volunteerSilence)
		if err != nil {
			b.log.Info("volunteer stream ended", zap.String("host", vc.name), zap.Error(err))
			return
		}
		switch m := m.(type) {
		case *wire.HostStatus:
			b.hostStatus(vc.name, m)
		case *wire.JobDone:
			b.jobDone(vc.name, m)
		default:
			b.log.Warn("volunteer sent unexpected message", zap.String("host", vc.name), zap.String("type", typeName(m)))
			return
		}
	}
}

// hostStatus applies a volunteer's periodic report: load, availability,
// and the leases its running jobs keep alive.
func (b *Broker) hostStatus(name string, m *wire.HostStatus) {
	now := time.Now()
	ids := make([]lease.ID, 0, len(m.Leases))
	for _, id := range m.Leases {
		ids = append(ids, lease.ID(id))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.ext(name)
	e.last = m
	if m.ClockMs != 0 {
		e.skew = time.UnixMilli(m.ClockMs).Sub(now)
	}
	b.sched.KeepAlive(name, ids, now)
	b.applyHostStatusLocked(name, now)
	b.dispatchLocked(now)
}

// jobDone releases the lease of a job that ended on the reporting host.
// The holder usually releases first; this covers leases without one
// (adopted after a restart). A host may only end leases on itself.
func (b *Broker) jobDone(name string, m *wire.JobDone) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.sched.Leases().Get(lease.ID(m.LeaseID))
	if !ok {
		return // released already
	}
	if l.Host != name {
		b.m.refused.WithLabelValues("foreign_lease").Inc()
		b.log.Warn("volunteer reported the end of another host's lease: ignored", zap.String("host", name),
			zap.Uint64("lease", m.LeaseID), zap.String("lease_host", l.Host))
		return
	}
	rel, ok := b.sched.Release(lease.ID(m.LeaseID), now)
	if !ok {
		return
	}
	outcome := outcomeLabel(m.Outcome)
	if rel.Holder == 0 { // adopted after a restart: no client will report it
		b.reportOutcomeLocked(rel.Host, outcome, now)
	}
	b.released(rel, "volunteer", outcome, "", now)
	b.dispatchLocked(now)
}

// leave takes a volunteer's host out when its session ends, unless a
// newer session of the same host replaced it.
func (b *Broker) leave(vc *volunteerConn) {
	now := time.Now()
	b.mu.Lock()
	if b.vols[vc.name] == vc {
		delete(b.vols, vc.name)
		for _, l := range b.sched.Disconnect(vc.name, now) {
			b.reclaimed(l, "host_gone", "volunteer disconnected", now)
		}
		b.dispatchLocked(now)
	}
	b.mu.Unlock()
	b.log.Info("volunteer left", zap.String("host", vc.name))
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
