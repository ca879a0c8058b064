package volunteer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/internal/executor"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// jobReadTimeout bounds how long a client may take to send one job.
const jobReadTimeout = 60 * time.Second

func (v *Volunteer) acceptLoop() {
	for {
		conn, err := v.ln.Accept()
		if err != nil {
			select {
			case <-v.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.serveConn(conn)
		}()
	}
}

func (v *Volunteer) serveConn(conn net.Conn) {
	sess, peer, hello, err := transport.Accept(conn, v.serverTLS, v.admit)
	if err != nil {
		v.m.results.WithLabelValues("refused").Inc()
		fields := []zap.Field{zap.String("remote", conn.RemoteAddr().String()), zap.Error(err)}
		if peer.Name != "" {
			fields = append(fields, zap.String("credential", peer.Role+" "+peer.Name))
		}
		v.log.Warn("client connection refused", fields...)
		return
	}
	if !v.trackSession(sess, peer) {
		sess.Close()
		return
	}
	defer v.untrackSession(sess)
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			defer st.Close()
			v.serveJob(st, peer, hello)
		}()
	}
}

// admit lets in job connections from users' credentials that the broker
// has not revoked: hosts and the broker send no jobs.
func (v *Volunteer) admit(p identity.Peer, h *wire.Hello) (*wire.Welcome, *wire.Error) {
	switch {
	case v.revoked.Revoked(p.Serial):
		return nil, &wire.Error{Code: wire.CodeAuth, Message: fmt.Sprintf("your credential (%s %s) has been revoked by the farm's admin", p.Role, p.Name)}
	case !p.ActsAs(identity.RoleUser):
		return nil, &wire.Error{Code: wire.CodeAuth, Message: fmt.Sprintf("only users send jobs; this is %s %s", p.Role, p.Name)}
	case h.Role != wire.RoleClient:
		return nil, &wire.Error{Code: wire.CodeDenied, Message: "only clients send jobs"}
	}
	return &wire.Welcome{EarlySource: true}, nil
}

// jobRun is one job on its stream, through the steps serveJob names.
type jobRun struct {
	v      *Volunteer
	st     *yamux.Stream
	c      *wire.Conn
	peer   identity.Peer // the client's credential
	client string
	req    *wire.JobRequest
	source []byte
	claims wire.TokenClaims
	comp   Offered
	job    *job
	ctx    context.Context
	cancel context.CancelFunc
	fields []zap.Field
}

// serveJob runs one job stream: the header, its checks, the source, the
// compile, the result. Every refusal before the compiler runs is a
// JobResult with a Code, never a compile; a refusal is decided from the
// small header, before the source (up to MaxJobFrame) is read.
func (v *Volunteer) serveJob(st *yamux.Stream, peer identity.Peer, hello *wire.Hello) {
	j := &jobRun{v: v, st: st, peer: peer, client: peer.Role + " " + peer.Name + "@" + hello.Name, c: wire.NewConn(st, wire.MaxControlFrame, jobReadTimeout)}
	if !j.receiveHeader() || !j.authorize() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.ctx, j.cancel = ctx, cancel
	if !j.claimSlot() {
		return
	}
	defer j.releaseSlot()
	// An early job's source comes while its compiler starts (feedSource).
	if !j.req.Early {
		if !j.receiveSource() {
			return
		}
		j.watchClient()
	}
	res, err := j.compile()
	// The slot is free once the compiler has exited: the client releases
	// the lease as soon as it reads the result, and the broker may grant
	// the slot again before this goroutine ends.
	j.releaseSlot()
	j.respond(res, err)
}

// reject answers the job with a refusal and counts it.
func (j *jobRun) reject(code int, reason string) {
	j.v.m.results.WithLabelValues(wire.OutcomeRejected).Inc()
	j.v.log.Warn("job rejected", append(j.fields, zap.String("client", j.client), zap.Int("code", code), zap.String("reason", reason))...)
	j.c.Send(&wire.JobResult{Code: code, Rejected: reason})
}

