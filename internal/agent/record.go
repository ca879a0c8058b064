package agent

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/buildroot"
	"github.com/dcc-farm/dcc/internal/timeline"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// The agent keeps the user's build records (internal/timeline): every dcc
// process sends its compile's timeline when it is done, and the agent,
// the one writer, appends it to the build it belongs to. A farm job's
// record comes on the job's connection, and the agent has named its build
// meanwhile (findBuild); a local compile's comes with its build. `dcc builds` and
// `dcc trace` read the records directly.

// recorder owns the timeline store, opened on the first record.
type recorder struct {
	mu    sync.Mutex
	store *timeline.Store
	err   error
}

// recordIn records a farm job's record, which names no build, in build b.
func (a *Agent) recordIn(m *wire.AgentRecord, b buildroot.Info) {
	m.BuildID, m.Command, m.Dir, m.BuildStartNs = b.ID, b.Command, b.Dir, b.Start.UnixNano()
	a.record(m)
}

func (a *Agent) record(m *wire.AgentRecord) {
	if a.opt.BuildsDir == "" {
		return
	}
	r := &a.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil && r.err == nil {
		r.store, r.err = timeline.Open(a.opt.BuildsDir, a.opt.KeepBuilds)
		if r.err != nil {
			a.log.Warn("build records disabled", zap.String("dir", a.opt.BuildsDir), zap.Error(r.err))
		}
	}
	if r.store == nil {
		return
	}
	meta := timeline.BuildMeta{Command: m.Command, Dir: m.Dir, Start: time.Unix(0, m.BuildStartNs)}
	if err := r.store.Append(m.BuildID, meta, jobOf(m)); err != nil {
		a.log.Debug("build record refused", zap.String("build", m.BuildID), zap.String("source", m.Source), zap.Error(err))
	}
}

func (a *Agent) closeRecords() {
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	if a.rec.store != nil {
		a.rec.store.Close()
	}
}

func jobOf(m *wire.AgentRecord) timeline.Job {
	j := timeline.Job{Source: m.Source, Output: m.Output, Where: m.Where, Host: m.Host, Slot: m.Slot, LocalReason: m.LocalReason,
		Exit: m.Exit, BytesOut: m.BytesOut, BytesIn: m.BytesIn, WaitEstimate: time.Duration(m.EstWaitMs) * time.Millisecond}
	for _, p := range m.Phases {
		j.Phases = append(j.Phases, timeline.Phase{Name: p.Name, Start: time.Unix(0, p.StartNs), End: time.Unix(0, p.EndNs), Host: p.Host})
	}
	return j
}
