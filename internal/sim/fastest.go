package sim

// Fastest models the icecream scheduler: it sees every host and every job
// and gives a request the free host (fewer jobs than slots) where the job
// will run fastest: power × min(1, cpus / (foreign load + our jobs + 1)),
// foreign load as last reported (every second). With no free host the
// client compiles locally if it has a free local slot; otherwise the
// request waits, and waiting requests are served round-robin by client
// machine (one machine per user here).
type Fastest struct {
	s       *Sim
	foreign []float64
	wait    [][]*Job
	rr      int
	waiting int
}

// NewFastest returns the icecream model.
func NewFastest() *Fastest { return &Fastest{} }

func (p *Fastest) Name() string { return "fastest" }

func (p *Fastest) Start(s *Sim) {
	p.s = s
	p.foreign = make([]float64, len(s.Hosts()))
	p.wait = make([][]*Job, len(s.Users()))
	p.Tick()
}

func (p *Fastest) pick() *HostState {
	var best *HostState
	bestSpeed := 0.0
	for i, h := range p.s.Hosts() {
		if !h.Present || h.Ours() >= h.Spec.Slots {
			continue
		}
		l := p.foreign[i] + float64(h.Ours()) + 1
		sp := h.Spec.Power
		if c := float64(h.Spec.CPUs); l > c {
			sp *= c / l
		}
		if sp > bestSpeed {
			best, bestSpeed = h, sp
		}
	}
	return best
}

func (p *Fastest) Submit(j *Job) {
	if p.waiting == 0 {
		if h := p.pick(); h != nil {
			p.s.StartRemote(j, h)
			return
		}
	}
	if p.s.TryLocal(j) {
		return
	}
	p.wait[j.User.Index] = append(p.wait[j.User.Index], j)
	p.waiting++
}

// serve hands free hosts to waiting requests, one user at a time in turn.
func (p *Fastest) serve() {
	n := len(p.wait)
	for p.waiting > 0 {
		h := p.pick()
		if h == nil {
			return
		}
		for k := 0; k < n; k++ {
			u := (p.rr + k) % n
			if len(p.wait[u]) > 0 {
				j := p.wait[u][0]
				p.wait[u] = p.wait[u][1:]
				p.waiting--
				p.rr = (u + 1) % n
				p.s.StartRemote(j, h)
				break
			}
		}
	}
}

func (p *Fastest) Done(j *Job) {
	p.serve()
	// A freed local slot takes the user's oldest waiting job.
	u := j.User.Index
	if len(p.wait[u]) > 0 && j.User.LocalFree() {
		w := p.wait[u][0]
		p.wait[u] = p.wait[u][1:]
		p.waiting--
		p.s.StartLocal(w)
	}
}

func (p *Fastest) HostDown(h *HostState, lost []*Job) {}

func (p *Fastest) HostUp(h *HostState) { p.serve() }

func (p *Fastest) Tick() {
	for i, h := range p.s.Hosts() {
		l1, _, _ := h.LoadAvg()
		f := l1 - h.OwnAvg1()
		if f < 0 {
			f = 0
		}
		p.foreign[i] = f
	}
	p.serve()
}
