package distcc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Limits bound one exchange. A zero or negative field takes its default.
type Limits struct {
	// MaxStderr and MaxStdout cap SERR and SOUT (default 4 MiB each).
	MaxStderr, MaxStdout int
	// MaxObject caps DOTO (default 64 MiB).
	MaxObject int
	// ConnectTimeout bounds the TCP connect (default 4 s, distcc's).
	ConnectTimeout time.Duration
	// IOTimeout bounds the whole exchange after connecting, the compile
	// included (default 5 min, distcc's 300 s I/O timeout).
	IOTimeout time.Duration
	// StallTimeout is the longest a write, or a read once the reply has
	// started, may make no progress (default 30 s). The wait for the
	// reply's first byte is the compile and is bounded by IOTimeout only.
	StallTimeout time.Duration
}

// Defaults.
const (
	DefaultMaxStderr      = 4 << 20
	DefaultMaxStdout      = 4 << 20
	DefaultMaxObject      = 64 << 20
	DefaultConnectTimeout = 4 * time.Second
	DefaultIOTimeout      = 5 * time.Minute
	DefaultStallTimeout   = 30 * time.Second
	// DefaultPort is distccd's TCP port.
	DefaultPort = 3632
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxStderr, DefaultMaxStderr)
	def(&l.MaxStdout, DefaultMaxStdout)
	def(&l.MaxObject, DefaultMaxObject)
	defd(&l.ConnectTimeout, DefaultConnectTimeout)
	defd(&l.IOTimeout, DefaultIOTimeout)
	defd(&l.StallTimeout, DefaultStallTimeout)
	return l
}

// Result is a compile that ran to completion on the host.
type Result struct {
	// ExitCode is the compiler's exit status; 0 means Object is set.
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Object is the output file (.o or .s); nil unless ExitCode is 0.
	Object []byte
	// Wall is the time from dialing to the end of the reply.
	Wall time.Duration
}

// distccd's own failures travel as the compiler's exit status
// (W_EXITCODE(compile_ret, 0) in src/serve.c when spawning or waiting
// fails); src/exitcode.h keeps them in 100-120 "so that they're not
// confused with the real error code from gcc".
const (
	minDistccExit = 100
	maxDistccExit = 120
)

var distccExitNames = map[int]string{
	100: "distcc failed", 101: "bad arguments", 102: "bind failed", 103: "connect failed",
	104: "compiler crashed", 105: "out of memory", 106: "bad host spec", 107: "I/O error",
	108: "truncated", 109: "protocol error", 110: "compiler missing", 111: "recursion",
	112: "setuid failed", 113: "access denied", 114: "busy", 115: "no such file",
	116: "no hosts", 117: "gone", 118: "timeout", 119: "GSS-API failed", 120: "local cpp",
}

// Compile sends job to the distccd at addr (host:port) over protocol 1 and
// returns its result. A compile error is a Result with a non-zero
// ExitCode; every other failure, including any reply that is not exactly
// well formed, is an *Error and comes with no Result.
func Compile(ctx context.Context, addr string, job Job, lim Limits) (*Result, error) {
	start := time.Now()
	lim = lim.withDefaults()
	argv, err := job.argv()
	if err != nil {
		return nil, err
	}
	conn, err := dial(ctx, addr, lim.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Cancellation closes the connection, which fails whatever read or
	// write is in progress; the error is then reported as the context's.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	dc := &deadlineConn{conn: conn, end: time.Now().Add(lim.IOTimeout), stall: lim.StallTimeout}
	rep, err := exchange(dc, argv, job.Source, lim)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &Error{Kind: KindCanceled, Op: opOf(err), Err: cerr}
		}
		return nil, err
	}
	res, err := result(rep, job.Compiler)
	if res != nil {
		res.Wall = time.Since(start)
	}
	return res, err
}