func (j *jobRun) receiveHeader() bool {
	req, err := wire.Expect[*wire.JobRequest](j.c)
	if err != nil {
		j.reject(wire.RejectBadRequest, "bad request: "+err.Error())
		return false
	}
	if req.Early && (req.SourceBytes != 0 || len(req.Digest) != 0) {
		j.reject(wire.RejectBadRequest, "bad request: an early job names no source size or digest")
		return false
	}
	if !req.Early && (req.SourceBytes <= 0 || req.SourceBytes > wire.MaxJobFrame-1024) {
		j.reject(wire.RejectBadRequest, fmt.Sprintf("bad request: source of %d bytes", req.SourceBytes))
		return false
	}
	j.req = req
	return true
}

// authorize checks the token (signed by the broker for this host, this
// job's digest and compiler, not expired, not used before), the compiler
// and the arguments.
func (j *jobRun) authorize() bool {
	v, req := j.v, j.req
	now := time.Now()
	v.mu.Lock()
	pub := v.pub
	v.mu.Unlock()
	if pub == nil {
		j.reject(wire.RejectToken, "volunteer has not registered with a broker")
		return false
	}
	claims, err := lease.Verify(pub, req.Token, v.cfg.Name, req.Digest, now, v.cfg.ClockSkew)
	if err != nil {
		j.reject(wire.RejectToken, err.Error())
		return false
	}
	j.claims = claims
	j.fields = []zap.Field{zap.Uint64("lease", claims.Lease), zap.String("user", claims.User), zap.String("host", v.cfg.Name)}
	// The token is for one user: only that user's credential may spend it
	// (an admin's acts for others).
	if claims.User != j.peer.Name && !j.peer.ActsAs(identity.RoleAdmin) {
		j.reject(wire.RejectToken, fmt.Sprintf("the lease is %s's, not %s's", claims.User, j.peer.Name))
		return false
	}
	if claims.Fingerprint != req.Fingerprint {
		j.reject(wire.RejectToken, "compiler fingerprint differs from the lease's")
		return false
	}
	if req.Early && !compilerargs.FromPipe(req.Ext, req.Fingerprint) {
		// Its object from a pipe could differ from a file's, and go into the cache.
		j.reject(wire.RejectBadRequest, "bad request: this job is compiled from a file, not early from a pipe")
		return false
	}
	comp, ok := v.pick(req.Fingerprint, req.Compiler, req.Ext)
	if !ok {
		j.reject(wire.RejectNoCompiler, fmt.Sprintf("no compiler %q with fingerprint %q here", req.Compiler, req.Fingerprint))
		return false
	}
	j.comp = comp
	if err := compilerargs.CheckRemoteArgs(req.Args); err != nil {
		j.reject(wire.RejectArgs, "argument refused: "+err.Error())
		return false
	}
	return true
}

// claimSlot uses the token (a token admits one job) and takes a slot, if
// the host is available and has one free.
func (j *jobRun) claimSlot() bool {
	v := j.v
	now := time.Now()
	v.mu.Lock()
	if ok, why := v.availableLocked(); !ok {
		v.mu.Unlock()
		j.reject(wire.RejectUnavailable, "host unavailable: "+why)
		return false
	}
	slot := v.freeSlotLocked()
	if slot < 0 {
		v.mu.Unlock()
		j.reject(wire.RejectBusy, fmt.Sprintf("all %d slots busy", v.cfg.Slots))
		return false
	}
	if err := v.replay.Use(j.claims, now); err != nil {
		v.mu.Unlock()
		j.reject(wire.RejectToken, err.Error())
		return false
	}
	j.job = &job{token: j.req.Token, cancel: j.cancel, user: j.claims.User, slot: slot}
	v.running[j.claims.Lease] = j.job
	v.slotUsed[slot] = true
	v.mu.Unlock()
	if v.replayLog != nil {
		if err := v.replayLog.add(j.claims.Lease, j.claims.ExpiresMs); err != nil {
			v.log.Error("replay log write failed: a restart would forget this token", append(j.fields, zap.Error(err))...)
		}
	}
	return true
}

