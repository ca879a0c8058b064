package sim

import (
	"time"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/lease"
)

// DCC is our policy: it drives internal/scheduler, the decision core of
// the live broker, with virtual time, the way internal/broker does:
// volunteers connect and report load every second (UpdateLoad, then
// Dispatch); a client's job is a LeaseRequest (Enqueue, Dispatch); a job
// that ends releases its lease (Release, Dispatch); a host that leaves
// disconnects (Disconnect revokes its leases).
//
// The client side is modelled on the agent, and every "compile locally"
// choice goes through the scheduler's pure functions, as the broker's and
// the agent's must:
//   - a request that Dispatch cannot place at once compiles locally if
//     scheduler.CompileLocally says so (the broker's answer to a request
//     with LocalSlotFree and LocalEstimateMs);
//   - when a local slot frees while the user has requests waiting, the
//     client asks the same question for its newest waiting request (the
//     one with the longest wait ahead of it) and withdraws it if the
//     answer is yes (the agent's work stealing);
//   - a grant on a host no faster than a free local slot is given back
//     (scheduler.DeclineGrant, Scheduler.Decline) and compiled at home.
type DCC struct {
	s     *Sim
	cfg   scheduler.Config
	sched *scheduler.Scheduler
	req   map[uint64]*Job   // waiting requests
	lease map[lease.ID]*Job // granted leases
	next  uint64
	// waitingOf[user] lists the user's waiting jobs, oldest first.
	waitingOf [][]*Job
	remote    []float64 // per user: EWMA of remote run times, seconds

	// Switches for the variants docs/scheduling.md compares (all on in
	// NewDCC except Eager).

	// Requeue: re-evaluate a waiting request when a local slot frees.
	Requeue bool
	// Gain: the client's LocalEstimate is local run time minus its mean
	// remote run time (the time a local compile loses against a remote
	// one), not the whole local run time.
	Gain bool
	// Backlog: the broker reports Backlogged (CompileLocally's rule 2);
	// off, a request goes home only when its own wait exceeds the gain.
	Backlog bool
	// Decline: a grant on a host no faster than a free local slot is
	// given back (DeclineGrant).
	Decline bool
	// Eager: a request that cannot be placed at once runs locally whenever
	// a local slot is free, whatever the estimated wait.
	Eager bool
}

// Fingerprint is the one compiler every simulated host offers.
const Fingerprint = "x86_64-linux-gnu gcc 13"

// NewDCC returns our policy with the broker's default configuration.
func NewDCC() *DCC { return NewDCCWith(scheduler.DefaultConfig()) }

// NewDCCWith returns our policy with a given scheduler configuration.
func NewDCCWith(cfg scheduler.Config) *DCC {
	return &DCC{cfg: cfg, Requeue: true, Gain: true, Backlog: true, Decline: true}
}

func (p *DCC) Name() string { return "dcc" }

// Scheduler exposes the scheduler, for tests.
func (p *DCC) Scheduler() *scheduler.Scheduler { return p.sched }

func (p *DCC) Start(s *Sim) {
	p.s = s
	cfg := p.cfg
	cfg.Seed = s.Seed()
	// Leases are renewed by their holders in the live system; here they
	// simply never expire.
	cfg.LeaseTTL = 1000 * time.Hour
	p.sched = scheduler.New(cfg, 1)
	p.req = map[uint64]*Job{}
	p.lease = map[lease.ID]*Job{}
	p.waitingOf = make([][]*Job, len(s.Users()))
	p.remote = make([]float64, len(s.Users()))
	now := s.Time()
	for i, u := range s.Users() {
		p.remote[i] = u.MeanJob() / u.LocalPower / 2
		p.sched.Ledger().SetWeight(u.Name(), u.Weight())
	}
	for _, h := range s.Hosts() {
		p.sched.SetFarmHost(h.Spec.Name, h.Spec.CPUs, h.Spec.Power, h.Spec.Slots, nil, now)
		p.connect(h)
	}
}

func (p *DCC) connect(h *HostState) {
	now := p.s.Time()
	p.sched.Connect(h.Spec.Name, scheduler.Registration{Addr: h.Spec.Name + ":3633", CPUs: h.Spec.CPUs, Slots: h.Spec.Slots,
		Compilers: map[string]string{Fingerprint: "x86_64-linux-gnu"}}, now)
	p.report(h)
}

