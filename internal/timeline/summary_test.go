package timeline

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// span is a local job over [s, e] ms with one local_compile phase.
func span(name string, s, e float64) Job {
	return Job{Source: name, Output: name + ".o", Where: WhereLocal, Slot: -1, Phases: phases(PhaseLocalCompile, s, e)}
}

func pathNames(b *Build) string {
	var names []string
	for _, st := range CriticalPath(b) {
		names = append(names, fmt.Sprintf("%s(%v)", b.Jobs[st.Job].Source, st.Gap))
	}
	return strings.Join(names, " ")
}

func TestCriticalPath(t *testing.T) {
	cases := []struct {
		name string
		jobs []Job
		want string
	}{
		{"serial with noise", []Job{span("A", 0, 10), span("B", 10, 20), span("D", 0, 25), span("C", 21, 30)},
			"A(0s) B(0s) C(1ms)"},
		{"two streams", []Job{span("X1", 0, 5), span("Y1", 0, 8), span("X2", 5, 12), span("Y2", 8, 9), span("Z", 12, 20)},
			"X1(0s) X2(0s) Z(0s)"},
		// Two jobs end as C starts: the later starting one is taken.
		{"tie on end", []Job{span("long", 0, 10), span("short", 6, 10), span("C", 10, 15)},
			"short(6ms) C(0s)"},
		// Zero-length jobs at one instant: the walk ends, nothing twice.
		{"instants", []Job{span("p", 5, 5), span("q", 5, 5), span("r", 5, 5)},
			"p(5ms) q(0s) r(0s)"},
		{"one", []Job{span("only", 3, 9)}, "only(3ms)"},
		// The last job to end started first: nothing precedes it.
		{"long first", []Job{span("big", 0, 100), span("a", 1, 2), span("b", 2, 50)}, "big(0s)"},
		{"empty", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &Build{ID: "cp", Start: at(0), Jobs: c.jobs}
			if got := pathNames(b); got != c.want {
				t.Fatalf("critical path %q, want %q", got, c.want)
			}
		})
	}
}

// TestCriticalPathProperties checks the definition on synthetic builds:
// the path ends with the last job to end, each step starts after its
// predecessor ended, no recorded job ended between the two, the first
// step has no predecessor, and jobs plus gaps add up to the wall time.
func TestCriticalPathProperties(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		b := synthBuild(400, 1+int(seed)*5, seed)
		b.Start = at(-time.Second) // time before the first compile
		path := CriticalPath(b)
		if len(path) < 2 {
			t.Fatalf("seed %d: path of %d", seed, len(path))
		}
		_, end := b.Span()
		last := &b.Jobs[path[len(path)-1].Job]
		if !last.End().Equal(end) {
			t.Fatalf("seed %d: path ends at %v, build at %v", seed, last.End(), end)
		}
		var total time.Duration
		for i, st := range path {
			j := &b.Jobs[st.Job]
			total += st.Gap + j.Wall()
			if i == 0 {
				for k := range b.Jobs {
					if !b.Jobs[k].End().After(j.Start()) && k != st.Job {
						t.Fatalf("seed %d: job %d ended before the first step started", seed, k)
					}
				}
				continue
			}
			prev := &b.Jobs[path[i-1].Job]
			if prev.End().After(j.Start()) || st.Gap != j.Start().Sub(prev.End()) {
				t.Fatalf("seed %d step %d: predecessor ends %v, step starts %v, gap %v", seed, i, prev.End(), j.Start(), st.Gap)
			}
			for k := range b.Jobs {
				e := b.Jobs[k].End()
				if e.After(prev.End()) && !e.After(j.Start()) {
					t.Fatalf("seed %d step %d: job %d ended between predecessor and step", seed, i, k)
				}
			}
		}
		if total != b.Wall() {
			t.Fatalf("seed %d: path jobs and gaps add to %v, wall %v", seed, total, b.Wall())
		}
	}
}

func TestSummarize(t *testing.T) {
	r1 := remoteJob("a.c", "h1", 0, 0) // preprocess 2, wait 1, send 1, compile 16, return 1, write 1
	r2 := remoteJob("b.c", "h2", 0, 5)
	r2.Exit = 1
	r1.BytesOut, r1.BytesIn, r2.BytesOut, r2.BytesIn = 100, 10, 200, 20
	l := span("c.c", 3, 43)
	l.LocalReason = "links"
	cj := Job{Source: "d.c", Where: WhereCache, Slot: -1, Phases: phases(PhasePreprocess, 1, 4, PhaseCacheLookup, 4, 5, PhaseCacheHit, 5, 7)}
	b := &Build{ID: "s", Command: []string{"make"}, Dir: "/d", Start: at(0), Jobs: []Job{r1, r2, l, cj}, Dropped: 2}
	s := Summarize(b)
	want := Summary{ID: "s", Command: []string{"make"}, Dir: "/d", Start: at(0), Wall: ms(43), Files: 4, Remote: 2, Local: 1,
		Cached: 1, Failed: 1, Dropped: 2, Hosts: 2, FarmCPU: ms(32), LocalCPU: ms(40), LeaseWait: ms(2), Preprocess: ms(7),
		Transfer: ms(4), Cache: ms(3), BytesOut: 300, BytesIn: 30}
	if fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", want) {
		t.Fatalf("Summarize:\n got %+v\nwant %+v", s, want)
	}
	if got := Slowest(b, 2); len(got) != 2 || got[0] != 2 || got[1] != 0 {
		t.Fatalf("Slowest = %v", got)
	}
}

func TestWriteSummary(t *testing.T) {
	b := synthBuild(80, 8, 5)
	b.Jobs[3].Phases[len(b.Jobs[3].Phases)-1].End = b.End.Add(2 * time.Second) // the slowest file, ending last
	var buf bytes.Buffer
	if err := WriteSummary(&buf, b); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	sum := Summarize(b)
	for _, want := range []string{"wall time", fmtDur(sum.Wall), "compiling on the farm", fmtDur(sum.FarmCPU),
		"waiting for slots", "preprocessing", fmt.Sprintf("%d remote", sum.Remote), "slowest files:", "critical path:"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	// The slowest is first, quoted: its name holds control characters.
	if !strings.Contains(out, `   1. `) || !strings.Contains(out, `"src/ctl\x01\x1b[31mred.c"`) ||
		strings.Index(out, `red.c"`) > strings.Index(out, "   2. ") {
		t.Errorf("slowest file not first or not quoted:\n%s", out)
	}
	if strings.ContainsAny(out, "\x01\x1b") {
		t.Error("control characters reached the terminal")
	}
	// The critical path ends with it.
	cp := out[strings.Index(out, "critical path:"):]
	lines := strings.Split(strings.TrimSpace(cp), "\n")
	if !strings.Contains(lines[len(lines)-1], `red.c"`) {
		t.Errorf("critical path does not end with the last job:\n%s", cp)
	}
	t.Logf("\n%s", out)
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond: "850µs", ms(4.25): "4.2ms", ms(12): "12ms", 3420 * time.Millisecond: "3.42s",
		245 * time.Second: "4m05s", 2*time.Hour + 3*time.Minute: "2h03m", -ms(12): "-12ms",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}
