package timeline

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func phases(spec ...any) []Phase {
	// spec: name, start ms, end ms, ...
	var ps []Phase
	for i := 0; i+2 < len(spec); i += 3 {
		ps = append(ps, Phase{Name: spec[i].(string), Start: at(ms(toF(spec[i+1]))), End: at(ms(toF(spec[i+2])))})
	}
	return ps
}

func toF(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic("bad spec")
}

func remoteJob(src, host string, slot int, t float64) Job {
	return Job{Source: src, Output: src + ".o", Where: WhereRemote, Host: host, Slot: slot,
		Phases: phases(PhasePreprocess, t, t+2, PhaseLeaseWait, t+2, t+3, PhaseSend, t+3, t+4,
			PhaseRemoteCompile, t+4, t+20, PhaseReturn, t+20, t+21, PhaseWrite, t+21, t+22)}
}

func TestValidate(t *testing.T) {
	ok := remoteJob("a.c", "h", 0, 0)
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid job rejected: %v", err)
	}
	touching := Job{Where: WhereLocal, Slot: -1, Phases: phases(PhasePreprocess, 0, 1, PhaseLocalCompile, 1, 1, PhaseWrite, 1, 2)}
	if err := touching.Validate(); err != nil {
		t.Fatalf("touching and zero-length phases rejected: %v", err)
	}
	many := Job{Where: WhereLocal, Slot: -1}
	for i := 0; i <= MaxPhases; i++ {
		many.Phases = append(many.Phases, Phase{Name: PhaseLocalCompile, Start: at(ms(float64(i))), End: at(ms(float64(i)))})
	}
	cases := []struct {
		name string
		edit func(j *Job)
		want string
	}{
		{"where", func(j *Job) { j.Where = "farm" }, "where"},
		{"empty where", func(j *Job) { j.Where = "" }, "where"},
		{"slot", func(j *Job) { j.Slot = -2 }, "slot"},
		{"bytes", func(j *Job) { j.BytesIn = -1 }, "byte"},
		{"no phases", func(j *Job) { j.Phases = nil }, "no phases"},
		{"too many", func(j *Job) { *j = many }, "phases (max"},
		{"name", func(j *Job) { j.Phases[2].Name = "link" }, "unknown name"},
		{"zero time", func(j *Job) { j.Phases[0].Start = time.Time{} }, "no time"},
		{"backwards", func(j *Job) { j.Phases[3].End = j.Phases[3].Start.Add(-time.Nanosecond) }, "ends before"},
		{"overlap", func(j *Job) { j.Phases[2].Start = j.Phases[1].End.Add(-time.Nanosecond) }, "starts before"},
		{"order", func(j *Job) { j.Phases[1], j.Phases[2] = j.Phases[2], j.Phases[1] }, "starts before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := remoteJob("a.c", "h", 0, 0)
			j.Phases = append([]Phase(nil), j.Phases...)
			c.edit(&j)
			err := j.Validate()
			if !errors.Is(err, ErrInvalidJob) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalidJob mentioning %q", err, c.want)
			}
		})
	}
}

func TestJobHelpers(t *testing.T) {
	j := remoteJob("a.c", "h", 1, 10)
	if !j.Start().Equal(at(ms(10))) || !j.End().Equal(at(ms(32))) || j.Wall() != ms(22) {
		t.Fatalf("start %v end %v wall %v", j.Start(), j.End(), j.Wall())
	}
	if i := j.CompilePhase(); j.Phases[i].Name != PhaseRemoteCompile {
		t.Fatalf("compile phase %d (%s)", i, j.Phases[i].Name)
	}
	if s, e := j.CompileInterval(); !s.Equal(at(ms(14))) || !e.Equal(at(ms(30))) {
		t.Fatalf("compile interval %v-%v", s, e)
	}

	// A failed remote attempt elsewhere, then a local compile: the local
	// compile is the file's compile phase, the attempt ran on its host.
	fb := Job{Where: WhereLocal, Slot: -1, Phases: phases(PhasePreprocess, 0, 1, PhaseLeaseWait, 1, 2, PhaseSend, 2, 3,
		PhaseRemoteCompile, 3, 9, PhaseLocalCompile, 9, 30, PhaseWrite, 30, 31)}
	fb.Phases[2].Host, fb.Phases[3].Host = "bad", "bad"
	if i := fb.CompilePhase(); fb.Phases[i].Name != PhaseLocalCompile {
		t.Fatalf("fallback compile phase %s", fb.Phases[i].Name)
	}
	if fb.HostOf(3) != "bad" || fb.HostOf(4) != "" {
		t.Fatalf("HostOf: %q %q", fb.HostOf(3), fb.HostOf(4))
	}
	if fb.PhaseTime(PhaseRemoteCompile) != ms(6) || fb.PhaseTime(PhaseLocalCompile) != ms(21) {
		t.Fatal("PhaseTime")
	}

	// A preprocessing error: no compile phase; its last phase stands in.
	pe := Job{Where: WhereLocal, Slot: -1, Exit: 1, Phases: phases(PhasePreprocess, 0, 3)}
	if pe.CompilePhase() != 0 {
		t.Fatal("preprocess failure has no stand-in compile phase")
	}
	var none Job
	if none.CompilePhase() != -1 || !none.Start().IsZero() || none.Wall() != 0 {
		t.Fatal("empty job helpers")
	}
	// A retried cache job: the last cache_hit counts.
	cj := Job{Where: WhereCache, Slot: -1, Phases: phases(PhaseCacheLookup, 0, 1, PhaseCacheHit, 1, 2, PhaseWrite, 2, 3)}
	if cj.CompilePhase() != 1 {
		t.Fatal("cache compile phase")
	}
}

func TestBuildSpan(t *testing.T) {
	b := &Build{Start: at(ms(5)), Jobs: []Job{remoteJob("a.c", "h", 0, 0), remoteJob("b.c", "h", 1, 40)}}
	s, e := b.Span()
	if !s.Equal(at(0)) || !e.Equal(at(ms(62))) || b.Wall() != ms(62) {
		t.Fatalf("span %v-%v wall %v", s, e, b.Wall())
	}
	b.End = at(ms(100))
	if b.Wall() != ms(100) {
		t.Fatalf("wall with End %v", b.Wall())
	}
	empty := &Build{Start: at(0)}
	if empty.Wall() != 0 {
		t.Fatal("empty build has a wall time")
	}
}
