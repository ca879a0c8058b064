package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/zeebo/blake3"
)

// entryContext is the BLAKE3 derive-key context of an entry's integrity
// digest, distinct from keyContext so a digest can never pass for a key.
const entryContext = "dcc-farm 2026 compile cache entry v1"

// entryMagic starts every encoded entry; its last byte is the layout version.
var entryMagic = [4]byte{'d', 'c', 'E', '1'}

// Limits on an entry. A compile's result reaches the broker in one job
// frame (wire.MaxJobFrame, 64 MiB), so no honest entry carries more; an
// encoding that claims more is corrupt and is refused before any allocation.
const (
	// MaxResultBytes bounds len(Object)+len(Stdout)+len(Stderr).
	MaxResultBytes = 64 << 20
	// MaxProducerLen bounds Producer (a host name is at most 253 bytes).
	MaxProducerLen = 255
	// MaxEncodedSize bounds a whole encoded entry.
	MaxEncodedSize = entryOverhead + MaxProducerLen + sha256.Size + MaxResultBytes
)

// entryOverhead is the size of an encoded entry with empty fields: magic,
// key, time, exit code, the five length fields and the trailing digest.
const entryOverhead = 4 + 32 + 8 + 4 + 1 + 1 + 4 + 4 + 4 + 32

// Entry is one cached compile result, as a volunteer produced it.
type Entry struct {
	Object   []byte // the .o or .s; empty when the compile failed
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	// Producer is the farm host that compiled it: PurgeProducer removes a
	// host's entries when it is found producing wrong objects.
	Producer   string
	ProducedAt time.Time
	// ObjectDigest is the SHA-256 of Object, as on the wire
	// (wire.JobResult.Digest), so a client can check a hit the way it checks
	// a fresh result. Required when Object is not empty.
	ObjectDigest []byte
}

// Size is the length of e's encoding, the bytes a store spends on it.
func (e *Entry) Size() int {
	return entryOverhead + len(e.Producer) + len(e.ObjectDigest) + len(e.Object) + len(e.Stdout) + len(e.Stderr)
}

// validate refuses an entry a store must not keep: one that could not be
// purged (no producer), whose object does not match its digest, or that
// exceeds the limits Unmarshal enforces.
func (e *Entry) validate() error {
	switch {
	case e.Producer == "":
		return fmt.Errorf("%w: no producer", ErrInvalid)
	case len(e.Producer) > MaxProducerLen:
		return fmt.Errorf("%w: producer longer than %d bytes", ErrInvalid, MaxProducerLen)
	case len(e.Object)+len(e.Stdout)+len(e.Stderr) > MaxResultBytes:
		return fmt.Errorf("%w: result larger than %d bytes", ErrInvalid, MaxResultBytes)
	case e.ExitCode < math.MinInt32 || e.ExitCode > math.MaxInt32:
		return fmt.Errorf("%w: exit code %d out of range", ErrInvalid, e.ExitCode)
	case len(e.Object) > 0 && len(e.ObjectDigest) == 0:
		return fmt.Errorf("%w: object without a digest", ErrInvalid)
	case len(e.ObjectDigest) != 0:
		if sum := sha256.Sum256(e.Object); !bytes.Equal(sum[:], e.ObjectDigest) {
			return fmt.Errorf("%w: object does not match its digest", ErrInvalid)
		}
	}
	return nil
}

