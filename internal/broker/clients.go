package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/internal/timeline"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// maxLocalEstimate bounds a client's claimed local compile time.
//
// What one client may hold is bounded too, so that a runaway or hostile
// agent cannot grow the broker without bound: Config.MaxStreams streams
// per session (each a goroutine and, for a lease, a queue entry) and
// Config.MaxQueued waiting requests per user. Past them the client is
// told to compile locally (LeaseDenied with DenyBusy), which costs it
// nothing.
const maxLocalEstimate = 24 * time.Hour

// waiter is a queued request's mailbox. It holds at most one result: a
// queue notice for the client, replaced by the grant or the denial that
// ends the wait. Results are delivered with mu held.
type waiter struct {
	ch  chan waitResult
	req *wire.LeaseRequest
}

// deliver replaces a pending queue notice (if the client has not taken
// it yet) with res. Caller holds mu.
func (w waiter) deliver(res waitResult) {
	select {
	case <-w.ch:
	default:
	}
	w.ch <- res
}

func (b *Broker) serveClient(sess *yamux.Session, cl client, sessID uint64) {
	defer func() {
		now := time.Now()
		b.mu.Lock()
		for _, l := range b.sched.ReleaseHolder(sessID, now) {
			b.reclaimed(l, "client_gone", "client session closed", now)
		}
		b.dispatchLocked(now)
		b.mu.Unlock()
	}()
	var streams atomic.Int64
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		b.sessions.Add(1)
		over := streams.Add(1) > int64(b.cfg.MaxStreams)
		go func() {
			defer b.sessions.Done()
			defer streams.Add(-1)
			defer st.Close()
			if over {
				b.refuseStream(st)
				return
			}
			b.serveStream(st, cl, sessID)
		}()
	}
}

// refuseStream answers a stream past the session's stream limit without
// reading more than its first frame.
func (b *Broker) refuseStream(st *yamux.Stream) {
	b.m.denied.WithLabelValues("busy").Inc()
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	c.Send(&wire.LeaseDenied{Code: wire.DenyBusy, Reason: fmt.Sprintf("more than %d streams open on this session", b.cfg.MaxStreams)})
}

