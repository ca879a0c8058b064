package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dcc-farm/dcc/internal/agentlink"
	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/pkg/wire"
)

func numCPU() int { return runtime.NumCPU() }

// run is one compiler invocation through dcc.
type run struct {
	cfg      Config
	compiler string   // resolved path of the real compiler
	driver   string   // its base name as invoked
	args     []string // the compiler's arguments
	start    time.Time
	rec      *jobRecord // this compile's timeline, for the build's record (nil: none kept)
}

func (r *run) logf(format string, a ...any) {
	if r.cfg.Verbose {
		fmt.Fprintf(os.Stderr, "dcc[%d] %s\n", os.Getpid(), fmt.Sprintf(format, a...))
	}
}

// Compile runs the compiler named by name (as invoked) with args and
// returns the exit status to exit with. It only returns on the remote
// path; every local path replaces this process with the compiler.
func Compile(name string, args []string) int {
	cfg, warns := LoadConfig()
	r := &run{cfg: cfg, driver: filepath.Base(name), args: args, start: time.Now()}
	for _, w := range warns {
		r.logf("config: %s", w)
	}
	self, _ := os.Executable()
	path, err := compiler.Resolve(name, self)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dcc: %v\n", err)
		return 127
	}
	// The agent runs in "/": a relative compiler (CC=./tools/cc, or a
	// relative PATH entry) must reach it as the file it names here.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	r.compiler = path
	plan := compilerargs.Classify(args)
	if !plan.Remote {
		r.logf("local: %s", plan.Reason)
		return r.local("")
	}
	if isClang(r.compiler) {
		if rw, ok := plan.RewriteIncludes(); ok {
			plan = rw // clang on the farm then prints exactly the local diagnostics
			if wd, err := os.Getwd(); err == nil {
				plan = plan.RecordDirectory(wd)
			}
		}
	}
	r.logf("remote candidate: %s (%s) -> %s", plan.Source, plan.Lang, plan.Output)
	r.rec = r.newRecord(&plan)
	if cfg.Broker == "" {
		return r.local("no broker configured (set DCC_BROKER or broker in ~/.dccrc)")
	}
	// Ask the agent for a farm slot first, so that the lease wait overlaps
	// the preprocessor; the source follows when it is ready.
	job, why := r.openJob(&plan)
	ppStart := time.Now()
	src, cppErr, code, err := r.preprocess(&plan)
	r.rec.phase("preprocess", ppStart, time.Now())
	if err != nil {
		job.abandon()
		return r.local("preprocess: " + err.Error())
	}
	if code != 0 {
		// The compiler's own error while preprocessing: report it as is.
		job.abandon()
		os.Stderr.Write(cppErr)
		r.rec.done("local", code, "preprocessing failed", 0)
		return code
	}
	r.logf("preprocessed %s: %d bytes in %s", plan.Source, len(src), time.Since(r.start).Round(time.Microsecond))
	if why != "" {
		return r.local(why)
	}
	res, why, slot := job.finish(src)
	r.rec.farm(res)
	if slot != nil {
		// The broker sent this job home and the agent reserved a local
		// slot for it: compile as a child and hold the socket until done.
		defer slot.Close()
		r.logf("compiling locally: %s", why)
		return r.timedChild(r.rec, why)
	}
	if why != "" {
		return r.local(why)
	}
	defer job.abandon() // after the record, which goes on the job's connection
	return r.finish(&plan, src, cppErr, res, job.conn)
}

// preprocess runs the compiler with -E, capturing the preprocessed source.
func (r *run) preprocess(p *compilerargs.Plan) (src, stderr []byte, code int, err error) {
	if p.Preprocessed {
		b, err := os.ReadFile(p.Source)
		return b, nil, 0, err
	}
	cmd := exec.Command(r.compiler, p.PreprocessArgs...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, nil
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return nil, errb.Bytes(), ee.ExitCode(), nil
		}
		return nil, nil, 0, err
	}
	return out.Bytes(), errb.Bytes(), 0, nil
}

