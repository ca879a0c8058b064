package reliability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// build is a parallel build of generated sources through dcc, like make -jN.
type build struct {
	dir, ref string   // sources + dcc objects; reference objects compiled by gcc
	names    []string // file stems
	flags    []string
	done     atomic.Int64
	mu       sync.Mutex
	results  map[string]buildResult
	retried  int // compiles whose first host failed and that the agent sent to another
}

type buildResult struct {
	err    error
	stderr string
	took   time.Duration
}

var remoteRe = regexp.MustCompile(`compiled \S+ on (\S+) \(tier`)

// newBuild writes n sources (gen(i) gives the text of file i).
func newBuild(t *testing.T, n int, gen func(i int) string, flags ...string) *build {
	b := &build{dir: t.TempDir(), ref: t.TempDir(), flags: flags, results: map[string]buildResult{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%03d", i)
		b.names = append(b.names, name)
		writeFile(t, filepath.Join(b.dir, name+".c"), gen(i))
		writeFile(t, filepath.Join(b.ref, name+".c"), gen(i))
	}
	return b
}

// run compiles every file through dcc with jobs at once, as user.
func (b *build) run(f *testfarm.Farm, user string, jobs int, env ...string) {
	work := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				args := append(append([]string{}, b.flags...), "-c", name+".c", "-o", name+".o")
				cmd := dccCmd(f, b.dir, user, env, args...)
				var se bytes.Buffer
				cmd.Stderr = &se
				start := time.Now()
				err := cmd.Run()
				b.mu.Lock()
				b.results[name] = buildResult{err: err, stderr: se.String(), took: time.Since(start)}
				b.mu.Unlock()
				b.done.Add(1)
			}
		}()
	}
	for _, n := range b.names {
		work <- n
	}
	close(work)
	wg.Wait()
}

// check compiles every file locally with gcc and compares the objects byte
// for byte; it returns how many compiled remotely (per host) and locally.
func (b *build) check(t *testing.T) (remote map[string]int, local int, fallbacks map[string]int) {
	t.Helper()
	remote, fallbacks = map[string]int{}, map[string]int{}
	b.retried = 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	var mu sync.Mutex
	var bad []string
	for _, name := range b.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			want := compileLocal(t, b.ref, name, b.flags...)
			got, err := os.ReadFile(filepath.Join(b.dir, name+".o"))
			if err != nil || !bytes.Equal(got, want) {
				mu.Lock()
				bad = append(bad, name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	failed := 0
	for _, name := range b.names {
		r, ok := b.results[name]
		if !ok || r.err != nil {
			failed++
			t.Errorf("%s: dcc failed: %v\n%s", name, r.err, r.stderr)
			continue
		}
		if strings.Contains(r.stderr, "asking for another host") {
			b.retried++
		}
		if m := remoteRe.FindStringSubmatch(r.stderr); m != nil {
			remote[m[1]]++
		} else {
			local++
			if i := strings.Index(r.stderr, "compiling locally: "); i >= 0 {
				why := r.stderr[i+len("compiling locally: "):]
				if j := strings.IndexAny(why, ":\n"); j >= 0 {
					why = why[:j]
				}
				fallbacks[why]++
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d objects differ from a local gcc compile: %v", len(bad), bad)
	}
	if failed > 0 {
		t.Errorf("%d failed compiles", failed)
	}
	return remote, local, fallbacks
}

// TestVolunteerDiesMidBuild builds 200 files at -j16 over 3 volunteers and
// kills one volunteer with SIGKILL while it runs jobs: every file must
// still compile (elsewhere or locally) to an object identical to a local
// gcc compile, and the broker must mark the host gone within 5 s. The
// volunteers compile through a gate, shut midway, so that the killed host
// is running jobs when it dies whatever the machine's speed.
func TestVolunteerDiesMidBuild(t *testing.T) {
	gate := testfarm.NewGate(t, "gcc")
	gate.Open()
	f := testfarm.New(t, testfarm.Host{Name: "a", CPUs: 16, Power: 2}, testfarm.Host{Name: "b", CPUs: 16, Power: 2}, testfarm.Host{Name: "c", CPUs: 16, Power: 2})
	f.StartBroker()
	for _, n := range []string{"a", "b", "c"} {
		startVolunteer(f, n, 4, "--compilers", gate.Path)
	}
	f.WaitHosts("a", "b", "c")
	b := newBuild(t, 200, smallSource, "-O2")
	built := make(chan struct{})
	go func() { b.run(f, "builder", 16); close(built) }()

	// Midway, hold the farm's jobs, then kill the host that is busiest.
	if _, ok := waitFor(60*time.Second, func() bool { return b.done.Load() >= 70 }); !ok {
		t.Fatal("build did not progress")
	}
	gate.Shut()
	gate.WaitHeld(t, 4, 30*time.Second)
	var victim string
	var busy int
	waitFor(10*time.Second, func() bool {
		d, err := f.TryStatus()
		if err != nil {
			return false
		}
		for _, h := range d.Hosts {
			if h.Busy > busy {
				victim, busy = h.Name, h.Busy
			}
		}
		return busy > 0
	})
	if victim == "" {
		t.Fatal("no host was busy midway through the build")
	}
	doneAtKill := b.done.Load()
	f.Volunteer(victim).Signal(9)
	killed := time.Now()
	gate.Open()
	gone, ok := waitFor(5*time.Second, statusOK(f, func(d *status.Doc) bool {
		h := testfarm.HostOf(d, victim)
		return h == nil || h.State == "gone"
	}))
	if !ok {
		t.Fatalf("broker did not mark %s gone within 5 s", victim)
	}
	<-built
	remote, local, fallbacks := b.check(t)
	if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
		t.Fatalf("leases leaked after the build: %+v", f.Status())
	}
	figure(t, "200 files -j16 over 3 volunteers (4 slots each); killed %s (kill -9) with %d jobs running after %d files; host marked gone after %s; remote %v (%d after a retry on another host), local %d (reasons %v); 0 failed, objects identical; build took %s",
		victim, busy, doneAtKill, gone.Round(time.Millisecond), remote, b.retried, local, fallbacks, time.Since(killed).Round(time.Millisecond))
}
