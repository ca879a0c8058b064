package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/internal/distcc"
	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// farmAttempts is how many hosts a job may try before it is compiled
// locally: a host that dies, drains or refuses a job costs one retry.
const farmAttempts = 2

// compile runs one job: lease, ship, collect, release; on a farm failure
// it tries another host once, then falls back to a local compile.
func (a *Agent) compile(ctx context.Context, req *wire.AgentCompile, src *pendingSource) *wire.AgentResult {
	jl := &jobLog{verbose: req.Verbose, start: time.Now()}
	if req.Version != wire.ProtocolVersion || req.Build != buildinfo.ID() {
		return fallback(jl, "agent", "agent is another build (%s), dcc is %s", buildinfo.ID(), req.Build)
	}
	id, err := a.idents.Get(ctx, req.Compiler)
	if err != nil {
		return fallback(jl, "no_compiler", "cannot identify %s: %v", req.Compiler, err)
	}
	var res *wire.AgentResult
	var tl phaseLog
	look := a.startLookup(ctx, req, src, id)
	avoid := ""
	for try := 1; try <= farmAttempts; try++ {
		at := &attempt{a: a, ctx: ctx, jl: jl, req: req, src: src, fp: id.Fingerprint, first: try == 1, avoid: avoid, tl: &tl, look: look}
		res = at.run()
		if at.failedOn == "" || ctx.Err() != nil {
			break
		}
		avoid = at.failedOn
		jl.add("attempt %d failed (%s); asking for a host other than %s", try, res.Fallback, avoid)
	}
	res.Phases, res.EstWaitMs = tl.phases, tl.estWait.Milliseconds()
	return res
}

// phaseLog collects a job's phases on the agent's side, over its
// attempts, for the build record dcc keeps (internal/timeline).
type phaseLog struct {
	phases  []wire.PhaseRecord
	estWait time.Duration
}

func (t *phaseLog) add(name, host string, start, end time.Time) {
	if end.Before(start) {
		end = start
	}
	t.phases = append(t.phases, wire.PhaseRecord{Name: name, StartNs: start.UnixNano(), EndNs: end.UnixNano(), Host: host})
}

// job adds the phases of a job sent to host: sending, the compile (the
// host's own figure, placed after the send), and the result's return.
func (t *phaseLog) job(host string, jt jobTimes, wall time.Duration) {
	if jt.sendStart.IsZero() || jt.resultAt.IsZero() {
		return
	}
	t.add("send", host, jt.sendStart, jt.sendEnd)
	compiled := jt.sendEnd.Add(wall)
	if compiled.After(jt.resultAt) || wall <= 0 {
		compiled = jt.resultAt
	}
	t.add("remote_compile", host, jt.sendEnd, compiled)
	t.add("return", host, compiled, jt.resultAt)
}

// jobTimes are when a job was sent and its result came back.
type jobTimes struct {
	sendStart, sendEnd, resultAt time.Time
}

// attempt is one try of a job on the farm. Its steps follow a lease's
// life (docs/architecture.md), one method each:
//
//	openStream → reserve → request → awaitGrant → granted → runJob → release
//
// Every step that ends the attempt returns the result for the dcc process;
// failedOn names the host when the failure was the farm's (not the user's
// code, not dcc leaving) and another host may succeed.
type attempt struct {
	a     *Agent
	ctx   context.Context
	jl    *jobLog
	req   *wire.AgentCompile
	src   *pendingSource
	fp    string
	first bool
	avoid string

	bs     *yamux.Session
	st     *yamux.Stream
	lc     *wire.Conn
	sendMu sync.Mutex // the renewer and the release both write lc
	reused bool       // st came from the pool (and may have gone stale)
	clean  bool       // the exchange ended cleanly: st may carry the next lease
	stop   func() bool

	size     int64
	reserved bool // holds one of the machine's local slots
	localEst time.Duration
	leaseReq *wire.LeaseRequest
	qj       *queuedJob // registered while queued: a freed local slot may take the job home
	grant    *wire.LeaseGrant
	renewer  *renewer
	failedOn string
	tl       *phaseLog
	askedAt  time.Time
	// look is the job's cache lookup (nil without one): a hit ends the
	// attempt at whichever step it arrives, and the lease goes back unused.
	look      *cacheLookup
	withdrawn atomic.Bool // the attempt closed its own stream (a cache hit): no retry on a fresh one
}

