package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func one(v int) *int          { return &v }
func onef(v float64) *float64 { return &v }

// A host with 1 CPU running two of our jobs runs each at half speed; when
// the first ends the second speeds up (processor sharing).
func TestProcessorSharing(t *testing.T) {
	sc := &Scenario{Seed: 1,
		Hosts: []Host{{Name: "h", CPUs: 1, Power: 2, Slots: 2}},
		Users: []User{{Name: "u", LocalSlots: one(0), Builds: []Build{{Jobs: 2, Parallel: 2, JobS: Dist{Mean: 4}}}}}}
	for _, p := range Policies {
		r, err := RunNamed(sc, p)
		if err != nil {
			t.Fatal(err)
		}
		// Each job is 4 s of work at power 2 sharing one CPU: both end at 4 s.
		if math.Abs(r.MakespanS-4) > 1e-6 {
			t.Errorf("%s: makespan %g, want 4", p, r.MakespanS)
		}
	}
	// With background load 1 on the CPU, one job gets half of it: 4/(2*0.5) = 4 s.
	sc.Hosts[0].Background = []Interval{{FromS: 0, ToS: 100, Load: 1}}
	sc.Users[0].Builds[0].Jobs = 1
	r, _ := RunNamed(sc, "dcc")
	if math.Abs(r.MakespanS-4) > 1e-6 {
		t.Errorf("background: makespan %g, want 4", r.MakespanS)
	}
}

// A host that leaves loses its jobs; they are redone elsewhere.
func TestAwayRedo(t *testing.T) {
	sc := &Scenario{Seed: 1,
		Hosts: []Host{{Name: "a", CPUs: 1, Power: 1, Slots: 1, Away: []Interval{{FromS: 1, ToS: 50}}},
			{Name: "b", CPUs: 1, Power: 1, Slots: 1}},
		Users: []User{{Name: "u", LocalSlots: one(0), Builds: []Build{{Jobs: 2, Parallel: 2, JobS: Dist{Mean: 2}}}}}}
	for _, p := range Policies {
		r, _ := RunNamed(sc, p)
		if r.RedoneJobs != 1 {
			t.Errorf("%s: redone %d, want 1", p, r.RedoneJobs)
		}
		if r.MakespanS < 3.999 {
			t.Errorf("%s: makespan %g, want >= 4", p, r.MakespanS)
		}
	}
}

func TestWaterfill(t *testing.T) {
	s := &Sim{}
	for _, d := range []struct {
		w    float64
		wait int
	}{{1, 2}, {1, 20}, {2, 20}} {
		s.users = append(s.users, &UserState{Spec: User{Weight: d.w}, waiting: d.wait})
	}
	got := append([]float64(nil), s.waterfill(14)...)
	want := []float64{2, 4, 8}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("waterfill = %v, want %v", got, want)
	}
	if j := Jain([]float64{1, 1, 1}); j != 1 {
		t.Fatalf("Jain equal = %g", j)
	}
	if j := Jain([]float64{1, 0}); j != 0.5 {
		t.Fatalf("Jain one of two = %g", j)
	}
}

func TestDeterministic(t *testing.T) {
	sc, err := Load("../../scenarios/heavy-vs-light.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Policies {
		a, _ := RunNamed(sc, p)
		b, _ := RunNamed(sc, p)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs differ", p)
		}
	}
}

// randomScenario draws a farm and a team: hosts of power 1-4 with 1-16
// CPUs, some with background load or absences; 1-12 users with builds of
// 5-800 jobs at -j 2-64.
func randomScenario(seed uint64) *Scenario {
	r := rand.New(rand.NewPCG(seed, 99))
	sc := &Scenario{Name: fmt.Sprint("random-", seed), Seed: seed}
	nh := 3 + r.IntN(25)
	for i := range nh {
		cpus := []int{1, 2, 4, 8, 16}[r.IntN(5)]
		h := Host{Name: fmt.Sprint("h", i), CPUs: cpus, Power: float64(1 + r.IntN(4)), Slots: max(1, cpus+r.IntN(3)-1)}
		if r.IntN(4) == 0 {
			from := r.Float64() * 60
			h.Background = []Interval{{FromS: from, ToS: from + 10 + r.Float64()*100, Load: float64(1 + r.IntN(cpus+1))}}
		}
		if r.IntN(6) == 0 {
			from := r.Float64() * 60
			h.Away = []Interval{{FromS: from, ToS: from + 5 + r.Float64()*60}}
		}
		sc.Hosts = append(sc.Hosts, h)
	}
	nu := 1 + r.IntN(12)
	for i := range nu {
		u := User{Name: fmt.Sprint("u", i), Weight: float64(1 + r.IntN(2)), LocalSlots: one(r.IntN(4)), LocalPower: onef(0.5 + r.Float64())}
		for range 1 + r.IntN(3) {
			jobs := []int{5, 20, 100, 800}[r.IntN(4)]
			u.Builds = append(u.Builds, Build{StartS: r.Float64() * 60, Jobs: jobs, Parallel: []int{2, 8, 16, 64}[r.IntN(4)],
				JobS: Dist{Mean: 0.5 + r.Float64()*4, SD: r.Float64() * 2}})
		}
		sc.Users = append(sc.Users, u)
	}
	return sc
}

// Property: on random scenarios every policy finishes, never beats the
// lower bound, and dcc is never pathologically worse than the best
// baseline: mean turnaround within 10%, makespan and the worst user's
// turnaround within 30% (fair share deliberately slows the heaviest user
// while others compete, which can cost makespan when that user's -j is
// too small to use the whole farm once alone: seed 2 is such a case).
func TestRandomScenarios(t *testing.T) {
	n := 24
	if testing.Short() {
		n = 8
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			randomScenarioCheck(t, seed)
		})
	}
}

func randomScenarioCheck(t *testing.T, seed uint64) {
	sc := randomScenario(seed)
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	res := map[string]*Result{}
	for _, p := range Policies {
		r, _ := RunNamed(sc, p)
		res[p] = r
		if r.MakespanS < r.LowerBoundS*(1-1e-9) {
			t.Errorf("seed %d %s: makespan %.2f below the lower bound %.2f", seed, p, r.MakespanS, r.LowerBoundS)
		}
	}
	d := res["dcc"]
	bestMk, bestTurn, bestWorst := math.Inf(1), math.Inf(1), math.Inf(1)
	for _, p := range Policies[:3] {
		bestMk = math.Min(bestMk, res[p].MakespanS)
		bestTurn = math.Min(bestTurn, res[p].MeanTurnaroundS)
		bestWorst = math.Min(bestWorst, res[p].WorstTurnaroundS)
	}
	if d.MakespanS > 1.3*bestMk || d.MeanTurnaroundS > 1.1*bestTurn || d.WorstTurnaroundS > 1.3*bestWorst {
		t.Errorf("seed %d: dcc makespan %.1f turnaround %.1f worst %.1f; best baseline %.1f %.1f %.1f",
			seed, d.MakespanS, d.MeanTurnaroundS, d.WorstTurnaroundS, bestMk, bestTurn, bestWorst)
	}
	t.Logf("seed %2d: dcc/best baseline makespan %.3f turnaround %.3f worst %.3f jain %.3f", seed,
		d.MakespanS/bestMk, d.MeanTurnaroundS/bestTurn, d.WorstTurnaroundS/bestWorst, d.Jain)
}
