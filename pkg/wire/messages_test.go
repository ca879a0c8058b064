package wire

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// sampleMessages returns one message of every type with every field set to
// a non-zero value (checked by TestSamplesAreFullyPopulated).
func sampleMessages() []Message {
	digest := bytes.Repeat([]byte{0xd1}, 32)
	res := JobResult{
		Code:     RejectNoCompiler,
		Rejected: "no compiler",
		ExitCode: -3,
		Stdout:   []byte("out"),
		Stderr:   []byte("warning: x"),
		Output:   []byte{0x7f, 'E', 'L', 'F', 0, 1, 2},
		Digest:   digest,
		WallMs:   1234,
		CPUMs:    987,
		Slot:     3,
	}
	st := HostStatus{Load1: 1.5, Load5: 2.25, Load15: -0.125, Running: 3, Available: true, Reason: "busy", ExternalLoad: true, Own1: 0.75, OwnKnown: true, Leases: []uint64{7, 1 << 40}, ClockMs: 1767225600000}
	return []Message{
		&Hello{Version: 7, Role: RoleVolunteer, Name: "host-a", User: "alice", Build: "v1.2.3"},
		&Welcome{Session: 1<<63 + 5, BrokerKey: bytes.Repeat([]byte{5}, 32), LeaseTTLMs: 30000, Revoked: [][]byte{{1, 2}, {3}}, Cache: true, CacheSalt: "s1", EarlySource: true},
		&Error{Code: CodeBusy, Message: "no capacity"},
		&LeaseRequest{Fingerprint: "x86_64-linux-gnu gcc 13.2", Lang: "c++", SourceBytes: 1 << 40, Digest: digest, MaxWaitMs: 60000, LocalSlotFree: true, LocalEstimateMs: 1500, File: "src/main.cc", Avoid: "h9", NeedsDCC: true},
		&LeaseQueued{Position: 17, EstWaitMs: -1, Backlogged: true},
		&LeaseGrant{LeaseID: 0xffffffffffffffff, Host: "h1", Addr: "10.0.0.1:3633", Tier: 3, Power: 2.5, TTLMs: 30000, WaitMs: 12, Token: []byte("DCT1token"), Speed: 1.25, Protocol: "distcc", Verify: true},
		&LeaseDenied{Code: DenyLocalFaster, Reason: "queue too long"},
		&LeaseRenew{LeaseID: 42},
		&LeaseRelease{LeaseID: 43, Outcome: OutcomeCompileError, Reason: "exit 1"},
		&Register{
			Name: "vol", Addr: "10.0.0.2:3633", CPUs: 64, Slots: 48,
			Compilers: []CompilerInfo{{Name: "gcc", Fingerprint: "fp1"}, {Name: "clang", Fingerprint: "fp2"}},
			Running:   [][]byte{[]byte("tok1"), []byte("tok2")},
			Status:    st,
			Sandbox:   "landlock ABI 7",
		},
		&HostStatus{Load1: 0.5, Load5: 1e-9, Load15: 1e300, Running: -1, Available: true, Reason: "ok", ExternalLoad: true, Own1: 1.5, OwnKnown: true, Leases: []uint64{9}, ClockMs: -5},
		&JobDone{LeaseID: 9, Outcome: OutcomeOK, WallMs: 77},
		&Command{Kind: CommandCancel, LeaseID: 10, Reason: "client gone", Serials: [][]byte{{9}}},
		&JobRequest{Token: []byte("tok"), Compiler: "g++", Fingerprint: "fp", Ext: ".ii", Lang: "c++", Kind: ".o", Args: []string{"-O2", "-g", ""}, SourceName: "a.ii", SourceBytes: 12, Digest: digest, Early: true},
		&JobSource{Source: []byte("int main(){}"), Digest: digest},
		&res,
		&StatusQuery{Explain: "host-a"},
		&StatusReply{JSON: []byte(`{"hosts":[]}`)},
		&AdminRequest{Action: AdminBlock, Host: "h2", Reason: "bad ram"},
		&AdminReply{OK: true, Message: "blocked"},
		&AgentCompile{Version: 1, Build: "build-id", Compiler: "/usr/bin/gcc", Driver: "gcc", Lang: "c", Ext: ".i", Kind: ".o", Args: []string{"-c"}, SourceName: "x.i", Source: []byte("x"), SizeHint: 99, File: "x.c", MaxWaitMs: 5, Verbose: true, LocalSlot: true, Fingerprint: "fp", NoCache: true, ParentPID: 4242, WorkDir: "/src"},
		&AgentResult{Fallback: "denied", LocalSlot: true, Host: "h3", Protocol: "distcc", Verify: true, Tier: 2, WaitMs: 8, Log: []string{"a", "b"}, Result: res,
			Phases: []PhaseRecord{{Name: "send", StartNs: 1, EndNs: 2, Host: "h3"}}, EstWaitMs: 40, CachedAtMs: 77},
		&CacheLookup{Key: digest},
		&CacheAnswer{Found: true, Object: []byte("o"), Stdout: []byte("so"), Stderr: []byte("se"), ExitCode: 3, ObjectDigest: digest, Producer: "h1", ProducedAtMs: 9},
		&CachePut{Key: digest, Object: []byte("o"), Stdout: []byte("so"), Stderr: []byte("se"), ExitCode: 2, ObjectDigest: digest},
		&AgentRecord{BuildID: "b1", Command: []string{"make", "-j8"}, Dir: "/src", BuildStartNs: 5, Source: "a.c", Output: "a.o", Where: "remote",
			Host: "h1", Slot: 1, LocalReason: "x", Exit: 1, BytesOut: 10, BytesIn: 20, EstWaitMs: 3,
			Phases: []PhaseRecord{{Name: "preprocess", StartNs: 1, EndNs: 2, Host: "h"}}},
		&AgentPing{Version: 1, Build: "b"},
		&AgentPong{Version: 1, Build: "b", PID: 4242, LocalBusy: 1, LocalSlots: 4, Queued: 2},
		&ClientReport{Fallbacks: map[string]int64{"denied": 3, "timeout": 1 << 40}, Mismatches: []string{"h1"}},
		&AgentSource{Source: []byte("int x;")},
	}
}

