package agent

import (
	"sync"
	"time"
)

// localSlots limits how many compiles the agent sends home at once (like
// distcc's --localslots) and estimates how long a compile takes here, from
// how long recent jobs took on the farm scaled by power.
type localSlots struct {
	mu    sync.Mutex
	slots int
	power float64
	busy  int
	// secPerByte is an exponentially weighted mean of power-1 compile
	// seconds per preprocessed byte, learned from remote results.
	secPerByte float64
}

func (l *localSlots) configure(slots int, power float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots, l.power = slots, power
	if l.power <= 0 {
		l.power = 1
	}
}

// tryReserve reserves a local slot if one is free and returns the
// estimated local compile time of a source of size bytes.
func (l *localSlots) tryReserve(size int64) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy >= l.slots {
		return false, 0
	}
	l.busy++
	spb := l.secPerByte
	if spb == 0 {
		spb = 2.0 / (1 << 20) // until we learn: 2 s per MiB of preprocessed source at power 1
	}
	return true, time.Duration(spb * float64(size) / l.power * float64(time.Second))
}

func (l *localSlots) unreserve() {
	l.mu.Lock()
	if l.busy > 0 {
		l.busy--
	}
	l.mu.Unlock()
}

// done frees a slot after a local compile that took d (0: unknown).
func (l *localSlots) done(d time.Duration) { l.unreserve() }

// observeRemote learns from a remote compile of size bytes that took wall on a host of power.
func (l *localSlots) observeRemote(wall time.Duration, power float64, size int64) {
	if size <= 0 || wall <= 0 {
		return
	}
	if power <= 0 {
		power = 1
	}
	spb := wall.Seconds() * power / float64(size)
	l.mu.Lock()
	if l.secPerByte == 0 {
		l.secPerByte = spb
	} else {
		l.secPerByte = 0.8*l.secPerByte + 0.2*spb
	}
	l.mu.Unlock()
}
