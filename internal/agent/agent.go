package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Agent serves dcc processes on a unix socket.
type Agent struct {
	opt    Options
	sock   string
	key    []byte
	log    *zap.Logger
	ln     net.Listener
	lockf  *os.File
	idents compiler.Cache

	brokerMu   sync.Mutex
	broker     *yamux.Session
	brokerFail time.Time
	brokerErr  error

	volMu sync.Mutex
	vols  map[string]*yamux.Session

	poolMu sync.Mutex
	pool   []pooledStream // idle lease streams, most recent last

	local localSlots

	active   atomic.Int64
	lastUsed atomic.Int64
	fbMu     sync.Mutex
	fallback map[string]int64
	closing  chan struct{}
	wg       sync.WaitGroup
}

// ErrRunning is returned by New when another agent holds the socket.
var ErrRunning = errors.New("another agent is running")

// New takes the socket's lock and listens on it.
func New(o Options, sock string, log *zap.Logger) (*Agent, error) {
	key, err := wire.LoadKey(o.KeyFile)
	if err != nil {
		return nil, err
	}
	if err := ensureDir(o.RuntimeDir); err != nil {
		return nil, err
	}
	lockf, err := os.OpenFile(sock+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lockf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lockf.Close()
		return nil, ErrRunning
	}
	os.Remove(sock) // stale socket of a dead agent: we hold the lock
	ln, err := net.Listen("unix", sock)
	if err != nil {
		lockf.Close()
		return nil, err
	}
	os.Chmod(sock, 0o600)
	a := &Agent{opt: o, sock: sock, key: key, log: log, ln: ln, lockf: lockf,
		vols: make(map[string]*yamux.Session), fallback: make(map[string]int64), closing: make(chan struct{})}
	a.local.configure(o.LocalSlots, o.LocalPower)
	a.lastUsed.Store(time.Now().UnixNano())
	return a, nil
}

// Run serves until the agent has been idle for its idle period or Close.
func (a *Agent) Run() {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.accept() }()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastReport := time.Now()
	for {
		select {
		case <-a.closing:
			a.shutdown()
			return
		case now := <-t.C:
			idle := now.Sub(time.Unix(0, a.lastUsed.Load()))
			if a.active.Load() == 0 && idle > a.opt.Idle {
				a.log.Info("agent idle, exiting", zap.Duration("idle", idle))
				a.shutdown()
				return
			}
			if now.Sub(lastReport) > 10*time.Second {
				lastReport = now
				a.report()
			}
		}
	}
}

// Close stops the agent.
func (a *Agent) Close() {
	select {
	case <-a.closing:
	default:
		close(a.closing)
	}
}

func (a *Agent) shutdown() {
	a.ln.Close()
	os.Remove(a.sock)
	a.report()
	a.brokerMu.Lock()
	if a.broker != nil {
		a.broker.Close()
	}
	a.brokerMu.Unlock()
	a.volMu.Lock()
	for _, s := range a.vols {
		s.Close()
	}
	a.volMu.Unlock()
	a.lockf.Close()
}

func (a *Agent) accept() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		go a.serve(c)
	}
}

