package testfarm

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Distccd is a stock distccd (Debian's distcc package, which
// scripts/deps.sh installs) started by a test on a free loopback port.
type Distccd struct {
	Addr string
	cmd  *exec.Cmd
	log  syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Log is what distccd logged so far (one COMPILE_OK line per job it ran).
func (d *Distccd) Log() string { return d.log.String() }

// Compiled counts the jobs distccd ran to completion.
func (d *Distccd) Compiled() int {
	return strings.Count(d.Log(), "COMPILE_OK") + strings.Count(d.Log(), "COMPILE_ERROR")
}

// Kill ends distccd and its children with SIGKILL.
func (d *Distccd) Kill() {
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// StartDistccd starts distccd with jobs slots, allowing loopback clients,
// and stops it when the test ends. It runs the compilers its package's
// masquerade directory (/usr/lib/distcc) allows, as a real one does, or
// those of a DISTCC_CMDLIST given in env (see DistccCmdlist).
func StartDistccd(t testing.TB, jobs int, env ...string) *Distccd {
	t.Helper()
	if _, err := exec.LookPath("distccd"); err != nil {
		t.Fatalf("distccd is not installed (scripts/deps.sh installs package distcc): %v", err)
	}
	// distccd cannot take port 0: find a free one, and try another if a
	// process takes it meanwhile.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		d := &Distccd{Addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
		d.cmd = exec.Command("distccd", "--daemon", "--no-detach", "--allow", "127.0.0.1", "--listen", "127.0.0.1",
			"--port", strconv.Itoa(port), "--log-stderr", "--log-level", "info", "--jobs", strconv.Itoa(jobs))
		d.cmd.Env = append(append(os.Environ(), "LC_ALL=C"), env...)
		d.cmd.Stdout, d.cmd.Stderr = &d.log, &d.log
		// Its own process group: on SIGTERM distccd signals its whole
		// group, which must not be the test's.
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		d.cmd.WaitDelay = 5 * time.Second
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { d.cmd.Wait(); close(d.done) }()
		deadline := time.Now().Add(10 * time.Second)
		started := false
		for !started && time.Now().Before(deadline) {
			select {
			case <-d.done:
				deadline = time.Now()
			default:
				started = strings.Contains(d.Log(), "daemon started")
				time.Sleep(10 * time.Millisecond)
			}
		}
		if started {
			t.Cleanup(func() {
				syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
				<-d.done
			})
			return d
		}
		d.Kill()
		if attempt == 4 || !strings.Contains(d.Log(), "bind") {
			t.Fatalf("distccd did not start:\n%s", d.Log())
		}
	}
}

// DistccCmdlist writes a DISTCC_CMDLIST naming the compilers at paths (a
// distccd runs the listed path whose base name a job asks for) beside the
// first of them, and returns the environment entry. distccd runs jobs as
// its own user: the paths' directories must be readable by everyone (see
// Gate.Share).
func DistccCmdlist(t testing.TB, paths ...string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(paths[0]), "cmdlist")
	if err := os.WriteFile(p, []byte(strings.Join(paths, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "DISTCC_CMDLIST=" + p
}
