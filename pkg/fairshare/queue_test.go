package fairshare

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func all(*Request) bool { return true }

func scores(m map[string]float64) func(string) float64 {
	return func(u string) float64 { return m[u] }
}

// checkQueue verifies the invariant documented on Queue.
func checkQueue(t *testing.T, q *Queue) {
	t.Helper()
	n := 0
	for u, rs := range q.users {
		if len(rs) == 0 {
			t.Fatalf("empty slice for user %q", u)
		}
		for _, r := range rs {
			if r.User != u {
				t.Fatalf("request %d of %q filed under %q", r.ID, r.User, u)
			}
			if q.byID[r.ID] != r {
				t.Fatalf("request %d in users[%q] but not (or another) in byID", r.ID, u)
			}
			n++
		}
	}
	if n != len(q.byID) {
		t.Fatalf("users hold %d requests, byID %d", n, len(q.byID))
	}
}

func drain(q *Queue, score func(string) float64) []uint64 {
	var ids []uint64
	for {
		r, ok := q.Next(score, all)
		if !ok {
			return ids
		}
		ids = append(ids, r.ID)
	}
}

func TestQueueFIFOPerUser(t *testing.T) {
	q := NewQueue()
	for i := uint64(1); i <= 5; i++ {
		q.Push(Request{ID: i, User: "alice", Key: "k", Arrived: at(int(i))})
	}
	if q.Len() != 5 || q.Waiting("alice") != 5 || q.Waiting("bob") != 0 {
		t.Fatalf("Len %d Waiting %d", q.Len(), q.Waiting("alice"))
	}
	if got := drain(q, scores(nil)); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("served %v, want FIFO", got)
	}
	if q.Len() != 0 || len(q.Users()) != 0 {
		t.Errorf("queue not empty: %d, %v", q.Len(), q.Users())
	}
	checkQueue(t, q)
	// FIFO is by push order, not by Arrived.
	q.Push(Request{ID: 10, User: "a", Arrived: at(9)})
	q.Push(Request{ID: 11, User: "a", Arrived: at(1)})
	if got := drain(q, scores(nil)); !slices.Equal(got, []uint64{10, 11}) {
		t.Errorf("served %v, want push order", got)
	}
}

func TestQueueNextOrder(t *testing.T) {
	tests := []struct {
		name   string
		reqs   []Request
		scores map[string]float64
		want   uint64
	}{
		{"lowest score", []Request{{ID: 1, User: "a", Arrived: at(1)}, {ID: 2, User: "b", Arrived: at(2)}}, map[string]float64{"a": 2, "b": 1}, 2},
		{"tie: oldest head", []Request{{ID: 1, User: "a", Arrived: at(5)}, {ID: 2, User: "b", Arrived: at(2)}, {ID: 3, User: "c", Arrived: at(3)}}, nil, 2},
		{"tie: oldest head, not oldest request", []Request{{ID: 1, User: "a", Arrived: at(5)}, {ID: 2, User: "a", Arrived: at(1)}, {ID: 3, User: "b", Arrived: at(3)}}, nil, 3},
		{"tie: then name", []Request{{ID: 1, User: "zed", Arrived: at(1)}, {ID: 2, User: "amy", Arrived: at(1)}, {ID: 3, User: "max", Arrived: at(1)}}, nil, 2},
		{"score beats age", []Request{{ID: 1, User: "a", Arrived: at(1)}, {ID: 2, User: "b", Arrived: at(100)}}, map[string]float64{"a": 1.0001, "b": 1}, 2},
		{"negative scores", []Request{{ID: 1, User: "a"}, {ID: 2, User: "b"}}, map[string]float64{"a": -1, "b": -2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rep := 0; rep < 20; rep++ { // map order must not matter
				q := NewQueue()
				for _, r := range tt.reqs {
					q.Push(r)
				}
				r, ok := q.Next(scores(tt.scores), all)
				if !ok || r.ID != tt.want {
					t.Fatalf("Next = %d, %v; want %d", r.ID, ok, tt.want)
				}
				if _, still := q.Get(r.ID); still {
					t.Fatal("served request still waiting")
				}
				checkQueue(t, q)
			}
		})
	}
}

