package identity

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotIssued is returned by Revoke for a (role, name) that was never
// issued a certificate: most likely a typo, which must not pass silently.
var ErrNotIssued = errors.New("no certificate was ever issued")

// ErrRevoked is wrapped by the error Accept returns for a revoked
// credential.
var ErrRevoked = errors.New("credential revoked")

// MaxSerialLen is the longest serial number RFC 5280 allows, in bytes;
// NewRevocations ignores longer ones.
const MaxSerialLen = 20

// Record is one line of issued.log or revoked.log.
type Record struct {
	Serial   *big.Int
	Role     string
	Name     string
	NotAfter time.Time
	At       time.Time // when it was issued (issued.log) or revoked (revoked.log)
}

func (r Record) line() []byte {
	return fmt.Appendf(nil, "%s %s %s %s %s\n", r.Serial.Text(16), r.Role, r.Name,
		r.NotAfter.UTC().Format(time.RFC3339), r.At.UTC().Format(time.RFC3339))
}

// parseRecords parses a log's complete lines; '#' lines and blank lines are
// comments. A torn line is ignored (see completeLines, tornMark); any other bad
// line is an error, since a log that says something unexpected must not be
// half-believed.
func parseRecords(name string, data []byte) ([]Record, error) {
	var recs []Record
	for i, line := range bytes.Split(completeLines(data), []byte{'\n'}) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || strings.HasSuffix(s, tornMark) {
			continue
		}
		r, err := parseRecord(s)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %v", name, i+1, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func parseRecord(s string) (Record, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return Record{}, fmt.Errorf("want 5 fields (serial role name not_after at), have %d", len(f))
	}
	serial, ok := new(big.Int).SetString(f[0], 16)
	if !ok || serial.Sign() <= 0 || len(serial.Bytes()) > MaxSerialLen {
		return Record{}, fmt.Errorf("bad serial %q", f[0])
	}
	if err := checkRoleName(f[1], f[2]); err != nil {
		return Record{}, err
	}
	notAfter, err := time.Parse(time.RFC3339, f[3])
	if err != nil {
		return Record{}, err
	}
	at, err := time.Parse(time.RFC3339, f[4])
	if err != nil {
		return Record{}, err
	}
	return Record{Serial: serial, Role: f[1], Name: f[2], NotAfter: notAfter, At: at}, nil
}

// readRecords reads one log under the caller's lock.
func readRecords(dir, file string) ([]Record, stamp, error) {
	path := filepath.Join(dir, file)
	data, st, err := readLog(path)
	if err != nil {
		return nil, stamp{}, err
	}
	recs, err := parseRecords(path, data)
	return recs, st, err
}

