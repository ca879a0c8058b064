package lease

import (
	"container/heap"
	"slices"
	"time"
)

// ID identifies a lease. IDs are unique across broker restarts because the
// broker seeds the table from the clock (see FirstID).
type ID uint64

// FirstID returns a starting ID that exceeds every ID handed out by an
// earlier run whose clock was behind now, assuming fewer than 2^20 leases a
// millisecond.
func FirstID(now time.Time) ID { return ID(uint64(now.UnixMilli()) << 20) }

// Lease is one granted slot.
type Lease struct {
	ID   ID
	User string
	Host string
	// Holder is the session of the client holding the lease; 0 means the
	// lease was adopted from a volunteer's report and has no live holder.
	Holder  uint64
	Power   float64 // power index of the host, for usage accounting
	Tier    int
	Granted time.Time
	Expires time.Time
	File    string

	index int // position in the expiry heap; -1 when not queued
}

// Table holds active leases with three indexes. Invariant: a lease is in
// byID, in the heap, in byHost[Host] and (if Holder != 0) in byHolder[Holder]
// at once, or in none of them.
type Table struct {
	byID     map[ID]*Lease
	byHost   map[string]map[ID]*Lease
	byHolder map[uint64]map[ID]*Lease
	queue    expiryQueue
	next     ID
}

// NewTable returns an empty table whose first lease gets first.
func NewTable(first ID) *Table {
	if first == 0 {
		first = 1
	}
	return &Table{
		byID:     make(map[ID]*Lease),
		byHost:   make(map[string]map[ID]*Lease),
		byHolder: make(map[uint64]map[ID]*Lease),
		next:     first,
	}
}

// Len is the number of active leases.
func (t *Table) Len() int { return len(t.byID) }

// Grant adds l, assigning it a new ID unless it carries one (an adopted
// lease keeps the ID its token names). It returns the stored lease.
func (t *Table) Grant(l Lease) *Lease {
	if l.ID == 0 {
		l.ID = t.next
		t.next++
	} else if l.ID >= t.next {
		t.next = l.ID + 1
	}
	if old, ok := t.byID[l.ID]; ok {
		t.remove(old)
	}
	p := &l
	t.byID[p.ID] = p
	add(t.byHost, p.Host, p)
	if p.Holder != 0 {
		add(t.byHolder, p.Holder, p)
	}
	heap.Push(&t.queue, p)
	return p
}

func add[K comparable](m map[K]map[ID]*Lease, k K, l *Lease) {
	s := m[k]
	if s == nil {
		s = make(map[ID]*Lease)
		m[k] = s
	}
	s[l.ID] = l
}

func del[K comparable](m map[K]map[ID]*Lease, k K, id ID) {
	if s := m[k]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// Get returns the lease with id.
func (t *Table) Get(id ID) (*Lease, bool) {
	l, ok := t.byID[id]
	return l, ok
}

// Renew moves the lease's expiry to expires. It reports whether the lease exists.
func (t *Table) Renew(id ID, expires time.Time) bool {
	l, ok := t.byID[id]
	if !ok {
		return false
	}
	l.Expires = expires
	heap.Fix(&t.queue, l.index)
	return true
}

// Release removes the lease and returns it.
func (t *Table) Release(id ID) (Lease, bool) {
	l, ok := t.byID[id]
	if !ok {
		return Lease{}, false
	}
	t.remove(l)
	return *l, true
}

func (t *Table) remove(l *Lease) {
	delete(t.byID, l.ID)
	del(t.byHost, l.Host, l.ID)
	if l.Holder != 0 {
		del(t.byHolder, l.Holder, l.ID)
	}
	if l.index >= 0 {
		heap.Remove(&t.queue, l.index)
	}
}

// Expired removes and returns up to max leases whose expiry is not after
// now, earliest first (max <= 0: all).
func (t *Table) Expired(now time.Time, max int) []Lease {
	var out []Lease
	for len(t.queue) > 0 && !t.queue[0].Expires.After(now) {
		if max > 0 && len(out) >= max {
			break
		}
		l := t.queue[0]
		t.remove(l)
		out = append(out, *l)
	}
	return out
}

// NextExpiry returns the earliest expiry, if any lease is active.
func (t *Table) NextExpiry() (time.Time, bool) {
	if len(t.queue) == 0 {
		return time.Time{}, false
	}
	return t.queue[0].Expires, true
}

// OfHost returns the IDs of the leases on host.
func (t *Table) OfHost(host string) []ID { return ids(t.byHost[host]) }

// OfHolder returns the IDs of the leases a session holds.
func (t *Table) OfHolder(holder uint64) []ID { return ids(t.byHolder[holder]) }

// CountOnHost is the number of leases on host.
func (t *Table) CountOnHost(host string) int { return len(t.byHost[host]) }

// ids lists the IDs of s in ascending order (the order they were granted
// in), so that whoever walks them (revoking a host's leases, the
// simulator) does the same thing on every run.
func ids(s map[ID]*Lease) []ID {
	out := make([]ID, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Each calls f for every lease, in no particular order.
func (t *Table) Each(f func(*Lease)) {
	for _, l := range t.byID {
		f(l)
	}
}

type expiryQueue []*Lease

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].Expires.Before(q[j].Expires) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *expiryQueue) Push(x any) {
	l := x.(*Lease)
	l.index = len(*q)
	*q = append(*q, l)
}
func (q *expiryQueue) Pop() any {
	old := *q
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*q = old[:len(old)-1]
	return l
}
