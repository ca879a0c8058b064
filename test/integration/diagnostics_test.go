package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// diagCorpus holds sources that make gcc and clang print the kinds of
// diagnostics engineers read all day: source lines with carets and
// ranges, labels, fix-it hints, notes, macro-expansion notes, include
// chains, format-string ranges, function context, middle-end warnings,
// preprocessor warnings and errors.
var diagCorpus = map[string]string{
	"d_util.h": `#pragma once
#define SQ(x) ((x)*(x))
#define MAXU(a, b) ((a) > (b) ? (a) : (b))
static inline int hdr(int y) { int z; return y + z; }
`,
	"d_warn.c": `#include <stdio.h>
#include "d_util.h"
int f(int x) { int unused; return SQ(x) + hdr(x); }
static int s(void) { return 1; }
int m(int a, unsigned b) { return MAXU(a, b); }
void pr(long v) { printf("%d %s\n", v, 3); }
int sw(int k) { switch (k) { case 1: k++; case 2: return k; } return 0; }
int ind(int c) { if (c)
		c++;
		c--; return c; }
#warning "a preprocessor warning"
`,
	"d_err.c": `#include "d_util.h"
struct pt { int x, y; };
int g(struct pt *p) { return p->z + undefined_count; }
int h(void) { int counter = 0; return countr; }
`,
	"d_cxx.cpp": `#include <vector>
#include "d_util.h"
struct A { int b; int a; A() : a(1), b(2) {} };
int use(std::vector<int>& v) { int n = 0; for (int i = 0; i < v.size(); i++) n += SQ(v[i]); return n; }
[[deprecated("use other")]] int old();
int call() { return old(); }
`,
	"d_cxxerr.cpp": `#include <string>
int f(std::string s) { return s.lenght(); }
`,
	"d_clean.c": `int clean(int x) { return x * 2; }
`,
}

// stripDCC removes dcc's own DCC_VERBOSE lines from stderr.
func stripDCC(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, "dcc[") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func farmJobs(d *status.Doc) int64 {
	var n int64
	for _, h := range d.Hosts {
		n += h.JobsDone
	}
	return n
}

// TestDiagnosticsIdenticalToLocal compiles the corpus with gcc, g++, clang
// and clang++, plain and with -fdiagnostics-color=always, locally and
// through dcc, and requires dcc's stdout, stderr and exit code to be
// byte-identical to the local compiler's, and its object (when there is
// one) too. clang's jobs must have compiled on the farm (its includes are
// inlined, macros and lines kept as written); gcc's files that print
// diagnostics are compiled on the farm once, then locally for gcc's exact
// output, and on the next build locally at once.
func TestDiagnosticsIdenticalToLocal(t *testing.T) {
	f := startFarm(t)
	files := []string{"d_warn.c", "d_err.c", "d_cxx.cpp", "d_cxxerr.cpp", "d_clean.c"}
	flagSets := [][]string{{"-O2", "-Wall", "-Wextra", "-Wimplicit-fallthrough"}, {"-O2", "-Wall", "-fdiagnostics-color=always"}}
	for _, cc := range []string{"gcc", "clang"} {
		for fi, flags := range flagSets {
			for _, src := range files {
				driver := cc
				if strings.HasSuffix(src, ".cpp") {
					driver = map[string]string{"gcc": "g++", "clang": "clang++"}[cc]
				}
				t.Run(fmt.Sprintf("%s/%d/%s", driver, fi, src), func(t *testing.T) {
					localDir, dccDir := t.TempDir(), t.TempDir()
					for _, d := range []string{localDir, dccDir} {
						for name, text := range diagCorpus {
							os.WriteFile(filepath.Join(d, name), []byte(text), 0o644)
						}
					}
					obj := strings.TrimSuffix(src, filepath.Ext(src)) + ".o"
					args := append(append([]string{}, flags...), "-c", src, "-o", obj)
					loc := testfarm.Run(t, localDir, nil, driver, args...)
					before := farmJobs(f.Status())
					for build := 1; build <= 2; build++ {
						os.Remove(filepath.Join(dccDir, obj))
						rem := f.DCC(dccDir, append([]string{driver}, args...)...)
						if rem.Code != loc.Code || rem.Stdout != loc.Stdout || stripDCC(rem.Stderr) != loc.Stderr {
							t.Fatalf("build %d: dcc differs from local %s\nexit: local %d dcc %d\n--- local stderr:\n%s\n--- dcc stderr:\n%s",
								build, driver, loc.Code, rem.Code, loc.Stderr, rem.Stderr)
						}
						lo, lerr := os.ReadFile(filepath.Join(localDir, obj))
						ro, rerr := os.ReadFile(filepath.Join(dccDir, obj))
						if (lerr == nil) != (rerr == nil) || !bytes.Equal(lo, ro) {
							t.Fatalf("build %d: object differs from local (local %v, dcc %v)", build, lerr, rerr)
						}
						// The broker counts a job when its lease is released,
						// which may trail dcc's exit by a moment.
						want := before + int64(build)
						if cc == "gcc" && (loc.Stderr != "" || loc.Code != 0) {
							want = before + 1 // on the farm once, then locally at once
						}
						f.WaitStatus(func(d *status.Doc) bool { return farmJobs(d) == want }, 5*time.Second,
							fmt.Sprintf("build %d: %d farm jobs\n%s", build, want-before, rem.Stderr))
					}
				})
			}
		}
	}
}
