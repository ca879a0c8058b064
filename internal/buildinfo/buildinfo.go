// Package buildinfo names the running build, so that a dcc process can tell
// whether its agent is the same program.
package buildinfo

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// Version is set at link time (-ldflags "-X ...buildinfo.Version=...").
var Version = "dev"

var (
	once sync.Once
	id   string
)

// ID identifies this exact binary: the version plus a hash of the
// executable, so that a rebuilt dcc never talks to an agent of an older
// build.
func ID() string {
	once.Do(func() {
		id = Version
		if exe, err := os.Executable(); err == nil {
			if f, err := os.Open(exe); err == nil {
				h := sha256.New()
				if _, err := io.Copy(h, f); err == nil {
					id += "-" + hex.EncodeToString(h.Sum(nil))[:12]
				}
				f.Close()
			}
		} else if bi, ok := debug.ReadBuildInfo(); ok {
			id += "-" + bi.Main.Version
		}
	})
	return id
}
