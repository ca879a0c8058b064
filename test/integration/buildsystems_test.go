package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

// countRemote counts the compiles the verbose log says went to the farm.
func countRemote(log string) int { return len(remoteRe.FindAllString(log, -1)) }

func TestCMakeCompilerLauncher(t *testing.T) {
	f := startFarm(t)
	src, build := t.TempDir(), t.TempDir()
	writeSources(t, src)
	os.WriteFile(filepath.Join(src, "CMakeLists.txt"), []byte(`cmake_minimum_required(VERSION 3.13)
project(demo C CXX)
add_library(util STATIC warn.c deps.c)
add_library(cx STATIC cxx.cpp)
add_executable(plain plain.c)
`), 0o644)
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	env := f.Env("cmake-user")
	r := testfarm.Run(t, build, env, "cmake", "-DCMAKE_C_COMPILER_LAUNCHER="+dcc, "-DCMAKE_CXX_COMPILER_LAUNCHER="+dcc, src)
	if r.Code != 0 {
		t.Fatalf("cmake configure: %s%s", r.Stdout, r.Stderr)
	}
	r = testfarm.Run(t, build, env, "cmake", "--build", ".", "--", "-j4")
	if r.Code != 0 {
		t.Fatalf("cmake build: %s%s", r.Stdout, r.Stderr)
	}
	if n := countRemote(r.Stderr); n < 4 {
		t.Fatalf("only %d of 4 compiles went to the farm:\n%s", n, r.Stderr)
	}
	if out := testfarm.Run(t, build, nil, filepath.Join(build, "plain")); strings.TrimSpace(out.Stdout) != "10" {
		t.Fatalf("built program printed %q", out.Stdout)
	}
}

func TestBehindCcache(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	env := append(f.Env("ccache-user"), "CCACHE_PREFIX="+filepath.Join(testfarm.Bin(t), "dcc"), "CCACHE_DIR="+t.TempDir())
	first := testfarm.Run(t, dir, env, "ccache", "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if first.Code != 0 || countRemote(first.Stderr) != 1 {
		t.Fatalf("first compile (cache miss) should go to the farm: exit %d\n%s", first.Code, first.Stderr)
	}
	if n := jobsDone(f); n != 1 {
		t.Fatalf("farm ran %d jobs, want 1", n)
	}
	os.Remove(filepath.Join(dir, "plain.o"))
	// ccache replays the cached stderr (dcc's verbose lines too), so count
	// jobs at the broker: a hit must not reach the farm.
	second := testfarm.Run(t, dir, env, "ccache", "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if second.Code != 0 {
		t.Fatalf("second compile: exit %d\n%s", second.Code, second.Stderr)
	}
	if n := jobsDone(f); n != 1 {
		t.Fatalf("a cache hit reached the farm: %d jobs", n)
	}
	loc := t.TempDir()
	writeSources(t, loc)
	testfarm.Run(t, loc, nil, "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if string(readFile(t, filepath.Join(dir, "plain.o"))) != string(readFile(t, filepath.Join(loc, "plain.o"))) {
		t.Fatal("object from the ccache+dcc path differs from a local compile")
	}
}

func jobsDone(f *testfarm.Farm) int64 {
	var n int64
	for _, h := range f.Status().Hosts {
		n += h.JobsDone
	}
	return n
}