func TestQueueNextPlaceable(t *testing.T) {
	mk := func() *Queue {
		q := NewQueue()
		q.Push(Request{ID: 1, User: "alice", Key: "K", Arrived: at(1)})
		q.Push(Request{ID: 2, User: "alice", Key: "K", Arrived: at(2)})
		q.Push(Request{ID: 3, User: "bob", Key: "K", Arrived: at(3)})
		q.Push(Request{ID: 4, User: "bob", Key: "J", Arrived: at(4)})
		q.Push(Request{ID: 5, User: "carol", Key: "J", Arrived: at(5)})
		q.Push(Request{ID: 6, User: "alice", Key: "J", Arrived: at(6)})
		return q
	}
	sc := scores(map[string]float64{"alice": 1, "bob": 2, "carol": 3})
	t.Run("skips a key, serves the next user's placeable request", func(t *testing.T) {
		q := mk()
		calls := map[string]int{}
		onlyJ := func(r *Request) bool { calls[r.Key]++; return r.Key == "J" }
		// alice's K requests are skipped; her own J request is next in her queue.
		r, ok := q.Next(sc, onlyJ)
		if !ok || r.ID != 6 {
			t.Fatalf("Next = %d %v, want alice's J request 6", r.ID, ok)
		}
		if calls["K"] != 1 {
			t.Errorf("placeable asked %d times about key K, want once", calls["K"])
		}
		calls = map[string]int{}
		r, ok = q.Next(sc, onlyJ)
		if !ok || r.ID != 4 {
			t.Fatalf("Next = %d %v, want bob's J request 4", r.ID, ok)
		}
		if calls["K"] != 1 {
			t.Errorf("placeable asked %d times about key K, want once", calls["K"])
		}
		checkQueue(t, q)
	})
	t.Run("nothing placeable", func(t *testing.T) {
		q := mk()
		calls := 0
		r, ok := q.Next(sc, func(*Request) bool { calls++; return false })
		if ok {
			t.Fatalf("Next = %+v, want none", r)
		}
		if q.Len() != 6 {
			t.Errorf("Len %d after a failed Next", q.Len())
		}
		if calls != 2 {
			t.Errorf("placeable called %d times for 2 keys", calls)
		}
		checkQueue(t, q)
	})
	t.Run("placeable sees the waiting requests", func(t *testing.T) {
		q := mk()
		var seen []Request
		if _, ok := q.Next(sc, func(r *Request) bool { seen = append(seen, *r); return false }); ok {
			t.Fatal("served")
		}
		want := []Request{
			{ID: 1, User: "alice", Key: "K", Arrived: at(1)},
			{ID: 6, User: "alice", Key: "J", Arrived: at(6)},
		}
		if !slices.Equal(seen, want) {
			t.Errorf("placeable saw %+v, want %+v", seen, want)
		}
	})
	t.Run("empty queue", func(t *testing.T) {
		if _, ok := NewQueue().Next(sc, all); ok {
			t.Error("Next on an empty queue")
		}
	})
}

func TestQueueRemove(t *testing.T) {
	q := NewQueue()
	for i := uint64(1); i <= 4; i++ {
		q.Push(Request{ID: i, User: "a", Arrived: at(int(i))})
	}
	q.Push(Request{ID: 9, User: "b"})
	tests := []struct {
		id   uint64
		ok   bool
		left []uint64
	}{
		{2, true, []uint64{1, 3, 4}},
		{2, false, []uint64{1, 3, 4}},
		{77, false, []uint64{1, 3, 4}},
		{4, true, []uint64{1, 3}},
		{1, true, []uint64{3}},
		{3, true, nil},
	}
	for _, tt := range tests {
		if got := q.Remove(tt.id); got != tt.ok {
			t.Errorf("Remove(%d) = %v, want %v", tt.id, got, tt.ok)
		}
		checkQueue(t, q)
		var left []uint64
		for _, r := range q.users["a"] {
			left = append(left, r.ID)
		}
		if !slices.Equal(left, tt.left) {
			t.Errorf("after Remove(%d): %v, want %v", tt.id, left, tt.left)
		}
	}
	if !slices.Equal(q.Users(), []string{"b"}) || q.Waiting("a") != 0 {
		t.Errorf("users %v", q.Users())
	}
	if _, ok := q.Get(9); !ok {
		t.Error("b's request lost")
	}
}

