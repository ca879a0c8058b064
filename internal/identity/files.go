package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// File names in the state directory (see the package comment).
const (
	caCertFile  = "ca.pem"
	caKeyFile   = "ca.key"
	lockFile    = "ca.lock"
	issuedFile  = "issued.log"
	revokedFile = "revoked.log"
)

// maxLogSize bounds what is read of issued.log or revoked.log. A line is
// about 110 bytes, so this is half a million certificates: far beyond any
// farm, and a clear error rather than an unbounded read if the file is
// not what it should be.
const maxLogSize = 64 << 20

// lockState takes the state directory's flock, exclusive for a change and
// shared for a read, and returns the function that releases it. flock locks
// belong to the open file, so this excludes other goroutines of the same
// process as well as other processes. ca.lock is created once and never
// replaced, so every process locks the same inode.
func lockState(dir string, exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// writeFileAtomic writes data to path with mode perm through a temporary
// file and a rename, so a reader sees the old file or the whole new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeFileExclusive creates path with mode perm and writes data, failing
// with os.ErrExist if it is already there.
func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	// The umask may have widened nothing but could have narrowed; make the
	// mode exactly perm either way.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// appendLines appends lines (each ending in '\n') to path with one write
// and syncs it. The caller holds the exclusive lock. If a crash left a
// torn last line, tornMark seals it first, so the torn part stays one
// line the parser knows to ignore instead of corrupting the next record.
func appendLines(path string, lines []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil {
			return err
		}
		if last[0] != '\n' {
			lines = append([]byte(tornMark+"\n"), lines...)
		}
	}
	if _, err := f.Write(lines); err != nil {
		return err
	}
	return f.Sync()
}

// readLog reads a whole log file, bounded by maxLogSize; a missing file is
// empty. It also returns the file's stamp, taken from the open file.
func readLog(path string) ([]byte, stamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, stamp{}, nil
	}
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLogSize+1))
	if err != nil {
		return nil, stamp{}, err
	}
	if len(data) > maxLogSize {
		return nil, stamp{}, fmt.Errorf("%s is larger than %d bytes", path, maxLogSize)
	}
	return data, stampOf(st), nil
}

// tornMark ends a line left incomplete by a crash mid-append.
const tornMark = " # torn by a crash: ignored"

// completeLines drops a torn last line (no trailing newline) left by a
// crash mid-append; appendLines seals it before the next record.
func completeLines(data []byte) []byte {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		return data[:i+1]
	}
	return nil
}