func (b *Broker) serveStream(st *yamux.Stream, cl client, sessID uint64) {
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
		ls := &leaseStream{b: b, c: c, user: cl.user, holder: sessID}
		ls.serve(m)
	case *wire.CacheLookup:
		a := &wire.CacheAnswer{}
		if b.cache != nil {
			a = b.cache.lookup(cl.user, m)
		}
		c.WriteTimeout = time.Minute // an answer carries an object
		c.Send(a)
	case *wire.StatusQuery:
		doc := b.Status(m.Explain)
		js, _ := json.Marshal(doc)
		c.Send(&wire.StatusReply{JSON: js})
	case *wire.AdminRequest:
		if !cl.admin {
			e := b.refuse("not_admin", cl.peer, "%s needs an admin credential; yours is %s %s", m.Action, cl.peer.Role, cl.peer.Name)
			c.Send(&wire.AdminReply{OK: false, Message: e.Message})
			return
		}
		ok, msg := b.Admin(m.Action, m.Host, m.Reason, cl.String())
		c.Send(&wire.AdminReply{OK: ok, Message: msg})
	case *wire.ClientReport:
		now := time.Now()
		b.mu.Lock()
		for _, host := range m.Mismatches {
			if _, known := b.sched.Host(host); known {
				b.mismatchEvidence(cl, host, now)
			}
		}
		b.mu.Unlock()
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

// leaseStream is one client stream carrying lease after lease. Each lease
// goes through the steps of docs/architecture.md, one method each:
//
//	request → (denied | queued → granted) → held (renewals) → released
//
// Any step that finds the stream gone ends it; the broker then frees
// whatever the stream held.
type leaseStream struct {
	b      *Broker
	c      *wire.Conn
	r      *streamReader
	user   string
	holder uint64 // the client session: its end releases every lease it holds
}

// serve runs leases on the stream, starting with first, until the client
// closes it, misbehaves or leaves it idle.
func (ls *leaseStream) serve(first *wire.LeaseRequest) {
	ls.r = readStream(ls.c)
	defer close(ls.r.stop)
	for req := first; req != nil; req = ls.nextRequest() {
		if !ls.lease(req) {
			return
		}
	}
}

// nextRequest waits for the stream's next lease request. A renewal that
// crossed the previous release is ignored; anything else ends the stream.
func (ls *leaseStream) nextRequest() *wire.LeaseRequest {
	idle := time.NewTimer(leaseStreamIdle)
	defer idle.Stop()
	for {
		select {
		case m := <-ls.r.in:
			switch m := m.(type) {
			case *wire.LeaseRequest:
				return m
			case *wire.LeaseRenew:
				continue
			default:
				ls.c.Send(&wire.Error{Code: wire.CodeBadRequest, Message: "expected a lease request, got " + typeName(m)})
				return nil
			}
		case <-ls.r.gone:
			return nil
		case <-idle.C:
			return nil
		}
	}
}

// lease serves one request to its end. It reports whether the exchange
// ended cleanly, so that the stream may carry the next request.
func (ls *leaseStream) lease(req *wire.LeaseRequest) bool {
	id, w, answer := ls.request(req)
	if answer != nil {
		return ls.c.Send(answer) == nil
	}
	res, ok := ls.await(id, w)
	if !ok {
		return false
	}
	if res.denied != "" {
		return ls.c.Send(&wire.LeaseDenied{Code: wire.DenyTimeout, Reason: res.denied}) == nil
	}
	return ls.hold(res, req)
}

// request queues req and places it if a slot is free. It returns the
// request's id and waiter, or the answer to send at once instead: a
// denial (no host offers the compiler, the user has too much waiting, or
// the client's free local slot is faster than the queue).
func (ls *leaseStream) request(req *wire.LeaseRequest) (uint64, waiter, wire.Message) {
	b := ls.b
	now := time.Now()
	id := b.nextReq.Add(1)
	w := waiter{ch: make(chan waitResult, 1), req: req}
	localEst := clampDuration(req.LocalEstimateMs, maxLocalEstimate)

	sreq := scheduler.Request{ID: id, User: ls.user, Fingerprint: req.Fingerprint, Holder: ls.holder, File: req.File,
		Deadline: now.Add(b.maxWait(req)), Avoid: req.Avoid, NeedsDCC: req.NeedsDCC}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.unservable(sreq); d != nil {
		return 0, w, d
	}
	if b.sched.Queue().Waiting(ls.user) >= b.cfg.MaxQueued {
		b.m.denied.WithLabelValues("busy").Inc()
		return 0, w, &wire.LeaseDenied{Code: wire.DenyBusy, Reason: fmt.Sprintf("%d requests of %s already wait", b.cfg.MaxQueued, ls.user)}
	}
	b.waiters[id] = w
	b.sched.Enqueue(sreq, now)
	b.dispatchLocked(now)
	if len(w.ch) > 0 {
		return id, w, nil // granted at once
	}
	pos, _ := b.sched.EstimateWait(id, now)
	q := b.sched.LocalQuery(id, now)
	q.SlotFree, q.Gain = req.LocalSlotFree, localEst
	if scheduler.CompileLocally(q) {
		b.sched.Cancel(id)
		delete(b.waiters, id)
		b.m.denied.WithLabelValues("local_faster").Inc()
		why := fmt.Sprintf("estimated wait %s is longer than a local compile (%s)", q.Wait.Round(time.Millisecond), localEst.Round(time.Millisecond))
		if q.Wait <= q.Gain {
			why = fmt.Sprintf("%d more of your jobs wait and you hold your share of the farm: a free local slot adds to it", q.OthersWaiting)
		}
		return 0, w, &wire.LeaseDenied{Code: wire.DenyLocalFaster, Reason: "farm busy: " + why}
	}
	w.deliver(waitResult{queued: &wire.LeaseQueued{Position: pos, EstWaitMs: q.Wait.Milliseconds(), Backlogged: q.Backlogged}})
	return id, w, nil
}

// unservable returns the denial for a request no usable host can take,
// or nil. Caller holds mu.
func (b *Broker) unservable(req scheduler.Request) *wire.LeaseDenied {
	offered, usable := b.sched.OfferedTo(req)
	if usable > 0 {
		return nil
	}
	b.m.denied.WithLabelValues("no_compiler").Inc()
	other := ""
	if req.Avoid != "" {
		other = " other than " + req.Avoid
	}
	reason := fmt.Sprintf("no usable host%s offers %q", other, req.Fingerprint)
	if offered > 0 {
		reason = fmt.Sprintf("no usable host%s offers %q: the %d that do are overloaded, draining or blocked now", other, req.Fingerprint, offered)
	}
	return &wire.LeaseDenied{Code: wire.DenyNoCompiler, Reason: reason}
}

// maxWait is how long req may wait: the client's limit, at most the broker's.
func (b *Broker) maxWait(req *wire.LeaseRequest) time.Duration {
	return clampDuration(req.MaxWaitMs, b.cfg.MaxWait)
}

// clampDuration turns a client's millisecond figure into a duration in
// (0, limit]: zero, negative and huge values (which would overflow when
// multiplied into a time.Duration) all mean limit.
func clampDuration(ms int64, limit time.Duration) time.Duration {
	if ms <= 0 || ms > limit.Milliseconds() {
		return limit
	}
	return time.Duration(ms) * time.Millisecond
}

// await waits for the request's grant or denial, telling the client its
// place in the queue first if it was not granted at once. From here the
// stream's closing means the client left. ok is false when it did.
func (ls *leaseStream) await(id uint64, w waiter) (waitResult, bool) {
	for {
		select {
		case res := <-w.ch:
			if res.queued == nil {
				return res, true
			}
			if err := ls.c.Send(res.queued); err != nil {
				ls.b.abandon(id, w)
				return waitResult{}, false
			}
		case <-ls.r.gone:
			ls.b.abandon(id, w)
			return waitResult{}, false
		}
	}
}

// hold sends the grant and serves renewals until the client releases the
// lease or leaves.
func (ls *leaseStream) hold(res waitResult, req *wire.LeaseRequest) bool {
	b := ls.b
	g := res.grant
	lid := g.Lease.ID
	err := ls.c.Send(&wire.LeaseGrant{
		LeaseID: uint64(lid), Host: g.Lease.Host, Addr: res.addr, Tier: g.Lease.Tier, Power: g.Lease.Power,
		TTLMs: b.cfg.LeaseTTL.Milliseconds(), WaitMs: g.Wait.Milliseconds(), Token: b.token(g, req), Speed: g.Speed,
		Protocol: res.protocol, Verify: res.verify,
	})
	if err != nil {
		b.releaseLease(lid, "client_gone", "send grant: "+err.Error())
		return false
	}
	for {
		select {
		case m := <-ls.r.in:
			switch m := m.(type) {
			case *wire.LeaseRenew:
				if lease.ID(m.LeaseID) == lid {
					b.renew(lid)
				}
			case *wire.LeaseRelease:
				if m.Outcome == wire.OutcomeDeclined || m.Outcome == wire.OutcomeCached {
					b.declineLease(lid, m.Outcome, m.Reason)
					return true
				}
				b.reportOutcome(g.Lease.Host, m.Outcome)
				b.releaseLease(lid, outcomeLabel(m.Outcome), m.Reason)
				return true
			default:
				b.releaseLease(lid, "client_gone", "unexpected "+typeName(m))
				return false
			}
		case <-ls.r.gone:
			b.releaseLease(lid, "client_gone", "lease stream closed")
			return false
		}
	}
}

func (b *Broker) renew(id lease.ID) {
	b.mu.Lock()
	b.sched.Renew(id, time.Now())
	b.mu.Unlock()
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
	for {
		select {
		case r := <-w.ch:
			if r.grant == nil {
				continue // a queue notice, or the denial of a timed-out request
			}
			if l, ok := b.sched.Release(r.grant.Lease.ID, now); ok {
				b.reclaimed(l, "client_gone", "client left before the grant arrived", now)
				b.dispatchLocked(now)
			}
		default:
		}
		return
	}
}

// releaseLease ends a lease its holder released (outcome is one of
// releaseOutcomes) or left behind ("client_gone").
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
		b.released(l, "client", outcome, reason, now)
	}
	b.dispatchLocked(now)
}

