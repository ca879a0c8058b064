// Package scheduler is the broker's decision core: it holds every host's
// state, the lease table, the waiting queue and the usage ledger, and
// decides which waiting request gets which slot. It composes pkg/tiering
// (which host), pkg/fairshare (which request) and pkg/lease (the grant).
//
// Like those packages it starts no goroutines, does no I/O and never reads
// the clock: every method takes "now", so the live broker and the simulator
// run the same decisions. The caller serialises access (the broker holds
// one mutex around it).
package scheduler

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/dcc-farm/dcc/pkg/fairshare"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/tiering"
)

// Config tunes the scheduler.
type Config struct {
	LeaseTTL time.Duration
	Tiering  tiering.Config
	Policy   fairshare.Policy
	HalfLife time.Duration
	Seed     uint64
	// ProbationAfter farm failures in a row put a host on probation;
	// BlockAfter in a row block it for BlockFor (then it is on probation);
	// RecoverAfter successes in a row return a host on probation to healthy.
	ProbationAfter, BlockAfter, RecoverAfter int
	BlockFor                                 time.Duration
	// Rank orders hosts within the best tier (see tiering.Rank).
	Rank tiering.Rank
	// Reports that a host returned an object differing from a local
	// compile (DCC_VERIFY) are evidence, counted once per reporter within
	// MismatchWindow: MismatchProbation distinct reporters put the host on
	// probation, MismatchBlock block it for BlockFor. No single user can
	// take a host out.
	MismatchWindow                   time.Duration
	MismatchProbation, MismatchBlock int
}

// DefaultConfig returns the broker's defaults.
func DefaultConfig() Config {
	return Config{
		LeaseTTL:       30 * time.Second,
		Tiering:        tiering.DefaultConfig(),
		Policy:         fairshare.DefaultPolicy(),
		HalfLife:       time.Hour,
		ProbationAfter: 2,
		BlockAfter:     5,
		RecoverAfter:   5,
		BlockFor:       2 * time.Minute,
		Rank:           tiering.RankSpeed,

		MismatchWindow:    time.Hour,
		MismatchProbation: 2,
		MismatchBlock:     3,
	}
}

// Host is everything known about one host. tiering.Host is the part tiering sees.
type Host struct {
	tiering.Host
	Addr                   string
	Compilers              map[string]string // fingerprint -> target triple
	Targets                []string          // farm-file restriction; empty: any
	Users                  []string          // farm-file restriction (users=); empty: everyone
	Distcc                 bool              // a stock distccd: it takes preprocessed text only
	InFarm                 bool
	Connected              bool
	Available              bool   // the volunteer says it may take jobs
	Note                   string // why unavailable / blocked (computed by refresh)
	availNote              string // the volunteer's or a monitor's reason for being unavailable
	drainNote, blockNote   string // the admin's reasons
	AdminDrain, AdminBlock bool
	JobsDone, Failures     int64
	failRun, okRun         int  // farm failures, and successes, in a row
	onProbation            bool // set by ProbationAfter failures in a row, cleared by RecoverAfter successes in a row
	blockedUntil           time.Time
	blockWhy               string               // why blockedUntil was set, when not by failures
	mismatch               map[string]time.Time // reporter -> when it last reported a wrong object
	FarmSlots              int
	offered                int // slots the volunteer offers
	verdict                tiering.Verdict
}

// Request is a lease request to place.
type Request struct {
	ID          uint64
	User        string
	Fingerprint string
	Holder      uint64
	File        string
	Deadline    time.Time // zero: no deadline
	// Avoid names a host this job already failed on: it is placed on any
	// other host offering its compiler (and waits if there is none).
	Avoid string
	// NeedsDCC says the job needs a dcc volunteer: its source's includes
	// are inlined, not preprocessed (clang -frewrite-includes), which a
	// stock distccd cannot compile.
	NeedsDCC bool
}

// Grant is a placed request.
type Grant struct {
	Request uint64
	Lease   lease.Lease
	Wait    time.Duration
	// Speed is how fast the job is expected to run on its host (power ×
	// CPU share under the host's load, tiering.Speed), for DeclineGrant.
	Speed float64
}

