package timeline

import (
	"bufio"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// The trace is Chrome's trace-event JSON (the "JSON Object Format" that
// chrome://tracing and Perfetto's legacy importer read): one complete
// event ("ph":"X") per phase, on the lane layout() gives it. Processes are
// the build (one event spanning its wall time), this machine, the wait
// for slots, and each farm host; threads are lanes (a host's lane is its
// slot when the host's report allows). Names come from "M" metadata
// events, since pids and tids must be numbers. Timestamps are integer
// microseconds from the build's start, each end rounded down like each
// start, so segments that touch in nanoseconds still touch, never overlap.

// Trace pids.
const (
	pidBuild     = 1
	pidLocal     = 2
	pidWait      = 3
	pidFirstHost = 10
)

type traceX struct {
	Name string `json:"name"`
	Cat  string `json:"cat"`
	Ph   string `json:"ph"`
	Ts   int64  `json:"ts"`
	Dur  int64  `json:"dur"`
	Pid  int    `json:"pid"`
	Tid  int    `json:"tid"`
	Args any    `json:"args,omitempty"`
}

type traceM struct {
	Name string         `json:"name"`
	Ph   string         `json:"ph"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args"`
}

// compileArgs are the details of a job's compile event.
type compileArgs struct {
	Job      int    `json:"job"`
	Phase    string `json:"phase"`
	Host     string `json:"host"` // "local" for compiles on this machine
	Slot     int    `json:"slot"`
	Source   string `json:"source"`
	Output   string `json:"output"`
	Exit     int    `json:"exit"`
	BytesOut int64  `json:"bytes_out"`
	BytesIn  int64  `json:"bytes_in"`
	Bytes    string `json:"bytes"`
	Reason   string `json:"reason,omitempty"`
	WaitEst  string `json:"wait_estimate,omitempty"`
}

// phaseArgs are the details of any other phase event.
type phaseArgs struct {
	Job    int    `json:"job"`
	Source string `json:"source"`
	Host   string `json:"host,omitempty"`
}

// lanePid is the trace pid of resource r of plan p.
func lanePid(p *plan, r int) int {
	switch p.res[r].kind {
	case resLocal:
		return pidLocal
	case resWait:
		return pidWait
	}
	return pidFirstHost + r - 2
}

// usec is t in whole microseconds from start (never after t), rounded
// down.
func usec(t, start time.Time) int64 { return int64(t.Sub(start) / time.Microsecond) }

// WriteTrace writes b as a Chrome trace-event JSON document.
func WriteTrace(w io.Writer, b *Build) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	p := layout(b)
	start, end := b.Span()

	first := true
	emit := func(v any) error {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		return enc.Encode(v) // one event per line
	}
	meta := func(name string, pid, tid int, args map[string]any) error {
		return emit(traceM{Name: name, Ph: "M", Pid: pid, Tid: tid, Args: args})
	}

	bw.WriteString(`{"displayTimeUnit":"ms","otherData":`)
	if err := enc.Encode(map[string]string{"build": b.ID, "command": strings.Join(b.Command, " "), "dir": b.Dir,
		"start": start.Format(time.RFC3339Nano)}); err != nil {
		return err
	}
	bw.WriteString(`,"traceEvents":[`)

	// Names and order of the lanes.
	procs := []struct {
		pid  int
		name string
	}{{pidBuild, "build " + b.ID}}
	for r := range p.res {
		procs = append(procs, struct {
			pid  int
			name string
		}{lanePid(p, r), p.res[r].Name()})
	}
	for i, pr := range procs {
		if err := meta("process_name", pr.pid, 0, map[string]any{"name": pr.name}); err != nil {
			return err
		}
		if err := meta("process_sort_index", pr.pid, 0, map[string]any{"sort_index": i}); err != nil {
			return err
		}
	}
	if err := meta("thread_name", pidBuild, 0, map[string]any{"name": "wall time"}); err != nil {
		return err
	}
	for r := range p.res {
		for lane := range p.res[r].lanes {
			name := p.res[r].laneLabel(lane)
			if err := meta("thread_name", lanePid(p, r), lane, map[string]any{"name": name}); err != nil {
				return err
			}
			if err := meta("thread_sort_index", lanePid(p, r), lane, map[string]any{"sort_index": lane}); err != nil {
				return err
			}
		}
	}

	// The build's span, so the trace covers the wall time even where no
	// compile ran (links, configure steps).
	if err := emit(traceX{Name: "build " + b.ID, Cat: "build", Ph: "X", Ts: 0, Dur: usec(end, start),
		Pid: pidBuild, Tid: 0, Args: map[string]any{"files": len(b.Jobs), "command": strings.Join(b.Command, " ")}}); err != nil {
		return err
	}

	for ji := range b.Jobs {
		j := &b.Jobs[ji]
		ci := j.CompilePhase()
		base := filepath.Base(j.Source)
		for i, ph := range j.Phases {
			seg := &p.segs[p.segOf[ji][i]]
			ev := traceX{Ph: "X", Ts: usec(ph.Start, start), Pid: lanePid(p, seg.res), Tid: seg.lane}
			ev.Dur = usec(ph.End, start) - ev.Ts
			if i == ci {
				ev.Name, ev.Cat = base, j.Where
				host := j.HostOf(i)
				if phaseKind(ph.Name) != resHost || host == "" {
					host = "local"
				}
				a := compileArgs{Job: ji, Phase: ph.Name, Host: host, Slot: j.Slot, Source: j.Source, Output: j.Output,
					Exit: j.Exit, BytesOut: j.BytesOut, BytesIn: j.BytesIn, Reason: j.LocalReason,
					Bytes: FormatBytes(j.BytesOut) + " out, " + FormatBytes(j.BytesIn) + " in"}
				if j.WaitEstimate > 0 {
					a.WaitEst = fmtDur(j.WaitEstimate)
				}
				ev.Args = a
			} else {
				ev.Name, ev.Cat = ph.Name+" "+base, "phase"
				a := phaseArgs{Job: ji, Source: j.Source}
				if phaseKind(ph.Name) == resHost {
					a.Host = j.HostOf(i)
				}
				ev.Args = a
			}
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}
