// Package testfarm starts real dcc farms on loopback for end-to-end tests:
// it builds the three binaries once per test process, writes a farm file,
// enrols the farm's hosts and users with the broker's CA (in its state
// directory, as `broker enroll` does), starts a broker and volunteers on
// free ports, runs dcc with the right environment, and stops every
// process (agents included) when the test ends. Nothing is mocked.
package testfarm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the directory holding freshly built broker, volunteer and dcc.
func Bin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "dcc-testbin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "./cmd/...")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build ships them
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Host is a farm-file line.
type Host struct {
	Name  string
	CPUs  int
	Power float64
	Extra string // key=value fields
}

// Farm is a running farm.
type Farm struct {
	T          testing.TB
	Dir        string
	FarmFile   string
	StateDir   string
	RuntimeDir string
	Broker     string // TCP address
	HTTP       string // HTTP address
	HTTPS      string // HTTPS address (the API that changes state)
	BrokerArgs []string

	mu         sync.Mutex
	broker     *Proc
	volunteers map[string]*Proc
	ids        map[string]string // role/name -> credential file
}

// Proc is a started process whose output goes to a log file.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
}

// Wait blocks until the process has exited.
func (p *Proc) Wait() { <-p.done }

// Running reports whether it still runs.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) { p.Cmd.Process.Signal(sig) }

// Output returns what the process logged so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// New writes a farm file for hosts; it starts nothing.
func New(t testing.TB, hosts ...Host) *Farm {
	t.Helper()
	dir := t.TempDir()
	// unix socket paths must stay short: keep the runtime dir in /tmp
	rt, err := os.MkdirTemp("", "dccrt-")
	if err != nil {
		t.Fatal(err)
	}
	f := &Farm{T: t, Dir: dir, FarmFile: filepath.Join(dir, "farm"),
		StateDir: filepath.Join(dir, "state"), RuntimeDir: rt, volunteers: map[string]*Proc{}, ids: map[string]string{}}
	f.WriteFarm(hosts...)
	f.Broker, f.HTTP, f.HTTPS = FreeAddr(t), FreeAddr(t), FreeAddr(t)
	t.Cleanup(f.Stop)
	t.Cleanup(f.dumpIfFailed) // first: Stop removes the agents' runtime dir
	return f
}

// dumpIfFailed prints the end of every process's log when the test has
// failed (before Stop and before the farm's directory goes), so that a
// failure seen once in CI can be read afterwards.
func (f *Farm) dumpIfFailed() {
	if !f.T.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(f.Dir, "*.log"))
	logs = append(logs, filepath.Join(f.RuntimeDir, "agent.log"))
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		f.T.Logf("--- last %d lines of %s:\n%s", len(lines), filepath.Base(p), strings.Join(lines, "\n"))
	}
}

// Identity returns the credential file of name in role (host, user or
// admin), enrolling it with the farm's CA on first use, exactly as
// `broker enroll` does (the CA is made on first use, or by the broker).
func (f *Farm) Identity(role, name string) string {
	f.T.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	key := role + "/" + name
	if p, ok := f.ids[key]; ok {
		return p
	}
	p, err := Enroll(f.StateDir, role, name, filepath.Join(f.Dir, "id"))
	if err != nil {
		f.T.Fatal(err)
	}
	f.ids[key] = p
	return p
}

// CAFile is the farm CA's certificate.
func (f *Farm) CAFile() string { return filepath.Join(f.StateDir, "ca.pem") }

// WriteFarm (re)writes the farm file.
func (f *Farm) WriteFarm(hosts ...Host) {
	var b strings.Builder
	b.WriteString("# NAME NCPUS POWER\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s %d %g %s\n", h.Name, h.CPUs, h.Power, h.Extra)
	}
	if err := os.WriteFile(f.FarmFile, []byte(b.String()), 0o644); err != nil {
		f.T.Fatal(err)
	}
}

