package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/cache"
	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// cacheWait is how long a job that has its lease and its source waits for
// its cache lookup before it goes to the host: the lookup started when the
// source arrived and is one round trip to the broker, so this only bounds
// a broker or store that is slow to answer.
const cacheWait = 50 * time.Millisecond

// lookupTimeout bounds a whole lookup: the broker reads the store within
// its own 2 s limit.
const lookupTimeout = 5 * time.Second

// cacheLookup is one job's lookup in the farm's result cache, run beside
// its lease request (docs/cache.md): a hit ends the job without a compile,
// a miss or any failure leaves the job to the farm as if there were no
// cache.
type cacheLookup struct {
	done       chan struct{}
	ans        *wire.CacheAnswer // a usable hit, or nil
	start, end time.Time
}

// startLookup looks the job up once its source is known, or returns nil
// when the job does not use the cache.
func (a *Agent) startLookup(ctx context.Context, req *wire.AgentCompile, src *pendingSource, id compiler.Identity) *cacheLookup {
	if req.NoCache || len(id.Digest) == 0 {
		return nil
	}
	l := &cacheLookup{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if _, err := src.wait(ctx); err != nil {
			return
		}
		bs, err := a.brokerSession(ctx)
		if err != nil {
			return
		}
		salt, on := a.brokerCache(bs)
		if !on {
			return
		}
		l.start = time.Now()
		key := cache.JobKey(salt, id.Fingerprint, id.Digest, req.Driver, req.Lang, req.Ext, req.Kind, req.Args, req.SourceName, src.digest)
		ans := lookup(ctx, bs, key)
		l.end = time.Now()
		if usableHit(req, ans) {
			l.ans = ans
		}
	}()
	return l
}

// lookup asks the broker for key on a stream of its own.
func lookup(ctx context.Context, bs *yamux.Session, key cache.Key) *wire.CacheAnswer {
	st, err := bs.OpenStream()
	if err != nil {
		return nil
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	c := wire.NewConn(st, wire.MaxJobFrame, lookupTimeout)
	if c.Send(&wire.CacheLookup{Key: key[:]}) != nil {
		return nil
	}
	m, err := c.RecvTimeout(lookupTimeout)
	if err != nil {
		return nil
	}
	ans, _ := m.(*wire.CacheAnswer)
	return ans
}

// usableHit checks a hit as a fresh result is checked (the object against
// its digest), and keeps to what hosts may store: a successful compile
// whose diagnostics, if any, are exactly the local compiler's.
func usableHit(req *wire.AgentCompile, ans *wire.CacheAnswer) bool {
	if ans == nil || !ans.Found || ans.ExitCode != 0 || len(ans.Object) == 0 || ans.Producer == "" {
		return false
	}
	if sum := sha256.Sum256(ans.Object); !bytes.Equal(sum[:], ans.ObjectDigest) {
		return false
	}
	return isRewritten(req) || len(ans.Stderr) == 0
}

// hit returns the lookup's hit if it has answered with one, without waiting.
func (l *cacheLookup) hit() *wire.CacheAnswer {
	if l == nil {
		return nil
	}
	select {
	case <-l.done:
		return l.ans
	default:
		return nil
	}
}

// await waits up to d for the lookup and returns its hit, if any.
func (l *cacheLookup) await(ctx context.Context, d time.Duration) *wire.CacheAnswer {
	if l == nil {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.done:
		return l.ans
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// took is how long the lookup's round trip took, once it has answered.
func (l *cacheLookup) took() time.Duration {
	select {
	case <-l.done:
		return l.end.Sub(l.start).Round(time.Microsecond)
	default:
		return -1
	}
}

// answered is closed when the lookup ends (nil for a job without one).
func (l *cacheLookup) answered() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.done
}

// cachedInstead returns the job's cached result, if its lookup hits,
// instead of r, a local compile. dcc reads the agent's answer only after
// it has sent the source, so waiting here for the source costs the job
// nothing, and the lookup one round trip.
func (at *attempt) cachedInstead(r *wire.AgentResult) *wire.AgentResult {
	if at.look == nil {
		return r
	}
	if _, err := at.src.wait(at.ctx); err != nil {
		return r
	}
	hit := at.look.await(at.ctx, cacheWait)
	if hit == nil {
		return r
	}
	h := at.fromCache(hit)
	h.LocalSlot = r.LocalSlot // a slot handed over is freed when dcc closes
	return h
}

// fromCache turns a hit into the job's result: the object, stdout, stderr
// and exit code exactly as the producing host's compile gave them.
func (at *attempt) fromCache(ans *wire.CacheAnswer) *wire.AgentResult {
	l := at.look
	at.tl.add("cache_hit", ans.Producer, l.start, l.end)
	at.jl.add("cache hit: produced by %s at %s, %d bytes, lookup %s", ans.Producer,
		time.UnixMilli(ans.ProducedAtMs).Format(time.RFC3339), len(ans.Object), l.took())
	return &wire.AgentResult{Host: ans.Producer, CachedAtMs: ans.ProducedAtMs, Log: at.jl.lines,
		Result: wire.JobResult{ExitCode: ans.ExitCode, Stdout: ans.Stdout, Stderr: ans.Stderr, Output: ans.Object, Digest: ans.ObjectDigest, Slot: -1}}
}
