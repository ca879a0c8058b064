package sim

// Random models distcc with a randomized host list: every client knows
// only its own jobs. For each job it shuffles the hosts that are up and
// takes the first where it runs fewer than slots jobs of its own, so
// several clients pile onto the same host; with none left it compiles
// locally, and with no local slot either the job waits for one of the
// client's own jobs to end (distcc's lock files).
type Random struct {
	s     *Sim
	mine  [][]int  // mine[user][host]: the user's jobs on host
	wait  [][]*Job // per user, FIFO
	order []int
}

// NewRandom returns the distcc model.
func NewRandom() *Random { return &Random{} }

func (p *Random) Name() string { return "random" }

func (p *Random) Start(s *Sim) {
	p.s = s
	p.mine = make([][]int, len(s.Users()))
	for i := range p.mine {
		p.mine[i] = make([]int, len(s.Hosts()))
	}
	p.wait = make([][]*Job, len(s.Users()))
}

func (p *Random) try(j *Job) bool {
	u := j.User.Index
	p.order = p.order[:0]
	for i, h := range p.s.Hosts() {
		if h.Present {
			p.order = append(p.order, i)
		}
	}
	rng := p.s.Rand()
	rng.Shuffle(len(p.order), func(a, b int) { p.order[a], p.order[b] = p.order[b], p.order[a] })
	for _, i := range p.order {
		h := p.s.Hosts()[i]
		if p.mine[u][i] < h.Spec.Slots {
			p.mine[u][i]++
			p.s.StartRemote(j, h)
			return true
		}
	}
	return p.s.TryLocal(j)
}

func (p *Random) Submit(j *Job) {
	u := j.User.Index
	if len(p.wait[u]) > 0 || !p.try(j) {
		p.wait[u] = append(p.wait[u], j)
	}
}

func (p *Random) Done(j *Job) {
	if j.Host != nil {
		p.mine[j.User.Index][j.Host.Index]--
	}
	p.drain(j.User.Index)
}

func (p *Random) drain(u int) {
	for len(p.wait[u]) > 0 && p.try(p.wait[u][0]) {
		p.wait[u] = p.wait[u][1:]
	}
}

func (p *Random) HostDown(h *HostState, lost []*Job) {
	for _, j := range lost {
		p.mine[j.User.Index][h.Index]--
	}
}

func (p *Random) HostUp(h *HostState) {
	for u := range p.wait {
		p.drain(u)
	}
}

func (p *Random) Tick() {}