// Start runs a binary from Bin with args, logging to a file in the farm dir.
func (f *Farm) Start(name string, logName string, env []string, args ...string) *Proc {
	f.T.Helper()
	log := filepath.Join(f.Dir, logName+".log")
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.T.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(Bin(f.T), name), args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		lf.Close()
		f.T.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	return p
}

// StartBroker starts (or restarts) the broker. It keeps no result cache
// unless the arguments configure one (--cache-size, --cache-redis): tests
// of everything else compile the same sources again and expect the farm
// to compile them.
func (f *Farm) StartBroker(extra ...string) *Proc {
	args := append([]string{"--listen", f.Broker, "--http", f.HTTP, "--https", f.HTTPS, "--farm", f.FarmFile, "--state", f.StateDir,
		"--log-format", "console", "--log-level", "debug", "--saturated", "1000"}, f.BrokerArgs...)
	args = append(args, extra...)
	if !hasFlag(args, "--cache-size") && !hasFlag(args, "--cache-redis") {
		args = append(args, "--cache-size", "0")
	}
	p := f.Start("broker", "broker", nil, args...)
	f.mu.Lock()
	f.broker = p
	f.mu.Unlock()
	f.waitHTTP()
	return p
}

// BrokerProc is the current broker process.
func (f *Farm) BrokerProc() *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broker
}

func (f *Farm) waitHTTP() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + f.HTTP + "/v1/status"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.T.Fatalf("broker did not come up; log:\n%s", f.BrokerProc().Output())
}

// StartVolunteer starts a volunteer named name with slots job slots.
func (f *Farm) StartVolunteer(name string, slots int, extra ...string) *Proc {
	for try := 1; ; try++ {
		addr := FreeAddr(f.T)
		args := []string{"--broker", f.Broker, "--listen", addr, "--name", name, "--slots", fmt.Sprint(slots),
			"--identity", f.Identity("host", name), "--log-format", "console", "--log-level", "debug", "--temp-dir", f.Dir,
			"--state", filepath.Join(f.Dir, "volunteer-state")}
		if !hasFlag(extra, "--control") && !hasFlag(extra, "--config") {
			// each volunteer its own control socket: the default is shared by the machine
			args = append(args, "--control", filepath.Join(f.RuntimeDir, "ctl-"+name+".sock"))
		}
		args = append(args, extra...)
		logName := "volunteer-" + name
		from := logSize(filepath.Join(f.Dir, logName+".log"))
		p := f.Start("volunteer", logName, nil, args...)
		// FreeAddr's port was free a moment ago; another process (a
		// second test suite) may take it first. Try another one then.
		if try < 3 && !hasFlag(extra, "--listen") && p.lostPort(from) {
			continue
		}
		f.mu.Lock()
		f.volunteers[name] = p
		f.mu.Unlock()
		return p
	}
}

