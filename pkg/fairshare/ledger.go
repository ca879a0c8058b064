// Package fairshare owns per-user usage accounting with exponential decay
// and the order in which waiting lease requests are served.
//
// Usage is charged in power-normalised slot-seconds (a second on a power-3
// host costs 3) and halves every HalfLife. When requests wait, the next
// free slot goes to the user with the lowest score
//
//	score = (running + 1) / weight × (1 + UsageFactor × usage / meanUsage)
//
// where running is the power of the slots the user holds now, and
// meanUsage the mean decayed usage of the users waiting. The first factor
// is instantaneous max-min fairness (Buildbarn's (executing+1) rule): a user
// with little running goes first, so a light user never waits behind a
// heavy user's queue. The second tilts ties toward whoever used less
// recently (HTCondor-style decayed usage). See docs/scheduling.md.
//
// The package is pure: callers pass "now"; nothing here reads a clock.
package fairshare

import (
	"math"
	"time"
)

// Account is one user's decayed usage at a point in time.
type Account struct {
	Usage  float64   `json:"usage"`
	At     time.Time `json:"at"`
	Weight float64   `json:"weight"`
}

// Ledger tracks decayed usage per user.
type Ledger struct {
	HalfLife time.Duration
	accounts map[string]*Account
}

// NewLedger returns an empty ledger (halfLife <= 0 means one hour).
func NewLedger(halfLife time.Duration) *Ledger {
	if halfLife <= 0 {
		halfLife = time.Hour
	}
	return &Ledger{HalfLife: halfLife, accounts: make(map[string]*Account)}
}

func (l *Ledger) account(user string) *Account {
	a := l.accounts[user]
	if a == nil {
		a = &Account{Weight: 1}
		l.accounts[user] = a
	}
	return a
}

func (l *Ledger) decayed(a *Account, now time.Time) float64 {
	if a.Usage == 0 || a.At.IsZero() || !now.After(a.At) {
		return a.Usage
	}
	return a.Usage * math.Exp2(-float64(now.Sub(a.At))/float64(l.HalfLife))
}

// Charge adds amount (power-normalised slot-seconds) to user's usage.
func (l *Ledger) Charge(user string, amount float64, now time.Time) {
	a := l.account(user)
	a.Usage = l.decayed(a, now) + amount
	a.At = now
}

// Usage returns user's usage decayed to now.
func (l *Ledger) Usage(user string, now time.Time) float64 {
	a := l.accounts[user]
	if a == nil {
		return 0
	}
	return l.decayed(a, now)
}

// SetWeight sets a user's share weight (default 1; <= 0 is taken as 1).
func (l *Ledger) SetWeight(user string, w float64) {
	if w <= 0 {
		w = 1
	}
	l.account(user).Weight = w
}

// Weight returns a user's weight.
func (l *Ledger) Weight(user string) float64 {
	if a := l.accounts[user]; a != nil {
		return a.Weight
	}
	return 1
}

// Snapshot returns a copy of every account, for persistence.
func (l *Ledger) Snapshot() map[string]Account {
	out := make(map[string]Account, len(l.accounts))
	for u, a := range l.accounts {
		out[u] = *a
	}
	return out
}

// Restore replaces the accounts with a snapshot.
func (l *Ledger) Restore(s map[string]Account) {
	l.accounts = make(map[string]*Account, len(s))
	for u, a := range s {
		a := a
		if a.Weight <= 0 {
			a.Weight = 1
		}
		l.accounts[u] = &a
	}
}

// Users lists the users with an account.
func (l *Ledger) Users() []string {
	out := make([]string, 0, len(l.accounts))
	for u := range l.accounts {
		out = append(out, u)
	}
	return out
}
