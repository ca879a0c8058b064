package agent

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// The agent keeps one session to the broker and one per volunteer it has
// sent work to, and a pool of idle lease streams on the broker session:
// a compile then costs stream opens (or none), never a dial or handshake.

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
	s, w, err := transport.Dial(ctx, a.opt.Broker, a.brokerTLS, wire.Hello{Role: wire.RoleClient, Name: host, User: a.opt.User, Build: buildinfo.ID()})
	if err != nil {
		a.brokerFail, a.brokerErr = time.Now(), err
		return nil, err
	}
	a.broker, a.cacheOn, a.cacheSalt = s, w.Cache, w.CacheSalt
	a.log.Info("connected to broker", zap.String("broker", a.opt.Broker))
	return s, nil
}

// brokerCache says whether the broker of session s keeps a result cache,
// and the salt its keys take.
func (a *Agent) brokerCache(s *yamux.Session) (salt string, on bool) {
	a.brokerMu.Lock()
	defer a.brokerMu.Unlock()
	if a.broker != s {
		return "", false
	}
	return a.cacheSalt, a.cacheOn
}

func (a *Agent) dropBroker(s *yamux.Session) {
	a.brokerMu.Lock()
	if a.broker == s {
		a.broker = nil
	}
	a.brokerMu.Unlock()
	s.Close()
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

// volunteerSession returns the session to the volunteer host at addr,
// dialling it if need be. The TLS handshake checks that the peer holds
// host's credential: a grant names the host, and no other may answer.
func (a *Agent) volunteerSession(ctx context.Context, host, addr string) (volunteerSess, error) {
	key := host + "\x00" + addr
	a.volMu.Lock()
	s := a.vols[key]
	cfg := a.volTLS[host]
	if cfg == nil {
		if len(a.volTLS) > 4096 {
			clear(a.volTLS)
		}
		cfg = identity.ClientConfig(a.id, identity.Expect(identity.RoleHost, host))
		a.volTLS[host] = cfg
	}
	a.volMu.Unlock()
	if s.Session != nil && !s.IsClosed() {
		return s, nil
	}
	machine, _ := os.Hostname()
	sess, w, err := transport.Dial(ctx, addr, cfg, wire.Hello{Role: wire.RoleClient, Name: machine, User: a.opt.User, Build: buildinfo.ID()})
	if err != nil {
		return volunteerSess{}, err
	}
	s = volunteerSess{Session: sess, early: w.EarlySource}
	a.volMu.Lock()
	if old := a.vols[key]; old.Session != nil && !old.IsClosed() {
		a.volMu.Unlock()
		s.Close()
		return old, nil
	}
	a.vols[key] = s
	a.volMu.Unlock()
	return s, nil
}

// volunteerSess is a session to a volunteer and what its Welcome said.
type volunteerSess struct {
	*yamux.Session
	early bool // it takes a job's header before the source (wire.Welcome.EarlySource)
}

func (a *Agent) dropVolunteer(host, addr string, s *yamux.Session) {
	key := host + "\x00" + addr
	a.volMu.Lock()
	if a.vols[key].Session == s {
		delete(a.vols, key)
	}
	a.volMu.Unlock()
	s.Close()
}
