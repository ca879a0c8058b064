package distcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fake distccd: a TCP server on loopback that reads a protocol-1
// request exactly as distccd would and answers with what the test
// scripts, to show that every malformed or hostile reply is the right
// error, and quickly.

type request struct {
	argv   []string
	source []byte
}

// readRequest parses a request strictly, the way src/srvrpc.c and
// src/rpc.c read it.
func readRequest(r io.Reader) (*request, error) {
	rr := &replyReader{r: r}
	v, err := rr.header(tokDIST)
	if err != nil {
		return nil, err
	}
	if v != protocolVersion {
		return nil, fmt.Errorf("DIST %d", v)
	}
	argc, err := rr.header(tokARGC)
	if err != nil {
		return nil, err
	}
	if argc > maxArgs+5 {
		return nil, fmt.Errorf("ARGC %d", argc)
	}
	req := &request{}
	for range argc {
		a, err := rr.item(tokARGV, maxArgLen)
		if err != nil {
			return nil, err
		}
		req.argv = append(req.argv, string(a))
	}
	if req.source, err = rr.item(tokDOTI, 64<<20); err != nil {
		return nil, err
	}
	return req, nil
}

// fakeServer serves every connection with handle, then closes it.
type fakeServer struct {
	addr string
	mu   sync.Mutex
	reqs []*request
}

func startFake(t *testing.T, handle func(c net.Conn, req *request)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute)) // a broken test must not hang
				req, err := readRequest(c)
				if err != nil {
					t.Errorf("fake distccd: bad request: %v", err)
					return
				}
				s.mu.Lock()
				s.reqs = append(s.reqs, req)
				s.mu.Unlock()
				handle(c, req)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// sendReply writes b and closes.
func sendReply(b []byte) func(net.Conn, *request) {
	return func(c net.Conn, _ *request) { c.Write(b) }
}

// stall writes b, then sends nothing more until the client hangs up.
func stall(b []byte) func(net.Conn, *request) {
	return func(c net.Conn, _ *request) {
		c.Write(b)
		io.Copy(io.Discard, c)
	}
}

