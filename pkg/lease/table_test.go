package lease

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// checkTable verifies the invariant documented on Table and the heap's
// internal consistency.
func checkTable(t *testing.T, tb *Table) {
	t.Helper()
	if len(tb.queue) != len(tb.byID) {
		t.Fatalf("heap holds %d leases, byID %d", len(tb.queue), len(tb.byID))
	}
	for i, l := range tb.queue {
		if l.index != i {
			t.Fatalf("lease %d at heap position %d has index %d", l.ID, i, l.index)
		}
		if tb.byID[l.ID] != l {
			t.Fatalf("lease %d in heap but not byID", l.ID)
		}
		if p := (i - 1) / 2; i > 0 && tb.queue[i].Expires.Before(tb.queue[p].Expires) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
	nHost, nHolder := 0, 0
	for host, s := range tb.byHost {
		if len(s) == 0 {
			t.Fatalf("empty byHost set for %q", host)
		}
		for id, l := range s {
			if tb.byID[id] != l || l.Host != host || l.ID != id {
				t.Fatalf("byHost[%q][%d] inconsistent", host, id)
			}
			nHost++
		}
	}
	for h, s := range tb.byHolder {
		if len(s) == 0 || h == 0 {
			t.Fatalf("bad byHolder set for %d (%d entries)", h, len(s))
		}
		for id, l := range s {
			if tb.byID[id] != l || l.Holder != h || l.ID != id {
				t.Fatalf("byHolder[%d][%d] inconsistent", h, id)
			}
			nHolder++
		}
	}
	wantHolder := 0
	for id, l := range tb.byID {
		if l.ID != id {
			t.Fatalf("byID[%d] holds lease %d", id, l.ID)
		}
		if l.Holder != 0 {
			wantHolder++
		}
		if l.index < 0 {
			t.Fatalf("lease %d not in heap", id)
		}
	}
	if nHost != len(tb.byID) || nHolder != wantHolder {
		t.Fatalf("byHost has %d, byHolder %d; want %d and %d", nHost, nHolder, len(tb.byID), wantHolder)
	}
}

func sortedIDs(ids []ID) []ID {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestNewTableFirstID(t *testing.T) {
	tests := []struct {
		first ID
		want  []ID
	}{
		{0, []ID{1, 2, 3}},
		{1, []ID{1, 2, 3}},
		{1000, []ID{1000, 1001, 1002}},
		{FirstID(t0), []ID{FirstID(t0), FirstID(t0) + 1, FirstID(t0) + 2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.first), func(t *testing.T) {
			tb := NewTable(tt.first)
			var got []ID
			for i := range tt.want {
				l := tb.Grant(Lease{User: "u", Host: "h", Holder: 1, Expires: at(i)})
				got = append(got, l.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("IDs %v, want %v", got, tt.want)
			}
			checkTable(t, tb)
		})
	}
}

func TestGrantAdoption(t *testing.T) {
	tests := []struct {
		name     string
		adopt    ID
		wantNext ID
	}{
		{"above next bumps it", 500, 501},
		{"equal to next bumps it", 10, 11},
		{"below next leaves it", 5, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := NewTable(10)
			l := tb.Grant(Lease{ID: tt.adopt, User: "u", Host: "h", Expires: at(1)})
			if l.ID != tt.adopt {
				t.Fatalf("adopted lease got ID %d, want %d", l.ID, tt.adopt)
			}
			if n := tb.Grant(Lease{User: "u", Host: "h", Expires: at(2)}); n.ID != tt.wantNext {
				t.Errorf("next ID %d, want %d", n.ID, tt.wantNext)
			}
			checkTable(t, tb)
		})
	}
	t.Run("same ID replaces", func(t *testing.T) {
		tb := NewTable(1)
		tb.Grant(Lease{ID: 7, User: "u", Host: "a", Holder: 3, Expires: at(1)})
		tb.Grant(Lease{ID: 7, User: "v", Host: "b", Holder: 0, Expires: at(9)})
		if tb.Len() != 1 || tb.CountOnHost("a") != 0 || tb.CountOnHost("b") != 1 || len(tb.OfHolder(3)) != 0 {
			t.Errorf("after re-grant: len %d, a %d, b %d, holder 3 %v", tb.Len(), tb.CountOnHost("a"), tb.CountOnHost("b"), tb.OfHolder(3))
		}
		if e, _ := tb.NextExpiry(); !e.Equal(at(9)) {
			t.Errorf("NextExpiry %v, want the new lease's", e)
		}
		checkTable(t, tb)
	})
	t.Run("adopted lease has no holder", func(t *testing.T) {
		tb := NewTable(1)
		tb.Grant(Lease{ID: 3, Host: "a", Expires: at(1)})
		if ids := tb.OfHolder(0); len(ids) != 0 {
			t.Errorf("OfHolder(0) = %v", ids)
		}
		checkTable(t, tb)
	})
}

func TestGrantStoresCopy(t *testing.T) {
	tb := NewTable(1)
	in := Lease{User: "u", Host: "h", Holder: 2, Power: 1.5, Tier: 2, Granted: at(0), Expires: at(100), File: "a.c"}
	p := tb.Grant(in)
	if in.ID != 0 {
		t.Error("Grant modified its argument")
	}
	got, ok := tb.Get(p.ID)
	if !ok || got != p {
		t.Fatalf("Get(%d) = %v, %v", p.ID, got, ok)
	}
	want := in
	want.ID = p.ID
	want.index = got.index
	if *got != want {
		t.Errorf("stored %+v, want %+v", *got, want)
	}
}

func TestRenew(t *testing.T) {
	tb := NewTable(1)
	a := tb.Grant(Lease{Host: "h", Expires: at(10)})
	b := tb.Grant(Lease{Host: "h", Expires: at(20)})
	if tb.Renew(999, at(5)) {
		t.Error("Renew of an unknown lease reported true")
	}
	if !tb.Renew(a.ID, at(30)) {
		t.Fatal("Renew failed")
	}
	if e, ok := tb.NextExpiry(); !ok || !e.Equal(at(20)) {
		t.Errorf("NextExpiry %v, want b's %v", e, at(20))
	}
	if got := tb.Expired(at(25), 0); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("Expired(25) = %v, want only b", got)
	}
	// Renew may also move an expiry earlier.
	if !tb.Renew(a.ID, at(1)) {
		t.Fatal("Renew failed")
	}
	if e, _ := tb.NextExpiry(); !e.Equal(at(1)) {
		t.Errorf("NextExpiry %v", e)
	}
	checkTable(t, tb)
}

func TestRelease(t *testing.T) {
	tb := NewTable(1)
	a := tb.Grant(Lease{User: "u", Host: "h", Holder: 4, Expires: at(10), File: "f.c"})
	tb.Grant(Lease{User: "u", Host: "h", Holder: 4, Expires: at(5)})
	l, ok := tb.Release(a.ID)
	if !ok || l.ID != a.ID || l.File != "f.c" || l.Host != "h" {
		t.Fatalf("Release = %+v, %v", l, ok)
	}
	if _, ok := tb.Release(a.ID); ok {
		t.Error("second Release reported true")
	}
	if _, ok := tb.Get(a.ID); ok {
		t.Error("released lease still there")
	}
	if tb.Len() != 1 || tb.CountOnHost("h") != 1 || len(tb.OfHolder(4)) != 1 {
		t.Errorf("len %d count %d holder %v", tb.Len(), tb.CountOnHost("h"), tb.OfHolder(4))
	}
	if tb.Renew(a.ID, at(100)) {
		t.Error("Renew of a released lease reported true")
	}
	checkTable(t, tb)
	if _, ok := tb.Release(0); ok {
		t.Error("Release(0) reported true")
	}
}

func TestExpired(t *testing.T) {
	mk := func() *Table {
		tb := NewTable(1)
		for _, ms := range []int{50, 10, 40, 20, 30} {
			tb.Grant(Lease{Host: "h", Expires: at(ms)})
		}
		return tb
	}
	tests := []struct {
		name string
		now  int
		max  int
		want []int // expiries, in order
		left int
	}{
		{"none yet", 9, 0, nil, 5},
		{"exactly at expiry", 10, 0, []int{10}, 4},
		{"all", 100, 0, []int{10, 20, 30, 40, 50}, 0},
		{"negative max means all", 100, -1, []int{10, 20, 30, 40, 50}, 0},
		{"max 2", 100, 2, []int{10, 20}, 3},
		{"max above due", 25, 10, []int{10, 20}, 3},
		{"max 1", 45, 1, []int{10}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := mk()
			got := tb.Expired(at(tt.now), tt.max)
			var ms []int
			for _, l := range got {
				ms = append(ms, int(l.Expires.Sub(t0)/time.Millisecond))
				if _, ok := tb.Get(l.ID); ok {
					t.Errorf("expired lease %d still in the table", l.ID)
				}
			}
			if !slices.Equal(ms, tt.want) {
				t.Errorf("Expired = %v, want %v", ms, tt.want)
			}
			if tb.Len() != tt.left {
				t.Errorf("%d left, want %d", tb.Len(), tt.left)
			}
			checkTable(t, tb)
		})
	}
	t.Run("empty table", func(t *testing.T) {
		tb := NewTable(1)
		if got := tb.Expired(at(1000), 0); len(got) != 0 {
			t.Errorf("got %v", got)
		}
		if _, ok := tb.NextExpiry(); ok {
			t.Error("NextExpiry on an empty table")
		}
	})
}

