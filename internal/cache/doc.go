// Package cache owns the farm's shared compile result cache: the key that
// names a compile (ComputeKey), the binary encoding of its result (Entry,
// Marshal, Unmarshal), and the stores that keep results: Disk, embedded in
// the broker's state directory, and Redis, for several brokers sharing one
// cache.
//
// Only farm hosts' results are stored: the broker writes what a volunteer
// produced and serves hits to clients; clients never write, since whoever
// can write a shared cache can hand anyone any object. Every entry carries
// a digest over its whole encoding, bound to its key, checked on every
// read: a flipped bit, a truncated blob or a blob filed under the wrong key
// is dropped, counted in Stats.Corrupt and reported as a miss, never handed
// to a compile. Entries are filed by producer, so when a host is found
// producing wrong objects PurgeProducer removes everything it ever wrote.
//
// A cache never fails a compile: every error from Get wraps ErrMiss, and
// the Redis store answers within a bounded time even when Redis hangs.
//
// BLAKE3 hashes both keys and entries: over 1 MiB it ran at 2.4 GB/s
// against SHA-256's 1.3 GB/s on the development machine (BenchmarkDigest),
// an AMD EPYC whose SHA-NI instructions are SHA-256's best case.
package cache