// result turns a well-formed reply into a Result, or into an error when
// the compiler did not really run to an exit: killed by a signal, or
// distccd's own failure dressed as an exit code.
func result(rep *reply, compiler string) (*Result, error) {
	switch st := rep.status; {
	case st.signal != 0:
		core := ""
		if st.core {
			core = " (core dumped)"
		}
		return nil, &Error{Kind: KindRemote, Op: "compile", Detail: fmt.Sprintf("%s killed by signal %d%s%s", compiler, st.signal, core, stderrExcerpt(rep.stderr))}
	case st.exitCode >= minDistccExit && st.exitCode <= maxDistccExit:
		return nil, &Error{Kind: KindRemote, Op: "compile", Detail: fmt.Sprintf("distccd failed with exit code %d (%s)%s", st.exitCode, distccExitNames[st.exitCode], stderrExcerpt(rep.stderr))}
	}
	return &Result{ExitCode: rep.status.exitCode, Stdout: rep.stdout, Stderr: rep.stderr, Object: rep.object}, nil
}

// exchange writes the request and reads the reply.
func exchange(dc *deadlineConn, argv []string, source []byte, lim Limits) (*reply, error) {
	// The request is written whole before the reply is read: distccd
	// reads all of DOTI before compiling. The write side is never shut
	// down: distccd watches the socket while the compiler runs and kills
	// the job when it reads end-of-file (dcc_collect_child in src/exec.c).
	if err := dc.writeAll(encodeRequest(argv, len(source))); err != nil {
		return nil, err
	}
	if err := dc.writeAll(source); err != nil {
		return nil, err
	}
	return readReply(dc, lim)
}

func opOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Op
	}
	return "compile"
}

// stderrExcerpt returns the start of distccd's stderr for an error
// message: it carries distccd's own explanation ("failed to exec ...").
func stderrExcerpt(b []byte) string {
	const max = 512
	if len(b) == 0 {
		return ""
	}
	if len(b) > max {
		b = b[:max]
	}
	return fmt.Sprintf("; stderr: %q", b)
}

// Probe opens a TCP connection to addr and closes it without sending a
// job: it says the port accepts connections, not that this client is in
// distccd's --allow list (a refused client is accepted, then dropped).
// Each probe costs one "client did not provide distcc magic fairy dust"
// line in distccd's log.
func Probe(ctx context.Context, addr string) error {
	conn, err := dial(ctx, addr, DefaultConnectTimeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

func dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		return conn, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, &Error{Kind: KindCanceled, Op: "connect", Err: cerr}
	}
	return nil, &Error{Kind: KindConnect, Op: "connect", Detail: addr, Err: err}
}

// deadlineConn puts a deadline on every read and write: the end of the
// exchange, or the stall timeout from now if sooner, once bytes are
// flowing (always for writes; for reads from the reply's first byte).
type deadlineConn struct {
	conn    net.Conn
	end     time.Time
	stall   time.Duration
	started bool // the reply's first byte has arrived
}

func (d *deadlineConn) deadline(flowing bool) time.Time {
	if !flowing {
		return d.end
	}
	if t := time.Now().Add(d.stall); t.Before(d.end) {
		return t
	}
	return d.end
}

// writeChunk bounds how much one write (and so one stall deadline) covers.
const writeChunk = 256 << 10

func (d *deadlineConn) writeAll(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		if err := d.conn.SetWriteDeadline(d.deadline(true)); err != nil {
			return &Error{Kind: KindIO, Op: "send", Err: err}
		}
		m, err := d.conn.Write(b[:n])
		b = b[m:]
		if err != nil {
			return writeErr(err)
		}
	}
	return nil
}

func writeErr(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &Error{Kind: KindTimeout, Op: "send", Err: err}
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		// distccd hung up before reading the whole request: it refused
		// the client or the command line.
		return &Error{Kind: KindRefused, Op: "send", Detail: refusedDetail, Err: err}
	}
	return &Error{Kind: KindIO, Op: "send", Err: err}
}

// Read implements io.Reader for readReply.
func (d *deadlineConn) Read(p []byte) (int, error) {
	if err := d.conn.SetReadDeadline(d.deadline(d.started)); err != nil {
		return 0, err
	}
	n, err := d.conn.Read(p)
	if n > 0 {
		d.started = true
	}
	return n, err
}
