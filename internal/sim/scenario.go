package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
)

// Scenario is a workload: a farm and the builds its users run. It is read
// from JSON (see scenarios/ and docs/scheduling.md).
type Scenario struct {
	Name  string `json:"name,omitempty"`
	Seed  uint64 `json:"seed"`
	Hosts []Host `json:"hosts"`
	Users []User `json:"users"`
	// ShareWindow, if set, limits the share and Jain accounting to
	// contended intervals inside [FromS, ToS) (to compare with a live run
	// measured over a window).
	ShareWindow *Interval `json:"share_window,omitempty"`

	// bounds caches LowerBound by the scenario's content (its JSON, the
	// seed included), so that comparing policies computes it once and a
	// scenario changed in place is not served a stale bound.
	bounds map[string]float64
}

// lowerBound is LowerBound(sc), cached.
func (sc *Scenario) lowerBound() float64 {
	key, err := json.Marshal(sc)
	if err != nil {
		return LowerBound(sc)
	}
	if b, ok := sc.bounds[string(key)]; ok {
		return b
	}
	if sc.bounds == nil {
		sc.bounds = map[string]float64{}
	}
	b := LowerBound(sc)
	sc.bounds[string(key)] = b
	return b
}

// Host is a farm host.
type Host struct {
	Name  string  `json:"name"`
	CPUs  int     `json:"cpus"`
	Power float64 `json:"power"`
	Slots int     `json:"slots"`
	// Background is runnable load that is not ours (the owner's work).
	Background []Interval `json:"background,omitempty"`
	// Away lists times when the host is gone (owner back, crash): jobs
	// running there are lost and redone.
	Away []Interval `json:"away,omitempty"`
}

// Interval is [FromS, ToS) in virtual seconds, with a load for Background.
type Interval struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
	Load  float64 `json:"load,omitempty"`
}

// User is an engineer: a weight, a local machine and builds.
type User struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight,omitempty"` // default 1
	// LocalSlots is how many compiles the user's machine runs at once
	// (distcc's localslots); LocalPower its speed. Defaults 2 and 1.
	LocalSlots *int     `json:"local_slots,omitempty"`
	LocalPower *float64 `json:"local_power,omitempty"`
	Builds     []Build  `json:"builds"`
}

// Build is one make -jN run.
type Build struct {
	StartS   float64 `json:"start_s"`
	Jobs     int     `json:"jobs"`
	Parallel int     `json:"parallel"`
	JobS     Dist    `json:"job_s"`
}

// Dist is a job-duration distribution: compile seconds on a power-1 host
// with a free CPU. Durations are log-normal with this mean and standard
// deviation (sd 0: every job takes mean).
type Dist struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// Default local machine of a user.
const (
	DefaultLocalSlots = 2
	DefaultLocalPower = 1.0
)

func (u *User) localSlots() int {
	if u.LocalSlots == nil {
		return DefaultLocalSlots
	}
	return *u.LocalSlots
}

func (u *User) localPower() float64 {
	if u.LocalPower == nil || *u.LocalPower <= 0 {
		return DefaultLocalPower
	}
	return *u.LocalPower
}

func (u *User) weight() float64 {
	if u.Weight <= 0 {
		return 1
	}
	return u.Weight
}

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes and validates a scenario.
func Parse(b []byte) (*Scenario, error) {
	var sc Scenario
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Validate checks a scenario for values the simulator cannot run.
func (sc *Scenario) Validate() error {
	if len(sc.Hosts) == 0 {
		return errors.New("scenario: no hosts")
	}
	if len(sc.Users) == 0 {
		return errors.New("scenario: no users")
	}
	names := map[string]bool{}
	for _, h := range sc.Hosts {
		if h.Name == "" || names[h.Name] {
			return fmt.Errorf("scenario: host name %q empty or repeated", h.Name)
		}
		names[h.Name] = true
		if h.CPUs < 1 || h.Slots < 1 || h.Power <= 0 {
			return fmt.Errorf("scenario: host %s needs cpus >= 1, slots >= 1, power > 0", h.Name)
		}
		for _, iv := range append(append([]Interval{}, h.Background...), h.Away...) {
			if iv.ToS <= iv.FromS || iv.FromS < 0 || iv.Load < 0 {
				return fmt.Errorf("scenario: host %s: bad interval %+v", h.Name, iv)
			}
		}
	}
	unames := map[string]bool{}
	for _, u := range sc.Users {
		if u.Name == "" || unames[u.Name] {
			return fmt.Errorf("scenario: user name %q empty or repeated", u.Name)
		}
		unames[u.Name] = true
		if u.localSlots() < 0 {
			return fmt.Errorf("scenario: user %s: local_slots < 0", u.Name)
		}
		for _, b := range u.Builds {
			if b.Jobs < 1 || b.Parallel < 1 || b.JobS.Mean <= 0 || b.JobS.SD < 0 || b.StartS < 0 {
				return fmt.Errorf("scenario: user %s: build needs jobs >= 1, parallel >= 1, job_s.mean > 0, start_s >= 0", u.Name)
			}
		}
	}
	return nil
}

// durations draws every job's work from the seed, build by build, so that
// every policy replays the same jobs.
func (sc *Scenario) durations() [][][]float64 {
	rng := rand.New(rand.NewPCG(sc.Seed, 0xdcc))
	out := make([][][]float64, len(sc.Users))
	for ui, u := range sc.Users {
		out[ui] = make([][]float64, len(u.Builds))
		for bi, b := range u.Builds {
			ws := make([]float64, b.Jobs)
			for i := range ws {
				ws[i] = b.JobS.draw(rng)
			}
			out[ui][bi] = ws
		}
	}
	return out
}

func (d Dist) draw(rng *rand.Rand) float64 {
	if d.SD <= 0 {
		return d.Mean
	}
	s2 := math.Log1p(d.SD * d.SD / (d.Mean * d.Mean))
	mu := math.Log(d.Mean) - s2/2
	return math.Exp(mu + math.Sqrt(s2)*rng.NormFloat64())
}
