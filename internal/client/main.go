package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dcc-farm/dcc/internal/agentlink"
	"github.com/dcc-farm/dcc/internal/buildinfo"
)

const usage = `Usage:
  dcc COMPILER [ARGS...]        compile through the farm (e.g. dcc gcc -c foo.c)
  dcc status [--json] [--explain HOST]
  dcc farm drain|undrain|unblock HOST   (an admin's credential)
  dcc farm block HOST --reason TEXT
  dcc cache [clear]             the farm's result cache: hit rates (clear: an admin's credential)
  dcc builds [--json]           your recent builds on this machine
  dcc trace [--build ID | --last] --out FILE [--html]
                                a build's timeline: Chrome trace JSON (Perfetto, chrome://tracing) or an HTML page
  dcc trace [--build ID | --last] --summary
  dcc version

Also works as CC="dcc gcc", CMAKE_C_COMPILER_LAUNCHER=dcc, CCACHE_PREFIX=dcc,
or through a symlink named after the compiler (ln -s $(which dcc) ~/bin/gcc).

Configuration (~/.dccrc in TOML, or the file DCC_CONFIG names; the environment wins):
  DCC_BROKER=HOST:PORT      broker = "HOST:PORT"
  DCC_IDENTITY=FILE         identity = "FILE"     (your credential; default ~/.config/dcc/identity.pem,
                                                   from the farm admin: broker enroll user NAME)
  DCC_VERBOSE=1             verbose = true        (log every decision to stderr)
  DCC_MAX_WAIT=60s          max_wait = "60s"      (longest wait for a farm slot)
  DCC_AGENT_IDLE=10m        agent_idle = "10m"    (the agent exits when idle this long)
  DCC_RUNTIME_DIR=DIR       runtime_dir = "DIR"   (agent socket and log)
  DCC_USER=NAME             user = "NAME"         (charge another user: honoured for an admin's credential only;
                                                   a user is always charged as the name in its credential)
  DCC_LOCAL_SLOTS=N         local_slots = N       (compiles run here when the farm is slower; default: CPUs)
  DCC_LOCAL_POWER=P         local_power = P       (this machine's power index; default 1)
  DCC_VERIFY=N              verify = N            (also compile 1 in N farm jobs and cache hits locally and
                                                   compare; a host whose object differs is reported and blocked)
  DCC_CACHE=0               cache = false         (do not use the farm's result cache)
  DCC_BUILDS_DIR=DIR        builds_dir = "DIR"    (build timelines; default ~/.cache/dcc/builds; empty: keep none)
  DCC_KEEP_BUILDS=N         keep_builds = N       (how many builds to keep; default 20)
  DCC_NO_AGENT=1                                  (never start an agent)
`

// Main is dcc's entry point; it returns the exit status.
func Main(argv []string) int {
	base := filepath.Base(argv[0])
	if base != "dcc" && !strings.HasPrefix(base, "dcc.") {
		// Masquerade: invoked through a symlink named after the compiler.
		return Compile(base, argv[1:])
	}
	if len(argv) < 2 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch argv[1] {
	case "status", "farm", "agent", "builds", "cache", "trace":
		return tools(argv[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	case "version", "--version":
		fmt.Println("dcc", buildinfo.ID())
		return 0
	}
	if strings.HasPrefix(argv[1], "-") {
		// distcc compatibility: `dcc -c foo.c` means the default compiler.
		return Compile("cc", argv[1:])
	}
	return Compile(argv[1], argv[2:])
}

// tools runs one of dcc's other commands: it replaces this process with
// dcc-agent (package commands), which links what they need.
func tools(args []string) int {
	path, err := agentlink.ToolsPath()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dcc %s: %v\n", args[0], err)
		return 127
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "dcc %s: %s: %v\n", args[0], path, err)
	return 127
}
