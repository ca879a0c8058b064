package broker

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/farm"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/timeline"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Broker is a running broker.
type Broker struct {
	cfg   Config
	log   *zap.Logger
	lease *zap.Logger
	sign  ed25519.PrivateKey
	// The farm's CA and identities: the broker's own TLS identity, the
	// server configuration every connection is accepted with (one, so that
	// its session-ticket keys serve resumption), and the revocations,
	// reloaded from the state directory every second.
	ca      *identity.CA
	tls     *tls.Config
	revoked *identity.Revocations
	store   *store
	m       *metrics
	start   time.Time

	mu       sync.Mutex // guards everything below and the scheduler
	sched    *scheduler.Scheduler
	farm     *farm.Farm
	waiters  map[uint64]waiter
	vols     map[string]*volunteerConn
	exts     map[string]*external   // per host: outside monitors' reports and the last volunteer status
	distcc   map[string]*distccHost // the farm file's stock distccd hosts
	reclaims []status.Reclaim
	ring     *timeline.FarmRing // recent leases, for the status page's live timeline
	cache    *resultCache       // nil when the broker keeps no result cache

	nextReq  atomic.Uint64
	nextSess atomic.Uint64

	ln       net.Listener
	httpLn   net.Listener
	httpSrv  *http.Server
	httpsLn  net.Listener
	httpsSrv *http.Server
	sessions sync.WaitGroup
	closing  chan struct{}
	closeMu  sync.Mutex
	conns    map[*yamux.Session]identity.Peer // every open session and who holds it
}

type waitResult struct {
	queued   *wire.LeaseQueued // a notice for the client; the wait goes on
	grant    *scheduler.Grant
	addr     string // where the granted host takes jobs
	protocol string // "distcc" for a stock distccd
	verify   bool   // the client must check the object against a local compile
	denied   string
}

type volunteerConn struct {
	name    string
	session *yamux.Session
	cmds    chan *wire.Command
}

// New prepares a broker: it reads the key, the farm file and the state
// directory, but listens on nothing until Start.
func New(cfg Config, logs logging.Loggers) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := farm.Load(cfg.FarmFile)
	if err != nil {
		return nil, err
	}
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	sk, err := loadSigningKey(cfg.StateDir)
	if err != nil {
		st.close()
		return nil, err
	}
	ca, sid, rev, err := openIdentities(cfg)
	if err != nil {
		st.close()
		return nil, err
	}
	rc, err := openCache(cfg, logs.Log)
	if err != nil {
		st.close()
		return nil, err
	}
	now := time.Now()
	sc := scheduler.DefaultConfig()
	sc.LeaseTTL = cfg.LeaseTTL
	sc.HalfLife = cfg.HalfLife
	sc.Seed = uint64(now.UnixNano())
	sc.Tiering.Overload, sc.Tiering.Saturated = cfg.Overload, cfg.Saturated
	b := &Broker{
		cfg: cfg, log: logs.Log, lease: logs.Lease, sign: sk, store: st, ca: ca, revoked: rev,
		start: now, sched: scheduler.New(sc, lease.FirstID(now)),
		waiters: make(map[uint64]waiter), vols: make(map[string]*volunteerConn), exts: make(map[string]*external),
		closing: make(chan struct{}), conns: make(map[*yamux.Session]identity.Peer), ring: timeline.NewFarmRing(4096),
		cache: rc,
	}
	b.tls = identity.ServerConfig(sid, nil) // who may do what is decided per connection in admit
	if usage, err := st.loadUsage(); err != nil {
		b.log.Warn("fair-share usage not restored", zap.Error(err))
	} else {
		b.sched.Ledger().Restore(usage)
		b.log.Info("fair-share usage restored", zap.Int("users", len(usage)))
	}
	b.applyFarm(f, now)
	b.m = newMetrics(b)
	return b, nil
}

// applyFarm installs a (re-)read farm file. Caller holds mu or is New.
func (b *Broker) applyFarm(f *farm.Farm, now time.Time) {
	old := b.farm
	b.farm = f
	for _, name := range f.Names() {
		h := f.Hosts[name]
		b.sched.SetFarmHost(h.Name, h.CPUs, h.Power, h.Slots, h.Targets, now)
		b.sched.SetAccess(h.Name, h.Users, h.Distcc())
	}
	b.applyDistcc(f)
	if old != nil {
		for name := range old.Hosts {
			if _, ok := f.Hosts[name]; !ok {
				for _, l := range b.sched.RemoveFarmHost(name, now) {
					b.reclaimed(l, "revoked", "host removed from farm file", now)
					b.cancelOnHost(l, "host removed from farm file")
				}
			}
		}
	}
	// The farm file is the only source of weights: a user line removed
	// from it takes that user back to weight 1.
	b.sched.Ledger().SetWeights(f.Users)
}

