package distcc

import (
	"errors"
	"io"
	"os"
)

// Protocol 1 on the wire (doc/protocol-1.txt, src/rpc.c). Every item is a
// 12-byte header, a 4-character token and 8 lowercase hex digits, then as
// many bytes as the parameter says when the item carries data:
//
//	client: DIST 1, ARGC n, n × (ARGV len, bytes), DOTI len, bytes
//	server: DONE 1, STAT wait-status, SERR len, bytes, SOUT len, bytes,
//	        DOTO len, bytes; then it closes the connection.
const (
	headerLen       = 12
	protocolVersion = 1

	tokDIST = "DIST"
	tokARGC = "ARGC"
	tokARGV = "ARGV"
	tokDOTI = "DOTI"
	tokDONE = "DONE"
	tokSTAT = "STAT"
	tokSERR = "SERR"
	tokSOUT = "SOUT"
	tokDOTO = "DOTO"
)

// knownTokens are every token of protocols 1 to 3 (the pump protocol
// adds CDIR, NFIL, NAME, FILE, LINK and DOTD): one of them in the wrong
// place is a confused peer, anything else not distcc at all.
var knownTokens = map[string]bool{
	tokDIST: true, tokARGC: true, tokARGV: true, tokDOTI: true,
	tokDONE: true, tokSTAT: true, tokSERR: true, tokSOUT: true, tokDOTO: true,
	"CDIR": true, "NFIL": true, "NAME": true, "FILE": true, "LINK": true, "DOTD": true,
}

const hexDigits = "0123456789abcdef"

// appendHeader appends one item header exactly as dcc_x_token_int writes
// it: the token, then the value as 8 lowercase hex digits.
func appendHeader(b []byte, token string, v uint32) []byte {
	b = append(b, token...)
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(v>>uint(shift))&0xf])
	}
	return b
}

// parseHex reads the 8 hex digits of a header. distccd only ever writes
// lowercase (dcc_x_token_int); anything else, including what C's strtoul
// would let through (spaces, a sign, "0x"), means the stream is not what
// it claims to be.
func parseHex(h []byte) (uint32, bool) {
	if len(h) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// encodeRequest returns the request up to and including the DOTI header;
// the source bytes follow it on the wire.
func encodeRequest(argv []string, sourceLen int) []byte {
	n := headerLen * (3 + len(argv))
	for _, a := range argv {
		n += len(a)
	}
	b := make([]byte, 0, n)
	b = appendHeader(b, tokDIST, protocolVersion)
	b = appendHeader(b, tokARGC, uint32(len(argv)))
	for _, a := range argv {
		b = appendHeader(b, tokARGV, uint32(len(a)))
		b = append(b, a...)
	}
	return appendHeader(b, tokDOTI, uint32(sourceLen))
}

// encodeReply writes a reply the way distccd does. Only tests use it (the
// fake servers and the fuzz target's check), but it lives here so that
// the two directions of the format are defined side by side.
func encodeReply(version, status uint32, stderr, stdout, object []byte) []byte {
	b := make([]byte, 0, 5*headerLen+len(stderr)+len(stdout)+len(object))
	b = appendHeader(b, tokDONE, version)
	b = appendHeader(b, tokSTAT, status)
	b = appendHeader(b, tokSERR, uint32(len(stderr)))
	b = append(b, stderr...)
	b = appendHeader(b, tokSOUT, uint32(len(stdout)))
	b = append(b, stdout...)
	b = appendHeader(b, tokDOTO, uint32(len(object)))
	return append(b, object...)
}

// refusedDetail explains KindRefused: distccd never says why it hangs up.
const refusedDetail = "distccd hangs up on clients outside --allow, compilers outside its allow list and commands it will not run; its log says which"

// replyReader parses a reply from r, counting what it has consumed so that
// an end of stream can be told apart: before the first byte it is distccd
// refusing the job, after it a truncated reply.
type replyReader struct {
	r   io.Reader
	off int64
	hdr [headerLen]byte
}

// readErr classifies a failed read of the reply.
func (rr *replyReader) readErr(op string, err error) *Error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &Error{Kind: KindTimeout, Op: op, Err: err}
	case rr.off == 0:
		// Nothing at all came back: distccd's way of saying no (or a
		// reset, which is what a close looks like when our request was
		// still unread).
		return &Error{Kind: KindRefused, Op: op, Detail: refusedDetail, Err: err}
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return protoErr(op, ErrTruncated, "stream ended after %d bytes", rr.off)
	default:
		return &Error{Kind: KindIO, Op: op, Err: err}
	}
}

// header reads the next item header and checks its token.
func (rr *replyReader) header(token string) (uint32, *Error) {
	op := "read " + token
	n, err := io.ReadFull(rr.r, rr.hdr[:])
	rr.off += int64(n)
	if err != nil {
		return 0, rr.readErr(op, err)
	}
	if got := string(rr.hdr[:4]); got != token {
		reason := ErrBadToken
		if knownTokens[got] {
			reason = ErrUnexpectedToken
		}
		return 0, protoErr(op, reason, "want %s, got %q", token, got)
	}
	v, ok := parseHex(rr.hdr[4:])
	if !ok {
		return 0, protoErr(op, ErrBadHex, "%q", rr.hdr[4:])
	}
	return v, nil
}

