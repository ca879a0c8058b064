package timeline

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// t0 is the synthetic builds' start.
var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// nastyNames are sources that would break a page that did not escape.
var nastyNames = []string{
	`src/<script>alert(1)</script>.c`,
	`src/a"b'c&d.c`,
	`src/</title><rect class="bar" data-file="forged"/>x.c`,
	"src/ctl\x01\x1b[31mred.c",
	"src/bad-utf8-\xff\xfe.c",
	`src/ünïcødé ✓.cc`,
}

type synthHost struct {
	name  string
	slots []time.Time // when each slot frees
}

// synthBuild simulates make -jpar over n files: each make slot runs one
// dcc job after another with a small gap; a job compiles remotely (most),
// locally, from the cache, or falls back to local after a failed remote
// attempt. Farm slots are tracked so lease waits are real, and now and
// then a job's send starts a few microseconds before the previous job on
// the same reported slot returned, as client-side timestamps do.
func synthBuild(n, par int, seed uint64) *Build {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hosts := []*synthHost{{name: "sun1", slots: make([]time.Time, 4)}, {name: "desk12", slots: make([]time.Time, 2)},
		{name: "big<b>&\"3\"", slots: make([]time.Time, 3)}}
	for _, h := range hosts {
		for i := range h.slots {
			h.slots[i] = t0
		}
	}
	makeSlots := make([]time.Time, par)
	for i := range makeSlots {
		makeSlots[i] = t0.Add(ms(2))
	}
	b := &Build{ID: fmt.Sprintf("synth-%d", seed), Command: []string{"make", fmt.Sprintf("-j%d", par)}, Dir: "/src/proj", Start: t0}
	for i := 0; i < n; i++ {
		// The make slot that frees first takes the next file.
		ms0 := 0
		for k := range makeSlots {
			if makeSlots[k].Before(makeSlots[ms0]) {
				ms0 = k
			}
		}
		now := makeSlots[ms0].Add(time.Duration(rng.IntN(300)) * time.Microsecond)
		src := fmt.Sprintf("src/dir%d/file%04d.c", i%7, i)
		if i < len(nastyNames) {
			src = nastyNames[i]
		}
		j := Job{Source: src, Output: src + ".o", Slot: -1}
		add := func(name string, d time.Duration) {
			j.Phases = append(j.Phases, Phase{Name: name, Start: now, End: now.Add(d)})
			now = now.Add(d)
		}
		remote := func(h *synthHost, slot int, host string) {
			// Wait for the slot. Now and then the grant, as timed here,
			// comes a few microseconds before the previous job on that
			// slot was seen to return: client-side timestamps.
			free := h.slots[slot]
			if rng.IntN(4) == 0 {
				free = free.Add(-5 * time.Microsecond)
			}
			if free.After(now) {
				add(PhaseLeaseWait, free.Sub(now))
			} else {
				add(PhaseLeaseWait, time.Duration(50+rng.IntN(500))*time.Microsecond)
			}
			add(PhaseSend, ms(0.2+rng.Float64()))
			j.Phases[len(j.Phases)-1].Host = host
			add(PhaseRemoteCompile, ms(10+rng.Float64()*60))
			j.Phases[len(j.Phases)-1].Host = host
			add(PhaseReturn, ms(0.1+rng.Float64()))
			j.Phases[len(j.Phases)-1].Host = host
			h.slots[slot] = now
		}
		pick := func() (*synthHost, int) {
			h := hosts[rng.IntN(len(hosts))]
			best := 0
			for s := range h.slots {
				if h.slots[s].Before(h.slots[best]) {
					best = s
				}
			}
			return h, best
		}
		switch kind := rng.IntN(20); {
		case kind < 14: // remote
			j.Where = WhereRemote
			add(PhasePreprocess, ms(2+rng.Float64()*8))
			h, s := pick()
			remote(h, s, "")
			j.Host, j.Slot = h.name, s
			add(PhaseWrite, ms(0.1+rng.Float64()/2))
			j.BytesOut, j.BytesIn = int64(50_000+rng.IntN(500_000)), int64(5_000+rng.IntN(100_000))
			j.WaitEstimate = ms(rng.Float64() * 20)
		case kind < 16: // local: not distributable
			j.Where, j.LocalReason = WhereLocal, "links"
			add(PhaseLocalCompile, ms(20+rng.Float64()*80))
		case kind < 18: // cache
			j.Where = WhereCache
			add(PhasePreprocess, ms(2+rng.Float64()*8))
			add(PhaseCacheLookup, ms(0.3))
			add(PhaseCacheHit, ms(0.5+rng.Float64()))
			add(PhaseWrite, ms(0.2))
		default: // remote attempt on one host fails, then local
			j.Where, j.LocalReason = WhereLocal, "host failure"
			add(PhasePreprocess, ms(2+rng.Float64()*8))
			h, s := pick()
			remote(h, s, h.name)
			add(PhaseLocalCompile, ms(20+rng.Float64()*60))
			add(PhaseWrite, ms(0.2))
		}
		if rng.IntN(25) == 0 {
			j.Exit = 1
		}
		b.Jobs = append(b.Jobs, j)
		makeSlots[ms0] = now
		if now.After(b.End) {
			b.End = now
		}
	}
	return b
}
