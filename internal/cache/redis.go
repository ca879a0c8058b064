package cache

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix starts every key the Redis store writes.
const DefaultRedisPrefix = "dcc:cache:v1:"

// ErrUnavailable: the Redis store is skipping Redis for a moment after
// several calls in a row failed (see RedisOptions.Cooldown).
var ErrUnavailable = errors.New("cache: redis unavailable")

// RedisOptions configure OpenRedis. Zero values mean the defaults.
type RedisOptions struct {
	// Prefix starts every key (default DefaultRedisPrefix).
	Prefix string
	// Username, Password and DB select the Redis user and database.
	Username, Password string
	DB                 int
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// GetTimeout bounds a whole Get, connecting included (default 100 ms):
	// past it the compile goes ahead as a miss.
	GetTimeout time.Duration
	// PutTimeout bounds a Put (default 1 s).
	PutTimeout time.Duration
	// AdminTimeout bounds PurgeProducer and Clear, which scan (default 30 s).
	AdminTimeout time.Duration
	// TTL, when set, makes entries expire that long after they were put.
	// Eviction does not need it (see Redis); it bounds how long a result
	// nobody disowned can be served.
	TTL time.Duration
	// Cooldown is how long the store skips Redis after 3 calls in a row
	// failed on the network (default 1 s): a dead Redis then costs a
	// compile nothing rather than a GetTimeout each.
	Cooldown time.Duration
	// StatsInterval is how often Stats' Entries, Bytes and Evictions are
	// read from Redis (default 10 s).
	StatsInterval time.Duration
	// PoolSize is the number of connections (default go-redis's, 10 per CPU).
	PoolSize int
}

