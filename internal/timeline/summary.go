package timeline

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Summary is a build in numbers: what `dcc builds` lists and the head of
// `dcc trace --summary`. Times are sums of phase durations as measured on
// this machine: FarmCPU is slot time on the farm (remote_compile), not
// the compiler's rusage.
type Summary struct {
	ID         string        `json:"id"`
	Command    []string      `json:"command"`
	Dir        string        `json:"dir"`
	Start      time.Time     `json:"start"`
	Wall       time.Duration `json:"wall_ns"`
	Files      int           `json:"files"` // jobs recorded
	Remote     int           `json:"remote"`
	Local      int           `json:"local"`
	Cached     int           `json:"cached"`
	Failed     int           `json:"failed"`        // jobs whose compiler exited non-zero
	Dropped    int64         `json:"dropped"`       // jobs past the store's bounds
	Hosts      int           `json:"hosts"`         // farm hosts that ran a phase
	FarmCPU    time.Duration `json:"farm_ns"`       // remote_compile
	LocalCPU   time.Duration `json:"local_ns"`      // local_compile
	LeaseWait  time.Duration `json:"lease_wait_ns"` // lease_wait
	Preprocess time.Duration `json:"preprocess_ns"` // preprocess
	Transfer   time.Duration `json:"transfer_ns"`   // send + return
	Cache      time.Duration `json:"cache_ns"`      // cache_lookup + cache_hit
	BytesOut   int64         `json:"bytes_out"`
	BytesIn    int64         `json:"bytes_in"`
}

// Summarize computes b's summary.
func Summarize(b *Build) Summary {
	start, end := b.Span()
	s := Summary{ID: b.ID, Command: b.Command, Dir: b.Dir, Start: start, Wall: end.Sub(start),
		Files: len(b.Jobs), Dropped: b.Dropped}
	hosts := map[string]bool{}
	for ji := range b.Jobs {
		j := &b.Jobs[ji]
		switch j.Where {
		case WhereRemote:
			s.Remote++
		case WhereCache:
			s.Cached++
		default:
			s.Local++
		}
		if j.Exit != 0 {
			s.Failed++
		}
		s.BytesOut += j.BytesOut
		s.BytesIn += j.BytesIn
		for i, p := range j.Phases {
			d := p.Duration()
			switch p.Name {
			case PhaseRemoteCompile:
				s.FarmCPU += d
			case PhaseLocalCompile:
				s.LocalCPU += d
			case PhaseLeaseWait:
				s.LeaseWait += d
			case PhasePreprocess:
				s.Preprocess += d
			case PhaseSend, PhaseReturn:
				s.Transfer += d
			case PhaseCacheLookup, PhaseCacheHit:
				s.Cache += d
			}
			if phaseKind(p.Name) == resHost && j.HostOf(i) != "" {
				hosts[j.HostOf(i)] = true
			}
		}
	}
	s.Hosts = len(hosts)
	return s
}