// agentJob is a job handed to the agent: the request goes out before
// preprocessing, the source after it.
type agentJob struct {
	r    *run
	conn net.Conn
	c    *wire.Conn
}

// openJob connects to the agent and sends the job's request without its
// source. why is non-empty when the farm cannot be used at all.
func (r *run) openJob(p *compilerargs.Plan) (*agentJob, string) {
	conn, err := r.agentConn(true)
	if err != nil {
		return &agentJob{r: r}, "agent: " + err.Error()
	}
	c := wire.NewConn(conn, wire.MaxJobFrame, 0)
	c.WriteTimeout = 30 * time.Second
	var hint int64
	if st, err := os.Stat(p.Source); err == nil {
		hint = st.Size()
	}
	req := &wire.AgentCompile{
		Version: wire.ProtocolVersion, Build: agentlink.Build(), Compiler: r.compiler, Driver: r.driver, Lang: p.Lang,
		Ext: p.PreprocessedExt, Kind: p.OutputKind, Args: p.RemoteArgs, SourceName: sourceName(p), SizeHint: hint,
		File: p.Source, MaxWaitMs: r.cfg.MaxWait.Milliseconds(), Verbose: r.cfg.Verbose, NoCache: r.cfg.NoCache,
	}
	if r.rec != nil {
		// The agent names the build from these while the job runs.
		req.ParentPID = os.Getppid()
		req.WorkDir, _ = os.Getwd()
	}
	if err := c.Send(req); err != nil {
		conn.Close()
		return &agentJob{r: r}, "agent: send: " + err.Error()
	}
	return &agentJob{r: r, conn: conn, c: c}, ""
}

// abandon tells the agent the job will not come (closing the socket
// cancels its lease request).
func (j *agentJob) abandon() {
	if j.conn != nil {
		j.conn.Close()
	}
}

// finish sends the source and waits for the agent's answer. why is
// non-empty when the job must be compiled locally instead; slot is
// non-nil when the agent reserved a local slot, held until slot is closed.
// After a farm result the connection stays open for the job's record
// (jobRecord.doneOn); the caller closes it (abandon).
func (j *agentJob) finish(src []byte) (res *wire.AgentResult, why string, slot io.Closer) {
	r := j.r
	keep := false
	defer func() {
		if !keep {
			j.conn.Close()
		}
	}()
	if int64(len(src)) > wire.MaxJobFrame-(1<<20) {
		return nil, "preprocessed source too large to ship", nil
	}
	// The agent bounds the whole job (lease wait plus compile); this
	// deadline only protects against an agent that hangs. An agent that
	// answered early (and closed) still has its answer to read.
	wait := r.cfg.MaxWait + 15*time.Minute
	if err := j.c.Send(&wire.AgentSource{Source: src}); err != nil {
		wait = time.Second
	}
	m, err := j.c.RecvTimeout(wait)
	if err != nil {
		return nil, "agent: " + err.Error(), nil
	}
	res, ok := m.(*wire.AgentResult)
	if !ok {
		return nil, fmt.Sprintf("agent: unexpected %T", m), nil
	}
	for _, l := range res.Log {
		r.logf("%s", l)
	}
	if res.Fallback != "" {
		if res.LocalSlot {
			keep = true
			return nil, res.Fallback, j.conn
		}
		return nil, res.Fallback, nil
	}
	keep = true
	return res, "", nil
}

// isClang reports whether the real compiler is clang (its binary, links
// followed, is named clang...).
func isClang(path string) bool {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return strings.Contains(filepath.Base(path), "clang")
}

func sourceName(p *compilerargs.Plan) string {
	b := filepath.Base(p.Source)
	if p.Rewritten {
		return b // the object's file symbol is the name clang compiles
	}
	return strings.TrimSuffix(b, filepath.Ext(b)) + p.PreprocessedExt
}

