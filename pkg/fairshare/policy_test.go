package fairshare

import (
	"math"
	"testing"
)

func TestPolicyScore(t *testing.T) {
	tests := []struct {
		name                         string
		p                            Policy
		running, usage, mean, weight float64
		want                         float64
	}{
		{"idle", Policy{}, 0, 0, 0, 1, 1},
		{"running", Policy{}, 3, 0, 0, 1, 4},
		{"weight", Policy{}, 3, 0, 0, 2, 2},
		{"zero weight is 1", Policy{}, 3, 0, 0, 0, 4},
		{"negative weight is 1", Policy{}, 3, 0, 0, -5, 4},
		{"usage ignored with factor 0", Policy{}, 1, 10, 5, 1, 2},
		{"no mean usage", Policy{UsageFactor: 1}, 1, 10, 0, 1, 2},
		{"twice the mean", Policy{UsageFactor: 1}, 1, 10, 5, 1, 6},
		{"default policy", DefaultPolicy(), 1, 10, 5, 2, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Score(tt.running, tt.usage, tt.mean, tt.weight); !near(got, tt.want) {
				t.Errorf("Score = %g, want %g", got, tt.want)
			}
		})
	}
	if DefaultPolicy().UsageFactor != 0.25 {
		t.Errorf("DefaultPolicy %+v", DefaultPolicy())
	}
}

func TestPolicyMonotonic(t *testing.T) {
	p := DefaultPolicy()
	vals := []float64{0, 0.5, 1, 2, 3, 10, 100}
	for _, mean := range []float64{0, 1, 7} {
		for _, w := range []float64{0.5, 1, 3} {
			for i := 1; i < len(vals); i++ {
				a, b := vals[i-1], vals[i]
				if !(p.Score(b, 2, mean, w) > p.Score(a, 2, mean, w)) {
					t.Errorf("not increasing in running: %g -> %g (mean %g, w %g)", a, b, mean, w)
				}
				su, sv := p.Score(1, a, mean, w), p.Score(1, b, mean, w)
				if mean > 0 && !(sv > su) || mean == 0 && sv != su {
					t.Errorf("usage %g -> %g: %g -> %g (mean %g)", a, b, su, sv, mean)
				}
				if a > 0 && !(p.Score(2, 2, mean, b) < p.Score(2, 2, mean, a)) {
					t.Errorf("not decreasing in weight: %g -> %g", a, b)
				}
			}
			// Exactly inverse in weight.
			if !near(p.Score(2, 3, mean, 2*w), p.Score(2, 3, mean, w)/2) {
				t.Errorf("doubling weight does not halve the score (w %g)", w)
			}
		}
	}
}

func TestSeniorityFactor(t *testing.T) {
	p := Policy{Seniority: 1}
	tests := []struct {
		name    string
		p       Policy
		rank, n int
		want    float64
	}{
		{"alone", p, 0, 1, 1},
		{"oldest of two", p, 0, 2, 2},
		{"youngest of two", p, 1, 2, 1},
		{"middle of three", p, 1, 3, math.Sqrt2},
		{"oldest of five", p, 0, 5, 2},
		{"youngest of five", p, 4, 5, 1},
		{"off", Policy{}, 0, 2, 1},
		{"seniority 2", Policy{Seniority: 2}, 0, 2, 3},
		{"rank out of range", p, 5, 2, 1},
		{"negative rank", p, -1, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.SeniorityFactor(tt.rank, tt.n); !near(got, tt.want) {
				t.Errorf("SeniorityFactor(%d, %d) = %g, want %g", tt.rank, tt.n, got, tt.want)
			}
		})
	}
	// Ranks are spaced evenly on a log scale: each step is the same ratio.
	for n := 3; n <= 7; n++ {
		r := p.SeniorityFactor(0, n) / p.SeniorityFactor(1, n)
		for k := 1; k < n-1; k++ {
			if !near(p.SeniorityFactor(k, n)/p.SeniorityFactor(k+1, n), r) {
				t.Errorf("n=%d: uneven step at rank %d", n, k)
			}
		}
	}
	if DefaultPolicy().Seniority != 1 {
		t.Errorf("DefaultPolicy %+v", DefaultPolicy())
	}
}
