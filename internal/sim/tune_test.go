package sim

import (
	"fmt"
	"os"
	"testing"

	"github.com/dcc-farm/dcc/internal/scheduler"
)

// TestTune prints dcc's figures under variants of the policy, each the
// mean over 8 seeds from the scenario's own, next to the baselines: the
// ablation in docs/scheduling.md. It runs only with DCC_TUNE=1
// (go test -run Tune -v ./internal/sim/) and takes about a minute.
func TestTune(t *testing.T) {
	if os.Getenv("DCC_TUNE") == "" {
		t.Skip("set DCC_TUNE=1")
	}
	dcc := func(f func(*DCC, *scheduler.Config)) func() Policy {
		return func() Policy {
			cfg := scheduler.DefaultConfig()
			p := NewDCCWith(cfg)
			f(p, &p.cfg)
			return p
		}
	}
	variants := []struct {
		name string
		mk   func() Policy
	}{
		{"dmucs", func() Policy { return NewDMUCS() }},
		{"fastest", func() Policy { return NewFastest() }},
		{"dcc before", dcc(func(p *DCC, c *scheduler.Config) { p.Decline, p.Backlog, c.Policy.Seniority = false, false, 0 })},
		{"+decline", dcc(func(p *DCC, c *scheduler.Config) { p.Backlog, c.Policy.Seniority = false, 0 })},
		{"+backlog", dcc(func(p *DCC, c *scheduler.Config) { c.Policy.Seniority = 0 })},
		{"+seniority (dcc)", dcc(func(*DCC, *scheduler.Config) {})},
		{"dcc, F=0", dcc(func(_ *DCC, c *scheduler.Config) { c.Policy.UsageFactor = 0 })},
		{"dcc, seniority 2", dcc(func(_ *DCC, c *scheduler.Config) { c.Policy.Seniority = 2 })},
		{"dcc, eager", dcc(func(p *DCC, _ *scheduler.Config) { p.Eager = true })},
	}
	const seeds = 8
	for _, name := range []string{"team20", "crunch", "team40", "workstations", "heavy-vs-light", "alone"} {
		sc, err := Load("../../scenarios/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		first := sc.Seed
		for _, v := range variants {
			var rs []*Result
			for k := range uint64(seeds) {
				sc.Seed = first + k
				rs = append(rs, Run(sc, v.mk()))
			}
			r := Mean(rs)
			fmt.Printf("%-14s %-17s mk/bound %.3f jain %.3f turn %6.2f light %6.2f worst %6.1f light-p99 %.3f median %.2f local %4d\n",
				name, v.name, r.MakespanS/r.LowerBoundS, r.Jain, r.MeanTurnaroundS, r.LightTurnaroundS, r.WorstTurnaroundS,
				r.LightP99WaitS, r.MedianRunS, r.LocalJobs)
		}
		sc.Seed = first
	}
}
