package sim

import "math/rand/v2"

// DMUCS models the DMUCS broker: hosts report load averages every 10 s
// (the load includes our compiles); a host's tier is its power index
// while load1/cpus < 0.9 or load5/cpus < 0.7, power − 1 while
// load15/cpus < 0.8, otherwise 0 (unused). A request gets a random free
// CPU (slot) from the highest non-empty tier. There is no queue: when no
// CPU is free the client compiles locally; when its local slots are busy
// too, the job waits in the client and asks again whenever a job ends.
type DMUCS struct {
	s      *Sim
	tier   []float64
	busy   []int
	wait   []*Job
	ticks  int
	choice []int
}

// DMUCSReportEvery is DMUCS's load-report period, in ReportEvery ticks.
const DMUCSReportEvery = 10

// NewDMUCS returns the DMUCS model.
func NewDMUCS() *DMUCS { return &DMUCS{} }

func (p *DMUCS) Name() string { return "dmucs" }

func (p *DMUCS) Start(s *Sim) {
	p.s = s
	p.tier = make([]float64, len(s.Hosts()))
	p.busy = make([]int, len(s.Hosts()))
	p.report()
}

func (p *DMUCS) report() {
	for i, h := range p.s.Hosts() {
		l1, l5, l15 := h.LoadAvg()
		c := float64(h.Spec.CPUs)
		switch {
		case !h.Present:
			p.tier[i] = 0
		case l1/c < 0.9 || l5/c < 0.7:
			p.tier[i] = h.Spec.Power
		case l15/c < 0.8:
			p.tier[i] = h.Spec.Power - 1
		default:
			p.tier[i] = 0
		}
	}
}

func (p *DMUCS) pick() *HostState {
	best := 0.0
	p.choice = p.choice[:0]
	for i, h := range p.s.Hosts() {
		if !h.Present || p.tier[i] <= 0 || p.busy[i] >= h.Spec.Slots || p.tier[i] < best {
			continue
		}
		if p.tier[i] > best {
			best = p.tier[i]
			p.choice = p.choice[:0]
		}
		p.choice = append(p.choice, i)
	}
	if len(p.choice) == 0 {
		return nil
	}
	return p.s.Hosts()[p.choice[randN(p.s.Rand(), len(p.choice))]]
}

func randN(r *rand.Rand, n int) int { return r.IntN(n) }

func (p *DMUCS) try(j *Job) bool {
	if h := p.pick(); h != nil {
		p.busy[h.Index]++
		p.s.StartRemote(j, h)
		return true
	}
	return p.s.TryLocal(j)
}

func (p *DMUCS) Submit(j *Job) {
	if !p.try(j) {
		p.wait = append(p.wait, j)
	}
}

func (p *DMUCS) retry() {
	keep := p.wait[:0]
	// Once no host has a free slot none will within this pass (starting
	// jobs locally frees none), so the rest only try their local slots.
	farmFull := false
	for _, j := range p.wait {
		if !farmFull {
			if h := p.pick(); h != nil {
				p.busy[h.Index]++
				p.s.StartRemote(j, h)
				continue
			}
			farmFull = true
		}
		if !p.s.TryLocal(j) {
			keep = append(keep, j)
		}
	}
	for i := len(keep); i < len(p.wait); i++ {
		p.wait[i] = nil
	}
	p.wait = keep
}

func (p *DMUCS) Done(j *Job) {
	if j.Host != nil {
		p.busy[j.Host.Index]--
	}
	p.retry()
}

func (p *DMUCS) HostDown(h *HostState, lost []*Job) {
	p.busy[h.Index] -= len(lost)
	p.tier[h.Index] = 0
}

func (p *DMUCS) HostUp(h *HostState) {}

func (p *DMUCS) Tick() {
	p.ticks++
	if p.ticks%DMUCSReportEvery == 0 {
		p.report()
		p.retry()
	}
}
