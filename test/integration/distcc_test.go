package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
)

// distccHost is the farm-file line of a stock distccd at addr.
func distccHost(name, addr string, power float64) testfarm.Host {
	return testfarm.Host{Name: name, CPUs: 2, Power: power, Extra: "protocol=distcc addr=" + addr + " compiler=gcc slots=2"}
}

// genSources writes n small distinct C files and returns their stems.
func genSources(t *testing.T, dir string, n int) []string {
	var names []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%02d", i)
		src := fmt.Sprintf("#include <string.h>\nstatic int t%d[%d];\nint f%d(const char *s) { int h = %d; while (*s) h = h * 31 + *s++; return h ^ (int)strlen(s) ^ t%d[0]; }\n", i, i+1, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, name+".c"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// buildAll compiles every stem through dcc, jobs at once, like make -jN,
// and checks every object against local gcc's. It returns the stderr of
// each compile by stem.
func buildAll(t *testing.T, f *testfarm.Farm, dir string, names []string, jobs int) map[string]string {
	t.Helper()
	work := make(chan string)
	var mu sync.Mutex
	out := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				r := f.DCC(dir, "gcc", "-O2", "-c", name+".c", "-o", name+".o")
				if r.Code != 0 {
					t.Errorf("%s: exit %d\n%s", name, r.Code, r.Stderr)
				}
				mu.Lock()
				out[name] = r.Stderr
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	for _, n := range names {
		if !bytes.Equal(readFile(t, filepath.Join(dir, n+".o")), localObject(t, dir, n)) {
			t.Fatalf("%s.o differs from a local gcc compile", n)
		}
	}
	return out
}

// TestDistccdHostInTheFarm: a farm of one volunteer and one stock distccd
// builds 48 files at -j8; the distccd compiles some of them (its log
// says so), every object is identical to local gcc's, and the status
// shows the host as distcc, unauthenticated. Drained, it gets no new work.
func TestDistccdHostInTheFarm(t *testing.T) {
	d := testfarm.StartDistccd(t, 2)
	f := testfarm.New(t, testfarm.Host{Name: "vol", CPUs: 2, Power: 2, Extra: "slots=2"}, distccHost("old", d.Addr, 2))
	f.StartBroker()
	f.StartVolunteer("vol", 2)
	f.WaitHosts("vol", "old")
	dir := t.TempDir()
	names := genSources(t, dir, 48)
	logs := buildAll(t, f, dir, names, 8)
	onOld, onVol := 0, 0
	for _, se := range logs {
		switch remoteHost(se) {
		case "old":
			onOld++
		case "vol":
			onVol++
		}
	}
	if d.Compiled() == 0 || onOld == 0 || onVol == 0 {
		t.Fatalf("distccd compiled %d (dcc says %d), the volunteer %d: want both used", d.Compiled(), onOld, onVol)
	}
	doc := f.Status()
	h := testfarm.HostOf(doc, "old")
	if h.Protocol != "distcc" || h.Auth != "unauthenticated" || h.State != "healthy" {
		t.Fatalf("distccd host in the status: %+v", h)
	}
	r := f.DCC(dir, "status")
	if !strings.Contains(r.Stdout, "distcc (unauthenticated)") {
		t.Fatalf("dcc status does not show the distccd host as unauthenticated:\n%s", r.Stdout)
	}

	// Drained: no new work.
	if r := f.Admin(dir, "farm", "drain", "old", "--reason", "retiring"); r.Code != 0 {
		t.Fatalf("drain: %+v", r)
	}
	f.WaitStatus(func(d *status.Doc) bool { return testfarm.HostOf(d, "old").State == "draining" }, 5*time.Second, "old draining")
	before := d.Compiled()
	for _, se := range buildAll(t, f, dir, names[:8], 4) {
		if remoteHost(se) == "old" {
			t.Fatalf("a drained distccd host got work:\n%s", se)
		}
	}
	if d.Compiled() != before {
		t.Fatalf("the drained distccd ran %d more jobs", d.Compiled()-before)
	}
	t.Logf("48 files -j8: distccd %d (its log: %d), volunteer %d", onOld, d.Compiled(), onVol)
}

// TestDistccdKilledMidBuild: distccd is killed with SIGKILL while it runs
// jobs (held at a gate its compiler list names, so they are running by
// construction): the build still succeeds with identical objects, and the
// broker takes the host out.
func TestDistccdKilledMidBuild(t *testing.T) {
	gate := testfarm.NewGate(t, "gcc")
	gate.Share()
	t.Cleanup(gate.Open) // held compilers outlive distccd's kill; let them end
	d := testfarm.StartDistccd(t, 2, testfarm.DistccCmdlist(t, gate.Path))
	f := testfarm.New(t, testfarm.Host{Name: "vol", CPUs: 2, Power: 1, Extra: "slots=2"}, distccHost("old", d.Addr, 3))
	f.StartBroker()
	f.StartVolunteer("vol", 2)
	f.WaitHosts("vol", "old")
	dir := t.TempDir()
	names := genSources(t, dir, 24)
	done := make(chan map[string]string, 1)
	go func() { done <- buildAll(t, f, dir, names, 6) }()
	gate.WaitHeld(t, 2, 30*time.Second) // both distccd slots run a job
	d.Kill()
	// Let the orphaned compilers end, as real ones would: they hold the
	// dead daemon's sockets open until then.
	gate.Open()
	logs := <-done
	f.WaitStatus(func(d *status.Doc) bool { return testfarm.HostOf(d, "old").State == "gone" }, 10*time.Second, "old gone")
	for name, se := range logs {
		if remoteHost(se) == "old" {
			t.Fatalf("%s reported as compiled on the killed distccd:\n%s", name, se)
		}
	}
}

// fakeDistccd answers every job with reply, then closes.
func fakeDistccd(t *testing.T, reply func() []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 64<<10)
				// Read the request up to its source, then answer.
				got := 0
				for !bytes.Contains(buf[:got], []byte("DOTI")) && got < len(buf) {
					n, err := c.Read(buf[got:])
					if err != nil {
						return
					}
					got += n
				}
				time.Sleep(10 * time.Millisecond)
				c.Write(reply())
			}()
		}
	}()
	return ln.Addr().String()
}