// Scheduler is the decision core. Invariants: hosts[i].Busy equals the
// number of leases on hosts[i] in the table; running[u] is the sum of the
// power of u's leases; every request in queue has an entry in reqs.
type Scheduler struct {
	cfg     Config
	hosts   []tiering.Host // dense copy that tiering scans, index-aligned with info
	info    []*Host
	byName  map[string]int
	verdict []tiering.Verdict
	leases  *lease.Table
	ledger  *fairshare.Ledger
	queue   *fairshare.Queue
	chooser *tiering.Chooser
	reqs    map[uint64]Request
	running map[string]float64
	count   map[string]int
	// meanLease is the mean lease duration, for wait estimates: a plain
	// mean of the first leases, then exponentially weighted (1/8). Until a
	// lease has ended it is 0, so estimates are optimistic: the broker
	// does not send jobs home on a guess.
	meanLease  time.Duration
	leasesSeen int
	// scoring scratch, rebuilt per Dispatch
	scoreNow  time.Time
	meanUsage float64
	// seniority[u] is the weight factor of backlogged user u (see
	// seniority.go), rebuilt with the scores; users not in it have 1.
	seniority map[string]float64
	// backlogged[u]: u wants more slots than its fair share (see
	// findBacklogged), rebuilt with the scores.
	backlogged map[string]bool
	senList    []senior // scratch for rebuilding seniority
	demands    []demand // scratch for water-filling
	// busySince[u] is when u's current busy period began: its first
	// request while it held no lease and had none waiting.
	busySince map[string]time.Time
	// free is the number of free slots on hosts with tier > 0 (kept by
	// refresh), so Dispatch stops without scanning when the farm is full.
	free     int
	hostFree []int // per host: its contribution to free
	// usable is the number of slots on hosts with tier > 0 (kept by
	// refresh like free); hostUsable[i] is host i's contribution.
	usable     int
	hostUsable []int
	// Dispatch's reused state, so that the hot path does not allocate:
	// the grants it returns, and method values bound once.
	grants      []Grant
	scoreFn     func(string) float64
	placeableFn func(*fairshare.Request) bool
	eligibleFn  func(int) bool
	key, avoid  string
	user        string
	needsDCC    bool
	chosen      int
	// restricted counts hosts with a users= restriction: while there are
	// any, queue keys include the user (whether a host can serve a
	// request then depends on who asks).
	restricted int
}

// New returns an empty scheduler; first is the first lease ID.
func New(cfg Config, first lease.ID) *Scheduler {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	chooser := tiering.NewChooser(cfg.Tiering, cfg.Seed)
	chooser.Rank = cfg.Rank
	s := &Scheduler{
		cfg:        cfg,
		byName:     make(map[string]int),
		leases:     lease.NewTable(first),
		ledger:     fairshare.NewLedger(cfg.HalfLife),
		queue:      fairshare.NewQueue(),
		chooser:    chooser,
		reqs:       make(map[uint64]Request),
		running:    make(map[string]float64),
		count:      make(map[string]int),
		seniority:  make(map[string]float64),
		backlogged: make(map[string]bool),
		busySince:  make(map[string]time.Time),
	}
	s.scoreFn = s.score
	s.placeableFn = s.placeable
	s.eligibleFn = s.eligible
	return s
}

// Config returns the configuration.
func (s *Scheduler) Config() Config { return s.cfg }

// Ledger exposes the usage ledger (for persistence and weights).
func (s *Scheduler) Ledger() *fairshare.Ledger { return s.ledger }

// Leases exposes the lease table, read-only by convention.
func (s *Scheduler) Leases() *lease.Table { return s.leases }

// Queue exposes the waiting queue, read-only by convention.
func (s *Scheduler) Queue() *fairshare.Queue { return s.queue }

func (s *Scheduler) index(name string) int {
	if i, ok := s.byName[name]; ok {
		return i
	}
	i := len(s.info)
	s.byName[name] = i
	s.info = append(s.info, &Host{Host: tiering.Host{Name: name, State: tiering.Gone}, Compilers: map[string]string{}})
	s.hosts = append(s.hosts, tiering.Host{})
	s.verdict = append(s.verdict, tiering.Verdict{})
	s.hostFree = append(s.hostFree, 0)
	s.hostUsable = append(s.hostUsable, 0)
	return i
}

