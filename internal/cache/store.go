package cache

import "context"

// Store keeps compile results. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the entry stored under k. On a miss, and on anything that
	// prevents a hit (a corrupt entry, which is dropped; a timeout; a closed
	// store), it returns an error wrapping ErrMiss: a cache never fails a
	// compile, it only fails to speed it up.
	Get(ctx context.Context, k Key) (*Entry, error)
	// Put stores e under k, replacing any entry there. It refuses an entry
	// Marshal refuses (ErrInvalid), and may drop older entries to make room.
	Put(ctx context.Context, k Key, e *Entry) error
	// PurgeProducer removes every entry host produced and returns how many.
	PurgeProducer(ctx context.Context, host string) (int, error)
	// Clear removes every entry.
	Clear(ctx context.Context) error
	// Stats returns the store's counters without blocking on I/O.
	Stats() Stats
	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// Stats describes a store. Entries and Bytes are the current contents;
// the others count events since the store was opened.
type Stats struct {
	Entries   int64
	Bytes     int64
	Hits      int64
	Misses    int64 // every Get that returned no entry, corrupt ones included
	Evictions int64 // entries dropped to stay under the size bound
	Corrupt   int64 // entries found corrupt on read and dropped
	Puts      int64 // entries stored
	Errors    int64 // calls that failed on I/O or the network (timeouts included)
}
