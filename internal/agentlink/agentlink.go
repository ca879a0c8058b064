// Package agentlink is how a dcc process reaches its agent (package
// agent): the agent's socket for a credential, broker and build, and
// starting the agent (the dcc-agent binary beside dcc) when none answers.
// It is on every compile's path, so it links nothing heavy: no TLS, no
// yamux, no logging; dcc itself stays a small, quickly started binary.
package agentlink

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dcc-farm/dcc/internal/buildinfo"
)

// Options say which agent to reach: one agent serves one credential,
// broker and build.
type Options struct {
	Broker   string
	Identity string // the user's credential (PEM bundle)
	// User asks to charge another user; the broker honours it only for an
	// admin's credential.
	User       string
	RuntimeDir string
	Idle       time.Duration
	NoStart    bool    // do not start an agent if none runs
	LocalSlots int     // compiles this machine runs at once when the farm is slower
	LocalPower float64 // this machine's power index (1 = reference speed)
	BuildsDir  string  // where the user's build records go ("": none kept)
	KeepBuilds int     // how many builds' records to keep
}

// Build names the agent's build: the dcc-agent binary that Connect would
// start (buildinfo.Of). An agent answers only a dcc that names its build,
// and a rebuilt dcc-agent gets a new socket, so a new agent.
func Build() string {
	buildOnce.Do(func() {
		build = buildinfo.ID()
		// The path the agent's os.Executable will name: links resolved.
		if p, err := ToolsPath(); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			if abs, err := filepath.Abs(p); err == nil {
				build = buildinfo.Of(abs)
			}
		}
	})
	return build
}

var (
	buildOnce sync.Once
	build     string
)

// SocketPath is the agent's socket for these options.
func SocketPath(o Options) string {
	h := sha256.Sum256([]byte(Build() + "\x00" + o.Broker + "\x00" + o.Identity + "\x00" + o.User))
	return filepath.Join(o.RuntimeDir, "agent-"+hex.EncodeToString(h[:6])+".sock")
}

// DefaultIdentity is where a user's credential is when nothing says
// otherwise: ~/.config/dcc/identity.pem.
func DefaultIdentity() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "dcc", "identity.pem"), nil
}

// ErrNoAgent is returned when no agent runs and none could be started.
var ErrNoAgent = errors.New("no agent")

// Connect dials the agent, starting one if none answers.
func Connect(o Options) (net.Conn, error) {
	path := SocketPath(o)
	if c, err := net.Dial("unix", path); err == nil {
		return c, nil
	}
	if o.NoStart {
		return nil, ErrNoAgent
	}
	// An agent without a credential would exit at once: say so now
	// instead of waiting for a socket that never appears. (The agent
	// checks the credential itself; its one-line reason comes back below.)
	if _, err := os.Stat(o.Identity); err != nil {
		return nil, fmt.Errorf("your credential: %w (ask the farm's admin for one: broker enroll user NAME)", err)
	}
	if err := EnsureDir(o.RuntimeDir); err != nil {
		return nil, err
	}
	exited, err := spawn(o, path)
	if err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case code := <-exited:
			// Exit 0 means another agent holds the lock: keep dialling it.
			if code != 0 {
				log := filepath.Join(o.RuntimeDir, "agent.log")
				return nil, fmt.Errorf("%w: agent exited with status %d: %s (see %s)", ErrNoAgent, code, lastLine(log), log)
			}
			exited = nil
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: agent did not come up: %v", ErrNoAgent, err)
		}
		time.Sleep(delay)
	}
}

// lastLine is the last line of the agent's log: why it exited.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// EnsureDir creates the runtime directory, private to this user.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("runtime dir %s belongs to another user", dir)
	}
	return nil
}

// Tools is the binary beside dcc that holds the agent and dcc's
// commands other than compiling (status, farm, cache, builds, trace).
const Tools = "dcc-agent"

// ToolsPath finds dcc-agent: beside this executable (dcc, also when run
// through a masquerade link), else on PATH.
func ToolsPath() (string, error) {
	if self, err := os.Executable(); err == nil {
		// LookPath of a path only checks that it is an executable file.
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(self), Tools)); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(Tools)
	if err != nil {
		return "", fmt.Errorf("%s is not installed beside dcc or on PATH", Tools)
	}
	return p, nil
}

// spawn starts `dcc-agent agent` detached from the build: its own
// session, no inherited pipes (so `make | tee` ends), output to a log
// file. The returned channel yields the agent's exit status if it exits.
func spawn(o Options, sock string) (<-chan int, error) {
	tools, err := ToolsPath()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(o.RuntimeDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(tools, "agent", "--socket", sock, "--broker", o.Broker, "--identity", o.Identity,
		"--user", o.User, "--idle", o.Idle.String(), "--local-slots", fmt.Sprint(o.LocalSlots),
		"--local-power", fmt.Sprint(o.LocalPower), "--builds-dir", o.BuildsDir, "--keep-builds", fmt.Sprint(o.KeepBuilds))
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// dcc inherits descriptors from make, ccache or a shell pipeline (the
	// jobserver pipe, the pipe `| tee` reads). The long-lived agent must
	// not hold them, or the build's pipeline never sees end-of-file.
	restore := closeInheritedOnExec()
	err = cmd.Start()
	restore()
	if err != nil {
		return nil, err
	}
	exited := make(chan int, 1)
	go func() {
		cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	return exited, nil
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec
// and returns a function that restores the ones it changed, so that a
// later local compile still inherits make's jobserver.
func closeInheritedOnExec() (restore func()) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return func() {}
	}
	var changed []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err == nil {
			changed = append(changed, fd)
		}
	}
	return func() {
		for _, fd := range changed {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
				unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
			}
		}
	}
}
