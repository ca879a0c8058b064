package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleClaims() TokenClaims {
	return TokenClaims{
		Lease:       0x0123456789abcdef,
		ExpiresMs:   1_700_000_000_123,
		User:        "alice",
		Host:        "vol-7",
		Fingerprint: "x86_64-pc-linux-gnu gcc 13.2.0",
		Digest:      bytes.Repeat([]byte{0xab}, 32),
	}
}

func fakeSig() []byte { return bytes.Repeat([]byte{0x5a}, SignatureSize) }

func TestTokenMarshalLayout(t *testing.T) {
	c := TokenClaims{Lease: 1, ExpiresMs: -2, User: "u", Host: "hh", Fingerprint: "", Digest: []byte{9}}
	want := []byte("DCT1")
	want = binary.BigEndian.AppendUint64(want, 1)
	want = binary.BigEndian.AppendUint64(want, 0xfffffffffffffffe)
	want = append(want, 0, 1, 'u', 0, 2, 'h', 'h', 0, 0, 0, 1, 9)
	if got := c.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x\nwant      %x", got, want)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    TokenClaims
	}{
		{"sample", sampleClaims()},
		{"empty strings", TokenClaims{Lease: 1, ExpiresMs: 2}},
		{"negative expiry", TokenClaims{Lease: ^uint64(0), ExpiresMs: -1, User: "u", Host: "h", Fingerprint: "f", Digest: []byte{1}}},
		{"unicode", TokenClaims{Lease: 5, ExpiresMs: 6, User: "zoë", Host: "hôte", Fingerprint: "gcc 🙂", Digest: []byte{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := tt.c.Marshal()
			tok := append(append([]byte(nil), signed...), fakeSig()...)
			c, gotSigned, sig, err := ParseToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, tt.c) {
				t.Errorf("claims %#v, want %#v", c, tt.c)
			}
			if !bytes.Equal(gotSigned, signed) || !bytes.Equal(sig, fakeSig()) {
				t.Errorf("signed/sig split wrong")
			}
			// The claims do not alias the token buffer.
			for i := range tok {
				tok[i] ^= 0xff
			}
			if !reflect.DeepEqual(c, tt.c) {
				t.Errorf("claims changed with the token buffer")
			}
		})
	}
}

func TestParseTokenRefuses(t *testing.T) {
	sc := sampleClaims()
	good := append(sc.Marshal(), fakeSig()...)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		tok  []byte
	}{
		{"nil", nil},
		{"magic only", []byte(TokenMagic)},
		{"wrong magic", mutate(func(b []byte) []byte { b[3] = '2'; return b })},
		{"oversized", append(bytes.Repeat([]byte{0}, MaxTokenSize-len(good)+1), good...)},
		{"oversized valid layout", append((&TokenClaims{User: strings.Repeat("u", MaxTokenSize)}).Marshal(), fakeSig()...)},
		{"trailing byte", mutate(func(b []byte) []byte {
			return append(append(b[:len(b)-SignatureSize:len(b)-SignatureSize], 0), fakeSig()...)
		})},
		{"field length too long", mutate(func(b []byte) []byte { b[20] = 0xff; return b })},
		{"garbage", bytes.Repeat([]byte{0xff}, 200)},
		{"magic then garbage", append([]byte(TokenMagic), bytes.Repeat([]byte{0xff}, 200)...)},
		{"minimum length, fields missing", append([]byte(TokenMagic), make([]byte, 16+8+SignatureSize-8)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, signed, sig, err := ParseToken(tt.tok)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseToken = %v, want ErrMalformed", err)
			}
			if signed != nil || sig != nil {
				t.Errorf("signed/sig returned with an error")
			}
		})
	}
	// Every truncation of a good token is refused, without panicking.
	for n := 0; n < len(good); n++ {
		if _, _, _, err := ParseToken(good[:n]); err == nil {
			// A truncation that lands on a valid layout would need a
			// 64-byte signature's worth of field bytes to line up.
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
}

func TestParseTokenMinimal(t *testing.T) {
	tok := append((&TokenClaims{}).Marshal(), fakeSig()...)
	if len(tok) != len(TokenMagic)+16+8+SignatureSize {
		t.Fatalf("minimal token %d bytes", len(tok))
	}
	c, _, _, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lease != 0 || c.User != "" || len(c.Digest) != 0 {
		t.Errorf("claims %#v", c)
	}
}
