package identity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxNamesFile bounds a names file: 1 MiB is some 50,000 names.
const maxNamesFile = 1 << 20

// EnrollOptions are the knobs of EnrollFromFile and WriteBundle; the zero
// value means DefaultValidity and never overwriting a file.
type EnrollOptions struct {
	Validity  time.Duration
	Overwrite bool
}

// WriteBundle writes a credential bundle to path with mode 0600. Unless
// overwrite, an existing file is an error: it may be a credential in use.
func WriteBundle(path string, bundle []byte, overwrite bool) error {
	var err error
	if overwrite {
		err = writeFileAtomic(path, bundle, 0o600)
	} else {
		err = writeFileExclusive(path, bundle, 0o600)
	}
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists: remove it or pass --force", path)
	}
	return err
}

// ReadNames reads a names file: one name per line; '#' starts a comment;
// blank lines are ignored. Every name must be valid and appear once; the
// error names the line.
func ReadNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxNamesFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxNamesFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxNamesFile)
	}
	var names []string
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		name := strings.TrimSpace(line)
		if name == "" {
			continue
		}
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, ln, err)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s line %d: %s is already on line %d", path, ln, name, prev)
		}
		seen[name] = ln
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s names no one", path)
	}
	return names, nil
}

// EnrollFromFile issues a credential in role for every name in namesFile
// (see ReadNames) and writes each to outDir/NAME.pem (0600), creating
// outDir (0700) if needed. It returns the files written. Everything that
// can be checked first is: the names, and that no file would be
// overwritten (unless opt.Overwrite), so a bad line or a stale file costs
// no credential. If an issue or a write fails part way, the files written
// so far are returned with the error.
func EnrollFromFile(ca *CA, role, namesFile, outDir string, opt EnrollOptions) ([]string, error) {
	if role == RoleBroker || !ValidRole(role) {
		return nil, fmt.Errorf("cannot enrol role %q: want host, user or admin", role)
	}
	names, err := ReadNames(namesFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return nil, err
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(outDir, n+".pem")
		if opt.Overwrite {
			continue
		}
		if _, err := os.Lstat(paths[i]); err == nil {
			return nil, fmt.Errorf("%s already exists: remove it or pass --force", paths[i])
		}
	}
	var written []string
	for i, n := range names {
		bundle, err := ca.Issue(role, n, opt.Validity)
		if err != nil {
			return written, fmt.Errorf("%s: %w", n, err)
		}
		if err := WriteBundle(paths[i], bundle, opt.Overwrite); err != nil {
			return written, err
		}
		written = append(written, paths[i])
	}
	return written, nil
}
