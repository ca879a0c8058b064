package wire

import (
	"bytes"
	"testing"
)

// BenchmarkFrameRoundTrip encodes a message as a frame, reads the frame
// back and decodes it.
func BenchmarkFrameRoundTrip(b *testing.B) {
	src := bytes.Repeat([]byte("int f(int x) { return x * 2; }\n"), 100<<10/32)
	cases := []struct {
		name string
		m    Message
	}{
		{"LeaseRequest", &LeaseRequest{Fingerprint: "x86_64-pc-linux-gnu gcc 13.2.0", Lang: "c++", SourceBytes: 123456, Digest: make([]byte, 32), MaxWaitMs: 60000, LocalSlotFree: true, LocalEstimateMs: 2000, File: "src/foo/bar.cc"}},
		{"JobRequest100KB", &JobRequest{Token: make([]byte, 200), Compiler: "g++", Fingerprint: "x86_64-pc-linux-gnu gcc 13.2.0", Ext: ".ii", Kind: ".o", Args: []string{"-O2", "-g", "-fPIC", "-std=c++20"}, SourceName: "bar.ii", SourceBytes: int64(len(src)), Digest: make([]byte, 32)}},
		{"JobSource100KB", &JobSource{Source: src}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var frame []byte
			var r bytes.Reader
			frame, _ = AppendFrame(frame[:0], c.m)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				frame, err = AppendFrame(frame[:0], c.m)
				if err != nil {
					b.Fatal(err)
				}
				r.Reset(frame)
				typ, body, err := ReadFrame(&r, MaxJobFrame)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Decode(typ, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
