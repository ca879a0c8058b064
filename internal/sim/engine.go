// Package sim replays a compile-farm workload on a virtual clock, so that
// scheduling policies can be compared deterministically: a discrete-event
// engine (one heap of timed events), a processor-sharing model of each
// host, clients that keep their build's -j jobs in flight, and one Policy
// per peer (random: distcc, dmucs: DMUCS, fastest: icecream, dcc: ours).
// The dcc policy drives internal/scheduler, the code the live broker runs.
//
// Host model: a job is work in seconds on a power-1 host with a free CPU.
// A host with c CPUs and power p whose runnable load is n of our jobs plus
// b background processes runs each of our jobs at p × min(1, c/(n+b)):
// whenever n or b changes, every job on the host is advanced to now and
// its finish time recomputed. A user's own machine runs each local job at
// its local power (local slots never exceed its CPUs).
package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Epoch is virtual time zero, for policies that need a time.Time.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// ReportEvery is how often volunteers report their load (virtual seconds).
const ReportEvery = 1.0

// Load-average time constants, as in Linux: 1, 5 and 15 minutes.
var loadTau = [3]float64{60, 300, 900}

// Policy decides where jobs run. The engine calls it on every event that
// can change a decision; the policy answers by calling Sim.StartRemote or
// Sim.StartLocal, now or later.
type Policy interface {
	Name() string
	// Start is called once before the first event.
	Start(s *Sim)
	// Submit: job j is ready to run (a new job or a lost job to redo).
	Submit(j *Job)
	// Done: j finished (remotely or locally); its slot is free again.
	Done(j *Job)
	// HostDown: h left; lost are the jobs that ran there (the engine
	// resubmits them after this call).
	HostDown(h *HostState, lost []*Job)
	// HostUp: h is back.
	HostUp(h *HostState)
	// Tick is called every ReportEvery seconds while work remains.
	Tick()
}

// Job is one compile job of a build.
type Job struct {
	ID      int
	User    *UserState
	Work    float64 // seconds on a power-1 host with a free CPU
	ReadyAt float64 // when this attempt became ready
	StartAt float64
	Host    *HostState // running remotely here; nil otherwise
	Local   bool       // running on the user's machine
	Attempt int
	// Tag is free for the policy (the dcc policy keeps its request/lease ID).
	Tag uint64

	build *buildState
	left  float64
	rate  float64
	idx   int // position in Host.jobs
}

// HostState is a host during a run.
type HostState struct {
	Index   int
	Spec    Host
	Present bool

	bg    float64
	away  int
	jobs  []*Job
	ver   uint64
	last  float64    // jobs' left is current as of last
	avg   [3]float64 // load averages of the runnable load
	own   [3]float64 // load averages of our jobs alone
	avgAt float64
}

// Ours is the number of our jobs running on h.
func (h *HostState) Ours() int { return len(h.jobs) }

// Runnable is the instantaneous runnable load: our jobs plus background.
func (h *HostState) Runnable() float64 { return float64(len(h.jobs)) + h.bg }

// Background is the current foreign runnable load.
func (h *HostState) Background() float64 { return h.bg }

// LoadAvg returns the 1, 5 and 15 minute load averages as of the last
// decay (the engine decays them at every report).
func (h *HostState) LoadAvg() (l1, l5, l15 float64) { return h.avg[0], h.avg[1], h.avg[2] }

// OwnAvg1 is the 1-minute average of our jobs alone on h.
func (h *HostState) OwnAvg1() float64 { return h.own[0] }

// JobRate is the speed a job on h would run at with n of our jobs there.
func (h *HostState) JobRate(n int) float64 {
	l := float64(n) + h.bg
	if l <= float64(h.Spec.CPUs) {
		return h.Spec.Power
	}
	return h.Spec.Power * float64(h.Spec.CPUs) / l
}

func (h *HostState) decay(now float64) {
	dt := now - h.avgAt
	if dt <= 0 {
		return
	}
	n := h.Runnable()
	o := float64(len(h.jobs))
	if !h.Present {
		n, o = 0, 0
	}
	for i, tau := range loadTau {
		f := math.Exp(-dt / tau)
		h.avg[i] = n + (h.avg[i]-n)*f
		h.own[i] = o + (h.own[i]-o)*f
	}
	h.avgAt = now
}

// UserState is a user during a run.
type UserState struct {
	Index      int
	Spec       User
	LocalSlots int
	LocalPower float64
	localBusy  int

	waiting    int     // jobs ready and not started
	remote     int     // jobs running remotely
	remoteRate float64 // sum of their rates
	builds     []*buildState
	waits      []float64
	// contended-interval accounting (see metrics.go)
	recvInt, fairInt, shareInt float64
}

// LocalFree reports whether the user's machine has a free local slot.
func (u *UserState) LocalFree() bool { return u.localBusy < u.LocalSlots }

// Name is the user's name.
func (u *UserState) Name() string { return u.Spec.Name }

// Weight is the user's share weight.
func (u *UserState) Weight() float64 { return u.Spec.weight() }

