// Package sandbox confines one compile on a volunteer: a small helper, the
// volunteer binary re-executed as `volunteer __sandbox`, sets the job's
// rlimits and niceness on itself, restricts itself with Landlock (read and
// execute only the toolchain and system directories, write only the job
// directory, no TCP) and a seccomp filter (no sockets), checks what the
// kernel actually enforced, reports it to the volunteer, and execs the
// compiler, which inherits all of it together with every process it starts.
//
// The package owns the Spec the volunteer hands the helper, the helper
// itself (Main), the directories a toolchain needs (Toolchain), starting
// the helper and reading its report (Command), and the start-up check of
// what this kernel gives (Probe). docs/security.md says what each kernel
// gives and what the sandbox does not stop.
package sandbox

import (
	"fmt"
	"strings"
)

// HelperArg is the first argument that turns a binary linking this package
// into the helper (see init in helper.go).
const HelperArg = "__sandbox"

// The helper's two extra file descriptors, both close-on-exec in the
// helper. The parent writes the Spec on specFD, one line of JSON, and
// later goWord; it reads the helper's report from reportFD, and sees end
// of file there exactly when the compiler starts.
const (
	specFD   = 3
	reportFD = 4
	goWord   = "go\n"
)

// Caps on what crosses the pipes, so that neither side reads without bound.
const (
	maxSpec   = 1 << 20
	maxReport = 64 << 10
)

// Spec is one job as the helper runs it. It travels as JSON on a pipe.
type Spec struct {
	Compiler string   `json:"compiler"` // absolute path; also argv[0]
	Args     []string `json:"args"`     // arguments after argv[0]
	Env      []string `json:"env"`      // the compiler's whole environment
	// Dir is the job directory the volunteer created (0700, empty but for
	// the source): the compiler's working directory and the only place it
	// may write. The volunteer creates and removes it, so it is gone after
	// the job however the helper or the compiler ends.
	Dir    string  `json:"dir"`
	Limits Rlimits `json:"limits"`
	Nice   int     `json:"nice"` // niceness of the compiler (raised to, never lowered)
	Paths  Paths   `json:"paths"`
	// Require fails the job unless Landlock restricts the filesystem.
	Require bool `json:"require,omitempty"`
	// DenySockets installs the seccomp filter that makes socket(2) fail.
	DenySockets bool `json:"deny_sockets,omitempty"`
	// ProbeOnly sets everything up, checks and reports it, and exits
	// instead of starting a compiler (Probe uses it).
	ProbeOnly bool `json:"probe_only,omitempty"`
}

// Rlimits are set on the helper before it execs the compiler, so they bind
// the compiler from its first instruction and every process it starts.
// Zero leaves a limit as it is; RLIMIT_CORE is always 0.
type Rlimits struct {
	CPU   uint64 `json:"cpu"`   // RLIMIT_CPU, seconds
	AS    uint64 `json:"as"`    // RLIMIT_AS, bytes
	FSize uint64 `json:"fsize"` // RLIMIT_FSIZE, bytes
	NProc uint64 `json:"nproc"` // RLIMIT_NPROC: counts every process and thread of the user, not only the job's
}

// Paths is what a compiler may use besides the job directory. Landlock
// resolves each path when the rule is added, so a link names its target.
type Paths struct {
	ExecFiles []string `json:"exec_files,omitempty"` // read and execute
	ExecDirs  []string `json:"exec_dirs,omitempty"`  // read and execute anything beneath
	ReadDirs  []string `json:"read_dirs,omitempty"`  // read anything beneath
	ReadFiles []string `json:"read_files,omitempty"` // read
}

// merge appends q's paths to p's.
func (p Paths) merge(q Paths) Paths {
	return Paths{
		ExecFiles: append(append([]string{}, p.ExecFiles...), q.ExecFiles...),
		ExecDirs:  append(append([]string{}, p.ExecDirs...), q.ExecDirs...),
		ReadDirs:  append(append([]string{}, p.ReadDirs...), q.ReadDirs...),
		ReadFiles: append(append([]string{}, p.ReadFiles...), q.ReadFiles...),
	}
}

// Config is the volunteer's sandbox policy: the [sandbox] table of its
// TOML file. The zero value is the default.
type Config struct {
	// ReadDirs are more directories compilers may read, for toolchains
	// that keep files where Toolchain does not look.
	ReadDirs []string `toml:"read_dirs"`
	// ExecDirs are more directories compilers may read and run programs
	// from (a toolchain under /opt whose driver runs helpers of its own).
	ExecDirs []string `toml:"exec_dirs"`
	// Require refuses jobs (a farm error, so clients compile locally)
	// unless Landlock restricts the filesystem.
	Require bool `toml:"require"`
	// Helper is the binary run as the helper; "" means this executable,
	// which handles HelperArg because it links this package.
	Helper string `toml:"-"`
	// Pool, when set, supplies helpers started ahead of jobs (NewPool).
	Pool *Pool `toml:"-"`
}

// Status is what the helper found enforced for a job, each item checked by
// trying what it forbids after the restriction.
type Status struct {
	ABI int `json:"abi"` // Landlock ABI in force (0: none)
	// FS: creating a directory beside the job directory failed.
	FS bool `json:"fs"`
	// Net: a TCP connect to 127.0.0.1 failed with EACCES (Landlock ABI >= 4).
	Net bool `json:"net"`
	// Scoped: signalling the volunteer failed (Landlock ABI >= 6), so the
	// compiler cannot signal processes outside its sandbox or reach
	// abstract unix sockets.
	Scoped bool `json:"scoped"`
	// Sockets: socket(2) failed under the seccomp filter, so no network of
	// any kind (UDP, unix sockets, raw) on any Landlock ABI.
	Sockets bool `json:"sockets"`
}

// String is one line for logs and `dcc status`, loud when the filesystem
// is open.
func (s Status) String() string {
	var b strings.Builder
	if !s.FS {
		b.WriteString("NO SANDBOX: ")
		if s.ABI == 0 {
			b.WriteString("kernel has no Landlock")
		} else {
			fmt.Fprintf(&b, "landlock ABI %d did not restrict the filesystem", s.ABI)
		}
		b.WriteString("; compilers can read every file this user can")
	} else {
		fmt.Fprintf(&b, "landlock ABI %d: filesystem", s.ABI)
		if s.Net {
			b.WriteString(" and network")
		}
		b.WriteString(" restricted")
		if s.Scoped {
			b.WriteString(", signals scoped")
		}
	}
	if s.Sockets {
		b.WriteString("; seccomp: no sockets")
	} else if !s.Net {
		b.WriteString("; NETWORK OPEN: compilers can connect out")
	}
	return b.String()
}

// report is one line on reportFD: the status once set up, or the error
// that stopped the job before the compiler ran.
type report struct {
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}
