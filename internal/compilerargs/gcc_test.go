package compilerargs

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Sources for the real-compiler test. h.h lives in inc/ so that -I, -include
// and -isystem matter; __FILE__ and __OPTIMIZE__ check that preprocessing
// sees the same file name and flags as a one-step compile.
var gccFiles = map[string]string{
	"inc/h.h": "#ifndef H_H\n#define H_H\n#define VAL_DEFAULT 41\nstruct point { int x, y; };\n#endif\n",
	"x.c": `#include "h.h"
#include <string.h>
#ifndef VAL
#define VAL VAL_DEFAULT
#endif
static const char *where = __FILE__;
int opt(void) {
#ifdef __OPTIMIZE__
	return 1;
#else
	return 0;
#endif
}
int f(struct point p) { return p.x * VAL + p.y + (int)strlen(where); }
`,
	"y.cpp": `#include "h.h"
#include <vector>
template <typename T> T sum(const std::vector<T>& v) { T s{}; for (auto& e : v) s += e; return s; }
int g() { std::vector<int> v{1, 2, VAL_DEFAULT}; return sum(v); }
struct S { S(); int n; };
S::S() : n(__LINE__) {}
S s;
`,
	"pre.i": "# 1 \"pre.c\"\nint pre(int a) { return a * 3; }\n",
	"a.s":   "\t.text\n\t.globl asmfn\n\t.type asmfn, @function\nasmfn:\n\tret\n",
}

