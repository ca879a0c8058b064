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
// job whose source has digest (if the token names one), and not expired
// at now. skew is how far
// the verifier's clock may run ahead of the broker's: a volunteer whose
// clock is fast must not refuse every token as expired.
func Verify(pub ed25519.PublicKey, tok []byte, host string, digest []byte, now time.Time, skew time.Duration) (wire.TokenClaims, error) {
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
	// A token issued before the source was known (the client asked for
	// its lease while preprocessing) is bound to no digest; the volunteer
	// then checks the source against the job header's digest.
	if len(c.Digest) > 0 && !bytes.Equal(c.Digest, digest) {
		return c, ErrWrongJob
	}
	if now.UnixMilli()-skew.Milliseconds() > c.ExpiresMs {
		return c, ErrExpired
	}
	return c, nil
}

// ReplayGuard remembers lease IDs whose token was used until the token
// expires (plus the skew allowance), so that a token admits one job only.
// It is pure: a volunteer persists what it records (Remember on start)
// so that a restart does not reopen replay for the rest of a TTL.
type ReplayGuard struct {
	used map[uint64]int64
	// Skew extends how long an entry is kept, matching Verify's allowance.
	Skew time.Duration
}

// Use records the lease of c; it fails if it was used before.
func (g *ReplayGuard) Use(c wire.TokenClaims, now time.Time) error {
	if g.used == nil {
		g.used = make(map[uint64]int64)
	}
	if len(g.used) > 1024 {
		g.Forget(now)
	}
	if _, ok := g.used[c.Lease]; ok {
		return ErrReplayed
	}
	g.used[c.Lease] = c.ExpiresMs
	return nil
}

// Remember records a lease used earlier (by a previous run of the
// process), unless its token has expired by now.
func (g *ReplayGuard) Remember(lease uint64, expiresMs int64, now time.Time) {
	if expiresMs+g.Skew.Milliseconds() < now.UnixMilli() {
		return
	}
	if g.used == nil {
		g.used = make(map[uint64]int64)
	}
	g.used[lease] = expiresMs
}

// Forget drops the entries whose tokens can no longer verify at now.
func (g *ReplayGuard) Forget(now time.Time) {
	limit := now.UnixMilli() - g.Skew.Milliseconds()
	for id, exp := range g.used {
		if exp < limit {
			delete(g.used, id)
		}
	}
}

// Len is the number of remembered leases.
func (g *ReplayGuard) Len() int { return len(g.used) }

// Each calls f for every remembered lease (for compacting a persisted copy).
func (g *ReplayGuard) Each(f func(lease uint64, expiresMs int64)) {
	for id, exp := range g.used {
		f(id, exp)
	}
}
