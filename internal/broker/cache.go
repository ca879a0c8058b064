package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/cache"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// cacheTimeout bounds one lookup or put on the store (a Redis round trip
// on a slow network; the disk store answers in microseconds).
const cacheTimeout = 2 * time.Second

// resultCache is the broker's side of the farm's result cache
// (docs/cache.md). Clients look results up on their session; volunteers
// put results on theirs, and are the only writers: a put's producer is the
// host whose credential the session carries, never what a message says.
type resultCache struct {
	store   cache.Store
	backend string // "disk DIR" or "redis ADDR"
	salt    string
	log     *zap.Logger

	lookups *prometheus.CounterVec // result: hit, miss
	puts    *prometheus.CounterVec // result: stored, refused, error
	purged  prometheus.Counter
	latency prometheus.Histogram

	mu    sync.Mutex
	users map[string]*cacheUse // per user, for the status page's hit rate
}

type cacheUse struct{ hits, misses int64 }

// openCache opens the store the configuration names, or returns nil when
// the cache is off (--cache-size 0 and no Redis).
func openCache(cfg Config, log *zap.Logger) (*resultCache, error) {
	rc := &resultCache{salt: cfg.CacheSalt, log: log, users: make(map[string]*cacheUse)}
	switch {
	case cfg.CacheRedis != "":
		r, err := cache.OpenRedis(cfg.CacheRedis, cache.RedisOptions{})
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		rc.store, rc.backend = r, "redis "+cfg.CacheRedis
	case cfg.CacheSize > 0:
		dir := cfg.CacheDir
		if dir == "" {
			dir = filepath.Join(cfg.StateDir, "cache")
		}
		d, err := cache.OpenDisk(dir, int64(cfg.CacheSize))
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		rc.store, rc.backend = d, "disk "+dir
	default:
		return nil, nil
	}
	rc.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "cache", Name: "lookups_total",
		Help: "Result cache lookups by clients, by result (hit, miss)."}, []string{"result"})
	rc.puts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "cache", Name: "puts_total",
		Help: "Results volunteers offered the cache, by result (stored, refused, error)."}, []string{"result"})
	rc.purged = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dcc", Subsystem: "cache", Name: "purged_total",
		Help: "Entries removed because their producer was found producing wrong objects."})
	rc.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dcc", Subsystem: "cache", Name: "lookup_seconds",
		Help: "Time the broker takes to answer a cache lookup (store read included).", Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12)})
	for _, r := range []string{"hit", "miss"} {
		rc.lookups.WithLabelValues(r)
	}
	for _, r := range []string{"stored", "refused", "error"} {
		rc.puts.WithLabelValues(r)
	}
	log.Info("result cache open", zap.String("store", rc.backend), zap.Int64("max_bytes", int64(cfg.CacheSize)))
	return rc, nil
}

// collectors are the cache's metrics, with gauges of the store's contents
// read at scrape time.
func (rc *resultCache) collectors() []prometheus.Collector {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "dcc", Subsystem: "cache", Name: name, Help: help}
	}
	stat := func(f func(cache.Stats) int64) func() float64 {
		return func() float64 { return float64(f(rc.store.Stats())) }
	}
	return []prometheus.Collector{rc.lookups, rc.puts, rc.purged, rc.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("entries", "Entries in the result cache.")),
			stat(func(s cache.Stats) int64 { return s.Entries })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("bytes", "Bytes the result cache's entries take.")),
			stat(func(s cache.Stats) int64 { return s.Bytes })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("evictions_total", "Entries dropped to stay under the cache's size bound.")),
			stat(func(s cache.Stats) int64 { return s.Evictions })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("corrupt_total", "Entries found corrupt on read and dropped.")),
			stat(func(s cache.Stats) int64 { return s.Corrupt })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("errors_total", "Store operations that failed on I/O or the network.")),
			stat(func(s cache.Stats) int64 { return s.Errors })),
	}
}

// lookup answers a client's CacheLookup. A hit takes no slot and charges
// no usage: it is not a lease.
func (rc *resultCache) lookup(user string, m *wire.CacheLookup) *wire.CacheAnswer {
	start := time.Now()
	var e *cache.Entry
	if len(m.Key) == len(cache.Key{}) { // a malformed key is a miss
		ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
		if ent, err := rc.store.Get(ctx, cache.Key(m.Key)); err == nil { // any error is a miss (Store.Get)
			e = ent
		}
		cancel()
	}
	rc.latency.Observe(time.Since(start).Seconds())
	hit := e != nil
	rc.count(user, hit)
	if !hit {
		rc.lookups.WithLabelValues("miss").Inc()
		return &wire.CacheAnswer{}
	}
	rc.lookups.WithLabelValues("hit").Inc()
	return &wire.CacheAnswer{Found: true, Object: e.Object, Stdout: e.Stdout, Stderr: e.Stderr, ExitCode: e.ExitCode,
		ObjectDigest: e.ObjectDigest, Producer: e.Producer, ProducedAtMs: e.ProducedAt.UnixMilli()}
}