func TestQueueExpire(t *testing.T) {
	q := NewQueue()
	q.Push(Request{ID: 1, User: "a", Deadline: at(10)})
	q.Push(Request{ID: 2, User: "a"}) // no deadline
	q.Push(Request{ID: 3, User: "b", Deadline: at(20)})
	q.Push(Request{ID: 4, User: "a", Deadline: at(5)})
	q.Push(Request{ID: 5, User: "c", Deadline: at(30)})
	steps := []struct {
		now  int
		want []uint64
		left int
	}{
		{4, nil, 5},
		{5, []uint64{4}, 4}, // a deadline equal to now has passed
		{19, []uint64{1}, 3},
		{1000, []uint64{3, 5}, 1},
		{1 << 30, nil, 1},
	}
	for _, s := range steps {
		var got []uint64
		for _, r := range q.Expire(at(s.now)) {
			got = append(got, r.ID)
			if _, ok := q.Get(r.ID); ok {
				t.Errorf("expired %d still waiting", r.ID)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, s.want) {
			t.Errorf("Expire(%d) = %v, want %v", s.now, got, s.want)
		}
		if q.Len() != s.left {
			t.Errorf("Expire(%d): %d left, want %d", s.now, q.Len(), s.left)
		}
		checkQueue(t, q)
	}
	if !slices.Equal(q.Users(), []string{"a"}) {
		t.Errorf("users %v", q.Users())
	}
}

func TestQueuePosition(t *testing.T) {
	// alice (score 1) has 5 waiting, bob (score 2) 3, carol (score 3) 5.
	q := NewQueue()
	id := uint64(0)
	push := func(u string, n int) {
		for i := 0; i < n; i++ {
			id++
			q.Push(Request{ID: id, User: u, Arrived: at(int(id))})
		}
	}
	push("alice", 5) // 1..5
	push("bob", 3)   // 6..8
	push("carol", 5) // 9..13
	sc := scores(map[string]float64{"alice": 1, "bob": 2, "carol": 3})
	tests := []struct {
		id   uint64
		want int
	}{
		// Round model: in each round every user, best score first, is
		// served once. Request k of a user (0-based) is served in round k.
		{1, 0},          // alice's head: first
		{2, 1 + 1 + 1},  // alice #1: bob 1 and carol 1 from round 0
		{6, 1},          // bob's head: after alice's head
		{7, 1 + 2 + 1},  // bob #1: alice 2 (rounds 0,1), carol 1 (round 0)
		{9, 2},          // carol's head: after alice's and bob's heads
		{11, 2 + 3 + 3}, // carol #2: alice 3, bob 3
		{13, 4 + 5 + 3}, // carol #4: alice 5, bob only has 3
		{5, 4 + 3 + 4},  // alice #4: bob 3 (all, in rounds 0-2), carol 4 (rounds 0-3)
		{999, 0},        // unknown
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			for rep := 0; rep < 30; rep++ { // must not depend on map order
				if got := q.Position(tt.id, sc); got != tt.want {
					t.Fatalf("Position(%d) = %d, want %d", tt.id, got, tt.want)
				}
			}
		})
	}
}