// MeanJob is the mean job work of the user's builds (what a client
// learns from its past compiles).
func (u *UserState) MeanJob() float64 {
	var s float64
	var n int
	for _, b := range u.Spec.Builds {
		s += b.JobS.Mean * float64(b.Jobs)
		n += b.Jobs
	}
	if n == 0 {
		return 1
	}
	return s / float64(n)
}

type buildState struct {
	user     *UserState
	spec     Build
	work     []float64
	next     int
	inflight int
	done     int
	finish   float64
	started  bool
}

type evKind uint8

const (
	evBuild evKind = iota
	evHost
	evLocal
	evAway
	evBack
	evBG
	evTick
)

type event struct {
	t    float64
	seq  uint64
	kind evKind
	host *HostState
	job  *Job
	b    *buildState
	ver  uint64
}

type eventHeap []event

func (q eventHeap) Len() int { return len(q) }
func (q eventHeap) Less(i, j int) bool {
	if q[i].t != q[j].t {
		return q[i].t < q[j].t
	}
	return q[i].seq < q[j].seq
}
func (q eventHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventHeap) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// Sim is one run of a scenario under a policy.
type Sim struct {
	sc     *Scenario
	policy Policy
	now    float64
	events eventHeap
	seq    uint64
	hosts  []*HostState
	users  []*UserState
	rng    *rand.Rand
	nextID int

	buildsLeft int
	local      int
	redone     int
	runTimes   []float64
	lastInt    float64
	contended  float64
	// scratch for water-filling
	wfIdx []int
	wfFS  []float64
	end   float64
}

// Now is the virtual time in seconds.
func (s *Sim) Now() float64 { return s.now }

// Time is the virtual time as a time.Time (Epoch + Now).
func (s *Sim) Time() time.Time { return Epoch.Add(time.Duration(s.now * float64(time.Second))) }

// Hosts lists the hosts, in scenario order.
func (s *Sim) Hosts() []*HostState { return s.hosts }

// Users lists the users, in scenario order.
func (s *Sim) Users() []*UserState { return s.users }

// Rand is the policy's random source, seeded from the scenario.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Seed is the scenario's seed.
func (s *Sim) Seed() uint64 { return s.sc.Seed }

func (s *Sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.events, e)
}

// StartRemote runs j on h now. h must be present.
func (s *Sim) StartRemote(j *Job, h *HostState) {
	if !h.Present {
		panic(fmt.Sprintf("sim: %s started on absent host %s", s.policy.Name(), h.Spec.Name))
	}
	if j.Host != nil || j.Local {
		panic("sim: job started twice")
	}
	s.started(j)
	h.decay(s.now)
	s.advance(h)
	j.Host = h
	j.idx = len(h.jobs)
	h.jobs = append(h.jobs, j)
	j.left = j.Work
	j.rate = 0
	j.User.remote++
	s.reschedule(h)
}

// TryLocal runs j on its user's machine if a local slot is free, and says
// whether it did: every policy's "compile locally" fallback.
func (s *Sim) TryLocal(j *Job) bool {
	if !j.User.LocalFree() {
		return false
	}
	s.StartLocal(j)
	return true
}

// StartLocal runs j on its user's machine now. A local slot must be free.
func (s *Sim) StartLocal(j *Job) {
	u := j.User
	if !u.LocalFree() {
		panic(fmt.Sprintf("sim: %s started a local job without a free local slot", s.policy.Name()))
	}
	if j.Host != nil || j.Local {
		panic("sim: job started twice")
	}
	s.started(j)
	u.localBusy++
	j.Local = true
	s.local++
	s.push(event{t: s.now + j.Work/u.LocalPower, kind: evLocal, job: j})
}

func (s *Sim) started(j *Job) {
	j.StartAt = s.now
	j.User.waiting--
	w := s.now - j.ReadyAt
	j.User.waits = append(j.User.waits, w)
}

func (s *Sim) advance(h *HostState) {
	dt := s.now - h.last
	if dt > 0 {
		for _, j := range h.jobs {
			j.left -= j.rate * dt
		}
	}
	h.last = s.now
}

func (s *Sim) reschedule(h *HostState) {
	h.ver++
	if len(h.jobs) == 0 {
		return
	}
	r := h.JobRate(len(h.jobs))
	tmin := math.Inf(1)
	for _, j := range h.jobs {
		j.User.remoteRate += r - j.rate
		j.rate = r
		if t := j.left / r; t < tmin {
			tmin = t
		}
	}
	if tmin < 0 {
		tmin = 0
	}
	s.push(event{t: s.now + tmin, kind: evHost, host: h, ver: h.ver})
}

func (s *Sim) removeFromHost(j *Job) {
	h := j.Host
	last := len(h.jobs) - 1
	h.jobs[j.idx] = h.jobs[last]
	h.jobs[j.idx].idx = j.idx
	h.jobs[last] = nil
	h.jobs = h.jobs[:last]
	j.User.remote--
	j.User.remoteRate -= j.rate
	j.rate = 0
}

func (s *Sim) submit(j *Job) {
	j.ReadyAt = s.now
	j.User.waiting++
	s.policy.Submit(j)
}