// Host returns the state of a host.
func (s *Scheduler) Host(name string) (*Host, bool) {
	i, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return s.info[i], true
}

// HostNames returns every known host name, sorted.
func (s *Scheduler) HostNames() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SetFarmHost records a host from the farm file (added or changed).
func (s *Scheduler) SetFarmHost(name string, cpus int, power float64, slots int, targets []string, now time.Time) {
	i := s.index(name)
	h := s.info[i]
	h.InFarm = true
	h.CPUs, h.Power, h.FarmSlots, h.Targets = cpus, power, slots, targets
	h.Slots = h.effectiveSlots()
	s.refresh(i, now)
}

// SetAccess records who and what a host may serve: users (empty:
// everyone), and whether it is a stock distccd (it compiles preprocessed
// text only, no rewritten sources).
func (s *Scheduler) SetAccess(name string, users []string, distcc bool) {
	h := s.info[s.index(name)]
	if len(h.Users) > 0 {
		s.restricted--
	}
	h.Users, h.Distcc = users, distcc
	if len(users) > 0 {
		s.restricted++
	}
}

// effectiveSlots is what the volunteer offers, capped by the farm file:
// its slots= if given, else its NCPUS. A volunteer that states no number
// gets the farm file's slots= (and none if that is not set either).
func (h *Host) effectiveSlots() int {
	n := h.offered
	if n == 0 {
		return h.FarmSlots
	}
	limit := h.FarmSlots
	if limit == 0 {
		limit = h.CPUs
	}
	if limit > 0 && limit < n {
		n = limit
	}
	return n
}

// RemoveFarmHost takes a host out of the farm: it gets no new leases; its
// running leases are returned for the caller to revoke.
func (s *Scheduler) RemoveFarmHost(name string, now time.Time) []lease.Lease {
	return s.takeOut(name, now, func(h *Host) { h.InFarm = false })
}

// takeOut applies change to a host, which leaves it unusable, and revokes
// its leases, returning them.
func (s *Scheduler) takeOut(name string, now time.Time, change func(*Host)) []lease.Lease {
	i, ok := s.byName[name]
	if !ok {
		return nil
	}
	change(s.info[i])
	s.refresh(i, now)
	return s.revokeHost(name, now)
}

// Registration is what a connecting volunteer reports.
type Registration struct {
	Addr      string
	CPUs      int
	Slots     int
	Compilers map[string]string // fingerprint -> target
}

// Connect marks a volunteer connected.
func (s *Scheduler) Connect(name string, r Registration, now time.Time) {
	i := s.index(name)
	h := s.info[i]
	h.Connected = true
	h.Addr = r.Addr
	h.Compilers = r.Compilers
	if r.CPUs > 0 && h.CPUs == 0 {
		h.CPUs = r.CPUs
	}
	h.offered = r.Slots
	h.Slots = h.effectiveSlots()
	s.refresh(i, now)
}

// Disconnect marks a host gone and returns its leases, now revoked.
func (s *Scheduler) Disconnect(name string, now time.Time) []lease.Lease {
	return s.takeOut(name, now, func(h *Host) { h.Connected = false })
}

// Load is a volunteer's periodic report.
type Load struct {
	Load1, Load5, Load15 float64
	Available            bool
	Reason               string
	// Own1 is the 1-minute load average of the host's own dcc jobs, if the
	// volunteer reports it (OwnKnown); the foreign load is then
	// Load1 − Own1 instead of Load1 − Busy (see tiering.Host.OwnLoad).
	Own1     float64
	OwnKnown bool
}

// UpdateLoad records a host's load and availability.
func (s *Scheduler) UpdateLoad(name string, l Load, now time.Time) {
	i, ok := s.byName[name]
	if !ok {
		return
	}
	h := s.info[i]
	h.Load1, h.Load5, h.Load15 = sane(l.Load1), sane(l.Load5), sane(l.Load15)
	h.Available = l.Available
	h.availNote = l.Reason
	s.refresh(i, now)
}

