package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"testing"
)

// recConn is a net.Conn that records every Write call.
type recConn struct {
	net.Conn // nil: only Write is used
	writes   [][]byte
	fail     error
}

func (r *recConn) Write(p []byte) (int, error) {
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (r *recConn) all() []byte { return bytes.Join(r.writes, nil) }

func header(typ byte, stream, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[0] = 0
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], 0)
	binary.BigEndian.PutUint32(h[4:8], stream)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestCoalesceCalls(t *testing.T) {
	const (
		typeData         = 0
		typeWindowUpdate = 1
		typePing         = 2
	)
	tests := []struct {
		name       string
		calls      [][]byte
		wantWrites []int // lengths of the underlying writes
	}{
		{"small data frame joined", [][]byte{header(typeData, 1, 5), body(5, 1)}, []int{17}},
		{"one-byte body joined", [][]byte{header(typeData, 1, 1), body(1, 1)}, []int{13}},
		{"16 KiB body joined", [][]byte{header(typeData, 3, coalesceMax), body(coalesceMax, 1)}, []int{12 + coalesceMax}},
		{"16 KiB + 1 passes through", [][]byte{header(typeData, 3, coalesceMax+1), body(coalesceMax+1, 1)}, []int{12, coalesceMax + 1}},
		{"1 MiB passes through", [][]byte{header(typeData, 3, 1<<20), body(1<<20, 1)}, []int{12, 1 << 20}},
		{"data header length 0 (SYN/FIN)", [][]byte{header(typeData, 1, 0)}, []int{12}},
		{"window update", [][]byte{header(typeWindowUpdate, 1, 256<<10)}, []int{12}},
		{"window update with small delta", [][]byte{header(typeWindowUpdate, 1, 100)}, []int{12}},
		{"ping", [][]byte{header(typePing, 0, 7)}, []int{12}},
		{"not a header: 12 bytes of body-like data", [][]byte{bytes.Repeat([]byte{9}, 12)}, []int{12}},
		{"short write passes", [][]byte{{0, 0, 0}}, []int{3}},
		{"sequence", [][]byte{
			header(typeWindowUpdate, 1, 10),
			header(typeData, 1, 3), body(3, 7),
			header(typeData, 1, 0),
			header(typeData, 5, 20000), body(20000, 2),
			header(typeData, 5, 4), body(4, 3),
		}, []int{12, 15, 12, 12, 20000, 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recConn{}
			c := newCoalescingConn(rec)
			var want []byte
			for i, p := range tt.calls {
				n, err := c.Write(p)
				if err != nil || n != len(p) {
					t.Fatalf("call %d: Write(%d bytes) = %d, %v", i, len(p), n, err)
				}
				want = append(want, p...)
			}
			var got []int
			for _, w := range rec.writes {
				got = append(got, len(w))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantWrites) {
				t.Fatalf("underlying writes %v, want %v", got, tt.wantWrites)
			}
			if !bytes.Equal(rec.all(), want) {
				t.Fatal("byte stream differs from the calls")
			}
		})
	}
}

// The header is held back, not lost: nothing reaches the connection until
// the body comes.
func TestCoalesceHoldsHeader(t *testing.T) {
	rec := &recConn{}
	c := newCoalescingConn(rec)
	h := header(0, 9, 4)
	if n, err := c.Write(h); n != 12 || err != nil {
		t.Fatalf("header Write = %d, %v", n, err)
	}
	if len(rec.writes) != 0 {
		t.Fatalf("header written before its body: %v", rec.writes)
	}
	// The caller may reuse its header buffer once Write returns.
	copy(h, bytes.Repeat([]byte{0xff}, 12))
	if n, err := c.Write([]byte("abcd")); n != 4 || err != nil {
		t.Fatalf("body Write = %d, %v", n, err)
	}
	if want := append(header(0, 9, 4), "abcd"...); len(rec.writes) != 1 || !bytes.Equal(rec.writes[0], want) {
		t.Fatalf("writes %q, want one %q", rec.writes, want)
	}
}

// The body write reports the error of the joint write; n never exceeds len(p).
func TestCoalesceError(t *testing.T) {
	boom := errors.New("boom")
	rec := &recConn{}
	c := newCoalescingConn(rec)
	if _, err := c.Write(header(0, 1, 3)); err != nil {
		t.Fatal(err)
	}
	rec.fail = boom
	n, err := c.Write([]byte("xyz"))
	if !errors.Is(err, boom) || n < 0 || n > 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	// A plain write reports the error too.
	if n, err := c.Write(header(1, 1, 3)); !errors.Is(err, boom) || n != 0 {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

// Random sequences of frames, written the way yamux's send loop writes
// them (header, then body if any), give the same byte stream as the plain
// connection, and small data frames take one write.
func TestCoalesceRandomFrames(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 300; iter++ {
		rec := &recConn{}
		c := newCoalescingConn(rec)
		var want []byte
		calls, joinable := 0, 0
		for f := 0; f < 1+rng.Intn(40); f++ {
			typ := byte(rng.Intn(4))
			var n int
			switch rng.Intn(4) {
			case 0:
				n = 0
			case 1:
				n = 1 + rng.Intn(100)
			case 2:
				n = 1 + rng.Intn(coalesceMax)
			case 3:
				n = coalesceMax - 2 + rng.Intn(5)
			}
			h := header(typ, uint32(rng.Intn(100)), uint32(n))
			calls++
			if k, err := c.Write(h); k != 12 || err != nil {
				t.Fatalf("iter %d: header Write = %d, %v", iter, k, err)
			}
			want = append(want, h...)
			if typ == 0 && n > 0 {
				b := body(n, byte(rng.Intn(256)))
				calls++
				if k, err := c.Write(b); k != n || err != nil {
					t.Fatalf("iter %d: body Write = %d, %v (len %d)", iter, k, err, n)
				}
				want = append(want, b...)
				if n <= coalesceMax {
					joinable++
				}
			}
		}
		if !bytes.Equal(rec.all(), want) {
			t.Fatalf("iter %d: stream differs", iter)
		}
		if got := len(rec.writes); got != calls-joinable {
			t.Fatalf("iter %d: %d underlying writes for %d calls with %d joinable frames", iter, got, calls, joinable)
		}
	}
}

// Through net.Pipe, a reader sees each small data frame in one Read.
func TestCoalescePipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newCoalescingConn(a)
	frame := append(header(0, 1, 10), body(10, 4)...)
	done := make(chan error, 1)
	go func() {
		if _, err := c.Write(frame[:12]); err != nil {
			done <- err
			return
		}
		_, err := c.Write(frame[12:])
		done <- err
	}()
	buf := make([]byte, 100)
	n, err := b.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], frame) {
		t.Fatalf("Read = %d %v, %x", n, err, buf[:n])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