func (o *RedisOptions) withDefaults() (RedisOptions, error) {
	r := *o
	if r.Prefix == "" {
		r.Prefix = DefaultRedisPrefix
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"GetTimeout", &r.GetTimeout, 100 * time.Millisecond},
		{"PutTimeout", &r.PutTimeout, time.Second},
		{"AdminTimeout", &r.AdminTimeout, 30 * time.Second},
		{"Cooldown", &r.Cooldown, time.Second},
		{"StatsInterval", &r.StatsInterval, 10 * time.Second},
	} {
		if *d.v < 0 {
			return r, fmt.Errorf("cache: redis %s is negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if r.TTL < 0 || (r.TTL > 0 && r.TTL < time.Millisecond) {
		return r, errors.New("cache: redis TTL must be 0 or at least 1 ms")
	}
	if r.PoolSize < 0 {
		return r, errors.New("cache: redis PoolSize is negative")
	}
	return r, nil
}

// Redis is the store for a team that shares one cache between brokers (or
// keeps it across broker machines). It keeps, under the prefix:
//
//	<prefix>o:<hex key>   the entry (Entry.Marshal), with the TTL if one is set
//	<prefix>p:<producer>  the set of the raw 32-byte keys that host produced
//
// Eviction is Redis's: run it with a memory bound and an all-keys policy,
//
//	maxmemory 8gb
//	maxmemory-policy allkeys-lru
//
// on an instance (or at least a database) of its own, since allkeys-lru
// evicts any key. Check reports a Redis that is not set up so: with the
// default noeviction, Puts fail once memory is full; with volatile-* and no
// TTL nothing is ever evicted.
//
// A producer set can be evicted too, or miss a key when a Put was cut
// short, which would hide entries from PurgeProducer. So a hit counts only
// if its key is in its producer's set (one more round trip, within the same
// GetTimeout); otherwise the entry is deleted and Get misses.
//
// Counters: Hits, Misses, Corrupt, Puts and Errors are this process's since
// OpenRedis (a metrics system sums them across brokers without any Redis
// write on the hot path). Entries, Bytes and Evictions are read from Redis
// every StatsInterval and describe the whole database: keys in it (entries
// plus one set per producer), used_memory and evicted_keys since the Redis
// server started.
type Redis struct {
	c      *redis.Client
	opt    RedisOptions
	br     breaker
	closed atomic.Bool

	hits, misses, corrupt, puts, errs atomic.Int64
	// From Redis, refreshed by statsLoop.
	entries, bytes, evictions atomic.Int64

	stop chan struct{}
	done chan struct{}
}

var _ Store = (*Redis)(nil)

// OpenRedis returns a store using the Redis at addr (host:port). It does
// not wait for Redis: a broker starts, and compiles go on as misses, while
// Redis is down. Call Check to learn whether Redis is reachable and set up.
func OpenRedis(addr string, opts RedisOptions) (*Redis, error) {
	opt, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(&redis.Options{
		Addr:      addr,
		Username:  opt.Username,
		Password:  opt.Password,
		DB:        opt.DB,
		TLSConfig: opt.TLS,
		// RESP2 and no identity or maintenance handshake: a new connection
		// costs no round trip before the first command.
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// Every call carries a context deadline (GetTimeout, PutTimeout or
		// AdminTimeout), which go-redis then applies to dialing, waiting for
		// a pooled connection, and each read and write. The timeouts here
		// only bound what a deadline does not reach.
		ContextTimeoutEnabled: true,
		DialTimeout:           opt.PutTimeout,
		ReadTimeout:           opt.AdminTimeout,
		WriteTimeout:          opt.AdminTimeout,
		PoolTimeout:           opt.PutTimeout,
		// A retry would spend a second timeout on a compile waiting for a miss.
		MaxRetries: -1,
		PoolSize:   opt.PoolSize,
	})
	r := &Redis{c: c, opt: opt, stop: make(chan struct{}), done: make(chan struct{})}
	go r.statsLoop()
	return r, nil
}

func (r *Redis) entryKey(k Key) string { return r.opt.Prefix + "o:" + k.String() }

func (r *Redis) producerKey(host string) string { return r.opt.Prefix + "p:" + host }

// Get returns the entry under k within GetTimeout, or a miss.
func (r *Redis) Get(ctx context.Context, k Key) (*Entry, error) {
	e, err := r.get(ctx, k)
	if err != nil {
		r.misses.Add(1)
		return nil, err
	}
	r.hits.Add(1)
	return e, nil
}

func (r *Redis) get(parent context.Context, k Key) (*Entry, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMiss, err)
	}
	ctx, cancel := context.WithTimeout(parent, r.opt.GetTimeout)
	defer cancel()
	// GETRANGE rather than GET bounds the read: a value longer than any
	// entry comes back cut at MaxEncodedSize+1 bytes, and Unmarshal refuses it.
	b, err := r.c.GetRange(ctx, r.entryKey(k), 0, MaxEncodedSize).Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMiss, r.failed(parent, err))
	}
	r.br.success()
	if len(b) == 0 {
		return nil, ErrMiss
	}
	e, err := Unmarshal(k, b)
	if err != nil {
		r.corrupt.Add(1)
		// Best effort, on what is left of the deadline. A Put of a good
		// entry racing with this can be lost: a miss, never a wrong hit.
		r.c.Unlink(ctx, r.entryKey(k))
		return nil, fmt.Errorf("%w: %w", ErrMiss, err)
	}
	filed, err := r.c.SIsMember(ctx, r.producerKey(e.Producer), k[:]).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMiss, r.failed(parent, err))
	}
	if !filed {
		r.c.Unlink(ctx, r.entryKey(k))
		return nil, fmt.Errorf("%w: entry %s is not in the set of its producer %q", ErrMiss, k, e.Producer)
	}
	return e, nil
}

// Put stores e under k within PutTimeout: the key joins its producer's set
// and the entry is written in one MULTI/EXEC transaction.
func (r *Redis) Put(parent context.Context, k Key, e *Entry) error {
	blob, err := e.Marshal(k)
	if err != nil {
		return err
	}
	if err := r.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(parent, r.opt.PutTimeout)
	defer cancel()
	pk := r.producerKey(e.Producer)
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, pk, k[:])
		if r.opt.TTL > 0 {
			// Every entry of the set expires within TTL of the last Put.
			p.PExpire(ctx, pk, r.opt.TTL)
		}
		p.Set(ctx, r.entryKey(k), blob, r.opt.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: put %s: %w", k, r.failed(parent, err))
	}
	r.br.success()
	r.puts.Add(1)
	return nil
}

