package broker

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/farm"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/pkg/lease"
)

const (
	tickEvery    = 200 * time.Millisecond
	saveEvery    = 10 * time.Second
	farmPollEvry = 2 * time.Second
	keepReclaims = 50
	// revocationPoll is how often the broker looks for new revocations:
	// `broker revoke` takes effect within it (the contract says 5 s).
	revocationPoll = time.Second
)

// tickLoop drives time in the scheduler: lease expiry, queue deadlines,
// block expiry; and saves usage and re-reads the farm file periodically.
func (b *Broker) tickLoop() {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	lastSave, lastFarm, lastRev := time.Now(), time.Now(), time.Now()
	farmStamp := fileStamp(b.cfg.FarmFile)
	for {
		select {
		case <-b.closing:
			return
		case now := <-t.C:
			b.tick(now)
			if now.Sub(lastRev) >= revocationPoll {
				lastRev = now
				b.reloadRevocations()
			}
			if now.Sub(lastSave) >= saveEvery {
				lastSave = now
				b.saveUsage()
			}
			if now.Sub(lastFarm) >= farmPollEvry {
				lastFarm = now
				if s := fileStamp(b.cfg.FarmFile); s != farmStamp {
					farmStamp = s
					b.ReloadFarm()
				}
			}
		}
	}
}

func (b *Broker) tick(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	expired, timedOut := b.sched.Tick(now)
	for _, l := range expired {
		b.reclaimed(l, "expired", "lease not renewed within its TTL", now)
		b.cancelOnHost(l, "lease expired")
	}
	for _, r := range timedOut {
		if w, ok := b.waiters[r.ID]; ok {
			delete(b.waiters, r.ID)
			w.deliver(waitResult{denied: "waited longer than the wait limit"})
			b.m.denied.WithLabelValues("timeout").Inc()
		}
	}
	b.dispatchLocked(now)
}

// ReloadFarm re-reads the farm file; on a syntax error the old farm stays.
func (b *Broker) ReloadFarm() {
	f, err := farm.Load(b.cfg.FarmFile)
	if err != nil {
		b.log.Error("farm file not reloaded, keeping the old one", zap.Error(err))
		return
	}
	now := time.Now()
	b.mu.Lock()
	b.applyFarm(f, now)
	b.dispatchLocked(now)
	b.mu.Unlock()
	b.log.Info("farm file reloaded", zap.Int("hosts", len(f.Hosts)))
}

func fileStamp(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
}

// reclaimed records a lease the broker took back. Caller holds mu.
func (b *Broker) reclaimed(l lease.Lease, reason, detail string, now time.Time) {
	b.ring.Finish(uint64(l.ID), now)
	event := "revoke"
	if reason == "expired" {
		event = "expire"
	}
	b.lease.Info(event, zap.Uint64("lease", uint64(l.ID)), zap.String("user", l.User), zap.String("host", l.Host),
		zap.String("reason", reason), zap.String("detail", detail), zap.Duration("held", now.Sub(l.Granted)))
	b.m.reclaimed.WithLabelValues(reason).Inc()
	b.reclaims = append(b.reclaims, status.Reclaim{Time: now, Lease: uint64(l.ID), User: l.User, Host: l.Host, Reason: reason + ": " + detail})
	if len(b.reclaims) > keepReclaims {
		b.reclaims = b.reclaims[len(b.reclaims)-keepReclaims:]
	}
}
