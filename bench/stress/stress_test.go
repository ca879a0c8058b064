// Package stress is the farm's load test: 20 simulated engineers each
// building with -j16 against 4 volunteers for 5 minutes, with real dcc,
// agents, volunteers, broker and gcc on small generated files. It is not
// part of CI (it skips unless DCC_STRESS=1) and takes the whole machine:
//
//	DCC_STRESS=1 DCC_STRESS_DURATION=5m go test -v -timeout 30m ./bench/stress
//
// It checks 0 failed compiles and 0 leaked leases, samples the broker's
// RSS and goroutines every 5 s (and fails on a growth trend), and reports
// the p99 lease grant latency the agents saw.
package stress

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

var grantRe = regexp.MustCompile(`agent \+(\S+): lease \d+ granted`)

func env(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(name):]), 64)
			return v
		}
	}
	return -1
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

func TestStress(t *testing.T) {
	if os.Getenv("DCC_STRESS") != "1" {
		t.Skip("load test: set DCC_STRESS=1 (see the package comment)")
	}
	engineers, jobs, vols := env("DCC_STRESS_ENGINEERS", 20), env("DCC_STRESS_JOBS", 16), env("DCC_STRESS_VOLUNTEERS", 4)
	dur := 5 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("DCC_STRESS_DURATION")); err == nil {
		dur = d
	}
	var hosts []testfarm.Host
	for i := 0; i < vols; i++ {
		hosts = append(hosts, testfarm.Host{Name: fmt.Sprintf("v%d", i), CPUs: 64, Power: 2})
	}
	f := testfarm.New(t, hosts...)
	f.StartBroker("--log-level", "warn")
	var names []string
	for _, h := range hosts {
		f.StartVolunteer(h.Name, 8, "--log-level", "warn")
		names = append(names, h.Name)
	}
	f.WaitHosts(names...)
	bpid := f.BrokerProc().Cmd.Process.Pid

	src := t.TempDir()
	const files = 64
	for i := 0; i < files; i++ {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d.c", i)), []byte(fmt.Sprintf(
			"#include <string.h>\nint f%d(const char *s) { int h = %d; while (*s) h = h * 31 + *s++; return h ^ (int)strlen(s); }\n", i, i)), 0o644)
	}
	var compiles, failed, remote atomic.Int64
	var mu sync.Mutex
	var grantMs []float64
	var failures []string
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for e := 0; e < engineers; e++ {
		user := fmt.Sprintf("eng%02d", e)
		out := t.TempDir()
		for j := 0; j < jobs; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := j; time.Now().Before(stop); k += jobs {
					name := fmt.Sprintf("f%02d", k%files)
					cmd := exec.Command(filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-O2", "-c", filepath.Join(src, name+".c"), "-o", filepath.Join(out, fmt.Sprintf("%s-%d.o", name, j)))
					cmd.Env = append(os.Environ(), f.Env(user)...)
					var se bytes.Buffer
					cmd.Stderr = &se
					err := cmd.Run()
					compiles.Add(1)
					mu.Lock()
					if err != nil {
						failed.Add(1)
						if len(failures) < 5 {
							failures = append(failures, fmt.Sprintf("%s %s: %v\n%s", user, name, err, se.String()))
						}
					}
					if strings.Contains(se.String(), "compiled ") && strings.Contains(se.String(), "(tier") {
						remote.Add(1)
					}
					if m := grantRe.FindStringSubmatch(se.String()); m != nil {
						if d, err := time.ParseDuration(m[1]); err == nil {
							grantMs = append(grantMs, float64(d)/float64(time.Millisecond))
						}
					}
					mu.Unlock()
				}
			}()
		}
	}
	type sample struct {
		at         time.Duration
		rss        int
		goroutines float64
		leases     int
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(5 * time.Second)
	for time.Now().Before(stop) {
		<-tick.C
		d, _ := f.TryStatus()
		l := -1
		if d != nil {
			l = d.Leases
		}
		samples = append(samples, sample{time.Since(start), rssKB(bpid), metric(f.HTTP, "go_goroutines"), l})
	}
	tick.Stop()
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	leases := -1
	for time.Now().Before(deadline) {
		if d, err := f.TryStatus(); err == nil {
			leases = d.Leases
			if leases == 0 && d.Queue == 0 && d.Busy == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Float64s(grantMs)
	pct := func(q float64) float64 {
		if len(grantMs) == 0 {
			return 0
		}
		return grantMs[int(q*float64(len(grantMs)-1))]
	}
	for _, s := range samples {
		t.Logf("t=%4.0fs broker rss %6d KiB goroutines %5.0f leases %3d", s.at.Seconds(), s.rss, s.goroutines, s.leases)
	}
	n := len(samples)
	t.Logf("RESULT engineers %d x -j%d, %d volunteers x 8 slots, %s: %d compiles (%.1f/s), %d remote, %d failed; leases after %d; grant latency seen by agents p50 %.2f ms p99 %.2f ms (n=%d)",
		engineers, jobs, vols, dur, compiles.Load(), float64(compiles.Load())/dur.Seconds(), remote.Load(), failed.Load(), leases, pct(0.5), pct(0.99), len(grantMs))
	if failed.Load() > 0 {
		t.Errorf("%d failed compiles, e.g.:\n%s", failed.Load(), strings.Join(failures, "\n"))
	}
	if leases != 0 {
		t.Errorf("%d leases leaked", leases)
	}
	if n >= 6 {
		// Trend: compare the mean of the last third with the middle third.
		third := n / 3
		mean := func(a []sample, f func(sample) float64) float64 {
			s := 0.0
			for _, x := range a {
				s += f(x)
			}
			return s / float64(len(a))
		}
		rssMid, rssEnd := mean(samples[third:2*third], func(s sample) float64 { return float64(s.rss) }), mean(samples[2*third:], func(s sample) float64 { return float64(s.rss) })
		grMid, grEnd := mean(samples[third:2*third], func(s sample) float64 { return s.goroutines }), mean(samples[2*third:], func(s sample) float64 { return s.goroutines })
		t.Logf("RESULT broker RSS middle third %.0f KiB, last third %.0f KiB; goroutines %.0f -> %.0f", rssMid, rssEnd, grMid, grEnd)
		if rssEnd > rssMid*1.25+10<<10 {
			t.Errorf("broker RSS grows: %.0f -> %.0f KiB", rssMid, rssEnd)
		}
		if grEnd > grMid*1.25+50 {
			t.Errorf("broker goroutines grow: %.0f -> %.0f", grMid, grEnd)
		}
	}
}
