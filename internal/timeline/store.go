package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The store keeps one file per build, <dir>/<build id>.jsonl, of JSON
// lines. The first line is the header:
//
//	{"format":"dcc-timeline/1","id":"…","command":["make","-j20"],"dir":"/src","start":"2026-…Z"}
//
// then one line per job, {"job":{…Job…}}, and now and then a drop marker,
// {"dropped":N}, saying that at least N jobs were not recorded because
// the build hit its bounds (written at the 1st, 2nd, 4th, 8th … drop and
// when the writer closes the build, so the largest N on disk is exact
// unless the writer crashed).
//
// Every line is written with one write(2) on a file opened O_APPEND, and
// a line counts only once its newline is there: a reader that races the
// writer, or reads after the writer died mid-write, ignores a last line
// without a newline. A writer that reopens a build whose last line is torn
// first writes a newline, so the fragment becomes one unreadable line that
// readers skip. Strings are JSON strings, so invalid UTF-8 in a file
// name is stored as U+FFFD. There is no fsync: a crash of the machine may lose the
// latest lines but never reorders or merges them.

// Format is the header's format field; a reader rejects any other.
const Format = "dcc-timeline/1"

// Defaults and hard limits of the store.
const (
	DefaultKeep     = 20
	DefaultMaxJobs  = 100_000
	DefaultMaxBytes = 64 << 20

	// maxLine bounds one record on disk and what a reader accepts.
	maxLine = 256 << 10
	// maxCommand bounds the bytes of the command kept in the header.
	maxCommand = 16 << 10
	// maxOpen bounds the build files the writer holds open at once
	// (builds running in parallel); the least recently used is closed.
	maxOpen = 8
	// maxIDLen bounds a build id (it is a file name).
	maxIDLen = 128
)

// Errors returned by the store.
var (
	ErrNotFound = errors.New("timeline: no such build")
	ErrBadID    = errors.New("timeline: bad build id")
)

// Options configure a Store; zero fields take the defaults.
type Options struct {
	Keep     int   // builds kept; the oldest (by start) are removed when a new build begins
	MaxJobs  int   // jobs recorded per build; further jobs are dropped and counted
	MaxBytes int64 // bytes of job records per build; further jobs are dropped and counted
}