// Position is sane whatever the queue: within [0, Len-1], 0 for the head
// of the user with the strictly lowest score, increasing along a user's
// queue, and independent of map iteration order.
func TestQueuePositionProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for iter := 0; iter < 200; iter++ {
		q := NewQueue()
		nu := 1 + rng.Intn(6)
		sc := map[string]float64{}
		for u := 0; u < nu; u++ {
			sc[fmt.Sprint("u", u)] = float64(u) + 0.5 // distinct
		}
		for id := uint64(1); id <= uint64(1+rng.Intn(40)); id++ {
			q.Push(Request{ID: id, User: fmt.Sprint("u", rng.Intn(nu)), Arrived: at(int(id))})
		}
		for u, rs := range q.users {
			prev := -1
			for i, r := range rs {
				p := q.Position(r.ID, scores(sc))
				for rep := 0; rep < 5; rep++ {
					if p2 := q.Position(r.ID, scores(sc)); p2 != p {
						t.Fatalf("Position(%d) = %d then %d", r.ID, p, p2)
					}
				}
				if p < i || p > q.Len()-1 {
					t.Fatalf("Position(%d) = %d, index %d, Len %d", r.ID, p, i, q.Len())
				}
				if p <= prev {
					t.Fatalf("%s: position %d after %d", u, p, prev)
				}
				prev = p
			}
		}
		// The lowest-score user's head is next.
		best := ""
		for u := range q.users {
			if best == "" || sc[u] < sc[best] {
				best = u
			}
		}
		if p := q.Position(q.users[best][0].ID, scores(sc)); p != 0 {
			t.Fatalf("head of the best user at %d", p)
		}
	}
}

// Random operations, including pushes that reuse a waiting ID, keep the
// invariant between byID and users.
func TestQueueInvariantRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	q := NewQueue()
	model := map[uint64]Request{}
	users := []string{"a", "b", "c", "d"}
	for op := 0; op < 5000; op++ {
		switch k := rng.Intn(10); {
		case k < 4:
			r := Request{ID: uint64(rng.Intn(200)), User: users[rng.Intn(len(users))], Key: fmt.Sprint(rng.Intn(3)), Arrived: at(op), Deadline: at(op + rng.Intn(500))}
			q.Push(r)
			model[r.ID] = r
		case k < 6:
			id := uint64(rng.Intn(200))
			_, exists := model[id]
			if got := q.Remove(id); got != exists {
				t.Fatalf("op %d: Remove(%d) = %v, model %v", op, id, got, exists)
			}
			delete(model, id)
		case k < 8:
			key := fmt.Sprint(rng.Intn(3))
			r, ok := q.Next(func(u string) float64 { return float64(len(u)) }, func(r *Request) bool { return r.Key == key })
			if ok {
				if m, exists := model[r.ID]; !exists || m != r {
					t.Fatalf("op %d: Next returned %+v, model %+v %v", op, r, m, exists)
				}
				if r.Key != key {
					t.Fatalf("op %d: Next returned unplaceable %+v", op, r)
				}
				delete(model, r.ID)
			} else {
				for _, m := range model {
					if m.Key == key {
						t.Fatalf("op %d: Next found nothing but %+v is placeable", op, m)
					}
				}
			}
		default:
			for _, r := range q.Expire(at(op - 200)) {
				if m, ok := model[r.ID]; !ok || m != r {
					t.Fatalf("op %d: Expire returned %+v, model %+v", op, r, m)
				}
				delete(model, r.ID)
			}
		}
		checkQueue(t, q)
		if q.Len() != len(model) {
			t.Fatalf("op %d: Len %d, model %d", op, q.Len(), len(model))
		}
		for id, m := range model {
			if r, ok := q.Get(id); !ok || r != m {
				t.Fatalf("op %d: Get(%d) = %+v %v, model %+v", op, id, r, ok, m)
			}
		}
	}
}

// Pushing an ID that is already waiting replaces the waiting request.
func TestQueuePushDuplicateID(t *testing.T) {
	q := NewQueue()
	q.Push(Request{ID: 1, User: "a", Key: "old"})
	q.Push(Request{ID: 1, User: "b", Key: "new"})
	checkQueue(t, q)
	if q.Len() != 1 || q.Waiting("a") != 0 || q.Waiting("b") != 1 {
		t.Fatalf("Len %d, a %d, b %d", q.Len(), q.Waiting("a"), q.Waiting("b"))
	}
	r, ok := q.Next(scores(nil), all)
	if !ok || r.Key != "new" {
		t.Errorf("Next = %+v", r)
	}
	if _, ok := q.Next(scores(nil), all); ok {
		t.Error("the replaced request was served too")
	}
}

