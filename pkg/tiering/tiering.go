// Package tiering turns a host's static power, live load and status into a
// tier with a human-readable reason, and chooses the host for the next job:
// the best tier that has a free slot, spreading work within it.
//
// Tiers are integers, higher is better; tier 0 means "not used now". A
// host's tier starts at its power index (at least 1) and drops one step for
// probation and one for foreign load (load not caused by our jobs) above
// Config.Overload per CPU; foreign load above Config.Saturated, or a
// blocked, draining or gone status, puts it in tier 0. The package is pure:
// no clock, no goroutines, no I/O.
package tiering

import (
	"fmt"
	"math"
)

// State is a host's administrative and health status.
type State string

// Host states.
const (
	Healthy   State = "healthy"
	Probation State = "probation" // recent farm failures: fewer leases until it proves itself
	Blocked   State = "blocked"   // too many failures, or blocked by an admin
	Draining  State = "draining"  // finishing its jobs, taking no new ones
	Gone      State = "gone"      // not connected
)

// Host is the state of one host as the scheduler sees it.
type Host struct {
	Name   string
	CPUs   int
	Power  float64 // power index from the farm file; 1 = reference speed
	Slots  int     // most jobs it may run at once
	Busy   int     // leases running on it now
	Load1  float64 // reported load averages, including our own jobs
	Load5  float64
	Load15 float64
	State  State
	// OwnLoad is the part of Load1 caused by our jobs, averaged the same
	// way (a 1-minute load average of the host's dcc jobs), when the
	// volunteer reports it (OwnLoadKnown). Load1 lags behind the job
	// count, so Load1 − Busy misreads foreign load for about a minute
	// after our jobs start or end; Load1 − OwnLoad does not.
	OwnLoad      float64
	OwnLoadKnown bool
}

// Free is the number of slots not leased.
func (h *Host) Free() int {
	if h.Busy >= h.Slots {
		return 0
	}
	return h.Slots - h.Busy
}

// ForeignLoad is the load per CPU that is not caused by our jobs:
// (Load1 − OwnLoad)/CPUs when OwnLoad is known, else (Load1 − Busy)/CPUs.
func (h *Host) ForeignLoad() float64 {
	cpus := h.CPUs
	if cpus < 1 {
		cpus = 1
	}
	own := float64(h.Busy)
	if h.OwnLoadKnown {
		own = h.OwnLoad
	}
	f := h.Load1 - own
	if f < 0 {
		f = 0
	}
	return f / float64(cpus)
}

// Config holds the tiering thresholds.
type Config struct {
	// Overload is the foreign load per CPU above which a host drops one tier.
	Overload float64
	// Saturated is the foreign load per CPU above which a host gets no jobs.
	Saturated float64
}

// DefaultConfig returns the thresholds used when none are configured.
func DefaultConfig() Config { return Config{Overload: 0.9, Saturated: 2.0} }

// Verdict is a host's tier and why.
type Verdict struct {
	Tier   int
	Reason string
}

// BaseTier is the tier a healthy, unloaded host of this power gets.
func BaseTier(power float64) int {
	t := int(math.Floor(power))
	if t < 1 {
		t = 1
	}
	return t
}

// Classify computes the tier of h.
func Classify(h *Host, c Config) Verdict {
	switch h.State {
	case Blocked, Draining, Gone:
		return Verdict{0, string(h.State)}
	}
	if h.Slots <= 0 {
		return Verdict{0, "no slots"}
	}
	t := BaseTier(h.Power)
	reason := fmt.Sprintf("power %g", h.Power)
	if fl := h.ForeignLoad(); fl > c.Saturated {
		return Verdict{0, fmt.Sprintf("foreign load1/cpus %.2f > %.2f", fl, c.Saturated)}
	} else if fl > c.Overload {
		t--
		reason += fmt.Sprintf(", foreign load1/cpus %.2f > %.2f: -1", fl, c.Overload)
	}
	if h.State == Probation {
		t--
		reason += ", probation: -1"
	}
	if t < 1 {
		t = 1
	}
	return Verdict{t, reason}
}
