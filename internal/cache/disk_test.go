package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

// openTestDisk opens a Disk whose index is flushed only when a test (or
// Close) says so.
func openTestDisk(t *testing.T, dir string, maxBytes int64) *Disk {
	t.Helper()
	d, err := openDisk(dir, maxBytes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func diskHarness(t *testing.T) *harness {
	dir := t.TempDir()
	h := &harness{store: openTestDisk(t, dir, 1<<30)}
	h.rewrite = func(t *testing.T, k Key, f func([]byte) []byte) {
		p := h.store.(*Disk).blobPath(k)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.reopen = func(t *testing.T) Store {
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}
		h.store = openTestDisk(t, dir, 1<<30)
		return h.store
	}
	return h
}

func TestDiskConformance(t *testing.T) { runConformance(t, diskHarness) }

// blobBytes is what the blobs in dir take on disk, by the filesystem's count.
func blobBytes(t *testing.T, dir string) (files int, allocated int64) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		files++
		allocated += charge(st.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, allocated
}

func TestDiskEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	one := charge(int64(testEntry(0, "sun1", 20_000).Size()))
	maxBytes := 10 * one
	d := openTestDisk(t, dir, maxBytes)
	for i := range 40 {
		mustPut(t, d, testKey(i), testEntry(i, "sun1", 20_000))
		// Entry 0 is used all the time: it must never be the one evicted.
		mustGet(t, d, testKey(0), testEntry(0, "sun1", 20_000))
		if st := d.Stats(); st.Bytes > maxBytes {
			t.Fatalf("after %d puts the store holds %d bytes, bound %d", i+1, st.Bytes, maxBytes)
		}
		if files, allocated := blobBytes(t, dir); allocated > maxBytes || int64(files) != d.Stats().Entries {
			t.Fatalf("after %d puts: %d blobs, %d bytes on disk; stats %+v", i+1, files, allocated, d.Stats())
		}
	}
	st := d.Stats()
	if st.Entries != 10 || st.Evictions != 30 {
		t.Fatalf("stats %+v, want 10 entries and 30 evictions", st)
	}
	mustGet(t, d, testKey(0), testEntry(0, "sun1", 20_000))
	for i := 31; i < 40; i++ { // the nine most recent beside entry 0
		mustGet(t, d, testKey(i), testEntry(i, "sun1", 20_000))
	}
	for i := 1; i < 31; i++ {
		mustMiss(t, d, testKey(i))
	}
	// Larger than the whole bound: refused, nothing evicted for it.
	if err := d.Put(context.Background(), testKey(99), testEntry(99, "sun1", int(maxBytes))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put of an entry above the bound = %v", err)
	}
	if st := d.Stats(); st.Entries != 10 {
		t.Fatalf("refused Put changed the store: %+v", st)
	}
}

func TestDiskLRUOrderAndBoundSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	one := charge(int64(testEntry(0, "sun1", 10_000).Size()))
	d := openTestDisk(t, dir, 100*one)
	for i := 1; i <= 5; i++ {
		mustPut(t, d, testKey(i), testEntry(i, "sun1", 10_000))
	}
	mustGet(t, d, testKey(1), testEntry(1, "sun1", 10_000)) // now 2,3,4,5,1 from oldest
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened with room for three: the two least recently used go at once.
	d = openTestDisk(t, dir, 3*one)
	if st := d.Stats(); st.Entries != 3 || st.Bytes > 3*one || st.Evictions != 2 {
		t.Fatalf("stats after reopen %+v", st)
	}
	for _, i := range []int{2, 3} {
		mustMiss(t, d, testKey(i))
	}
	for _, i := range []int{4, 5, 1} {
		mustGet(t, d, testKey(i), testEntry(i, "sun1", 10_000))
	}
	if _, allocated := blobBytes(t, dir); allocated > 3*one {
		t.Fatalf("%d bytes of blobs on disk, bound %d", allocated, 3*one)
	}
}

