package lease

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/pkg/wire"
)

var (
	brokerPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	brokerPub  = brokerPriv.Public().(ed25519.PublicKey)
	otherPriv  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	otherPub   = otherPriv.Public().(ed25519.PublicKey)
	digest     = sha256.Sum256([]byte("int main() { return 0; }"))
	now        = time.UnixMilli(1_750_000_000_000)
)

func claims() wire.TokenClaims {
	return wire.TokenClaims{
		Lease:       leaseID(),
		ExpiresMs:   now.Add(30 * time.Second).UnixMilli(),
		User:        "alice",
		Host:        "vol-3",
		Fingerprint: "x86_64-pc-linux-gnu gcc 13.2.0",
		Digest:      digest[:],
	}
}

// leaseID is a realistic lease ID.
func leaseID() uint64 { return uint64(FirstID(now)) + 17 }

func TestSignVerify(t *testing.T) {
	c := claims()
	tok := Sign(brokerPriv, c)
	tests := []struct {
		name   string
		pub    ed25519.PublicKey
		tok    []byte
		host   string
		digest []byte
		now    time.Time
		want   error
	}{
		{"valid", brokerPub, tok, "vol-3", digest[:], now, nil},
		{"valid at expiry", brokerPub, tok, "vol-3", digest[:], time.UnixMilli(c.ExpiresMs), nil},
		{"valid just issued", brokerPub, tok, "vol-3", digest[:], now.Add(-time.Hour), nil},
		{"wrong key", otherPub, tok, "vol-3", digest[:], now, ErrBadSignature},
		{"signed by another key", brokerPub, Sign(otherPriv, c), "vol-3", digest[:], now, ErrBadSignature},
		{"short public key", brokerPub[:31], tok, "vol-3", digest[:], now, ErrBadSignature},
		{"nil public key", nil, tok, "vol-3", digest[:], now, ErrBadSignature},
		{"other host", brokerPub, tok, "vol-4", digest[:], now, ErrWrongHost},
		{"host prefix", brokerPub, tok, "vol-", digest[:], now, ErrWrongHost},
		{"other digest", brokerPub, tok, "vol-3", make([]byte, 32), now, ErrWrongJob},
		{"no digest", brokerPub, tok, "vol-3", nil, now, ErrWrongJob},
		{"expired by 1ms", brokerPub, tok, "vol-3", digest[:], time.UnixMilli(c.ExpiresMs + 1), ErrExpired},
		{"expired long ago", brokerPub, tok, "vol-3", digest[:], now.Add(24 * time.Hour), ErrExpired},
		{"empty token", brokerPub, nil, "vol-3", digest[:], now, wire.ErrMalformed},
		{"truncated", brokerPub, tok[:len(tok)-1], "vol-3", digest[:], now, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.pub, tt.tok, tt.host, tt.digest, tt.now, 0)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(c) {
					t.Errorf("claims %+v, want %+v", got, c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// Flipping any bit of a token makes it fail: claims bytes break the
// signature (or the layout), signature bytes break the signature.
func TestVerifyTampered(t *testing.T) {
	tok := Sign(brokerPriv, claims())
	for i := range tok {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(tok)
			bad[i] ^= bit
			_, err := Verify(brokerPub, bad, "vol-3", digest[:], now, 0)
			if err == nil {
				t.Fatalf("byte %d bit %#x flipped: token accepted", i, bit)
			}
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("byte %d: err %v, want bad signature or malformed", i, err)
			}
		}
	}
	// Appending or dropping bytes also fails.
	for _, bad := range [][]byte{append(bytes.Clone(tok), 0), tok[:len(tok)-wire.SignatureSize], tok[1:]} {
		if _, err := Verify(brokerPub, bad, "vol-3", digest[:], now, 0); err == nil {
			t.Errorf("token of %d bytes accepted", len(bad))
		}
	}
}

// A token resigned with claims for another host by someone without the
// broker key does not verify; the claims are bound by the signature.
func TestVerifyClaimsBound(t *testing.T) {
	c := claims()
	tok := Sign(brokerPriv, c)
	c2 := c
	c2.Host = "vol-4"
	forged := append(c2.Marshal(), tok[len(tok)-wire.SignatureSize:]...)
	if _, err := Verify(brokerPub, forged, "vol-4", digest[:], now, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signature moved to other claims: %v", err)
	}
}

func TestReplayGuard(t *testing.T) {
	var g ReplayGuard
	c := claims()
	if err := g.Use(c, now); err != nil {
		t.Fatal(err)
	}
	if err := g.Use(c, now); !errors.Is(err, ErrReplayed) {
		t.Errorf("second use = %v, want ErrReplayed", err)
	}
	if err := g.Use(c, now.Add(time.Millisecond)); !errors.Is(err, ErrReplayed) {
		t.Errorf("third use = %v, want ErrReplayed", err)
	}
	c2 := c
	c2.Lease++
	if err := g.Use(c2, now); err != nil {
		t.Errorf("other lease refused: %v", err)
	}
}

// The guard forgets tokens once they have expired, when it prunes (above
// 1024 entries); tokens not yet expired are kept and still refused.
func TestReplayGuardPrunes(t *testing.T) {
	var g ReplayGuard
	short := now.Add(time.Second).UnixMilli()
	long := now.Add(time.Hour).UnixMilli()
	for i := 0; i < 1100; i++ {
		exp := short
		if i%10 == 0 {
			exp = long
		}
		if err := g.Use(wire.TokenClaims{Lease: uint64(i), ExpiresMs: exp}, now); err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
	}
	if len(g.used) != 1100 {
		t.Fatalf("guard holds %d before expiry, want 1100 (nothing expired yet)", len(g.used))
	}
	later := now.Add(2 * time.Second)
	if err := g.Use(wire.TokenClaims{Lease: 5000, ExpiresMs: long}, later); err != nil {
		t.Fatal(err)
	}
	if len(g.used) != 110+1 {
		t.Errorf("guard holds %d after pruning, want 111", len(g.used))
	}
	for i := 0; i < 1100; i += 10 {
		if err := g.Use(wire.TokenClaims{Lease: uint64(i), ExpiresMs: long}, later); !errors.Is(err, ErrReplayed) {
			t.Fatalf("unexpired lease %d forgotten: %v", i, err)
		}
	}
	// An entry expiring exactly now is still valid (Verify accepts at
	// ExpiresMs) and must be kept.
	var h ReplayGuard
	for i := 0; i < 1025; i++ {
		_ = h.Use(wire.TokenClaims{Lease: uint64(i), ExpiresMs: now.UnixMilli()}, now)
	}
	if err := h.Use(wire.TokenClaims{Lease: 3, ExpiresMs: now.UnixMilli()}, now); !errors.Is(err, ErrReplayed) {
		t.Errorf("token valid until now forgotten at now: %v", err)
	}
}

// Verify and ReplayGuard together: one token admits one job.
func TestTokenAdmitsOneJob(t *testing.T) {
	var g ReplayGuard
	tok := Sign(brokerPriv, claims())
	admitted := 0
	for i := 0; i < 3; i++ {
		c, err := Verify(brokerPub, tok, "vol-3", digest[:], now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if g.Use(c, now) == nil {
			admitted++
		}
	}
	if admitted != 1 {
		t.Errorf("token admitted %d jobs", admitted)
	}
}

func BenchmarkSign(b *testing.B) {
	c := claims()
	b.ReportAllocs()
	for b.Loop() {
		Sign(brokerPriv, c)
	}
}

func BenchmarkVerify(b *testing.B) {
	tok := Sign(brokerPriv, claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(brokerPub, tok, "vol-3", digest[:], now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyClockSkew: a verifier whose clock runs ahead of the broker's
// by less than its allowance still accepts a token; past it, refuses.
func TestVerifyClockSkew(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	digest := sha256.Sum256([]byte("src"))
	tok := Sign(brokerPriv, wire.TokenClaims{Lease: 1, ExpiresMs: now.UnixMilli(), User: "u", Host: "h", Fingerprint: "fp", Digest: digest[:]})
	ahead := now.Add(40 * time.Second) // the volunteer's clock is 40 s fast
	if _, err := Verify(brokerPub, tok, "h", digest[:], ahead, time.Minute); err != nil {
		t.Fatalf("within a 1m allowance: %v", err)
	}
	if _, err := Verify(brokerPub, tok, "h", digest[:], ahead, 30*time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("past a 30s allowance: %v, want ErrExpired", err)
	}
	// A token bound to no digest (requested before preprocessing) verifies
	// against any; one bound to a digest only against it.
	unbound := Sign(brokerPriv, wire.TokenClaims{Lease: 2, ExpiresMs: now.UnixMilli(), User: "u", Host: "h", Fingerprint: "fp"})
	if _, err := Verify(brokerPub, unbound, "h", digest[:], now, 0); err != nil {
		t.Fatalf("unbound token: %v", err)
	}
	other := sha256.Sum256([]byte("other"))
	if _, err := Verify(brokerPub, tok, "h", other[:], now, 0); !errors.Is(err, ErrWrongJob) {
		t.Fatalf("bound token, other digest: %v", err)
	}
}

// TestReplayGuardRemember: entries restored from a previous run refuse
// their tokens until they expire, and expired ones are not restored.
func TestReplayGuardRemember(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := ReplayGuard{Skew: time.Second}
	g.Remember(7, now.Add(time.Minute).UnixMilli(), now)
	g.Remember(8, now.Add(-time.Minute).UnixMilli(), now)
	if g.Len() != 1 {
		t.Fatalf("remembered %d, want 1 (the live one)", g.Len())
	}
	if err := g.Use(wire.TokenClaims{Lease: 7, ExpiresMs: now.Add(time.Minute).UnixMilli()}, now); !errors.Is(err, ErrReplayed) {
		t.Fatalf("restored lease reused: %v", err)
	}
	g.Forget(now.Add(2 * time.Minute))
	if g.Len() != 0 {
		t.Fatalf("expired entry kept: %d", g.Len())
	}
}
