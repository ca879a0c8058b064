package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// newest is the newest ABI go-landlock knows, in best-effort mode: it
// handles every right the kernel knows and silently drops the rest, so a
// newer kernel enforces more (UDP from ABI 10, named unix sockets from 9)
// without a change here. Everything handled and not granted below is
// denied: all of TCP bind and connect, signals and abstract unix sockets
// out of the sandbox, and every filesystem right outside the rules.
var newest = landlock.V11.BestEffort()

// The rights granted. Nothing is granted for Refer (linking or renaming
// across directories), symlinks, devices, fifos or sockets, anywhere.
const (
	readFile = ll.AccessFSReadFile
	readDir  = ll.AccessFSReadFile | ll.AccessFSReadDir
	execFile = ll.AccessFSReadFile | ll.AccessFSExecute
	execDir  = readDir | ll.AccessFSExecute
	// rwFile is for /dev/null.
	rwFile = ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate
	// jobDir: what a compiler does with its temporary and output files,
	// and nothing it could execute.
	jobDir = readDir | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSMakeReg |
		ll.AccessFSMakeDir | ll.AccessFSRemoveFile | ll.AccessFSRemoveDir
)

// kernelABI is the Landlock ABI go-landlock uses on this kernel: what the
// kernel reports, capped at the newest the library knows, and lowered to 5
// when the kernel lacks the fix for the signal scoping erratum (the
// library does the same, and the Status must say what it did).
func kernelABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	if v > 11 {
		v = 11
	}
	if v >= 6 {
		if e, err := ll.LandlockGetErrata(); err != nil || e&0x2 == 0 {
			v = 5
		}
	}
	return v
}

// rules turns the Spec's paths into Landlock rules. A path that does not
// exist is skipped (the compiler fails on it if it needs it); one named in
// a directory list that is a file gets the file subset of the rights,
// which Landlock requires.
func rules(spec *Spec) []landlock.Rule {
	var out []landlock.Rule
	add := func(access landlock.AccessFSSet, files bool, paths []string) {
		for _, p := range paths {
			a := access
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				a &= execFile | rwFile
			} else if err == nil && files {
				continue // a directory where a file was meant: grant nothing
			}
			out = append(out, landlock.PathAccess(a, p).IgnoreIfMissing())
		}
	}
	add(execFile, true, spec.Paths.ExecFiles)
	add(execDir, false, spec.Paths.ExecDirs)
	add(readDir, false, spec.Paths.ReadDirs)
	add(readFile, true, spec.Paths.ReadFiles)
	out = append(out,
		landlock.PathAccess(rwFile, os.DevNull).IgnoreIfMissing(),
		landlock.PathAccess(jobDir, spec.Dir))
	return out
}

// applyLandlock restricts this thread and checks the result by trying
// what is now forbidden: a claimed restriction that does not hold is an
// error, never a quieter report.
func applyLandlock(spec *Spec) (Status, error) {
	abi := kernelABI()
	// Only this thread is restricted, not the whole process as
	// Config.Restrict does (through libpsx, which costs milliseconds per
	// job): the compiler inherits the thread that calls execve, which is
	// this one (Main locks it), and nothing else runs here before that.
	fd, flags, err := newest.NewRulesetFD(rules(spec)...)
	if err != nil {
		return Status{}, fmt.Errorf("landlock: %w", err)
	}
	if fd >= 0 {
		err := ll.LandlockRestrictSelf(fd, flags)
		unix.Close(fd)
		if err != nil {
			return Status{}, fmt.Errorf("landlock_restrict_self: %w", err)
		}
	}
	st := Status{ABI: abi}
	if st.FS, err = writeDenied(filepath.Dir(spec.Dir)); err != nil {
		return st, err
	}
	st.Net = tcpDenied()
	st.Scoped = unix.Kill(os.Getppid(), 0) == unix.EPERM
	switch {
	case abi == 0:
		// Something else (a read-only mount, another LSM) may refuse the
		// same operations; only Landlock's own word counts.
		st = Status{}
	case !st.FS:
		return st, fmt.Errorf("landlock ABI %d applied but a directory could be created beside the job directory", abi)
	case abi >= 4 && !st.Net:
		return st, fmt.Errorf("landlock ABI %d applied but a TCP connect was not refused", abi)
	case abi >= 6 && !st.Scoped:
		return st, fmt.Errorf("landlock ABI %d applied but the volunteer could still be signalled", abi)
	}
	return st, nil
}

// writeDenied tries to create a directory in parent, which no rule allows.
func writeDenied(parent string) (bool, error) {
	p := filepath.Join(parent, ".dcc-sandbox-check-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	switch err := unix.Mkdir(p, 0o700); {
	case err == nil:
		return false, os.Remove(p)
	case errors.Is(err, unix.EACCES):
		return true, nil
	default:
		return false, fmt.Errorf("checking the sandbox: mkdir %s: %w", p, err)
	}
}

// tcpDenied says whether a TCP connect to the loopback is refused by a
// rule: Landlock answers EACCES before any packet is sent, where an open
// network gives a connection or ECONNREFUSED.
func tcpDenied() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}}) == unix.EACCES
}
