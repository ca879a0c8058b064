package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server on a loopback port, owned by one test.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	raw  *redis.Client // a plain client for the test's own look and poke
	exit chan struct{}
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRedis starts redis-server without persistence on a free port. The
// port is found by binding :0 and closing it, so another process can take
// it in between: a server that exits at once is retried on a new port.
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run scripts/deps.sh")
	}
	var lastOut string
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exit: make(chan struct{}), out: &lockedBuffer{}}
		s.cmd = exec.Command("redis-server", append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.cmd.Wait(); close(s.exit) }()
		s.raw = redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
		if s.waitReady() {
			t.Cleanup(func() {
				s.raw.Close()
				s.stop()
			})
			return s
		}
		s.raw.Close()
		s.stop()
		lastOut = s.out.String()
	}
	t.Fatalf("redis-server did not start:\n%s", lastOut)
	return nil
}

// waitReady waits until the server answers PING, or has exited.
func (s *redisServer) waitReady() bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exit:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.raw.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-s.exit:
			return false
		case <-time.After(10 * time.Millisecond): // poll interval, not synchronisation
		}
	}
	return false
}

func (s *redisServer) stop() {
	s.cmd.Process.Signal(syscall.SIGCONT) // a stopped server cannot die of SIGKILL until continued on some kernels
	s.cmd.Process.Kill()
	<-s.exit
}

func openTestRedis(t testing.TB, addr string, opts RedisOptions) *Redis {
	t.Helper()
	r, err := OpenRedis(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// testRedisOptions are generous except where a test says otherwise, so a
// slow machine cannot fail a test by a timeout.
func testRedisOptions() RedisOptions {
	return RedisOptions{GetTimeout: 5 * time.Second, PutTimeout: 5 * time.Second, StatsInterval: time.Hour}
}

func TestRedisConformance(t *testing.T) {
	srv := startRedis(t)
	n := 0
	runConformance(t, func(t *testing.T) *harness {
		// One server for the suite; each subtest under its own prefix,
		// which also shows that Clear keeps to its prefix.
		n++
		opts := testRedisOptions()
		opts.Prefix = fmt.Sprintf("t%d:dcc:cache:v1:", n)
		neighbour := fmt.Sprintf("t%d:other", n)
		if err := srv.raw.Set(context.Background(), neighbour, "keep", 0).Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if v, err := srv.raw.Get(context.Background(), neighbour).Result(); v != "keep" {
				t.Errorf("a key outside the prefix was touched: %q, %v", v, err)
			}
		})
		h := &harness{store: openTestRedis(t, srv.addr, opts)}
		h.rewrite = func(t *testing.T, k Key, f func([]byte) []byte) {
			ctx := context.Background()
			key := h.store.(*Redis).entryKey(k)
			b, err := srv.raw.Get(ctx, key).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.raw.Set(ctx, key, f(b), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		h.reopen = func(t *testing.T) Store {
			if err := h.store.Close(); err != nil {
				t.Fatal(err)
			}
			h.store = openTestRedis(t, srv.addr, opts)
			return h.store
		}
		return h
	})
}

// TestRedisSlowOrDeadIsAFastMiss freezes a real redis-server (SIGSTOP: it
// accepts nothing and answers nothing, like a hung or partitioned Redis),
// then kills it. Every other timeout is 30 s, so only GetTimeout can make
// a Get return in time.
func TestRedisSlowOrDeadIsAFastMiss(t *testing.T) {
	srv := startRedis(t)
	opts := RedisOptions{GetTimeout: 50 * time.Millisecond, PutTimeout: 30 * time.Second,
		AdminTimeout: 30 * time.Second, Cooldown: 50 * time.Millisecond, StatsInterval: time.Hour}
	r := openTestRedis(t, srv.addr, opts)
	ctx := context.Background()
	mustPut(t, r, testKey(1), testEntry(1, "sun1", 50<<10))
	mustGet(t, r, testKey(1), testEntry(1, "sun1", 50<<10))

	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Three timeouts in a row; far below the 30 s a missing deadline would take.
	for i := range breakerThreshold {
		start := time.Now()
		err := mustMiss(t, r, testKey(1))
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Get %d on a frozen Redis took %v", i, d)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get %d skipped Redis before %d failures", i, breakerThreshold)
		}
	}
	// Then the store stops asking for a while: a miss without any wait.
	if err := mustMiss(t, r, testKey(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get after %d failures = %v, want ErrUnavailable", breakerThreshold, err)
	}
	if err := r.Put(ctx, testKey(2), testEntry(2, "sun1", 100)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put after %d failures = %v, want ErrUnavailable", breakerThreshold, err)
	}

	// Redis comes back: after the cooldown, hits again.
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a hit after Redis came back", func() bool {
		_, err := r.Get(ctx, testKey(1))
		return err == nil
	})

	// Killed: connection refused, a miss at once.
	srv.stop()
	for range 5 {
		start := time.Now()
		mustMiss(t, r, testKey(1))
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Get on a dead Redis took %v", d)
		}
	}
	if st := r.Stats(); st.Errors < breakerThreshold+1 {
		t.Fatalf("stats %+v: failures not counted", st)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

func TestRedisNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := openTestRedis(t, addr, RedisOptions{GetTimeout: 50 * time.Millisecond, PutTimeout: 30 * time.Second, StatsInterval: time.Hour})
	start := time.Now()
	mustMiss(t, r, testKey(1))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Get with nothing listening took %v", d)
	}
	if err := r.Check(context.Background()); err == nil {
		t.Fatal("Check passed with nothing listening")
	}
}

