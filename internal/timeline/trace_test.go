package timeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

type tevent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Ts   *int64         `json:"ts"`
	Dur  *int64         `json:"dur"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args"`
}

func parseTrace(t *testing.T, b *Build) []tevent {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTrace(&buf, b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents     []tevent          `json:"traceEvents"`
		DisplayTimeUnit string            `json:"displayTimeUnit"`
		OtherData       map[string]string `json:"otherData"`
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("trace is not the JSON object format: %v", err)
	}
	if dec.More() {
		t.Fatal("trailing data after the trace object")
	}
	if doc.OtherData["build"] != b.ID {
		t.Fatalf("otherData %v", doc.OtherData)
	}
	return doc.TraceEvents
}

// checkTrace checks every property the trace promises for b.
func checkTrace(t *testing.T, b *Build, evs []tevent) {
	t.Helper()
	procName := map[int]string{}
	threadName := map[[2]int]string{}
	compiles := map[int][]tevent{}
	perJob := map[int][]tevent{}
	lanes := map[[2]int][]tevent{}
	minTs, maxEnd := int64(1<<62), int64(0)
	for _, e := range evs {
		switch e.Ph {
		case "M":
			name, _ := e.Args["name"].(string)
			switch e.Name {
			case "process_name":
				procName[e.Pid] = name
			case "thread_name":
				threadName[[2]int{e.Pid, e.Tid}] = name
			case "process_sort_index", "thread_sort_index":
			default:
				t.Errorf("unknown metadata %q", e.Name)
			}
			continue
		case "X":
		default:
			t.Fatalf("event phase %q", e.Ph)
		}
		if e.Ts == nil || e.Dur == nil || *e.Ts < 0 || *e.Dur < 0 {
			t.Fatalf("X event without ts/dur: %+v", e)
		}
		minTs, maxEnd = min(minTs, *e.Ts), max(maxEnd, *e.Ts+*e.Dur)
		lanes[[2]int{e.Pid, e.Tid}] = append(lanes[[2]int{e.Pid, e.Tid}], e)
		if e.Cat == "build" {
			continue
		}
		ji := int(e.Args["job"].(float64))
		perJob[ji] = append(perJob[ji], e)
		if e.Cat == WhereRemote || e.Cat == WhereLocal || e.Cat == WhereCache {
			compiles[ji] = append(compiles[ji], e)
		} else if e.Cat != "phase" {
			t.Errorf("category %q", e.Cat)
		}
	}

	// Spans the wall time.
	if minTs != 0 || maxEnd != b.Wall().Microseconds() {
		t.Errorf("trace spans %d..%dµs, build wall %dµs", minTs, maxEnd, b.Wall().Microseconds())
	}
	// Every job: exactly one compile event with its details, and one
	// event per phase in the job's order.
	for ji := range b.Jobs {
		j := &b.Jobs[ji]
		c := compiles[ji]
		if len(c) != 1 {
			t.Fatalf("job %d (%s): %d compile events", ji, j.Source, len(c))
		}
		a := c[0].Args
		wantHost := "local"
		if j.Phases[j.CompilePhase()].Name == PhaseRemoteCompile {
			wantHost = j.Host
			if procName[c[0].Pid] != j.Host {
				t.Errorf("job %d compiled on %q but its event is in process %q", ji, j.Host, procName[c[0].Pid])
			}
		}
		if c[0].Cat != j.Where || a["host"] != wantHost || a["source"] != viaJSON(j.Source) ||
			a["output"] != viaJSON(j.Output) || int(a["exit"].(float64)) != j.Exit ||
			int64(a["bytes_out"].(float64)) != j.BytesOut || int64(a["bytes_in"].(float64)) != j.BytesIn ||
			(j.LocalReason != "" && a["reason"] != j.LocalReason) || a["phase"] != j.Phases[j.CompilePhase()].Name {
			t.Errorf("job %d compile event %+v for %+v", ji, c[0], *j)
		}
		pe := perJob[ji]
		if len(pe) != len(j.Phases) {
			t.Fatalf("job %d: %d events for %d phases", ji, len(pe), len(j.Phases))
		}
		sort.SliceStable(pe, func(x, y int) bool { return *pe[x].Ts < *pe[y].Ts })
		for i, e := range pe {
			name := e.Name
			if e.Cat != "phase" {
				name = e.Args["phase"].(string)
			} else {
				name, _, _ = strings.Cut(name, " ")
			}
			if name != j.Phases[i].Name {
				t.Errorf("job %d event %d is %q, phase %d is %q", ji, i, name, i, j.Phases[i].Name)
			}
			if want := j.Phases[i].Start.Sub(firstStart(b)).Microseconds(); *e.Ts != want {
				t.Errorf("job %d phase %d ts %d, want %d", ji, i, *e.Ts, want)
			}
		}
	}
	// No two events overlap within a lane, and every lane is named.
	for lane, es := range lanes {
		if procName[lane[0]] == "" || (lane[0] != pidBuild && threadName[lane] == "") {
			t.Errorf("lane %v has no name", lane)
		}
		sort.Slice(es, func(x, y int) bool { return *es[x].Ts < *es[y].Ts })
		for i := 1; i < len(es); i++ {
			if *es[i-1].Ts+*es[i-1].Dur > *es[i].Ts {
				t.Fatalf("lane %v (%s): %s [%d+%d] overlaps %s [%d]", lane, procName[lane[0]], es[i-1].Name,
					*es[i-1].Ts, *es[i-1].Dur, es[i].Name, *es[i].Ts)
			}
		}
	}
}

