package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock restricts TCP from ABI 4 (kernel 6.7) and UDP only from ABI 10,
// and connecting to a named unix socket (an ssh agent, the user's dcc
// agent, a docker socket) only from ABI 9. A compiler never needs a
// socket, so a seccomp filter refuses socket(2) outright, on every kernel
// since 3.5 and whatever the Landlock ABI. io_uring can create sockets
// without calling socket(2), so it is refused too.

// denied is one system call the filter refuses, with the errno it returns.
type denied struct {
	nr    uint32
	errno unix.Errno
}

// arch is one system call table a process of this architecture can use.
type arch struct {
	audit uint32 // AUDIT_ARCH_* as seen in seccomp_data.arch
	deny  []denied
}

// x32 marks the x32 system call table on amd64 (same numbers, this bit set).
const x32 = 0x40000000

// tables lists, per GOARCH, every table a process may call through,
// including the 32-bit compat ones: a filter that checked only the native
// numbers would let a 32-bit program through.
var tables = map[string][]arch{
	"amd64": {
		{unix.AUDIT_ARCH_X86_64, []denied{{41, unix.EACCES}, {41 | x32, unix.EACCES}, {425, unix.ENOSYS}, {425 | x32, unix.ENOSYS}}},
		{unix.AUDIT_ARCH_I386, []denied{{102, unix.EACCES} /* socketcall */, {359, unix.EACCES}, {425, unix.ENOSYS}}},
	},
	"arm64": {
		{unix.AUDIT_ARCH_AARCH64, []denied{{198, unix.EACCES}, {425, unix.ENOSYS}}},
		{unix.AUDIT_ARCH_ARM, []denied{{281, unix.EACCES}, {425, unix.ENOSYS}}},
	},
}

// Offsets in struct seccomp_data.
const (
	offNR   = 0
	offArch = 4
)

// filter builds the BPF program: for each table, if the architecture
// matches, return the errno for a denied number; everything else passes.
func filter(archs []arch) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, skipIfNot uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jf: skipIfNot}
	}
	var p []unix.SockFilter
	for _, a := range archs {
		body := 2*len(a.deny) + 2 // load nr, the pairs, allow
		p = append(p,
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
			jeq(a.audit, uint8(body)),
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNR))
		for _, d := range a.deny {
			p = append(p, jeq(d.nr, 1), stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(d.errno)))
		}
		p = append(p, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	}
	return append(p, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
}

// denySockets installs the filter on this thread, which execs the compiler
// (seccomp filters, like Landlock domains, belong to a thread and are
// inherited across exec), and checks that socket(2) now fails.
// It reports false, without error, where it has no table for this
// architecture or the kernel has no seccomp filters.
func denySockets() (bool, error) {
	archs, ok := tables[runtime.GOARCH]
	if !ok {
		return false, nil
	}
	prog := filter(archs)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno == 0:
	case errno == unix.ENOSYS || errno == unix.EINVAL:
		return false, nil // no seccomp filters in this kernel
	default:
		return false, fmt.Errorf("seccomp: %w", errno)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return false, fmt.Errorf("seccomp filter installed but socket(2) still works")
	}
	if err != unix.EACCES {
		return false, fmt.Errorf("checking the seccomp filter: socket: %w", err)
	}
	return true, nil
}
