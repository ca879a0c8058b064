package cache

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultDiskSize is the broker's default --cache-size.
const DefaultDiskSize = 10 << 30

const (
	// blockSize is the unit a blob is charged in: a file occupies whole
	// filesystem blocks, so charging len(blob) would let 10 GiB of 1 KB
	// entries take 40 GiB of disk.
	blockSize = 4096
	// indexFlushInterval is how far the index may lag memory. A crash
	// loses at most this much of the index: entries put since become
	// orphan blobs (deleted at open), entries read since forget they were.
	indexFlushInterval = time.Second
	// recordVersion starts every index record.
	recordVersion = 1
)

var bucketEntries = []byte("entries")

// Disk is the embedded store for the broker's state directory:
//
//	DIR/index.db          bbolt: key -> record version, blob size, last access, producer
//	DIR/objects/ab/<hex>  one blob per entry (Entry.Marshal), named by its key
//	DIR/tmp/              Puts in flight; emptied at open
//	DIR/trash-<n>/        a cleared objects/ being deleted; removed at open
//
// Blobs are files rather than bbolt values (BenchmarkBoltValues against
// BenchmarkDisk, 50 KB objects, on a shared 2-core machine): a bbolt Put is
// an fsync'd transaction, 2.3 to 8 ms, against 0.3 to 1.2 ms for a temporary
// file and a rename; Gets cost about the same (90 to 180 µs against 115 to
// 145 µs, most of it reading 50 KB and checking its digest); space is about
// the same (54.8 MB of file per 1,000 entries against 53.2 MB of blobs, each
// rounded to 4 KiB blocks, plus 0.2 MB of index). And a bbolt file never
// shrinks: after a Clear or a purge a 10 GiB cache would stay a 10 GiB file,
// mapped into the broker's memory. The index is small and holds what open
// needs to rebuild the LRU order and the producers without reading blobs.
//
// Memory is authoritative while the store is open. The index follows it
// within indexFlushInterval, in one transaction for all the changes since
// the last flush, so a Get is never a disk write. Blobs are not fsync'd:
// after a crash an entry may be missing or torn, and the digest check drops
// it, which is cheaper than an fsync per Put for data that can be rebuilt by
// compiling. Open reconciles the two sides: a blob without a record (a Put
// the index had not caught up with) is deleted, a record without a blob
// forgotten. A record that disagrees with its blob (an overwrite the index
// missed) is caught on read: Get checks the blob's size and producer against
// the record, so no entry is ever served under a producer PurgeProducer
// would not find.
//
// The size bound counts blobs in 4 KiB blocks (Stats.Bytes); the index adds
// about 200 bytes an entry on top. Eviction is least recently used, and the
// order survives restarts: each access takes the next number of a counter
// stored in the record.
type Disk struct {
	dir      string
	maxBytes int64
	db       *bolt.DB

	// flushMu makes one index write at a time, each from a snapshot taken
	// under mu after the previous one's, so records are never written out
	// of order. It is taken before mu.
	flushMu sync.Mutex

	mu      sync.Mutex
	entries map[Key]*diskEntry
	// lru is the sentinel of a ring of every entry in entries: lru.next is
	// the most recently used, lru.prev the next to evict.
	lru   diskEntry
	bytes int64  // sum of charge(e.size) over entries
	seq   uint64 // the last access number handed out; entries' seq are ≤ it
	// dirty holds the keys whose index record lags memory: written (or
	// deleted, if no longer in entries) by the next flush.
	dirty  map[Key]struct{}
	closed bool

	hits, misses, evictions, corrupt, puts, errs atomic.Int64

	stop chan struct{} // closed by Close to stop flushLoop
	done chan struct{} // closed by flushLoop when it returns
}

// diskEntry is the in-memory index record of one blob.
type diskEntry struct {
	key      Key
	size     int64 // the blob's length in bytes
	producer string
	seq      uint64 // last access; higher is more recent
	prev     *diskEntry
	next     *diskEntry
}

var _ Store = (*Disk)(nil)

// OpenDisk opens (creating if needed) the store in dir, bounded to maxBytes
// of blobs. It evicts down to maxBytes at once if the bound shrank since the
// last run. Only one process may have a directory open; a second one fails
// within a second.
func OpenDisk(dir string, maxBytes int64) (*Disk, error) {
	return openDisk(dir, maxBytes, indexFlushInterval)
}