func (p *DCC) report(h *HostState) {
	l1, l5, l15 := h.LoadAvg()
	p.sched.UpdateLoad(h.Spec.Name, scheduler.Load{Load1: l1, Load5: l5, Load15: l15, Available: true,
		Own1: h.OwnAvg1(), OwnKnown: true}, p.s.Time())
}

// dispatch places what the scheduler grants. A grant the client declines
// frees its slot again, so the scheduler is asked once more until every
// grant is taken.
func (p *DCC) dispatch() {
	for declined := true; declined; {
		declined = false
		for _, g := range p.sched.Dispatch(p.s.Time()) {
			j := p.req[g.Request]
			delete(p.req, g.Request)
			p.unwait(j)
			if p.Decline && scheduler.DeclineGrant(g.Speed, j.User.LocalPower, j.User.LocalFree()) {
				p.sched.Decline(g.Lease.ID, p.s.Time())
				p.s.StartLocal(j)
				declined = true
				continue
			}
			p.lease[g.Lease.ID] = j
			j.Tag = uint64(g.Lease.ID)
			h, _ := p.hostByName(g.Lease.Host)
			p.s.StartRemote(j, h)
		}
	}
}

func (p *DCC) hostByName(name string) (*HostState, bool) {
	for _, h := range p.s.Hosts() {
		if h.Spec.Name == name {
			return h, true
		}
	}
	return nil, false
}

func (p *DCC) unwait(j *Job) {
	w := p.waitingOf[j.User.Index]
	for i, x := range w {
		if x == j {
			p.waitingOf[j.User.Index] = append(w[:i], w[i+1:]...)
			return
		}
	}
}

// localEstimate is the LocalEstimateMs the client sends: what a local
// compile is expected to take (minus what a remote one takes, with Gain).
func (p *DCC) localEstimate(u *UserState) time.Duration {
	t := u.MeanJob() / u.LocalPower
	if p.Gain {
		t -= p.remote[u.Index]
	}
	if t < 0 {
		t = 0
	}
	return time.Duration(t * float64(time.Second))
}

func (p *DCC) Submit(j *Job) {
	now := p.s.Time()
	p.next++
	id := p.next
	j.Tag = id
	p.req[id] = j
	p.waitingOf[j.User.Index] = append(p.waitingOf[j.User.Index], j)
	p.sched.Enqueue(scheduler.Request{ID: id, User: j.User.Name(), Fingerprint: Fingerprint, Holder: uint64(j.User.Index + 1)}, now)
	p.dispatch()
	if _, waiting := p.req[id]; !waiting {
		return
	}
	p.maybeLocal(j)
}

// maybeLocal asks scheduler.CompileLocally about a waiting request, with
// the broker's side from Scheduler.LocalQuery and the client's (a free
// local slot, its gain) from the user; if the answer is yes the request
// leaves the queue and runs locally.
func (p *DCC) maybeLocal(j *Job) bool {
	q := p.sched.LocalQuery(j.Tag, p.s.Time())
	q.SlotFree = j.User.LocalFree()
	q.Gain = p.localEstimate(j.User)
	if !p.Backlog {
		q.Backlogged = false
	}
	if p.Eager {
		q.Gain = -1
	}
	if !scheduler.CompileLocally(q) {
		return false
	}
	p.sched.Cancel(j.Tag)
	delete(p.req, j.Tag)
	p.unwait(j)
	p.s.StartLocal(j)
	return true
}

func (p *DCC) Done(j *Job) {
	if j.Host != nil {
		r := &p.remote[j.User.Index]
		*r += (p.s.Now() - j.StartAt - *r) / 8
		id := lease.ID(j.Tag)
		delete(p.lease, id)
		p.sched.Release(id, p.s.Time())
		p.dispatch()
		return
	}
	// A local slot freed: the client asks again for its newest waiting
	// job, the one with the longest wait ahead of it.
	if p.Requeue {
		if w := p.waitingOf[j.User.Index]; len(w) > 0 {
			p.maybeLocal(w[len(w)-1])
		}
	}
}

func (p *DCC) HostDown(h *HostState, lost []*Job) {
	for _, l := range p.sched.Disconnect(h.Spec.Name, p.s.Time()) {
		delete(p.lease, l.ID)
	}
	p.dispatch()
}

func (p *DCC) HostUp(h *HostState) {
	p.connect(h)
	p.dispatch()
}

func (p *DCC) Tick() {
	now := p.s.Time()
	for _, h := range p.s.Hosts() {
		if h.Present {
			p.report(h)
		}
	}
	p.sched.Tick(now)
	p.dispatch()
}