// releaseSlot frees the job's slot; it may be called twice.
func (j *jobRun) releaseSlot() {
	v := j.v
	v.mu.Lock()
	if v.running[j.claims.Lease] == j.job {
		delete(v.running, j.claims.Lease)
		v.slotUsed[j.job.slot] = false
	}
	v.mu.Unlock()
}

// receiveSource reads the source frame that follows the header and
// checks it is the one the token was issued for.
func (j *jobRun) receiveSource() bool {
	j.c.MaxFrame = int(j.req.SourceBytes) + 1024 // msgpack's few bytes of framing
	src, err := wire.Expect[*wire.JobSource](j.c)
	if err != nil {
		j.reject(wire.RejectBadRequest, "bad request: "+err.Error())
		return false
	}
	// The header's digest is the token's when the token names one (Verify
	// checked), so this binds the source to the lease either way.
	if int64(len(src.Source)) != j.req.SourceBytes || !bytes.Equal(digest(src.Source), j.req.Digest) {
		j.reject(wire.RejectToken, "source does not match the job's digest")
		return false
	}
	j.source = src.Source
	j.v.m.bytesIn.Add(float64(len(src.Source)))
	return true
}

// errSourceMismatch fails an early job whose source is not the one its
// JobSource's digest names.
var errSourceMismatch = errors.New("source does not match the job's digest")

// feedSource is an early job's Feed (executor.Job): it reads the source
// frame, whenever the client's preprocessor is done, checks it against
// its digest and only then writes it to the compiler's pipe. A client that
// goes away first (a preprocessing error, a cache hit, dcc killed)
// cancels the job; nothing of it is the host's fault.
func (j *jobRun) feedSource(ctx context.Context, w io.Writer) error {
	_ = j.st.SetReadDeadline(time.Now().Add(jobReadTimeout))
	stop := context.AfterFunc(ctx, func() { _ = j.st.SetReadDeadline(time.Now()) })
	// No deadlines from the Conn: the one set here holds, and ctx may cut it short.
	c := wire.NewConn(struct{ io.ReadWriter }{j.st}, wire.MaxJobFrame, 0)
	src, err := wire.Expect[*wire.JobSource](c)
	if !stop() && err == nil {
		err = ctx.Err() // ctx ended as the source came: the job is over
	}
	if err != nil {
		j.cancel()
		return err
	}
	sum := digest(src.Source)
	if len(src.Source) == 0 || !bytes.Equal(sum, src.Digest) {
		return errSourceMismatch
	}
	// The cache key and the log use the digest of what arrived.
	j.req.SourceBytes, j.req.Digest, j.source = int64(len(src.Source)), sum, src.Source
	j.v.m.bytesIn.Add(float64(len(src.Source)))
	j.watchClient()
	_, err = w.Write(src.Source)
	return err
}

// watchClient cancels the job when the client closes its stream (it died
// or gave up): nothing more is read from it.
func (j *jobRun) watchClient() {
	go func() {
		var b [1]byte
		_ = j.st.SetReadDeadline(time.Time{})
		j.st.Read(b[:])
		j.cancel()
	}()
}

func (j *jobRun) compile() (*executor.Result, error) {
	v, req := j.v, j.req
	v.lease.Info("job start", append(j.fields, zap.String("compiler", j.comp.Path), zap.Int("source_bytes", len(j.source)), zap.Bool("early", req.Early), zap.Int("slot", j.job.slot))...)
	var feed func(context.Context, io.Writer) error
	if req.Early {
		feed = j.feedSource
	}
	return executor.Run(j.ctx, executor.Job{
		Compiler: j.comp.Path, Args: req.Args, Ext: req.Ext, Lang: req.Lang, Kind: req.Kind, Source: j.source, Feed: feed,
		Name: strings.TrimSuffix(req.SourceName, req.Ext), TempDir: v.cfg.TempDir,
		OnStart: func(pgid int) {
			v.mu.Lock()
			j.job.pgid = pgid
			draining := !v.avail.decision.Available
			v.mu.Unlock()
			if draining {
				executor.Renice(pgid, 19)
			}
		},
	}, v.limits)
}