func (o Options) withDefaults() Options {
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// BuildMeta is what a build's first job brings to create the build.
type BuildMeta struct {
	Command []string
	Dir     string
	Start   time.Time // zero: the first job's start
}

// Store is a directory of build records. One process (the agent) appends;
// any number of processes read at any time. A Store is safe for
// concurrent use.
type Store struct {
	dir string
	opt Options

	mu   sync.Mutex
	open map[string]*openBuild // builds this process appends to
	tick uint64                // use counter for closing the least recently used
	buf  bytes.Buffer          // encoding buffer, reused under mu
	enc  *json.Encoder         // writes into buf
}

// openBuild is a build file held open for appending.
type openBuild struct {
	f       *os.File
	jobs    int   // job records in the file
	bytes   int64 // bytes of job records in the file
	dropped int64 // jobs not recorded
	marked  int64 // the largest drop count written to the file
	used    uint64
	torn    bool // a write failed part way: start the next one on a new line
}

// Open opens (creating it, mode 0700) the store in dir keeping the last
// keep builds (DefaultKeep if keep <= 0), with the default bounds.
func Open(dir string, keep int) (*Store, error) {
	return OpenOptions(dir, Options{Keep: keep})
}

// OpenOptions is Open with every bound chosen.
func OpenOptions(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	// The records name the user's files and commands: the directory is
	// the store's own and private, whatever mode it was created with.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	s := &Store{dir: dir, opt: o.withDefaults(), open: make(map[string]*openBuild)}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// validID reports whether id can name a build file: 1 to 128 bytes of
// letters, digits, '.', '_' and '-', not starting with '.'.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id+".jsonl") }

// record is one line after the header.
type record struct {
	Job     *Job  `json:"job,omitempty"`
	Dropped int64 `json:"dropped,omitempty"`
}

// header is a build file's first line.
type header struct {
	Format  string    `json:"format"`
	ID      string    `json:"id"`
	Command []string  `json:"command"`
	Dir     string    `json:"dir"`
	Start   time.Time `json:"start"`
}

// Append records j as a job of build buildID, creating the build with
// meta if this is its first job (a new build prunes the oldest beyond
// Keep). A job past the build's bounds is counted, not recorded, and
// Append returns nil: bounds are not errors. An invalid job or id is an
// error and nothing is written.
func (s *Store) Append(buildID string, meta BuildMeta, j Job) error {
	if !validID(buildID) {
		return fmt.Errorf("%w: %q", ErrBadID, buildID)
	}
	if err := j.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ob, err := s.openLocked(buildID, meta, j.Start())
	if err != nil {
		return err
	}
	s.tick++
	ob.used = s.tick

	s.buf.Reset()
	if err := s.enc.Encode(record{Job: &j}); err != nil {
		return fmt.Errorf("timeline: encoding job: %w", err)
	}
	line := s.buf.Bytes()
	if len(line) > maxLine || ob.jobs >= s.opt.MaxJobs || ob.bytes+int64(len(line)) > s.opt.MaxBytes {
		ob.dropped++
		if ob.dropped&(ob.dropped-1) == 0 { // a power of two
			return s.markLocked(ob)
		}
		return nil
	}
	if err := ob.write(line); err != nil {
		return err
	}
	ob.jobs++
	ob.bytes += int64(len(line))
	return nil
}

// write appends line with one write(2).
func (ob *openBuild) write(line []byte) error {
	if ob.torn {
		// The previous write stopped part way: end that fragment so this
		// record stands on its own line.
		line = append([]byte{'\n'}, line...)
	}
	n, err := ob.f.Write(line)
	if err != nil {
		ob.torn = n > 0 || ob.torn
		return fmt.Errorf("timeline: %w", err)
	}
	ob.torn = false
	return nil
}

// markLocked writes the drop count to disk.
func (s *Store) markLocked(ob *openBuild) error {
	if ob.dropped == ob.marked {
		return nil
	}
	line, _ := json.Marshal(record{Dropped: ob.dropped})
	if err := ob.write(append(line, '\n')); err != nil {
		return err
	}
	ob.marked = ob.dropped
	return nil
}

// openLocked returns the open build id, opening its file (and creating it
// with meta) if needed.
func (s *Store) openLocked(id string, meta BuildMeta, firstJob time.Time) (*openBuild, error) {
	if ob := s.open[id]; ob != nil {
		return ob, nil
	}
	if len(s.open) >= maxOpen {
		s.closeLRULocked()
	}
	ob, created, err := s.openFile(id, meta, firstJob)
	if err != nil {
		return nil, err
	}
	s.open[id] = ob
	if created {
		s.pruneLocked(id)
	}
	return ob, nil
}

func (s *Store) closeLRULocked() {
	var oldest string
	var min uint64
	for id, ob := range s.open {
		if oldest == "" || ob.used < min {
			oldest, min = id, ob.used
		}
	}
	s.closeLocked(oldest)
}

func (s *Store) closeLocked(id string) error {
	ob := s.open[id]
	if ob == nil {
		return nil
	}
	delete(s.open, id)
	err := s.markLocked(ob)
	if cerr := ob.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("timeline: %w", cerr)
	}
	return err
}

// Close writes the final drop counts and closes the open build files.
// The Store stays usable: a later Append reopens its build.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for id := range s.open {
		if err := s.closeLocked(id); first == nil {
			first = err
		}
	}
	return first
}