// sane makes a reported load safe to compare: a NaN, infinite or negative
// figure is treated as an overloaded host (fail closed), not an idle one.
func sane(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || x > 1e6 {
		return 1e6
	}
	return x
}

// SetAdmin sets an admin drain or block on a host.
func (s *Scheduler) SetAdmin(name string, drain, block *bool, reason string, now time.Time) bool {
	i, ok := s.byName[name]
	if !ok {
		return false
	}
	h := s.info[i]
	if drain != nil {
		h.AdminDrain = *drain
		h.drainNote = reason
	}
	if block != nil {
		h.AdminBlock = *block
		h.blockedUntil = time.Time{}
		h.blockNote = reason
		if !*block {
			h.mismatch = nil // the admin's word clears the users' evidence
		}
	}
	s.refresh(i, now)
	return true
}

// refresh recomputes a host's derived state: its State from connection,
// farm membership, admin flags, availability and health; then its tier.
func (s *Scheduler) refresh(i int, now time.Time) {
	h := s.info[i]
	switch {
	case !h.Connected || !h.InFarm:
		h.State = tiering.Gone
	case h.AdminBlock || (!h.blockedUntil.IsZero() && now.Before(h.blockedUntil)):
		h.State = tiering.Blocked
	case h.AdminDrain || !h.Available:
		h.State = tiering.Draining
	case h.onProbation:
		h.State = tiering.Probation
	default:
		h.State = tiering.Healthy
	}
	h.Note = h.note()
	h.Busy = s.leases.CountOnHost(h.Name)
	s.hosts[i] = h.Host
	s.verdict[i] = tiering.Classify(&s.hosts[i], s.cfg.Tiering)
	h.verdict = s.verdict[i]
	f, u := 0, 0
	if s.verdict[i].Tier > 0 {
		f, u = s.hosts[i].Free(), s.hosts[i].Slots
	}
	s.free += f - s.hostFree[i]
	s.hostFree[i] = f
	s.usable += u - s.hostUsable[i]
	s.hostUsable[i] = u
}

// note says why a host is blocked or draining, from whoever decided it
// (an admin, its health record, the volunteer or an outside monitor), so
// that one source's report does not erase another's reason.
func (h *Host) note() string {
	var why []string
	switch h.State {
	case tiering.Blocked:
		if h.AdminBlock {
			why = append(why, h.blockNote)
		} else {
			why = append(why, cmp.Or(h.blockWhy, "blocked after repeated farm failures"))
		}
	case tiering.Draining:
		if h.AdminDrain {
			why = append(why, h.drainNote)
		}
		if !h.Available {
			why = append(why, h.availNote)
		}
	}
	out := ""
	for _, w := range why {
		if w != "" && out != "" {
			out += "; "
		}
		out += w
	}
	return out
}

// Verdict returns a host's tier and reason.
func (s *Scheduler) Verdict(name string) (tiering.Verdict, bool) {
	i, ok := s.byName[name]
	if !ok {
		return tiering.Verdict{}, false
	}
	return s.verdict[i], true
}

func (s *Scheduler) offers(i int, fp string) bool {
	h := s.info[i]
	t, ok := h.Compilers[fp]
	if !ok {
		return false
	}
	return len(h.Targets) == 0 || slices.Contains(h.Targets, t)
}

// Compatible reports whether any usable host offers the compiler fp.
func (s *Scheduler) Compatible(fp string) bool {
	_, usable := s.Offered(fp, "")
	return usable > 0
}

// Offered counts the connected hosts other than except that offer the
// compiler fp, and how many of them are usable now (tier > 0), so a
// refusal can say which.
func (s *Scheduler) Offered(fp, except string) (offered, usable int) {
	return s.OfferedTo(Request{Fingerprint: fp, Avoid: except})
}

