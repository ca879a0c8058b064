package availability

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Probe gathers the facts Decide needs from this machine.
type Probe struct {
	IdleSource string
	ClockFile  string
}

// Now returns the current time, or the time in ClockFile when set.
func (p *Probe) Now() time.Time {
	if p.ClockFile != "" {
		if b, err := os.ReadFile(p.ClockFile); err == nil {
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err == nil {
				return t
			}
		}
	}
	return time.Now()
}

// Idle returns how long the owner has been idle, and whether any source knew.
func (p *Probe) Idle(now time.Time) (time.Duration, bool) {
	src := p.IdleSource
	if src == "" {
		src = "auto"
	}
	if path, ok := strings.CutPrefix(src, "file:"); ok {
		return idleFromFile(path)
	}
	switch src {
	case "logind":
		return idleLogind(now)
	case "x11":
		return idleX11()
	case "input":
		return idleInput(now)
	case "none":
		return 0, false
	}
	if d, ok := idleLogind(now); ok {
		return d, true
	}
	if d, ok := idleX11(); ok {
		return d, true
	}
	return idleInput(now)
}

func idleFromFile(path string) (time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// idleLogind asks systemd-logind about graphical and tty sessions: the host
// is idle only if every session with a seat says IdleHint=yes; the idle
// time is since the most recent IdleSinceHint.
func idleLogind(now time.Time) (time.Duration, bool) {
	if _, err := exec.LookPath("loginctl"); err != nil {
		return 0, false
	}
	out, err := exec.Command("loginctl", "list-sessions", "--no-legend").Output()
	if err != nil {
		return 0, false
	}
	known := false
	var idle time.Duration = 1<<63 - 1
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		props, err := exec.Command("loginctl", "show-session", f[0], "-p", "IdleHint", "-p", "IdleSinceHint", "-p", "Seat").Output()
		if err != nil {
			continue
		}
		var hint, seat string
		var since int64
		for _, kv := range strings.Split(string(props), "\n") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "IdleHint":
				hint = v
			case "IdleSinceHint":
				since, _ = strconv.ParseInt(v, 10, 64)
			case "Seat":
				seat = v
			}
		}
		if seat == "" {
			continue // ssh and batch sessions do not mean someone is at the desk
		}
		known = true
		if hint != "yes" {
			return 0, true
		}
		if since > 0 {
			d := now.Sub(time.UnixMicro(since))
			if d < idle {
				idle = d
			}
		}
	}
	if !known {
		return 0, false
	}
	return idle, true
}

func idleX11() (time.Duration, bool) {
	if os.Getenv("DISPLAY") == "" {
		return 0, false
	}
	if _, err := exec.LookPath("xprintidle"); err != nil {
		return 0, false
	}
	out, err := exec.Command("xprintidle").Output()
	if err != nil {
		return 0, false
	}
	ms, err := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// idleInput uses the newest access time of /dev/input event devices.
func idleInput(now time.Time) (time.Duration, bool) {
	ms, _ := filepath.Glob("/dev/input/event*")
	var newest time.Time
	for _, m := range ms {
		if st, err := os.Stat(m); err == nil {
			if at := atime(st); at.After(newest) {
				newest = at
			}
		}
	}
	if newest.IsZero() {
		return 0, false
	}
	return now.Sub(newest), true
}
