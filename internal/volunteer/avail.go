package volunteer

import (
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/availability"
	"github.com/dcc-farm/dcc/internal/executor"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// availabilityState is the volunteer's view of whether it may take work.
// Guarded by Volunteer.mu.
type availabilityState struct {
	policy   *availability.Policy
	probe    availability.Probe
	paused   string // manual pause reason
	decision availability.Decision
	drainGen int // bumped on every transition, so a stale grace timer does nothing
	own      ownLoad
}

// ownLoad is the 1-minute exponentially damped average of the number of
// farm jobs running here, computed the way the kernel computes load1, so
// that "load1 minus own1" is the load others cause.
type ownLoad struct {
	avg float64
	at  time.Time
}

func (o *ownLoad) observe(running int, now time.Time) float64 {
	if !o.at.IsZero() {
		dt := now.Sub(o.at).Seconds()
		decay := math.Exp(-dt / 60)
		o.avg = o.avg*decay + float64(running)*(1-decay)
	}
	o.at = now
	return o.avg
}

// evaluate recomputes availability from the machine's state and acts on a
// change: draining running jobs when the host becomes unavailable. It
// returns the status to report. Caller must not hold v.mu.
func (v *Volunteer) evaluate() wire.HostStatus {
	l1, l5, l15 := readLoad()
	now := v.avail.probe.Now()
	idle, known := time.Duration(0), false
	if v.avail.policy.OwnerIdle > 0 {
		idle, known = v.avail.probe.Idle(now)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	running := len(v.running)
	own1 := v.avail.own.observe(running, time.Now())
	foreign := (l1 - own1) / float64(numCPU())
	if foreign < 0 {
		foreign = 0
	}
	d := v.avail.policy.Decide(availability.Inputs{Now: now, ForeignLoad: foreign, Idle: idle, IdleKnown: known, Paused: v.avail.paused})
	if d != v.avail.decision {
		prev := v.avail.decision
		v.avail.decision = d
		v.avail.drainGen++
		if prev.Available && !d.Available {
			v.log.Info("host unavailable: draining", zap.String("reason", d.Reason), zap.Int("running", running),
				zap.Bool("cancel", v.avail.policy.CancelOnDrain), zap.Duration("grace", v.avail.policy.Grace))
			v.drainLocked()
		} else if d.Available {
			v.log.Info("host available again")
		}
		select {
		case v.kick <- struct{}{}:
		default:
		}
	}
	st := wire.HostStatus{Load1: l1, Load5: l5, Load15: l15, Running: running, Available: d.Available, Reason: d.Reason,
		ExternalLoad: v.cfg.LoadSource == "external", Own1: own1, OwnKnown: true, ClockMs: time.Now().UnixMilli()}
	for id := range v.running {
		st.Leases = append(st.Leases, id)
	}
	if st.ExternalLoad {
		st.Load1, st.Load5, st.Load15 = 0, 0, 0
	}
	return st
}

// drainLocked acts on running jobs when the host becomes unavailable:
// cancel them now, or let them finish at the lowest priority within the
// grace period and cancel what is left. Caller holds v.mu.
func (v *Volunteer) drainLocked() {
	if v.avail.policy.CancelOnDrain {
		for id, j := range v.running {
			v.log.Info("job cancelled: host draining", zap.Uint64("lease", id))
			j.cancel()
		}
		return
	}
	for _, j := range v.running {
		if j.pgid > 0 {
			executor.Renice(j.pgid, 19)
		}
	}
	gen := v.avail.drainGen
	time.AfterFunc(v.avail.policy.Grace, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.avail.drainGen != gen {
			return
		}
		for id, j := range v.running {
			v.log.Info("job cancelled: drain grace period over", zap.Uint64("lease", id))
			j.cancel()
		}
	})
}

// available reports the last decision. Caller holds v.mu.
func (v *Volunteer) availableLocked() (bool, string) {
	return v.avail.decision.Available, v.avail.decision.Reason
}