// Slowest returns the indices of the n jobs with the longest wall time,
// slowest first (ties: earlier job first).
func Slowest(b *Build, n int) []int {
	idx := make([]int, len(b.Jobs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool { return b.Jobs[idx[x]].Wall() > b.Jobs[idx[y]].Wall() })
	if len(idx) > n {
		idx = idx[:n]
	}
	return idx
}

// PathStep is one job on the critical path.
type PathStep struct {
	Job int // index in Build.Jobs
	// Gap is the time from the previous step's end (the build's start for
	// the first step) to this job's start: time the build spent on work
	// the record does not show (make, links, other tools) or idle.
	Gap time.Duration
}

// CriticalPath is the chain of jobs that set the build's end, in time
// order.
//
// All jobs of a build share one local parallelism resource: make's job
// slots on this machine. Each dcc process holds one from its first
// phase's start to its last phase's end, whether it compiles here, on the
// farm or from a cache. A job starts only when make has a free slot and
// the job's prerequisites are done, and the record's latest evidence of
// either is the last job end at or before the job's start. So the path
// ends with the job that ended last, and each step's predecessor is the
// job whose end most closely precedes (or equals) the step's start; the
// walk stops at a job that no recorded job ended before. Ties on the end
// time go to the job that started later (the shorter, so the one a slot
// or prerequisite more plausibly waited for), then to the later job in
// the record. Jobs are totally ordered by (end, start, index) and each
// predecessor comes strictly earlier in that order, so the walk ends.
//
// Large gaps on the path mean the build was bound by work other than
// compiles; a path of long compiles with no gaps means faster compiles
// (or splitting those files) would shorten the build.
func CriticalPath(b *Build) []PathStep {
	var jobs []int
	for i := range b.Jobs {
		if len(b.Jobs[i].Phases) > 0 {
			jobs = append(jobs, i)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	key := func(x, y int) bool { // x before y in (end, start, index)
		jx, jy := &b.Jobs[x], &b.Jobs[y]
		if !jx.End().Equal(jy.End()) {
			return jx.End().Before(jy.End())
		}
		if !jx.Start().Equal(jy.Start()) {
			return jx.Start().Before(jy.Start())
		}
		return x < y
	}
	sort.Slice(jobs, func(a, c int) bool { return key(jobs[a], jobs[c]) })

	var rev []int // positions in jobs, from the last job back
	pos := len(jobs) - 1
	for {
		rev = append(rev, pos)
		start := b.Jobs[jobs[pos]].Start()
		// The jobs ending at or before start are a prefix of jobs;
		// the predecessor is the last of them that precedes pos.
		p := sort.Search(len(jobs), func(i int) bool { return b.Jobs[jobs[i]].End().After(start) })
		if p > pos {
			p = pos
		}
		if p == 0 {
			break
		}
		pos = p - 1
	}
	buildStart, _ := b.Span()
	steps := make([]PathStep, 0, len(rev))
	prevEnd := buildStart
	for i := len(rev) - 1; i >= 0; i-- {
		j := jobs[rev[i]]
		steps = append(steps, PathStep{Job: j, Gap: b.Jobs[j].Start().Sub(prevEnd)})
		prevEnd = b.Jobs[j].End()
	}
	return steps
}

// fmtDur formats a duration for people: 850µs, 12ms, 3.42s, 4m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
}

// fmtTick formats an axis label: whole units without decimals (40s, not
// 40.00s).
func fmtTick(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Minute && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Second && d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return fmtDur(d)
}

// plural is "1 job", "2 jobs".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// FormatBytes formats a byte count for people: 512 B, 12.3 KiB, 4.0 MiB.
func FormatBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
}

// whereText says where a job compiled, for people.
func whereText(j *Job) string {
	switch j.Where {
	case WhereRemote:
		if j.Slot >= 0 {
			return fmt.Sprintf("%s slot %d", j.Host, j.Slot)
		}
		return j.Host
	case WhereCache:
		return "cache"
	}
	if j.LocalReason != "" {
		return "local (" + j.LocalReason + ")"
	}
	return "local"
}

// phaseText lists a job's phases with their durations.
func phaseText(j *Job) string {
	var sb strings.Builder
	for i, p := range j.Phases {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(p.Name)
		sb.WriteByte(' ')
		sb.WriteString(fmtDur(p.Duration()))
		if p.Host != "" {
			sb.WriteString(" on ")
			sb.WriteString(p.Host)
		}
	}
	return sb.String()
}

// maxPathShown bounds the critical path steps printed (a -j1 build's path
// is every job).
const maxPathShown = 50

// summaryLines are the lines of the summary, shared by the terminal and
// the page.
func summaryLines(s Summary) [][2]string {
	return [][2]string{
		{"wall time", fmtDur(s.Wall)},
		{"files", fmt.Sprintf("%d: %d remote, %d local, %d from cache; %d failed", s.Files, s.Remote, s.Local, s.Cached, s.Failed)},
		{"compiling on the farm", fmtDur(s.FarmCPU) + fmt.Sprintf(" (slot time on %d hosts)", s.Hosts)},
		{"compiling locally", fmtDur(s.LocalCPU)},
		{"waiting for slots", fmtDur(s.LeaseWait)},
		{"preprocessing", fmtDur(s.Preprocess)},
		{"transfer", fmtDur(s.Transfer) + " (" + FormatBytes(s.BytesOut) + " sent, " + FormatBytes(s.BytesIn) + " received)"},
		{"cache", fmtDur(s.Cache)},
	}
}

// rel is t as an offset from the build's start.
func rel(t, start time.Time) string { return "+" + fmtDur(t.Sub(start)) }

// WriteSummary writes the terminal summary of b: the numbers, the ten
// slowest files and the critical path. Text only; file names are printed
// with %q when they hold control characters, so a name cannot move the
// cursor or forge lines.
func WriteSummary(w io.Writer, b *Build) error {
	bw := bufio.NewWriter(w)
	s := Summarize(b)
	start := s.Start
	fmt.Fprintf(bw, "build %s  %s  started %s\n", term(b.ID), term(strings.Join(b.Command, " ")), start.Format(time.RFC3339))
	if b.Dir != "" {
		fmt.Fprintf(bw, "  in %s\n", term(b.Dir))
	}
	for _, l := range summaryLines(s) {
		fmt.Fprintf(bw, "  %-22s %s\n", l[0], l[1])
	}
	if s.Dropped > 0 {
		fmt.Fprintf(bw, "  %-22s %d jobs past the record's bounds\n", "not recorded", s.Dropped)
	}
	if b.Skipped > 0 {
		fmt.Fprintf(bw, "  %-22s %d unreadable records\n", "skipped", b.Skipped)
	}

	if len(b.Jobs) > 0 {
		fmt.Fprintf(bw, "\nslowest files:\n")
		for n, i := range Slowest(b, 10) {
			j := &b.Jobs[i]
			fmt.Fprintf(bw, "  %2d. %8s  %s  %s  exit %d\n      %s\n", n+1, fmtDur(j.Wall()), term(j.Source),
				term(whereText(j)), j.Exit, term(phaseText(j)))
		}
	}

	path := CriticalPath(b)
	if len(path) > 0 {
		var busy, gaps time.Duration
		for _, st := range path {
			busy += b.Jobs[st.Job].Wall()
			gaps += st.Gap
		}
		fmt.Fprintf(bw, "\ncritical path: %s, %s in jobs, %s between them\n", plural(len(path), "job"), fmtDur(busy), fmtDur(gaps))
		shown := path
		if len(shown) > maxPathShown {
			fmt.Fprintf(bw, "  … %d earlier jobs\n", len(shown)-maxPathShown)
			shown = shown[len(shown)-maxPathShown:]
		}
		for _, st := range shown {
			j := &b.Jobs[st.Job]
			if st.Gap > 0 {
				fmt.Fprintf(bw, "  %10s  (%s not in a compile)\n", "", fmtDur(st.Gap))
			}
			fmt.Fprintf(bw, "  %10s  %8s  %s  %s\n", rel(j.Start(), start), fmtDur(j.Wall()), term(filepath.Base(j.Source)), term(whereText(j)))
		}
	}
	return bw.Flush()
}

// term makes user data safe to print on a terminal: a string holding
// control characters or invalid UTF-8 is printed quoted.
func term(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