func hdr(token string, v uint32) []byte { return appendHeader(nil, token, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	okObject = []byte("\x7fELF not really, but bytes")
	okReply  = encodeReply(1, 0, []byte("warning: x\n"), []byte("out\n"), okObject)
	testJob  = Job{Compiler: "gcc", Args: []string{"-O2", "-Wall"}, Kind: ".o", Ext: ".i", Source: []byte("int x;\n")}
)

func TestFakeGoodReplies(t *testing.T) {
	s := startFake(t, sendReply(okReply))
	res, err := Compile(context.Background(), s.addr, testJob, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !bytes.Equal(res.Object, okObject) || string(res.Stderr) != "warning: x\n" || string(res.Stdout) != "out\n" {
		t.Fatalf("got %+v", res)
	}
	// The request as distccd reads it: the argv format and the source.
	want := []string{"gcc", "-O2", "-Wall", "-c", "dcc.i", "-o", "dcc.o"}
	if got := s.reqs[0]; !slices.Equal(got.argv, want) || !bytes.Equal(got.source, testJob.Source) {
		t.Fatalf("request %q %q, want %q %q", got.argv, got.source, want, testJob.Source)
	}

	// A compile error: exit code, stderr, no object.
	s = startFake(t, sendReply(encodeReply(1, 1<<8, []byte("error: y\n"), nil, nil)))
	res, err = Compile(context.Background(), s.addr, testJob, Limits{})
	if err != nil || res.ExitCode != 1 || res.Object != nil || string(res.Stderr) != "error: y\n" {
		t.Fatalf("compile error: %+v, %v", res, err)
	}
}

func TestFakeBadReplies(t *testing.T) {
	small := Limits{MaxStderr: 100, MaxStdout: 100, MaxObject: 1000, StallTimeout: 200 * time.Millisecond, IOTimeout: time.Minute}
	serr := []byte("some stderr\n")
	// upTo is a well-formed reply cut after its SERR item.
	upToSERR := cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr(tokSERR, uint32(len(serr))), serr)
	cases := []struct {
		name   string
		handle func(net.Conn, *request)
		kind   error
		reason error
	}{
		{"closes before replying", sendReply(nil), ErrRefused, nil},
		{"truncated header", sendReply(cat(hdr(tokDONE, 1), []byte("STAT0000"))), ErrProtocol, ErrTruncated},
		{"truncated SERR", sendReply(cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr(tokSERR, 50), []byte("only ten b"))), ErrProtocol, ErrTruncated},
		{"truncated DOTO", sendReply(cat(upToSERR, hdr(tokSOUT, 0), hdr(tokDOTO, 500), []byte("0123456789"))), ErrProtocol, ErrTruncated},
		{"no DOTO", sendReply(cat(upToSERR, hdr(tokSOUT, 0))), ErrProtocol, ErrTruncated},
		{"oversized SERR", sendReply(cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr(tokSERR, 0xffffffff))), ErrProtocol, ErrTooLarge},
		{"oversized SOUT", sendReply(cat(upToSERR, hdr(tokSOUT, 101))), ErrProtocol, ErrTooLarge},
		{"oversized DOTO", sendReply(cat(upToSERR, hdr(tokSOUT, 0), hdr(tokDOTO, 1001))), ErrProtocol, ErrTooLarge},
		{"garbage token", sendReply([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")), ErrProtocol, ErrBadToken},
		{"items out of order", sendReply(cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr(tokSOUT, 0), hdr(tokSERR, 0))), ErrProtocol, ErrUnexpectedToken},
		{"pump reply", sendReply(cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr("DOTD", 0))), ErrProtocol, ErrUnexpectedToken},
		{"lowercase token", sendReply(cat(hdr("done", 1))), ErrProtocol, ErrBadToken},
		{"bad hex digit", sendReply([]byte("DONE0000000g")), ErrProtocol, ErrBadHex},
		{"uppercase hex", sendReply(cat(hdr(tokDONE, 1), []byte("STAT0000010A"))), ErrProtocol, ErrBadHex},
		{"hex with a space", sendReply([]byte("DONE 0000001")), ErrProtocol, ErrBadHex},
		{"signed hex", sendReply([]byte("DONE-0000001")), ErrProtocol, ErrBadHex},
		{"wrong version", sendReply(encodeReply(2, 0, nil, nil, okObject)), ErrProtocol, ErrVersion},
		{"version 0", sendReply(encodeReply(0, 0, nil, nil, okObject)), ErrProtocol, ErrVersion},
		{"status 0, empty DOTO", sendReply(encodeReply(1, 0, nil, nil, nil)), ErrProtocol, ErrEmptyObject},
		{"failure with DOTO", sendReply(encodeReply(1, 1<<8, nil, nil, okObject)), ErrProtocol, ErrObjectOnFailure},
		{"status beyond 16 bits", sendReply(encodeReply(1, 0x10000, nil, nil, nil)), ErrProtocol, ErrBadStatus},
		{"stopped status", sendReply(encodeReply(1, 0x137f, nil, nil, nil)), ErrProtocol, ErrBadStatus},
		{"exit with core flag", sendReply(encodeReply(1, 0x0180, nil, nil, nil)), ErrProtocol, ErrBadStatus},
		{"trailing garbage", sendReply(cat(okReply, []byte("x"))), ErrProtocol, ErrTrailing},
		{"a second reply", sendReply(cat(okReply, okReply)), ErrProtocol, ErrTrailing},
		{"stalls mid-header", stall(cat(hdr(tokDONE, 1), []byte("ST"))), ErrTimeout, nil},
		{"stalls mid-object", stall(cat(upToSERR, hdr(tokSOUT, 0), hdr(tokDOTO, 100), []byte("part"))), ErrTimeout, nil},
		{"stalls instead of closing", stall(okReply), ErrTimeout, nil},
		{"killed by a signal", sendReply(encodeReply(1, 9, nil, nil, nil)), ErrRemote, nil},
		{"distccd's own failure", sendReply(encodeReply(1, 110<<8, []byte("failed to exec"), nil, nil)), ErrRemote, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, tc.handle)
			start := time.Now()
			res, err := Compile(context.Background(), s.addr, testJob, small)
			if res != nil || err == nil {
				t.Fatalf("got %+v, %v; want an error", res, err)
			}
			if !errors.Is(err, tc.kind) || (tc.reason != nil && !errors.Is(err, tc.reason)) {
				t.Fatalf("got %v; want %v / %v", err, tc.kind, tc.reason)
			}
			if IsProtocolError(err) != (tc.kind == ErrProtocol) || !IsHostFault(err) {
				t.Fatalf("%v: IsProtocolError %v, IsHostFault %v", err, IsProtocolError(err), IsHostFault(err))
			}
			// Quickly: well within the one-minute IOTimeout (a stall is
			// caught by the 200 ms StallTimeout).
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// TestFakeHangsUpUnread: a server that closes without reading a large
// request makes the write fail; that too is a refusal.
func TestFakeHangsUpUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	job := testJob
	job.Source = bytes.Repeat([]byte("int x;\n"), 2<<20)
	_, err = Compile(context.Background(), ln.Addr().String(), job, Limits{})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v, want ErrRefused", err)
	}
}