// TestRedisEntryOutsideItsProducerSet: an entry whose producer set lost it
// (the set was evicted, or a Put was cut short) could escape PurgeProducer,
// so it is not served.
func TestRedisEntryOutsideItsProducerSet(t *testing.T) {
	srv := startRedis(t)
	r := openTestRedis(t, srv.addr, testRedisOptions())
	ctx := context.Background()
	mustPut(t, r, testKey(1), testEntry(1, "sun1", 1000))
	if err := srv.raw.Del(ctx, r.producerKey("sun1")).Err(); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, r, testKey(1))
	if n, _ := srv.raw.Exists(ctx, r.entryKey(testKey(1))).Result(); n != 0 {
		t.Fatal("the unpurgeable entry was left in Redis")
	}
}

func TestRedisTTL(t *testing.T) {
	srv := startRedis(t)
	opts := testRedisOptions()
	opts.TTL = time.Hour
	r := openTestRedis(t, srv.addr, opts)
	ctx := context.Background()
	mustPut(t, r, testKey(1), testEntry(1, "sun1", 1000))
	for _, key := range []string{r.entryKey(testKey(1)), r.producerKey("sun1")} {
		ttl, err := srv.raw.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Fatalf("PTTL %s = %v, %v; want within an hour", key, ttl, err)
		}
	}
	// Without a TTL, nothing expires.
	r2 := openTestRedis(t, srv.addr, RedisOptions{Prefix: "nottl:", GetTimeout: 5 * time.Second, StatsInterval: time.Hour})
	mustPut(t, r2, testKey(1), testEntry(1, "sun1", 1000))
	if ttl, _ := srv.raw.PTTL(ctx, r2.entryKey(testKey(1))).Result(); ttl != -1 {
		t.Fatalf("PTTL without a TTL = %v, want none (-1)", ttl)
	}
}