func (at *attempt) run() *wire.AgentResult {
	if hit := at.look.hit(); hit != nil {
		return at.fromCache(hit)
	}
	if r := at.openStream(); r != nil {
		return r
	}
	defer at.closeStream()
	at.reserve()
	defer at.unreserve()
	if r := at.request(); r != nil {
		return r
	}
	if r := at.awaitGrant(); r != nil {
		return r
	}
	if r := at.granted(); r != nil {
		return r
	}
	defer at.renewer.stop()
	return at.runJob()
}

// openStream takes a lease stream on the broker session: an idle one
// from the pool, or a new one.
func (at *attempt) openStream() *wire.AgentResult {
	bs, err := at.a.brokerSession(at.ctx)
	if err != nil {
		return fallback(at.jl, "no_broker", "broker unreachable: %v", err)
	}
	st, reused, err := at.a.leaseStream(bs)
	if err != nil {
		at.a.dropBroker(bs)
		return fallback(at.jl, "no_broker", "broker stream: %v", err)
	}
	at.bs, at.reused = bs, reused
	at.useStream(st)
	return nil
}

func (at *attempt) useStream(st *yamux.Stream) {
	at.st = st
	at.lc = wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	at.stop = context.AfterFunc(at.ctx, func() { st.Close() })
}

// closeStream pools a stream whose exchange ended cleanly; any other
// ending closes it, which releases whatever it held at the broker.
func (at *attempt) closeStream() {
	if at.stop() && at.clean {
		at.a.putLeaseStream(at.bs, at.st)
	} else {
		at.st.Close()
	}
}

// reserve offers the broker the choice to send this job home: on a first
// attempt with a local slot free, the broker answers "compile locally"
// when its queue would take longer than compiling here, and the slot
// stays reserved for that.
func (at *attempt) reserve() {
	at.size = at.a.sizes.guess(at.req.File, at.req.SizeHint)
	if at.src.known() {
		at.size = int64(len(at.src.src))
	}
	if at.first {
		at.reserved, at.localEst = at.a.local.tryReserve(at.size)
	}
}

func (at *attempt) unreserve() {
	if at.reserved {
		at.reserved = false
		at.a.local.unreserve(time.Now())
	}
}

// request sends the lease request. Its digest binds the token to the
// source when the source is known already; otherwise the volunteer checks
// the source against the job header's digest.
func (at *attempt) request() *wire.AgentResult {
	at.leaseReq = &wire.LeaseRequest{Fingerprint: at.fp, Lang: at.req.Lang, SourceBytes: at.size,
		MaxWaitMs: at.req.MaxWaitMs, File: at.req.File, LocalSlotFree: at.reserved,
		LocalEstimateMs: at.localEst.Milliseconds(), Avoid: at.avoid,
		// A stock distccd compiles preprocessed text only: not a source
		// whose includes were inlined, nor assembler.
		NeedsDCC: isRewritten(at.req) || at.req.Ext == ".s"}
	if at.src.known() {
		at.leaseReq.Digest = at.src.digest
	}
	at.jl.add("lease requested for %s (%s, %d bytes)", at.req.File, at.fp, at.size)
	at.askedAt = time.Now()
	if err := at.lc.Send(at.leaseReq); err != nil && !at.reused {
		return fallback(at.jl, "transport", "send lease request: %v", err)
	}
	return nil // a pooled stream that failed is replaced in recv
}

