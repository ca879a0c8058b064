package distcc

import (
	"errors"
	"fmt"
)

// Kind classifies a failure by who is at fault and what the caller should
// do about it. Every kind except KindCanceled and KindBadJob is the
// host's or the network's doing: count it against the host's health, then
// retry elsewhere or compile locally.
type Kind uint8

const (
	// KindConnect: the TCP connection could not be opened (refused,
	// unreachable, unknown host, or no answer within ConnectTimeout).
	KindConnect Kind = iota + 1
	// KindTimeout: the exchange outlived Limits.IOTimeout, or a read or
	// write made no progress for Limits.StallTimeout.
	KindTimeout
	// KindCanceled: the caller's context ended first. Not the host's fault.
	KindCanceled
	// KindRefused: distccd closed the connection before sending any reply.
	// That is how it answers a client address outside --allow, a compiler
	// outside its allow list (the masquerade directory or DISTCC_CMDLIST),
	// arguments its own scanner will not run, or a request it could not
	// read (src/serve.c jumps to out_cleanup without a reply).
	KindRefused
	// KindIO: the connection broke after the reply had started (a reset,
	// not a clean end of stream, which is a protocol error).
	KindIO
	// KindProtocol: the reply broke protocol 1 or this client's limits; a
	// broken or hostile host. The reason (ErrBadToken, ErrTruncated, ...)
	// is also in the chain.
	KindProtocol
	// KindRemote: the reply was well formed but the job failed on the host
	// for reasons that are not the source's: the compiler was killed by a
	// signal, or distccd reported one of its own failures (exit codes
	// 100-120, src/exitcode.h: compiler missing, out of memory, timeout).
	KindRemote
	// KindBadJob: the job was not sent, because distccd would refuse or
	// misread it (see Job). The caller's bug; not the host's fault.
	KindBadJob
)

// The sentinels below match any *Error of their kind with errors.Is.
var (
	ErrConnect  = errors.New("distcc: cannot connect")
	ErrTimeout  = errors.New("distcc: timed out")
	ErrCanceled = errors.New("distcc: canceled")
	ErrRefused  = errors.New("distcc: server closed the connection without a reply")
	ErrIO       = errors.New("distcc: connection lost mid-reply")
	ErrProtocol = errors.New("distcc: protocol error")
	ErrRemote   = errors.New("distcc: remote job failed")
	ErrBadJob   = errors.New("distcc: job not sendable to distccd")
)

// Reasons for a KindProtocol error, also matched with errors.Is.
var (
	ErrBadToken        = errors.New("not a protocol token")
	ErrUnexpectedToken = errors.New("protocol token out of place")
	ErrBadHex          = errors.New("parameter is not 8 lowercase hex digits")
	ErrVersion         = errors.New("protocol version mismatch")
	ErrTooLarge        = errors.New("declared length over the limit")
	ErrTruncated       = errors.New("reply ended early")
	ErrTrailing        = errors.New("bytes after the end of the reply")
	ErrEmptyObject     = errors.New("compile succeeded but the object is empty")
	ErrObjectOnFailure = errors.New("compile failed but an object was sent")
	ErrBadStatus       = errors.New("STAT is not a wait status")
)

var kindSentinel = map[Kind]error{
	KindConnect:  ErrConnect,
	KindTimeout:  ErrTimeout,
	KindCanceled: ErrCanceled,
	KindRefused:  ErrRefused,
	KindIO:       ErrIO,
	KindProtocol: ErrProtocol,
	KindRemote:   ErrRemote,
	KindBadJob:   ErrBadJob,
}

func (k Kind) String() string {
	switch k {
	case KindConnect:
		return "connect"
	case KindTimeout:
		return "timeout"
	case KindCanceled:
		return "canceled"
	case KindRefused:
		return "refused"
	case KindIO:
		return "io"
	case KindProtocol:
		return "protocol"
	case KindRemote:
		return "remote"
	case KindBadJob:
		return "bad_job"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is every error Compile and Probe return.
type Error struct {
	Kind Kind
	// Op is the step that failed: "connect", "send", "read DONE", "read
	// SERR", "check job", ...
	Op string
	// Reason refines KindProtocol (ErrBadToken, ErrTruncated, ...); nil
	// for other kinds.
	Reason error
	// Detail is a human-readable explanation (what was expected and seen).
	Detail string
	// Err is the underlying cause, if any (a net error, context.Canceled).
	Err error
}

func (e *Error) Error() string {
	s := "distcc " + e.Op + ": " + e.Kind.String()
	if e.Reason != nil {
		s += ": " + e.Reason.Error()
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes the kind's sentinel, the reason and the cause, so that
// errors.Is(err, ErrProtocol), errors.Is(err, ErrTruncated) and
// errors.Is(err, context.Canceled) all work on one error.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 3)
	if s := kindSentinel[e.Kind]; s != nil {
		out = append(out, s)
	}
	if e.Reason != nil {
		out = append(out, e.Reason)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// KindOf returns the kind of an error from this package, or 0 for nil or
// a foreign error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// IsProtocolError reports whether err says the host sent a malformed or
// hostile reply: a host to stop using, not a passing network fault.
func IsProtocolError(err error) bool { return KindOf(err) == KindProtocol }

// IsHostFault reports whether err should count against the host's health:
// every failure except the caller's own cancellation and a job that was
// never sent.
func IsHostFault(err error) bool {
	switch KindOf(err) {
	case 0, KindCanceled, KindBadJob:
		return false
	}
	return true
}

func protoErr(op string, reason error, format string, args ...any) *Error {
	return &Error{Kind: KindProtocol, Op: op, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func badJob(format string, args ...any) *Error {
	return &Error{Kind: KindBadJob, Op: "check job", Detail: fmt.Sprintf(format, args...)}
}
