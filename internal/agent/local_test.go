package agent

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func newSlots(n int) *localSlots {
	l := &localSlots{}
	l.configure(n, 0.5) // half the reference speed: the farm gains 2 s per MiB
	return l
}

// queued returns a job whose withdraw counts calls.
func queued(size int64) (*queuedJob, *atomic.Int32) {
	var n atomic.Int32
	return &queuedJob{size: size, withdraw: func() { n.Add(1) }}, &n
}

func waitCount(t *testing.T, n *atomic.Int32, want int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); n.Load() != want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("withdraw called %d times, want %d", n.Load(), want)
		}
	}
}

func TestReserveAndUnreserve(t *testing.T) {
	l := newSlots(2)
	for i := 0; i < 2; i++ {
		if ok, _ := l.tryReserve(1000); !ok {
			t.Fatalf("reserve %d refused with a free slot", i)
		}
	}
	if ok, _ := l.tryReserve(1000); ok {
		t.Fatal("reserved a third slot of two")
	}
	l.unreserve(t0)
	l.done(t0)
	l.unreserve(t0) // one too many: never below zero
	if l.busyLen() != 0 {
		t.Fatalf("busy %d", l.busyLen())
	}
}

// TestFreedSlotTakesQueuedJobHome: a slot that frees goes to a queued job
// whose wait is longer than the farm's gain; the job then owns the slot
// (leave reports it stolen) until its local compile is done.
func TestFreedSlotTakesQueuedJobHome(t *testing.T) {
	l := newSlots(1)
	l.tryReserve(10) // another job holds the slot
	q, withdrawn := queued(10)
	l.waiting(q, time.Minute, false, t0)
	if l.queuedLen() != 1 || withdrawn.Load() != 0 {
		t.Fatal("job taken with no free slot")
	}
	l.unreserve(t0)
	waitCount(t, withdrawn, 1)
	if !l.leave(q) {
		t.Fatal("leave does not report the steal")
	}
	if l.busyLen() != 1 || l.queuedLen() != 0 {
		t.Fatalf("busy %d queued %d after the steal", l.busyLen(), l.queuedLen())
	}
	l.done(t0) // the stolen job's local compile ends
	if l.busyLen() != 0 {
		t.Fatalf("slot leaked: busy %d", l.busyLen())
	}
}

// TestGrantedJobCannotBeStolen is the work-stealing defect: once a job's
// answer (its grant) has come, it has left the stealable set, so a slot
// that frees during its remote compile is not taken from it (which would
// close its lease stream and leak the slot).
func TestGrantedJobCannotBeStolen(t *testing.T) {
	l := newSlots(1)
	l.tryReserve(10)
	q, withdrawn := queued(10)
	l.waiting(q, time.Minute, false, t0)
	if l.leave(q) { // the grant arrives
		t.Fatal("stolen before any slot freed")
	}
	l.unreserve(t0) // a slot frees during the remote compile
	time.Sleep(10 * time.Millisecond)
	if withdrawn.Load() != 0 {
		t.Fatal("a granted job's lease stream was closed")
	}
	if l.busyLen() != 0 {
		t.Fatalf("busy %d: the freed slot was given away", l.busyLen())
	}
	// A stale waiting() for it (a queue notice read late) does not put it back.
	if l.leave(q) {
		t.Fatal("leave reports a steal that never happened")
	}
}

func TestNoStealWhenTheFarmIsFaster(t *testing.T) {
	l := newSlots(1)
	l.tryReserve(1 << 20)
	q, withdrawn := queued(1 << 20) // the farm gains about 2 s
	l.waiting(q, 10*time.Millisecond, false, t0)
	l.unreserve(t0)
	time.Sleep(10 * time.Millisecond)
	if withdrawn.Load() != 0 || l.leave(q) {
		t.Fatal("a job that would finish sooner on the farm was taken home")
	}
}

// TestBackloggedUserStealsWhenOthersWait: a backlogged user's queued job
// goes home even with a short wait, if more of its jobs wait (its farm
// share stays full), and the newest goes first.
func TestBackloggedUserStealsNewestFirst(t *testing.T) {
	l := newSlots(1)
	l.tryReserve(1 << 20)
	a, wa := queued(1 << 20)
	b, wb := queued(1 << 20)
	l.waiting(a, 500*time.Millisecond, true, t0) // shorter than the farm's gain, but backlogged
	l.waiting(b, 500*time.Millisecond, true, t0)
	l.unreserve(t0)
	waitCount(t, wb, 1)
	if wa.Load() != 0 || !l.leave(b) || l.leave(a) {
		t.Fatal("the newest job should go home, the older stay queued")
	}
}

// TestRemainingWait: the estimate counts down from when it was given;
// a job still waiting past it is taken to wait as long again as it has,
// so a farm much slower than estimated sends it home on a recheck.
func TestRemainingWait(t *testing.T) {
	l := newSlots(1)
	l.tryReserve(1 << 20)
	q, withdrawn := queued(1 << 20) // the farm gains about 2 s
	l.waiting(q, 1500*time.Millisecond, false, t0)
	l.unreserve(t0.Add(time.Second)) // 0.5 s of the estimate left, 1 s waited: 1 s < 2 s
	time.Sleep(10 * time.Millisecond)
	if withdrawn.Load() != 0 {
		t.Fatal("stole while the farm was still faster")
	}
	l.recheck(t0.Add(3 * time.Second)) // waited 3 s, past the estimate: 3 s more > 2 s
	waitCount(t, withdrawn, 1)
	if !l.leave(q) {
		t.Fatal("the overdue job was not taken home")
	}
}

// TestSlotsBalanceUnderConcurrency hammers reserve, waiting, leave and
// done from many goroutines; every slot must come back.
func TestSlotsBalanceUnderConcurrency(t *testing.T) {
	l := newSlots(3)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				reserved, _ := l.tryReserve(100)
				q := &queuedJob{size: 100, withdraw: func() {}}
				l.waiting(q, time.Minute, i%2 == 0, time.Now())
				if reserved {
					l.unreserve(time.Now())
				}
				if l.leave(q) {
					l.done(time.Now()) // it was taken home: its compile ends
				}
			}
		}()
	}
	wg.Wait()
	if l.busyLen() != 0 || l.queuedLen() != 0 {
		t.Fatalf("after the storm: busy %d queued %d", l.busyLen(), l.queuedLen())
	}
}