// TestHostileDistccd: distccd look-alikes that answer with truncated,
// oversized or garbage replies never give dcc a corrupt object: each job
// is retried elsewhere or compiled locally, and the host goes to
// probation.
func TestHostileDistccd(t *testing.T) {
	replies := map[string]func() []byte{
		"truncated": func() []byte { return []byte("DONE00000001STAT00000000SERR00000000SOUT00000000DOTO00001000\x7fELF") },
		"oversized": func() []byte { return []byte("DONE00000001STAT00000000SERR00000000SOUT00000000DOTOffffffff") },
		"garbage":   func() []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\nnot distcc at all, sorry\n") },
	}
	for name, reply := range replies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := fakeDistccd(t, reply)
			f := testfarm.New(t, testfarm.Host{Name: "vol", CPUs: 2, Power: 1, Extra: "slots=2"}, distccHost("evil", addr, 3))
			f.StartBroker()
			f.StartVolunteer("vol", 2)
			f.WaitHosts("vol", "evil")
			dir := t.TempDir()
			for _, se := range buildAll(t, f, dir, genSources(t, dir, 4), 1) {
				if remoteHost(se) == "evil" {
					t.Fatalf("a job was reported as compiled on the hostile host:\n%s", se)
				}
			}
			h := testfarm.HostOf(f.Status(), "evil")
			if h.State == "healthy" || h.Failures < 2 {
				t.Fatalf("the hostile host is still trusted: %+v", h)
			}
		})
	}
}