// fill makes ready as many of b's jobs as its -j allows.
func (s *Sim) fill(b *buildState) {
	for b.inflight < b.spec.Parallel && b.next < len(b.work) {
		j := &Job{ID: s.nextID, User: b.user, Work: b.work[b.next], build: b}
		s.nextID++
		b.next++
		b.inflight++
		s.submit(j)
	}
}

func (s *Sim) finished(j *Job) {
	s.runTimes = append(s.runTimes, s.now-j.StartAt)
	s.policy.Done(j)
	j.Host = nil
	b := j.build
	b.inflight--
	b.done++
	if b.done == len(b.work) {
		b.finish = s.now
		s.buildsLeft--
		s.end = s.now
		return
	}
	s.fill(b)
}

// Run replays sc under p and returns the measurements.
func Run(sc *Scenario, p Policy) *Result {
	s := &Sim{sc: sc, policy: p, rng: rand.New(rand.NewPCG(sc.Seed, 0x5eed))}
	for i, h := range sc.Hosts {
		hs := &HostState{Index: i, Spec: h, Present: true}
		s.hosts = append(s.hosts, hs)
		for _, iv := range h.Background {
			s.push(event{t: iv.FromS, kind: evBG, host: hs})
			s.push(event{t: iv.ToS, kind: evBG, host: hs})
		}
		for _, iv := range h.Away {
			s.push(event{t: iv.FromS, kind: evAway, host: hs})
			s.push(event{t: iv.ToS, kind: evBack, host: hs})
		}
		hs.bg = bgAt(h, 0)
		hs.avg = [3]float64{hs.bg, hs.bg, hs.bg}
	}
	work := sc.durations()
	for i, u := range sc.Users {
		us := &UserState{Index: i, Spec: u, LocalSlots: u.localSlots(), LocalPower: u.localPower()}
		s.users = append(s.users, us)
		for bi, b := range u.Builds {
			bs := &buildState{user: us, spec: b, work: work[i][bi]}
			us.builds = append(us.builds, bs)
			s.buildsLeft++
			s.push(event{t: b.StartS, kind: evBuild, b: bs})
		}
	}
	p.Start(s)
	s.push(event{t: 0, kind: evTick})
	for s.buildsLeft > 0 && len(s.events) > 0 {
		e := heap.Pop(&s.events).(event)
		if e.kind == evHost && e.ver != e.host.ver {
			continue
		}
		s.integrate(e.t)
		s.now = e.t
		switch e.kind {
		case evBuild:
			e.b.started = true
			s.fill(e.b)
		case evHost:
			h := e.host
			s.advance(h)
			h.decay(s.now)
			var done []*Job
			for i := 0; i < len(h.jobs); {
				j := h.jobs[i]
				if j.left <= 1e-9*(1+j.Work) {
					s.removeFromHost(j)
					done = append(done, j)
					continue
				}
				i++
			}
			s.reschedule(h)
			for _, j := range done {
				s.finished(j)
			}
		case evLocal:
			j := e.job
			j.User.localBusy--
			j.Local = false
			s.finished(j)
		case evBG:
			h := e.host
			h.decay(s.now)
			s.advance(h)
			h.bg = bgAt(h.Spec, s.now)
			s.reschedule(h)
		case evAway:
			h := e.host
			h.away++
			if h.away > 1 {
				continue
			}
			h.decay(s.now)
			s.advance(h)
			lost := append([]*Job(nil), h.jobs...)
			for _, j := range lost {
				s.removeFromHost(j)
				j.Host = nil
			}
			h.Present = false
			s.reschedule(h)
			s.policy.HostDown(h, lost)
			for _, j := range lost {
				s.redone++
				j.Attempt++
				s.submit(j)
			}
		case evBack:
			h := e.host
			h.away--
			if h.away > 0 {
				continue
			}
			h.decay(s.now)
			h.Present = true
			h.avg = [3]float64{h.bg, h.bg, h.bg}
			h.own = [3]float64{}
			s.policy.HostUp(h)
		case evTick:
			for _, h := range s.hosts {
				h.decay(s.now)
			}
			s.policy.Tick()
			if s.buildsLeft > 0 {
				s.push(event{t: s.now + ReportEvery, kind: evTick})
			}
		}
	}
	if s.buildsLeft > 0 {
		panic(fmt.Sprintf("sim: %s: %d builds never finished (a job was never started)", p.Name(), s.buildsLeft))
	}
	return s.result()
}

func bgAt(h Host, t float64) float64 {
	var l float64
	for _, iv := range h.Background {
		if iv.FromS <= t && t < iv.ToS {
			l += iv.Load
		}
	}
	return l
}

// presentSlots is the number of slots on hosts that are present.
func (s *Sim) presentSlots() int {
	n := 0
	for _, h := range s.hosts {
		if h.Present {
			n += h.Spec.Slots
		}
	}
	return n
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	i := int(math.Ceil(p*float64(len(c)))) - 1
	if i < 0 {
		i = 0
	}
	return c[i]
}
