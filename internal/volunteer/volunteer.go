package volunteer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/availability"
	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/executor"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/sandbox"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Offered is one compiler this host offers.
type Offered struct {
	Name string
	Path string
	compiler.Identity
}

// Volunteer is a running volunteer daemon.
type Volunteer struct {
	cfg       Config
	log       *zap.Logger
	lease     *zap.Logger
	id        *identity.Identity // this host's credential: its name is the host's
	serverTLS *tls.Config        // for clients' job connections (one: its ticket keys serve resumption)
	brokerTLS *tls.Config        // to the broker
	// revoked holds the serial numbers of revoked credentials, as the
	// broker last sent them: their job connections are refused.
	revoked   *identity.Revocations
	compilers []Offered
	limits    executor.Limits
	sandbox   sandbox.Capability // what confines compiles here, probed at start
	m         *metrics

	mu      sync.Mutex
	pub     ed25519.PublicKey // broker's token key, from the last Welcome
	replay  lease.ReplayGuard
	running map[uint64]*job
	// slotUsed[i] is true while a job runs in slot i; len(running) jobs
	// hold len(running) distinct slots.
	slotUsed  []bool
	replayLog *replayLog
	avail     availabilityState
	kick      chan struct{} // availability changed: report now
	done      chan *wire.JobDone
	cacheTo   cacheLink // where results go into the farm's cache, if anywhere

	ln       net.Listener
	httpSrv  *http.Server
	closing  chan struct{}
	wg       sync.WaitGroup
	sessMu   sync.Mutex
	sessions map[*yamux.Session]identity.Peer // the broker's and every client's
	brokerUp chan struct{}                    // closed after the first registration
	upOnce   sync.Once
}

type job struct {
	token  []byte
	cancel context.CancelFunc
	user   string
	slot   int
	pgid   int // compiler's process group, once started
}

// New prepares a volunteer: it reads the key and probes the compilers.
func New(cfg Config, logs logging.Loggers) (*Volunteer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id, err := identity.Load(cfg.Identity, identity.RoleHost)
	if err != nil {
		return nil, err
	}
	if cfg.Name != "" && cfg.Name != id.Name {
		return nil, fmt.Errorf("--name %q does not match the credential %s, which is for host %q", cfg.Name, cfg.Identity, id.Name)
	}
	cfg.Name = id.Name
	v := &Volunteer{
		cfg: cfg, log: logs.Log, lease: logs.Lease, id: id, revoked: identity.NewRevocations(nil),
		serverTLS: identity.ServerConfig(id, nil), brokerTLS: identity.ClientConfig(id, identity.Expect(identity.RoleBroker, "")),
		running: make(map[uint64]*job), done: make(chan *wire.JobDone, 256), kick: make(chan struct{}, 1),
		closing: make(chan struct{}), sessions: make(map[*yamux.Session]identity.Peer), brokerUp: make(chan struct{}),
	}
	v.slotUsed = make([]bool, cfg.Slots)
	v.replay.Skew = cfg.ClockSkew
	v.replayLog, err = openReplayLog(cfg.StateDir, cfg.Name, &v.replay, time.Now())
	if err != nil {
		return nil, err
	}
	v.limits = executor.DefaultLimits()
	v.limits.Wall = cfg.JobTimeout
	v.limits.CPU = cfg.JobTimeout
	v.limits.Memory = cfg.MaxMemory
	v.limits.Nice = cfg.Nice
	v.limits.Sandbox = cfg.Sandbox
	if v.limits.Sandbox.Helper == "" {
		v.limits.Sandbox.Helper = sandbox.DefaultHelper()
	}
	v.sandbox = sandbox.Probe(v.limits.Sandbox.Helper)
	if v.sandbox.Enforced() {
		v.log.Info("sandbox", zap.String("enforced", v.sandbox.Summary()), zap.Int("kernel_landlock_abi", v.sandbox.KernelABI))
	} else {
		// Loud, never silent: compilers here can read whatever this user can.
		v.log.Error("NO SANDBOX: compilers on this host can read every file the volunteer's user can; see docs/security.md",
			zap.String("sandbox", v.sandbox.Summary()), zap.Int("kernel_landlock_abi", v.sandbox.KernelABI), zap.Bool("require", cfg.Sandbox.Require))
	}
	v.avail.policy, err = availability.Compile(cfg.Availability)
	if err != nil {
		return nil, err
	}
	v.avail.probe = availability.Probe{IdleSource: cfg.Availability.IdleSource, ClockFile: cfg.Availability.ClockFile}
	v.avail.decision = availability.Decision{Available: true}
	v.compilers, err = probeCompilers(cfg.Compilers, v.log)
	if err != nil {
		return nil, err
	}
	v.compilers, err = v.checkCompilers(v.compilers)
	if err != nil {
		return nil, err
	}
	v.m = newMetrics()
	return v, nil
}