// respond sends the result, and tells the broker the job ended.
func (j *jobRun) respond(res *executor.Result, err error) {
	v := j.v
	outcome, result := j.result(res, err)
	v.m.results.WithLabelValues(outcome).Inc()
	v.m.bytesOut.Add(float64(len(result.Output)))
	v.lease.Info("job end", append(j.fields, zap.String("outcome", outcome), zap.Int64("wall_ms", result.WallMs), zap.Int("output_bytes", len(result.Output)))...)
	j.c.WriteTimeout = 60 * time.Second
	if err := j.c.Send(result); err != nil {
		v.log.Warn("send result", append(j.fields, zap.Error(err))...)
	}
	j.putCache(result)
	select {
	case v.done <- &wire.JobDone{LeaseID: j.claims.Lease, Outcome: outcome, WallMs: result.WallMs}:
	default:
	}
}

// result turns what the executor returned into the outcome and the
// JobResult to send.
func (j *jobRun) result(res *executor.Result, err error) (string, *wire.JobResult) {
	outcome := wire.OutcomeOK
	result := &wire.JobResult{Slot: j.job.slot}
	switch {
	case err != nil && j.ctx.Err() != nil:
		outcome = wire.OutcomeCancelled
		result.Code, result.Rejected = wire.RejectCancelled, "job cancelled"
	case errors.Is(err, errSourceMismatch):
		outcome = wire.OutcomeRejected
		result.Code, result.Rejected = wire.RejectToken, err.Error()
	case err != nil:
		outcome = wire.OutcomeFailed
		result.Code, result.Rejected = wire.RejectFailed, "job failed: "+err.Error()
	case res.ExitCode != 0:
		outcome = wire.OutcomeCompileError
	}
	if res == nil {
		return outcome, result
	}
	result.ExitCode, result.Stdout, result.Stderr = res.ExitCode, res.Stdout, res.Stderr
	result.WallMs, result.CPUMs = res.Wall.Milliseconds(), res.CPU.Milliseconds()
	j.v.m.duration.Observe(res.Wall.Seconds())
	if result.Code == 0 && res.ExitCode == 0 {
		if len(res.Output)+len(res.Stdout)+len(res.Stderr) > wire.MaxJobFrame-(1<<20) {
			outcome = wire.OutcomeCancelled
			result.Code, result.Rejected = wire.RejectTooLarge, fmt.Sprintf("output too large to return (%d bytes)", len(res.Output))
		} else {
			result.Output = res.Output
			result.Digest = digest(res.Output)
		}
	}
	return outcome, result
}

// freeSlotLocked returns the lowest free slot index, or -1. Caller holds mu.
func (v *Volunteer) freeSlotLocked() int {
	if len(v.running) >= v.cfg.Slots {
		return -1
	}
	for i, used := range v.slotUsed {
		if !used {
			return i
		}
	}
	return -1
}

// pick chooses the offered compiler for a job: the exact fingerprint, and
// the same driver name if offered, else a C++ driver for C++ sources, else
// any driver of that fingerprint.
func (v *Volunteer) pick(fp, name, ext string) (Offered, bool) {
	var best Offered
	score := -1
	for _, o := range v.compilers {
		if o.Fingerprint != fp {
			continue
		}
		s := 0
		cxx := ext == ".ii" || ext == ".mii"
		if strings.Contains(o.Name, "++") == cxx {
			s = 1
		}
		if o.Name == name {
			s = 2
		}
		if s > score {
			best, score = o, s
		}
	}
	return best, score >= 0
}