// finish writes a remote result exactly as the compiler would have.
func (r *run) finish(p *compilerargs.Plan, src, cppErr []byte, res *wire.AgentResult, agent net.Conn) int {
	jr := &res.Result
	where := "remote"
	if res.CachedAtMs != 0 {
		where = "cache"
		r.logf("cache hit (produced by %s at %s)", res.Host, time.UnixMilli(res.CachedAtMs).Format(time.RFC3339))
	}
	if !p.Rewritten && (jr.ExitCode != 0 || len(jr.Stderr) > 0) {
		// gcc on the farm compiled preprocessed text, so its diagnostics
		// are not the ones gcc prints here (no source lines or carets,
		// other columns inside macros, no macro-expansion notes): compile
		// here to print exactly those. The agent remembers the job, so
		// the next build of the same file compiles here at once.
		r.logf("the farm's compile on %s printed diagnostics (exit %d); compiling locally to print them exactly as gcc does here", res.Host, jr.ExitCode)
		agent.Close() // this compile's record goes on a connection of its own
		if r.rec != nil {
			return r.timedChild(r.rec, "diagnostics: gcc's exact output")
		}
		return r.local("")
	}
	if !p.Rewritten {
		// clang on the farm preprocesses the rewritten source again and
		// prints the preprocessor's own warnings itself.
		os.Stderr.Write(cppErr)
	}
	os.Stdout.Write(jr.Stdout)
	os.Stderr.Write(jr.Stderr)
	if jr.ExitCode != 0 {
		os.Remove(p.Output)
		r.logf("compile error on %s (exit %d), not retried", res.Host, jr.ExitCode)
		r.rec.doneOn(agent, where, jr.ExitCode, len(src))
		return jr.ExitCode
	}
	// DCC_VERIFY samples objects; the broker asks for checks of hosts that
	// cannot prove their compiler (stock distccd).
	if res.Verify || (r.cfg.Verify > 0 && mrand.IntN(r.cfg.Verify) == 0) {
		if local, ok := r.verify(p, src, res.Host, jr.Output); !ok {
			jr.Output = local
		}
	}
	wstart := time.Now()
	if err := writeAtomic(p.Output, jr.Output); err != nil {
		fmt.Fprintf(os.Stderr, "dcc: write %s: %v\n", p.Output, err)
		return 1
	}
	r.rec.phase("write", wstart, time.Now())
	r.rec.doneOn(agent, where, jr.ExitCode, len(src))
	if where == "cache" {
		r.logf("%s from the cache; %d bytes; total %s", p.Source, len(jr.Output), time.Since(r.start).Round(time.Microsecond))
	} else {
		r.logf("compiled %s on %s (tier %d) after %dms wait; %d bytes back; total %s",
			p.Source, res.Host, res.Tier, res.WaitMs, len(jr.Output), time.Since(r.start).Round(time.Microsecond))
	}
	return 0
}

// verify compiles the preprocessed source locally exactly as the farm host
// did and compares the objects. On a mismatch it reports the host to the
// broker (which blocks it) and returns the local object to use instead.
func (r *run) verify(p *compilerargs.Plan, src []byte, host string, remote []byte) ([]byte, bool) {
	dir, err := os.MkdirTemp("", "dcc-verify-")
	if err != nil {
		return nil, true
	}
	defer os.RemoveAll(dir)
	// The same names the farm host uses: clang records the source's name
	// in the object.
	name := sourceName(p)
	in := filepath.Join(dir, name)
	out := filepath.Join(dir, strings.TrimSuffix(name, p.PreprocessedExt)+p.OutputKind)
	if in == out {
		out = filepath.Join(dir, "job.out"+p.OutputKind)
	}
	if os.WriteFile(in, src, 0o600) != nil {
		return nil, true
	}
	mode := "-c"
	if p.OutputKind == ".s" {
		mode = "-S"
	}
	cmd := exec.Command(r.compiler, append(append([]string{}, p.RemoteArgs...), mode, in, "-o", out)...)
	cmd.Dir = dir
	if err := cmd.Run(); err != nil {
		r.logf("verify: local compile failed (%v); keeping the farm's object", err)
		return nil, true
	}
	local, err := os.ReadFile(out)
	if err != nil || bytes.Equal(local, remote) {
		r.logf("verify: object from %s matches a local compile", host)
		return nil, true
	}
	fmt.Fprintf(os.Stderr, "dcc: object for %s from farm host %s differs from a local compile; using the local one and reporting the host\n", p.Source, host)
	if err := r.report(&wire.ClientReport{Mismatches: []string{host}}); err != nil {
		r.logf("verify: report to broker: %v", err)
	}
	return local, false
}

