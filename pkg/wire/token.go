package wire

import (
	"encoding/binary"
	"fmt"
)

// TokenMagic starts every lease token.
const TokenMagic = "DCT1"

// SignatureSize is the size of the ed25519 signature that ends a token.
const SignatureSize = 64

// MaxTokenSize bounds a token on the wire.
const MaxTokenSize = 1024

// TokenClaims are what a lease token binds together. The broker signs them;
// a volunteer runs a job only when the signature verifies, the host is its
// own, the token has not expired, the lease id has not been used, and the
// job's source digest matches.
type TokenClaims struct {
	Lease       uint64
	ExpiresMs   int64 // unix milliseconds
	User        string
	Host        string
	Fingerprint string
	Digest      []byte // sha256 of the preprocessed source
}

// Marshal encodes the claims in the signed byte layout:
// magic, lease u64, expiry i64, then user, host, fingerprint and digest each
// as a u16 length and bytes.
func (c *TokenClaims) Marshal() []byte {
	b := make([]byte, 0, 4+16+8+len(c.User)+len(c.Host)+len(c.Fingerprint)+len(c.Digest)+SignatureSize)
	b = append(b, TokenMagic...)
	b = binary.BigEndian.AppendUint64(b, c.Lease)
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresMs))
	for _, s := range [][]byte{[]byte(c.User), []byte(c.Host), []byte(c.Fingerprint), c.Digest} {
		n := len(s)
		if n > 0xffff {
			n = 0xffff
		}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, s[:n]...)
	}
	return b
}

// ParseToken splits a token into its claims, the signed bytes and the signature.
func ParseToken(tok []byte) (c TokenClaims, signed, sig []byte, err error) {
	if len(tok) > MaxTokenSize {
		return c, nil, nil, fmt.Errorf("%w: token of %d bytes", ErrMalformed, len(tok))
	}
	if len(tok) < len(TokenMagic)+16+8+SignatureSize || string(tok[:4]) != TokenMagic {
		return c, nil, nil, fmt.Errorf("%w: not a lease token", ErrMalformed)
	}
	signed, sig = tok[:len(tok)-SignatureSize], tok[len(tok)-SignatureSize:]
	p := signed[4:]
	c.Lease = binary.BigEndian.Uint64(p)
	c.ExpiresMs = int64(binary.BigEndian.Uint64(p[8:]))
	p = p[16:]
	var fields [4][]byte
	for i := range fields {
		if len(p) < 2 {
			return c, nil, nil, fmt.Errorf("%w: truncated token", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		if n > len(p) {
			return c, nil, nil, fmt.Errorf("%w: truncated token", ErrMalformed)
		}
		fields[i] = p[:n]
		p = p[n:]
	}
	if len(p) != 0 {
		return c, nil, nil, fmt.Errorf("%w: trailing bytes in token", ErrMalformed)
	}
	c.User, c.Host, c.Fingerprint = string(fields[0]), string(fields[1]), string(fields[2])
	c.Digest = append([]byte(nil), fields[3]...)
	return c, signed, sig, nil
}