// viaJSON is s as JSON carries it (each invalid byte becomes U+FFFD).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

func firstStart(b *Build) time.Time { s, _ := b.Span(); return s }

// slotOverlaps counts pairs of jobs reporting the same host slot whose
// host phases overlap, as client-side timestamps make them.
func slotOverlaps(b *Build) int {
	type iv struct{ s, e time.Time }
	by := map[string][]iv{}
	for _, j := range b.Jobs {
		if j.Where != WhereRemote {
			continue
		}
		var s, e time.Time
		for _, p := range j.Phases {
			if phaseKind(p.Name) == resHost {
				if s.IsZero() {
					s = p.Start
				}
				e = p.End
			}
		}
		k := fmt.Sprintf("%s/%d", j.Host, j.Slot)
		by[k] = append(by[k], iv{s, e})
	}
	n := 0
	for _, ivs := range by {
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].s.Before(ivs[b].s) })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].s.Before(ivs[i-1].e) {
				n++
			}
		}
	}
	return n
}

func TestTrace(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			b := synthBuild(300, 16, seed)
			for i := range b.Jobs {
				if err := b.Jobs[i].Validate(); err != nil {
					t.Fatalf("synthetic job %d: %v", i, err)
				}
			}
			if n := slotOverlaps(b); n == 0 {
				t.Fatal("the synthetic build has no overlapping jobs on a reused slot: the lane test would be idle")
			}
			checkTrace(t, b, parseTrace(t, b))
		})
	}
}

// TestTraceSlots: the reported slot is the lane when it is free; two jobs
// whose times on one slot overlap get different lanes.
func TestTraceSlots(t *testing.T) {
	a := remoteJob("a.c", "h1", 3, 0)
	b := remoteJob("b.c", "h1", 3, 17.995) // send starts 5µs before a's return ends
	c := remoteJob("c.c", "h1", 1, 100)
	build := &Build{ID: "slots", Start: at(0), Jobs: []Job{a, b, c}}
	evs := parseTrace(t, build)
	checkTrace(t, build, evs)
	tid := map[string]int{}
	for _, e := range evs {
		if e.Cat == WhereRemote {
			tid[e.Args["source"].(string)] = e.Tid
		}
	}
	if tid["a.c"] != 3 || tid["c.c"] != 1 || tid["b.c"] == 3 {
		t.Fatalf("lanes %v: want a on slot 3, c on slot 1, b elsewhere", tid)
	}
	names := map[int]string{}
	for _, e := range evs {
		if e.Ph == "M" && e.Name == "thread_name" && e.Pid == pidFirstHost {
			names[e.Tid] = e.Args["name"].(string)
		}
	}
	// Lanes the host reported are its slots; the lane b was moved to is
	// not a slot the host named.
	if names[3] != "slot 3" || names[1] != "slot 1" || names[tid["b.c"]] != fmt.Sprintf("lane %d", tid["b.c"]) {
		t.Fatalf("lane names %v", names)
	}
}

// TestPlaceMinimal: without hints the colouring uses exactly as many
// lanes as the most intervals live at one instant, and never overlaps.
func TestPlaceMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 200; round++ {
		type iv struct{ s, e time.Time }
		var ivs []iv
		for i := 0; i < 1+rng.IntN(60); i++ {
			s := at(time.Duration(rng.IntN(1000)) * time.Microsecond)
			ivs = append(ivs, iv{s, s.Add(time.Duration(rng.IntN(200)) * time.Microsecond)})
		}
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].s.Before(ivs[b].s) })
		var r resource
		laneEnds := map[int]time.Time{}
		for _, v := range ivs {
			l := r.place(v.s, v.e, -1)
			if laneEnds[l].After(v.s) {
				t.Fatalf("round %d: lane %d overlaps", round, l)
			}
			laneEnds[l] = v.e
		}
		depth := 0
		for i, v := range ivs { // depth at each start: v and the intervals live then
			d := 0
			for k, w := range ivs {
				if k == i || !w.s.After(v.s) && w.e.After(v.s) {
					d++
				}
			}
			depth = max(depth, d)
		}
		if len(r.lanes) != depth {
			t.Fatalf("round %d: %d lanes for depth %d", round, len(r.lanes), depth)
		}
	}
}

func TestTraceEmptyBuild(t *testing.T) {
	b := &Build{ID: "empty", Start: at(0)}
	evs := parseTrace(t, b)
	checkTrace(t, b, evs)
}