// openDisk is OpenDisk with the index flush interval chosen (tests make it
// long, to see what a Get writes without a timer flushing behind them).
func openDisk(dir string, maxBytes int64, flushEvery time.Duration) (*Disk, error) {
	if maxBytes < blockSize {
		return nil, fmt.Errorf("cache: size bound %d bytes is below one block", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	// The index's file lock is taken before anything else is touched, so a
	// second broker on the same directory cannot delete the first one's Puts.
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("cache: open index: %w", err)
	}
	d := &Disk{
		dir:      dir,
		maxBytes: maxBytes,
		db:       db,
		entries:  make(map[Key]*diskEntry),
		dirty:    make(map[Key]struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	d.lru.next, d.lru.prev = &d.lru, &d.lru
	if err := d.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: open %s: %w", dir, err)
	}
	go d.flushLoop(flushEvery)
	return d, nil
}

// recover rebuilds memory from the index and the blobs, reconciles them,
// and enforces the size bound.
func (d *Disk) recover() error {
	for _, p := range []string{"tmp", "trash-*"} {
		matches, _ := filepath.Glob(filepath.Join(d.dir, p))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	if err := os.Mkdir(filepath.Join(d.dir, "tmp"), 0o700); err != nil {
		return err
	}
	if err := makeObjectDirs(filepath.Join(d.dir, "objects")); err != nil {
		return err
	}
	if err := d.loadIndex(); err != nil {
		return err
	}
	if err := d.reconcile(); err != nil {
		return err
	}
	byAge := make([]*diskEntry, 0, len(d.entries))
	for _, e := range d.entries {
		byAge = append(byAge, e)
	}
	slices.SortFunc(byAge, func(a, b *diskEntry) int { return cmp.Compare(a.seq, b.seq) })
	for _, e := range byAge {
		d.pushFront(e)
		d.bytes += charge(e.size)
		d.seq = max(d.seq, e.seq)
	}
	d.evictLocked()
	return d.flush()
}

// isHexByte reports whether name is one of the 256 names makeObjectDirs uses.
func isHexByte(name string) bool {
	return len(name) == 2 && strings.Trim(name, "0123456789abcdef") == ""
}

// makeObjectDirs creates objects/. Its 256 subdirectories are made by the
// first Put that needs each: making them all up front took 0.2 s on the
// test machine, at every first open and every Clear.
func makeObjectDirs(objects string) error {
	return os.MkdirAll(objects, 0o700)
}

// loadIndex reads every record into entries; a record it cannot parse is
// deleted (its blob then goes as an orphan).
func (d *Disk) loadIndex() error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketEntries)
		if err != nil {
			return err
		}
		var bad [][]byte
		err = b.ForEach(func(k, v []byte) error {
			e, ok := decodeRecord(k, v)
			if !ok {
				bad = append(bad, slices.Clone(k))
				return nil
			}
			d.entries[e.key] = e
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range bad {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// reconcile deletes blobs the index does not know (Puts a crash cut short)
// and forgets records whose blob is gone (evictions a crash cut short).
func (d *Disk) reconcile() error {
	objects := filepath.Join(d.dir, "objects")
	found := make(map[Key]struct{}, len(d.entries))
	subs, err := os.ReadDir(objects)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		subPath := filepath.Join(objects, sub.Name())
		if !sub.IsDir() || !isHexByte(sub.Name()) {
			if err := os.RemoveAll(subPath); err != nil {
				return err
			}
			continue
		}
		names, err := os.ReadDir(subPath)
		if err != nil {
			return err
		}
		for _, n := range names {
			k, err := ParseKey(n.Name())
			if err == nil && n.Type().IsRegular() && n.Name()[:2] == sub.Name() && d.entries[k] != nil {
				found[k] = struct{}{}
				continue
			}
			if err := os.RemoveAll(filepath.Join(subPath, n.Name())); err != nil {
				return err
			}
		}
	}
	for k := range d.entries {
		if _, ok := found[k]; !ok {
			delete(d.entries, k)
			d.dirty[k] = struct{}{}
		}
	}
	return nil
}

// Get returns the entry under k, reading its blob and checking its digest,
// size and producer; an entry failing any check is deleted and counted in
// Stats.Corrupt. The context is not consulted: a local read does not hang.
func (d *Disk) Get(_ context.Context, k Key) (*Entry, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrMiss, ErrClosed)
	}
	e := d.entries[k]
	if e == nil {
		d.mu.Unlock()
		d.misses.Add(1)
		return nil, ErrMiss
	}
	d.touchLocked(e)
	size, producer := e.size, e.producer
	d.mu.Unlock()

	ent, err := d.read(k, size, producer)
	if err != nil {
		d.misses.Add(1)
		switch {
		case !errors.Is(err, ErrCorrupt):
			d.errs.Add(1)
		case d.drop(e):
			d.corrupt.Add(1)
		default:
			// Evicted, replaced or cleared while we read it: no fault.
			return nil, ErrMiss
		}
		return nil, fmt.Errorf("%w: %w", ErrMiss, err)
	}
	d.hits.Add(1)
	return ent, nil
}

// read loads and checks the blob of k. A blob that is missing, or whose size
// or producer differs from the record, is reported as ErrCorrupt.
func (d *Disk) read(k Key, size int64, producer string) (*Entry, error) {
	f, err := os.Open(d.blobPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s is missing", ErrCorrupt, k)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != size || size > MaxEncodedSize {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, its record says %d", ErrCorrupt, k, st.Size(), size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		// The file shrank under us: torn by something other than this store.
		return nil, fmt.Errorf("%w: blob %s: %v", ErrCorrupt, k, err)
	}
	ent, err := Unmarshal(k, b)
	if err != nil {
		return nil, err
	}
	if ent.Producer != producer {
		return nil, fmt.Errorf("%w: blob %s was produced by %q, its record says %q", ErrCorrupt, k, ent.Producer, producer)
	}
	return ent, nil
}

// drop deletes e if it is still the entry of its key (a Put may have
// replaced it since it was read) and reports whether it did.
func (d *Disk) drop(e *diskEntry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.entries[e.key] != e {
		return false
	}
	d.removeLocked(e)
	return true
}

// Put stores e under k: the blob goes to a temporary file, then is renamed
// into place under the lock, so readers see the old blob or the new one,
// never a partial one. Entries are evicted, least recently used first,
// until the store is back under its bound. An entry larger than the whole
// bound is refused with ErrInvalid.
func (d *Disk) Put(_ context.Context, k Key, e *Entry) error {
	blob, err := e.Marshal(k)
	if err != nil {
		return err
	}
	if charge(int64(len(blob))) > d.maxBytes {
		return fmt.Errorf("%w: %d bytes do not fit in a %d-byte cache", ErrInvalid, len(blob), d.maxBytes)
	}
	tmp, err := d.writeTemp(blob)
	if err != nil {
		d.errs.Add(1)
		return fmt.Errorf("cache: put %s: %w", k, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		os.Remove(tmp)
		return ErrClosed
	}
	if err := renameIntoPlace(tmp, d.blobPath(k)); err != nil {
		os.Remove(tmp)
		d.errs.Add(1)
		return fmt.Errorf("cache: put %s: %w", k, err)
	}
	if old := d.entries[k]; old != nil {
		// Its blob was just replaced; only the bookkeeping goes.
		d.unlink(old)
		d.bytes -= charge(old.size)
	}
	ne := &diskEntry{key: k, size: int64(len(blob)), producer: e.Producer}
	d.entries[k] = ne
	d.bytes += charge(ne.size)
	d.touchLocked(ne)
	d.puts.Add(1)
	d.evictLocked()
	return nil
}

// renameIntoPlace renames tmp to blob, making blob's directory if needed.
func renameIntoPlace(tmp, blob string) error {
	err := os.Rename(tmp, blob)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(filepath.Dir(blob), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Rename(tmp, blob)
}

func (d *Disk) writeTemp(blob []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "put-")
	if err != nil {
		return "", err
	}
	_, err = f.Write(blob)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// PurgeProducer deletes every entry host produced, and writes the index at
// once: a purge is for wrong objects, which must not come back after a crash.
func (d *Disk) PurgeProducer(_ context.Context, host string) (int, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, ErrClosed
	}
	n := 0
	for _, e := range d.entries {
		if e.producer == host {
			d.removeLocked(e)
			n++
		}
	}
	d.mu.Unlock()
	return n, d.Flush()
}

// Clear deletes every entry. objects/ is renamed aside under the lock (one
// rename, however many blobs) and deleted after it is released.
func (d *Disk) Clear(_ context.Context) error {
	trash, err := d.clearIndex()
	if trash == "" {
		return err
	}
	return errors.Join(err, os.RemoveAll(trash))
}

// clearIndex empties memory and the index and returns where objects/ went.
func (d *Disk) clearIndex() (trash string, err error) {
	// flushMu first: a flush in progress must not write back records
	// after the bucket is emptied.
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return "", ErrClosed
	}
	objects := filepath.Join(d.dir, "objects")
	trash = filepath.Join(d.dir, fmt.Sprintf("trash-%d", time.Now().UnixNano()))
	if err := os.Rename(objects, trash); err != nil {
		d.mu.Unlock()
		return "", fmt.Errorf("cache: clear: %w", err)
	}
	err = makeObjectDirs(objects)
	clear(d.entries)
	clear(d.dirty)
	d.lru.next, d.lru.prev = &d.lru, &d.lru
	d.bytes = 0
	d.mu.Unlock()
	if err != nil {
		return trash, fmt.Errorf("cache: clear: %w", err)
	}
	// Were this to fail, the next open would still forget the records:
	// their blobs are gone.
	return trash, d.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketEntries); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketEntries)
		return err
	})
}

