// Package observability tests what an admin watches: the broker's and the
// volunteers' /metrics (linted by promtool), the Grafana dashboard (every
// panel's query run against a real Prometheus scraping a busy farm) and
// the status page (rendered by headless Chromium).
package observability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// users of the load generator; each runs workersPerUser compiles at once.
var users = []string{"alice", "bob", "carol"}

const workersPerUser = 2

// hosts: a and b take jobs (tiers 3 and 1); c is drained so that the
// "not used" tier and the draining state show. CPUs are generous so that
// the test machine's own load does not push hosts out of their tier.
var hosts = []testfarm.Host{
	{Name: "a", CPUs: 16, Power: 3},
	{Name: "b", CPUs: 16, Power: 1},
	{Name: "c", CPUs: 16, Power: 2},
}

// busyFarm is a farm with a metrics address on every volunteer and load running.
type busyFarm struct {
	*testfarm.Farm
	dir   string            // sources
	vhttp map[string]string // volunteer name -> metrics address
	load  *loadGen
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// needTools fails (never skips) when a tool the tests need is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH: run scripts/deps.sh (or `make deps`) to install the Debian packages prometheus and chromium", tool)
		}
	}
}

func startBusyFarm(t *testing.T) *busyFarm {
	t.Helper()
	f := testfarm.New(t, hosts...)
	f.StartBroker("--cache-size", "64MiB")
	bf := &busyFarm{Farm: f, dir: t.TempDir(), vhttp: map[string]string{}}
	for _, h := range hosts {
		addr := testfarm.FreeAddr(t)
		bf.vhttp[h.Name] = addr
		f.StartVolunteer(h.Name, 2, "--http", addr)
	}
	f.WaitHosts("a", "b", "c")
	if r := f.Admin(bf.dir, "farm", "drain", "c"); r.Code != 0 {
		t.Fatalf("dcc farm drain c: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	writeSources(t, bf.dir)
	bf.load = startLoad(t, bf)
	t.Cleanup(bf.load.stopAndCheck) // runs before the farm stops
	return bf
}

const nSources = 24

func writeSources(t *testing.T, dir string) {
	t.Helper()
	for i := 0; i < nSources; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "/* source %d */\n#include <string.h>\n", i)
		for j := 0; j < 6; j++ {
			fmt.Fprintf(&b, "int f%d_%d(int x) { int s = 0; for (int j = 0; j < x; j++) { s += (j * %d) ^ (s >> 3); if (s %% %d == 1) s -= j; } return s; }\n", i, j, i+j+3, j+7)
		}
		fmt.Fprintf(&b, "int g%d(const char *p) { return f%d_0((int)strlen(p)) + f%d_5(3); }\n", i, i, i)
		write(t, filepath.Join(dir, fmt.Sprintf("s%02d.c", i)), b.String(), 0o644)
	}
	// preprocesses cleanly, fails to compile: a compile error on the farm
	write(t, filepath.Join(dir, "bad.c"), "int broken(int x) { return x +; }\n", 0o644)
	// a compiler whose fingerprint no volunteer offers: every job falls back
	write(t, filepath.Join(dir, "mycc"), "#!/bin/sh\n"+
		"if [ \"$1\" = -v ]; then printf 'Target: sparc-sun-solaris2.10\\ngcc version 12.2.0 (fake)\\n' >&2; exit 0; fi\n"+
		"exec gcc \"$@\"\n", 0o755)
}

func write(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

// loadGen compiles the sources through dcc from several users at once until stopped.
type loadGen struct {
	t    *testing.T
	f    *busyFarm
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu       sync.Mutex
	ok       int
	badFails int // bad.c failing, as it should
	problems []string
}

func startLoad(t *testing.T, f *busyFarm) *loadGen {
	l := &loadGen{t: t, f: f, stop: make(chan struct{})}
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	for ui, u := range users {
		for w := 0; w < workersPerUser; w++ {
			l.wg.Add(1)
			go l.worker(dcc, u, ui*workersPerUser+w)
		}
	}
	// One client whose compiler nobody offers: the broker denies it and
	// the client compiles locally (a fallback its agent reports).
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.compile(dcc, "carol", filepath.Join(f.dir, "mycc"), "s00.c", "fallback.o", false, nil)
	}()
	return l
}

func (l *loadGen) worker(dcc, user string, n int) {
	defer l.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		if user == "bob" && i%8 == 3 {
			l.compile(dcc, user, "gcc", "bad.c", fmt.Sprintf("bad%d.o", n), true, nil)
			continue
		}
		src := fmt.Sprintf("s%02d.c", (n*5+i)%nSources)
		var env []string
		if n != 0 {
			// Only the first worker uses the result cache (its metrics
			// get series); the others keep the farm busy.
			env = []string{"DCC_CACHE=0"}
		}
		l.compile(dcc, user, "gcc", src, fmt.Sprintf("w%d.o", n), false, env)
	}
}

func (l *loadGen) compile(dcc, user, cc, src, out string, wantFail bool, extraEnv []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := append(l.f.Env(user), extraEnv...)
	cmd := exec.CommandContext(ctx, dcc, cc, "-O2", "-c", src, "-o", out)
	cmd.Dir = l.f.dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case wantFail && err != nil:
		l.badFails++
	case wantFail:
		l.problems = append(l.problems, src+" compiled but should not have")
	case err != nil:
		l.problems = append(l.problems, fmt.Sprintf("%s as %s: %v\n%s", src, user, err, b))
	default:
		l.ok++
	}
}

func (l *loadGen) stopAndCheck() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.t.Logf("load: %d compiles ok, %d expected compile errors", l.ok, l.badFails)
		for _, p := range l.problems {
			l.t.Errorf("load: %s", p)
		}
	})
}

// waitWarm waits until every user has had jobs granted and the farm has
// finished some, so that every kind of series has samples.
func (f *busyFarm) waitWarm(t *testing.T) {
	t.Helper()
	f.WaitStatus(func(d *status.Doc) bool {
		seen := map[string]bool{}
		for _, u := range d.Users {
			seen[u.Name] = true
		}
		done := int64(0)
		for _, h := range d.Hosts {
			done += h.JobsDone
		}
		for _, u := range users {
			if !seen[u] {
				return false
			}
		}
		return done >= 6
	}, 30*time.Second, "every user to have compiled on the farm")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// TestObservability starts one busy farm and checks, while it works, the
// metrics (promtool), the dashboard (Prometheus) and the status page
// (Chromium). The three run in parallel against the same farm.
func TestObservability(t *testing.T) {
	needTools(t, "promtool", "prometheus", "chromium")
	f := startBusyFarm(t)
	f.waitWarm(t)
	t.Run("checks", func(t *testing.T) {
		t.Run("PromtoolCheckMetrics", func(t *testing.T) { t.Parallel(); testPromtool(t, f) })
		t.Run("PrometheusQueriesEveryPanel", func(t *testing.T) { t.Parallel(); testDashboardQueries(t, f) })
		t.Run("ChromiumStatusPage", func(t *testing.T) { t.Parallel(); testStatusPage(t, f) })
	})
}
