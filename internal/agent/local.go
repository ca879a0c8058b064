package agent

import (
	"sync"
	"time"

	"github.com/dcc-farm/dcc/internal/scheduler"
)

// localSlots limits how many compiles the agent sends home at once (like
// distcc's --localslots), estimates whether a job would finish sooner here
// than through the farm, and moves queued jobs home when a local slot
// frees (work stealing).
type localSlots struct {
	mu    sync.Mutex
	slots int
	power float64
	busy  int
	// secPerByte is an exponentially weighted mean of power-1 compile
	// seconds per preprocessed byte, learned from remote results.
	secPerByte float64
	// remotePower is the mean power of the hosts that served us, and
	// overhead the mean time a remote job spends outside the compiler
	// (transfer, queueing at the host), both learned.
	remotePower float64
	overhead    time.Duration
	// queued are jobs waiting at the broker that could move home.
	queued map[*queuedJob]struct{}
	seq    uint64
}

// queuedJob is a job waiting in the broker's queue.
//
// Invariant: a queuedJob is in localSlots.queued only while its lease
// request waits at the broker; leave takes it out the moment an answer
// ends the wait (a grant above all), so that a grant can never be stolen.
// stolen is set (under mu) only while it is in queued.
type queuedJob struct {
	size       int64
	seq        uint64        // registration order: the newest goes home first
	estWait    time.Duration // the broker's estimate, given at estAt
	estAt      time.Time
	backlogged bool // the broker says the user wants more than its fair share
	stolen     bool
	withdraw   func() // closes its lease stream: the broker drops the request
}

func (l *localSlots) configure(slots int, power float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots, l.power = slots, power
	if l.power <= 0 {
		l.power = 1
	}
	l.remotePower = 1
	l.queued = make(map[*queuedJob]struct{})
}

// gain is how much sooner a job of size bytes would finish through the
// farm than here, if it got a slot at once: local compile time minus
// remote compile time and overhead. The broker compares it with the
// job's queue wait. Caller holds mu.
func (l *localSlots) gainLocked(size int64) time.Duration {
	spb := l.secPerByte
	if spb == 0 {
		spb = 2.0 / (1 << 20) // until we learn: 2 s per MiB of preprocessed source at power 1
	}
	local := spb * float64(size) / l.power
	remote := spb*float64(size)/l.remotePower + l.overhead.Seconds()
	if g := local - remote; g > 0 {
		return time.Duration(g * float64(time.Second))
	}
	return 0
}

// tryReserve reserves a local slot if one is free and returns the gain
// of the farm over this machine for a source of size bytes.
func (l *localSlots) tryReserve(size int64) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy >= l.slots {
		return false, 0
	}
	l.busy++
	return true, l.gainLocked(size)
}

// unreserve frees a slot, and hands it to a queued job that would do
// better here than by waiting (see stealLocked).
func (l *localSlots) unreserve(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy > 0 {
		l.busy--
	}
	l.stealLocked(now)
}

// done frees a slot after a local compile.
func (l *localSlots) done(now time.Time) { l.unreserve(now) }

// stealLocked moves queued jobs home while a slot is free: newest first,
// each one the scheduler's rule says gains from the slot
// (scheduler.CompileLocally: its remaining wait exceeds the farm's gain,
// or its user is backlogged and has other jobs waiting). Caller holds mu.
func (l *localSlots) stealLocked(now time.Time) {
	for l.busy < l.slots {
		var best *queuedJob
		for q := range l.queued {
			if best != nil && q.seq < best.seq {
				continue
			}
			wait := remainingWait(q, now)
			if scheduler.CompileLocally(scheduler.LocalQuery{SlotFree: true, Gain: l.gainLocked(q.size), Wait: wait,
				Backlogged: q.backlogged, OthersWaiting: len(l.queued) - 1}) {
				best = q
			}
		}
		if best == nil {
			return
		}
		delete(l.queued, best)
		best.stolen = true
		l.busy++           // the slot is the stolen job's now
		go best.withdraw() // closing a stream may wait on the session: not under mu
	}
}

// remainingWait is how much longer a queued job can expect to wait: what
// is left of the broker's estimate, and once the job has waited longer
// than that (the farm is slower than estimated), as long again as it has
// waited so far.
func remainingWait(q *queuedJob, now time.Time) time.Duration {
	waited := now.Sub(q.estAt)
	return max(q.estWait-waited, waited, time.Millisecond)
}

// recheck looks again for queued jobs a free slot should take: their
// expected waits change with time, not only when a slot frees. The agent
// calls it every second.
func (l *localSlots) recheck(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stealLocked(now)
}

// waiting registers (or updates) a job queued at the broker with the
// broker's latest estimate; a free slot may take it at once.
func (l *localSlots) waiting(q *queuedJob, est time.Duration, backlogged bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if q.stolen {
		return
	}
	if _, ok := l.queued[q]; !ok {
		l.seq++
		q.seq = l.seq
	}
	q.estWait, q.estAt, q.backlogged = est, now, backlogged
	l.queued[q] = struct{}{}
	l.stealLocked(now)
}

// leave unregisters a job that stopped waiting (its grant or denial came,
// or it gave up). It reports whether a free slot took it first: the job
// then owns a reserved local slot, and must give back any grant it got.
func (l *localSlots) leave(q *queuedJob) (stolen bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.queued, q)
	return q.stolen
}

// queuedLen is the number of jobs registered as waiting (for tests).
func (l *localSlots) queuedLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queued)
}

// busyLen is the number of local slots in use (for tests).
func (l *localSlots) busyLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy
}

// observeRemote learns from a remote compile of size bytes that took
// wall in the compiler on a host of power, and total end to end.
func (l *localSlots) observeRemote(wall, total time.Duration, power float64, size int64) {
	if size <= 0 || wall <= 0 {
		return
	}
	if power <= 0 {
		power = 1
	}
	spb := wall.Seconds() * power / float64(size)
	over := total - wall
	if over < 0 {
		over = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secPerByte == 0 {
		l.secPerByte, l.remotePower, l.overhead = spb, power, over
		return
	}
	l.secPerByte = 0.8*l.secPerByte + 0.2*spb
	l.remotePower = 0.8*l.remotePower + 0.2*power
	l.overhead = (l.overhead*4 + over) / 5
}
