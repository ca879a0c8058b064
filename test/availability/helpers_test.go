// Package availability runs real farms (broker, volunteers and dcc built
// from this tree, real gcc and clang) on loopback and checks when a host
// takes work: the volunteer's availability rules (owner idle, schedule,
// manual pause), draining with jobs running, outside load monitors and the
// broker's HTTP API, admin commands, farm file reloads, host health and
// DCC_VERIFY, and hosts with different compilers. Nothing is mocked.
package availability

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// quick.c compiles in a few milliseconds.
const quickC = `#include <stdio.h>
static int sq(int x) { return x * x; }
int quick(int v) { return sq(v) + 1; }
int main(void) { printf("%d\n", quick(3)); return 0; }
`

// badC has an error in the user's code.
const badC = "int g(void) { return undefined_symbol + 1; }\n"

// heldC is the source of the jobs tests hold at a gate (testfarm.Gate) to
// keep them running as long as the test needs: long by construction, not
// by the machine's speed.
const heldC = `int held(int *a, int n) { int s = 0; for (int j = 0; j < n; j++) s += a[j] * 3; return s; }
`

// newFarm is testfarm.New with tiers that do not depend on the load other
// processes put on the test machine: a host drops a tier only above a
// foreign load of 500 per CPU.
func newFarm(t testing.TB, hosts ...testfarm.Host) *testfarm.Farm {
	t.Helper()
	f := testfarm.New(t, hosts...)
	f.BrokerArgs = []string{"--overload", "500"}
	return f
}

// writeFile writes text to dir/name.
func writeFile(t testing.TB, dir, name, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// srcDir returns a fresh directory holding quick.c, bad.c and held.c.
func srcDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "quick.c", quickC, 0o644)
	writeFile(t, dir, "bad.c", badC, 0o644)
	writeFile(t, dir, "held.c", heldC, 0o644)
	return dir
}

var (
	localMu   sync.Mutex
	localObjs = map[string][]byte{}
)

// localObject compiles src with compiler and flags in a fresh directory
// and returns the object (memoised).
func localObject(t testing.TB, compiler, src string, flags ...string) []byte {
	t.Helper()
	key := compiler + " " + src + " " + strings.Join(flags, " ")
	localMu.Lock()
	defer localMu.Unlock()
	if b, ok := localObjs[key]; ok {
		return b
	}
	dir := srcDir(t)
	args := append(append([]string{}, flags...), "-c", src, "-o", "local.o")
	if r := testfarm.Run(t, dir, nil, compiler, args...); r.Code != 0 {
		t.Fatalf("local %s %v: exit %d\n%s", compiler, args, r.Code, r.Stderr)
	}
	b := readFile(t, filepath.Join(dir, "local.o"))
	localObjs[key] = b
	return b
}

var remoteRe = regexp.MustCompile(`compiled (\S+) on (\S+) \(tier`)

// remoteHost returns the host a dcc run compiled on, or "" if it was local.
func remoteHost(stderr string) string {
	if m := remoteRe.FindStringSubmatch(stderr); m != nil {
		return m[2]
	}
	return ""
}

// compile runs `dcc compiler flags -c src -o out` in dir, fails the test
// unless it exits 0 and returns the host it compiled on ("" = locally).
func compile(t testing.TB, f *testfarm.Farm, dir, compiler, src, out string, flags ...string) (string, testfarm.Result) {
	t.Helper()
	args := append(append([]string{compiler}, flags...), "-c", src, "-o", out)
	r := f.DCC(dir, args...)
	if r.Code != 0 {
		t.Fatalf("dcc %v: exit %d\n%s", args, r.Code, r.Stderr)
	}
	return remoteHost(r.Stderr), r
}

// background is a dcc run in progress.
type background struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	code   int
}

// startDCC starts `dcc args...` in dir without waiting for it.
func startDCC(t testing.TB, f *testfarm.Farm, dir string, env []string, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan struct{})}
	b.cmd = exec.Command(filepath.Join(testfarm.Bin(t), "dcc"), args...)
	b.cmd.Dir = dir
	b.cmd.Env = append(append(os.Environ(), f.Env("tester")...), env...)
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := b.cmd.Wait()
		b.code = 0
		if err != nil {
			b.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				b.code = ee.ExitCode()
			}
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// finished reports whether the run has ended.
func (b *background) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// output is what dcc wrote to stderr; a run still going is stopped first.
func (b *background) output() string {
	if !b.finished() {
		b.cmd.Process.Kill()
		<-b.done
	}
	return b.stderr.String()
}