// PurgeProducer deletes the entries in host's set, then the set.
func (r *Redis) PurgeProducer(parent context.Context, host string) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	ctx, cancel := context.WithTimeout(parent, r.opt.AdminTimeout)
	defer cancel()
	pk := r.producerKey(host)
	n := 0
	var cursor uint64
	for {
		members, next, err := r.c.SScan(ctx, pk, cursor, "", 1000).Result()
		if err != nil {
			return n, fmt.Errorf("cache: purge %q: %w", host, r.failed(parent, err))
		}
		keys := make([]string, 0, len(members))
		for _, m := range members {
			var k Key
			if len(m) == len(k) {
				copy(k[:], m)
				keys = append(keys, r.entryKey(k))
			}
		}
		if len(keys) > 0 {
			d, err := r.c.Unlink(ctx, keys...).Result()
			if err != nil {
				return n, fmt.Errorf("cache: purge %q: %w", host, r.failed(parent, err))
			}
			n += int(d)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if err := r.c.Unlink(ctx, pk).Err(); err != nil {
		return n, fmt.Errorf("cache: purge %q: %w", host, r.failed(parent, err))
	}
	return n, nil
}

// Clear deletes every key under the prefix.
func (r *Redis) Clear(parent context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(parent, r.opt.AdminTimeout)
	defer cancel()
	match := globEscape(r.opt.Prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := r.c.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return fmt.Errorf("cache: clear: %w", r.failed(parent, err))
		}
		if len(keys) > 0 {
			if err := r.c.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("cache: clear: %w", r.failed(parent, err))
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// globEscape quotes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\^`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Check reports whether Redis answers and evicts the way this store relies
// on (a memory bound and an allkeys policy). A Redis that forbids CONFIG
// (some managed ones do) is reported as unverifiable.
func (r *Redis) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opt.PutTimeout)
	defer cancel()
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: redis: %w", err)
	}
	cfg, err := r.c.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		return fmt.Errorf("cache: redis: cannot verify maxmemory and maxmemory-policy (%w); they must be set", err)
	}
	if cfg["maxmemory"] == "0" || cfg["maxmemory"] == "" {
		return errors.New("cache: redis has no maxmemory: it would grow until the machine runs out of memory")
	}
	if p := cfg["maxmemory-policy"]; p != "allkeys-lru" && p != "allkeys-lfu" {
		return fmt.Errorf("cache: redis maxmemory-policy is %q, want allkeys-lru: entries would not be evicted", p)
	}
	return nil
}

// Stats returns the counters; Entries, Bytes and Evictions are at most
// StatsInterval old.
func (r *Redis) Stats() Stats {
	return Stats{
		Entries:   r.entries.Load(),
		Bytes:     r.bytes.Load(),
		Hits:      r.hits.Load(),
		Misses:    r.misses.Load(),
		Evictions: r.evictions.Load(),
		Corrupt:   r.corrupt.Load(),
		Puts:      r.puts.Load(),
		Errors:    r.errs.Load(),
	}
}

// Close stops the store and closes its connections.
func (r *Redis) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	close(r.stop)
	<-r.done
	return r.c.Close()
}

func (r *Redis) statsLoop() {
	defer close(r.done)
	t := time.NewTicker(r.opt.StatsInterval)
	defer t.Stop()
	for {
		r.refreshStats()
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// refreshStats reads the server-side figures of Stats from INFO.
func (r *Redis) refreshStats() {
	if r.usable() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opt.PutTimeout)
	defer cancel()
	info, err := r.c.Info(ctx).Result()
	if err != nil {
		return
	}
	db := "db" + strconv.Itoa(r.opt.DB) + ":"
	var keys int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "used_memory:"):
			r.bytes.Store(parseInt(line[len("used_memory:"):]))
		case strings.HasPrefix(line, "evicted_keys:"):
			r.evictions.Store(parseInt(line[len("evicted_keys:"):]))
		case strings.HasPrefix(line, db):
			// db0:keys=12,expires=0,avg_ttl=0
			for _, f := range strings.Split(line[len(db):], ",") {
				if v, ok := strings.CutPrefix(f, "keys="); ok {
					keys = parseInt(v)
				}
			}
		}
	}
	r.entries.Store(keys) // an empty database has no db line
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// usable fails fast when the store is closed or cooling down.
func (r *Redis) usable() error {
	if r.closed.Load() {
		return ErrClosed
	}
	if !r.br.allow(time.Now()) {
		return ErrUnavailable
	}
	return nil
}

// failed records a failed call and returns err. Only the network's and
// Redis's failures count towards the cooldown: an error reply means Redis
// is there, and the end of the caller's own context (parent) says nothing
// about Redis.
func (r *Redis) failed(parent context.Context, err error) error {
	r.errs.Add(1)
	var reply redis.Error
	if !errors.As(err, &reply) && parent.Err() == nil {
		r.br.failure(time.Now(), r.opt.Cooldown)
	}
	return err
}

// breaker makes the store skip Redis for a cooldown after breakerThreshold
// network failures in a row. After the cooldown calls go through again;
// one more failure starts another cooldown, one success ends the episode.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

const breakerThreshold = 3

func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !now.Before(b.openUntil)
}

func (b *breaker) success() {
	b.mu.Lock()
	b.failures = 0
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures >= breakerThreshold {
		b.openUntil = now.Add(cooldown)
	}
}
