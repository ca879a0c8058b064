// Package agent is the per-user local daemon that `dcc` processes talk to
// over a unix socket. It keeps one authenticated yamux session to the
// broker and reuses sessions to volunteers, so that a compile costs a few
// stream opens instead of TCP connections and handshakes. The first `dcc`
// that finds no agent starts one; the agent exits after an idle period.
//
// A dcc process that dies closes its socket; the agent then cancels its
// lease wait or job, which closes the lease stream (the broker frees the
// slot) and the job stream (the volunteer kills the compiler).
package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dcc-farm/dcc/internal/buildinfo"
)

// Options say which agent to reach: one agent serves one user, broker,
// key and build.
type Options struct {
	Broker     string
	KeyFile    string
	User       string
	RuntimeDir string
	Idle       time.Duration
	NoStart    bool    // do not start an agent if none runs
	LocalSlots int     // compiles this machine runs at once when the farm is slower
	LocalPower float64 // this machine's power index (1 = reference speed)
}

// SocketPath is the agent's socket for these options.
func SocketPath(o Options) string {
	h := sha256.Sum256([]byte(buildinfo.ID() + "\x00" + o.Broker + "\x00" + o.KeyFile + "\x00" + o.User))
	return filepath.Join(o.RuntimeDir, "agent-"+hex.EncodeToString(h[:6])+".sock")
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
	if err := ensureDir(o.RuntimeDir); err != nil {
		return nil, err
	}
	if err := spawn(o, path); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: agent did not come up: %v", ErrNoAgent, err)
		}
		time.Sleep(delay)
	}
}

// ensureDir creates the runtime directory, private to this user.
func ensureDir(dir string) error {
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

// spawn starts `dcc agent` detached from the build: its own session, no
// inherited pipes (so `make | tee` ends), output to a log file.
func spawn(o Options, sock string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(o.RuntimeDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "agent", "--socket", sock, "--broker", o.Broker, "--key", o.KeyFile,
		"--user", o.User, "--idle", o.Idle.String(), "--local-slots", fmt.Sprint(o.LocalSlots),
		"--local-power", fmt.Sprint(o.LocalPower))
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