// recv reads the broker's next answer. A pooled stream may have gone
// stale (the broker closes idle ones): if it fails before its first
// answer, the request is sent again on a fresh stream, once.
func (at *attempt) recv(answered bool) (wire.Message, error) {
	wait := time.Duration(at.req.MaxWaitMs)*time.Millisecond + 10*time.Second
	m, err := at.lc.RecvTimeout(wait)
	if err == nil || !at.reused || answered || at.ctx.Err() != nil || at.withdrawn.Load() {
		return m, err
	}
	at.st.Close()
	at.stop()
	at.reused = false
	st, err := at.bs.OpenStream()
	if err != nil {
		at.a.dropBroker(at.bs)
		return nil, err
	}
	at.useStream(st)
	if err := at.lc.Send(at.leaseReq); err != nil {
		return nil, err
	}
	return at.lc.RecvTimeout(wait)
}

// awaitGrant waits for the grant. While queued, the job is registered
// with the local slots: one that frees may take it home (it closes the
// stream, so the broker drops the request or takes back the grant).
// Every answer takes the job out of that set before it is acted on, so a
// grant, once seen, can no longer be stolen.
func (at *attempt) awaitGrant() *wire.AgentResult {
	for answered := false; ; answered = true {
		m, err := at.recvOrHit(answered)
		stolen := at.qj != nil && at.a.local.leave(at.qj)
		if hit := at.look.hit(); hit != nil && at.withdrawn.Load() {
			// The stream was closed for the hit: the broker drops the
			// request, or takes back a grant that crossed the close.
			r := at.fromCache(hit)
			r.LocalSlot = stolen // a slot handed over meanwhile is freed when dcc closes
			return r
		}
		if stolen {
			r := fallback(at.jl, "local_faster", "a local slot freed while queued (estimated wait %s)", at.qj.estWait.Round(time.Millisecond))
			r.LocalSlot = true
			return at.cachedInstead(r)
		}
		if err != nil {
			if at.ctx.Err() != nil {
				return fallback(at.jl, "cancelled", "dcc went away")
			}
			return fallback(at.jl, "transport", "waiting for lease: %v", err)
		}
		if d, ok := m.(*wire.LeaseDenied); !ok || d.Code != wire.DenyLocalFaster {
			at.unreserve() // the broker's first answer came: the slot is not needed
		}
		switch m := m.(type) {
		case *wire.LeaseQueued:
			at.jl.add("queued at position %d, estimated wait %dms", m.Position, m.EstWaitMs)
			if at.qj == nil {
				st := at.st
				at.qj = &queuedJob{size: at.size, withdraw: func() { st.Close() }}
			}
			at.a.local.waiting(at.qj, time.Duration(m.EstWaitMs)*time.Millisecond, m.Backlogged, time.Now())
			at.tl.estWait = time.Duration(m.EstWaitMs) * time.Millisecond
		case *wire.LeaseDenied:
			at.clean = true
			if at.reserved && m.Code == wire.DenyLocalFaster {
				at.reserved = false // handed to the dcc process; freed when its socket closes
				r := fallback(at.jl, "local_faster", "%s", m.Reason)
				r.LocalSlot = true
				return at.cachedInstead(r)
			}
			kind := "denied"
			if m.Code == wire.DenyBusy {
				kind = "busy"
			}
			return at.cachedInstead(fallback(at.jl, kind, "%s", m.Reason))
		case *wire.LeaseGrant:
			at.grant = m
			at.tl.add("lease_wait", "", at.askedAt, time.Now())
			return nil
		case *wire.Error:
			return fallback(at.jl, "denied", "%s", m.Message)
		default:
			return fallback(at.jl, "transport", "unexpected %T", m)
		}
	}
}