// zeroField reports the path of the first zero-valued field in v, or "".
func zeroField(v reflect.Value, path string) string {
	if v.IsZero() {
		return path
	}
	switch v.Kind() {
	case reflect.Pointer:
		return zeroField(v.Elem(), path)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if p := zeroField(v.Field(i), path+"."+v.Type().Field(i).Name); p != "" {
				return p
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				if p := zeroField(v.Index(i), path); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func TestSamplesAreFullyPopulated(t *testing.T) {
	have := map[Type]bool{}
	for _, m := range sampleMessages() {
		if have[m.Type()] {
			t.Errorf("two samples of type %d", m.Type())
		}
		have[m.Type()] = true
		if p := zeroField(reflect.ValueOf(m), reflect.TypeOf(m).Elem().Name()); p != "" {
			t.Errorf("sample field %s is zero: the round trip would not prove it is carried", p)
		}
	}
	for i := 0; i < 256; i++ {
		if newMessage(Type(i)) != nil && !have[Type(i)] {
			t.Errorf("no sample for type %d (%T)", i, newMessage(Type(i)))
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		name := strings.TrimPrefix(reflect.TypeOf(m).String(), "*wire.")
		t.Run(name+"/AppendFrame", func(t *testing.T) {
			prefix := []byte("prefix")
			frame, err := AppendFrame(append([]byte(nil), prefix...), m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(frame, prefix) {
				t.Fatalf("AppendFrame clobbered dst")
			}
			frame = frame[len(prefix):]
			n := int(frame[0])<<24 | int(frame[1])<<16 | int(frame[2])<<8 | int(frame[3])
			if n != len(frame)-4 {
				t.Errorf("header length %d, frame has %d bytes after it", n, len(frame)-4)
			}
			if Type(frame[4]) != m.Type() {
				t.Errorf("type byte %d, want %d", frame[4], m.Type())
			}
			typ, body, err := ReadFrame(bytes.NewReader(frame), MaxControlFrame)
			if err != nil {
				t.Fatal(err)
			}
			checkDecoded(t, m, typ, body)
		})
		t.Run(name+"/WriteFrame", func(t *testing.T) {
			var w countingWriter
			if err := WriteFrame(&w, m); err != nil {
				t.Fatal(err)
			}
			if w.writes != 1 {
				t.Errorf("WriteFrame used %d writes, want 1", w.writes)
			}
			typ, body, err := ReadFrame(&w.buf, MaxControlFrame)
			if err != nil {
				t.Fatal(err)
			}
			checkDecoded(t, m, typ, body)
			if w.buf.Len() != 0 {
				t.Errorf("%d bytes left after the frame", w.buf.Len())
			}
		})
	}
}

func checkDecoded(t *testing.T, want Message, typ Type, body []byte) {
	t.Helper()
	if typ != want.Type() {
		t.Fatalf("ReadFrame type %d, want %d", typ, want.Type())
	}
	if err := Validate(body); err != nil {
		t.Fatalf("Validate refuses our own encoding: %v", err)
	}
	got, err := Decode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
	}
}

// Several frames back to back on one stream are read one at a time.
func TestFrameStream(t *testing.T) {
	msgs := sampleMessages()
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	c := NewConn(&buf, MaxControlFrame, 0)
	for i, want := range msgs {
		got, err := c.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d:\n got %#v\nwant %#v", i, got, want)
		}
	}
	if _, err := c.Recv(); err == nil {
		t.Error("Recv after the last frame succeeded")
	}
}

// Zero-valued messages survive too (omitempty fields absent on the wire).
func TestFrameRoundTripZero(t *testing.T) {
	for i := 0; i < 256; i++ {
		m := newMessage(Type(i))
		if m == nil {
			continue
		}
		frame, err := AppendFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(Type(frame[4]), frame[HeaderSize:])
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: got %#v", m, got)
		}
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

// No message has an interface-typed field: the decoder would pick the Go
// types for untrusted input (see pitfalls: never decode into interface{}).
func TestNoInterfaceFields(t *testing.T) {
	var walk func(tp reflect.Type, path string, seen map[reflect.Type]bool)
	walk = func(tp reflect.Type, path string, seen map[reflect.Type]bool) {
		if seen[tp] {
			return
		}
		seen[tp] = true
		switch tp.Kind() {
		case reflect.Interface:
			t.Errorf("%s is an interface (%v)", path, tp)
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(tp.Elem(), path+"[]", seen)
		case reflect.Map:
			walk(tp.Key(), path+"{key}", seen)
			walk(tp.Elem(), path+"{}", seen)
		case reflect.Struct:
			for i := 0; i < tp.NumField(); i++ {
				walk(tp.Field(i).Type, path+"."+tp.Field(i).Name, seen)
			}
		}
	}
	for i := 0; i < 256; i++ {
		if m := newMessage(Type(i)); m != nil {
			walk(reflect.TypeOf(m).Elem(), reflect.TypeOf(m).Elem().Name(), map[reflect.Type]bool{})
		}
	}
}
