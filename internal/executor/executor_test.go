package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake writes a shell script standing in for a compiler.
func fake(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fakecc")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func job(compiler, parent string) Job {
	return Job{Compiler: compiler, Ext: ".i", Kind: ".o", Source: []byte("int x;\n"), Name: "../../etc/x", TempDir: parent}
}

// outArg finds the value after -o in the script's "$@" (the last argument).
const writeOut = `for a; do last=$a; done; `

// TestPrivateDirLowPriority: the compiler runs in a fresh directory under
// TempDir, at the configured niceness, with the source inside it, writes
// only there, and the directory is gone afterwards.
func TestPrivateDirLowPriority(t *testing.T) {
	parent := t.TempDir()
	cc := fake(t, writeOut+`{ pwd; ls | tr '\n' ' '; echo; cut -d' ' -f19 /proc/$$/stat; ulimit -t; ulimit -v; ulimit -f; echo "$HOME"; } > "$last"`)
	lim := DefaultLimits()
	lim.Nice, lim.CPU, lim.Memory, lim.FileSize = 7, 30*time.Second, 1<<30, 1<<20
	res, err := Run(context.Background(), job(cc, parent), lim)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Output)), "\n")
	if len(lines) < 7 {
		t.Fatalf("output: %q", res.Output)
	}
	dir := lines[0]
	if filepath.Dir(dir) != parent || !strings.HasPrefix(filepath.Base(dir), "dccjob-") {
		t.Fatalf("ran in %s, not a private directory under %s", dir, parent)
	}
	if !strings.Contains(lines[1], "x.i") || strings.Contains(lines[1], "..") {
		t.Fatalf("source file in the job dir: %q", lines[1])
	}
	if lines[2] != "7" {
		t.Fatalf("niceness %s, want 7", lines[2])
	}
	if lines[3] != "30" {
		t.Fatalf("CPU limit %s s, want 30", lines[3])
	}
	if lines[4] != "1048576" { // ulimit -v is in KiB
		t.Fatalf("memory limit %s KiB, want 1048576", lines[4])
	}
	if lines[5] != "2048" { // ulimit -f is in 512-byte blocks
		t.Fatalf("file size limit %s blocks, want 2048", lines[5])
	}
	if lines[6] != dir {
		t.Fatalf("HOME %s, want the job dir", lines[6])
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("job directory %s left behind", dir)
	}
}

func TestWallLimitKillsProcessGroup(t *testing.T) {
	parent := t.TempDir()
	marker := filepath.Join(t.TempDir(), "survivor")
	// The child of the compiler would touch the marker if it survived the kill.
	cc := fake(t, `(sleep 2; touch `+marker+`) & sleep 60`)
	lim := DefaultLimits()
	lim.Wall = 500 * time.Millisecond
	start := time.Now()
	_, err := Run(context.Background(), job(cc, parent), lim)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("err %v, want ErrLimit", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s for a 500ms limit", d)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the killed compiler survived")
	}
}

func TestCPULimit(t *testing.T) {
	cc := fake(t, `while :; do :; done`)
	lim := DefaultLimits()
	lim.CPU = time.Second
	start := time.Now()
	_, err := Run(context.Background(), job(cc, t.TempDir()), lim)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("err %v, want ErrLimit (SIGXCPU)", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s for a 1s CPU limit", d)
	}
}

func TestMemoryLimit(t *testing.T) {
	// awk doubles a string until it fails. The sleep lets the limits (set
	// just after the process starts) land before it allocates.
	cc := fake(t, `sleep 0.3; exec awk 'BEGIN { s = "x"; for (i = 0; i < 40; i++) s = s s; print length(s) }'`)
	lim := DefaultLimits()
	lim.Memory = 64 << 20
	res, err := Run(context.Background(), job(cc, t.TempDir()), lim)
	if err == nil && res.ExitCode == 0 {
		t.Fatalf("allocating past a 64 MiB limit succeeded: %+v", res)
	}
}

func TestOutputCaps(t *testing.T) {
	lim := DefaultLimits()
	lim.OutputCap = 1000
	cc := fake(t, `head -c 100000 /dev/zero`)
	if _, err := Run(context.Background(), job(cc, t.TempDir()), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("stdout over the cap: %v", err)
	}
	lim = DefaultLimits()
	lim.FileSize = 4096
	cc = fake(t, writeOut+`exec head -c 100000 /dev/zero > "$last"`)
	if _, err := Run(context.Background(), job(cc, t.TempDir()), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("object over the cap: %v", err)
	}
}

func TestBadExtensionRunsNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	cc := fake(t, `touch `+marker)
	for _, ek := range [][2]string{{"/../x.i", ".o"}, {".c", ".o"}, {".i", ".so"}, {".i", "/x"}} {
		j := job(cc, t.TempDir())
		j.Ext, j.Kind = ek[0], ek[1]
		if _, err := Run(context.Background(), j, DefaultLimits()); err == nil {
			t.Fatalf("ext %q kind %q accepted", ek[0], ek[1])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the compiler ran")
	}
}

func TestCancelStopsCompiler(t *testing.T) {
	cc := fake(t, `sleep 60`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if _, err := Run(ctx, job(cc, t.TempDir()), DefaultLimits()); err == nil {
		t.Fatal("cancelled job succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %s", d)
	}
}