// report hands a report for the broker to the agent, which sends it on
// its session as this user's.
func (r *run) report(m *wire.ClientReport) error {
	conn, err := r.agentConn(false)
	if err != nil {
		return err
	}
	defer conn.Close()
	return wire.NewConn(conn, wire.MaxControlFrame, 10*time.Second).Send(m)
}

// agentConn connects to the user's agent; it starts one only if start.
func (r *run) agentConn(start bool) (net.Conn, error) {
	return agentlink.Connect(agentlink.Options{
		Broker: r.cfg.Broker, Identity: r.cfg.Identity, User: r.cfg.User, RuntimeDir: r.cfg.RuntimeDir,
		Idle: r.cfg.AgentIdle, NoStart: !start || r.cfg.NoAgent, LocalSlots: r.cfg.LocalSlots, LocalPower: r.cfg.LocalPower,
		BuildsDir: r.cfg.BuildsDir, KeepBuilds: r.cfg.KeepBuilds,
	})
}

// writeAtomic writes data to path through a temporary file in the same
// directory, with the permissions a compiler would give a new file.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".dcc-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		mask := syscall.Umask(0)
		syscall.Umask(mask)
		werr = os.Chmod(tmp, 0o666&^os.FileMode(mask))
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// child runs the real compiler with the original arguments as a child
// process and returns its exit status (signals as 128+n, like a shell).
func (r *run) child() int {
	cmd := exec.Command(r.compiler, r.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "dcc: cannot run %s: %v\n", r.compiler, err)
	return 127
}

// local replaces this process with the real compiler and the original
// arguments. why is the reason the farm was not used ("" for jobs that
// are local by nature).
func (r *run) local(why string) int {
	if why != "" {
		r.logf("compiling locally: %s", why)
		noteOnce(r.cfg, why)
	}
	if r.rec != nil {
		// A remote candidate compiled here: as a child, to record it.
		return r.timedChild(r.rec, why)
	}
	argv := append([]string{r.driverArg0()}, r.args...)
	err := syscall.Exec(r.compiler, argv, os.Environ())
	r.logf("exec %s failed (%v); running it as a child", r.compiler, err)
	return r.child()
}

func (r *run) driverArg0() string { return r.compiler }

// noteOnce tells the user, at most once per ten minutes per kind of
// problem, why the farm was not used, for problems they can act on
// (configuration, an unreachable broker). Ordinary fallbacks (farm busy)
// stay quiet unless DCC_VERBOSE is set.
func noteOnce(cfg Config, why string) {
	if cfg.Verbose {
		return // already logged
	}
	kind := ""
	switch {
	case strings.HasPrefix(why, "no broker configured"):
		kind = "noconfig"
	case strings.Contains(why, "credential"), strings.Contains(why, "identity"), strings.Contains(why, "revoked"):
		kind = "credential"
	case strings.Contains(why, "broker unreachable"):
		kind = "unreachable"
	default:
		return
	}
	if cfg.RuntimeDir == "" || os.MkdirAll(cfg.RuntimeDir, 0o700) != nil {
		return
	}
	stamp := filepath.Join(cfg.RuntimeDir, "noted-"+kind)
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < 10*time.Minute {
		return
	}
	if f, err := os.Create(stamp); err == nil {
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "dcc: compiling locally: %s\n", why)
}
