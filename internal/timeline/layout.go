package timeline

import (
	"fmt"
	"sort"
	"time"
)

// Lanes. Every phase runs on a resource: this machine (preprocess, local
// compiles, cache, writes), the wait for a farm slot (lease_wait: nothing
// runs, but it is where time goes), or a farm host (send, remote_compile
// and return all hold the host's slot). A job's consecutive phases on one
// resource form a segment, and each resource's segments are spread over
// lanes by greedy interval colouring: in order of start, a segment takes
// the lane its host reported (the slot) when that lane is free, else the
// lowest free lane, else a new one. A lane is free when its last segment
// ended at or before this one starts, so no two segments overlap within a
// lane even when a reused slot's jobs overlap by a few microseconds as
// measured on the client. Processing in start order and opening a lane
// only when none is free uses the fewest lanes possible (when one opens,
// every existing lane is busy at that instant).

// Resource kinds, in display order.
const (
	resLocal = iota
	resWait
	resHost
)

// maxHintLane bounds the slot numbers honoured as lane hints, so a bogus
// slot cannot make thousands of empty lanes.
const maxHintLane = 256

type resource struct {
	kind  int
	host  string      // for resHost
	lanes []time.Time // end of each lane's last segment
	// slot[i] says lane i has held a segment at its host's reported slot
	// i, so it may be labelled as that slot.
	slot []bool
}

// laneLabel is how lane i is labelled: "slot i" for a host lane that its
// host's reports name, else "lane i".
func (r *resource) laneLabel(i int) string {
	if i < len(r.slot) && r.slot[i] {
		return fmt.Sprintf("slot %d", i)
	}
	return fmt.Sprintf("lane %d", i)
}

// Name is how the resource is labelled.
func (r *resource) Name() string {
	switch r.kind {
	case resLocal:
		return "this machine"
	case resWait:
		return "waiting for a slot"
	}
	return r.host
}

// segment is phases [from, to) of job, all on resource res, in lane lane.
type segment struct {
	job, from, to int
	res, lane     int
	start, end    time.Time
	hint          int
}

// plan is a build laid out in lanes.
type plan struct {
	res  []resource // local, wait, then hosts by name
	segs []segment  // in job order, then phase order
	// segOf[job][phase] is the index in segs of the segment holding
	// that phase.
	segOf [][]int
}

func phaseKind(name string) int {
	switch name {
	case PhaseLeaseWait:
		return resWait
	case PhaseSend, PhaseRemoteCompile, PhaseReturn:
		return resHost
	}
	return resLocal
}

// layout assigns every phase of b a lane.
func layout(b *Build) *plan {
	p := &plan{res: []resource{{kind: resLocal}, {kind: resWait}}, segOf: make([][]int, len(b.Jobs))}
	// Cut each job into segments; host segments remember their host name
	// until the hosts are known and sorted.
	var segHost []string
	hostRes := map[string]int{}
	hostOf := func(j *Job, i int) string {
		if h := j.HostOf(i); h != "" {
			return h
		}
		return "unknown host"
	}
	for ji := range b.Jobs {
		j := &b.Jobs[ji]
		p.segOf[ji] = make([]int, len(j.Phases))
		for i := 0; i < len(j.Phases); {
			kind, host := phaseKind(j.Phases[i].Name), ""
			if kind == resHost {
				host = hostOf(j, i)
				hostRes[host] = 0
			}
			k := i + 1
			for k < len(j.Phases) && phaseKind(j.Phases[k].Name) == kind && (kind != resHost || hostOf(j, k) == host) {
				k++
			}
			// The reported slot is the job's final host's: a hint only
			// for phases on that host.
			hint := -1
			if kind == resHost && j.Phases[i].Host == "" && j.Slot >= 0 && j.Slot < maxHintLane {
				hint = j.Slot
			}
			for x := i; x < k; x++ {
				p.segOf[ji][x] = len(p.segs)
			}
			p.segs = append(p.segs, segment{job: ji, from: i, to: k, res: kind,
				start: j.Phases[i].Start, end: j.Phases[k-1].End, hint: hint})
			segHost = append(segHost, host)
			i = k
		}
	}
	hosts := make([]string, 0, len(hostRes))
	for h := range hostRes {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		hostRes[h] = len(p.res)
		p.res = append(p.res, resource{kind: resHost, host: h})
	}
	for i := range p.segs {
		if p.segs[i].res == resHost {
			p.segs[i].res = hostRes[segHost[i]]
		}
	}

	// Colour each resource's segments in order of start.
	order := make([]int, len(p.segs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := &p.segs[order[a]], &p.segs[order[b]]
		if sa.res != sb.res {
			return sa.res < sb.res
		}
		if !sa.start.Equal(sb.start) {
			return sa.start.Before(sb.start)
		}
		return sa.end.Before(sb.end)
	})
	for _, si := range order {
		s := &p.segs[si]
		s.lane = p.res[s.res].place(s.start, s.end, s.hint)
	}
	return p
}

// place puts [start, end) in a free lane, preferring lane hint.
func (r *resource) place(start, end time.Time, hint int) int {
	if hint >= 0 {
		for len(r.lanes) <= hint {
			r.lanes = append(r.lanes, time.Time{})
		}
		if !r.lanes[hint].After(start) {
			r.lanes[hint] = end
			for len(r.slot) <= hint {
				r.slot = append(r.slot, false)
			}
			r.slot[hint] = true
			return hint
		}
	}
	for i, e := range r.lanes {
		if !e.After(start) {
			r.lanes[i] = end
			return i
		}
	}
	r.lanes = append(r.lanes, end)
	return len(r.lanes) - 1
}