// TestFakeSlowCompile: the stall timeout does not apply before the reply
// starts (that wait is the compile). The server answers only once three
// stall timeouts have passed since the request, so a client that applied
// it there would fail whatever the machine's speed.
func TestFakeSlowCompile(t *testing.T) {
	const stallFor = 50 * time.Millisecond
	s := startFake(t, func(c net.Conn, _ *request) {
		got := time.Now()
		for time.Since(got) < 3*stallFor {
			time.Sleep(stallFor)
		}
		c.Write(okReply)
	})
	res, err := Compile(context.Background(), s.addr, testJob, Limits{StallTimeout: stallFor})
	if err != nil || !bytes.Equal(res.Object, okObject) {
		t.Fatalf("got %+v, %v", res, err)
	}
	// But IOTimeout does.
	_, err = Compile(context.Background(), s.addr, testJob, Limits{StallTimeout: time.Minute, IOTimeout: stallFor})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

// TestFakeCancel: cancelling mid-reply ends Compile at once with
// ErrCanceled, which is not the host's fault.
func TestFakeCancel(t *testing.T) {
	started := make(chan struct{})
	s := startFake(t, func(c net.Conn, _ *request) {
		c.Write(cat(hdr(tokDONE, 1), hdr(tokSTAT, 0)))
		close(started)
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Compile(ctx, s.addr, testJob, Limits{})
		errc <- err
	}()
	<-started
	cancel()
	err := <-errc
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) || IsHostFault(err) {
		t.Fatalf("got %v, want ErrCanceled", err)
	}

	// Already cancelled: nothing is dialed.
	_, err = Compile(ctx, s.addr, testJob, Limits{})
	if !errors.Is(err, ErrCanceled) {
		t.Fatalf("got %v, want ErrCanceled", err)
	}
}

func TestConnectAndProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}()
	if err := Probe(context.Background(), addr); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	<-accepted
	ln.Close()
	// Nothing listens now.
	if err := Probe(context.Background(), addr); !errors.Is(err, ErrConnect) || !IsHostFault(err) {
		t.Fatalf("Probe of a closed port: %v, want ErrConnect", err)
	}
	if _, err := Compile(context.Background(), addr, testJob, Limits{}); !errors.Is(err, ErrConnect) {
		t.Fatalf("Compile to a closed port: %v, want ErrConnect", err)
	}
}

