package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkDigest is the measurement behind choosing BLAKE3 for keys and
// entry digests:
//
//	go test ./internal/cache -run '^$' -bench Digest
func BenchmarkDigest(b *testing.B) {
	for _, size := range []int{1 << 20, 50 << 10, 4 << 10} {
		in := make([]byte, size)
		for i := range in {
			in[i] = byte(i * 7)
		}
		b.Run(fmt.Sprintf("blake3/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				blake3.Sum256(in)
			}
		})
		b.Run(fmt.Sprintf("sha256/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				sha256.Sum256(in)
			}
		})
	}
}

const benchObject = 50 << 10

// benchStore measures Get (hit and miss) and Put with 50 KB objects. The
// hits cycle through 1,000 entries, as a build's would.
func benchStore(b *testing.B, s Store) {
	ctx := context.Background()
	const n = 1000
	keys := make([]Key, 3*n)
	for i := range keys {
		keys[i] = testKey(i)
	}
	for i := range n {
		if err := s.Put(ctx, testKey(i), testEntry(i, "sun1", benchObject)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("GetHit", func(b *testing.B) {
		b.SetBytes(benchObject)
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, keys[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetMiss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, keys[n+i%n]); err != ErrMiss {
				b.Fatal(err)
			}
			i++
		}
	})
	entries := make([]*Entry, 100)
	for i := range entries {
		entries[i] = testEntry(i, "sun1", benchObject)
	}
	fresh := 0
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(benchObject)
		for b.Loop() {
			var k Key // a new key each time, as after a miss
			binary.BigEndian.PutUint64(k[:], uint64(fresh))
			if err := s.Put(ctx, k, entries[fresh%len(entries)]); err != nil {
				b.Fatal(err)
			}
			fresh++
		}
	})
	b.Run("PutOverwrite", func(b *testing.B) {
		b.SetBytes(benchObject)
		i := 0
		for b.Loop() {
			if err := s.Put(ctx, keys[i%n], entries[i%len(entries)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkDisk runs the disk store as the broker would (index flushed
// every second):
//
//	go test ./internal/cache -run '^$' -bench 'Disk|Redis'
func BenchmarkDisk(b *testing.B) {
	d, err := OpenDisk(b.TempDir(), DefaultDiskSize)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	benchStore(b, d)
}

// BenchmarkRedis runs the Redis store against a local redis-server.
func BenchmarkRedis(b *testing.B) {
	srv := startRedis(b)
	r := openTestRedis(b, srv.addr, RedisOptions{})
	benchStore(b, r)
}

// BenchmarkDiskSizePer1000 reports what 1,000 entries of 50 KB objects
// take on disk, blobs and index, by the filesystem's block count.
func BenchmarkDiskSizePer1000(b *testing.B) {
	for b.Loop() { // the figures are of one run, reported below
	}
	dir := b.TempDir()
	d, err := OpenDisk(dir, DefaultDiskSize)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := d.Put(context.Background(), testKey(i), testEntry(i, "sun1", benchObject)); err != nil {
			b.Fatal(err)
		}
	}
	charged := d.Stats().Bytes
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
	var blobs, index int64
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		if filepath.Base(p) == "index.db" {
			index += st.Blocks * 512
		} else {
			blobs += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(1000*testEntry(0, "sun1", benchObject).Size()), "entry-bytes/1000")
	b.ReportMetric(float64(charged), "charged-bytes/1000")
	b.ReportMetric(float64(blobs), "blob-bytes/1000")
	b.ReportMetric(float64(index), "index-bytes/1000")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBoltValues measures the layout Disk does not use, every blob a
// value in bbolt, with the same 50 KB objects, so the choice can be checked:
//
//	go test ./internal/cache -run '^$' -bench 'BoltValues|Disk/(GetHit|Put)$'
func BenchmarkBoltValues(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "values.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("entries")
	blob, err := testEntry(0, "sun1", benchObject).Marshal(testKey(0))
	if err != nil {
		b.Fatal(err)
	}
	put := func(i int) {
		var k Key
		binary.BigEndian.PutUint64(k[:], uint64(i))
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return bk.Put(k[:], blob)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	const n = 1000
	for i := range n {
		put(i)
	}
	b.Run("GetHit", func(b *testing.B) {
		b.SetBytes(benchObject)
		i := 0
		for b.Loop() {
			var k Key
			binary.BigEndian.PutUint64(k[:], uint64(i%n))
			db.View(func(tx *bolt.Tx) error {
				_, err := Unmarshal(testKey(0), slices.Clone(tx.Bucket(bucket).Get(k[:])))
				return err
			})
			i++
		}
	})
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(benchObject)
		i := n
		for b.Loop() {
			put(i)
			i++
		}
	})
	b.Run("Size", func(b *testing.B) {
		for b.Loop() { // the figure is of the file as the runs above left it
		}
		st, err := os.Stat(db.Path())
		if err != nil {
			b.Fatal(err)
		}
		var entries int
		db.View(func(tx *bolt.Tx) error { entries = tx.Bucket(bucket).Stats().KeyN; return nil })
		b.ReportMetric(float64(st.Size())/float64(entries)*1000, "file-bytes/1000")
		b.ReportMetric(0, "ns/op")
	})
}
