// Package timeline owns the record of a build's compiles and every view of
// it: the model (a Build of Jobs, each a sequence of timed Phases), the
// on-disk store the agent appends to while readers in other processes list
// and load builds, the Chrome trace-event export (Perfetto,
// chrome://tracing), the self-contained HTML page, the terminal summary
// with the slowest files and the critical path, and the live farm timeline
// of the broker's status page (a bounded ring of lease events and its SVG).
//
// Everything here is pure data plus files: no goroutines, no sockets and
// no clock reads; callers pass every instant.
// Times are wall-clock instants measured on the engineer's machine, so all
// phases of a build share one clock; farm events are measured by the
// broker and share its clock.
package timeline

import (
	"errors"
	"fmt"
	"time"
)

// Phase names. A job has a subset of them, in time order; retries may
// repeat lease_wait, send, remote_compile and return.
const (
	PhasePreprocess    = "preprocess"     // dcc runs cc -E locally
	PhaseLeaseWait     = "lease_wait"     // the agent waits for the broker's grant
	PhaseSend          = "send"           // the job travels to the host
	PhaseRemoteCompile = "remote_compile" // the host compiles (as seen from the client)
	PhaseReturn        = "return"         // the object travels back
	PhaseWrite         = "write"          // dcc writes the object
	PhaseLocalCompile  = "local_compile"  // the compiler runs on this machine
	PhaseCacheLookup   = "cache_lookup"   // looking the result up in a cache
	PhaseCacheHit      = "cache_hit"      // fetching a cached result
)

// Where a job's object came from.
const (
	WhereRemote = "remote"
	WhereLocal  = "local"
	WhereCache  = "cache"
)

// MaxPhases bounds the phases of one job; a job with more is invalid.
const MaxPhases = 64

// ErrInvalidJob wraps every reason Validate rejects a job.
var ErrInvalidJob = errors.New("timeline: invalid job")

// Build is one build: a command run in a directory and the compiles it made.
type Build struct {
	ID      string    `json:"id"`
	Command []string  `json:"command"`
	Dir     string    `json:"dir"`
	Start   time.Time `json:"start"`
	// End is when the last recorded job ended: the store does not see the
	// build command exit, only its compiles.
	End  time.Time `json:"end"`
	Jobs []Job     `json:"jobs"`
	// Dropped counts jobs the store did not record because the build hit
	// its bounds (or, after a crash, at least that many).
	Dropped int64 `json:"dropped,omitempty"`
	// Skipped counts records the reader could not use: a line torn by a
	// crash, or a job that fails Validate.
	Skipped int `json:"skipped,omitempty"`
}

// Job is one compile: one dcc process, one source, one output.
type Job struct {
	Source       string        `json:"source"`
	Output       string        `json:"output"`
	Where        string        `json:"where"`                  // WhereRemote, WhereLocal or WhereCache
	Host         string        `json:"host"`                   // farm host of the final attempt; "" for local
	Slot         int           `json:"slot"`                   // the host's slot number, -1 unknown
	Exit         int           `json:"exit"`                   // the compiler's exit status
	LocalReason  string        `json:"local_reason,omitempty"` // why it compiled locally
	BytesOut     int64         `json:"bytes_out"`              // preprocessed source sent
	BytesIn      int64         `json:"bytes_in"`               // object and output received
	WaitEstimate time.Duration `json:"wait_estimate_ns"`       // the broker's estimate of the queue wait
	Phases       []Phase       `json:"phases"`
}

// Phase is one timed step of a job.
type Phase struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Host is the farm host this phase ran on when it is not the job's
	// Host: an attempt that failed before the job was retried elsewhere.
	Host string `json:"host,omitempty"`
}

// Duration is End - Start.
func (p Phase) Duration() time.Duration { return p.End.Sub(p.Start) }

var phaseNames = map[string]bool{
	PhasePreprocess: true, PhaseLeaseWait: true, PhaseSend: true, PhaseRemoteCompile: true,
	PhaseReturn: true, PhaseWrite: true, PhaseLocalCompile: true, PhaseCacheLookup: true, PhaseCacheHit: true,
}

// PhaseNames lists the phase names in the order a job passes through them.
func PhaseNames() []string {
	return []string{PhasePreprocess, PhaseCacheLookup, PhaseCacheHit, PhaseLeaseWait, PhaseSend,
		PhaseRemoteCompile, PhaseReturn, PhaseLocalCompile, PhaseWrite}
}

// compileName is the phase that compiles the file for each Where.
func compileName(where string) string {
	switch where {
	case WhereRemote:
		return PhaseRemoteCompile
	case WhereCache:
		return PhaseCacheHit
	default:
		return PhaseLocalCompile
	}
}

