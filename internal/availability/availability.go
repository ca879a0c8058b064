// Package availability decides whether a volunteer's machine may take
// farm work right now, from rules in the volunteer's config: load not
// caused by farm jobs, whether the owner is at the keyboard, a weekly
// schedule, and a manual pause. Decide is pure; Probe gathers its inputs
// from the machine (or from files that stand in for the clock and the
// idle signal in tests).
package availability

import (
	"errors"
	"fmt"
	"time"
)

// Config is the [availability] section of a volunteer's config file.
type Config struct {
	// MaxForeignLoad is the load per CPU not caused by farm jobs above which
	// the host is unavailable (0: no limit).
	MaxForeignLoad float64 `toml:"max_foreign_load"`
	// OwnerIdle is how long the owner must have been idle (no keyboard or
	// mouse) before the host takes work, e.g. "10m" ("": not checked).
	OwnerIdle string `toml:"owner_idle"`
	// IdleSource says how to learn the owner's idle time: "auto" (logind's
	// IdleHint, else the X screensaver via xprintidle, else the newest access
	// time of /dev/input devices), "logind", "x11", "input", or
	// "file:PATH" (a file holding the idle time in seconds; for tests and
	// for sites with their own idle detector).
	IdleSource string `toml:"idle_source"`
	// Schedule lists windows when the host may be used, e.g.
	// "weekdays 19:00-07:00", "weekends all day", "mon,wed 12:00-13:00",
	// "daily 22:00-06:00" (empty: always).
	Schedule []string `toml:"schedule"`
	// Drain is what happens to running jobs when the host becomes
	// unavailable: "finish" (let them finish within Grace, at the lowest
	// priority, then cancel) or "cancel" (stop them now; they are redone
	// elsewhere).
	Drain string `toml:"drain"`
	// Grace is how long running jobs may take to finish when draining.
	Grace string `toml:"grace"`
	// ClockFile, if set, is a file holding the current time in RFC 3339:
	// the schedule is evaluated at that time (for tests).
	ClockFile string `toml:"clock_file"`
}

// Policy is a compiled Config.
type Policy struct {
	MaxForeignLoad float64
	OwnerIdle      time.Duration
	Windows        []Window
	CancelOnDrain  bool
	Grace          time.Duration
}

// Compile checks a Config and returns its Policy.
func Compile(c Config) (*Policy, error) {
	p := &Policy{MaxForeignLoad: c.MaxForeignLoad, Grace: 2 * time.Minute}
	if c.MaxForeignLoad < 0 {
		return nil, errors.New("max_foreign_load must not be negative")
	}
	if c.OwnerIdle != "" {
		d, err := time.ParseDuration(c.OwnerIdle)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("owner_idle %q: not a duration", c.OwnerIdle)
		}
		p.OwnerIdle = d
	}
	if c.Grace != "" {
		d, err := time.ParseDuration(c.Grace)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("grace %q: not a duration", c.Grace)
		}
		p.Grace = d
	}
	switch c.Drain {
	case "", "finish":
	case "cancel":
		p.CancelOnDrain = true
	default:
		return nil, fmt.Errorf("drain %q: want finish or cancel", c.Drain)
	}
	for _, s := range c.Schedule {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		p.Windows = append(p.Windows, w)
	}
	return p, nil
}

// Inputs are the facts a decision is made from.
type Inputs struct {
	Now         time.Time
	ForeignLoad float64       // load per CPU not caused by farm jobs
	Idle        time.Duration // owner idle time
	IdleKnown   bool          // false: no idle source could tell
	Paused      string        // non-empty: paused by hand, and why
}

// Decision says whether the host is available, and if not, why.
type Decision struct {
	Available bool
	Reason    string
}

// Decide applies the policy. The first rule that says no gives the reason.
func (p *Policy) Decide(in Inputs) Decision {
	if in.Paused != "" {
		return Decision{false, "paused: " + in.Paused}
	}
	if len(p.Windows) > 0 && !inAnyWindow(p.Windows, in.Now) {
		return Decision{false, "outside the volunteering schedule"}
	}
	if p.OwnerIdle > 0 && in.IdleKnown && in.Idle < p.OwnerIdle {
		return Decision{false, fmt.Sprintf("owner active (idle %s < %s)", in.Idle.Round(time.Second), p.OwnerIdle)}
	}
	if p.MaxForeignLoad > 0 && in.ForeignLoad > p.MaxForeignLoad {
		return Decision{false, fmt.Sprintf("foreign load %.2f per cpu > %.2f", in.ForeignLoad, p.MaxForeignLoad)}
	}
	return Decision{true, ""}
}