// Many random renewals keep the heap in order: compared with a brute-force
// model, NextExpiry is always the minimum, and draining yields every lease
// in expiry order.
func TestRenewHeapOrderProperty(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			tb := NewTable(1)
			model := map[ID]time.Time{}
			for i := 0; i < 300; i++ {
				l := tb.Grant(Lease{Host: "h", Expires: at(rng.Intn(100000))})
				model[l.ID] = l.Expires
			}
			for i := 0; i < 5000; i++ {
				id := ID(1 + rng.Intn(300))
				e := at(rng.Intn(100000))
				if !tb.Renew(id, e) {
					t.Fatalf("Renew(%d) failed", id)
				}
				model[id] = e
				min := time.Time{}
				for _, e := range model {
					if min.IsZero() || e.Before(min) {
						min = e
					}
				}
				if got, _ := tb.NextExpiry(); !got.Equal(min) {
					t.Fatalf("step %d: NextExpiry %v, model %v", i, got, min)
				}
			}
			checkTable(t, tb)
			// Drain in random-sized steps at increasing times.
			var want []time.Time
			for _, e := range model {
				want = append(want, e)
			}
			sort.Slice(want, func(i, j int) bool { return want[i].Before(want[j]) })
			var got []time.Time
			for now := 0; now <= 100000; now += rng.Intn(5000) {
				for _, l := range tb.Expired(at(now), rng.Intn(20)) {
					if l.Expires.After(at(now)) {
						t.Fatalf("lease expiring %v returned at %v", l.Expires, at(now))
					}
					if model[l.ID] != l.Expires {
						t.Fatalf("lease %d expires %v, model %v", l.ID, l.Expires, model[l.ID])
					}
					got = append(got, l.Expires)
				}
			}
			for _, l := range tb.Expired(at(100000), 0) {
				got = append(got, l.Expires)
			}
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Fatalf("drained %d leases out of order (want %d)", len(got), len(want))
			}
		})
	}
}