func logSize(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// lostPort waits until the volunteer, whose log starts at offset from,
// listens, and reports whether it exited instead because its port was
// taken.
func (p *Proc) lostPort(from int64) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		exited := !p.Running()
		out := p.Output()
		if int64(len(out)) >= from {
			out = out[from:]
		}
		switch {
		case strings.Contains(out, "volunteer listening"):
			return false
		case exited:
			return strings.Contains(out, "address already in use")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// Volunteer returns a started volunteer's process.
func (f *Farm) Volunteer(name string) *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.volunteers[name]
}

// WaitHosts waits until the named hosts are connected and usable (tier > 0).
func (f *Farm) WaitHosts(names ...string) *status.Doc {
	f.T.Helper()
	return f.WaitStatus(func(d *status.Doc) bool {
		for _, n := range names {
			h := HostOf(d, n)
			if h == nil || h.State == "gone" || h.Tier == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, "hosts "+strings.Join(names, ","))
}

// WaitStatus polls /v1/status until cond holds.
func (f *Farm) WaitStatus(cond func(*status.Doc) bool, timeout time.Duration, what string) *status.Doc {
	f.T.Helper()
	deadline := time.Now().Add(timeout)
	var last *status.Doc
	for time.Now().Before(deadline) {
		if d, err := f.TryStatus(); err == nil {
			last = d
			if cond(d) {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	js, _ := json.MarshalIndent(last, "", " ")
	f.T.Fatalf("timed out waiting for %s; last status:\n%s", what, js)
	return nil
}

// Status fetches /v1/status.
func (f *Farm) Status() *status.Doc {
	f.T.Helper()
	d, err := f.TryStatus()
	if err != nil {
		f.T.Fatal(err)
	}
	return d
}

// TryStatus fetches /v1/status, returning errors.
func (f *Farm) TryStatus() (*status.Doc, error) {
	resp, err := http.Get("http://" + f.HTTP + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var d status.Doc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return nil, err
	}
	return &d, nil
}

// HostOf finds a host in a status document.
func HostOf(d *status.Doc, name string) *status.Host {
	for i := range d.Hosts {
		if d.Hosts[i].Name == name {
			return &d.Hosts[i]
		}
	}
	return nil
}

// Env is the environment for dcc processes of user (with that user's
// credential). The local machine's
// power is tiny, so that the farm always looks faster than this machine:
// otherwise whether a job goes to the farm would depend on how loaded the
// test machine is (a loaded host is slower than a free local slot, and
// dcc rightly declines it). Tests of the local-slot logic set their own
// DCC_LOCAL_POWER after these (the last value wins).
func (f *Farm) Env(user string) []string {
	return []string{"DCC_BROKER=" + f.Broker, "DCC_IDENTITY=" + f.Identity("user", user), "DCC_RUNTIME_DIR=" + f.RuntimeDir,
		"DCC_VERBOSE=1", "DCC_AGENT_IDLE=30s", "DCC_CONFIG=/nonexistent", "DCC_LOCAL_POWER=0.000001",
		"DCC_BUILDS_DIR=" + filepath.Join(f.Dir, "builds-"+user)}
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs a command in dir with extra environment, returning its output.
func Run(t testing.TB, dir string, env []string, name string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return Result{so.String(), se.String(), code}
}

// DCC runs `dcc args...` in dir as user "tester".
func (f *Farm) DCC(dir string, args ...string) Result {
	f.T.Helper()
	return Run(f.T, dir, f.Env("tester"), filepath.Join(Bin(f.T), "dcc"), args...)
}

// Stop ends every process the farm started, agents included.
func (f *Farm) Stop() {
	f.mu.Lock()
	procs := []*Proc{f.broker}
	for _, v := range f.volunteers {
		procs = append(procs, v)
	}
	f.mu.Unlock()
	for _, p := range procs {
		if p != nil && p.Running() {
			p.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	KillAgents(f.RuntimeDir)
	os.RemoveAll(f.RuntimeDir)
}

// KillAgents kills every dcc agent whose socket lives in runtimeDir.
func KillAgents(runtimeDir string) {
	pids := AgentPIDs(runtimeDir)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	WaitGone(pids, 10*time.Second)
}

// WaitGone waits until none of pids exists any more, at most timeout. A
// killed process's command line empties as its memory goes, before its
// descriptors close: an agent that no longer shows in AgentPIDs may
// still accept (and then reset) a connection. Its /proc entry goes only
// once it has exited and been reaped.
func WaitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// AgentPIDs lists agent processes serving runtimeDir.
func AgentPIDs(runtimeDir string) []int {
	return procs(func(args []string) bool {
		return strings.Contains(strings.Join(args, "\x00"), "agent\x00--socket\x00"+runtimeDir)
	})
}

// procs lists the processes whose command line (its arguments, split at
// the NULs) match accepts.
func procs(match func(args []string) bool) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && match(strings.Split(string(b), "\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

// Admin runs `dcc args...` in dir with an admin's credential ("ops"), as
// the farm's admin would for dcc farm drain, block and the rest.
func (f *Farm) Admin(dir string, args ...string) Result {
	f.T.Helper()
	env := append(f.Env("ops"), "DCC_IDENTITY="+f.Identity("admin", "ops"))
	return Run(f.T, dir, env, filepath.Join(Bin(f.T), "dcc"), args...)
}