// checkCompilers compiles a trivial source with every offered compiler
// the way a job runs (sandbox included): a compiler the sandbox keeps from
// working would fail every job as a compile error (which clients return
// to the user), so it is not offered, and the log says why.
func (v *Volunteer) checkCompilers(offered []Offered) ([]Offered, error) {
	var ok []Offered
	for _, o := range offered {
		ext := ".i"
		if strings.Contains(o.Name, "++") {
			ext = ".ii"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := executor.Check(ctx, o.Path, ext, v.cfg.TempDir, v.limits)
		cancel()
		if err != nil {
			v.log.Error("compiler not offered: it fails a trivial compile", zap.String("name", o.Name), zap.String("path", o.Path), zap.Error(err))
			continue
		}
		ok = append(ok, o)
	}
	if len(ok) == 0 {
		return nil, errors.New("no offered compiler passes a trivial compile (see the log)")
	}
	return ok, nil
}

func probeCompilers(names []string, log *zap.Logger) ([]Offered, error) {
	explicit := len(names) > 0
	if !explicit {
		names = []string{"gcc", "g++", "cc", "c++", "clang", "clang++"}
	}
	var out []Offered
	var cache compiler.Cache
	for _, n := range names {
		p, err := compiler.Resolve(n, "")
		if err == nil {
			p, err = filepath.Abs(p)
		}
		var id compiler.Identity
		if err == nil {
			id, err = cache.Get(context.Background(), p)
		}
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("compiler %s: %w", n, err)
			}
			continue
		}
		out = append(out, Offered{Name: filepath.Base(n), Path: p, Identity: id})
		log.Info("offering compiler", zap.String("name", n), zap.String("path", p), zap.String("fingerprint", id.Fingerprint))
	}
	if len(out) == 0 {
		return nil, errors.New("no compiler found to offer")
	}
	return out, nil
}

// Compilers lists what this host offers.
func (v *Volunteer) Compilers() []Offered { return v.compilers }

