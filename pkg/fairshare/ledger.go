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

// Account is one user's decayed usage at a point in time: what the broker
// persists. Weights are not part of it: they come from the farm file alone
// (SetWeights), so a weight removed from the file is gone after a reload or
// a restart.
type Account struct {
	Usage float64   `json:"usage"`
	At    time.Time `json:"at"`
}

// Ledger tracks decayed usage per user, and the share weights the farm
// file gives.
type Ledger struct {
	HalfLife time.Duration
	accounts map[string]*Account
	weights  map[string]float64 // users with a weight other than 1
}

// NewLedger returns an empty ledger (halfLife <= 0 means one hour).
func NewLedger(halfLife time.Duration) *Ledger {
	if halfLife <= 0 {
		halfLife = time.Hour
	}
	return &Ledger{HalfLife: halfLife, accounts: make(map[string]*Account), weights: make(map[string]float64)}
}

func (l *Ledger) account(user string) *Account {
	a := l.accounts[user]
	if a == nil {
		a = &Account{}
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

// SetWeight sets one user's share weight (default 1; <= 0 is taken as 1).
func (l *Ledger) SetWeight(user string, w float64) {
	if w <= 0 || w == 1 {
		delete(l.weights, user)
		return
	}
	l.weights[user] = w
}

// SetWeights replaces every weight: users not in w get the default 1.
// The broker calls it with the farm file's `user NAME weight=W` lines on
// every (re)load, so the farm file is the only source of weights.
func (l *Ledger) SetWeights(w map[string]float64) {
	clear(l.weights)
	for u, x := range w {
		l.SetWeight(u, x)
	}
}

// Weight returns a user's weight.
func (l *Ledger) Weight(user string) float64 {
	if w, ok := l.weights[user]; ok {
		return w
	}
	return 1
}

// Weights returns a copy of the weights other than 1.
func (l *Ledger) Weights() map[string]float64 {
	out := make(map[string]float64, len(l.weights))
	for u, w := range l.weights {
		out[u] = w
	}
	return out
}

// Snapshot returns a copy of every account, for persistence.
func (l *Ledger) Snapshot() map[string]Account {
	out := make(map[string]Account, len(l.accounts))
	for u, a := range l.accounts {
		out[u] = *a
	}
	return out
}

// Restore replaces the accounts with a snapshot. Weights are untouched.
func (l *Ledger) Restore(s map[string]Account) {
	l.accounts = make(map[string]*Account, len(s))
	for u, a := range s {
		a := a
		l.accounts[u] = &a
	}
}

// NegligibleUsage is the decayed usage below which an account is worth
// nothing to the fair-share score: a thousandth of a power-1 slot-second.
const NegligibleUsage = 1e-3

// Prune forgets the accounts whose usage has decayed below
// NegligibleUsage at now, except users for which keep returns true (those
// holding leases or waiting). It returns the names it removed, so the
// caller can delete them from its persistent copy too. Without it, every
// name ever seen would be kept and saved for ever.
func (l *Ledger) Prune(now time.Time, keep func(user string) bool) []string {
	var gone []string
	for u, a := range l.accounts {
		if l.decayed(a, now) < NegligibleUsage && (keep == nil || !keep(u)) {
			delete(l.accounts, u)
			gone = append(gone, u)
		}
	}
	return gone
}

// Users lists the users with an account.
func (l *Ledger) Users() []string {
	out := make([]string, 0, len(l.accounts))
	for u := range l.accounts {
		out = append(out, u)
	}
	return out
}