// recvOrHit is recv, cut short by a cache hit: the attempt then closes
// its stream, which withdraws the request at the broker.
func (at *attempt) recvOrHit(answered bool) (wire.Message, error) {
	if at.look == nil || (at.reused && !answered) {
		// A pooled stream's first answer may need a fresh stream (recv
		// replaces it): that answer comes at once, so wait for it.
		return at.recv(answered)
	}
	type answer struct {
		m   wire.Message
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		m, err := at.recv(answered)
		ch <- answer{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-at.look.answered():
		if at.look.hit() == nil {
			r := <-ch // a miss: wait for the broker as before
			return r.m, r.err
		}
	}
	at.withdrawn.Store(true)
	at.st.Close()
	r := <-ch
	return r.m, r.err
}

// granted starts renewing the lease, unless the job does as well on a
// free local slot (scheduler.DeclineGrant): the grant then goes back
// unused, and the farm slot to someone whose own machine is busy.
func (at *attempt) granted() *wire.AgentResult {
	g := at.grant
	at.jl.add("lease %d granted: host %s (%s) tier %d after %dms", g.LeaseID, g.Host, g.Addr, g.Tier, g.WaitMs)
	speed := g.Speed
	if speed == 0 {
		speed = g.Power
	}
	if ok, _ := at.a.local.tryReserve(at.size); ok {
		if scheduler.DeclineGrant(speed, at.a.local.power, true) {
			at.release(wire.OutcomeDeclined, "a local slot is as fast")
			r := fallback(at.jl, "local_faster", "declined %s (speed %.2g): a local slot is as fast (power %.2g)", g.Host, speed, at.a.local.power)
			r.LocalSlot = true
			return at.cachedInstead(r)
		}
		at.a.local.unreserve(time.Now())
	}
	at.renewer = startRenewer(at.send, g.LeaseID, time.Duration(g.TTLMs)*time.Millisecond)
	return nil
}

func (at *attempt) send(m wire.Message) error {
	at.sendMu.Lock()
	defer at.sendMu.Unlock()
	return at.lc.Send(m)
}

// release ends the lease with the job's outcome.
func (at *attempt) release(outcome, reason string) {
	if at.renewer != nil {
		at.renewer.stop()
	}
	at.clean = at.send(&wire.LeaseRelease{LeaseID: at.grant.LeaseID, Outcome: outcome, Reason: reason}) == nil
}

// runJob ships the job to the granted host and turns its answer into the
// result. A host that takes early jobs gets the header at once, while the
// preprocessor may still run, and starts its compiler meanwhile
// (startEarly); otherwise the job goes out whole once the source is ready.
func (at *attempt) runJob() *wire.AgentResult {
	g := at.grant
	early, err := at.startEarly()
	if err != nil {
		return at.hostFailed(err)
	}
	src, err := at.src.wait(at.ctx)
	if err != nil {
		early.withdraw()
		at.release(wire.OutcomeCancelled, "dcc went away")
		return fallback(at.jl, "cancelled", "dcc went away")
	}
	if r := at.beforeSend(early); r != nil {
		return r
	}
	start := time.Now()
	var res *wire.JobResult
	var jt jobTimes
	switch {
	case g.Protocol == "distcc":
		res, jt, err = sendDistcc(at.ctx, g, at.req, src)
	case early != nil:
		res, jt, err = early.finish(&wire.JobSource{Source: src, Digest: at.src.digest})
	default:
		var js *jobStream
		if js, _, err = at.a.openJob(at.ctx, g, jobHeader(g, at.req, at.fp, src, at.src.digest)); err == nil {
			res, jt, err = js.finish(&wire.JobSource{Source: src})
		}
	}
	if res != nil {
		at.tl.job(g.Host, jt, time.Duration(res.WallMs)*time.Millisecond)
	}
	if err != nil {
		if at.ctx.Err() != nil {
			at.release(wire.OutcomeCancelled, "dcc went away")
			return fallback(at.jl, "cancelled", "dcc went away")
		}
		if errors.Is(err, distcc.ErrBadJob) {
			// Not a job a stock distccd takes: compile it here, without
			// blaming the host.
			at.release(wire.OutcomeCancelled, err.Error())
			return fallback(at.jl, "rejected", "%s (distccd) cannot take this job: %v", g.Host, err)
		}
		return at.hostFailed(err)
	}
	if res.Code != wire.RejectNone {
		return at.rejected(res)
	}
	outcome := wire.OutcomeOK
	if res.ExitCode != 0 {
		outcome = wire.OutcomeCompileError
	}
	if !isRewritten(at.req) && (res.ExitCode != 0 || len(res.Stderr) > 0) {
		at.a.diags.remember(diagKey(at.fp, at.req, at.src.digest)) // dcc compiles it here to print gcc's exact diagnostics
	}
	at.release(outcome, "")
	at.jl.add("job done on %s: exit %d, %d bytes, compile %dms", g.Host, res.ExitCode, len(res.Output), res.WallMs)
	if res.ExitCode == 0 {
		at.a.local.observeRemote(time.Duration(res.WallMs)*time.Millisecond, time.Since(start), g.Power, int64(len(src)))
	}
	return &wire.AgentResult{Host: g.Host, Protocol: g.Protocol, Verify: g.Verify, Tier: g.Tier, WaitMs: g.WaitMs, Log: at.jl.lines, Result: *res}
}

// startEarly sends the job's header to the granted host before the
// source exists, when that gains anything: the preprocessor still runs,
// the host is a dcc volunteer that takes early jobs, and the job
// compiles from a pipe exactly as from a file (compilerargs.FromPipe).
// It returns nil when the job goes out whole later instead.
func (at *attempt) startEarly() (*jobStream, error) {
	g := at.grant
	if at.src.known() || g.Protocol == "distcc" || !compilerargs.FromPipe(at.req.Ext, at.fp) {
		return nil, nil
	}
	js, ok, err := at.a.openJob(at.ctx, g, jobHeader(g, at.req, at.fp, nil, nil))
	if err != nil || !ok {
		return nil, err
	}
	at.jl.add("job header sent early to %s: its compiler starts while the preprocessor runs", g.Host)
	return js, nil
}

// beforeSend ends the attempt before the source goes out when the job
// is not the farm's after all: the cache has it, or the farm's last
// compile of it printed diagnostics, which only a compile here prints
// exactly. An early job is withdrawn (the host cancels its compiler).
func (at *attempt) beforeSend(early *jobStream) *wire.AgentResult {
	waitStart := time.Now()
	if hit := at.look.await(at.ctx, cacheWait); hit != nil {
		early.withdraw()
		at.release(wire.OutcomeCached, "the result cache had the job")
		return at.fromCache(hit)
	}
	if at.look != nil {
		at.jl.add("cache miss: lookup %s, the job waited %s for it", at.look.took(), time.Since(waitStart).Round(time.Microsecond))
	}
	if !isRewritten(at.req) && at.a.diags.seen(diagKey(at.fp, at.req, at.src.digest)) {
		early.withdraw()
		at.release(wire.OutcomeDeclined, "compiles here for its diagnostics")
		return fallback(at.jl, "diagnostics", "the farm's last compile of this source printed diagnostics: compiling here prints them exactly")
	}
	return nil
}

// hostFailed ends the attempt on a farm failure of the granted host:
// the lease goes back as failed, and the job may try another host.
func (at *attempt) hostFailed(err error) *wire.AgentResult {
	at.release(wire.OutcomeFailed, err.Error())
	at.failedOn = at.grant.Host
	return fallback(at.jl, "host_failed", "%s: %v", at.grant.Host, err)
}

// sendDistcc runs a job on a stock distccd over distcc's protocol 1
// (internal/distcc): no token (distccd knows none), no encryption. A
// malformed or hostile reply is an error, never an object.
func sendDistcc(ctx context.Context, g *wire.LeaseGrant, req *wire.AgentCompile, src []byte) (*wire.JobResult, jobTimes, error) {
	jt := jobTimes{sendStart: time.Now()}
	r, err := distcc.Compile(ctx, g.Addr, distcc.Job{Compiler: req.Driver, Args: req.Args, Kind: req.Kind, Ext: req.Ext, Source: src}, distcc.Limits{})
	if err != nil {
		return nil, jt, err
	}
	// distcc's protocol does not say when the source is in: the host's
	// compile time, counted back from the reply, is the best guess.
	jt.resultAt = time.Now()
	jt.sendEnd = jt.sendStart
	if d := jt.resultAt.Sub(jt.sendStart) - r.Wall; d > 0 {
		jt.sendEnd = jt.sendStart.Add(d / 2)
	}
	res := &wire.JobResult{ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr, WallMs: r.Wall.Milliseconds()}
	if r.ExitCode == 0 {
		sum := sha256.Sum256(r.Object)
		res.Output, res.Digest = r.Object, sum[:]
	}
	return res, jt, nil
}

// rejected handles a job the host refused or could not finish, by its
// code: an output too large to return compiles here without blaming the
// host; anything else is tried on another host, and counts against this
// one only if wire.HostFault says so.
func (at *attempt) rejected(res *wire.JobResult) *wire.AgentResult {
	g := at.grant
	if res.Code == wire.RejectTooLarge {
		at.release(wire.OutcomeCancelled, res.Rejected)
		return fallback(at.jl, "too_large", "%s", res.Rejected)
	}
	outcome := wire.OutcomeCancelled
	if wire.HostFault(res.Code) {
		outcome = wire.OutcomeRejected
	}
	at.release(outcome, res.Rejected)
	at.failedOn = g.Host
	return fallback(at.jl, "rejected", "%s refused the job: %s", g.Host, res.Rejected)
}

// renewer renews a lease every TTL/3 until stopped.
type renewer struct {
	done, stopped chan struct{}
	once          sync.Once
}

func startRenewer(send func(wire.Message) error, id uint64, ttl time.Duration) *renewer {
	r := &renewer{done: make(chan struct{}), stopped: make(chan struct{})}
	every := max(ttl/3, 100*time.Millisecond)
	go func() {
		defer close(r.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				// A failed renewal (the broker restarted) does not stop the
				// job: the volunteer's reports keep an adopted lease alive.
				if send(&wire.LeaseRenew{LeaseID: id}) != nil {
					return
				}
			}
		}
	}()
	return r
}

