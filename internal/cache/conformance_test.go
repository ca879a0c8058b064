package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// harness is one store under the conformance suite, with the back doors
// the suite needs to reach past the Store interface.
type harness struct {
	store Store
	// rewrite replaces the bytes stored under k by f(old bytes).
	rewrite func(t *testing.T, k Key, f func([]byte) []byte)
	// reopen closes the store and opens it again on the same state.
	reopen func(t *testing.T) Store
}

// testEntry is a deterministic entry for (key number i, producer): any hit
// for key i can be checked byte for byte.
func testEntry(i int, producer string, objSize int) *Entry {
	obj := make([]byte, objSize)
	for j := range obj {
		obj[j] = byte(i*31 + j*7 + len(producer))
	}
	sum := sha256.Sum256(obj)
	return &Entry{
		Object:       obj,
		Stdout:       fmt.Appendf(nil, "out %d", i),
		Stderr:       fmt.Appendf(nil, "warning: %d from %s\n", i, producer),
		ExitCode:     i % 3,
		Producer:     producer,
		ProducedAt:   time.Unix(1_790_000_000+int64(i), int64(i)*1000),
		ObjectDigest: sum[:],
	}
}

func testKey(i int) Key {
	return ComputeKey(KeyInput{Salt: "test", Args: []string{"-O2"}, SourceDigest: fmt.Appendf(nil, "src-%d", i)})
}

func equalEntry(a, b *Entry) bool {
	return bytes.Equal(a.Object, b.Object) && bytes.Equal(a.Stdout, b.Stdout) && bytes.Equal(a.Stderr, b.Stderr) &&
		a.ExitCode == b.ExitCode && a.Producer == b.Producer && a.ProducedAt.Equal(b.ProducedAt) &&
		bytes.Equal(a.ObjectDigest, b.ObjectDigest)
}

func mustGet(t *testing.T, s Store, k Key, want *Entry) {
	t.Helper()
	got, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	if !equalEntry(got, want) {
		t.Fatalf("Get %s: got another entry (producer %q, %d-byte object)", k, got.Producer, len(got.Object))
	}
}

func mustMiss(t *testing.T, s Store, k Key) error {
	t.Helper()
	got, err := s.Get(context.Background(), k)
	if got != nil {
		t.Fatalf("Get %s: got an entry from %q; want a miss", k, got.Producer)
	}
	if !errors.Is(err, ErrMiss) {
		t.Fatalf("Get %s: %v; want a miss", k, err)
	}
	return err
}

func mustPut(t *testing.T, s Store, k Key, e *Entry) {
	t.Helper()
	if err := s.Put(context.Background(), k, e); err != nil {
		t.Fatalf("Put %s: %v", k, err)
	}
}

