package timeline

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFarmRing(t *testing.T) {
	r := NewFarmRing(4)
	for i := uint64(1); i <= 6; i++ {
		r.Add(FarmEvent{Host: "h", Slot: int(i % 2), User: "u", LeaseID: i, Start: at(time.Duration(i) * time.Second)})
	}
	if r.Len() != 4 {
		t.Fatalf("Len %d", r.Len())
	}
	var ids []uint64
	for _, e := range r.Events() {
		ids = append(ids, e.LeaseID)
	}
	if fmt.Sprint(ids) != "[3 4 5 6]" {
		t.Fatalf("events %v, want the four newest oldest first", ids)
	}
	if r.Finish(1, at(time.Minute)) {
		t.Fatal("finished an overwritten lease")
	}
	if !r.Finish(5, at(9*time.Second)) || !r.Finish(5, at(time.Hour)) {
		t.Fatal("Finish of a held lease")
	}
	if e := r.Events()[2]; e.LeaseID != 5 || !e.End.Equal(at(9*time.Second)) {
		t.Fatalf("lease 5 ends %v; a second Finish must not move it", e.End)
	}
	// An end before the start (clocks) is clamped.
	r.Finish(6, at(0))
	if e := r.Events()[3]; !e.End.Equal(e.Start) {
		t.Fatalf("end %v before start %v", e.End, e.Start)
	}
	// Wrapping past a lease forgets it, and the map stays bounded.
	for i := uint64(100); i < 200; i++ {
		r.Add(FarmEvent{LeaseID: i, Start: at(0)})
	}
	if r.Finish(5, at(0)) || len(r.index) != 4 || r.Len() != 4 {
		t.Fatalf("after wrapping: index %d, len %d", len(r.index), r.Len())
	}
	if NewFarmRing(0).Len() != 0 || len(NewFarmRing(0).buf) != DefaultFarmRing {
		t.Fatal("default capacity")
	}
}

// farmInWindow is how many of farmEvents' leases fall in its window.
const farmInWindow = 7

// farmEvents is a farm over the two minutes before now: two hosts, three
// users, a running lease, one that started before the window, one that
// ended before it, and two leases whose times on one reported slot
// overlap.
func farmEvents(now time.Time) []FarmEvent {
	ago := func(s float64) time.Time { return now.Add(-time.Duration(s * float64(time.Second))) }
	return []FarmEvent{
		{Host: "sun1", Slot: 0, User: "alice", LeaseID: 1, Start: ago(300), End: ago(200)}, // before the window
		{Host: "sun1", Slot: 0, User: "alice", LeaseID: 2, Start: ago(150), End: ago(100)}, // straddles its start
		{Host: "sun1", Slot: 0, User: "bob", LeaseID: 3, Start: ago(100), End: ago(60)},
		{Host: "sun1", Slot: 0, User: "carol", LeaseID: 4, Start: ago(60.001), End: ago(30)}, // overlaps 3 on slot 0
		{Host: "sun1", Slot: 1, User: "bob", LeaseID: 5, Start: ago(50)},                     // running
		{Host: "desk<12>", Slot: 0, User: `x"<y>&z`, LeaseID: 6, Start: ago(90), End: ago(10)},
		{Host: "desk<12>", Slot: 0, User: "alice", LeaseID: 7, Start: ago(10), End: ago(1)},
		{Host: "desk<12>", Slot: 5000, User: "carol", LeaseID: 8, Start: ago(20), End: ago(5)}, // bogus slot
	}
}