// openFile opens build id for appending: an existing file is scanned for
// its counts (the agent may have exited idle in the middle of a build and
// been started again), a missing one is created with its header.
func (s *Store) openFile(id string, meta BuildMeta, firstJob time.Time) (ob *openBuild, created bool, err error) {
	p := s.path(id)
	for attempt := 0; attempt < 2; attempt++ {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			ob, ok, err := s.resume(f, id)
			if err != nil || ok {
				return ob, false, err
			}
			// No header: a writer died between creating the file and
			// writing its first line. Start the build afresh.
			os.Remove(p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("timeline: %w", err)
		}
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // another writer created it first: append to theirs
		}
		if err != nil {
			return nil, false, fmt.Errorf("timeline: %w", err)
		}
		ob = &openBuild{f: f}
		if err := ob.write(headerLine(id, meta, firstJob)); err != nil {
			f.Close()
			os.Remove(p)
			return nil, false, err
		}
		return ob, true, nil
	}
	return nil, false, fmt.Errorf("timeline: cannot create build %s", id)
}

// headerLine encodes a build's header, cutting the command to maxCommand
// bytes and the directory to 4096.
func headerLine(id string, meta BuildMeta, firstJob time.Time) []byte {
	h := header{Format: Format, ID: id, Dir: meta.Dir, Start: meta.Start}
	if h.Start.IsZero() {
		h.Start = firstJob
	}
	if len(h.Dir) > 4096 {
		h.Dir = h.Dir[:4096]
	}
	n := 0
	for _, a := range meta.Command {
		if n+len(a) > maxCommand {
			h.Command = append(h.Command, "…")
			break
		}
		n += len(a)
		h.Command = append(h.Command, a)
	}
	line, _ := json.Marshal(h) // strings and a time: cannot fail
	return append(line, '\n')
}

// resume scans an existing build file for the counts a writer needs. ok
// is false when the file has no header line.
func (s *Store) resume(f *os.File, id string) (*openBuild, bool, error) {
	r, err := os.Open(f.Name())
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("timeline: %w", err)
	}
	defer r.Close()
	ob := &openBuild{f: f}
	sawHeader := false
	err = scanLines(r, func(line []byte, complete bool) error {
		switch {
		case !complete:
			ob.torn = true
		case !sawHeader:
			var h header
			sawHeader = json.Unmarshal(line, &h) == nil && h.Format == Format && h.ID == id
		case bytes.HasPrefix(line, []byte(`{"job":`)):
			ob.jobs++
			ob.bytes += int64(len(line)) + 1
		case bytes.HasPrefix(line, []byte(`{"dropped":`)):
			var rec record
			if json.Unmarshal(line, &rec) == nil && rec.Dropped > ob.dropped {
				ob.dropped = rec.Dropped
			}
		}
		return nil
	})
	ob.marked = ob.dropped
	if err != nil || !sawHeader {
		f.Close()
		return nil, false, err
	}
	return ob, true, nil
}

// scanLines calls fn for each line of r without its newline; complete is
// false for a last line with no newline. A line longer than maxLine is
// passed as nil, so memory stays bounded whatever the file holds.
func scanLines(r io.Reader, fn func(line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	skipping := false
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !skipping && len(long)+len(chunk) <= maxLine {
				long = append(long, chunk...)
			} else {
				skipping, long = true, long[:0]
			}
			continue
		}
		line := chunk
		if len(long) > 0 {
			if len(long)+len(chunk) <= maxLine {
				line = append(long, chunk...)
			} else {
				skipping = true
			}
			long = long[:0]
		}
		if err == io.EOF {
			if len(line) > 0 && !skipping {
				return fn(line, false)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		if skipping {
			// Too long to be a record: report it as an unreadable line.
			skipping = false
			if ferr := fn(nil, true); ferr != nil {
				return ferr
			}
			continue
		}
		if ferr := fn(line[:len(line)-1], true); ferr != nil {
			return ferr
		}
	}
}

// fileInfo is a build file found in the directory.
type fileInfo struct {
	id    string
	start time.Time
}

// builds lists the build files, newest first by start (then id); a file
// whose header cannot be read sorts by its modification time.
func (s *Store) builds() ([]fileInfo, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	var out []fileInfo
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok || !validID(id) || !e.Type().IsRegular() {
			continue
		}
		fi := fileInfo{id: id}
		if h, err := readHeader(s.path(id)); err == nil {
			fi.start = h.Start
		} else if errors.Is(err, fs.ErrNotExist) {
			continue // pruned meanwhile
		} else if info, err := e.Info(); err == nil {
			fi.start = info.ModTime()
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].start.Equal(out[b].start) {
			return out[a].start.After(out[b].start)
		}
		return out[a].id > out[b].id
	})
	return out, nil
}

