// Package buildinfo names the running build, so that a dcc process can tell
// whether its agent is the same program.
package buildinfo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// Version is set at link time (-ldflags "-X ...buildinfo.Version=...").
var Version = "dev"

var (
	once sync.Once
	id   string
)

// ID identifies this exact binary: the version plus a digest of the
// executable's path, size, modification time and inode, so that a rebuilt
// or reinstalled dcc never talks to an agent of an older build. It costs
// one stat, not a read of the binary: every compile computes it.
func ID() string {
	once.Do(func() {
		id = Version
		if exe, err := os.Executable(); err == nil {
			id = Of(exe)
		}
	})
	return id
}

// Of is ID for the binary at path, as that binary computes it for itself
// (dcc names its agent's build, dcc-agent, this way).
func Of(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return Version
	}
	var ino uint64
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = s.Ino
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano(), ino))
	return Version + "-" + hex.EncodeToString(h[:6])
}