// wait waits for the run to end and returns its exit code and stderr.
func (b *background) wait(t testing.TB, timeout time.Duration) (int, string) {
	t.Helper()
	select {
	case <-b.done:
		return b.code, b.stderr.String()
	case <-time.After(timeout):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("dcc did not finish within %s:\n%s", timeout, b.stderr.String())
		return 0, ""
	}
}

// volunteer starts a volunteer with its own control socket and, when
// toml is not empty, a config file with that content. It returns the
// control socket's path.
func volunteer(t testing.TB, f *testfarm.Farm, name string, slots int, toml string, extra ...string) string {
	t.Helper()
	ctl := controlPath(t, name)
	args := []string{"--control", ctl}
	if toml != "" {
		cfg := writeFile(t, f.Dir, "volunteer-"+name+".toml", toml, 0o644)
		args = append(args, "--config", cfg)
	}
	f.StartVolunteer(name, slots, append(args, extra...)...)
	return ctl
}

// controlPath is a short unix socket path (sun_path is 108 bytes).
func controlPath(t testing.TB, name string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dccav-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, name+".sock")
}

// up waits until the named hosts are connected and usable; on a timeout it
// shows the volunteers' logs.
func up(f *testfarm.Farm, names ...string) *status.Doc {
	f.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := f.TryStatus()
		if err == nil {
			ok := true
			for _, n := range names {
				h := testfarm.HostOf(d, n)
				ok = ok && h != nil && h.State != "gone" && h.Tier > 0
			}
			if ok {
				return d
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range names {
				if p := f.Volunteer(n); p != nil {
					out := p.Output()
					if len(out) > 3000 {
						out = out[len(out)-3000:]
					}
					fmt.Fprintf(&b, "--- volunteer %s (running %v):\n%s\n", n, p.Running(), out)
				}
			}
			f.T.Fatalf("hosts %v did not come up; status %+v (err %v)\n%s", names, d, err, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHost waits until host satisfies cond.
func waitHost(f *testfarm.Farm, name string, timeout time.Duration, what string, cond func(h *status.Host) bool) *status.Host {
	f.T.Helper()
	d := f.WaitStatus(func(d *status.Doc) bool {
		h := testfarm.HostOf(d, name)
		return h != nil && cond(h)
	}, timeout, name+" "+what)
	return testfarm.HostOf(d, name)
}

// waitState waits until host is in state (and, for healthy, usable).
func waitState(f *testfarm.Farm, name, state string, timeout time.Duration) *status.Host {
	f.T.Helper()
	return waitHost(f, name, timeout, "state "+state, func(h *status.Host) bool {
		return h.State == state && (state != "healthy" || h.Tier > 0)
	})
}

// waitLog waits until a process's log contains s.
func waitLog(t testing.TB, p *testfarm.Proc, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log has no %q after %s:\n%s", s, timeout, p.Output())
}

// api sends a request to the broker's HTTP API as who: "admin" (an admin's
// credential), "host:NAME" or "user:NAME" (that credential), over HTTPS
// with the client certificate; "nocert" (HTTPS, no certificate) or
// "plain" (plain HTTP). A request refused at the TLS handshake has code 0.
func api(t testing.TB, f *testfarm.Farm, who, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "https://" + f.HTTPS + path
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(f.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	switch {
	case who == "plain":
		url = "http://" + f.HTTP + path
	case who == "nocert":
	default:
		role, name, _ := strings.Cut(who, ":")
		if name == "" {
			name = "ops"
		}
		cert, err := tls.LoadX509KeyPair(f.Identity(role, name), f.Identity(role, name))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// wrapper writes an executable shell script named name in a new
// directory and returns its path.
func wrapper(t testing.TB, name, script string) string {
	t.Helper()
	return writeFile(t, t.TempDir(), name, "#!/bin/sh\n"+script, 0o755)
}