// lastTx is the id of the index's last committed write transaction.
func lastTx(t *testing.T, d *Disk) int {
	t.Helper()
	var id int
	if err := d.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDiskGetsDoNotWriteTheIndex(t *testing.T) {
	d := openTestDisk(t, t.TempDir(), 1<<30)
	for i := range 10 {
		mustPut(t, d, testKey(i), testEntry(i, "sun1", 1000))
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	before := lastTx(t, d)
	for range 50 {
		for i := range 10 {
			mustGet(t, d, testKey(i), testEntry(i, "sun1", 1000))
		}
	}
	if after := lastTx(t, d); after != before {
		t.Fatalf("500 Gets committed %d index transactions", after-before)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if after := lastTx(t, d); after != before+1 {
		t.Fatalf("one flush committed %d transactions", after-before)
	}
}

// TestDiskRecoversFromAnUncleanState builds by hand what a crash leaves
// (an orphan blob, a temporary file, a half-deleted trash, a record whose
// blob is gone, a record that an unflushed overwrite made stale) and checks
// that open makes the store consistent and serves only what it should.
func TestDiskRecoversFromAnUncleanState(t *testing.T) {
	dir := t.TempDir()
	d := openTestDisk(t, dir, 1<<30)
	for i := range 4 {
		mustPut(t, d, testKey(i), testEntry(i, "sun1", 3000))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	write := func(p string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	orphan, _ := testEntry(50, "sun1", 3000).Marshal(testKey(50))
	write(d.blobPath(testKey(50)), orphan)
	write(filepath.Join(dir, "tmp", "put-123"), []byte("half a blob"))
	write(filepath.Join(dir, "trash-1", "ab", "cd"), []byte("x"))
	write(filepath.Join(dir, "objects", "zz", "junk"), []byte("x"))
	if err := os.Remove(d.blobPath(testKey(1))); err != nil {
		t.Fatal(err)
	}
	// Key 2 was overwritten by another host, same size, index not updated.
	stale, _ := testEntry(2, "sun2", 3000).Marshal(testKey(2))
	write(d.blobPath(testKey(2)), stale)

	d = openTestDisk(t, dir, 1<<30)
	if st := d.Stats(); st.Entries != 3 {
		t.Fatalf("stats after recovery %+v, want the 3 entries that have blobs", st)
	}
	for _, p := range []string{d.blobPath(testKey(50)), filepath.Join(dir, "tmp", "put-123"), filepath.Join(dir, "trash-1"), filepath.Join(dir, "objects", "zz")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived recovery: %v", p, err)
		}
	}
	mustMiss(t, d, testKey(50))
	mustMiss(t, d, testKey(1))
	if err := mustMiss(t, d, testKey(2)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an entry whose producer disagrees with its record was not refused as corrupt: %v", err)
	}
	mustGet(t, d, testKey(0), testEntry(0, "sun1", 3000))
	mustGet(t, d, testKey(3), testEntry(3, "sun1", 3000))
	files, allocated := blobBytes(t, dir)
	if st := d.Stats(); int64(files) != st.Entries || allocated != st.Bytes {
		t.Fatalf("%d blobs of %d bytes on disk, stats %+v", files, allocated, st)
	}
}

// TestDiskRecoversFromACrash kills a real process in the middle of its
// work: it puts entries, flushes the index, puts more and overwrites some,
// and exits without closing. The reopened store must be consistent: every
// entry it lists hits and is right, and no blob is left that it does not list.
func TestDiskRecoversFromACrash(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DCC_CACHE_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	d := openTestDisk(t, dir, 1<<30)
	st := d.Stats()
	if st.Entries < 10 {
		t.Fatalf("stats %+v: the 10 flushed entries were lost", st)
	}
	for i := range 20 {
		got, err := d.Get(context.Background(), testKey(i))
		if i < 10 && err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flushed entry %d: %v", i, err)
		}
		if err == nil && !equalEntry(got, testEntry(i, got.Producer, 3000)) {
			t.Fatalf("entry %d is not what was put", i)
		}
	}
	files, allocated := blobBytes(t, dir)
	if st := d.Stats(); int64(files) != st.Entries || allocated != st.Bytes {
		t.Fatalf("%d blobs of %d bytes on disk, stats %+v", files, allocated, st)
	}
}

// TestMain runs crashChild instead of the tests when
// TestDiskRecoversFromACrash starts the test binary as its child.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DCC_CACHE_CRASH_DIR"); dir != "" {
		crashChild(dir)
	}
	// Every store's goroutines (the index flusher, the stats reader,
	// go-redis's pool) must be gone once the tests have closed them.
	goleak.VerifyTestMain(m)
}

// crashChild is the process TestDiskRecoversFromACrash kills: it exits 3
// in the middle of its work, or 2 if the work failed before that.
func crashChild(dir string) {
	d, err := openDisk(dir, 1<<30, time.Hour)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	put := func(i int, producer string) {
		if err := d.Put(context.Background(), testKey(i), testEntry(i, producer, 3000)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	for i := range 10 {
		put(i, "sun1")
	}
	if err := d.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 10; i < 20; i++ {
		put(i, "sun1")
	}
	for i := 5; i < 10; i++ { // overwrites the index never hears of
		put(i, "sun2")
	}
	os.Exit(3)
}

func TestDiskSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	openTestDisk(t, dir, 1<<30)
	if d, err := OpenDisk(dir, 1<<30); err == nil {
		d.Close()
		t.Fatal("a second OpenDisk of one directory succeeded")
	}
}

// TestDiskConcurrentChurn runs Gets, Puts (evicting), purges and a Clear
// at once on a small store. Every hit must be the right entry, and once
// the dust settles memory, index and disk must agree.
func TestDiskConcurrentChurn(t *testing.T) {
	dir := t.TempDir()
	one := charge(int64(testEntry(0, "sun1", 8000).Size()))
	d := openTestDisk(t, dir, 8*one)
	ctx := context.Background()
	producers := []string{"sun1", "sun2", "desk12"}
	done := make(chan error, 6)
	for w := range 6 {
		go func() {
			for op := range 150 {
				i := (w*13 + op*7) % 24
				p := producers[i%len(producers)]
				switch {
				case op%4 == 0:
					if err := d.Put(ctx, testKey(i), testEntry(i, p, 8000)); err != nil {
						done <- err
						return
					}
				case w == 0 && op == 75:
					if err := d.Clear(ctx); err != nil {
						done <- err
						return
					}
				case w == 1 && op%50 == 0:
					if _, err := d.PurgeProducer(ctx, "desk12"); err != nil {
						done <- err
						return
					}
				case w == 2 && op%40 == 0:
					if err := d.Flush(); err != nil {
						done <- err
						return
					}
				default:
					got, err := d.Get(ctx, testKey(i))
					if err == nil && !equalEntry(got, testEntry(i, p, 8000)) {
						done <- fmt.Errorf("key %d: wrong entry", i)
						return
					}
					if err != nil && err != ErrMiss {
						done <- fmt.Errorf("key %d: %v", i, err)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 6 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	st := d.Stats()
	if st.Bytes > 8*one || st.Corrupt != 0 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	files, allocated := blobBytes(t, dir)
	if int64(files) != st.Entries || allocated != st.Bytes {
		t.Fatalf("%d blobs of %d bytes on disk, stats %+v", files, allocated, st)
	}
	d = openTestDisk(t, dir, 8*one)
	if again := d.Stats(); again.Entries != st.Entries || again.Bytes != st.Bytes {
		t.Fatalf("reopened with %+v, closed with %+v", again, st)
	}
}
