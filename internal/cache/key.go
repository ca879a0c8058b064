package cache

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"

	"github.com/zeebo/blake3"
)

// keyContext is the BLAKE3 derive-key context of ComputeKey. It pins the
// hash and the field layout below: a change to either must change it, so
// that no key computed the old way can collide with one computed the new way.
const keyContext = "dcc-farm 2026 compile cache key v1"

// Key names one compile's result: a BLAKE3 digest of everything the object
// depends on (see ComputeKey).
type Key [32]byte

// String returns the key in lower-case hex, as used in file names and Redis keys.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ParseKey is the inverse of Key.String.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != 2*len(k) {
		return k, errors.New("cache: key is not 64 hex digits")
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, errors.New("cache: key is not 64 hex digits")
	}
	return k, nil
}

// KeyInput is everything a cached object may depend on. Two compiles whose
// inputs are equal field by field must produce interchangeable results; a
// field the object depends on but that is missing here is a wrong hit
// waiting to happen (ccache's -g directory bug, sccache's ignored -D), so
// when in doubt, put it in Extra.
type KeyInput struct {
	// Salt comes first. Bumping it (an admin setting) disowns every entry
	// written before, e.g. after a poisoned result or a key bug.
	Salt string
	// CompilerFingerprint is the target triple and version line of `cc -v`.
	CompilerFingerprint string
	// CompilerDigest is a content digest of the compiler binary: two builds
	// with the same version line are not the same compiler.
	CompilerDigest []byte
	// Driver is the driver the client runs (gcc, g++, cc...).
	Driver string
	// Lang, Ext and Kind are the language, the shipped source's extension
	// and what is produced (.o or .s).
	Lang, Ext, Kind string
	// Args are the remote compile arguments in order: gcc gives order a
	// meaning (the last -O wins, -f and -fno- cancel), so order is hashed.
	Args []string
	// SourceDigest is the digest of the exact preprocessed bytes shipped.
	SourceDigest []byte
	// Extra holds whatever else the object depends on, hashed sorted by key:
	// the working directory for -g without prefix maps, the output base name
	// (it ends up in .file), an allow-listed environment variable.
	Extra map[string]string
}

// ComputeKey hashes in with BLAKE3 (derive-key mode, context keyContext).
// The hashed message is, in this order, every field written as an 8-byte
// big-endian length followed by its bytes:
//
//	Salt, CompilerFingerprint, CompilerDigest, Driver, Lang, Ext, Kind,
//	len(Args) as 8 bytes, then each argument,
//	SourceDigest,
//	len(Extra) as 8 bytes, then each (name, value) pair sorted by name.
//
// The length prefixes make the message injective: ["-D", "x"] and ["-Dx"],
// or a value moved from one field to the next, hash differently. A nil and
// an empty slice or map are the same input.
func ComputeKey(in KeyInput) Key {
	h := blake3.NewDeriveKey(keyContext)
	var n [8]byte
	length := func(l int) {
		binary.BigEndian.PutUint64(n[:], uint64(l))
		h.Write(n[:])
	}
	str := func(s string) { length(len(s)); h.WriteString(s) }
	byt := func(b []byte) { length(len(b)); h.Write(b) }

	str(in.Salt)
	str(in.CompilerFingerprint)
	byt(in.CompilerDigest)
	str(in.Driver)
	str(in.Lang)
	str(in.Ext)
	str(in.Kind)
	length(len(in.Args))
	for _, a := range in.Args {
		str(a)
	}
	byt(in.SourceDigest)
	names := make([]string, 0, len(in.Extra))
	for name := range in.Extra {
		names = append(names, name)
	}
	slices.Sort(names)
	length(len(names))
	for _, name := range names {
		str(name)
		str(in.Extra[name])
	}
	var k Key
	h.Sum(k[:0])
	return k
}