// declineLease ends a lease its client gave back unused (its own free
// slot is as fast, or the result came from the cache): no charge, no host outcome, no lease-time sample.
func (b *Broker) declineLease(id lease.ID, outcome, reason string) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.sched.Decline(id, now); ok {
		b.released(l, "client", outcome, reason, now)
		b.dispatchLocked(now)
	}
}

// released logs and counts a lease its holder or its host released.
// Caller holds mu.
func (b *Broker) released(l lease.Lease, by, outcome, reason string, now time.Time) {
	b.ring.Finish(uint64(l.ID), now)
	b.lease.Info("release", zap.Uint64("lease", uint64(l.ID)), zap.String("user", l.User), zap.String("host", l.Host),
		zap.String("by", by), zap.String("outcome", outcome), zap.String("reason", reason), zap.Duration("held", now.Sub(l.Granted)))
	b.m.released.WithLabelValues(outcome).Inc()
}

// outcomeLabel maps a job outcome reported by a client or a volunteer to
// one of releaseOutcomes, so that the metric's label set stays bounded.
func outcomeLabel(o string) string {
	for _, known := range releaseOutcomes {
		if o == known {
			return o
		}
	}
	return "other"
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
		b.ring.Add(timeline.FarmEvent{Host: g.Lease.Host, Slot: -1, User: g.Lease.User, LeaseID: uint64(g.Lease.ID), Start: now})
		b.lease.Info("grant", zap.Uint64("lease", uint64(g.Lease.ID)), zap.String("user", g.Lease.User),
			zap.String("host", g.Lease.Host), zap.Int("tier", g.Lease.Tier), zap.Duration("waited", g.Wait), zap.String("file", g.Lease.File))
		b.m.granted.WithLabelValues(fmt.Sprint(g.Lease.Tier)).Inc()
		b.m.wait.Observe(g.Wait.Seconds())
		res := waitResult{grant: &g}
		if h, ok := b.sched.Host(g.Lease.Host); ok {
			res.addr = h.Addr
			if h.Distcc {
				res.protocol = "distcc"
				res.verify = b.verifyDistcc(h.Name)
			}
		}
		w.deliver(res)
	}
}

func (b *Broker) token(g *scheduler.Grant, req *wire.LeaseRequest) []byte {
	return lease.Sign(b.sign, wire.TokenClaims{
		Lease: uint64(g.Lease.ID), ExpiresMs: g.Lease.Expires.UnixMilli(), User: g.Lease.User, Host: g.Lease.Host,
		Fingerprint: req.Fingerprint, Digest: req.Digest,
	})
}

func typeName(m wire.Message) string { return fmt.Sprintf("%T", m) }