// Stats returns the store's counters.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	n, b := len(d.entries), d.bytes
	d.mu.Unlock()
	return Stats{
		Entries:   int64(n),
		Bytes:     b,
		Hits:      d.hits.Load(),
		Misses:    d.misses.Load(),
		Evictions: d.evictions.Load(),
		Corrupt:   d.corrupt.Load(),
		Puts:      d.puts.Load(),
		Errors:    d.errs.Load(),
	}
}

// Close writes the index and closes the store.
func (d *Disk) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	return errors.Join(d.flush(), d.db.Close())
}

// Flush writes the index records that lag memory now, rather than at the
// next tick.
func (d *Disk) Flush() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return d.flush()
}

func (d *Disk) flushLoop(every time.Duration) {
	defer close(d.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			if d.Flush() != nil {
				d.errs.Add(1)
			}
		}
	}
}

// flush writes the dirty records in one transaction, in key order (bbolt
// fills pages best that way). Called with flushMu held.
func (d *Disk) flush() error {
	type change struct {
		k Key
		v []byte // nil: delete
	}
	d.mu.Lock()
	changes := make([]change, 0, len(d.dirty))
	for k := range d.dirty {
		c := change{k: k}
		if e := d.entries[k]; e != nil {
			c.v = encodeRecord(e)
		}
		changes = append(changes, c)
	}
	clear(d.dirty)
	d.mu.Unlock()
	if len(changes) == 0 {
		return nil
	}
	slices.SortFunc(changes, func(a, b change) int { return bytes.Compare(a.k[:], b.k[:]) })
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		for _, c := range changes {
			var err error
			if c.v == nil {
				err = b.Delete(c.k[:])
			} else {
				err = b.Put(c.k[:], c.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Try again next time, with whatever memory says then.
		d.mu.Lock()
		for _, c := range changes {
			d.dirty[c.k] = struct{}{}
		}
		d.mu.Unlock()
	}
	return err
}

// encodeRecord: version (1 byte), blob size and last access (8 bytes each,
// big-endian), then the producer.
func encodeRecord(e *diskEntry) []byte {
	v := make([]byte, 0, 17+len(e.producer))
	v = append(v, recordVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(e.size))
	v = binary.BigEndian.AppendUint64(v, e.seq)
	return append(v, e.producer...)
}

func decodeRecord(k, v []byte) (*diskEntry, bool) {
	if len(k) != len(Key{}) || len(v) < 18 || v[0] != recordVersion || len(v) > 17+MaxProducerLen {
		return nil, false
	}
	e := &diskEntry{
		size:     int64(binary.BigEndian.Uint64(v[1:9])),
		seq:      binary.BigEndian.Uint64(v[9:17]),
		producer: string(v[17:]),
	}
	if e.size < entryOverhead || e.size > MaxEncodedSize {
		return nil, false
	}
	copy(e.key[:], k)
	return e, true
}

func (d *Disk) blobPath(k Key) string {
	h := k.String()
	return filepath.Join(d.dir, "objects", h[:2], h)
}

// charge is what a blob of size bytes counts against the bound.
func charge(size int64) int64 { return (size + blockSize - 1) / blockSize * blockSize }

// touchLocked marks e as the most recently used entry.
func (d *Disk) touchLocked(e *diskEntry) {
	d.seq++
	e.seq = d.seq
	d.unlink(e)
	d.pushFront(e)
	d.dirty[e.key] = struct{}{}
}

// evictLocked removes least recently used entries until the store is
// within its bound.
func (d *Disk) evictLocked() {
	for d.bytes > d.maxBytes && d.lru.prev != &d.lru {
		d.removeLocked(d.lru.prev)
		d.evictions.Add(1)
	}
}

// removeLocked forgets e and deletes its blob. A blob that cannot be
// deleted is left as an orphan for the next open.
func (d *Disk) removeLocked(e *diskEntry) {
	delete(d.entries, e.key)
	d.unlink(e)
	d.bytes -= charge(e.size)
	d.dirty[e.key] = struct{}{}
	if err := os.Remove(d.blobPath(e.key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.errs.Add(1)
	}
}

func (d *Disk) pushFront(e *diskEntry) {
	e.prev, e.next = &d.lru, d.lru.next
	d.lru.next.prev = e
	d.lru.next = e
}

func (d *Disk) unlink(e *diskEntry) {
	if e.prev == nil {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}
