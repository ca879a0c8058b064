package fairshare

import (
	"sort"
	"strings"
	"time"
)

// Request is one waiting lease request.
type Request struct {
	ID       uint64
	User     string
	Key      string // compatibility key (compiler fingerprint): only hosts offering it can serve
	Arrived  time.Time
	Deadline time.Time // zero: waits until removed
}

// Queue holds waiting requests, FIFO per user. Invariant: a request is in
// byID iff it is in users[its User], and users has no empty slices.
type Queue struct {
	users map[string][]*Request
	byID  map[uint64]*Request
	// scratch space reused by Next, so that choosing does not allocate.
	order []scored
	bad   []string
}

type scored struct {
	user  string
	score float64
	head  time.Time
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{users: make(map[string][]*Request), byID: make(map[uint64]*Request)}
}

// Len is the number of waiting requests.
func (q *Queue) Len() int { return len(q.byID) }

// Waiting is the number of requests user has waiting.
func (q *Queue) Waiting(user string) int { return len(q.users[user]) }

// Users lists users with waiting requests.
func (q *Queue) Users() []string {
	out := make([]string, 0, len(q.users))
	for u := range q.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Push appends r to its user's queue. A waiting request with the same ID
// is replaced (removed, then r appended), so that IDs stay unique.
func (q *Queue) Push(r Request) {
	if _, dup := q.byID[r.ID]; dup {
		q.Remove(r.ID)
	}
	p := &r
	q.byID[r.ID] = p
	q.users[r.User] = append(q.users[r.User], p)
}

// Get returns a waiting request.
func (q *Queue) Get(id uint64) (Request, bool) {
	r, ok := q.byID[id]
	if !ok {
		return Request{}, false
	}
	return *r, true
}

// Remove drops a waiting request; it reports whether it was waiting.
func (q *Queue) Remove(id uint64) bool {
	r, ok := q.byID[id]
	if !ok {
		return false
	}
	delete(q.byID, id)
	rs := q.users[r.User]
	for i, x := range rs {
		if x == r {
			copy(rs[i:], rs[i+1:])
			rs[len(rs)-1] = nil
			rs = rs[:len(rs)-1]
			break
		}
	}
	if len(rs) == 0 {
		delete(q.users, r.User)
	} else {
		q.users[r.User] = rs
	}
	return true
}

// Expire removes and returns the requests whose deadline is not after now.
func (q *Queue) Expire(now time.Time) []Request {
	var out []Request
	for _, r := range q.byID {
		if !r.Deadline.IsZero() && !r.Deadline.After(now) {
			out = append(out, *r)
		}
	}
	for _, r := range out {
		q.Remove(r.ID)
	}
	return out
}

// Position returns how many requests stand before request id: this user's
// earlier requests plus, in a round model where every user is served once
// per round in score order, the requests of other users served in earlier
// rounds or earlier in the same round. It is an estimate for the client,
// computed with score.
func (q *Queue) Position(id uint64, score func(user string) float64) int {
	r, ok := q.byID[id]
	if !ok {
		return 0
	}
	// Request idx of its user is served in round idx.
	idx := 0
	for i, x := range q.users[r.User] {
		if x == r {
			idx = i
			break
		}
	}
	pos := idx
	mine := score(r.User)
	for u, rs := range q.users {
		if u == r.User {
			continue
		}
		if score(u) <= mine {
			// Served before us in rounds 0..idx.
			pos += min(len(rs), idx+1)
		} else {
			// Served after us in each round: only rounds 0..idx-1 count.
			pos += min(len(rs), idx)
		}
	}
	return pos
}

// Index is how many requests of the same user wait before request id
// (-1 if id is not waiting).
func (q *Queue) Index(id uint64) int {
	r, ok := q.byID[id]
	if !ok {
		return -1
	}
	for i, x := range q.users[r.User] {
		if x == r {
			return i
		}
	}
	return -1
}

// EachUser calls f for every user with waiting requests, in no
// particular order, without allocating.
func (q *Queue) EachUser(f func(user string, waiting int)) {
	for u, rs := range q.users {
		f(u, len(rs))
	}
}

// Next chooses the request to serve when a slot frees: among users in
// ascending score order (ties: whose oldest request came first), the first
// request of theirs for which placeable returns true. It removes and
// returns it; ok is false when no waiting request can be placed.
func (q *Queue) Next(score func(user string) float64, placeable func(r *Request) bool) (Request, bool) {
	q.order = q.order[:0]
	for u, rs := range q.users {
		q.order = append(q.order, scored{u, score(u), rs[0].Arrived})
	}
	q.bad = q.bad[:0]
	// Selection instead of a full sort: the first user tried almost always
	// has a placeable request, so finding the minimum is all it takes.
	for n := len(q.order); n > 0; n-- {
		m := 0
		for i := 1; i < n; i++ {
			if compareScored(q.order[i], q.order[m]) < 0 {
				m = i
			}
		}
		s := q.order[m]
		q.order[m] = q.order[n-1]
	requests:
		for _, r := range q.users[s.user] {
			for _, k := range q.bad {
				if k == r.Key {
					continue requests
				}
			}
			if placeable(r) {
				out := *r
				q.Remove(r.ID)
				return out, true
			}
			q.bad = append(q.bad, r.Key)
		}
	}
	return Request{}, false
}

// compareScored orders by score, then oldest head, then user name. It is a
// plain function (sort.Slice's closure and reflection-based swapper
// allocated on every Next).
func compareScored(a, b scored) int {
	switch {
	case a.score < b.score:
		return -1
	case a.score > b.score:
		return 1
	}
	if c := a.head.Compare(b.head); c != 0 {
		return c
	}
	return strings.Compare(a.user, b.user)
}