// TestRedisEvictsUnderMaxmemory runs the setup the store documents and
// checks what the store relies on: Puts keep working past the memory bound,
// Redis evicts, memory stays bounded, recent entries hit, and Stats and
// Check see it all.
func TestRedisEvictsUnderMaxmemory(t *testing.T) {
	srv := startRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
	opts := testRedisOptions()
	opts.StatsInterval = 10 * time.Millisecond
	r := openTestRedis(t, srv.addr, opts)
	ctx := context.Background()
	if err := r.Check(ctx); err != nil {
		t.Fatalf("Check on a well set up Redis: %v", err)
	}
	for i := range 200 { // 10 MB of entries into 4 MB
		mustPut(t, r, testKey(i), testEntry(i, "sun1", 50<<10))
	}
	mustGet(t, r, testKey(199), testEntry(199, "sun1", 50<<10))
	misses := 0
	for i := range 200 {
		if _, err := r.Get(ctx, testKey(i)); err != nil {
			misses++
		}
	}
	if misses < 100 {
		t.Fatalf("only %d of 200 entries of 50 KB missing from a 4 MB Redis", misses)
	}
	waitFor(t, "Stats to show Redis's evictions", func() bool {
		st := r.Stats()
		return st.Evictions > 0 && st.Entries > 0 && st.Bytes > 0 && st.Bytes < 8<<20
	})

	// The default policy would make Puts fail once memory is full.
	if err := srv.raw.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err == nil {
		t.Fatal("Check passed with maxmemory-policy noeviction")
	}
	if err := srv.raw.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err == nil {
		t.Fatal("Check passed without maxmemory")
	}
}

func TestRedisOversizedValueIsCorrupt(t *testing.T) {
	srv := startRedis(t, "--proto-max-bulk-len", "1gb")
	r := openTestRedis(t, srv.addr, testRedisOptions())
	ctx := context.Background()
	// A value longer than any entry: read no further than MaxEncodedSize+1.
	if err := srv.raw.SetRange(ctx, r.entryKey(testKey(1)), MaxEncodedSize+4096, "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := mustMiss(t, r, testKey(1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of an oversized value = %v", err)
	}
}

func TestRedisOptionsValidated(t *testing.T) {
	for name, o := range map[string]RedisOptions{
		"negative timeout": {GetTimeout: -1},
		"tiny TTL":         {TTL: time.Microsecond},
		"negative pool":    {PoolSize: -1},
	} {
		if r, err := OpenRedis("127.0.0.1:1", o); err == nil {
			r.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBreaker drives the cooldown logic on a scripted clock.
func TestBreaker(t *testing.T) {
	var b breaker
	t0 := time.Unix(1000, 0)
	for i := range breakerThreshold - 1 {
		b.failure(t0, time.Second)
		if !b.allow(t0) {
			t.Fatalf("closed after %d failures", i+1)
		}
	}
	b.success()
	for range breakerThreshold - 1 {
		b.failure(t0, time.Second)
	}
	if !b.allow(t0) {
		t.Fatal("a success did not reset the count")
	}
	b.failure(t0, time.Second)
	if b.allow(t0) || b.allow(t0.Add(999*time.Millisecond)) {
		t.Fatal("open breaker let a call through within the cooldown")
	}
	if !b.allow(t0.Add(time.Second)) {
		t.Fatal("breaker still open after the cooldown")
	}
	// Still failing after the cooldown: one failure reopens it.
	t1 := t0.Add(time.Second)
	b.failure(t1, time.Second)
	if b.allow(t1) {
		t.Fatal("a failure after the cooldown did not reopen the breaker")
	}
}

// TestRedisCallerCancellationIsNotRedisFailing: a client that gives up
// (its context ends) must not make the store skip Redis for everyone.
func TestRedisCallerCancellationIsNotRedisFailing(t *testing.T) {
	srv := startRedis(t)
	r := openTestRedis(t, srv.addr, testRedisOptions())
	mustPut(t, r, testKey(1), testEntry(1, "sun1", 1000))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 2 * breakerThreshold {
		if _, err := r.Get(cancelled, testKey(1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with a cancelled context = %v", err)
		}
	}
	mustGet(t, r, testKey(1), testEntry(1, "sun1", 1000))
}