// pruneLocked removes the oldest builds beyond Keep, never keep itself.
func (s *Store) pruneLocked(keep string) {
	all, err := s.builds()
	if err != nil {
		return
	}
	n := 1 // keep
	for _, fi := range all {
		if fi.id == keep {
			continue
		}
		if n < s.opt.Keep {
			n++
			continue
		}
		if ob := s.open[fi.id]; ob != nil {
			// Still being written (a build running in parallel with
			// many newer ones): close it; a later job reopens it.
			ob.f.Close()
			delete(s.open, fi.id)
		}
		os.Remove(s.path(fi.id))
	}
}

// readHeader reads the first line of a build file.
func readHeader(path string) (*header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var h *header
	errStop := errors.New("stop")
	err = scanLines(io.LimitReader(f, maxLine+1), func(line []byte, complete bool) error {
		var hh header
		if complete && json.Unmarshal(line, &hh) == nil && hh.Format == Format {
			h = &hh
		}
		return errStop
	})
	if err != nil && err != errStop {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("timeline: %s: no header", path)
	}
	return h, nil
}

// Load reads build id. Records that cannot be read (a torn line, a job
// that fails Validate) are skipped and counted in Build.Skipped.
func (s *Store) Load(id string) (*Build, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	b, err := readBuild(io.LimitReader(f, s.opt.MaxBytes+2*maxLine+64*32))
	if err != nil {
		return nil, fmt.Errorf("timeline: build %s: %w", id, err)
	}
	if b.ID != id {
		return nil, fmt.Errorf("timeline: build file %s holds build %q", id, b.ID)
	}
	return b, nil
}

// readBuild decodes a build file.
func readBuild(r io.Reader) (*Build, error) {
	var b *Build
	err := scanLines(r, func(line []byte, complete bool) error {
		if b == nil {
			var h header
			if !complete {
				return errors.New("no header")
			}
			if err := json.Unmarshal(line, &h); err != nil {
				return fmt.Errorf("header: %w", err)
			}
			if h.Format != Format {
				return fmt.Errorf("format %q, want %q", h.Format, Format)
			}
			b = &Build{ID: h.ID, Command: h.Command, Dir: h.Dir, Start: h.Start}
			return nil
		}
		if !complete {
			return nil // being written, or torn by a crash: not a record yet
		}
		var rec record
		if json.Unmarshal(line, &rec) != nil {
			b.Skipped++
			return nil
		}
		switch {
		case rec.Job != nil:
			if rec.Job.Validate() != nil {
				b.Skipped++
				return nil
			}
			b.Jobs = append(b.Jobs, *rec.Job)
			if e := rec.Job.End(); e.After(b.End) {
				b.End = e
			}
		case rec.Dropped > b.Dropped:
			b.Dropped = rec.Dropped
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("empty file")
	}
	if b.End.Before(b.Start) {
		b.End = b.Start
	}
	return b, nil
}

// List summarises the builds, newest first. Builds that cannot be read
// are left out.
func (s *Store) List() ([]Summary, error) {
	all, err := s.builds()
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(all))
	for _, fi := range all {
		b, err := s.Load(fi.id)
		if err != nil {
			continue
		}
		out = append(out, Summarize(b))
	}
	return out, nil
}

// Last loads the newest build (by start).
func (s *Store) Last() (*Build, error) {
	all, err := s.builds()
	if err != nil {
		return nil, err
	}
	for _, fi := range all {
		if b, err := s.Load(fi.id); err == nil {
			return b, nil
		}
	}
	return nil, ErrNotFound
}
