package sim

import (
	"fmt"
	"os"
	"testing"

	"github.com/dcc-farm/dcc/internal/scheduler"
	"github.com/dcc-farm/dcc/pkg/tiering"
)

// TestTune prints dcc's figures under variants of the policy; it runs only
// with DCC_TUNE=1 (go test -run Tune -v ./internal/sim/).
func TestTune(t *testing.T) {
	if os.Getenv("DCC_TUNE") == "" {
		t.Skip("set DCC_TUNE=1")
	}
	for _, name := range []string{"alone", "team20", "heavy-vs-light"} {
		sc, err := Load("../../scenarios/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		for _, rk := range []tiering.Rank{tiering.RankFill, tiering.RankSpeed} {
			for _, uf := range []float64{0, 0.25} {
				for _, v := range []int{0, 1, 2} {
					gain, eager := v >= 1, v == 2
					cfg := scheduler.DefaultConfig()
					cfg.Policy.UsageFactor = uf
					cfg.Rank = rk
					p := NewDCCWith(cfg)
					p.Gain = gain
					p.Eager = eager
					r := Run(sc, p)
					fmt.Printf("%-15s rk=%d uf=%.2f v=%d mk=%.1f/%.1f jain=%.3f turn=%.2f light=%.2f worst=%.2f lp99=%.3f med=%.2f local=%d\n",
						name, rk, uf, v, r.MakespanS, r.LowerBoundS, r.Jain, r.MeanTurnaroundS, r.LightTurnaroundS, r.WorstTurnaroundS, r.LightP99WaitS, r.MedianRunS, r.LocalJobs)
				}
			}
		}
	}
}
