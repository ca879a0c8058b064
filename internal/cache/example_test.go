package cache_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dcc-farm/dcc/internal/cache"
)

// The broker's side of a cache: look a compile up before scheduling it,
// and store what a volunteer returns.
func Example() {
	dir, _ := os.MkdirTemp("", "cache-example")
	defer os.RemoveAll(dir)
	store, err := cache.OpenDisk(dir, cache.DefaultDiskSize)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	src := sha256.Sum256([]byte("int f(void) { return 1; }\n"))
	k := cache.ComputeKey(cache.KeyInput{
		Salt:                "2026-12",
		CompilerFingerprint: "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14)",
		CompilerDigest:      []byte("digest of /usr/bin/gcc-12"),
		Driver:              "gcc",
		Lang:                "c",
		Ext:                 ".i",
		Kind:                ".o",
		Args:                []string{"-O2", "-c"},
		SourceDigest:        src[:],
		Extra:               map[string]string{"output": "f.o"},
	})
	ctx := context.Background()
	if _, err := store.Get(ctx, k); errors.Is(err, cache.ErrMiss) {
		fmt.Println("miss: schedule the compile")
	}
	obj := []byte("\x7fELF...")
	sum := sha256.Sum256(obj)
	err = store.Put(ctx, k, &cache.Entry{Object: obj, ObjectDigest: sum[:], Producer: "sun1", ProducedAt: time.Now()})
	if err != nil {
		panic(err)
	}
	if e, err := store.Get(ctx, k); err == nil {
		fmt.Printf("hit: %d bytes from %s\n", len(e.Object), e.Producer)
	}
	n, _ := store.PurgeProducer(ctx, "sun1")
	fmt.Println("purged", n)
	// Output:
	// miss: schedule the compile
	// hit: 7 bytes from sun1
	// purged 1
}