// OfferedTo is Offered for request r: the hosts that may serve it (its
// compiler, its user, its kind of source), other than the one it avoids.
func (s *Scheduler) OfferedTo(r Request) (offered, usable int) {
	for i, h := range s.info {
		if !h.Connected || !h.InFarm || !s.offers(i, r.Fingerprint) || h.Name == r.Avoid || !h.serves(r.User, r.NeedsDCC) {
			continue
		}
		offered++
		if s.verdict[i].Tier > 0 {
			usable++
		}
	}
	return offered, usable
}

// Enqueue adds a request to the waiting queue. Call Dispatch to place it.
func (s *Scheduler) Enqueue(r Request, now time.Time) {
	s.noteBusy(r.User, now)
	s.reqs[r.ID] = r
	key := r.Fingerprint
	// The queue skips a key that found no host: requests a host may serve
	// differently (avoiding a host, needing a dcc volunteer, from a user a
	// host is restricted to) get keys of their own.
	if r.Avoid != "" {
		key += "\x00avoid\x00" + r.Avoid
	}
	if r.NeedsDCC {
		key += "\x00dcc"
	}
	if s.restricted > 0 {
		key += "\x00user\x00" + r.User
	}
	s.queue.Push(fairshare.Request{ID: r.ID, User: r.User, Key: key, Arrived: now, Deadline: r.Deadline})
}

// Cancel drops a waiting request (its client left).
func (s *Scheduler) Cancel(id uint64) bool {
	delete(s.reqs, id)
	return s.queue.Remove(id)
}

func (s *Scheduler) score(user string) float64 {
	w := s.ledger.Weight(user)
	if f, ok := s.seniority[user]; ok {
		w *= f
	}
	return s.cfg.Policy.Score(s.running[user], s.ledger.Usage(user, s.scoreNow), s.meanUsage, w)
}

func (s *Scheduler) prepareScores(now time.Time) {
	s.scoreNow = now
	var sum float64
	n := 0
	s.queue.EachUser(func(u string, _ int) {
		sum += s.ledger.Usage(u, now)
		n++
	})
	s.meanUsage = 0
	if n > 0 {
		s.meanUsage = sum / float64(n)
	}
	s.findBacklogged()
	s.rankSeniority()
}

func (s *Scheduler) eligible(i int) bool {
	h := s.info[i]
	return s.offers(i, s.key) && (s.avoid == "" || h.Name != s.avoid) && h.serves(s.user, s.needsDCC)
}

// serves reports whether the host's access rules let it serve user's job.
// user "" (asking in general) passes any user restriction.
func (h *Host) serves(user string, needsDCC bool) bool {
	if needsDCC && h.Distcc {
		return false
	}
	return len(h.Users) == 0 || user == "" || slices.Contains(h.Users, user)
}

func (s *Scheduler) placeable(r *fairshare.Request) bool {
	req := s.reqs[r.ID]
	s.key, s.avoid, s.user, s.needsDCC = req.Fingerprint, req.Avoid, req.User, req.NeedsDCC
	s.chosen = s.chooser.Choose(s.hosts, s.verdict, s.eligibleFn)
	return s.chosen >= 0
}

// Dispatch places as many waiting requests as free slots allow, in fair
// order, and returns the grants. The returned slice is reused by the next
// call to Dispatch: use it before calling again.
func (s *Scheduler) Dispatch(now time.Time) []Grant {
	s.grants = s.grants[:0]
	if s.queue.Len() == 0 || s.free <= 0 {
		return s.grants
	}
	s.prepareScores(now)
	out := s.grants
	for s.free > 0 {
		fr, ok := s.queue.Next(s.scoreFn, s.placeableFn)
		if !ok {
			break
		}
		chosen := s.chosen
		speed := s.speedOf(chosen)
		r := s.reqs[fr.ID]
		delete(s.reqs, fr.ID)
		h := s.info[chosen]
		l := s.leases.Grant(lease.Lease{
			User: r.User, Host: h.Name, Holder: r.Holder, Power: h.Power,
			Tier: s.verdict[chosen].Tier, Granted: now, Expires: now.Add(s.cfg.LeaseTTL), File: r.File,
		})
		s.running[r.User] += h.Power
		s.count[r.User]++
		s.refresh(chosen, now)
		out = append(out, Grant{Request: r.ID, Lease: *l, Wait: now.Sub(fr.Arrived), Speed: speed})
	}
	s.grants = out
	return out
}