// Validate checks that the job has a known Where, between 1 and MaxPhases
// phases with known names, each with End >= Start, in time order and not
// overlapping (a phase may start at the instant the previous one ends).
// A job need not have a compile phase: a preprocessing error ends the job
// after its preprocess phase.
func (j *Job) Validate() error {
	switch j.Where {
	case WhereRemote, WhereLocal, WhereCache:
	default:
		return fmt.Errorf("%w: where %q", ErrInvalidJob, j.Where)
	}
	if j.Slot < -1 {
		return fmt.Errorf("%w: slot %d", ErrInvalidJob, j.Slot)
	}
	if j.BytesOut < 0 || j.BytesIn < 0 {
		return fmt.Errorf("%w: negative byte count", ErrInvalidJob)
	}
	if len(j.Phases) == 0 {
		return fmt.Errorf("%w: no phases", ErrInvalidJob)
	}
	if len(j.Phases) > MaxPhases {
		return fmt.Errorf("%w: %d phases (max %d)", ErrInvalidJob, len(j.Phases), MaxPhases)
	}
	for i, p := range j.Phases {
		if !phaseNames[p.Name] {
			return fmt.Errorf("%w: phase %d has unknown name %q", ErrInvalidJob, i, p.Name)
		}
		if p.Start.IsZero() || p.End.IsZero() {
			return fmt.Errorf("%w: phase %d (%s) has no time", ErrInvalidJob, i, p.Name)
		}
		if p.End.Before(p.Start) {
			return fmt.Errorf("%w: phase %d (%s) ends before it starts", ErrInvalidJob, i, p.Name)
		}
		if i > 0 && p.Start.Before(j.Phases[i-1].End) {
			return fmt.Errorf("%w: phase %d (%s) starts before phase %d (%s) ends",
				ErrInvalidJob, i, p.Name, i-1, j.Phases[i-1].Name)
		}
	}
	return nil
}

// Start is when the job's first phase started (zero without phases).
func (j *Job) Start() time.Time {
	if len(j.Phases) == 0 {
		return time.Time{}
	}
	return j.Phases[0].Start
}

// End is when the job's last phase ended (zero without phases).
func (j *Job) End() time.Time {
	if len(j.Phases) == 0 {
		return time.Time{}
	}
	return j.Phases[len(j.Phases)-1].End
}

// Wall is the job's wall time, first phase start to last phase end: how
// long the dcc process held its make job slot.
func (j *Job) Wall() time.Duration { return j.End().Sub(j.Start()) }

// CompilePhase is the index of the phase that produced the file's object:
// the last phase named for Where (remote_compile, local_compile or
// cache_hit). A job without one (it failed before compiling) has its last
// phase stand for it, so every job has exactly one compile phase; -1 only
// without phases.
func (j *Job) CompilePhase() int {
	name := compileName(j.Where)
	for i := len(j.Phases) - 1; i >= 0; i-- {
		if j.Phases[i].Name == name {
			return i
		}
	}
	return len(j.Phases) - 1
}

// CompileInterval is the start and end of the job's compile phase.
func (j *Job) CompileInterval() (start, end time.Time) {
	i := j.CompilePhase()
	if i < 0 {
		return time.Time{}, time.Time{}
	}
	return j.Phases[i].Start, j.Phases[i].End
}

// PhaseTime is the total duration of the job's phases with that name.
func (j *Job) PhaseTime(name string) time.Duration {
	var d time.Duration
	for _, p := range j.Phases {
		if p.Name == name {
			d += p.Duration()
		}
	}
	return d
}

// HostOf is the farm host phase i ran on: its own Host, else the job's.
func (j *Job) HostOf(i int) string {
	if h := j.Phases[i].Host; h != "" {
		return h
	}
	return j.Host
}

// Span is the interval the build covers: from the earlier of Start and its
// first job's start to the later of End and its last job's end.
func (b *Build) Span() (start, end time.Time) {
	start, end = b.Start, b.End
	for i := range b.Jobs {
		j := &b.Jobs[i]
		if len(j.Phases) == 0 {
			continue
		}
		if s := j.Start(); start.IsZero() || s.Before(start) {
			start = s
		}
		if e := j.End(); e.After(end) {
			end = e
		}
	}
	if end.Before(start) {
		end = start
	}
	return start, end
}

// Wall is the build's wall time as far as the record shows (see Span).
func (b *Build) Wall() time.Duration {
	s, e := b.Span()
	return e.Sub(s)
}