// Start listens on the TCP and HTTP addresses and serves until Close.
func (b *Broker) Start() error {
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return err
	}
	b.ln = ln
	if b.cfg.HTTP != "" {
		hl, err := net.Listen("tcp", b.cfg.HTTP)
		if err != nil {
			ln.Close()
			return err
		}
		b.httpLn = hl
		b.httpSrv = &http.Server{Handler: b.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		go b.httpSrv.Serve(hl)
	}
	if b.cfg.HTTPS != "" {
		hl, err := net.Listen("tcp", b.cfg.HTTPS)
		if err != nil {
			b.closeListeners()
			return err
		}
		b.httpsLn = hl
		b.httpsSrv = &http.Server{Handler: b.httpsHandler(), ReadHeaderTimeout: 5 * time.Second, TLSConfig: b.httpsTLS()}
		go b.httpsSrv.ServeTLS(hl, "", "")
	}
	go b.acceptLoop()
	go b.tickLoop()
	go b.probeDistcc()
	go b.watchFarm()
	b.log.Info("broker listening", zap.String("addr", ln.Addr().String()), zap.String("http", b.HTTPAddr()),
		zap.String("https", b.HTTPSAddr()), zap.String("ca", b.ca.ID()))
	return nil
}

func (b *Broker) closeListeners() {
	for _, l := range []net.Listener{b.ln, b.httpLn, b.httpsLn} {
		if l != nil {
			l.Close()
		}
	}
}

// HTTPSAddr is the HTTPS address, or "".
func (b *Broker) HTTPSAddr() string {
	if b.httpsLn == nil {
		return ""
	}
	return b.httpsLn.Addr().String()
}

// Addr is the TCP address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// HTTPAddr is the HTTP address, or "".
func (b *Broker) HTTPAddr() string {
	if b.httpLn == nil {
		return ""
	}
	return b.httpLn.Addr().String()
}

// Close stops serving, closes every session and saves usage.
func (b *Broker) Close() error {
	b.closeMu.Lock()
	select {
	case <-b.closing:
		b.closeMu.Unlock()
		return nil
	default:
	}
	close(b.closing)
	for s := range b.conns {
		s.Close()
	}
	b.closeMu.Unlock()
	if b.ln != nil {
		b.ln.Close()
	}
	for _, srv := range []*http.Server{b.httpSrv, b.httpsSrv} {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			srv.Shutdown(ctx)
			cancel()
		}
	}
	b.sessions.Wait()
	b.saveUsage()
	if b.cache != nil {
		b.cache.store.Close()
	}
	return b.store.close()
}

// saveUsage persists fair-share usage, first forgetting users whose
// usage has decayed to nothing and who neither hold nor wait for a slot.
func (b *Broker) saveUsage() {
	b.mu.Lock()
	now := time.Now()
	gone := b.sched.Ledger().Prune(now, b.sched.Active)
	snap := b.sched.Ledger().Snapshot()
	b.mu.Unlock()
	if len(gone) > 0 {
		b.log.Info("fair-share accounts pruned", zap.Int("users", len(gone)))
	}
	if err := b.store.saveUsage(snap, gone); err != nil {
		b.log.Error("save usage", zap.Error(err))
	}
}

func (b *Broker) track(s *yamux.Session, p identity.Peer) bool {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	select {
	case <-b.closing:
		return false
	default:
	}
	b.conns[s] = p
	return true
}

func (b *Broker) untrack(s *yamux.Session) {
	b.closeMu.Lock()
	delete(b.conns, s)
	b.closeMu.Unlock()
}

func (b *Broker) acceptLoop() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.log.Error("accept", zap.Error(err))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b.sessions.Add(1)
		go func() {
			defer b.sessions.Done()
			b.serveConn(conn)
		}()
	}
}

func (b *Broker) serveConn(conn net.Conn) {
	var welcome *wire.Welcome
	sess, peer, hello, err := transport.Accept(conn, b.tls, func(p identity.Peer, h *wire.Hello) (*wire.Welcome, *wire.Error) {
		w, e := b.admit(p, h)
		welcome = w
		return w, e
	})
	if err != nil {
		b.m.handshakeFailures.Inc()
		fields := []zap.Field{zap.String("remote", conn.RemoteAddr().String()), zap.Error(err)}
		if peer.Name != "" {
			fields = append(fields, zap.String("credential", peer.Role+" "+peer.Name))
		}
		if hello != nil {
			fields = append(fields, zap.String("role", hello.Role), zap.String("name", hello.Name))
		}
		b.log.Warn("connection refused", fields...)
		return
	}
	if !b.track(sess, peer) {
		sess.Close()
		return
	}
	defer b.untrack(sess)
	defer sess.Close()
	switch hello.Role {
	case wire.RoleVolunteer:
		b.serveVolunteer(sess, peer)
	default:
		b.serveClient(sess, clientOf(peer, hello), welcome.Session)
	}
}
