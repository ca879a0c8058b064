package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fuzzCap is the frame cap FuzzReadFrame reads with.
const fuzzCap = 1 << 20

func addFrameSeeds(f *testing.F, add func(typ byte, body []byte)) {
	for _, m := range sampleMessages() {
		frame, err := AppendFrame(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		add(frame[4], frame[HeaderSize:])
	}
	add(byte(TypeJobRequest), cat(be32(0xdd, 1<<31), make([]byte, 16)))
	add(byte(TypeRegister), cat(be32(0xdf, 1<<31), make([]byte, 16)))
	add(byte(TypeJobResult), cat(be32(0xc6, 1<<31), make([]byte, 16)))
	add(byte(TypeHello), cat(be32(0xdb, 1<<31), make([]byte, 16)))
	add(byte(TypeHello), nested(MaxDepth+1, []byte{0xc0}))
	add(byte(TypeJobSource), []byte{0x81, 0xa3, 's', 'r', 'c', 0xd4, 1, 0})
	add(byte(TypeHello), []byte{0xa5, 'h', 'e', 'l', 'l', 'o'})
	add(0, []byte{0x80})
	add(255, nil)
}

// FuzzValidate: Validate never panics, accepts only what the msgpack
// decoder can parse as exactly one value, and whatever it accepts every
// message type decodes without panicking.
func FuzzValidate(f *testing.F) {
	addFrameSeeds(f, func(_ byte, body []byte) { f.Add(body) })
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := Validate(body); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate error %v is not ErrMalformed", err)
			}
			return
		}
		r := bytes.NewReader(body)
		if err := msgpack.NewDecoder(r).Skip(); err != nil {
			t.Fatalf("Validate accepted %x; msgpack cannot skip it: %v", body, err)
		}
		if r.Len() != 0 {
			t.Fatalf("Validate accepted %x with %d bytes after the value", body, r.Len())
		}
		for i := 0; i < 256; i++ {
			if newMessage(Type(i)) == nil {
				continue
			}
			checkDecode(t, Type(i), body)
		}
	})
}

// checkDecode decodes body as typ; if that succeeds the message must
// survive a round trip through a frame.
func checkDecode(t *testing.T, typ Type, body []byte) {
	t.Helper()
	m, err := Decode(typ, body)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownType) {
			t.Fatalf("Decode(%d, %x): error %v is neither ErrMalformed nor ErrUnknownType", typ, body, err)
		}
		if m != nil {
			t.Fatalf("Decode returned a message with an error")
		}
		return
	}
	if m.Type() != typ {
		t.Fatalf("Decode(%d) returned %T", typ, m)
	}
	frame, err := AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("re-encode %#v: %v", m, err)
	}
	if _, err := Decode(Type(frame[4]), frame[HeaderSize:]); err != nil {
		t.Fatalf("re-encoded %#v does not decode: %v", m, err)
	}
}

// FuzzDecode: any type byte and body decode to a message or an error.
func FuzzDecode(f *testing.F) {
	addFrameSeeds(f, func(typ byte, body []byte) { f.Add(typ, body) })
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		checkDecode(t, Type(typ), body)
	})
}

// FuzzReadFrame: reading frames from any stream never panics, never
// returns a body over the cap and never reads past what it returns.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	addFrameSeeds(f, func(typ byte, body []byte) {
		frame := cat(hdr(uint32(len(body)+1), Type(typ)), body)
		f.Add(frame)
		stream = append(stream, frame...)
	})
	f.Add(stream)
	f.Add(hdr(0xFFFFFFFF, TypeJobRequest))
	f.Add(hdr(fuzzCap+1, TypeJobRequest))
	f.Add(cat(hdr(fuzzCap+1, TypeJobRequest), make([]byte, 64)))
	f.Add(hdr(0, TypeHello))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		consumed := 0
		for {
			typ, body, err := ReadFrame(r, fuzzCap)
			if err != nil {
				if body != nil {
					t.Fatalf("body returned with error %v", err)
				}
				if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && r.Len() != 0 {
					t.Fatalf("EOF with %d bytes unread", r.Len())
				}
				return
			}
			if len(body) > fuzzCap {
				t.Fatalf("body of %d bytes over cap %d", len(body), fuzzCap)
			}
			consumed += HeaderSize + len(body)
			if consumed != len(stream)-r.Len() {
				t.Fatalf("consumed %d, reader at %d", consumed, len(stream)-r.Len())
			}
			_, _ = Decode(typ, body)
		}
	})
}

// FuzzParseToken: no panic; an accepted token splits into signed bytes and
// a signature that make it up, and its claims re-marshal to the signed bytes.
func FuzzParseToken(f *testing.F) {
	sc := sampleClaims()
	good := append(sc.Marshal(), fakeSig()...)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append((&TokenClaims{}).Marshal(), fakeSig()...))
	f.Add([]byte(TokenMagic))
	f.Add(bytes.Repeat([]byte{0xff}, MaxTokenSize+1))
	f.Fuzz(func(t *testing.T, tok []byte) {
		c, signed, sig, err := ParseToken(tok)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(tok) > MaxTokenSize {
			t.Fatalf("accepted a %d-byte token", len(tok))
		}
		if len(sig) != SignatureSize || !bytes.Equal(append(append([]byte(nil), signed...), sig...), tok) {
			t.Fatalf("signed+sig do not make up the token")
		}
		if got := c.Marshal(); !bytes.Equal(got, signed) {
			t.Fatalf("claims re-marshal to %x, signed bytes %x", got, signed)
		}
	})
}