// Start listens for jobs and connects to the broker.
func (v *Volunteer) Start() error {
	ln, err := net.Listen("tcp", v.cfg.Listen)
	if err != nil {
		return err
	}
	v.ln = ln
	if v.cfg.HTTP != "" {
		hl, err := net.Listen("tcp", v.cfg.HTTP)
		if err != nil {
			ln.Close()
			return err
		}
		v.httpSrv = &http.Server{Handler: v.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		go v.httpSrv.Serve(hl)
	}
	if v.cfg.Control != "" {
		// pause/resume is a convenience: a volunteer without it still serves.
		if err := v.serveControl(v.cfg.Control); err != nil {
			v.log.Warn("volunteer pause/resume disabled", zap.Error(err))
		}
	}
	// One helper per slot waits for the next job, so that no job waits
	// for a helper to start (closed in Close).
	v.limits.Sandbox.Pool = sandbox.NewPool(v.limits.Sandbox.Helper, v.cfg.Slots)
	v.evaluate()
	v.wg.Add(2)
	go func() { defer v.wg.Done(); v.acceptLoop() }()
	go func() { defer v.wg.Done(); v.brokerLoop() }()
	v.log.Info("volunteer listening", zap.String("name", v.cfg.Name), zap.String("addr", ln.Addr().String()), zap.Int("slots", v.cfg.Slots))
	return nil
}

// Addr is the job listener's address.
func (v *Volunteer) Addr() string { return v.ln.Addr().String() }

// advertise is the address clients should dial.
func (v *Volunteer) advertise() string {
	if v.cfg.Advertise != "" {
		return v.cfg.Advertise
	}
	host, port, _ := net.SplitHostPort(v.Addr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// Close stops the volunteer; running jobs are cancelled.
func (v *Volunteer) Close() error {
	select {
	case <-v.closing:
		return nil
	default:
	}
	close(v.closing)
	v.ln.Close()
	if v.httpSrv != nil {
		v.httpSrv.Close()
	}
	v.mu.Lock()
	for _, j := range v.running {
		j.cancel()
	}
	v.mu.Unlock()
	v.sessMu.Lock()
	for s := range v.sessions {
		s.Close()
	}
	v.sessMu.Unlock()
	v.wg.Wait()
	v.limits.Sandbox.Pool.Close()
	return v.replayLog.close()
}

// SetPaused makes the host unavailable (reason != "") or available again;
// the broker hears of it at once.
func (v *Volunteer) SetPaused(reason string) {
	v.mu.Lock()
	v.avail.paused = reason
	v.mu.Unlock()
	v.evaluate()
}

func (v *Volunteer) trackSession(s *yamux.Session, p identity.Peer) bool {
	v.sessMu.Lock()
	defer v.sessMu.Unlock()
	select {
	case <-v.closing:
		return false
	default:
	}
	v.sessions[s] = p
	return true
}

// setRevoked installs the broker's list of revoked credentials and closes
// the sessions of clients that hold one.
func (v *Volunteer) setRevoked(serials [][]byte) {
	v.revoked.Replace(serials)
	v.sessMu.Lock()
	defer v.sessMu.Unlock()
	for s, p := range v.sessions {
		if p.Role != identity.RoleBroker && v.revoked.Revoked(p.Serial) {
			v.log.Warn("closing the session of a revoked credential", zap.String("credential", p.Role+" "+p.Name))
			s.Close()
		}
	}
}

func (v *Volunteer) untrackSession(s *yamux.Session) {
	v.sessMu.Lock()
	delete(v.sessions, s)
	v.sessMu.Unlock()
}

func readLoad() (float64, float64, float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, 0, 0
	}
	p := func(s string) float64 { x, _ := strconv.ParseFloat(s, 64); return x }
	return p(f[0]), p(f[1]), p(f[2])
}

// brokerLoop keeps a session to the broker, re-registering after every
// loss with capped exponential backoff.
func (v *Volunteer) brokerLoop() {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := v.brokerSession()
		select {
		case <-v.closing:
			return
		default:
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		v.log.Warn("broker session ended; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-v.closing:
			return
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > 2*time.Second {
			backoff = 2 * time.Second
		}
	}
}

func (v *Volunteer) brokerSession() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-v.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	sess, w, err := transport.Dial(ctx, v.cfg.Broker, v.brokerTLS, wire.Hello{Role: wire.RoleVolunteer, Name: v.cfg.Name, Build: buildinfo.ID()})
	if err != nil {
		return err
	}
	v.setRevoked(w.Revoked)
	if !v.trackSession(sess, identity.Peer{Role: identity.RoleBroker, Name: "broker"}) {
		sess.Close()
		return errors.New("closing")
	}
	defer v.untrackSession(sess)
	defer sess.Close()
	v.setCacheLink(sess, w)
	defer v.setCacheLink(nil, nil)
	if len(w.BrokerKey) != ed25519.PublicKeySize {
		return errors.New("broker sent no token key")
	}
	st, err := sess.OpenStream()
	if err != nil {
		return err
	}
	c := wire.NewConn(st, wire.MaxControlFrame, wire.ControlTimeout)
	reg := &wire.Register{Name: v.cfg.Name, Addr: v.advertise(), CPUs: numCPU(), Slots: v.cfg.Slots, Status: v.evaluate(), Sandbox: v.sandbox.Summary()}
	for _, o := range v.compilers {
		reg.Compilers = append(reg.Compilers, wire.CompilerInfo{Name: o.Name, Fingerprint: o.Fingerprint})
	}
	v.mu.Lock()
	v.pub = ed25519.PublicKey(w.BrokerKey)
	for _, j := range v.running {
		reg.Running = append(reg.Running, j.token)
	}
	v.mu.Unlock()
	var sendMu sync.Mutex
	send := func(m wire.Message) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return c.Send(m)
	}
	if err := send(reg); err != nil {
		return err
	}
	v.upOnce.Do(func() { close(v.brokerUp) })
	v.log.Info("registered with broker", zap.String("broker", v.cfg.Broker), zap.Int("running", len(reg.Running)))

	errc := make(chan error, 2)
	go func() {
		for {
			m, err := c.RecvTimeout(0)
			if err != nil {
				errc <- err
				return
			}
			if cmd, ok := m.(*wire.Command); ok {
				v.command(cmd)
			}
		}
	}()
	t := time.NewTicker(v.cfg.Report)
	defer t.Stop()
	for {
		select {
		case <-v.closing:
			return nil
		case err := <-errc:
			return err
		case <-sess.CloseChan():
			return errors.New("session closed")
		case d := <-v.done:
			if err := send(d); err != nil {
				return err
			}
		case <-t.C:
			s := v.evaluate()
			if err := send(&s); err != nil {
				return err
			}
		case <-v.kick:
			s := v.evaluate()
			if err := send(&s); err != nil {
				return err
			}
		}
	}
}

func (v *Volunteer) command(cmd *wire.Command) {
	switch cmd.Kind {
	case wire.CommandCancel:
		v.mu.Lock()
		j := v.running[cmd.LeaseID]
		v.mu.Unlock()
		if j != nil {
			v.log.Info("job cancelled by broker", zap.Uint64("lease", cmd.LeaseID), zap.String("reason", cmd.Reason))
			j.cancel()
		}
	case wire.CommandDrain:
		v.SetPaused("drained by broker: " + cmd.Reason)
	case wire.CommandResume:
		v.SetPaused("")
	case wire.CommandRevoked:
		v.setRevoked(cmd.Serials)
		v.log.Info("revocations updated by the broker", zap.Int("serials", len(cmd.Serials)))
	}
}

// WaitRegistered blocks until the first registration with the broker, or timeout.
func (v *Volunteer) WaitRegistered(timeout time.Duration) bool {
	select {
	case <-v.brokerUp:
		return true
	case <-time.After(timeout):
		return false
	}
}

func numCPU() int { return runtime.NumCPU() }

func digest(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
