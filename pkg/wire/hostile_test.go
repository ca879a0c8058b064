package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func hdr(n uint32, t Type) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	return append(b, byte(t))
}

func be32(c byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{c}, n) }
func be16(c byte, n uint16) []byte { return binary.BigEndian.AppendUint16([]byte{c}, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReadFrameHostile(t *testing.T) {
	tests := []struct {
		name    string
		stream  []byte
		max     int
		wantErr error // nil: expect success
		body    []byte
	}{
		{"clean EOF", nil, MaxControlFrame, io.EOF, nil},
		{"truncated header 1", []byte{0}, MaxControlFrame, io.ErrUnexpectedEOF, nil},
		{"truncated header 4", []byte{0, 0, 0, 9}, MaxControlFrame, io.ErrUnexpectedEOF, nil},
		{"empty frame (length 0)", hdr(0, TypeHello), MaxControlFrame, ErrMalformed, nil},
		{"4 GiB declared", hdr(0xFFFFFFFF, TypeJobRequest), MaxJobFrame, ErrFrameTooLarge, nil},
		{"one over cap", hdr(MaxHandshakeFrame+2, TypeHello), MaxHandshakeFrame, ErrFrameTooLarge, nil},
		{"cap 0 with body", cat(hdr(2, TypeHello), []byte{0xc0}), 0, ErrFrameTooLarge, nil},
		{"truncated body", cat(hdr(10, TypeHello), []byte{1, 2, 3}), MaxControlFrame, io.ErrUnexpectedEOF, nil},
		{"body missing entirely", hdr(10, TypeHello), MaxControlFrame, io.ErrUnexpectedEOF, nil},
		{"exactly at cap", cat(hdr(4+1, TypeJobSource), []byte{1, 2, 3, 4}), 4, nil, []byte{1, 2, 3, 4}},
		{"type byte only", hdr(1, TypeJobSource), MaxControlFrame, nil, []byte{}},
		{"trailing stream kept", cat(hdr(2, TypeJobSource), []byte{0x80, 0xff, 0xff}), MaxControlFrame, nil, []byte{0x80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, body, err := ReadFrame(bytes.NewReader(tt.stream), tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if body != nil {
					t.Errorf("body of %d bytes returned with an error", len(body))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if typ != Type(tt.stream[4]) || !bytes.Equal(body, tt.body) {
				t.Errorf("got type %d body %x, want %d %x", typ, body, tt.stream[4], tt.body)
			}
			if len(body) > tt.max {
				t.Errorf("body %d bytes over cap %d", len(body), tt.max)
			}
		})
	}
}

// A header declaring 4 GiB must be refused before anything is allocated for it.
func TestReadFrameHugeHeaderDoesNotAllocate(t *testing.T) {
	stream := hdr(0xFFFFFFFF, TypeJobRequest)
	for _, max := range []int{MaxHandshakeFrame, MaxControlFrame, MaxJobFrame} {
		var r bytes.Reader
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(stream)
			if _, _, err := ReadFrame(&r, max); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("err = %v, want ErrFrameTooLarge", err)
			}
		})
		// Only the error value and its message (a few more under -race).
		if allocs > 10 {
			t.Errorf("cap %d: %v allocations per refused frame", max, allocs)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const runs = 100
		for i := 0; i < runs; i++ {
			r.Reset(stream)
			_, _, _ = ReadFrame(&r, max)
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4<<10 {
			t.Errorf("cap %d: %d bytes allocated per refused frame", max, per)
		}
	}
}

// Decoding a frame whose body declares huge lengths allocates about the
// frame, not what it declares.
func TestDecodeHostileDoesNotAllocate(t *testing.T) {
	bodies := [][]byte{
		cat([]byte{0x81, 0xa4}, []byte("args"), be32(0xdd, 1<<31)),
		cat([]byte{0x81, 0xa3}, []byte("src"), be32(0xc6, 0xFFFFFFF0)),
		be32(0xdf, 0x7FFFFFFF),
	}
	for _, b := range bodies {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 10; i++ {
			if _, err := Decode(TypeJobRequest, b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%x) err = %v, want ErrMalformed", b, err)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 4<<10 {
			t.Errorf("Decode(%x): %d bytes allocated per call", b, per)
		}
	}
}

func nested(depth int, leaf []byte) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), leaf...)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"nil", []byte{0xc0}, true},
		{"true", []byte{0xc3}, true},
		{"false", []byte{0xc2}, true},
		{"posfixint", []byte{0x7f}, true},
		{"negfixint", []byte{0xe0}, true},
		{"uint8", []byte{0xcc, 1}, true},
		{"uint8 truncated", []byte{0xcc}, false},
		{"uint16", []byte{0xcd, 1, 2}, true},
		{"uint32", []byte{0xce, 1, 2, 3, 4}, true},
		{"uint64", []byte{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{"uint64 truncated", []byte{0xcf, 1, 2, 3, 4, 5, 6, 7}, false},
		{"int8", []byte{0xd0, 1}, true},
		{"int16", []byte{0xd1, 1, 2}, true},
		{"int32", []byte{0xd2, 1, 2, 3, 4}, true},
		{"int64", []byte{0xd3, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{"float32", []byte{0xca, 1, 2, 3, 4}, true},
		{"float32 truncated", []byte{0xca, 1, 2, 3}, false},
		{"float64", []byte{0xcb, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{"fixstr", []byte{0xa2, 'h', 'i'}, true},
		{"fixstr over", []byte{0xa3, 'h', 'i'}, false},
		{"str8", []byte{0xd9, 2, 'h', 'i'}, true},
		{"str8 over", []byte{0xd9, 3, 'h', 'i'}, false},
		{"str8 no length", []byte{0xd9}, false},
		{"str16", cat(be16(0xda, 2), []byte("hi")), true},
		{"str16 over", cat(be16(0xda, 0xffff), []byte("hi")), false},
		{"str16 short length", []byte{0xda, 0}, false},
		{"str32", cat(be32(0xdb, 2), []byte("hi")), true},
		{"str32 over", cat(be32(0xdb, 0xFFFFFFFF), []byte("hi")), false},
		{"str32 2^31", cat(be32(0xdb, 1<<31), make([]byte, 16)), false},
		{"str32 short length", []byte{0xdb, 0, 0, 0}, false},
		{"bin8", []byte{0xc4, 1, 0}, true},
		{"bin8 over", []byte{0xc4, 2, 0}, false},
		{"bin16", cat(be16(0xc5, 1), []byte{0}), true},
		{"bin16 over", cat(be16(0xc5, 300), make([]byte, 299)), false},
		{"bin32", cat(be32(0xc6, 3), []byte{0, 0, 0}), true},
		{"bin32 over", cat(be32(0xc6, 1<<31), make([]byte, 16)), false},
		{"bin32 max", cat(be32(0xc6, 0xFFFFFFFF), make([]byte, 16)), false},
		{"fixarray", []byte{0x92, 1, 2}, true},
		{"fixarray short", []byte{0x92, 1}, false},
		{"fixmap", []byte{0x81, 0xa1, 'k', 1}, true},
		{"fixmap missing value", []byte{0x81, 0xa1, 'k'}, false},
		{"array16", cat(be16(0xdc, 2), []byte{1, 2}), true},
		{"array16 over", cat(be16(0xdc, 3), []byte{1, 2}), false},
		{"array16 short length", []byte{0xdc, 0}, false},
		{"array32", cat(be32(0xdd, 2), []byte{1, 2}), true},
		{"array32 2^31", cat(be32(0xdd, 1<<31), make([]byte, 16)), false},
		{"array32 max", cat(be32(0xdd, 0xFFFFFFFF), make([]byte, 16)), false},
		{"array32 short length", []byte{0xdd, 0, 0}, false},
		{"map16", cat(be16(0xde, 1), []byte{1, 2}), true},
		{"map16 over", cat(be16(0xde, 2), []byte{1, 2, 3}), false},
		{"map32", cat(be32(0xdf, 1), []byte{1, 2}), true},
		{"map32 2^31", cat(be32(0xdf, 1<<31), make([]byte, 16)), false},
		{"map32 half fits", cat(be32(0xdf, 8), make([]byte, 15)), false},
		{"map32 max", cat(be32(0xdf, 0xFFFFFFFF), make([]byte, 16)), false},
		{"empty containers", []byte{0x93, 0x90, 0x80, 0xa0}, true},
		{"empty array32", be32(0xdd, 0), true},
		{"depth MaxDepth", nested(MaxDepth, []byte{0xc0}), true},
		{"depth MaxDepth+1", nested(MaxDepth+1, []byte{0xc0}), false},
		{"depth MaxDepth+1 empty leaf", nested(MaxDepth, []byte{0x90}), true},
		{"depth 1000", nested(1000, []byte{0xc0}), false},
		{"deep maps", cat(bytes.Repeat([]byte{0x81, 0xc0}, MaxDepth+1), []byte{0xc0}), false},
		{"siblings do not add depth", cat([]byte{0x92}, nested(MaxDepth-1, []byte{1}), nested(MaxDepth-1, []byte{2})), true},
		{"never used 0xc1", []byte{0xc1}, false},
		{"ext8", []byte{0xc7, 1, 5, 0}, false},
		{"ext16", []byte{0xc8, 0, 1, 5, 0}, false},
		{"ext32", []byte{0xc9, 0, 0, 0, 1, 5, 0}, false},
		{"fixext1", []byte{0xd4, 5, 0}, false},
		{"fixext2", []byte{0xd5, 5, 0, 0}, false},
		{"fixext4 timestamp", []byte{0xd6, 0xff, 0, 0, 0, 0}, false},
		{"fixext8", append([]byte{0xd7, 0xff}, make([]byte, 8)...), false},
		{"fixext16", append([]byte{0xd8, 5}, make([]byte, 16)...), false},
		{"ext inside map", []byte{0x81, 0xa1, 'k', 0xd4, 5, 0}, false},
		{"trailing byte", []byte{0xc0, 0xc0}, false},
		{"trailing after map", []byte{0x80, 0x00}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.body)
			if tt.ok && err != nil {
				t.Fatalf("Validate(%x) = %v, want nil", tt.body, err)
			}
			if !tt.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate(%x) = %v, want ErrMalformed", tt.body, err)
			}
			// Our check must agree with the real decoder on what is
			// well-formed msgpack: whatever we accept it can skip.
			if tt.ok {
				dec := msgpack.NewDecoder(bytes.NewReader(tt.body))
				if err := dec.Skip(); err != nil {
					t.Errorf("Validate accepts %x but msgpack cannot skip it: %v", tt.body, err)
				}
			}
			// Every type's Decode refuses what Validate refuses, without panicking.
			if !tt.ok {
				for _, m := range sampleMessages() {
					if _, err := Decode(m.Type(), tt.body); !errors.Is(err, ErrMalformed) {
						t.Errorf("Decode(%d, %x) = %v, want ErrMalformed", m.Type(), tt.body, err)
					}
				}
			}
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	for _, typ := range []Type{0, 6, 9, 16, 29, 33, 44, 57, 200, 255} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			m, err := Decode(typ, []byte{0x80})
			if !errors.Is(err, ErrUnknownType) || m != nil {
				t.Fatalf("Decode(%d) = %v, %v; want ErrUnknownType", typ, m, err)
			}
		})
	}
}

func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A well-formed msgpack body of the wrong shape for the type is an error,
// never a panic.
func TestDecodeWrongShape(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		v    any
	}{
		{"string for struct", TypeHello, "hello"},
		{"int for struct", TypeLeaseGrant, 42},
		{"bool for struct", TypeJobSource, true},
		{"bin for struct", TypeJobRequest, []byte{1, 2, 3}},
		{"float for struct", TypeHostStatus, 1.5},
		{"map for string field", TypeHello, map[string]any{"role": map[string]int{"a": 1}}},
		{"array for int field", TypeHello, map[string]any{"v": []int{1, 2}}},
		{"string for int field", TypeLeaseRenew, map[string]any{"id": "forty-two"}},
		{"map for bytes field", TypeJobSource, map[string]any{"src": map[string]int{"x": 1}}},
		{"string for slice field", TypeJobRequest, map[string]any{"args": "-O2"}},
		{"int for slice of structs", TypeRegister, map[string]any{"compilers": 3}},
		{"array of ints for slice of structs", TypeRegister, map[string]any{"compilers": []int{1, 2}}},
		{"string for nested struct", TypeRegister, map[string]any{"status": "ok"}},
		{"array for map field", TypeClientReport, map[string]any{"fallbacks": []string{"a"}}},
		{"string values for int64 map", TypeClientReport, map[string]any{"fallbacks": map[string]string{"a": "b"}}},
		{"map for float field", TypeLeaseGrant, map[string]any{"power": map[string]int{}}},
		{"string for bool field", TypeAdminReply, map[string]any{"ok": "yes"}},
		{"array-form struct too long", TypeJobSource, []any{[]byte{1}, "extra", 3}},
		{"array-form struct wrong element", TypeLeaseRenew, []any{"id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := mp(t, tt.v)
			if err := Validate(body); err != nil {
				t.Fatalf("test body not well-formed: %v", err)
			}
			m, err := Decode(tt.typ, body)
			if err == nil {
				t.Fatalf("Decode accepted %x as %T: %#v", body, m, m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// Unknown map keys are skipped (forward compatibility): a newer peer may
// add fields.
func TestDecodeIgnoresUnknownFields(t *testing.T) {
	body := mp(t, map[string]any{"id": 7, "future": map[string]any{"x": []int{1, 2}}})
	m, err := Decode(TypeLeaseRenew, body)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.(*LeaseRenew); r.LeaseID != 7 {
		t.Errorf("LeaseID = %d, want 7", r.LeaseID)
	}
}

func TestConnRecvRefusesHostileFrames(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"unknown type", cat(hdr(2, 99), []byte{0x80}), ErrUnknownType},
		{"ext in body", cat(hdr(4, TypeJobSource), []byte{0xd4, 1, 0}), ErrMalformed},
		{"array32 2^31 in small frame", cat(hdr(1+5+16, TypeJobRequest), be32(0xdd, 1<<31), make([]byte, 16)), ErrMalformed},
		{"over cap", hdr(MaxHandshakeFrame+100, TypeHello), ErrFrameTooLarge},
		{"garbage text", []byte("GET / HTTP/1.1\r\n\r\n"), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(bytes.NewBuffer(tt.stream), MaxHandshakeFrame, 0)
			m, err := c.Recv()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Recv = %v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

func TestDecodeErrorMessagesNameProblem(t *testing.T) {
	err := Validate(cat(be32(0xdd, 1<<31), make([]byte, 16)))
	if err == nil || !strings.Contains(err.Error(), "2147483648") {
		t.Errorf("error %v does not name the declared count", err)
	}
}

// Decoding a frame allocates about the frame, whatever its shape: one-byte
// elements (nil) that decode to large Go values are bounded in number.
func TestDecodeAmplificationBounded(t *testing.T) {
	const n = 1 << 20 // elements, one byte each: a 1 MiB control frame
	cases := []struct {
		typ Type
		key string
	}{
		{TypeJobRequest, "args"},
		{TypeRegister, "compilers"},
		{TypeRegister, "running"},
		{TypeAgentResult, "log"},
		{TypeAgentCompile, "args"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			body := cat([]byte{0x81, 0xd9, byte(len(c.key))}, []byte(c.key), be32(0xdd, n), bytes.Repeat([]byte{0xc0}, n))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Decode(c.typ, body)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode of %d nil elements = %v, want ErrMalformed", n, err)
			}
			if a := after.TotalAlloc - before.TotalAlloc; a > uint64(len(body)) {
				t.Errorf("decoding a %d-byte body allocated %d bytes", len(body), a)
			}
		})
	}
}

func TestValidateElementLimit(t *testing.T) {
	nils := func(k int) []byte { return bytes.Repeat([]byte{0xc0}, k) }
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"array at limit", cat(be32(0xdd, maxElements), nils(maxElements)), true},
		{"array over limit", cat(be32(0xdd, maxElements+1), nils(maxElements+1)), false},
		{"map at limit", cat(be32(0xdf, maxElements/2), nils(maxElements)), true},
		{"map over limit", cat(be32(0xdf, maxElements/2+1), nils(maxElements+2)), false},
		{"limit is per message", cat([]byte{0x92}, be32(0xdd, maxElements/2), nils(maxElements/2), be32(0xdd, maxElements/2), nils(maxElements/2)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.body); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// A realistic large message still passes: 10k arguments.
	args := make([]string, 10000)
	for i := range args {
		args[i] = "-Iinclude/dir"
	}
	frame, err := AppendFrame(nil, &JobRequest{Args: args})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(TypeJobRequest, frame[HeaderSize:]); err != nil {
		t.Errorf("10k arguments refused: %v", err)
	}
}
