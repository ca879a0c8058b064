package logging

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// newCaptured calls New with os.Stderr swapped for a pipe; the returned
// function closes the pipe and returns everything written.
func newCaptured(t *testing.T, format, level string) (Loggers, func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	l, err := New(format, level)
	os.Stderr = old
	if err != nil {
		w.Close()
		r.Close()
		t.Fatalf("New(%q, %q): %v", format, level, err)
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		done <- string(b)
	}()
	return l, func() string {
		w.Close()
		return <-done
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestNewErrors(t *testing.T) {
	tests := []struct{ name, format, level, want string }{
		{"bad format", "xml", "info", "xml"},
		{"bad level", "json", "loud", "loud"},
		{"both bad", "xml", "loud", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.format, tt.level)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestJSONOutputAndLevels(t *testing.T) {
	tests := []struct {
		format, level string
		wantMsgs      []string // messages of Log that must appear, in order
	}{
		{"json", "debug", []string{"d", "i", "w", "e"}},
		{"json", "info", []string{"i", "w", "e"}},
		{"", "warn", []string{"w", "e"}},
		{"json", "error", []string{"e"}},
		{"json", "", []string{"i", "w", "e"}}, // zap: empty level means info
		{"json", "WARN", []string{"w", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			l, read := newCaptured(t, tt.format, tt.level)
			l.Log.Debug("d")
			l.Log.Info("i", zap.String("k", "v"))
			l.Log.Warn("w")
			l.Log.Error("e")
			l.Lease.Info("grant", zap.Uint64("lease", 7), zap.String("user", "alice"), zap.String("host", "sun1"))
			var msgs []string
			var lease map[string]any
			for _, line := range lines(read()) {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not JSON: %q: %v", line, err)
				}
				for _, k := range []string{"level", "ts", "msg"} {
					if _, ok := m[k]; !ok {
						t.Errorf("line %q lacks %q", line, k)
					}
				}
				if ts, _ := m["ts"].(string); !strings.Contains(ts, "T") {
					t.Errorf("ts %v is not ISO 8601", m["ts"])
				}
				if m["logger"] == "lease" {
					lease = m
					continue
				}
				msgs = append(msgs, m["msg"].(string))
				if m["msg"] == "i" && m["k"] != "v" {
					t.Errorf("field lost: %v", m)
				}
			}
			if strings.Join(msgs, ",") != strings.Join(tt.wantMsgs, ",") {
				t.Errorf("Log wrote %v, want %v", msgs, tt.wantMsgs)
			}
			// Lease events are written whatever the level.
			if lease == nil {
				t.Fatal("lease event missing")
			}
			if lease["msg"] != "grant" || lease["lease"] != 7.0 || lease["user"] != "alice" || lease["host"] != "sun1" || lease["level"] != "info" {
				t.Errorf("lease line %v", lease)
			}
		})
	}
}

func TestConsoleOutput(t *testing.T) {
	l, read := newCaptured(t, "console", "info")
	l.Log.Info("hello console", zap.Int("n", 3))
	l.Lease.Info("release", zap.Uint64("lease", 9))
	out := read()
	ls := lines(out)
	if len(ls) != 2 {
		t.Fatalf("%d lines:\n%s", len(ls), out)
	}
	if strings.HasPrefix(ls[0], "{") || !strings.Contains(ls[0], "INFO") || !strings.Contains(ls[0], "hello console") || !strings.Contains(ls[0], `"n": 3`) {
		t.Errorf("console line %q", ls[0])
	}
	if !strings.Contains(ls[1], "lease") || !strings.Contains(ls[1], "release") {
		t.Errorf("lease line %q", ls[1])
	}
}

// The ordinary logger is sampled; the lease logger never is.
func TestLeaseLoggerNotSampled(t *testing.T) {
	const n = 5000
	l, read := newCaptured(t, "json", "info")
	for i := 0; i < n; i++ {
		l.Lease.Info("lease granted", zap.String("user", "alice"))
		l.Log.Info("same old message", zap.String("user", "alice"))
	}
	leaseLines, logLines := 0, 0
	for _, line := range lines(read()) {
		switch {
		case strings.Contains(line, `"logger":"lease"`) && strings.Contains(line, "lease granted"):
			leaseLines++
		case strings.Contains(line, "same old message"):
			logLines++
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	if leaseLines != n {
		t.Errorf("lease logger wrote %d of %d lines", leaseLines, n)
	}
	if logLines >= n || logLines < 100 {
		t.Errorf("ordinary logger wrote %d of %d identical lines, want sampling (at least the first 100, far fewer than all)", logLines, n)
	}
	t.Logf("lease %d, log %d", leaseLines, logLines)
}

func TestNop(t *testing.T) {
	l := Nop()
	if l.Log == nil || l.Lease == nil {
		t.Fatal("nil logger")
	}
	l.Log.Info("x")
	l.Lease.Info("y")
}
