package volunteer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/internal/executor"
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
	sess, hello, err := transport.Accept(conn, v.key, func(h *wire.Hello) (*wire.Welcome, *wire.Error) {
		if h.Role != wire.RoleClient {
			return nil, &wire.Error{Code: wire.CodeDenied, Message: "only clients send jobs"}
		}
		return &wire.Welcome{}, nil
	})
	if err != nil {
		v.m.results.WithLabelValues("refused").Inc()
		v.log.Warn("client handshake refused", zap.String("remote", conn.RemoteAddr().String()), zap.Error(err))
		return
	}
	if !v.trackSession(sess) {
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
			v.serveJob(st, hello)
		}()
	}
}

// serveJob runs one job stream: request in, result out. Every refusal
// before the compiler runs is a JobResult with Rejected set, never a compile.
func (v *Volunteer) serveJob(st *yamux.Stream, hello *wire.Hello) {
	c := wire.NewConn(st, wire.MaxJobFrame, jobReadTimeout)
	req, err := wire.Expect[*wire.JobRequest](c)
	if err != nil {
		v.m.results.WithLabelValues("rejected").Inc()
		v.log.Warn("bad job request", zap.String("client", hello.Name), zap.Error(err))
		c.Send(&wire.JobResult{Rejected: "bad request: " + err.Error()})
		return
	}
	v.m.bytesIn.Add(float64(len(req.Source)))
	reject := func(reason string, fields ...zap.Field) {
		v.m.results.WithLabelValues("rejected").Inc()
		v.log.Warn("job rejected", append(fields, zap.String("client", hello.Name), zap.String("reason", reason))...)
		c.Send(&wire.JobResult{Rejected: reason})
	}
	now := time.Now()
	v.mu.Lock()
	pub := v.pub
	v.mu.Unlock()
	if pub == nil {
		reject("volunteer has not registered with a broker")
		return
	}
	claims, err := lease.Verify(pub, req.Token, v.cfg.Name, digest(req.Source), now)
	if err != nil {
		reject(err.Error())
		return
	}
	fields := []zap.Field{zap.Uint64("lease", claims.Lease), zap.String("user", claims.User), zap.String("host", v.cfg.Name)}
	if !bytes.Equal(req.Digest, claims.Digest) {
		reject("source digest does not match the request", fields...)
		return
	}
	if claims.Fingerprint != req.Fingerprint {
		reject("compiler fingerprint differs from the lease's", fields...)
		return
	}
	comp, ok := v.pick(req.Fingerprint, req.Compiler, req.Ext)
	if !ok {
		reject(fmt.Sprintf("no compiler %q with fingerprint %q here", req.Compiler, req.Fingerprint), fields...)
		return
	}
	if err := compilerargs.CheckRemoteArgs(req.Args); err != nil {
		reject("argument refused: "+err.Error(), fields...)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.mu.Lock()
	if err := v.replay.Use(claims, now); err != nil {
		v.mu.Unlock()
		reject(err.Error(), fields...)
		return
	}
	if ok, why := v.availableLocked(); !ok {
		v.mu.Unlock()
		reject("host unavailable: "+why, fields...)
		return
	}
	if len(v.running) >= v.cfg.Slots {
		v.mu.Unlock()
		reject(fmt.Sprintf("all %d slots busy", v.cfg.Slots), fields...)
		return
	}
	thisJob := &job{token: req.Token, cancel: cancel, user: claims.User}
	v.running[claims.Lease] = thisJob
	v.mu.Unlock()
	finished := func() {
		v.mu.Lock()
		delete(v.running, claims.Lease)
		v.mu.Unlock()
	}
	defer finished()
	// The client closing its stream (it died or gave up) cancels the job.
	go func() {
		var b [1]byte
		_ = st.SetReadDeadline(time.Time{})
		st.Read(b[:])
		cancel()
	}()
	v.lease.Info("job start", append(fields, zap.String("compiler", comp.Path), zap.Int("source_bytes", len(req.Source)))...)
	res, err := executor.Run(ctx, executor.Job{
		Compiler: comp.Path, Args: req.Args, Ext: req.Ext, Kind: req.Kind, Source: req.Source,
		Name: strings.TrimSuffix(req.SourceName, req.Ext), TempDir: v.cfg.TempDir,
		OnStart: func(pgid int) {
			v.mu.Lock()
			thisJob.pgid = pgid
			draining := !v.avail.decision.Available
			v.mu.Unlock()
			if draining {
				executor.Renice(pgid, 19)
			}
		},
	}, v.limits)
	// The slot is free once the compiler has exited: the client releases
	// the lease as soon as it reads the result, and the broker may grant
	// the slot again before this goroutine ends.
	finished()
	outcome := wire.OutcomeOK
	var result wire.JobResult
	switch {
	case err != nil && ctx.Err() != nil:
		outcome = wire.OutcomeCancelled
		result.Rejected = "job cancelled"
	case err != nil:
		outcome = wire.OutcomeFailed
		result.Rejected = "job failed: " + err.Error()
	case res.ExitCode != 0:
		outcome = wire.OutcomeCompileError
	}
	if res != nil {
		result.ExitCode, result.Stdout, result.Stderr = res.ExitCode, res.Stdout, res.Stderr
		result.WallMs, result.CPUMs = res.Wall.Milliseconds(), res.CPU.Milliseconds()
		if result.Rejected == "" && res.ExitCode == 0 {
			if len(res.Output)+len(res.Stdout)+len(res.Stderr) > wire.MaxJobFrame-(1<<20) {
				outcome = wire.OutcomeCancelled
				result.Rejected = fmt.Sprintf("%s (%d bytes)", wire.RejectTooLarge, len(res.Output))
			} else {
				result.Output = res.Output
				result.Digest = digest(res.Output)
			}
		}
		v.m.duration.Observe(res.Wall.Seconds())
	}
	v.m.results.WithLabelValues(outcome).Inc()
	v.m.bytesOut.Add(float64(len(result.Output)))
	v.lease.Info("job end", append(fields, zap.String("outcome", outcome), zap.Int64("wall_ms", result.WallMs), zap.Int("output_bytes", len(result.Output)))...)
	c.WriteTimeout = 60 * time.Second
	if err := c.Send(&result); err != nil {
		v.log.Warn("send result", append(fields, zap.Error(err))...)
	}
	select {
	case v.done <- &wire.JobDone{LeaseID: claims.Lease, Outcome: outcome, WallMs: result.WallMs}:
	default:
	}
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