// stop stops renewing and waits until no renewal is being sent.
func (r *renewer) stop() {
	r.once.Do(func() {
		close(r.done)
		<-r.stopped
	})
}

// jobStream is a job on its stream to the granted volunteer: the header
// goes out when the stream opens, the source (and the answer) after.
type jobStream struct {
	st      *yamux.Stream
	c       *wire.Conn
	stop    func() bool
	pending wire.Message // the header, when it goes out with the source
}

// openJob opens a job stream to the granted host and sends the header.
// early asks for an early job (wire.JobRequest.Early): the source is not
// ready, and the host starts the compiler while it waits for it; openJob
// then reports, in ok, whether the host takes early jobs at all (if not,
// nothing was sent and the caller sends the job later, whole).
func (a *Agent) openJob(ctx context.Context, g *wire.LeaseGrant, header *wire.JobRequest) (js *jobStream, ok bool, err error) {
	vs, err := a.volunteerSession(ctx, g.Host, g.Addr)
	if err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	if header.Early && !vs.early {
		return nil, false, nil
	}
	st, err := vs.OpenStream()
	if err != nil {
		a.dropVolunteer(g.Host, g.Addr, vs.Session)
		return nil, false, fmt.Errorf("open stream: %w", err)
	}
	js = &jobStream{st: st, c: wire.NewConn(st, wire.MaxJobFrame, 60*time.Second), stop: context.AfterFunc(ctx, func() { st.Close() })}
	if !header.Early {
		js.pending = header // it goes out with the source (finish)
		return js, true, nil
	}
	if err := js.c.Send(header); err != nil {
		js.close()
		return nil, false, fmt.Errorf("send job: %w", err)
	}
	return js, true, nil
}

