package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

type waiter struct {
	ch  chan waitResult
	req *wire.LeaseRequest
}

func (b *Broker) serveClient(sess *yamux.Session, hello *wire.Hello, sessID uint64) {
	defer func() {
		now := time.Now()
		b.mu.Lock()
		for _, l := range b.sched.ReleaseHolder(sessID, now) {
			b.reclaimed(l, "client_gone", "client session closed", now)
		}
		b.dispatchLocked(now)
		b.mu.Unlock()
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		b.sessions.Add(1)
		go func() {
			defer b.sessions.Done()
			defer st.Close()
			b.serveStream(st, hello, sessID)
		}()
	}
}

func (b *Broker) serveStream(st *yamux.Stream, hello *wire.Hello, sessID uint64) {
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	m, err := c.Recv()
	if err != nil {
		// A hostile or broken first frame gets an error before the close.
		if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrUnknownType) {
			c.Send(&wire.Error{Code: wire.CodeBadRequest, Message: err.Error()})
		}
		return
	}
	switch m := m.(type) {
	case *wire.LeaseRequest:
		if hello.Role != wire.RoleClient {
			c.Send(&wire.Error{Code: wire.CodeDenied, Message: "only clients lease"})
			return
		}
		b.serveLeases(c, hello, sessID, m)
	case *wire.StatusQuery:
		doc := b.Status(m.Explain)
		js, _ := json.Marshal(doc)
		c.Send(&wire.StatusReply{JSON: js})
	case *wire.AdminRequest:
		ok, msg := b.Admin(m.Action, m.Host, m.Reason, hello.User)
		c.Send(&wire.AdminReply{OK: ok, Message: msg})
	case *wire.ClientReport:
		for _, host := range m.Mismatches {
			b.log.Error("verification mismatch: blocking host", zap.String("host", host), zap.String("reported_by", hello.User+"@"+hello.Name))
			b.Admin(wire.AdminBlock, host, "object differed from a local compile (DCC_VERIFY)", hello.User)
		}
		for reason, n := range m.Fallbacks {
			if n > 0 && n < 1<<20 {
				b.m.fallbacks.WithLabelValues(fallbackLabel(reason)).Add(float64(n))
			}
		}
		c.Send(&wire.AdminReply{OK: true})
	default:
		c.Send(&wire.Error{Code: wire.CodeBadRequest, Message: "unexpected " + typeName(m)})
	}
}

// leaseStreamIdle is how long a lease stream may sit between leases
// before the broker closes it (agents keep idle streams for less).
const leaseStreamIdle = 2 * time.Minute

// streamReader reads every message of a lease stream in one goroutine, so
// that the stream can carry one lease after another and a closed stream
// is noticed while a request waits or a lease is held.
type streamReader struct {
	in   chan wire.Message
	gone chan error
	stop chan struct{}
}

