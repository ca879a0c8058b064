package client

import (
	"net"
	"os"
	"time"

	"github.com/dcc-farm/dcc/internal/buildroot"
	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// jobRecord is one compile's timeline as dcc sees it, sent to the agent
// when the compile is done (internal/agent keeps the records). dcc
// measures its own phases (preprocessing, writing the object, a local
// compile); the agent's (waiting for a lease, sending, the remote compile,
// the return) come back with its result.
type jobRecord struct {
	r   *run
	rec wire.AgentRecord
}

// newRecord starts the record of a remote candidate, or returns nil when
// records are off.
func (r *run) newRecord(p *compilerargs.Plan) *jobRecord {
	if r.cfg.BuildsDir == "" {
		return nil
	}
	return &jobRecord{r: r, rec: wire.AgentRecord{Source: p.Source, Output: p.Output, Slot: -1}}
}

func (j *jobRecord) phase(name string, start, end time.Time) {
	if j == nil || end.Before(start) {
		return
	}
	j.rec.Phases = append(j.rec.Phases, wire.PhaseRecord{Name: name, StartNs: start.UnixNano(), EndNs: end.UnixNano()})
}

// farm adds the agent's phases. A lease requested while the preprocessor
// ran is waited for only after it: the wait shown starts there.
func (j *jobRecord) farm(res *wire.AgentResult) {
	if j == nil || res == nil {
		return
	}
	var last int64
	if n := len(j.rec.Phases); n > 0 {
		last = j.rec.Phases[n-1].EndNs
	}
	for _, p := range res.Phases {
		if p.StartNs < last {
			p.StartNs = last
		}
		if p.EndNs <= p.StartNs {
			continue
		}
		j.rec.Phases = append(j.rec.Phases, p)
		last = p.EndNs
	}
	j.rec.EstWaitMs = res.EstWaitMs
	if res.Host != "" {
		j.rec.Host, j.rec.Slot = res.Host, res.Result.Slot
		j.rec.BytesIn = int64(len(res.Result.Output))
	}
}

// done sends the record of a compile that did not end with a farm result
// to the agent, if one runs (it is not started for this), on a connection
// of its own; where is local, or remote for a compile error.
func (j *jobRecord) done(where string, exit int, reason string, sent int) {
	if j == nil {
		return
	}
	j.end(where, exit, reason, sent)
	wd, _ := os.Getwd()
	b := buildroot.Find(os.Getppid(), wd)
	j.rec.BuildID, j.rec.Command, j.rec.Dir, j.rec.BuildStartNs = b.ID, b.Command, b.Dir, b.Start.UnixNano()
	conn, err := j.r.agentConn(false)
	if err != nil {
		return
	}
	defer conn.Close()
	wire.NewConn(conn, wire.MaxControlFrame, time.Second).Send(&j.rec)
}

// doneOn sends a farm job's record on its own connection to the agent,
// after the result: the agent has named the build meanwhile.
func (j *jobRecord) doneOn(conn net.Conn, where string, exit, sent int) {
	if j == nil {
		return
	}
	j.end(where, exit, "", sent)
	wire.NewConn(conn, wire.MaxControlFrame, time.Second).Send(&j.rec)
}

func (j *jobRecord) end(where string, exit int, reason string, sent int) {
	j.rec.Where, j.rec.Exit, j.rec.LocalReason, j.rec.BytesOut = where, exit, reason, int64(sent)
	if where != "remote" && where != "cache" {
		j.rec.Host, j.rec.Slot = "", -1
	}
}

// timedChild runs the compiler locally as a child, recording the compile.
func (r *run) timedChild(j *jobRecord, reason string) int {
	start := time.Now()
	code := r.child()
	j.phase("local_compile", start, time.Now())
	j.done("local", code, reason, 0)
	return code
}