// withdraw ends an early job before its source (the preprocessor
// failed, the cache had the job, dcc went away). The stream's end tells
// the host to kill the waiting compiler, and its answer (RejectCancelled)
// comes once it has freed the slot: waiting for it, briefly, before the
// lease goes back means the broker's next grant of that slot does not
// find it still busy.
func (js *jobStream) withdraw() {
	if js == nil {
		return
	}
	js.st.Close() // half-close: the host reads the end, and can still answer
	js.c.RecvTimeout(withdrawWait)
	js.close()
}

// withdrawWait bounds how long a withdrawn early job waits for the host.
const withdrawWait = 2 * time.Second

// close ends the stream; for a job not yet finished, the host cancels it.
func (js *jobStream) close() {
	if js != nil {
		js.stop()
		js.st.Close()
	}
}

// finish sends the rest of the job (the header, unless it went out
// early, and the source) and checks what comes back. The volunteer may
// refuse from the header alone without reading the source, so the
// answer is read while the source is still being written.
func (js *jobStream) finish(source *wire.JobSource) (*wire.JobResult, jobTimes, error) {
	defer js.close()
	c := js.c
	msgs := []wire.Message{source}
	if js.pending != nil {
		msgs = []wire.Message{js.pending, source}
	}
	jt := jobTimes{sendStart: time.Now()}
	sent := make(chan error, 1)
	var sentAt time.Time
	go func() {
		var err error
		for _, m := range msgs {
			if err = c.Send(m); err != nil {
				break
			}
		}
		sentAt = time.Now()
		sent <- err
	}()
	// The volunteer's job time limit bounds the compile; allow for transfer.
	m, err := c.RecvTimeout(15 * time.Minute)
	jt.resultAt = time.Now()
	if err != nil {
		js.st.Close() // unblocks a writer stuck on flow control
		if serr := <-sent; serr != nil {
			return nil, jt, fmt.Errorf("send job: %w", serr)
		}
		return nil, jt, fmt.Errorf("await result: %w", err)
	}
	res, ok := m.(*wire.JobResult)
	if !ok {
		js.st.Close()
		<-sent
		return nil, jt, fmt.Errorf("unexpected %T", m)
	}
	if res.Code != wire.RejectNone {
		js.st.Close() // the source may be unsent: stop writing it
		<-sent
		jt.sendEnd = sentAt
		return res, jt, nil
	}
	if err := <-sent; err != nil {
		return nil, jt, fmt.Errorf("send job: %w", err)
	}
	jt.sendEnd = sentAt
	if res.ExitCode == 0 {
		sum := sha256.Sum256(res.Output)
		if len(res.Output) == 0 || string(sum[:]) != string(res.Digest) {
			return nil, jt, errors.New("output failed its checksum")
		}
	}
	return res, jt, nil
}