// bodyChunk bounds the memory a declared length can claim before its bytes
// have arrived: the buffer grows with what is actually read.
const bodyChunk = 1 << 20

// body reads an item's n bytes, refusing n over max before reading any.
func (rr *replyReader) body(token string, n uint32, max int) ([]byte, *Error) {
	if int64(n) > int64(max) {
		return nil, protoErr("read "+token, ErrTooLarge, "%d bytes declared, limit %d", n, max)
	}
	if n == 0 {
		return nil, nil
	}
	buf := make([]byte, 0, min(int(n), bodyChunk))
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			next := make([]byte, len(buf), min(int(n), 2*cap(buf)))
			copy(next, buf)
			buf = next
		}
		m, err := io.ReadFull(rr.r, buf[len(buf):cap(buf)])
		rr.off += int64(m)
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, rr.readErr("read "+token, err)
		}
	}
	return buf, nil
}

// item reads a header with the given token and its body.
func (rr *replyReader) item(token string, max int) ([]byte, *Error) {
	n, err := rr.header(token)
	if err != nil {
		return nil, err
	}
	return rr.body(token, n, max)
}

// reply is a parsed, validated reply.
type reply struct {
	status         waitStatus
	stderr, stdout []byte
	object         []byte
}

// readReply parses a whole protocol-1 reply and checks that the stream
// ends right after it. It returns a reply only if every item was well
// formed and consistent: a success with an object, or a failure without.
func readReply(r io.Reader, lim Limits) (*reply, error) {
	rr := &replyReader{r: r}
	v, err := rr.header(tokDONE)
	if err != nil {
		return nil, err
	}
	if v != protocolVersion {
		return nil, protoErr("read DONE", ErrVersion, "server answered version %d to a version %d request", v, protocolVersion)
	}
	raw, err := rr.header(tokSTAT)
	if err != nil {
		return nil, err
	}
	st, ok := decodeWaitStatus(raw)
	if !ok {
		return nil, protoErr("read STAT", ErrBadStatus, "%#x", raw)
	}
	out := &reply{status: st}
	if out.stderr, err = rr.item(tokSERR, lim.MaxStderr); err != nil {
		return nil, err
	}
	if out.stdout, err = rr.item(tokSOUT, lim.MaxStdout); err != nil {
		return nil, err
	}
	n, err := rr.header(tokDOTO)
	if err != nil {
		return nil, err
	}
	// distccd sends DOTO 0 whenever the compiler did not exit 0
	// (src/serve.c, "Something went wrong, so send DOTO 0"), and a
	// successful compile to an object or assembly file is never empty.
	switch {
	case raw != 0 && n != 0:
		return nil, protoErr("read DOTO", ErrObjectOnFailure, "status %#x with %d bytes", raw, n)
	case raw == 0 && n == 0:
		return nil, protoErr("read DOTO", ErrEmptyObject, "status 0 with no bytes")
	}
	if out.object, err = rr.body(tokDOTO, n, lim.MaxObject); err != nil {
		return nil, err
	}
	// The protocol ends with both sides closing; distccd closes right
	// after DOTO. Anything more is a stream we do not understand.
	var one [1]byte
	m, rerr := 0, error(nil)
	for tries := 0; m == 0 && rerr == nil; tries++ { // a Read may return 0, nil
		if tries == 100 {
			rerr = io.ErrNoProgress
			break
		}
		m, rerr = rr.r.Read(one[:])
	}
	switch {
	case m > 0:
		return nil, protoErr("read end", ErrTrailing, "after %d bytes", rr.off)
	case rerr != io.EOF:
		return nil, rr.readErr("read end", rerr)
	}
	return out, nil
}

// waitStatus is a decoded Unix wait status: (exit code << 8) | signal, as
// protocol-1.txt defines STAT and W_EXITCODE builds it.
type waitStatus struct {
	exitCode int // valid when signal == 0
	signal   int
	core     bool
}

// decodeWaitStatus accepts exactly the statuses a waitpid without
// WUNTRACED can yield: an exit (code 0-255, low byte 0) or a death by
// signal (signal 1-126, high byte 0, optional core flag).
func decodeWaitStatus(s uint32) (waitStatus, bool) {
	if s > 0xffff {
		return waitStatus{}, false
	}
	sig := int(s & 0x7f)
	core := s&0x80 != 0
	code := int(s >> 8)
	switch {
	case sig == 0 && !core:
		return waitStatus{exitCode: code}, true
	case sig != 0 && sig != 0x7f && code == 0:
		return waitStatus{signal: sig, core: core}, true
	}
	return waitStatus{}, false
}