func (a *Agent) serve(conn net.Conn) {
	defer conn.Close()
	a.active.Add(1)
	defer func() {
		a.lastUsed.Store(time.Now().UnixNano())
		a.active.Add(-1)
	}()
	c := wire.NewConn(conn, wire.MaxJobFrame, 30*time.Second)
	m, err := c.Recv()
	if err != nil {
		return
	}
	switch m := m.(type) {
	case *wire.AgentPing:
		c.Send(&wire.AgentPong{Version: wire.ProtocolVersion, Build: buildinfo.ID(), PID: os.Getpid()})
	case *wire.AgentCompile:
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The dcc process closing the socket (it died, or finished a local
		// compile) cancels the job or frees its local slot.
		gone := make(chan struct{})
		go func() {
			var b [1]byte
			conn.SetReadDeadline(time.Time{})
			conn.Read(b[:])
			cancel()
			close(gone)
		}()
		res := a.compile(ctx, m)
		if res.Fallback != "" {
			a.countFallback(res.Fallback)
		}
		c.WriteTimeout = 30 * time.Second
		if res.LocalSlot {
			if c.Send(res) == nil {
				<-gone // the dcc process compiles locally, then closes
			}
			a.local.done()
		} else {
			c.Send(res)
		}
	}
}

type jobLog struct {
	verbose bool
	lines   []string
	start   time.Time
}

func (l *jobLog) add(format string, a ...any) {
	if l.verbose {
		l.lines = append(l.lines, fmt.Sprintf("agent +%s: ", time.Since(l.start).Round(time.Microsecond))+fmt.Sprintf(format, a...))
	}
}

func fallback(l *jobLog, kind, format string, a ...any) *wire.AgentResult {
	return &wire.AgentResult{Fallback: kind + ": " + fmt.Sprintf(format, a...), Log: l.lines}
}

// farmAttempts is how many hosts a job may try before it is compiled
// locally: a host that dies, drains or refuses a job costs one retry.
const farmAttempts = 2

// compile runs one job: lease, ship, collect, release; on a farm failure
// it tries another lease once, then falls back to a local compile.
func (a *Agent) compile(ctx context.Context, req *wire.AgentCompile) *wire.AgentResult {
	jl := &jobLog{verbose: req.Verbose, start: time.Now()}
	if req.Version != wire.ProtocolVersion || req.Build != buildinfo.ID() {
		return fallback(jl, "agent", "agent is another build (%s), dcc is %s", buildinfo.ID(), req.Build)
	}
	id, err := a.idents.Get(ctx, req.Compiler)
	if err != nil {
		return fallback(jl, "no_compiler", "cannot identify %s: %v", req.Compiler, err)
	}
	sum := sha256.Sum256(req.Source)
	var res *wire.AgentResult
	avoid := ""
	for try := 1; try <= farmAttempts; try++ {
		var failedOn string
		res, failedOn = a.attempt(ctx, jl, req, id.Fingerprint, sum[:], try == 1, avoid)
		if failedOn == "" || ctx.Err() != nil {
			break
		}
		avoid = failedOn
		jl.add("attempt %d failed (%s); asking for a host other than %s", try, res.Fallback, avoid)
	}
	return res
}

// attempt leases a slot (on a host other than avoid) and runs the job
// there once. failedOn names the host when the failure was the farm's
// (not the user's code, not dcc leaving) and another host may succeed.
func (a *Agent) attempt(ctx context.Context, jl *jobLog, req *wire.AgentCompile, fp string, digest []byte, first bool, avoid string) (_ *wire.AgentResult, failedOn string) {
	bs, err := a.brokerSession(ctx)
	if err != nil {
		return fallback(jl, "no_broker", "broker unreachable: %v", err), ""
	}
	st, reused, err := a.leaseStream(bs)
	if err != nil {
		a.dropBroker(bs)
		return fallback(jl, "no_broker", "broker stream: %v", err), ""
	}
	// A lease stream whose exchange ended cleanly carries the next lease;
	// any other ending closes it, which releases whatever it held.
	clean := false
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer func() {
		if stop() && clean {
			a.putLeaseStream(bs, st)
		} else {
			st.Close()
		}
	}()
	lc := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	maxWait := time.Duration(req.MaxWaitMs) * time.Millisecond
	// Offer the broker the choice to send this job home: if a local slot
	// is free and the queue would take longer than compiling here, the
	// broker answers "compile locally" and the slot stays reserved for it.
	reserved, localEst := false, time.Duration(0)
	if first {
		reserved, localEst = a.local.tryReserve(int64(len(req.Source)))
	}
	unreserve := func() {
		if reserved {
			reserved = false
			a.local.unreserve()
		}
	}
	defer unreserve()
	leaseReq := &wire.LeaseRequest{Fingerprint: fp, Lang: req.Lang, SourceBytes: int64(len(req.Source)),
		Digest: digest, MaxWaitMs: req.MaxWaitMs, File: req.File, LocalSlotFree: reserved, LocalEstimateMs: localEst.Milliseconds(),
		Avoid: avoid}
	err = lc.Send(leaseReq)
	jl.add("lease requested for %s (%s, %d bytes)", req.File, fp, len(req.Source))
	// While queued, a local slot that frees may take this job home.
	qj := &queuedJob{size: int64(len(req.Source)), withdraw: func() { st.Close() }}
	defer a.local.leave(qj)
	stolen := func() *wire.AgentResult {
		if !a.local.leave(qj) {
			return nil
		}
		r := fallback(jl, "local_faster", "a local slot freed while queued (estimated wait %s)", qj.estWait.Round(time.Millisecond))
		r.LocalSlot = true
		return r
	}
	var grant *wire.LeaseGrant
	for answered := false; grant == nil; answered = true {
		var m wire.Message
		if err == nil {
			m, err = lc.RecvTimeout(maxWait + 10*time.Second)
		}
		if err != nil && reused && !answered && ctx.Err() == nil {
			// The pooled stream had gone stale (the broker closes idle
			// ones): ask again on a fresh stream, once.
			st.Close()
			if st, err = bs.OpenStream(); err == nil {
				reused = false
				lc = wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
				stop()
				stop = context.AfterFunc(ctx, func() { st.Close() })
				if err = lc.Send(leaseReq); err == nil {
					m, err = lc.RecvTimeout(maxWait + 10*time.Second)
				}
			}
		}
		if r := stolen(); r != nil {
			return r, ""
		}
		if err != nil {
			if ctx.Err() != nil {
				return fallback(jl, "cancelled", "dcc went away"), ""
			}
			return fallback(jl, "transport", "waiting for lease: %v", err), ""
		}
		if d, ok := m.(*wire.LeaseDenied); !ok || d.Code != wire.DenyLocalFaster {
			unreserve() // the broker's first answer came: the slot is not needed
		}
		switch m := m.(type) {
		case *wire.LeaseQueued:
			jl.add("queued at position %d, estimated wait %dms", m.Position, m.EstWaitMs)
			a.local.waiting(qj, time.Duration(m.EstWaitMs)*time.Millisecond)
		case *wire.LeaseDenied:
			clean = true
			if reserved && m.Code == wire.DenyLocalFaster {
				reserved = false // handed to the dcc process; freed when its socket closes
				r := fallback(jl, "local_faster", "%s", m.Reason)
				r.LocalSlot = true
				return r, ""
			}
			return fallback(jl, "denied", "%s", m.Reason), ""
		case *wire.LeaseGrant:
			grant = m
		case *wire.Error:
			return fallback(jl, "denied", "%s", m.Message), ""
		default:
			return fallback(jl, "transport", "unexpected %T", m), ""
		}
	}
	jl.add("lease %d granted: host %s (%s) tier %d after %dms", grant.LeaseID, grant.Host, grant.Addr, grant.Tier, grant.WaitMs)
	var sendMu sync.Mutex
	send := func(m wire.Message) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return lc.Send(m)
	}
	// Renew the lease while the job runs; stop renewing before releasing.
	renewDone, renewStopped := make(chan struct{}), make(chan struct{})
	stopRenew := sync.OnceFunc(func() { close(renewDone); <-renewStopped })
	defer stopRenew()
	release := func(outcome, reason string) {
		stopRenew()
		clean = send(&wire.LeaseRelease{LeaseID: grant.LeaseID, Outcome: outcome, Reason: reason}) == nil
	}
	go func() {
		defer close(renewStopped)
		every := time.Duration(grant.TTLMs) * time.Millisecond / 3
		if every < 100*time.Millisecond {
			every = 100 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-renewDone:
				return
			case <-t.C:
				if send(&wire.LeaseRenew{LeaseID: grant.LeaseID}) != nil {
					return
				}
			}
		}
	}()
	jobStart := time.Now()
	res, err := a.runJob(ctx, grant, req, fp, digest)
	if err != nil {
		if ctx.Err() != nil {
			release(wire.OutcomeCancelled, "dcc went away")
			return fallback(jl, "cancelled", "dcc went away"), ""
		}
		release(wire.OutcomeFailed, err.Error())
		return fallback(jl, "host_failed", "%s: %v", grant.Host, err), grant.Host
	}
	if strings.HasPrefix(res.Rejected, wire.RejectTooLarge) {
		// The job's own size: compile it here, without blaming the host.
		release(wire.OutcomeCancelled, res.Rejected)
		return fallback(jl, "too_large", "%s", res.Rejected), ""
	}
	if res.Rejected != "" {
		outcome := wire.OutcomeRejected
		if res.Rejected == "job cancelled" || strings.HasPrefix(res.Rejected, "host unavailable") {
			// The host drains (its owner is back, a schedule, a pause) or the
			// broker took the lease back: not a sign of a broken host.
			outcome = wire.OutcomeCancelled
		}
		release(outcome, res.Rejected)
		return fallback(jl, "rejected", "%s refused the job: %s", grant.Host, res.Rejected), grant.Host
	}
	outcome := wire.OutcomeOK
	if res.ExitCode != 0 {
		outcome = wire.OutcomeCompileError
	}
	release(outcome, "")
	jl.add("job done on %s: exit %d, %d bytes, compile %dms", grant.Host, res.ExitCode, len(res.Output), res.WallMs)
	if res.ExitCode == 0 {
		a.local.observeRemote(time.Duration(res.WallMs)*time.Millisecond, time.Since(jobStart), grant.Power, int64(len(req.Source)))
	}
	return &wire.AgentResult{Host: grant.Host, Tier: grant.Tier, WaitMs: grant.WaitMs, Log: jl.lines, Result: *res}, ""
}

