package volunteer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
)

// replayLog persists the token replay guard: every lease whose token ran
// a job is appended to a file, so that a restarted volunteer still refuses
// a token used before the restart for the rest of its TTL. At start the
// log is read into the guard and rewritten with only the live entries, so
// it stays as small as the set of tokens that could still verify.
//
// Each record is 16 bytes, lease id and expiry (Unix ms), big-endian, and
// is written with one write(2) on an O_APPEND file: a crash can lose the
// last record's tail, which the reader drops, never corrupt the others.
type replayLog struct {
	mu sync.Mutex
	f  *os.File
}

const replayRecord = 16

// openReplayLog loads dir/replay-NAME.log into g and opens it for
// appending. The host name is in the file name so that two volunteers on
// one machine (each with its own name) never share a log.
func openReplayLog(dir, name string, g *lease.ReplayGuard, now time.Time) (*replayLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "replay-"+name+".log")
	if f, err := os.Open(path); err == nil {
		r := bufio.NewReader(f)
		var rec [replayRecord]byte
		for {
			if _, err := io.ReadFull(r, rec[:]); err != nil {
				break // EOF, or a torn last record
			}
			g.Remember(binary.BigEndian.Uint64(rec[:8]), int64(binary.BigEndian.Uint64(rec[8:])), now)
		}
		f.Close()
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("replay log: %w", err)
	}
	// Compact: write the live entries to a new file and rename it over.
	tmp := path + ".tmp"
	nf, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay log: %w", err)
	}
	w := bufio.NewWriter(nf)
	g.Each(func(id uint64, exp int64) { w.Write(record(id, exp)) })
	if err := w.Flush(); err != nil {
		nf.Close()
		return nil, fmt.Errorf("replay log: %w", err)
	}
	nf.Close()
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("replay log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay log: %w", err)
	}
	return &replayLog{f: f}, nil
}

func record(id uint64, exp int64) []byte {
	var rec [replayRecord]byte
	binary.BigEndian.PutUint64(rec[:8], id)
	binary.BigEndian.PutUint64(rec[8:], uint64(exp))
	return rec[:]
}

// add appends a used lease. A failed write only weakens the guard across
// a restart, so it is reported but does not refuse the job.
func (l *replayLog) add(id uint64, exp int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.f.Write(record(id, exp))
	return err
}

func (l *replayLog) close() error { return l.f.Close() }