// A randomised model-based test: 10k operations of every kind, checking
// after each one that the table agrees with a plain map and that its
// indexes are consistent (the invariant documented on Table).
func TestTableModel(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	hosts := []string{"a", "b", "c", "d", "e"}
	tb := NewTable(100)
	model := map[ID]Lease{}
	nextAuto := ID(100)
	now := 0
	for op := 0; op < 10000; op++ {
		switch k := rng.Intn(10); {
		case k < 4: // grant
			l := Lease{User: fmt.Sprint("u", rng.Intn(4)), Host: hosts[rng.Intn(len(hosts))], Holder: uint64(rng.Intn(4)), Expires: at(now + rng.Intn(2000))}
			if rng.Intn(5) == 0 { // adoption, sometimes of an existing ID
				l.ID = ID(50 + rng.Intn(int(nextAuto)))
			}
			p := tb.Grant(l)
			if l.ID == 0 {
				if p.ID != nextAuto {
					t.Fatalf("op %d: auto ID %d, want %d", op, p.ID, nextAuto)
				}
				nextAuto++
			} else if l.ID >= nextAuto {
				nextAuto = l.ID + 1
			}
			l.ID = p.ID
			model[l.ID] = l
		case k < 6: // renew
			id := pick(rng, model)
			e := at(now + rng.Intn(2000))
			_, exists := model[id]
			if got := tb.Renew(id, e); got != exists {
				t.Fatalf("op %d: Renew(%d) = %v, exists %v", op, id, got, exists)
			}
			if exists {
				l := model[id]
				l.Expires = e
				model[id] = l
			}
		case k < 8: // release
			id := pick(rng, model)
			want, exists := model[id]
			got, ok := tb.Release(id)
			if ok != exists || (ok && (got.ID != want.ID || got.Host != want.Host || !got.Expires.Equal(want.Expires))) {
				t.Fatalf("op %d: Release(%d) = %+v %v, model %+v %v", op, id, got, ok, want, exists)
			}
			delete(model, id)
		default: // time passes, expire
			now += rng.Intn(300)
			max := rng.Intn(4)
			got := tb.Expired(at(now), max)
			due := 0
			for _, l := range model {
				if !l.Expires.After(at(now)) {
					due++
				}
			}
			if want := due; max > 0 && want > max {
				due = max
			}
			if len(got) != due {
				t.Fatalf("op %d: Expired returned %d, want %d", op, len(got), due)
			}
			for i, l := range got {
				if i > 0 && l.Expires.Before(got[i-1].Expires) {
					t.Fatalf("op %d: Expired out of order", op)
				}
				if _, ok := model[l.ID]; !ok {
					t.Fatalf("op %d: Expired returned unknown lease %d", op, l.ID)
				}
				delete(model, l.ID)
			}
			// Whatever is left is not due before what was returned.
			if len(got) > 0 {
				last := got[len(got)-1].Expires
				for _, l := range model {
					if l.Expires.Before(last) {
						t.Fatalf("op %d: lease expiring %v left while %v returned", op, l.Expires, last)
					}
				}
			}
		}
		if op%10 == 0 || op > 9900 {
			checkTable(t, tb)
			checkAgainstModel(t, tb, model, hosts)
		}
	}
}