// jobHeader is the JobRequest for a job; without src it is an early
// header (the source not ready yet).
func jobHeader(g *wire.LeaseGrant, req *wire.AgentCompile, fp string, src, digest []byte) *wire.JobRequest {
	h := &wire.JobRequest{Token: g.Token, Compiler: req.Driver, Fingerprint: fp, Ext: req.Ext, Lang: req.Lang, Kind: req.Kind,
		Args: req.Args, SourceName: req.SourceName}
	if src == nil {
		h.Early = true
	} else {
		h.SourceBytes, h.Digest = int64(len(src)), digest
	}
	return h
}

// isRewritten reports whether a job ships a source with its includes
// inlined (clang -frewrite-includes), whose diagnostics on the farm are
// exact, rather than preprocessed text.
func isRewritten(req *wire.AgentCompile) bool {
	_, ok := compilerargs.SourceExt(req.Ext)
	return ok
}

// diagMemory remembers the jobs whose farm compile printed diagnostics
// (gcc's, from preprocessed text, are not exactly local gcc's): dcc then
// compiles them locally to print the exact ones, and the next build of
// the same job goes there at once instead of compiling twice. A job is
// its compiler, arguments and preprocessed source: an edit that changes
// the source gives the farm the file again.
type diagMemory struct {
	mu sync.Mutex
	m  map[[32]byte]struct{}
}

func diagKey(fp string, req *wire.AgentCompile, digest []byte) [32]byte {
	h := sha256.New()
	for _, s := range append([]string{fp, req.Driver, req.Kind, string(digest)}, req.Args...) {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (d *diagMemory) remember(k [32]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil || len(d.m) >= maxRemembered {
		d.m = make(map[[32]byte]struct{})
	}
	d.m[k] = struct{}{}
}

func (d *diagMemory) seen(k [32]byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[k]
	return ok
}