func TestMakeBuildAllObjectsIdentical(t *testing.T) {
	f := startFarm(t)
	dir, loc := t.TempDir(), t.TempDir()
	var objs []string
	var mk strings.Builder
	for i := 0; i < 24; i++ {
		name := filepath.Join(dir, "m"+string(rune('a'+i))+".c")
		body := "#include <stdio.h>\n#include <string.h>\nstatic const char *s = \"" + strings.Repeat("x", i) + "\";\nint f" + string(rune('a'+i)) + "(void) { return (int)strlen(s) * " + string(rune('0'+i%10)) + "; }\n"
		for _, d := range []string{dir, loc} {
			os.WriteFile(filepath.Join(d, filepath.Base(name)), []byte(body), 0o644)
		}
		objs = append(objs, "m"+string(rune('a'+i))+".o")
	}
	mk.WriteString("OBJS = " + strings.Join(objs, " ") + "\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -MD -c $< -o $@\n-include $(OBJS:.o=.d)\n")
	for _, d := range []string{dir, loc} {
		os.WriteFile(filepath.Join(d, "Makefile"), []byte(mk.String()), 0o644)
	}
	r := testfarm.Run(t, dir, f.Env("maker"), "make", "-j8", "CC="+filepath.Join(testfarm.Bin(t), "dcc")+" gcc")
	if r.Code != 0 {
		t.Fatalf("make: %s%s", r.Stdout, r.Stderr)
	}
	// With more jobs than farm slots, the broker may send some home when a
	// local slot is free and its queue is slower; every file is one or the other.
	remote, home := countRemote(r.Stderr), strings.Count(r.Stderr, "compiling locally: local_faster")
	if remote+home != len(objs) || remote < len(objs)/2 {
		t.Fatalf("%d remote + %d sent home of %d compiles:\n%s", remote, home, len(objs), r.Stderr)
	}
	if r := testfarm.Run(t, loc, nil, "make", "-j8", "CC=gcc"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	for _, o := range objs {
		if string(readFile(t, filepath.Join(dir, o))) != string(readFile(t, filepath.Join(loc, o))) {
			t.Fatalf("%s differs from a local build", o)
		}
		d := strings.ReplaceAll(string(readFile(t, filepath.Join(loc, strings.TrimSuffix(o, ".o")+".d"))), loc, dir)
		if d != string(readFile(t, filepath.Join(dir, strings.TrimSuffix(o, ".o")+".d"))) {
			t.Fatalf("dependency file of %s differs", o)
		}
	}
	if n := jobsDone(f); n != int64(remote) {
		t.Fatalf("broker counted %d jobs, want %d", n, remote)
	}
	if d := f.Status(); d.Leases != 0 {
		t.Fatalf("%d leases still active after the build", d.Leases)
	}
}

// TestAgentDoesNotHoldInheritedDescriptors: make passes its jobserver
// pipe, and shells their pipelines, to every dcc; the agent dcc starts
// must not keep them open, or `make | tee` would never end.
func TestAgentDoesNotHoldInheritedDescriptors(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	writeSources(t, dir)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-c", "plain.c", "-o", "plain.o")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), f.Env("pipes")...)
	cmd.ExtraFiles = []*os.File{w} // fd 3 in dcc, like make's jobserver
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil || countRemote(string(out)) != 1 {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	if len(testfarm.AgentPIDs(f.RuntimeDir)) == 0 {
		t.Fatal("no agent running: the test would prove nothing")
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(r)
		done <- err
	}()
	select {
	case <-done: // end of file: nobody else holds the write end
	case <-time.After(5 * time.Second):
		t.Fatal("the agent holds a descriptor inherited from dcc's parent (the pipe never reached end of file)")
	}
}

// TestOutputTooLargeCompilesLocallyWithoutBlamingTheHost: an object that
// does not fit in a frame is the job's property, not the host's fault.
func TestOutputTooLargeCompilesLocallyWithoutBlamingTheHost(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "big", CPUs: 2, Power: 2})
	f.StartBroker()
	wrapDir := t.TempDir()
	wrapper := filepath.Join(wrapDir, "gcc")
	script := `#!/bin/sh
if [ "$1" = -v ]; then exec gcc -v; fi
out=
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
head -c 70000000 /dev/zero > "$out"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.StartVolunteer("big", 2, "--compilers", wrapper)
	f.WaitHosts("big")
	dir, loc := t.TempDir(), t.TempDir()
	writeSources(t, dir)
	writeSources(t, loc)
	r := f.DCC(dir, "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if r.Code != 0 || !strings.Contains(r.Stderr, "too_large") || !strings.Contains(r.Stderr, "compiling locally") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	testfarm.Run(t, loc, nil, "gcc", "-O2", "-c", "plain.c", "-o", "plain.o")
	if string(readFile(t, filepath.Join(dir, "plain.o"))) != string(readFile(t, filepath.Join(loc, "plain.o"))) {
		t.Fatal("the local fallback object differs from gcc's")
	}
	h := testfarm.HostOf(f.Status(), "big")
	if h.Failures != 0 || h.State != "healthy" {
		t.Fatalf("host blamed for a too-large object: state %s, failures %d", h.State, h.Failures)
	}
	if strings.Count(r.Stderr, "lease requested") != 1 {
		t.Fatalf("a too-large object was retried on the farm:\n%s", r.Stderr)
	}
}
