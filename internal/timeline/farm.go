package timeline

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"time"
)

// FarmEvent is one lease on a farm host's slot, as the broker sees it.
type FarmEvent struct {
	Host    string
	Slot    int // the slot the lease holds, -1 unknown
	User    string
	LeaseID uint64
	Start   time.Time
	End     time.Time // zero while the lease runs
}

// DefaultFarmRing is a ring size that holds a few minutes of a busy farm.
const DefaultFarmRing = 4096

// FarmRing holds the latest lease events, overwriting the oldest when
// full. It takes every instant from its caller and is not safe for
// concurrent use: the broker calls it under its state lock.
type FarmRing struct {
	buf   []FarmEvent
	next  int            // where the next event goes
	n     int            // events held
	index map[uint64]int // lease id → position, for Finish
}

// NewFarmRing returns a ring of capacity events (DefaultFarmRing if
// capacity <= 0).
func NewFarmRing(capacity int) *FarmRing {
	if capacity <= 0 {
		capacity = DefaultFarmRing
	}
	return &FarmRing{buf: make([]FarmEvent, capacity), index: make(map[uint64]int, capacity)}
}

// Add records e (normally with a zero End: the lease was just granted).
// A lease still running when the ring wraps past it falls out of the
// picture, as finished ones do.
func (r *FarmRing) Add(e FarmEvent) {
	if r.n == len(r.buf) {
		old := r.buf[r.next].LeaseID
		if pos, ok := r.index[old]; ok && pos == r.next {
			delete(r.index, old)
		}
	} else {
		r.n++
	}
	r.buf[r.next] = e
	r.index[e.LeaseID] = r.next
	r.next = (r.next + 1) % len(r.buf)
}

// Finish sets the end of lease id's event; false if the ring no longer
// holds it (or never did). A lease finishes once: a second Finish does
// not move its end.
func (r *FarmRing) Finish(leaseID uint64, end time.Time) bool {
	pos, ok := r.index[leaseID]
	if !ok {
		return false
	}
	e := &r.buf[pos]
	if e.End.IsZero() {
		e.End = end
		if e.End.Before(e.Start) {
			e.End = e.Start
		}
	}
	return true
}

// Len is the number of events held.
func (r *FarmRing) Len() int { return r.n }

// Events returns a copy of the events held, oldest first.
func (r *FarmRing) Events() []FarmEvent {
	out := make([]FarmEvent, 0, r.n)
	first := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(first+i)%len(r.buf)])
	}
	return out
}

// Geometry of the farm timeline.
const (
	farmLabelW = 150
	farmPlotW  = 900
	farmAxisH  = 22
	farmLaneH  = 10
	farmLaneGp = 2
	farmGroupG = 6
	// farmMaxLanes bounds the rows drawn, whatever the events say.
	farmMaxLanes = 1024
)

// farmPalette are distinct colours given to users in name order; beyond
// them a user's colour comes from a hash of the name.
var farmPalette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"}

func userColour(users []string, u string) string {
	i := sort.SearchStrings(users, u)
	if i < len(farmPalette) {
		return farmPalette[i]
	}
	h := fnv.New32a()
	h.Write([]byte(u))
	return fmt.Sprintf("hsl(%d,55%%,45%%)", h.Sum32()%360)
}

