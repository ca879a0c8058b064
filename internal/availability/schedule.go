package availability

import (
	"fmt"
	"strings"
	"time"
)

// Window is a weekly time window: on Days, from Start to End minutes after
// midnight (End <= Start wraps past midnight into the next day).
type Window struct {
	Days       [7]bool // indexed by time.Weekday
	Start, End int     // minutes after midnight
	AllDay     bool
}

var dayNames = map[string][]time.Weekday{
	"sun": {time.Sunday}, "mon": {time.Monday}, "tue": {time.Tuesday}, "wed": {time.Wednesday},
	"thu": {time.Thursday}, "fri": {time.Friday}, "sat": {time.Saturday},
	"weekdays": {time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
	"weekends": {time.Saturday, time.Sunday},
	"daily":    {time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday},
}

// ParseWindow parses "DAYS HH:MM-HH:MM" or "DAYS all day", where DAYS is
// a comma-separated list of mon..sun, weekdays, weekends or daily. An
// en dash works as well as a hyphen.
func ParseWindow(s string) (Window, error) {
	var w Window
	f := strings.Fields(strings.ToLower(strings.ReplaceAll(s, "–", "-")))
	if len(f) < 2 {
		return w, fmt.Errorf("schedule %q: want DAYS HH:MM-HH:MM or DAYS all day", s)
	}
	for _, d := range strings.Split(f[0], ",") {
		days, ok := dayNames[d]
		if !ok {
			return w, fmt.Errorf("schedule %q: unknown day %q", s, d)
		}
		for _, x := range days {
			w.Days[x] = true
		}
	}
	rest := strings.Join(f[1:], " ")
	if rest == "all day" {
		w.AllDay = true
		return w, nil
	}
	from, to, ok := strings.Cut(rest, "-")
	if !ok {
		return w, fmt.Errorf("schedule %q: want HH:MM-HH:MM", s)
	}
	var err error
	if w.Start, err = clock(from); err != nil {
		return w, fmt.Errorf("schedule %q: %v", s, err)
	}
	if w.End, err = clock(to); err != nil {
		return w, fmt.Errorf("schedule %q: %v", s, err)
	}
	return w, nil
}

func clock(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); err != nil || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}

// Contains reports whether t (in its own location) falls in the window. A
// window that wraps midnight belongs to the day it starts on.
func (w Window) Contains(t time.Time) bool {
	day := t.Weekday()
	min := t.Hour()*60 + t.Minute()
	if w.AllDay {
		return w.Days[day]
	}
	if w.Start < w.End {
		return w.Days[day] && min >= w.Start && min < w.End
	}
	// wraps midnight: the evening part today, or the morning part of a window that began yesterday
	yesterday := (day + 6) % 7
	return (w.Days[day] && min >= w.Start) || (w.Days[yesterday] && min < w.End)
}

func inAnyWindow(ws []Window, t time.Time) bool {
	for _, w := range ws {
		if w.Contains(t) {
			return true
		}
	}
	return false
}
