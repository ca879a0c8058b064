package commands

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
)

func TestPrintTable(t *testing.T) {
	doc := &status.Doc{
		Time: time.Unix(1_900_000_000, 0), Broker: "b:3633",
		Hosts: []status.Host{
			{Name: "sun1", CPUs: 8, Power: 3, Slots: 8, Busy: 5, Tier: 3, Reason: "power 3", State: "healthy", Load1: 4.25, JobsDone: 1234, Compilers: []string{"x86_64-linux-gnu gcc version 12.2.0"}},
			{Name: "desk12", CPUs: 2, Power: 1, Slots: 2, Tier: 0, Reason: "draining", State: "draining", Note: "owner active", Compilers: []string{"x86_64-linux-gnu gcc version 12.2.0", "x86_64-pc-linux-gnu Debian clang version 14.0.6"}},
		},
		Users:  []status.User{{Name: "alice", Running: 5, Waiting: 17, Share: 0.625, Usage: 321.5}, {Name: "bob", Waiting: 2}},
		Leases: 5, Queue: 19, Slots: 8, Busy: 5,
	}
	var out bytes.Buffer
	PrintTable(&out, doc)
	s := out.String()
	for _, want := range []string{
		"HOST", "sun1", "desk12", "5/8", "4.25", "1234", "healthy", "draining", "draining: owner active",
		"USER", "alice", "bob", "17", "62%", "321.5",
		"COMPILER", "x86_64-linux-gnu gcc version 12.2.0", "x86_64-pc-linux-gnu Debian clang version 14.0.6", "sun1,desk12",
		"leases 5, queued 19, slots 5 busy of 8",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	// Each host on its own line with its numbers.
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "sun1 ") && !strings.Contains(line, "5/8") {
			t.Errorf("sun1 line %q", line)
		}
		if strings.HasPrefix(line, "x86_64-pc-linux-gnu") && !strings.HasSuffix(strings.TrimSpace(line), "desk12") {
			t.Errorf("clang line %q", line)
		}
	}
}

func TestPrintTableEmpty(t *testing.T) {
	var out bytes.Buffer
	PrintTable(&out, &status.Doc{})
	s := out.String()
	if !strings.Contains(s, "HOST") || strings.Contains(s, "USER") || strings.Contains(s, "COMPILER") {
		t.Fatalf("empty table:\n%s", s)
	}
	if !strings.Contains(s, "leases 0, queued 0, slots 0 busy of 0") {
		t.Fatalf("summary missing:\n%s", s)
	}
}

func TestCommands(t *testing.T) {
	for _, k := range []string{"DCC_CONFIG", "DCC_BROKER", "DCC_IDENTITY"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	tests := []struct {
		name       string
		argv       []string
		want       int
		wantStderr string
	}{
		{"no command", []string{"dcc-agent"}, 2, "usage"},
		{"unknown command", []string{"dcc-agent", "compile"}, 2, "unknown command"},
		{"farm without host", []string{"dcc", "farm", "drain"}, 2, "usage"},
		{"farm unknown action", []string{"dcc", "farm", "explode", "h1"}, 2, "unknown action"},
		{"farm block needs reason", []string{"dcc", "farm", "block", "h1"}, 2, "--reason"},
		{"status bad flag", []string{"dcc", "status", "--nope"}, 2, ""},
		{"status without broker", []string{"dcc", "status"}, 1, "no broker configured"},
		{"agent without socket", []string{"dcc", "agent"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			errOut := stderrOf(t, func() { code = Main(tt.argv) })
			if code != tt.want {
				t.Errorf("Main(%q) = %d, want %d; stderr %q", tt.argv, code, tt.want, errOut)
			}
			if tt.wantStderr != "" && !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantStderr)
			}
		})
	}
}

// stderrOf runs f with os.Stderr redirected and returns what it wrote.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	old := os.Stderr
	r, w, _ := os.Pipe()
	os.Stderr = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	f()
	os.Stderr = old
	w.Close()
	return <-done
}