// WriteFarmSVG renders the events overlapping the last window before now
// as an SVG fragment for the status page: one lane per host slot (the
// reported slot where it is free, else the lowest free lane, as in the
// build timeline, so bars never overlap within a lane), bars coloured by
// user with a legend, each bar of class "bar" with data-user and
// data-host and a <title> with its details. Running leases (zero End) run
// to now. Styles are inline attributes, so the fragment needs no page CSS.
func WriteFarmSVG(w io.Writer, events []FarmEvent, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = time.Minute
	}
	from := now.Add(-window)
	type bar struct {
		e          *FarmEvent
		start, end time.Time
		lane       int
	}
	var bars []bar
	userSet := map[string]bool{}
	for i := range events {
		e := &events[i]
		s, t := e.Start, e.End
		if t.IsZero() || t.After(now) {
			t = now // running
		}
		if t.Before(from) || s.After(now) {
			continue // outside the window
		}
		if s.Before(from) {
			s = from
		}
		if t.Before(s) {
			t = s
		}
		bars = append(bars, bar{e: e, start: s, end: t})
		userSet[e.User] = true
	}
	// Lanes per host, in order of start.
	sort.SliceStable(bars, func(a, b int) bool {
		if bars[a].e.Host != bars[b].e.Host {
			return bars[a].e.Host < bars[b].e.Host
		}
		return bars[a].start.Before(bars[b].start)
	})
	var hosts []string
	hostLanes := map[string]*resource{}
	for i := range bars {
		h := bars[i].e.Host
		r := hostLanes[h]
		if r == nil {
			r = &resource{kind: resHost, host: h}
			hostLanes[h] = r
			hosts = append(hosts, h)
		}
		hint := bars[i].e.Slot
		if hint >= maxHintLane {
			hint = -1
		}
		bars[i].lane = r.place(bars[i].start, bars[i].end, hint)
	}
	users := make([]string, 0, len(userSet))
	for u := range userSet {
		users = append(users, u)
	}
	sort.Strings(users)

	// Rows: at most farmMaxLanes, whatever the events say.
	hostY := map[string]float64{}
	shown := map[string]int{} // lanes drawn per host
	y := float64(farmAxisH)
	rowsLeft := farmMaxLanes
	for _, h := range hosts {
		n := min(len(hostLanes[h].lanes), rowsLeft)
		if n == 0 {
			break
		}
		rowsLeft -= n
		hostY[h], shown[h] = y, n
		y += float64(n)*(farmLaneH+farmLaneGp) + farmGroupG
	}
	legendY := y + 6
	height := legendY + 16*float64((len(users)+5)/6) + 6
	width := farmLabelW + farmPlotW + 20
	x := func(t time.Time) float64 { return farmLabelW + float64(t.Sub(from))/float64(window)*farmPlotW }

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" class="farm-timeline" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	for _, t := range ticks(window) {
		tx := x(now.Add(-t))
		label := "now"
		if t > 0 {
			label = "-" + fmtTick(t)
		}
		fmt.Fprintf(bw, `<line x1="%.2f" y1="%d" x2="%.2f" y2="%.0f" stroke="#ddd"/><text x="%.2f" y="13" text-anchor="middle" fill="#555">%s</text>`+"\n",
			tx, farmAxisH-4, tx, legendY-6, tx, label)
	}
	for _, h := range hosts {
		for lane := range shown[h] {
			ly := hostY[h] + float64(lane)*(farmLaneH+farmLaneGp)
			label := hostLanes[h].laneLabel(lane)
			if lane == 0 {
				label = h + " · " + label
			}
			fmt.Fprintf(bw, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="#f4f4f4"/><text x="4" y="%.1f" fill="#333">%s</text>`+"\n",
				farmLabelW, ly, farmPlotW, farmLaneH, ly+farmLaneH-1, esc(label))
		}
	}
	for _, b := range bars {
		if b.lane >= shown[b.e.Host] {
			continue
		}
		e := b.e
		ly := hostY[e.Host] + float64(b.lane)*(farmLaneH+farmLaneGp)
		x0 := x(b.start)
		wd := max(x(b.end)-x0, 1)
		state, dur := "finished", e.End.Sub(e.Start)
		cls := "bar"
		if e.End.IsZero() {
			state, dur, cls = "running", now.Sub(e.Start), "bar running"
		}
		fmt.Fprintf(bw, `<rect class="%s" data-user="%s" data-host="%s" x="%.2f" y="%.1f" width="%.2f" height="%d" fill="%s"><title>%s on %s slot %d, lease %d, %s %s</title></rect>`+"\n",
			cls, esc(e.User), esc(e.Host), x0, ly, wd, farmLaneH, userColour(users, e.User),
			esc(e.User), esc(e.Host), e.Slot, e.LeaseID, state, fmtDur(dur))
	}
	for i, u := range users {
		lx := float64(farmLabelW + (i%6)*150)
		ly := legendY + 16*float64(i/6)
		fmt.Fprintf(bw, `<g class="legend" data-user="%s"><rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f" fill="#333">%s</text></g>`+"\n",
			esc(u), lx, ly, userColour(users, u), lx+14, ly+9, esc(u))
	}
	if len(bars) == 0 {
		fmt.Fprintf(bw, `<text x="%d" y="%d" fill="#777">no leases in the last %s</text>`+"\n", farmLabelW, farmAxisH+10, fmtDur(window))
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}
