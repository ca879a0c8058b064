package tiering

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	cfg := DefaultConfig()
	base := Host{Name: "h", CPUs: 4, Power: 3, Slots: 4, State: Healthy}
	with := func(f func(h *Host)) Host { h := base; f(&h); return h }
	tests := []struct {
		name     string
		h        Host
		tier     int
		contains []string
	}{
		{"healthy", base, 3, []string{"power 3"}},
		{"fractional power floors", with(func(h *Host) { h.Power = 3.7 }), 3, []string{"power 3.7"}},
		{"power below 1 floors to 1", with(func(h *Host) { h.Power = 0.4 }), 1, []string{"power 0.4"}},
		{"power 0", with(func(h *Host) { h.Power = 0 }), 1, []string{"power 0"}},
		{"negative power", with(func(h *Host) { h.Power = -2 }), 1, nil},
		{"empty state is healthy", with(func(h *Host) { h.State = "" }), 3, nil},
		{"blocked", with(func(h *Host) { h.State = Blocked }), 0, []string{"blocked"}},
		{"draining", with(func(h *Host) { h.State = Draining }), 0, []string{"draining"}},
		{"gone", with(func(h *Host) { h.State = Gone }), 0, []string{"gone"}},
		{"blocked beats no slots", with(func(h *Host) { h.State = Blocked; h.Slots = 0 }), 0, []string{"blocked"}},
		{"no slots", with(func(h *Host) { h.Slots = 0 }), 0, []string{"no slots"}},
		{"negative slots", with(func(h *Host) { h.Slots = -1 }), 0, []string{"no slots"}},
		{"probation", with(func(h *Host) { h.State = Probation }), 2, []string{"power 3", "probation: -1"}},
		{"probation floor", with(func(h *Host) { h.State = Probation; h.Power = 1 }), 1, []string{"probation"}},
		{"load at overload is fine", with(func(h *Host) { h.Load1 = 3.6 }), 3, nil},
		{"overloaded", with(func(h *Host) { h.Load1 = 4.0 }), 2, []string{"1.00 > 0.90", "-1"}},
		{"overloaded and probation", with(func(h *Host) { h.Load1 = 4.0; h.State = Probation }), 1, []string{"1.00 > 0.90", "probation"}},
		{"overloaded power 1 floors", with(func(h *Host) { h.Load1 = 4.0; h.Power = 1 }), 1, []string{"1.00 > 0.90"}},
		{"load at saturated is overloaded only", with(func(h *Host) { h.Load1 = 8.0 }), 2, []string{"2.00 > 0.90"}},
		{"saturated", with(func(h *Host) { h.Load1 = 8.2 }), 0, []string{"2.05 > 2.00"}},
		{"saturated on probation", with(func(h *Host) { h.Load1 = 9; h.State = Probation }), 0, []string{"2.25 > 2.00"}},
		// Our own jobs are not foreign load: 10 load with 8 of ours on 4
		// CPUs is 0.5 per CPU, not 2.5.
		{"own jobs subtracted", with(func(h *Host) { h.Slots = 8; h.Busy = 8; h.Load1 = 10 }), 3, nil},
		{"own jobs subtracted, rest overloads", with(func(h *Host) { h.Slots = 8; h.Busy = 4; h.Load1 = 8.4 }), 2, []string{"1.10 > 0.90"}},
		{"own jobs subtracted, rest saturates", with(func(h *Host) { h.Slots = 8; h.Busy = 2; h.Load1 = 11 }), 0, []string{"2.25 > 2.00"}},
		{"busy above load", with(func(h *Host) { h.Busy = 4; h.Load1 = 1 }), 3, nil},
		{"zero cpus count as one", with(func(h *Host) { h.CPUs = 0; h.Load1 = 1.5 }), 2, []string{"1.50 > 0.90"}},
		{"full host keeps its tier", with(func(h *Host) { h.Busy = 4 }), 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Classify(&tt.h, cfg)
			if v.Tier != tt.tier {
				t.Errorf("tier %d (%s), want %d", v.Tier, v.Reason, tt.tier)
			}
			if v.Reason == "" {
				t.Error("empty reason")
			}
			for _, s := range tt.contains {
				if !strings.Contains(v.Reason, s) {
					t.Errorf("reason %q does not mention %q", v.Reason, s)
				}
			}
			if v.Tier > 0 && strings.Contains(v.Reason, "probation") != (tt.h.State == Probation) {
				t.Errorf("reason %q and state %q disagree", v.Reason, tt.h.State)
			}
		})
	}
}

func TestClassifyConfig(t *testing.T) {
	h := Host{CPUs: 2, Power: 2, Slots: 2, Load1: 1.2}
	tests := []struct {
		cfg  Config
		tier int
	}{
		{Config{Overload: 0.5, Saturated: 1}, 1},
		{Config{Overload: 0.7, Saturated: 1}, 2},
		{Config{Overload: 0.1, Saturated: 0.5}, 0},
	}
	for _, tt := range tests {
		if v := Classify(&h, tt.cfg); v.Tier != tt.tier {
			t.Errorf("%+v: tier %d (%s), want %d", tt.cfg, v.Tier, v.Reason, tt.tier)
		}
	}
}

func TestHostHelpers(t *testing.T) {
	tests := []struct {
		h       Host
		free    int
		foreign float64
	}{
		{Host{Slots: 4, Busy: 1, CPUs: 2, Load1: 3}, 3, 1},
		{Host{Slots: 4, Busy: 4, CPUs: 2, Load1: 3}, 0, 0},
		{Host{Slots: 4, Busy: 6, CPUs: 2, Load1: 3}, 0, 0},
		{Host{Slots: 0, Busy: 0, CPUs: -3, Load1: 2}, 0, 2},
	}
	for _, tt := range tests {
		if f := tt.h.Free(); f != tt.free {
			t.Errorf("%+v: Free %d, want %d", tt.h, f, tt.free)
		}
		if fl := tt.h.ForeignLoad(); fl != tt.foreign {
			t.Errorf("%+v: ForeignLoad %g, want %g", tt.h, fl, tt.foreign)
		}
	}
}

func TestBaseTier(t *testing.T) {
	for _, tt := range []struct {
		p float64
		t int
	}{{-1, 1}, {0, 1}, {0.99, 1}, {1, 1}, {1.99, 1}, {2, 2}, {7.5, 7}} {
		if got := BaseTier(tt.p); got != tt.t {
			t.Errorf("BaseTier(%g) = %d, want %d", tt.p, got, tt.t)
		}
	}
}