// runJob ships the job to the granted host and checks what comes back.
func (a *Agent) runJob(ctx context.Context, g *wire.LeaseGrant, req *wire.AgentCompile, fp string, digest []byte) (*wire.JobResult, error) {
	vs, err := a.volunteerSession(ctx, g.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	st, err := vs.OpenStream()
	if err != nil {
		a.dropVolunteer(g.Addr, vs)
		return nil, fmt.Errorf("open stream: %w", err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	c := wire.NewConn(st, wire.MaxJobFrame, 60*time.Second)
	err = c.Send(&wire.JobRequest{Token: g.Token, Compiler: req.Driver, Fingerprint: fp, Ext: req.Ext, Kind: req.Kind,
		Args: req.Args, SourceName: req.SourceName, Source: req.Source, Digest: digest})
	if err != nil {
		return nil, fmt.Errorf("send job: %w", err)
	}
	// The volunteer's job time limit bounds the compile; allow for transfer.
	m, err := c.RecvTimeout(15 * time.Minute)
	if err != nil {
		return nil, fmt.Errorf("await result: %w", err)
	}
	res, ok := m.(*wire.JobResult)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	if res.Rejected == "" && res.ExitCode == 0 {
		sum := sha256.Sum256(res.Output)
		if len(res.Output) == 0 || string(sum[:]) != string(res.Digest) {
			return nil, errors.New("output failed its checksum")
		}
	}
	return res, nil
}

func (a *Agent) brokerSession(ctx context.Context) (*yamux.Session, error) {
	a.brokerMu.Lock()
	defer a.brokerMu.Unlock()
	if a.broker != nil && !a.broker.IsClosed() {
		return a.broker, nil
	}
	// After a failed dial, fail fast for a moment instead of making every
	// compile of a build wait for the dial timeout.
	if time.Since(a.brokerFail) < time.Second {
		return nil, a.brokerErr
	}
	host, _ := os.Hostname()
	s, _, err := transport.Dial(ctx, a.opt.Broker, a.key, wire.Hello{Role: wire.RoleClient, Name: host, User: a.opt.User, Build: buildinfo.ID()})
	if err != nil {
		a.brokerFail, a.brokerErr = time.Now(), err
		return nil, err
	}
	a.broker = s
	a.log.Info("connected to broker", zap.String("broker", a.opt.Broker))
	return s, nil
}

// leaseStreamIdle is how long the agent keeps an idle lease stream; the
// broker closes them after two minutes.
const leaseStreamIdle = 60 * time.Second

type pooledStream struct {
	sess *yamux.Session
	st   *yamux.Stream
	at   time.Time
}

// leaseStream returns an idle lease stream of session s, or a new one.
func (a *Agent) leaseStream(s *yamux.Session) (st *yamux.Stream, reused bool, err error) {
	a.poolMu.Lock()
	for len(a.pool) > 0 {
		p := a.pool[len(a.pool)-1]
		a.pool = a.pool[:len(a.pool)-1]
		if p.sess == s && !s.IsClosed() && time.Since(p.at) < leaseStreamIdle {
			a.poolMu.Unlock()
			return p.st, true, nil
		}
		p.st.Close()
	}
	a.poolMu.Unlock()
	st, err = s.OpenStream()
	return st, false, err
}

// putLeaseStream keeps a lease stream whose exchange ended cleanly.
func (a *Agent) putLeaseStream(s *yamux.Session, st *yamux.Stream) {
	a.poolMu.Lock()
	defer a.poolMu.Unlock()
	if len(a.pool) >= 256 {
		st.Close()
		return
	}
	a.pool = append(a.pool, pooledStream{s, st, time.Now()})
}

func (a *Agent) dropBroker(s *yamux.Session) {
	a.brokerMu.Lock()
	if a.broker == s {
		a.broker = nil
	}
	a.brokerMu.Unlock()
	s.Close()
}

func (a *Agent) volunteerSession(ctx context.Context, addr string) (*yamux.Session, error) {
	a.volMu.Lock()
	s := a.vols[addr]
	a.volMu.Unlock()
	if s != nil && !s.IsClosed() {
		return s, nil
	}
	host, _ := os.Hostname()
	s, _, err := transport.Dial(ctx, addr, a.key, wire.Hello{Role: wire.RoleClient, Name: host, User: a.opt.User, Build: buildinfo.ID()})
	if err != nil {
		return nil, err
	}
	a.volMu.Lock()
	if old := a.vols[addr]; old != nil && !old.IsClosed() {
		a.volMu.Unlock()
		s.Close()
		return old, nil
	}
	a.vols[addr] = s
	a.volMu.Unlock()
	return s, nil
}

func (a *Agent) dropVolunteer(addr string, s *yamux.Session) {
	a.volMu.Lock()
	if a.vols[addr] == s {
		delete(a.vols, addr)
	}
	a.volMu.Unlock()
	s.Close()
}

func (a *Agent) countFallback(why string) {
	kind, _, _ := strings.Cut(why, ":")
	a.fbMu.Lock()
	a.fallback[kind]++
	a.fbMu.Unlock()
}

// report sends the fallback counts to the broker, for its metrics.
func (a *Agent) report() {
	a.fbMu.Lock()
	if len(a.fallback) == 0 {
		a.fbMu.Unlock()
		return
	}
	counts := a.fallback
	a.fallback = make(map[string]int64)
	a.fbMu.Unlock()
	a.brokerMu.Lock()
	s := a.broker
	a.brokerMu.Unlock()
	if s == nil || s.IsClosed() {
		return
	}
	st, err := s.OpenStream()
	if err != nil {
		return
	}
	defer st.Close()
	wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout).Send(&wire.ClientReport{Fallbacks: counts})
}