func pick(rng *rand.Rand, model map[ID]Lease) ID {
	if len(model) == 0 || rng.Intn(10) == 0 {
		return ID(rng.Intn(1 << 20)) // probably unknown
	}
	n := rng.Intn(len(model))
	for id := range model {
		if n == 0 {
			return id
		}
		n--
	}
	panic("unreachable")
}

func checkAgainstModel(t *testing.T, tb *Table, model map[ID]Lease, hosts []string) {
	t.Helper()
	if tb.Len() != len(model) {
		t.Fatalf("Len %d, model %d", tb.Len(), len(model))
	}
	byHost := map[string][]ID{}
	byHolder := map[uint64][]ID{}
	for id, l := range model {
		byHost[l.Host] = append(byHost[l.Host], id)
		if l.Holder != 0 {
			byHolder[l.Holder] = append(byHolder[l.Holder], id)
		}
		got, ok := tb.Get(id)
		if !ok || got.Host != l.Host || got.Holder != l.Holder || !got.Expires.Equal(l.Expires) {
			t.Fatalf("Get(%d) = %+v %v, model %+v", id, got, ok, l)
		}
	}
	for _, h := range append(hosts, "nowhere") {
		if got, want := sortedIDs(tb.OfHost(h)), sortedIDs(byHost[h]); !slices.Equal(got, want) {
			t.Fatalf("OfHost(%s) = %v, want %v", h, got, want)
		}
		if tb.CountOnHost(h) != len(byHost[h]) {
			t.Fatalf("CountOnHost(%s) = %d, want %d", h, tb.CountOnHost(h), len(byHost[h]))
		}
	}
	for h := uint64(0); h < 5; h++ {
		if got, want := sortedIDs(tb.OfHolder(h)), sortedIDs(byHolder[h]); !slices.Equal(got, want) {
			t.Fatalf("OfHolder(%d) = %v, want %v", h, got, want)
		}
	}
	n := 0
	tb.Each(func(l *Lease) {
		if _, ok := model[l.ID]; !ok {
			t.Fatalf("Each visited unknown lease %d", l.ID)
		}
		n++
	})
	if n != len(model) {
		t.Fatalf("Each visited %d, want %d", n, len(model))
	}
}

func TestFirstID(t *testing.T) {
	tests := []struct {
		ms   int64
		want ID
	}{
		{0, 0},
		{1, 1 << 20},
		{2, 2 << 20},
		{1_700_000_000_000, ID(1_700_000_000_000) << 20},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ms), func(t *testing.T) {
			if got := FirstID(time.UnixMilli(tt.ms)); got != tt.want {
				t.Errorf("FirstID = %d, want %d", got, tt.want)
			}
		})
	}
	// Monotonic, and a later millisecond starts above 2^20 IDs of an
	// earlier one. Sub-millisecond differences map to the same ID.
	prev := FirstID(t0)
	for _, d := range []time.Duration{time.Millisecond, time.Second, time.Hour, 24 * time.Hour * 365 * 50} {
		cur := FirstID(t0.Add(d))
		if cur < prev+1<<20 {
			t.Errorf("FirstID(t0+%v) = %d, not >= %d + 2^20", d, cur, prev)
		}
		prev = cur
	}
	if FirstID(t0.Add(time.Microsecond)) != FirstID(t0) {
		t.Error("sub-millisecond change moved FirstID")
	}
	// Still no overflow in a century.
	if a, b := FirstID(time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC)), FirstID(t0); a <= b {
		t.Errorf("FirstID overflows before 2125: %d <= %d", a, b)
	}
}

func BenchmarkGrantRelease(b *testing.B) {
	tb := NewTable(1)
	for i := 0; i < 10000; i++ {
		tb.Grant(Lease{User: fmt.Sprint("u", i%70), Host: fmt.Sprint("h", i%500), Holder: uint64(i%300 + 1), Expires: at(i)})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l := tb.Grant(Lease{User: "u1", Host: "h7", Holder: 12, Expires: at(10000 + i%5000)})
		tb.Release(l.ID)
		i++
	}
}