// TestRealGCC runs plans for real: a plain local compile, then the local
// preprocess step and the remote compile (in another directory), and
// requires identical objects and dependency files.
func TestRealGCC(t *testing.T) {
	for _, cc := range []string{"gcc", "g++", "clang"} {
		if _, err := exec.LookPath(cc); err != nil {
			t.Fatalf("%s not found: this test needs a real compiler", cc)
		}
	}
	cases := []struct {
		name string
		cc   string
		args string
		dep  string // dependency file written by the plain compile, "" if none
		// stripDebug: compare the objects after objcopy --strip-debug.
		// With column info (-g) DW_AT_decl_column of declarations that
		// come from macro expansions differs (the -E output has the
		// expansion, e.g. size_t's __SIZE_TYPE__), and with -g3 the
		// .debug_macro section is laid out differently. distcc and gcc
		// -save-temps have the same property; the code is identical.
		stripDebug bool
	}{
		{"plain -c -O2", "gcc", "-c -O2 -Iinc x.c", "", false},
		{"-o subdir", "gcc", "-c -O2 -Iinc x.c -o sub/x.o", "", false},
		{"separate-arg options", "gcc", "-c -I inc -D VAL=7 -include inc/h.h -isystem inc -U NOTHING x.c -o x.o", "", false},
		{"-MD", "gcc", "-c -O2 -Iinc -MD x.c -o sub/x.o", "sub/x.d", false},
		{"-MD no -o", "gcc", "-c -Iinc -MD -MP x.c", "x.d", false},
		{"-MMD -MF custom.d", "gcc", "-c -Iinc -MMD -MF custom.d x.c -o sub/x.o", "custom.d", false},
		{"-MD -MT custom", "gcc", "-c -Iinc -MD -MT custom x.c -o sub/x.o", "sub/x.d", false},
		{"-MD -MQ", "gcc", "-c -Iinc -MD -MQ $odd x.c -o sub/x.o", "sub/x.d", false},
		{"-Wp,-MMD (kernel style)", "gcc", "-c -Iinc -Wp,-MMD,sub/.x.o.d x.c -o sub/x.o", "sub/.x.o.d", false},
		{"-S", "gcc", "-S -O2 -Iinc x.c -o sub/x.s", "", false},
		{"-S -MD no -o", "gcc", "-S -Iinc -MD x.c", "x.d", false},
		{"-g without column info", "gcc", "-c -g -gno-column-info -O1 -Iinc x.c -o sub/x.o", "", false},
		{"-g prefix map without column info", "gcc", "-c -g -gno-column-info -Iinc -fdebug-prefix-map=/tmp=/build x.c -o x.o", "", false},
		{"-g", "gcc", "-c -g -O1 -Iinc x.c -o sub/x.o", "", true},
		{"-g3", "gcc", "-c -g3 -Iinc x.c -o x.o", "", true},
		{"warnings and target flags", "gcc", "-c -O2 -Wall -Wextra -fPIC -m64 -march=x86-64-v2 -std=gnu11 -Iinc -DNDEBUG x.c", "", false},
		{"g++", "g++", "-c -O2 -std=c++17 -Iinc -MMD y.cpp -o sub/y.o", "sub/y.d", false},
		{"g++ -x c++", "g++", "-x c++ -c -O1 -Iinc x.c -o sub/xx.o", "", false},
		{"preprocessed .i", "gcc", "-c -O2 -MD pre.i -o pre.o", "", false},
		{"assembler .s", "gcc", "-c -Wa,--noexecstack a.s -o sub/a.o", "", false},
		{"CMake Release", "gcc", "-O3 -DNDEBUG -fPIC -std=gnu11 -Iinc -MD -MT x.o -MF x.o.d -o x.o -c x.c", "x.o.d", false},
		{"kernel style", "gcc", "-Wp,-MMD,sub/.x.o.d -Iinc -D__KERNEL__ -std=gnu11 -fshort-wchar -funsigned-char -fno-common -fno-PIE " +
			"-fno-strict-aliasing -mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx -mno-red-zone -mcmodel=kernel " +
			"-fno-asynchronous-unwind-tables -fno-jump-tables -fcf-protection=none -falign-jumps=1 -falign-loops=1 " +
			"-fstack-protector-strong -mstack-protector-guard-reg=gs -fno-omit-frame-pointer -fno-optimize-sibling-calls " +
			"-fzero-call-used-regs=used-gpr -ftrivial-auto-var-init=zero -pg -mrecord-mcount -mfentry -falign-functions=16 " +
			"-fno-strict-overflow -fconserve-stack -Wall -Wundef -Wno-sign-compare -Werror=implicit-function-declaration " +
			"-Wframe-larger-than=2048 -Wimplicit-fallthrough=5 -O2 -c x.c -o sub/x.o", "sub/.x.o.d", false},
		{"link-only flags in CFLAGS", "gcc", "-O2 -static -pie -rdynamic -nostdlib -fuse-ld=bfd -Wl,--as-needed -Iinc -c x.c -o sub/x.o", "", false},
		{"clang", "clang", "-O2 -fcolor-diagnostics -Qunused-arguments -Wall -fPIC -Iinc -MD -c x.c -o sub/x.o", "sub/x.d", false},
		{"clang++", "clang", "-O2 -std=c++17 -fno-exceptions -fvisibility=hidden -Iinc -c y.cpp -o sub/y.o", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := sp(c.args)
			p := Classify(args)
			if !p.Remote {
				t.Fatalf("Classify(%q) is local: %s", c.args, p.Reason)
			}
			dir := t.TempDir()
			for name, text := range gccFiles {
				writeFile(t, filepath.Join(dir, name), text)
			}
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}

			// 1. The plain local compile; move its outputs aside.
			run(t, dir, nil, c.cc, args...)
			localObj := readAndRemove(t, filepath.Join(dir, p.Output))
			var localDep []byte
			if c.dep != "" {
				localDep = readAndRemove(t, filepath.Join(dir, c.dep))
			}
			if p.DepFile != "" && p.DepFile != c.dep {
				t.Errorf("Plan.DepFile = %q, plain compile wrote %q", p.DepFile, c.dep)
			}

			// 2. The local preprocess step, in the same directory.
			shipped := filepath.Join(dir, p.Source)
			if !p.Preprocessed {
				var out bytes.Buffer
				run(t, dir, &out, c.cc, p.PreprocessArgs...)
				shipped = filepath.Join(t.TempDir(), "shipped"+p.PreprocessedExt)
				writeFile(t, shipped, out.String())
				if _, err := os.Stat(filepath.Join(dir, p.Output)); err == nil {
					t.Errorf("preprocess step wrote %s", p.Output)
				}
			}
			if c.dep != "" {
				dep := readAndRemove(t, filepath.Join(dir, c.dep))
				if !bytes.Equal(dep, localDep) {
					t.Errorf("dependency file differs:\nplain:\n%s\npreprocess step:\n%s", localDep, dep)
				}
			}

			// 3. The remote compile, in another directory, as the executor
			// runs it.
			rdir := t.TempDir()
			text, err := os.ReadFile(shipped)
			if err != nil {
				t.Fatal(err)
			}
			job := "job" + p.PreprocessedExt
			writeFile(t, filepath.Join(rdir, job), string(text))
			if err := CheckRemoteArgs(p.RemoteArgs); err != nil {
				t.Fatalf("farm host would refuse: %v", err)
			}
			action := "-c"
			if p.OutputKind == ".s" {
				action = "-S"
			}
			remoteArgs := append(append([]string{}, p.RemoteArgs...), action, job, "-o", "remote"+p.OutputKind)
			run(t, rdir, nil, c.cc, remoteArgs...)
			remoteObj := readAndRemove(t, filepath.Join(rdir, "remote"+p.OutputKind))
			if c.stripDebug {
				localObj = stripDebug(t, localObj)
				remoteObj = stripDebug(t, remoteObj)
			}
			if !bytes.Equal(localObj, remoteObj) {
				t.Errorf("remote output differs from the plain compile (%d vs %d bytes)\npreprocess: %q\nremote: %q",
					len(localObj), len(remoteObj), p.PreprocessArgs, remoteArgs)
			}
		})
	}
}

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAndRemove(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs a compiler in dir, with a clean environment for the variables
// gcc reads (DEPENDENCIES_OUTPUT would add dependency output of its own).
func run(t *testing.T, dir string, stdout *bytes.Buffer, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "DEPENDENCIES_OUTPUT" || k == "SUNPRO_DEPENDENCIES" ||
			k == "GCC_EXEC_PREFIX" || k == "COMPILER_PATH" || k == "CPATH" || k == "C_INCLUDE_PATH" ||
			k == "CPLUS_INCLUDE_PATH" || k == "SOURCE_DATE_EPOCH" {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q in %s: %v\n%s", name, args, dir, err, stderr.String())
	}
}

// stripDebug returns obj without its debug sections.
func stripDebug(t *testing.T, obj []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "in.o"), string(obj))
	run(t, dir, nil, "objcopy", "--strip-debug", "in.o", "out.o")
	return readAndRemove(t, filepath.Join(dir, "out.o"))
}

