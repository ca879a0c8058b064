package cache

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	for name, e := range map[string]*Entry{
		"object":       testEntry(3, "sun1", 5000),
		"failed":       {Stderr: []byte("error"), ExitCode: 1, Producer: "h"},
		"negative":     {ExitCode: -9, Producer: "h", ProducedAt: time.Unix(-5, 0)},
		"zero time":    {Producer: "h"},
		"long produce": {Producer: string(make([]byte, MaxProducerLen))},
	} {
		b, err := e.Marshal(testKey(1))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) != e.Size() {
			t.Errorf("%s: Size() = %d, encoding is %d bytes", name, e.Size(), len(b))
		}
		got, err := Unmarshal(testKey(1), b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalEntry(got, e) || got.ProducedAt.IsZero() != e.ProducedAt.IsZero() {
			t.Errorf("%s: round trip changed the entry", name)
		}
	}
}

// TestEntryDetectsEveryBitFlipAndCut flips each bit of an encoding in turn,
// and cuts it at each length: none of them may decode.
func TestEntryDetectsEveryBitFlipAndCut(t *testing.T) {
	e := testEntry(1, "sun1", 64)
	b, err := e.Marshal(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		if _, err := Unmarshal(testKey(1), c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit %d flipped: Unmarshal = %v", i, err)
		}
	}
	for n := range len(b) {
		if _, err := Unmarshal(testKey(1), b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: Unmarshal = %v", n, err)
		}
	}
	if _, err := Unmarshal(testKey(2), b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("under another key: Unmarshal = %v", err)
	}
}

// TestEntryBoundsHoldEvenWithAGoodDigest: an encoding whose digest matches
// but whose lengths lie (not written by Marshal) is refused, not trusted.
func TestEntryBoundsHoldEvenWithAGoodDigest(t *testing.T) {
	k := testKey(1)
	sign := func(body []byte) []byte {
		d := entryDigest(body)
		return append(body, d[:]...)
	}
	header := func() []byte {
		b := append([]byte(nil), entryMagic[:]...)
		b = append(b, k[:]...)
		return append(b, make([]byte, 12)...) // time, exit code
	}
	lying := header()
	lying = append(lying, 1, 'h', 0)                             // producer "h", no digest
	lying = binary.BigEndian.AppendUint32(lying, math.MaxUint32) // object "4 GiB"
	if _, err := Unmarshal(k, sign(lying)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("overrunning length: %v", err)
	}
	// The object takes every byte that is left: no room for the lengths of
	// stdout and stderr.
	short := header()
	short = append(short, 1, 'h', 0)
	short = binary.BigEndian.AppendUint32(short, 8)
	short = append(short, make([]byte, 8)...)
	if _, err := Unmarshal(k, sign(short)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing fields: %v", err)
	}
	trailing := header()
	trailing = append(trailing, 1, 'h', 0)
	trailing = append(trailing, make([]byte, 12)...)
	trailing = append(trailing, 'x')
	if _, err := Unmarshal(k, sign(trailing)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	noProducer := header()
	noProducer = append(noProducer, 0, 0)
	noProducer = append(noProducer, make([]byte, 12)...)
	if _, err := Unmarshal(k, sign(noProducer)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("no producer: %v", err)
	}
	badMagic := header()
	badMagic[3] = '2'
	badMagic = append(badMagic, 1, 'h', 0)
	badMagic = append(badMagic, make([]byte, 12)...)
	if _, err := Unmarshal(k, sign(badMagic)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("another layout version: %v", err)
	}
	// The same bytes with honest lengths decode: the checks above are not
	// refusing everything.
	good := header()
	good = append(good, 1, 'h', 0)
	good = append(good, make([]byte, 12)...)
	if _, err := Unmarshal(k, sign(good)); err != nil {
		t.Fatalf("hand-built good entry: %v", err)
	}
}

func TestEntryMarshalRefuses(t *testing.T) {
	ok := testEntry(1, "sun1", 10)
	for name, e := range map[string]*Entry{
		"no producer":       {Producer: ""},
		"long producer":     {Producer: string(make([]byte, MaxProducerLen+1))},
		"exit code":         {Producer: "h", ExitCode: math.MaxInt32 + 1},
		"object, no digest": {Producer: "h", Object: ok.Object},
		"wrong digest":      {Producer: "h", Object: ok.Object[1:], ObjectDigest: ok.ObjectDigest},
		"digest, no object": {Producer: "h", ObjectDigest: ok.ObjectDigest},
	} {
		if _, err := e.Marshal(testKey(1)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Marshal = %v, want ErrInvalid", name, err)
		}
	}
}
