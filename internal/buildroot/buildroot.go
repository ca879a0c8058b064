// Package buildroot finds which build a compile belongs to: the
// outermost build tool among the compiling process's ancestors, read from
// /proc. dcc's agent asks while the job runs (from dcc's parent), so the
// walk is off the compile's path; a dcc that records a local compile asks
// itself, in the same way, so both name the build alike.
package buildroot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A build is what the engineer started: the outermost build tool among
// dcc's ancestors (make -j20, ninja, cmake --build ...), so that every
// compile of one `make` — its sub-makes and ccache in front included —
// lands in one timeline. Without a build tool above it, dcc's parent
// process is the build. It is named by the process and its start time, so
// a later build with a reused pid is another build.

// buildTools are the programs taken for a build's root.
var buildTools = map[string]bool{
	"make": true, "gmake": true, "bmake": true, "pmake": true, "remake": true, "colormake": true,
	"ninja": true, "samu": true, "cmake": true, "ctest": true, "meson": true, "scons": true,
	"bazel": true, "buck": true, "buck2": true, "waf": true, "ant": true, "mvn": true, "gradle": true,
	"cargo": true, "xcodebuild": true, "msbuild": true, "bear": true, "bitbake": true,
}

// glue are the programs that run between one build tool and the next in
// a recursive build (make runs recipes through sh; libtool, ccache and
// env wrap commands). Above the first build tool, the climb to the
// outermost one stops at anything else: a `make -j8` that a test program
// or a CI script started is its own build, not part of the CI's `make`.
var glue = map[string]bool{
	"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "busybox": true,
	"env": true, "nice": true, "ionice": true, "time": true, "timeout": true, "xargs": true, "nohup": true,
	"libtool": true, "ccache": true, "sccache": true, "dcc": true, "distcc": true,
}

// Info identifies one build.
type Info struct {
	ID      string
	Command []string
	Dir     string
	Start   time.Time
}

type proc struct {
	pid, ppid int
	comm      string
	startTick uint64 // clock ticks after boot
}

// readProc reads a process's parent, name and start time from /proc.
func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid ... field 22 is starttime; comm may hold spaces
	// and parentheses, so split at the last ')'.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return proc{}, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 20 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return proc{pid: pid, ppid: ppid, comm: string(b[open+1 : close]), startTick: start}, true
}

// Find names the build of a process whose parent is ppid and whose
// working directory is workDir (the build's directory when its tool's own
// cannot be read). It reads a few small files per ancestor: well under a
// millisecond (BenchmarkFind).
func Find(ppid int, workDir string) Info {
	parent, ok := readProc(ppid)
	if !ok {
		return Info{ID: "unknown", Dir: workDir}
	}
	root := parent // no build tool above: the parent is the build
	found := false
	for p, depth := parent, 0; depth < 64 && p.pid > 1; depth++ {
		if buildTools[p.comm] {
			root, found = p, true // keep climbing: the outermost one is the build
		} else if found && !glue[p.comm] {
			break
		}
		next, ok := readProc(p.ppid)
		if !ok {
			break
		}
		p = next
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%d/%d", root.pid, root.startTick))
	bi := Info{ID: root.comm + "-" + strconv.Itoa(root.pid) + "-" + hex.EncodeToString(h[:4]), Start: bootTime().Add(ticks(root.startTick))}
	bi.ID = sanitizeID(bi.ID)
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(root.pid) + "/cmdline"); err == nil {
		for _, a := range strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") {
			bi.Command = append(bi.Command, a)
		}
	}
	bi.Dir = workDir
	if d, err := os.Readlink("/proc/" + strconv.Itoa(root.pid) + "/cwd"); err == nil {
		bi.Dir = d
	}
	return bi
}

// sanitizeID keeps a build id to the characters a file name may hold.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return strings.TrimLeft(string(b), ".")
}

// ticks converts clock ticks (USER_HZ, 100 on Linux) to a duration.
func ticks(t uint64) time.Duration { return time.Duration(t) * (time.Second / 100) }

// bootTime is when the machine booted (btime in /proc/stat).
func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(s, 0)
			}
		}
	}
	return time.Time{}
}