func TestFarmSVG(t *testing.T) {
	now := at(10 * time.Minute)
	var buf bytes.Buffer
	if err := WriteFarmSVG(&buf, farmEvents(now), now, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	els := parseXML(t, buf.Bytes())
	if els[0].name != "svg" {
		t.Fatalf("root <%s>", els[0].name)
	}
	type bar struct {
		user, host string
		x0, x1     float64
		y          string
		title      string
	}
	var bars []bar
	legend := map[string]bool{}
	for i, e := range els {
		if e.name == "g" && hasClass(e, "legend") {
			legend[e.attrs["data-user"]] = true
		}
		if !hasClass(e, "bar") {
			continue
		}
		x, _ := strconv.ParseFloat(e.attrs["x"], 64)
		w, _ := strconv.ParseFloat(e.attrs["width"], 64)
		bars = append(bars, bar{e.attrs["data-user"], e.attrs["data-host"], x, x + w, e.attrs["y"], els[i+1].text})
	}
	if len(bars) != farmInWindow {
		t.Fatalf("%d bars, want %d", len(bars), farmInWindow)
	}
	users := map[string]int{}
	for _, b := range bars {
		users[b.user]++
		if b.x0 < farmLabelW-0.01 || b.x1 > farmLabelW+farmPlotW+1.01 {
			t.Errorf("bar %+v outside the plot", b)
		}
	}
	if fmt.Sprint(users) != `map[alice:2 bob:2 carol:2 x"<y>&z:1]` {
		t.Errorf("bars per user %v", users)
	}
	if len(legend) != 4 || !legend[`x"<y>&z`] {
		t.Errorf("legend %v", legend)
	}
	// Lanes: no overlap within one; the overlapping pair on sun1 slot 0
	// is split.
	byLane := map[string][]bar{}
	for _, b := range bars {
		byLane[b.y] = append(byLane[b.y], b)
	}
	for y, bs := range byLane {
		sort.Slice(bs, func(a, c int) bool { return bs[a].x0 < bs[c].x0 })
		for i := 1; i < len(bs); i++ {
			if bs[i].x0 < bs[i-1].x1-1.01 { // bars are at least 1px wide
				t.Errorf("lane %s: %+v overlaps %+v", y, bs[i-1], bs[i])
			}
		}
	}
	var bobY, carolY string
	for _, b := range bars {
		if b.host == "sun1" && b.user == "bob" && !strings.Contains(b.title, "running") {
			bobY = b.y
		}
		if b.host == "sun1" && b.user == "carol" {
			carolY = b.y
		}
	}
	if bobY == carolY {
		t.Error("overlapping leases share a lane")
	}
	// The running lease runs to now and says so.
	running := 0
	for _, b := range bars {
		if strings.Contains(b.title, "running") {
			running++
			if b.x1 < farmLabelW+farmPlotW-0.01 {
				t.Errorf("running lease ends at x=%v", b.x1)
			}
		}
	}
	if running != 1 {
		t.Errorf("%d running bars", running)
	}

	// An empty window says so and is still well-formed.
	buf.Reset()
	WriteFarmSVG(&buf, nil, now, time.Minute)
	parseXML(t, buf.Bytes())
	if !strings.Contains(buf.String(), "no leases") {
		t.Error("empty timeline says nothing")
	}
}

// TestFarmSVGBounded: many events with bogus slots draw a bounded
// number of rows.
func TestFarmSVGBounded(t *testing.T) {
	now := at(time.Hour)
	var evs []FarmEvent
	for i := 0; i < farmMaxLanes+100; i++ {
		evs = append(evs, FarmEvent{Host: "h", Slot: 1 << 30, User: "u", LeaseID: uint64(i), Start: now.Add(-time.Second)})
	}
	var buf bytes.Buffer
	if err := WriteFarmSVG(&buf, evs, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	els := parseXML(t, buf.Bytes())
	rows, bars := 0, 0
	for _, e := range els {
		if e.name == "rect" && e.attrs["fill"] == "#f4f4f4" {
			rows++
		}
		if hasClass(e, "bar") {
			bars++
		}
	}
	if rows != farmMaxLanes || bars != farmMaxLanes {
		t.Fatalf("%d rows, %d bars; want %d of each", rows, bars, farmMaxLanes)
	}
}
