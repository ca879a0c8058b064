package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The hook runs from init rather than from main so that every binary that
// links the executor serves as its own helper: the volunteer, and the test
// binaries that run volunteers in-process (an explicit hook in main would
// be missing there, and re-executing such a binary would run its tests
// again instead of a compiler). It acts only on HelperArg, and Main refuses
// to run unless the two pipes a parent passes are there.
func init() {
	if len(os.Args) > 1 && os.Args[1] == HelperArg {
		os.Exit(Main(os.Args[2:]))
	}
}

// Exit codes of a helper that stopped before starting the compiler. The
// parent goes by the report, not by these; they are for a person running
// the helper by hand.
const (
	exitSetup = 125 // setting up the sandbox failed
	exitExec  = 126 // exec of the compiler failed
)

// Main is the helper: it reads the Spec from fd 3, confines itself, reports
// on fd 4, waits for the word on fd 3 and execs the compiler. It returns
// only when something failed (or for a probe), with the exit code to use.
func Main(args []string) int {
	// Niceness, the Landlock domain and the seccomp filter belong to a
	// thread, and the compiler inherits the thread that calls execve: all
	// of it happens on this one. (Package init already runs locked to the
	// main thread; this keeps it so.)
	runtime.LockOSThread()
	if len(args) != 0 || !isPipe(specFD) || !isPipe(reportFD) {
		fmt.Fprintf(os.Stderr, "%s is the volunteer's internal compiler sandbox; it is not run by hand\n", HelperArg)
		return exitSetup
	}
	unix.CloseOnExec(specFD)
	unix.CloseOnExec(reportFD)
	rep := os.NewFile(reportFD, "report")
	in := bufio.NewReaderSize(os.NewFile(specFD, "spec"), 64<<10)
	spec, err := readSpec(in)
	if err != nil {
		return fail(rep, exitSetup, err)
	}
	// Niceness before anything is reported: once the status line is out,
	// the volunteer may renice the job (19 on a draining host), and a
	// setpriority here after that would undo it.
	if err := setNice(spec.Nice); err != nil {
		return fail(rep, exitSetup, err)
	}
	st, err := confine(spec)
	if err != nil {
		return fail(rep, exitSetup, err)
	}
	line, err := json.Marshal(report{Status: &st})
	if err != nil {
		return fail(rep, exitSetup, err)
	}
	line = append(line, '\n')
	if spec.ProbeOnly {
		rep.Write(line)
		return 0
	}
	argv := append([]string{spec.Compiler}, spec.Args...)
	// Limits come last: an RLIMIT_AS below what the Go runtime has mapped
	// leaves this process little room to allocate.
	if err := setRlimits(spec.Limits); err != nil {
		return fail(rep, exitSetup, err)
	}
	if _, err := rep.Write(line); err != nil {
		return exitSetup // the parent is gone
	}
	// The volunteer now records the job's process group and may renice
	// it; the compiler starts only when it says so, and so runs at the
	// right niceness from its first instruction.
	if w, err := in.ReadString('\n'); err != nil || w != goWord {
		return exitSetup // the parent is gone or gave up
	}
	err = syscall.Exec(spec.Compiler, argv, spec.Env)
	return fail(rep, exitExec, fmt.Errorf("exec %s: %w", spec.Compiler, err))
}

// fail reports err to the parent and returns code.
func fail(rep *os.File, code int, err error) int {
	line, _ := json.Marshal(report{Error: err.Error()})
	rep.Write(append(line, '\n'))
	fmt.Fprintf(os.Stderr, "dcc sandbox: %v\n", err)
	return code
}

func isPipe(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}

// readSpec reads the spec, one line of JSON.
func readSpec(in *bufio.Reader) (*Spec, error) {
	var b []byte
	for {
		chunk, err := in.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxSpec {
			return nil, fmt.Errorf("spec over %d bytes", maxSpec)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read spec: %w", err)
		}
		break
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	if !s.ProbeOnly && !filepath.IsAbs(s.Compiler) {
		return nil, fmt.Errorf("compiler %q is not an absolute path", s.Compiler)
	}
	if !filepath.IsAbs(s.Dir) {
		return nil, fmt.Errorf("job directory %q is not an absolute path", s.Dir)
	}
	return &s, nil
}

// confine restricts this process to what spec allows and returns what was
// enforced, checked.
func confine(spec *Spec) (Status, error) {
	if err := checkJobDir(spec.Dir); err != nil {
		return Status{}, err
	}
	// no_new_privs: a setuid program run by the compiler gains nothing,
	// and seccomp needs it. Landlock sets it too, but only if it applies.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return Status{}, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	st, err := applyLandlock(spec)
	if err != nil {
		return st, err
	}
	if spec.Require && !st.FS {
		return st, fmt.Errorf("sandbox required but not enforced: %s", st)
	}
	if spec.DenySockets {
		if st.Sockets, err = denySockets(); err != nil {
			return st, err
		}
	}
	if err := unix.Chdir(spec.Dir); err != nil {
		return st, fmt.Errorf("chdir: %w", err)
	}
	return st, nil
}

// checkJobDir refuses a job directory that is not a private directory of
// this user: the compiler may write only there.
func checkJobDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("job directory: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("job directory %s is not a directory", dir)
	case st.Mode&0o077 != 0:
		return fmt.Errorf("job directory %s is open to others (mode %o)", dir, st.Mode&0o777)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("job directory %s belongs to uid %d", dir, st.Uid)
	}
	return nil
}

// setNice raises this thread's niceness to nice (the compiler inherits the
// thread that execs). It never lowers it: a volunteer that reniced itself
// keeps its jobs at least as nice as itself.
func setNice(nice int) error {
	// The raw getpriority returns 20 - nice.
	cur, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return fmt.Errorf("getpriority: %w", err)
	}
	if 20-cur >= nice {
		return nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, nice); err != nil {
		return fmt.Errorf("setpriority %d: %w", nice, err)
	}
	return nil
}

func setRlimits(l Rlimits) error {
	set := func(name string, res int, v uint64) error {
		// An unprivileged process cannot raise its hard limit: a lower
		// one set by the admin stands.
		var old unix.Rlimit
		if err := unix.Getrlimit(res, &old); err == nil && old.Max < v {
			v = old.Max
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("setrlimit %s %d: %w", name, v, err)
		}
		return nil
	}
	errs := []error{set("CORE", unix.RLIMIT_CORE, 0)}
	for _, r := range []struct {
		name string
		res  int
		v    uint64
	}{
		{"CPU", unix.RLIMIT_CPU, l.CPU},
		{"AS", unix.RLIMIT_AS, l.AS},
		{"FSIZE", unix.RLIMIT_FSIZE, l.FSize},
		{"NPROC", unix.RLIMIT_NPROC, l.NProc},
	} {
		if r.v > 0 {
			errs = append(errs, set(r.name, r.res, r.v))
		}
	}
	return errors.Join(errs...)
}