// Marshal encodes e as the entry stored under k:
//
//	off  len  field
//	0    4    magic "dcE1" (the last byte is the layout version)
//	4    32   k: an entry is bound to its key, so a blob filed under the
//	          wrong name is as corrupt as a flipped bit
//	36   8    ProducedAt, Unix nanoseconds, big-endian (0: zero time)
//	44   4    ExitCode, big-endian int32
//	48   1+n  Producer, its length in one byte
//	     1+n  ObjectDigest, likewise
//	     4+n  Object, its length as a big-endian uint32
//	     4+n  Stdout, likewise
//	     4+n  Stderr, likewise
//	end  32   BLAKE3 (derive-key, entryContext) of every byte before it
//
// It refuses (ErrInvalid) an entry without a producer, whose object does not
// match ObjectDigest, or that exceeds the limits above.
func (e *Entry) Marshal(k Key) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, e.Size())
	b = append(b, entryMagic[:]...)
	b = append(b, k[:]...)
	var ns int64
	if !e.ProducedAt.IsZero() {
		ns = e.ProducedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(ns))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(e.ExitCode)))
	b = append(b, byte(len(e.Producer)))
	b = append(b, e.Producer...)
	b = append(b, byte(len(e.ObjectDigest)))
	b = append(b, e.ObjectDigest...)
	for _, f := range [][]byte{e.Object, e.Stdout, e.Stderr} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	d := entryDigest(b)
	return append(b, d[:]...), nil
}

func entryDigest(b []byte) [32]byte {
	h := blake3.NewDeriveKey(entryContext)
	h.Write(b)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Unmarshal decodes an entry Marshal produced for k, checking its digest
// first and every length against the bytes that remain. Any mismatch (a
// flipped bit, a truncation, an entry for another key, a length beyond the
// limits) is an error wrapping ErrCorrupt. The entry's byte slices share b.
func Unmarshal(k Key, b []byte) (*Entry, error) {
	if len(b) < entryOverhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than any entry", ErrCorrupt, len(b))
	}
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %d bytes is longer than any entry", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if d := entryDigest(body); !bytes.Equal(d[:], sum) {
		return nil, fmt.Errorf("%w: digest mismatch", ErrCorrupt)
	}
	// The digest matched, so what follows is what Marshal wrote, unless the
	// writer was not Marshal: keep every check.
	if !bytes.Equal(body[:4], entryMagic[:]) {
		return nil, fmt.Errorf("%w: bad magic %q", ErrCorrupt, body[:4])
	}
	if !bytes.Equal(body[4:36], k[:]) {
		return nil, fmt.Errorf("%w: entry of key %x filed under %s", ErrCorrupt, body[4:36], k)
	}
	e := &Entry{ExitCode: int(int32(binary.BigEndian.Uint32(body[44:48])))}
	if ns := int64(binary.BigEndian.Uint64(body[36:44])); ns != 0 {
		e.ProducedAt = time.Unix(0, ns)
	}
	r := reader{b: body[48:]}
	e.Producer = string(r.field(1))
	e.ObjectDigest = r.field(1)
	e.Object = r.field(4)
	e.Stdout = r.field(4)
	e.Stderr = r.field(4)
	if r.bad || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: lengths do not add up", ErrCorrupt)
	}
	if len(e.Producer) == 0 || len(e.Object)+len(e.Stdout)+len(e.Stderr) > MaxResultBytes {
		return nil, fmt.Errorf("%w: fields out of bounds", ErrCorrupt)
	}
	return e, nil
}

// reader takes length-prefixed fields off b; once a length overruns b it
// stays bad and returns nothing.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) field(width int) []byte {
	if r.bad || len(r.b) < width {
		r.bad = true
		return nil
	}
	var n uint64
	for _, c := range r.b[:width] {
		n = n<<8 | uint64(c)
	}
	r.b = r.b[width:]
	if n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return nil
	}
	return f
}

// Errors returned by stores and by Marshal/Unmarshal.
var (
	// ErrMiss: no entry. Every error Get returns wraps ErrMiss, so a caller
	// can treat "errors.Is(err, ErrMiss)" as "compile it", and log err when
	// it says more than that (a timeout, ErrClosed, an I/O error).
	ErrMiss = errors.New("cache: miss")
	// ErrCorrupt: stored bytes that are not a valid entry for their key.
	ErrCorrupt = errors.New("cache: corrupt entry")
	// ErrInvalid: Put was given an entry a store must not keep.
	ErrInvalid = errors.New("cache: invalid entry")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("cache: store closed")
)