func (rc *resultCache) count(user string, hit bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	u := rc.users[user]
	if u == nil {
		u = &cacheUse{}
		rc.users[user] = u
	}
	if hit {
		u.hits++
	} else {
		u.misses++
	}
}

// put stores a volunteer's result under the key it computed from the job
// it ran. Only successful compiles are kept: a failed one is the user's
// to see again from a compile. The store checks the object against its
// digest (cache.ErrInvalid).
func (rc *resultCache) put(host string, m *wire.CachePut) {
	if len(m.Key) != len(cache.Key{}) || m.ExitCode != 0 || len(m.Object) == 0 {
		rc.puts.WithLabelValues("refused").Inc()
		rc.log.Warn("cache put refused", zap.String("host", host), zap.Int("exit", m.ExitCode), zap.Int("bytes", len(m.Object)))
		return
	}
	e := &cache.Entry{Object: m.Object, Stdout: m.Stdout, Stderr: m.Stderr, ExitCode: m.ExitCode,
		Producer: host, ProducedAt: time.Now(), ObjectDigest: m.ObjectDigest}
	ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
	defer cancel()
	if err := rc.store.Put(ctx, cache.Key(m.Key), e); err != nil {
		result := "error"
		if errors.Is(err, cache.ErrInvalid) {
			result = "refused"
		}
		rc.puts.WithLabelValues(result).Inc()
		rc.log.Warn("cache put failed", zap.String("host", host), zap.Error(err))
		return
	}
	rc.puts.WithLabelValues("stored").Inc()
}

// purge removes every entry host produced, when it is found producing
// wrong objects. It runs off the broker's lock: the store may be remote.
func (rc *resultCache) purge(host, why string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := rc.store.PurgeProducer(ctx, host)
		rc.purged.Add(float64(n))
		rc.log.Warn("cache entries purged", zap.String("host", host), zap.String("why", why), zap.Int("entries", n), zap.Error(err))
	}()
}

// clear empties the cache (an admin's `dcc cache clear`).
func (rc *resultCache) clear() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return rc.store.Clear(ctx)
}

// clearCache empties the result cache for an admin.
func (b *Broker) clearCache(by string) (bool, string) {
	if b.cache == nil {
		return false, "the broker keeps no result cache"
	}
	before := b.cache.store.Stats().Entries
	if err := b.cache.clear(); err != nil {
		return false, "cache clear: " + err.Error()
	}
	b.log.Info("admin action", zap.String("action", wire.AdminCacheClear), zap.Int64("entries", before), zap.String("by", by))
	return true, fmt.Sprintf("cache cleared (%d entries)", before)
}

// status is the cache's part of the status document.
func (rc *resultCache) status() *status.Cache {
	s := rc.store.Stats()
	doc := &status.Cache{Store: rc.backend, Entries: s.Entries, Bytes: s.Bytes, Hits: s.Hits, Misses: s.Misses,
		Evictions: s.Evictions, Corrupt: s.Corrupt, Puts: s.Puts}
	rc.mu.Lock()
	for name, u := range rc.users {
		doc.Users = append(doc.Users, status.CacheUser{Name: name, Hits: u.hits, Misses: u.misses})
	}
	rc.mu.Unlock()
	sort.Slice(doc.Users, func(i, j int) bool { return doc.Users[i].Name < doc.Users[j].Name })
	return doc
}

// maxCachePuts bounds the puts one volunteer has in flight: more wait
// for one to end (yamux's accept backlog then holds the volunteer back).
const maxCachePuts = 8

// serveCachePuts takes the CachePut streams a volunteer opens on its
// session after its control stream, one message per stream, until the
// session ends.
func (b *Broker) serveCachePuts(sess *yamux.Session, host string) {
	sem := make(chan struct{}, maxCachePuts)
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		sem <- struct{}{}
		b.sessions.Add(1)
		go func() {
			defer b.sessions.Done()
			defer func() { <-sem }()
			defer st.Close()
			c := wire.NewConn(st, wire.MaxJobFrame, wire.ControlTimeout)
			m, err := wire.Expect[*wire.CachePut](c)
			if err != nil {
				b.log.Warn("cache put stream", zap.String("host", host), zap.Error(err))
				return
			}
			if b.cache != nil {
				b.cache.put(host, m)
			}
		}()
	}
}