// runConformance runs the behaviour every Store must have. newHarness
// returns a fresh, empty store for each subtest.
func runConformance(t *testing.T, newHarness func(t *testing.T) *harness) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		h := newHarness(t)
		e := testEntry(1, "sun1", 50<<10)
		mustPut(t, h.store, testKey(1), e)
		mustGet(t, h.store, testKey(1), e)
		// An entry without an object (a failed compile) round-trips too.
		failed := &Entry{Stderr: []byte("error: x"), ExitCode: 1, Producer: "sun1"}
		mustPut(t, h.store, testKey(2), failed)
		mustGet(t, h.store, testKey(2), failed)
		st := h.store.Stats()
		if st.Hits != 2 || st.Puts != 2 || st.Misses != 0 || st.Corrupt != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("Miss", func(t *testing.T) {
		h := newHarness(t)
		if err := mustMiss(t, h.store, testKey(9)); err != ErrMiss {
			t.Fatalf("a plain miss returned %v, want ErrMiss itself", err)
		}
		if st := h.store.Stats(); st.Misses != 1 || st.Hits != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		h := newHarness(t)
		mustPut(t, h.store, testKey(1), testEntry(1, "sun1", 1000))
		second := testEntry(1, "desk12", 3000)
		mustPut(t, h.store, testKey(1), second)
		mustGet(t, h.store, testKey(1), second)
	})

	t.Run("RefusesInvalid", func(t *testing.T) {
		h := newHarness(t)
		for name, e := range map[string]*Entry{
			"no producer":      {Object: []byte("x"), ObjectDigest: testEntry(0, "", 1).ObjectDigest},
			"digest mismatch":  {Object: []byte("x"), ObjectDigest: make([]byte, 32), Producer: "sun1"},
			"object no digest": {Object: []byte("x"), Producer: "sun1"},
		} {
			if err := h.store.Put(ctx, testKey(1), e); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Put = %v, want ErrInvalid", name, err)
			}
		}
		mustMiss(t, h.store, testKey(1))
	})

	t.Run("Corrupt", func(t *testing.T) {
		h := newHarness(t)
		mutations := []struct {
			name string
			f    func([]byte) []byte
		}{
			{"flip in object", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
			{"flip in header", func(b []byte) []byte { b[40] ^= 1; return b }},
			{"flip in digest", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
			{"truncated", func(b []byte) []byte { return b[:len(b)-100] }},
			{"cut to a few bytes", func(b []byte) []byte { return b[:7] }},
			{"appended", func(b []byte) []byte { return append(b, 0) }},
			{"another key's entry", func([]byte) []byte {
				b, _ := testEntry(1, "sun1", 2000).Marshal(testKey(77))
				return b
			}},
		}
		for i, m := range mutations {
			k := testKey(100 + i)
			mustPut(t, h.store, k, testEntry(1, "sun1", 2000))
			h.rewrite(t, k, m.f)
			err := mustMiss(t, h.store, k)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: Get = %v, want a miss wrapping ErrCorrupt", m.name, err)
			}
			// Dropped: the next Get is a plain miss, and a Put mends it.
			if err := mustMiss(t, h.store, k); err != ErrMiss {
				t.Errorf("%s: second Get = %v, want a plain miss", m.name, err)
			}
			mustPut(t, h.store, k, testEntry(1, "sun1", 2000))
			mustGet(t, h.store, k, testEntry(1, "sun1", 2000))
		}
		st := h.store.Stats()
		if st.Corrupt != int64(len(mutations)) || st.Hits != int64(len(mutations)) || st.Misses != 2*int64(len(mutations)) {
			t.Fatalf("stats %+v, want %d corrupt", st, len(mutations))
		}
	})

	t.Run("PurgeProducer", func(t *testing.T) {
		h := newHarness(t)
		for i := range 5 {
			mustPut(t, h.store, testKey(i), testEntry(i, "bad-host", 1000))
		}
		for i := 5; i < 8; i++ {
			mustPut(t, h.store, testKey(i), testEntry(i, "good-host", 1000))
		}
		// Key 0 was redone by a good host: it is the good host's now.
		mustPut(t, h.store, testKey(0), testEntry(0, "good-host", 1000))
		n, err := h.store.PurgeProducer(ctx, "bad-host")
		if err != nil {
			t.Fatal(err)
		}
		// The Redis store may count key 0 (still in bad-host's set): purging
		// more than asked is safe, fewer is not.
		if n != 4 && n != 5 {
			t.Fatalf("purged %d entries, want 4 (or 5 with the overwritten one)", n)
		}
		for i := 1; i < 5; i++ {
			mustMiss(t, h.store, testKey(i))
		}
		for i := 5; i < 8; i++ {
			mustGet(t, h.store, testKey(i), testEntry(i, "good-host", 1000))
		}
		if n, err := h.store.PurgeProducer(ctx, "bad-host"); n != 0 || err != nil {
			t.Fatalf("second purge: %d, %v", n, err)
		}
		// Purged entries stay purged across a restart.
		s := h.reopen(t)
		for i := 1; i < 5; i++ {
			mustMiss(t, s, testKey(i))
		}
		mustGet(t, s, testKey(6), testEntry(6, "good-host", 1000))
	})

	t.Run("Clear", func(t *testing.T) {
		h := newHarness(t)
		for i := range 10 {
			mustPut(t, h.store, testKey(i), testEntry(i, "sun1", 1000))
		}
		if err := h.store.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			mustMiss(t, h.store, testKey(i))
		}
		mustPut(t, h.store, testKey(3), testEntry(3, "sun1", 1000))
		mustGet(t, h.store, testKey(3), testEntry(3, "sun1", 1000))
		s := h.reopen(t)
		mustGet(t, s, testKey(3), testEntry(3, "sun1", 1000))
		mustMiss(t, s, testKey(4))
	})

	t.Run("SurvivesReopen", func(t *testing.T) {
		h := newHarness(t)
		for i := range 20 {
			mustPut(t, h.store, testKey(i), testEntry(i, "sun1", 5000))
		}
		s := h.reopen(t)
		for i := range 20 {
			mustGet(t, s, testKey(i), testEntry(i, "sun1", 5000))
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		h := newHarness(t)
		const keys, workers, ops = 16, 8, 60
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for op := range ops {
					i := (w*7 + op*5) % keys
					want := testEntry(i, "sun1", 4000+i)
					switch op % 3 {
					case 0:
						if err := h.store.Put(ctx, testKey(i), want); err != nil {
							errs <- err
							return
						}
					default:
						got, err := h.store.Get(ctx, testKey(i))
						if err == nil && !equalEntry(got, want) {
							errs <- fmt.Errorf("key %d: wrong entry", i)
							return
						}
						if err != nil && err != ErrMiss {
							errs <- fmt.Errorf("key %d: %v", i, err)
							return
						}
					}
					if op == ops/2 && w == 0 {
						if _, err := h.store.PurgeProducer(ctx, "nobody"); err != nil {
							errs <- err
							return
						}
					}
					_ = h.store.Stats()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range keys {
			mustGet(t, h.store, testKey(i), testEntry(i, "sun1", 4000+i))
		}
	})

	t.Run("Closed", func(t *testing.T) {
		h := newHarness(t)
		mustPut(t, h.store, testKey(1), testEntry(1, "sun1", 100))
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}
		if err := mustMiss(t, h.store, testKey(1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close = %v", err)
		}
		if err := h.store.Put(ctx, testKey(2), testEntry(2, "sun1", 100)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close = %v", err)
		}
		if err := h.store.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
	})
}
