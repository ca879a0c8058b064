// Package agent is the per-user local daemon that `dcc` processes talk to
// over a unix socket (reached through package agentlink). It keeps one
// authenticated yamux session to the broker and reuses sessions to
// volunteers, so that a compile costs a few stream opens instead of TCP
// connections and handshakes. The first `dcc` that finds no agent starts
// one; the agent exits after an idle period. It runs in the dcc-agent
// binary, so that dcc itself links none of this.
//
// A dcc process that dies closes its socket; the agent then cancels its
// lease wait or job, which closes the lease stream (the broker frees the
// slot) and the job stream (the volunteer kills the compiler).
package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
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

	"github.com/dcc-farm/dcc/internal/agentlink"
	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/buildroot"
	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Options say which agent this is (agentlink.Options: what dcc passes
// when it starts one).
type Options = agentlink.Options

// Agent serves dcc processes on a unix socket.
type Agent struct {
	opt    Options
	sock   string
	id     *identity.Identity
	log    *zap.Logger
	ln     net.Listener
	lockf  *os.File
	idents compiler.Cache

	brokerTLS *tls.Config // one per peer, so that resumed TLS sessions are reused
	volTLS    map[string]*tls.Config

	brokerMu   sync.Mutex
	broker     *yamux.Session
	brokerFail time.Time
	brokerErr  error
	cacheOn    bool   // the broker keeps a result cache (its Welcome)
	cacheSalt  string // and its keys take this salt

	volMu sync.Mutex
	vols  map[string]volunteerSess

	poolMu sync.Mutex
	pool   []pooledStream // idle lease streams, most recent last

	local localSlots
	sizes sourceSizes
	diags diagMemory
	rec   recorder

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
	id, err := identity.Load(o.Identity, identity.RoleUser)
	if err != nil {
		return nil, err
	}
	if err := agentlink.EnsureDir(o.RuntimeDir); err != nil {
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
	a := &Agent{opt: o, sock: sock, id: id, log: log, ln: ln, lockf: lockf,
		brokerTLS: identity.ClientConfig(id, identity.Expect(identity.RoleBroker, "")), volTLS: make(map[string]*tls.Config),
		vols: make(map[string]volunteerSess), fallback: make(map[string]int64), closing: make(chan struct{})}
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
			a.local.recheck(now)
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
	a.closeRecords()
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
		c.Send(&wire.AgentPong{Version: wire.ProtocolVersion, Build: buildinfo.ID(), PID: os.Getpid(),
			LocalBusy: a.local.busyLen(), LocalSlots: a.opt.LocalSlots, Queued: a.local.queuedLen()})
	case *wire.AgentCompile:
		a.serveCompile(conn, c, m)
	case *wire.AgentRecord:
		a.record(m)
	case *wire.ClientReport:
		// A dcc process's DCC_VERIFY mismatch: the broker hears it from
		// this user's session, as evidence against the hosts it names.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if s, err := a.brokerSession(ctx); err == nil {
			send(s, &wire.ClientReport{Mismatches: m.Mismatches})
		}
		cancel()
	}
}

// serveCompile runs one dcc process's job. The source may follow the
// request (dcc asks before it preprocesses, so the lease wait overlaps
// the preprocessor); the dcc process closing its socket (it died, or
// finished a local compile) cancels the job or frees its local slot.
func (a *Agent) serveCompile(conn net.Conn, c *wire.Conn, req *wire.AgentCompile) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newPendingSource()
	if req.Source != nil {
		src.set(req.Source)
	}
	build := a.findBuild(req)
	gone := make(chan struct{})
	record := make(chan *wire.AgentRecord, 1)
	go func() {
		defer close(gone)
		defer cancel()
		conn.SetReadDeadline(time.Time{})
		if req.Source == nil {
			m, err := c.RecvTimeout(0) // the preprocessor may take long
			s, ok := m.(*wire.AgentSource)
			if err != nil || !ok {
				return
			}
			src.set(s.Source)
			a.sizes.learn(req.File, int64(len(s.Source)))
		}
		// Then the end of the connection, or after a farm result the job's record.
		if m, err := c.RecvTimeout(0); err == nil {
			if r, ok := m.(*wire.AgentRecord); ok {
				record <- r
			}
		}
	}()
	res := a.compile(ctx, req, src)
	if res.Fallback != "" {
		a.countFallback(res.Fallback)
	}
	c.WriteTimeout = 30 * time.Second
	if res.LocalSlot {
		if c.Send(res) == nil {
			<-gone // the dcc process compiles locally, then closes
		}
		a.local.done(time.Now())
	} else if c.Send(res) == nil {
		// dcc reads the answer and closes (a farm result's record first:
		// moments). Closing first, with some of its source unread (an
		// answer that came before the source was in), would reset the
		// connection, and dcc would lose the answer just sent.
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
		}
		select {
		case r := <-record:
			if build != nil {
				a.recordIn(r, <-build)
			}
		default:
		}
	}
}

// findBuild names the build of the dcc process behind req, in the
// background while its job runs (nil when it keeps no record).
func (a *Agent) findBuild(req *wire.AgentCompile) <-chan buildroot.Info {
	if a.opt.BuildsDir == "" || req.ParentPID <= 0 {
		return nil
	}
	ch := make(chan buildroot.Info, 1)
	go func() { ch <- buildroot.Find(req.ParentPID, req.WorkDir) }()
	return ch
}

// sourceSizes remembers the preprocessed size of recently compiled
// files, so that a lease requested before preprocessing ends carries a
// good size estimate (a rebuild compiles the same files again).
type sourceSizes struct {
	mu sync.Mutex
	m  map[string]int64
}

// maxRemembered bounds sourceSizes: past it the map starts over.
const maxRemembered = 1 << 14

func (s *sourceSizes) learn(file string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxRemembered {
		s.m = make(map[string]int64)
	}
	s.m[file] = n
}

// guess is the remembered size of file, or a guess from the size of the
// unpreprocessed source (headers typically make it much larger).
func (s *sourceSizes) guess(file string, hint int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.m[file]; ok {
		return n
	}
	return hint * 16
}

// pendingSource is a job's preprocessed source, which may arrive after
// its lease request.
type pendingSource struct {
	ready  chan struct{}
	src    []byte
	digest []byte
}

func newPendingSource() *pendingSource { return &pendingSource{ready: make(chan struct{})} }

func (p *pendingSource) set(src []byte) {
	sum := sha256.Sum256(src)
	p.src, p.digest = src, sum[:]
	close(p.ready)
}

// known reports whether the source has arrived.
func (p *pendingSource) known() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// wait blocks until the source arrives or ctx ends.
func (p *pendingSource) wait(ctx context.Context) ([]byte, error) {
	select {
	case <-p.ready:
		return p.src, nil
	case <-ctx.Done():
		return nil, ctx.Err()
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
	a.forward(&wire.ClientReport{Fallbacks: counts})
}

// forward sends a report to the broker on the agent's session, if it has one.
func (a *Agent) forward(m *wire.ClientReport) {
	a.brokerMu.Lock()
	s := a.broker
	a.brokerMu.Unlock()
	if s != nil && !s.IsClosed() {
		send(s, m)
	}
}

// send sends one message on a new stream of the broker session.
func send(s *yamux.Session, m wire.Message) {
	st, err := s.OpenStream()
	if err != nil {
		return
	}
	defer st.Close()
	wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout).Send(m)
}
