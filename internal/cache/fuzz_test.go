package cache

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal feeds Unmarshal arbitrary entry bodies with a valid digest
// appended, so the fuzzer reaches the length parsing behind the digest
// check. Unmarshal must never panic, and what it accepts must re-encode to
// the same bytes.
func FuzzUnmarshal(f *testing.F) {
	k := testKey(1)
	for _, e := range []*Entry{testEntry(1, "sun1", 40), {Producer: "h", ExitCode: 1, Stderr: []byte("e")}} {
		b, err := e.Marshal(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:len(b)-32])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := entryDigest(body)
		b := append(append([]byte(nil), body...), d[:]...)
		e, err := Unmarshal(k, b)
		if err != nil {
			return
		}
		again, err := e.Marshal(k)
		if err != nil {
			return // e.g. an object whose digest does not match: Put refuses it
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes as %x", b, again)
		}
	})
}