// TestDeclaredLengthIsNotAllocated: a reply that declares a large object
// and sends a few bytes costs memory for what arrived, not what it claimed.
func TestDeclaredLengthIsNotAllocated(t *testing.T) {
	r := cat(hdr(tokDONE, 1), hdr(tokSTAT, 0), hdr(tokSERR, 0), hdr(tokSOUT, 0), hdr(tokDOTO, 60<<20), []byte("0123456789"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readReply(bytes.NewReader(r), Limits{}.withDefaults())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Fatalf("allocated %d bytes for a 10-byte object", got)
	}
}

// TestWireConstants pins the request's bytes and the reply's layout.
func TestWireConstants(t *testing.T) {
	got := string(encodeRequest([]string{"gcc", "-O2", "-c", "dcc.i", "-o", "dcc.o"}, 0x1a))
	want := "DIST00000001ARGC00000006ARGV00000003gccARGV00000003-O2ARGV00000002-c" +
		"ARGV00000005dcc.iARGV00000002-oARGV00000005dcc.oDOTI0000001a"
	if got != want {
		t.Fatalf("request\n got %q\nwant %q", got, want)
	}
	if got := string(encodeReply(1, 0x100, []byte("e"), nil, nil)); got != "DONE00000001STAT00000100SERR00000001eSOUT00000000DOTO00000000" {
		t.Fatalf("reply %q", got)
	}
	if got := string(hdr("ARGC", 0xdeadbeef)); got != "ARGCdeadbeef" {
		t.Fatalf("header %q", got)
	}
}

func TestJobArgv(t *testing.T) {
	argv, err := (&Job{Compiler: "g++", Args: []string{"-O2", "-std=c++17", "-fPIC"}, Kind: ".s", Ext: ".ii"}).argv()
	if want := []string{"g++", "-O2", "-std=c++17", "-fPIC", "-S", "dcc.ii", "-o", "dcc.s"}; err != nil || !slices.Equal(argv, want) {
		t.Fatalf("argv %q, %v; want %q", argv, err, want)
	}
	good := Job{Compiler: "gcc", Kind: ".o", Ext: ".i"}
	for _, ok := range [][]string{
		{"-O2", "-g", "-Wall", "-Werror=format", "-fno-common", "-std=gnu11", "-march=x86-64-v2"},
		{"--param", "max-inline-insns-single=100"},
		{"-Wa,--noexecstack", "-frandom-seed=abc"},
	} {
		j := good
		j.Args = ok
		if _, err := j.argv(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	bad := []struct {
		mut  func(*Job)
		what string
	}{
		{func(j *Job) { j.Compiler = "/usr/bin/gcc" }, "path compiler"},
		{func(j *Job) { j.Compiler = "" }, "empty compiler"},
		{func(j *Job) { j.Compiler = "-gcc" }, "option compiler"},
		{func(j *Job) { j.Compiler = "gcc;rm" }, "shell compiler"},
		{func(j *Job) { j.Kind = ".i" }, "kind"},
		{func(j *Job) { j.Ext = ".c" }, "unpreprocessed ext"},
		{func(j *Job) { j.Ext = ".s" }, "assembly ext"},
	}
	for _, a := range []string{"-c", "-S", "-E", "-o", "-ofoo.o", "-x", "-xc", "-M", "-MD", "-MF",
		"-march=native", "-mtune=native", "-fprofile-arcs", "-ftest-coverage", "--coverage", "-frepo",
		"-dr", "-specs=x", "-fplugin=x.so", "-Wa,-a=list", "-Wa,--MD", "other.c", "two.ii", "lib.o",
		"", "-", "a\x00b", strings.Repeat("x", maxArgLen+1)} {
		a := a
		bad = append(bad, struct {
			mut  func(*Job)
			what string
		}{func(j *Job) { j.Args = []string{"-O2", a} }, fmt.Sprintf("arg %.20q", a)})
	}
	bad = append(bad, struct {
		mut  func(*Job)
		what string
	}{func(j *Job) { j.Args = make([]string, maxArgs+1) }, "too many args"})
	for _, b := range bad {
		j := good
		b.mut(&j)
		_, err := j.argv()
		if !errors.Is(err, ErrBadJob) || IsHostFault(err) {
			t.Errorf("%s: %v, want ErrBadJob", b.what, err)
		}
		// And Compile sends nothing: the address is never dialed.
		if _, err := Compile(context.Background(), "127.0.0.1:1", j, Limits{}); !errors.Is(err, ErrBadJob) {
			t.Errorf("%s: Compile: %v, want ErrBadJob", b.what, err)
		}
	}
}

func TestErrorChain(t *testing.T) {
	e := &Error{Kind: KindProtocol, Op: "read DOTO", Reason: ErrTooLarge, Detail: "9 bytes", Err: io.EOF}
	for _, target := range []error{ErrProtocol, ErrTooLarge, io.EOF} {
		if !errors.Is(e, target) {
			t.Errorf("errors.Is(%v, %v) false", e, target)
		}
	}
	if errors.Is(e, ErrTimeout) || errors.Is(e, ErrTruncated) {
		t.Errorf("matched a sentinel it is not")
	}
	wrapped := fmt.Errorf("lease 7: %w", e)
	if KindOf(wrapped) != KindProtocol || !IsProtocolError(wrapped) || !IsHostFault(wrapped) {
		t.Errorf("classification lost through wrapping")
	}
	if KindOf(errors.New("x")) != 0 || IsHostFault(nil) {
		t.Errorf("foreign errors classified")
	}
	for k := KindConnect; k <= KindBadJob; k++ {
		if kindSentinel[k] == nil || strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no sentinel or name", k)
		}
	}
}
