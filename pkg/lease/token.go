package lease

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/dcc-farm/dcc/pkg/wire"
)

// Token errors, each a distinct refusal a volunteer logs and reports.
var (
	ErrBadSignature = errors.New("lease token: bad signature")
	ErrExpired      = errors.New("lease token: expired")
	ErrWrongHost    = errors.New("lease token: issued for another host")
	ErrWrongJob     = errors.New("lease token: issued for another job")
	ErrReplayed     = errors.New("lease token: already used")
)

// Sign returns a token for claims signed with the broker's key.
func Sign(key ed25519.PrivateKey, c wire.TokenClaims) []byte {
	b := c.Marshal()
	return append(b, ed25519.Sign(key, b)...)
}

// Verify checks a token's signature and that it is meant for host, for a
// job whose source has digest, and not expired at now.
func Verify(pub ed25519.PublicKey, tok []byte, host string, digest []byte, now time.Time) (wire.TokenClaims, error) {
	c, signed, sig, err := wire.ParseToken(tok)
	if err != nil {
		return c, err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, signed, sig) {
		return c, ErrBadSignature
	}
	if c.Host != host {
		return c, fmt.Errorf("%w (%q, this is %q)", ErrWrongHost, c.Host, host)
	}
	if !bytes.Equal(c.Digest, digest) {
		return c, ErrWrongJob
	}
	if now.UnixMilli() > c.ExpiresMs {
		return c, ErrExpired
	}
	return c, nil
}

// ReplayGuard remembers lease IDs whose token was used until the token
// expires, so that a token admits one job only.
type ReplayGuard struct {
	used map[uint64]int64
}

// Use records the lease of c; it fails if it was used before.
func (g *ReplayGuard) Use(c wire.TokenClaims, now time.Time) error {
	if g.used == nil {
		g.used = make(map[uint64]int64)
	}
	nowMs := now.UnixMilli()
	if len(g.used) > 1024 {
		for id, exp := range g.used {
			if exp < nowMs {
				delete(g.used, id)
			}
		}
	}
	if _, ok := g.used[c.Lease]; ok {
		return ErrReplayed
	}
	g.used[c.Lease] = c.ExpiresMs
	return nil
}