// Adopt records a lease that a volunteer reports running after a broker
// restart. It returns false if the lease is already known.
func (s *Scheduler) Adopt(l lease.Lease, now time.Time) bool {
	if _, ok := s.leases.Get(l.ID); ok {
		return false
	}
	i, ok := s.byName[l.Host]
	if !ok {
		return false
	}
	l.Power = s.info[i].Power
	l.Holder = 0
	if l.Expires.Before(now.Add(s.cfg.LeaseTTL)) {
		l.Expires = now.Add(s.cfg.LeaseTTL)
	}
	s.leases.Grant(l)
	s.running[l.User] += l.Power
	s.count[l.User]++
	s.refresh(i, now)
	return true
}

// KeepAlive renews the leases among ids that run on host and have no
// holder (adopted after a restart), on the word of the host that runs
// their jobs. Leases with a holder are renewed by it alone, so that a
// frozen client still loses its lease. It returns how many it renewed.
func (s *Scheduler) KeepAlive(host string, ids []lease.ID, now time.Time) int {
	n := 0
	for _, id := range ids {
		if l, ok := s.leases.Get(id); ok && l.Host == host && l.Holder == 0 && s.leases.Renew(id, now.Add(s.cfg.LeaseTTL)) {
			n++
		}
	}
	return n
}

// Renew extends a lease by the TTL.
func (s *Scheduler) Renew(id lease.ID, now time.Time) bool {
	return s.leases.Renew(id, now.Add(s.cfg.LeaseTTL))
}

// Release ends a lease, charging its user for the time it ran.
func (s *Scheduler) Release(id lease.ID, now time.Time) (lease.Lease, bool) {
	l, ok := s.leases.Release(id)
	if !ok {
		return l, false
	}
	s.settle(l, now)
	d := now.Sub(l.Granted)
	s.leasesSeen++
	w := min(s.leasesSeen, 8)
	s.meanLease = (s.meanLease*time.Duration(w-1) + d) / time.Duration(w)
	return l, true
}

func (s *Scheduler) settle(l lease.Lease, now time.Time) {
	s.ledger.Charge(l.User, now.Sub(l.Granted).Seconds()*l.Power, now)
	s.running[l.User] -= l.Power
	s.count[l.User]--
	if s.count[l.User] <= 0 {
		delete(s.running, l.User)
		delete(s.count, l.User)
	}
	if i, ok := s.byName[l.Host]; ok {
		s.refresh(i, now)
	}
}

// ReportOutcome records how a job on host went, for host health and its
// job count. Farm failures (not compile errors) move a host to probation
// and then block it; a completed job (compiled, or the user's compile
// error) counts as done and as a success.
func (s *Scheduler) ReportOutcome(host string, farmFailure bool, now time.Time) {
	i, ok := s.byName[host]
	if !ok {
		return
	}
	h := s.info[i]
	if farmFailure {
		h.Failures++
		h.failRun++
		h.okRun = 0
		if s.cfg.ProbationAfter > 0 && h.failRun >= s.cfg.ProbationAfter {
			h.onProbation = true
		}
		if s.cfg.BlockAfter > 0 && h.failRun >= s.cfg.BlockAfter {
			h.blockedUntil = now.Add(s.cfg.BlockFor)
			h.blockWhy = ""
			h.failRun = 0
			h.onProbation = true // back on probation when the block ends
		}
	} else {
		h.JobsDone++
		h.okRun++
		h.failRun = 0
		if h.onProbation && h.okRun >= s.cfg.RecoverAfter {
			h.onProbation = false
		}
	}
	s.refresh(i, now)
}

