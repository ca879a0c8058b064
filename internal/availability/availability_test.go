package availability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("Mon 2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindows(t *testing.T) {
	// 2026-11-23 is a Monday.
	cases := []struct {
		window string
		when   string
		in     bool
	}{
		{"weekdays 19:00-07:00", "Mon 2026-11-23 20:00", true},
		{"weekdays 19:00-07:00", "Mon 2026-11-23 12:00", false},
		{"weekdays 19:00-07:00", "Tue 2026-11-24 06:59", true}, // Monday's night
		{"weekdays 19:00-07:00", "Tue 2026-11-24 07:00", false},
		{"weekdays 19:00-07:00", "Sat 2026-11-28 03:00", true}, // Friday's night
		{"weekdays 19:00-07:00", "Sun 2026-11-29 03:00", false},
		{"weekdays 19:00-07:00", "Mon 2026-11-23 03:00", false}, // Sunday night is not a weekday window
		{"weekends all day", "Sun 2026-11-29 12:00", true},
		{"weekends all day", "Fri 2026-11-27 23:59", false},
		{"mon,wed 12:00-13:00", "Wed 2026-11-25 12:30", true},
		{"mon,wed 12:00-13:00", "Tue 2026-11-24 12:30", false},
		{"daily 00:00-24:00", "Thu 2026-11-26 23:59", true},
		{"weekdays 19:00–07:00", "Mon 2026-11-23 20:00", true}, // en dash
	}
	for _, c := range cases {
		t.Run(c.window+"@"+c.when, func(t *testing.T) {
			w, err := ParseWindow(c.window)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Contains(at(c.when)); got != c.in {
				t.Fatalf("Contains = %v, want %v", got, c.in)
			}
		})
	}
	for _, bad := range []string{"", "weekdays", "someday 10:00-11:00", "daily 25:00-26:00", "daily 10:00", "daily 10:61-11:00"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	p, err := Compile(Config{MaxForeignLoad: 0.8, OwnerIdle: "10m", Schedule: []string{"weekdays 19:00-07:00", "weekends all day"}})
	if err != nil {
		t.Fatal(err)
	}
	night := at("Mon 2026-11-23 22:00")
	cases := []struct {
		name   string
		in     Inputs
		avail  bool
		reason string
	}{
		{"idle night", Inputs{Now: night, Idle: time.Hour, IdleKnown: true}, true, ""},
		{"owner back", Inputs{Now: night, Idle: time.Minute, IdleKnown: true}, false, "owner active"},
		{"idle unknown", Inputs{Now: night}, true, ""},
		{"day", Inputs{Now: at("Mon 2026-11-23 11:00"), Idle: time.Hour, IdleKnown: true}, false, "schedule"},
		{"weekend day", Inputs{Now: at("Sat 2026-11-28 11:00"), Idle: time.Hour, IdleKnown: true}, true, ""},
		{"loaded", Inputs{Now: night, Idle: time.Hour, IdleKnown: true, ForeignLoad: 1.2}, false, "foreign load 1.20"},
		{"paused", Inputs{Now: night, Idle: time.Hour, IdleKnown: true, Paused: "by hand"}, false, "paused: by hand"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Decide(c.in)
			if d.Available != c.avail || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("got %+v, want available=%v reason~%q", d, c.avail, c.reason)
			}
		})
	}
	if _, err := Compile(Config{Drain: "maybe"}); err == nil {
		t.Fatal("bad drain mode accepted")
	}
	if p, _ := Compile(Config{Drain: "cancel", Grace: "5s"}); !p.CancelOnDrain || p.Grace != 5*time.Second {
		t.Fatalf("drain config not compiled: %+v", p)
	}
}

func TestProbeFiles(t *testing.T) {
	dir := t.TempDir()
	clock, idle := filepath.Join(dir, "clock"), filepath.Join(dir, "idle")
	os.WriteFile(clock, []byte("2026-11-28T10:00:00Z\n"), 0o644)
	os.WriteFile(idle, []byte("42.5\n"), 0o644)
	p := Probe{IdleSource: "file:" + idle, ClockFile: clock}
	if now := p.Now(); !now.Equal(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("Now = %v", now)
	}
	if d, ok := p.Idle(p.Now()); !ok || d != 42500*time.Millisecond {
		t.Fatalf("Idle = %v %v", d, ok)
	}
	os.Remove(idle)
	if _, ok := p.Idle(p.Now()); ok {
		t.Fatal("missing idle file reported as known")
	}
}
