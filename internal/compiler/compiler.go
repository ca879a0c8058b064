// Package compiler identifies compilers: it resolves the compiler a command
// names (skipping dcc's own masquerade symlinks) and computes its
// fingerprint, the target triple plus the full version line, which must
// match exactly between a client and the host that compiles for it.
package compiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Identity is a compiler's fingerprint and target.
type Identity struct {
	Target      string // from -dumpmachine, e.g. x86_64-linux-gnu
	Version     string // first line of --version
	Fingerprint string // Target + " " + Version
	// Digest is the sha256 of the compiler's binary (links followed): part
	// of the result cache's key, so that a hit comes from the very same
	// compiler, not only one that reports the same version.
	Digest []byte
}

// versionLine matches the line of `-v` output that names the version:
// "gcc version 12.2.0 (Debian 12.2.0-14)" or "Debian clang version 14.0.6".
// It does not depend on the name the driver was invoked by, so gcc, cc,
// gcc-12 and x86_64-linux-gnu-gcc-12 of one installation share a
// fingerprint.
var versionLine = regexp.MustCompile(`(^|\s)version\s+[0-9]`)

// Probe runs `compiler -v` once to learn its target and version.
func Probe(ctx context.Context, path string) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-v")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Identity{}, fmt.Errorf("%s -v: %w", path, err)
	}
	id, err := ParseVersionOutput(out.String())
	if err != nil {
		return id, err
	}
	id.Digest, err = fileDigest(path)
	return id, err
}

// fileDigest is the sha256 of the file path names, links followed.
func fileDigest(path string) ([]byte, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// ParseVersionOutput extracts the identity from `compiler -v` output.
func ParseVersionOutput(s string) (Identity, error) {
	var id Identity
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if t, ok := strings.CutPrefix(line, "Target: "); ok && id.Target == "" {
			id.Target = strings.TrimSpace(t)
		} else if id.Version == "" && !strings.HasPrefix(line, "Configured with") && versionLine.MatchString(line) {
			id.Version = line
		}
	}
	if id.Target == "" || id.Version == "" {
		return Identity{}, errors.New("no Target: or version line in -v output")
	}
	id.Fingerprint = id.Target + " " + id.Version
	return id, nil
}

// Cache memoises Probe by path, size and modification time.
type Cache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	size  int64
	mtime time.Time
	id    Identity
}

// Get returns the identity of the compiler at path, probing it when the
// file changed since the last probe.
func (c *Cache) Get(ctx context.Context, path string) (Identity, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Identity{}, err
	}
	c.mu.Lock()
	if e, ok := c.m[path]; ok && e.size == st.Size() && e.mtime.Equal(st.ModTime()) {
		c.mu.Unlock()
		return e.id, nil
	}
	c.mu.Unlock()
	id, err := Probe(ctx, path)
	if err != nil {
		return id, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]cached)
	}
	c.m[path] = cached{st.Size(), st.ModTime(), id}
	c.mu.Unlock()
	return id, nil
}

// ErrNotFound is returned when no real compiler of that name is on PATH.
var ErrNotFound = errors.New("compiler not found")

// Resolve finds the real compiler for name. A name with a slash is taken as
// a path. Otherwise PATH is searched, skipping every candidate that is the
// same file as self (dcc itself, reached through a masquerade symlink).
func Resolve(name, self string) (string, error) {
	selfInfo, _ := os.Stat(self)
	isSelf := func(p string) bool {
		if selfInfo == nil {
			return false
		}
		st, err := os.Stat(p)
		return err == nil && os.SameFile(st, selfInfo)
	}
	if strings.ContainsRune(name, '/') {
		if isSelf(name) {
			return "", fmt.Errorf("%w: %s is dcc itself", ErrNotFound, name)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 || isSelf(p) {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: %s", ErrNotFound, name)
}