// ReportMismatch records that reporter found an object from host that
// differed from its own local compile (DCC_VERIFY). It returns how many
// distinct reporters the host has within MismatchWindow and whether this
// report counted (a reporter counts once per window). Enough of them put
// the host on probation, then block it; a block's reason names them.
func (s *Scheduler) ReportMismatch(host, reporter string, now time.Time) (reporters int, counted bool) {
	i, ok := s.byName[host]
	if !ok {
		return 0, false
	}
	h := s.info[i]
	if h.mismatch == nil {
		h.mismatch = make(map[string]time.Time)
	}
	for r, at := range h.mismatch {
		if now.Sub(at) >= s.cfg.MismatchWindow {
			delete(h.mismatch, r)
		}
	}
	if _, seen := h.mismatch[reporter]; !seen {
		counted = true
		h.mismatch[reporter] = now
	}
	n := len(h.mismatch)
	if s.cfg.MismatchProbation > 0 && n >= s.cfg.MismatchProbation {
		h.onProbation = true
		h.okRun = 0
	}
	if s.cfg.MismatchBlock > 0 && n >= s.cfg.MismatchBlock && counted {
		h.blockedUntil = now.Add(s.cfg.BlockFor)
		h.blockWhy = fmt.Sprintf("objects differed from local compiles for %d users (DCC_VERIFY)", n)
	}
	s.refresh(i, now)
	return n, counted
}

func (s *Scheduler) revokeHost(name string, now time.Time) []lease.Lease {
	var out []lease.Lease
	for _, id := range s.leases.OfHost(name) {
		if l, ok := s.leases.Release(id); ok {
			s.settle(l, now)
			out = append(out, l)
		}
	}
	return out
}

// ReleaseHolder releases every lease of a client session that ended.
func (s *Scheduler) ReleaseHolder(holder uint64, now time.Time) []lease.Lease {
	var out []lease.Lease
	for _, id := range s.leases.OfHolder(holder) {
		if l, ok := s.Release(id, now); ok {
			out = append(out, l)
		}
	}
	return out
}

// Tick expires leases whose TTL ran out and waiting requests whose
// deadline passed, and lifts blocks whose time is up.
func (s *Scheduler) Tick(now time.Time) (expired []lease.Lease, timedOut []Request) {
	for _, l := range s.leases.Expired(now, 0) {
		s.settle(l, now)
		expired = append(expired, l)
	}
	for _, fr := range s.queue.Expire(now) {
		timedOut = append(timedOut, s.reqs[fr.ID])
		delete(s.reqs, fr.ID)
	}
	for i, h := range s.info {
		if !h.blockedUntil.IsZero() && !now.Before(h.blockedUntil) {
			h.blockedUntil = time.Time{}
			s.refresh(i, now)
		}
	}
	return expired, timedOut
}

// EstimateWait estimates how long request id will wait. Two models, the
// larger wins:
//   - queue position: the requests served before it (Queue.Position),
//     spread over the slots that could serve it, times the mean lease;
//   - own turnover: a user already holding at least an equal share of
//     those slots gets new slots about as fast as its own leases end
//     (others' requests keep arriving ahead of it), so its request at
//     per-user index i waits about (i+1) × mean lease / its leases.
func (s *Scheduler) EstimateWait(id uint64, now time.Time) (position int, est time.Duration) {
	r, ok := s.reqs[id]
	if !ok {
		return 0, 0
	}
	s.prepareScores(now)
	position = s.queue.Position(id, s.scoreFn) + 1
	slots := s.usableSlots(r.Fingerprint)
	if slots == 0 {
		return position, time.Hour
	}
	est = time.Duration(float64(position) / float64(slots) * float64(s.meanLease))
	if n := s.count[r.User]; n > 0 {
		if n*s.activeUsers() >= slots {
			own := time.Duration(float64(s.queue.Index(id)+1) / float64(n) * float64(s.meanLease))
			est = max(est, own)
		}
	}
	return position, est
}

// Active reports whether user holds a lease or waits for one.
func (s *Scheduler) Active(user string) bool {
	return s.count[user] > 0 || s.queue.Waiting(user) > 0
}

// UserRunning returns the number of leases and the power a user holds.
func (s *Scheduler) UserRunning(user string) (int, float64) { return s.count[user], s.running[user] }

// RunningUsers lists users holding leases.
func (s *Scheduler) RunningUsers() []string {
	out := make([]string, 0, len(s.count))
	for u := range s.count {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// MeanLease is the running mean lease duration.
func (s *Scheduler) MeanLease() time.Duration { return s.meanLease }