func TestQueueUsers(t *testing.T) {
	q := NewQueue()
	for i, u := range []string{"zed", "amy", "max", "amy"} {
		q.Push(Request{ID: uint64(i), User: u})
	}
	if got := q.Users(); !slices.Equal(got, []string{"amy", "max", "zed"}) {
		t.Errorf("Users = %v", got)
	}
	if r, ok := q.Get(3); !ok || r.User != "amy" {
		t.Errorf("Get(3) = %+v %v", r, ok)
	}
	// Get returns a copy.
	r, _ := q.Get(3)
	r.User = "changed"
	if r2, _ := q.Get(3); r2.User != "amy" {
		t.Error("Get returned a reference")
	}
}

// Water-filling: users with unlimited demand, slots handed out one at a
// time to the lowest (running+1)/weight, end with shares proportional to
// their weights.
func TestWaterFilling(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]float64
		slots   int
		want    map[string]int
	}{
		{"equal", map[string]float64{"a": 1, "b": 1, "c": 1}, 12, map[string]int{"a": 4, "b": 4, "c": 4}},
		{"2:1:1", map[string]float64{"a": 2, "b": 1, "c": 1}, 12, map[string]int{"a": 6, "b": 3, "c": 3}},
		{"3:1", map[string]float64{"a": 3, "b": 1}, 12, map[string]int{"a": 9, "b": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue()
			l := NewLedger(time.Hour)
			id := uint64(0)
			for i := 0; i < 50; i++ {
				for _, u := range []string{"c", "b", "a"} { // c's requests arrive first
					if _, ok := tt.weights[u]; ok {
						id++
						q.Push(Request{ID: id, User: u, Arrived: at(int(id))})
					}
				}
			}
			for u, w := range tt.weights {
				l.SetWeight(u, w)
			}
			p := Policy{}
			running := map[string]int{}
			score := func(u string) float64 { return p.Score(float64(running[u]), 0, 0, l.Weight(u)) }
			for s := 0; s < tt.slots; s++ {
				r, ok := q.Next(score, all)
				if !ok {
					t.Fatal("queue ran dry")
				}
				running[r.User]++
			}
			for u, want := range tt.want {
				if running[u] != want {
					t.Errorf("%s holds %d slots, want %d (all: %v)", u, running[u], want, running)
				}
			}
		})
	}
}

// Next does not allocate: it reuses its scratch space.
func TestQueueNextAllocationFree(t *testing.T) {
	q, score := benchQueue(2000)
	allocs := testing.AllocsPerRun(500, func() {
		if _, ok := q.Next(score, all); !ok {
			t.Fatal("empty")
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %v times per call", allocs)
	}
}

func benchQueue(n int) (*Queue, func(string) float64) {
	q := NewQueue()
	sc := map[string]float64{}
	for u := 0; u < 70; u++ {
		sc[fmt.Sprint("user", u)] = float64(u%7) + 1
	}
	for i := 0; i < n; i++ {
		u := fmt.Sprint("user", i%70)
		q.Push(Request{ID: uint64(i + 1), User: u, Key: fmt.Sprint("fp", i%3), Arrived: at(i)})
	}
	return q, func(u string) float64 { return sc[u] }
}

// BenchmarkNext serves from about 1000 waiting requests of 70 users (900
// to 1000: served requests are pushed back, outside the timer, every 100).
func BenchmarkNext(b *testing.B) {
	q, score := benchQueue(1000)
	placeable := func(r *Request) bool { return r.Key != "fp2" }
	served := make([]Request, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		r, ok := q.Next(score, placeable)
		if !ok {
			b.Fatal("nothing placeable")
		}
		served = append(served, r)
		if len(served) == cap(served) {
			b.StopTimer()
			for _, r := range served {
				q.Push(r)
			}
			served = served[:0]
			b.StartTimer()
		}
	}
}
