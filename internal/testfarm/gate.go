package testfarm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Gate is a compiler the test controls, so that a job is long by
// construction, never by the size of its source: a shell wrapper around
// a real compiler that answers identity queries (-v, --version, -dump*,
// -print*) exactly like it, so it has the same fingerprint, passes the
// volunteer's start-up check compile (executor.Check), and holds every
// other compile until the test opens the gate. A held compile is a
// process running the wrapper; once the gate opens, the wrapper execs the
// real compiler, so the object is the real one.
//
// The wrapper writes nothing (a sandboxed job may write only its own
// directory): the test sees held compiles in /proc.
type Gate struct {
	Dir  string // holds the wrapper and the "open" marker
	Path string // the wrapper: offer it with volunteer --compilers PATH
}

// NewGate writes a gate wrapping the compiler named real (found on PATH),
// closed. The wrapper has real's base name, so drivers match by name.
func NewGate(t testing.TB, real string) *Gate {
	t.Helper()
	p, err := exec.LookPath(real)
	if err != nil {
		t.Fatalf("gate: %v", err)
	}
	dir := t.TempDir()
	g := &Gate{Dir: dir, Path: filepath.Join(dir, filepath.Base(real))}
	script := fmt.Sprintf(`#!/bin/sh
# A compiler held until the test opens the gate (internal/testfarm/gate.go).
for a in "$@"; do
	case "$a" in -v|--version|-dump*|-print*|dcc-check.*) exec %[1]s "$@" ;; esac
done
while [ ! -e %[2]s/open ]; do sleep 0.02; done
exec %[1]s "$@"
`, p, dir)
	if err := os.WriteFile(g.Path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return g
}

// Share makes the gate usable by compilers that run as another user (a
// distccd drops root): its directory, and the ones above it, readable by
// everyone.
func (g *Gate) Share() {
	top := filepath.Clean(os.TempDir())
	for d := g.Dir; d != "/" && d != "." && d != top; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, st.Mode().Perm()|0o755)
		}
	}
}

// Open lets every held and future compile run.
func (g *Gate) Open() {
	os.WriteFile(filepath.Join(g.Dir, "open"), nil, 0o644)
}

// Shut holds future compiles again (compiles already past the gate go on).
func (g *Gate) Shut() {
	os.Remove(filepath.Join(g.Dir, "open"))
}

// Held is the number of compiles waiting at the gate now. A held wrapper
// forks for each `sleep`, and until the child execs it has the wrapper's
// command line too: only wrappers whose parent is not one count.
func (g *Gate) Held() int {
	wrappers := map[int]int{} // pid -> parent pid
	// The kernel runs a script as: interpreter, script path, args.
	for _, pid := range procs(func(args []string) bool {
		return len(args) > 1 && args[1] == g.Path && !passesThrough(args[2:])
	}) {
		wrappers[pid] = parentOf(pid)
	}
	n := 0
	for _, ppid := range wrappers {
		if _, forked := wrappers[ppid]; !forked {
			n++
		}
	}
	return n
}

// parentOf is a process's parent pid, from /proc (0 if unknown).
func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// passesThrough reports whether the wrapper runs the real compiler at
// once for these arguments (an identity query, the start-up check): such
// a wrapper, seen for a moment before it execs, is not held.
func passesThrough(args []string) bool {
	for _, a := range args {
		if a == "-v" || a == "--version" || strings.HasPrefix(a, "-dump") || strings.HasPrefix(a, "-print") || strings.HasPrefix(a, "dcc-check.") {
			return true
		}
	}
	return false
}

// WaitHeld waits until at least n compiles are held, failing the test
// after timeout.
func (g *Gate) WaitHeld(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for g.Held() < n {
		if time.Now().After(deadline) {
			t.Fatalf("gate: %d compiles held after %s, want %d", g.Held(), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