func readStream(c *wire.Conn) *streamReader {
	r := &streamReader{in: make(chan wire.Message, 4), gone: make(chan error, 1), stop: make(chan struct{})}
	go func() {
		for {
			m, err := c.RecvTimeout(0)
			if err != nil {
				r.gone <- err
				return
			}
			select {
			case r.in <- m:
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

// serveLeases serves lease after lease on one stream, starting with req.
func (b *Broker) serveLeases(c *wire.Conn, hello *wire.Hello, sessID uint64, req *wire.LeaseRequest) {
	r := readStream(c)
	defer close(r.stop)
	idle := time.NewTimer(leaseStreamIdle)
	defer idle.Stop()
	for {
		if !b.handleLease(c, r, hello, sessID, req) {
			return
		}
		idle.Reset(leaseStreamIdle)
	wait:
		select {
		case m := <-r.in:
			switch m := m.(type) {
			case *wire.LeaseRequest:
				req = m
			case *wire.LeaseRenew:
				goto wait // a renewal that crossed the release
			default:
				c.Send(&wire.Error{Code: wire.CodeBadRequest, Message: "expected a lease request, got " + typeName(m)})
				return
			}
		case <-r.gone:
			return
		case <-idle.C:
			return
		}
	}
}

// handleLease serves one lease request: queue, grant, hold, release. It
// reports whether the exchange ended cleanly, so the stream may carry the
// next request.
func (b *Broker) handleLease(c *wire.Conn, r *streamReader, hello *wire.Hello, sessID uint64, req *wire.LeaseRequest) bool {
	now := time.Now()
	user := hello.User
	id := b.nextReq.Add(1)
	maxWait := b.cfg.MaxWait
	if req.MaxWaitMs > 0 && time.Duration(req.MaxWaitMs)*time.Millisecond < maxWait {
		maxWait = time.Duration(req.MaxWaitMs) * time.Millisecond
	}
	w := waiter{ch: make(chan waitResult, 1), req: req}

	b.mu.Lock()
	if offered, usable := b.sched.Offered(req.Fingerprint, req.Avoid); usable == 0 {
		b.mu.Unlock()
		b.m.denied.WithLabelValues("no_compiler").Inc()
		other := ""
		if req.Avoid != "" {
			other = " other than " + req.Avoid
		}
		reason := fmt.Sprintf("no usable host%s offers %q", other, req.Fingerprint)
		if offered > 0 {
			reason = fmt.Sprintf("no usable host%s offers %q: the %d that do are overloaded, draining or blocked now", other, req.Fingerprint, offered)
		}
		return c.Send(&wire.LeaseDenied{Code: wire.DenyNoCompiler, Reason: reason}) == nil
	}
	b.waiters[id] = w
	b.sched.Enqueue(scheduler.Request{ID: id, User: user, Fingerprint: req.Fingerprint, Holder: sessID, File: req.File,
		Deadline: now.Add(maxWait), Avoid: req.Avoid}, now)
	b.dispatchLocked(now)
	var first waitResult
	got := false
	select {
	case first = <-w.ch:
		got = true
	default:
	}
	var queued *wire.LeaseQueued
	if !got {
		pos, est := b.sched.EstimateWait(id, now)
		if req.LocalSlotFree && est > time.Duration(req.LocalEstimateMs)*time.Millisecond {
			b.sched.Cancel(id)
			delete(b.waiters, id)
			b.mu.Unlock()
			b.m.denied.WithLabelValues("local_faster").Inc()
			return c.Send(&wire.LeaseDenied{Code: wire.DenyLocalFaster, Reason: fmt.Sprintf("farm busy: estimated wait %s is longer than a local compile (%s)",
				est.Round(time.Millisecond), (time.Duration(req.LocalEstimateMs) * time.Millisecond).Round(time.Millisecond))}) == nil
		}
		queued = &wire.LeaseQueued{Position: pos, EstWaitMs: est.Milliseconds()}
	}
	b.mu.Unlock()

	// From here the stream's closing means the client left.
	if queued != nil {
		if err := c.Send(queued); err != nil {
			b.abandon(id, w)
			return false
		}
		select {
		case first = <-w.ch:
		case <-r.gone:
			b.abandon(id, w)
			return false
		}
	}
	if first.denied != "" {
		return c.Send(&wire.LeaseDenied{Code: wire.DenyTimeout, Reason: first.denied}) == nil
	}
	g := first.grant
	lid := g.Lease.ID
	err := c.Send(&wire.LeaseGrant{
		LeaseID: uint64(lid), Host: g.Lease.Host, Addr: first.addr, Tier: g.Lease.Tier, Power: g.Lease.Power,
		TTLMs: b.cfg.LeaseTTL.Milliseconds(), WaitMs: g.Wait.Milliseconds(), Token: b.token(g, req),
	})
	if err != nil {
		b.releaseLease(lid, "client_gone", "send grant: "+err.Error())
		return false
	}
	for {
		select {
		case m := <-r.in:
			switch m := m.(type) {
			case *wire.LeaseRenew:
				if lease.ID(m.LeaseID) == lid {
					b.mu.Lock()
					b.sched.Renew(lid, time.Now())
					b.mu.Unlock()
				}
			case *wire.LeaseRelease:
				b.reportOutcome(g.Lease.Host, m.Outcome)
				b.releaseLease(lid, m.Outcome, m.Reason)
				return true
			default:
				b.releaseLease(lid, "client_gone", "unexpected "+typeName(m))
				return false
			}
		case <-r.gone:
			b.releaseLease(lid, "client_gone", "lease stream closed")
			return false
		}
	}
}

// reportOutcome feeds a finished lease's outcome to host health.
func (b *Broker) reportOutcome(host, outcome string) {
	b.mu.Lock()
	b.reportOutcomeLocked(host, outcome, time.Now())
	b.mu.Unlock()
}

// reportOutcomeLocked is reportOutcome with mu held. A cancelled job (its
// client left) says nothing about the host.
func (b *Broker) reportOutcomeLocked(host, outcome string, now time.Time) {
	switch outcome {
	case wire.OutcomeOK, wire.OutcomeCompileError:
		b.sched.ReportOutcome(host, false, now)
	case wire.OutcomeFailed, wire.OutcomeRejected:
		b.sched.ReportOutcome(host, true, now)
	}
}

// abandon removes a waiting request whose client left. If the request was
// granted in the meantime, the grant is released.
func (b *Broker) abandon(id uint64, w waiter) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.waiters, id)
	if b.sched.Cancel(id) {
		b.m.cancelled.Inc()
		return
	}
	select {
	case r := <-w.ch:
		if r.grant != nil {
			if l, ok := b.sched.Release(r.grant.Lease.ID, now); ok {
				b.reclaimed(l, "client_gone", "client left before the grant arrived", now)
				b.dispatchLocked(now)
			}
		}
	default:
	}
}

func (b *Broker) releaseLease(id lease.ID, outcome, reason string) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.sched.Release(id, now)
	if !ok {
		return
	}
	if outcome == "client_gone" {
		b.reclaimed(l, "client_gone", reason, now)
		b.cancelOnHost(l, "client gone")
	} else {
		b.lease.Info("release", zap.Uint64("lease", uint64(l.ID)), zap.String("user", l.User), zap.String("host", l.Host),
			zap.String("outcome", outcome), zap.String("reason", reason), zap.Duration("held", now.Sub(l.Granted)))
		b.m.released.WithLabelValues(outcome).Inc()
	}
	b.dispatchLocked(now)
}

// dispatchLocked places waiting requests and wakes their waiters. Caller holds mu.
func (b *Broker) dispatchLocked(now time.Time) {
	for _, g := range b.sched.Dispatch(now) {
		w, ok := b.waiters[g.Request]
		g := g
		if !ok {
			// The waiter left between enqueue and dispatch: give the slot back.
			if l, ok := b.sched.Release(g.Lease.ID, now); ok {
				b.reclaimed(l, "client_gone", "request abandoned", now)
			}
			continue
		}
		delete(b.waiters, g.Request)
		b.lease.Info("grant", zap.Uint64("lease", uint64(g.Lease.ID)), zap.String("user", g.Lease.User),
			zap.String("host", g.Lease.Host), zap.Int("tier", g.Lease.Tier), zap.Duration("waited", g.Wait), zap.String("file", g.Lease.File))
		b.m.granted.WithLabelValues(fmt.Sprint(g.Lease.Tier)).Inc()
		b.m.wait.Observe(g.Wait.Seconds())
		addr := ""
		if h, ok := b.sched.Host(g.Lease.Host); ok {
			addr = h.Addr
		}
		w.ch <- waitResult{grant: &g, addr: addr}
	}
}

func (b *Broker) token(g *scheduler.Grant, req *wire.LeaseRequest) []byte {
	return lease.Sign(b.sign, wire.TokenClaims{
		Lease: uint64(g.Lease.ID), ExpiresMs: g.Lease.Expires.UnixMilli(), User: g.Lease.User, Host: g.Lease.Host,
		Fingerprint: req.Fingerprint, Digest: req.Digest,
	})
}

func typeName(m wire.Message) string { return fmt.Sprintf("%T", m) }