// Issued lists every certificate the CA in stateDir has issued, oldest
// first.
func Issued(stateDir string) ([]Record, error) {
	unlock, err := lockState(stateDir, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recs, _, err := readRecords(stateDir, issuedFile)
	return recs, err
}

// Revoke revokes every certificate issued so far for (role, name), by
// serial, and returns how many it newly revoked (0 if all already were).
// Enrolling the name again afterwards gives a new credential that works:
// that is how a credential is rotated. A running broker sees the change at
// its next ReloadIfChanged.
func Revoke(stateDir, role, name string) (int, error) {
	if err := checkRoleName(role, name); err != nil {
		return 0, err
	}
	if _, err := os.Stat(stateDir); err != nil {
		return 0, err
	}
	unlock, err := lockState(stateDir, true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	issued, _, err := readRecords(stateDir, issuedFile)
	if err != nil {
		return 0, err
	}
	revoked, _, err := readRecords(stateDir, revokedFile)
	if err != nil {
		return 0, err
	}
	done := make(map[string]bool, len(revoked))
	for _, r := range revoked {
		done[string(r.Serial.Bytes())] = true
	}
	now := time.Now()
	var lines []byte
	n, seen := 0, false
	for _, r := range issued {
		if r.Role != role || r.Name != name {
			continue
		}
		seen = true
		if k := string(r.Serial.Bytes()); !done[k] {
			done[k] = true
			r.At = now
			lines = append(lines, r.line()...)
			n++
		}
	}
	if !seen {
		return 0, fmt.Errorf("%w for %s %s in %s", ErrNotIssued, role, name, stateDir)
	}
	if n == 0 {
		return 0, nil
	}
	if err := appendLines(filepath.Join(stateDir, revokedFile), lines); err != nil {
		return 0, err
	}
	return n, nil
}

// stamp identifies one version of a file cheaply. revoked.log only grows,
// so its size alone changes with every revocation; the rest catches a file
// replaced by hand.
type stamp struct {
	exists   bool
	size     int64
	mtime    int64
	dev, ino uint64
}

func stampOf(fi os.FileInfo) stamp {
	s := stamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return s
}

// Revocations is a set of revoked serial numbers. The broker's comes from
// revoked.log (LoadRevocations) and is refreshed by ReloadIfChanged; a
// volunteer's is the list the broker pushes (NewRevocations, Replace). It
// is safe for concurrent use: handshakes call Revoked while a timer calls
// ReloadIfChanged. A nil *Revocations revokes nothing.
type Revocations struct {
	dir string // "" for a set built from pushed serials
	now func() time.Time

	mu    sync.RWMutex
	stamp stamp                // of revoked.log when set was read
	set   map[string]time.Time // serial magnitude bytes → certificate's NotAfter (zero: unknown)
}

// LoadRevocations reads the revocations in stateDir (none if revoked.log
// does not exist yet).
func LoadRevocations(stateDir string) (*Revocations, error) {
	r := &Revocations{dir: stateDir, now: time.Now, set: map[string]time.Time{}}
	if _, err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// NewRevocations builds a set from serials as Serials returns them, for a
// volunteer that receives the list from its broker. Empty or over-long
// serials are ignored.
func NewRevocations(serials [][]byte) *Revocations {
	r := &Revocations{now: time.Now}
	r.Replace(serials)
	return r
}

// Replace makes the set exactly serials. It is for sets built with
// NewRevocations; on a file-backed set, the next ReloadIfChanged after the
// file changes would undo it.
func (r *Revocations) Replace(serials [][]byte) {
	set := make(map[string]time.Time, len(serials))
	for _, s := range serials {
		if len(s) == 0 || len(s) > MaxSerialLen {
			continue
		}
		set[string(s)] = time.Time{}
	}
	r.mu.Lock()
	r.set = set
	r.mu.Unlock()
}

// Revoked reports whether serial is revoked.
func (r *Revocations) Revoked(serial *big.Int) bool {
	if r == nil || serial == nil {
		return false
	}
	r.mu.RLock()
	_, ok := r.set[string(serial.Bytes())]
	r.mu.RUnlock()
	return ok
}

// Len is the number of revoked serials held.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.set)
}

// Serials returns the revoked serials (big-endian magnitude bytes, sorted)
// of certificates that have not expired yet: an expired certificate fails
// verification anyway, so the list pushed to volunteers stays as short as
// the farm's recent revocations. About 16 bytes per serial.
func (r *Revocations) Serials() [][]byte {
	if r == nil {
		return nil
	}
	now := r.now()
	r.mu.RLock()
	out := make([][]byte, 0, len(r.set))
	for k, notAfter := range r.set {
		if notAfter.IsZero() || now.Before(notAfter) {
			out = append(out, []byte(k))
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

// ReloadIfChanged re-reads revoked.log if it changed since the last read
// (one stat when it did not) and reports whether the set of revoked serials
// changed. On error the previous set stays in force. The broker calls it
// every second; when it returns true, the broker closes the connections of
// newly revoked peers and pushes Serials to every volunteer.
func (r *Revocations) ReloadIfChanged() (changed bool, err error) {
	if r.dir == "" {
		return false, errors.New("revocations not loaded from a state directory")
	}
	var st stamp
	fi, err := os.Stat(filepath.Join(r.dir, revokedFile))
	switch {
	case err == nil:
		st = stampOf(fi)
	case !errors.Is(err, os.ErrNotExist):
		return false, err
	}
	r.mu.RLock()
	same := st == r.stamp
	r.mu.RUnlock()
	if same {
		return false, nil
	}
	return r.reload()
}

func (r *Revocations) reload() (bool, error) {
	unlock, err := lockState(r.dir, false)
	if err != nil {
		return false, err
	}
	recs, st, err := readRecords(r.dir, revokedFile)
	unlock()
	if err != nil {
		return false, err
	}
	set := make(map[string]time.Time, len(recs))
	for _, rec := range recs {
		set[string(rec.Serial.Bytes())] = rec.NotAfter
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := len(set) != len(r.set)
	for k := range set {
		if _, ok := r.set[k]; !ok {
			changed = true
			break
		}
	}
	r.set, r.stamp = set, st
	return changed, nil
}