// TestLinkOnlyFlagsDoNotReachTheCompiler checks, against the real gcc,
// that Classify may drop the linkOnly flags from the remote command: with
// -c, gcc runs cc1 and as with exactly the same arguments with or without
// each of them.
func TestLinkOnlyFlagsDoNotReachTheCompiler(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.c"), "int x;\n")
	commands := func(flag string) string {
		args := []string{"-###", "-c", "x.c", "-o", "x.o"}
		if flag != "" {
			args = append(args, flag)
		}
		cmd := exec.Command("gcc", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gcc %q: %v\n%s", args, err, out)
		}
		// The commands gcc would run are the lines starting with a
		// space; temporary file names differ from run to run.
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, " ") {
				lines = append(lines, tmpName.ReplaceAllString(l, "TMP"))
			}
		}
		if len(lines) < 2 {
			t.Fatalf("gcc -### printed no commands:\n%s", out)
		}
		return strings.Join(lines, "\n")
	}
	base := commands("")
	flags := slices.Sorted(maps.Keys(linkOnly))
	for _, f := range flags {
		if got := commands(f); got != base {
			t.Errorf("%s changes the compile commands:\n%s\nwithout it:\n%s", f, got, base)
		}
		p := Classify([]string{"-c", "x.c", f})
		if !p.Remote || len(p.RemoteArgs) != 0 || !slices.Contains(p.PreprocessArgs, f) {
			t.Errorf("Classify(-c x.c %s) = %+v, want it kept locally and not sent", f, p)
		}
	}
}

var tmpName = regexp.MustCompile(`[^ "]*/cc[A-Za-z0-9]{6}\.[a-z]+`)
