// Package reliability injects faults into a real farm (broker, volunteers,
// agents and dcc processes started from freshly built binaries on
// loopback) and checks that leases are never leaked, builds never fail and
// objects are never corrupt; and it throws hostile input at the daemons.
// docs/reliability.md records what these tests do and the figures they
// measured.
package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// figures are printed at the end of the run (go test -v) for the doc.
var (
	figMu sync.Mutex
	figs  []string
)

func figure(t *testing.T, format string, a ...any) {
	t.Helper()
	s := fmt.Sprintf(format, a...)
	t.Logf("FIGURE %s: %s", t.Name(), s)
	figMu.Lock()
	figs = append(figs, t.Name()+": "+s)
	figMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	figMu.Lock()
	if len(figs) > 0 && testing.Verbose() {
		fmt.Println("=== reliability figures")
		for _, f := range figs {
			fmt.Println("   ", f)
		}
	}
	figMu.Unlock()
	os.Exit(code)
}

// gccFingerprint is the fingerprint volunteers compute for gcc.
var (
	fpOnce sync.Once
	fpGCC  string
)

func gccFP(t testing.TB) string {
	t.Helper()
	fpOnce.Do(func() {
		p, err := exec.LookPath("gcc")
		if err != nil {
			return
		}
		id, err := compiler.Probe(context.Background(), p)
		if err == nil {
			fpGCC = id.Fingerprint
		}
	})
	if fpGCC == "" {
		t.Fatal("cannot identify gcc")
	}
	return fpGCC
}

// dialBroker opens a raw client session to the broker as user.
func dialBroker(t testing.TB, f *testfarm.Farm, user string) *yamux.Session {
	t.Helper()
	s, err := f.Dial("user", user, wire.Hello{Role: wire.RoleClient, Name: "reliability"})
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	return s
}

// dialJobs opens a job session to the host a grant names, as user.
func dialJobs(f *testfarm.Farm, g *wire.LeaseGrant, user string) (*yamux.Session, error) {
	return f.DialVolunteer(g.Addr, g.Host, user)
}

// leaseReq is a raw lease stream.
type leaseReq struct {
	st *yamux.Stream
	c  *wire.Conn
}

// requestLease opens a lease stream and sends a request for source.
func requestLease(t testing.TB, s *yamux.Session, fp string, source []byte) *leaseReq {
	t.Helper()
	st, err := s.OpenStream()
	if err != nil {
		t.Fatalf("open lease stream: %v", err)
	}
	c := wire.NewConn(st, wire.MaxControlFrame, 20*time.Second)
	sum := sha256.Sum256(source)
	if err := c.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: int64(len(source)), Digest: sum[:], MaxWaitMs: 60000, File: "rel.c"}); err != nil {
		t.Fatalf("send lease request: %v", err)
	}
	return &leaseReq{st: st, c: c}
}

// next returns the next answer: *wire.LeaseGrant, *wire.LeaseQueued, *wire.LeaseDenied...
func (l *leaseReq) next(t testing.TB) wire.Message {
	t.Helper()
	m, err := l.c.Recv()
	if err != nil {
		t.Fatalf("lease answer: %v", err)
	}
	return m
}

// grant waits for a grant, skipping queue updates.
func (l *leaseReq) grant(t testing.TB) *wire.LeaseGrant {
	t.Helper()
	for {
		switch m := l.next(t).(type) {
		case *wire.LeaseGrant:
			return m
		case *wire.LeaseQueued:
		default:
			t.Fatalf("lease: got %T %+v", m, m)
		}
	}
}

// grab leases a slot as user and returns the grant and the session holding it.
func grab(t testing.TB, f *testfarm.Farm, user string, src []byte) (*yamux.Session, *wire.LeaseGrant) {
	t.Helper()
	s := dialBroker(t, f, user)
	g := requestLease(t, s, gccFP(t), src).grant(t)
	return s, g
}

// testJob is a raw job: its header, and the source that follows it.
type testJob struct {
	*wire.JobRequest
	Source []byte
}

// send writes the job's two frames.
func (j *testJob) send(c *wire.Conn) error {
	if err := c.Send(j.JobRequest); err != nil {
		return err
	}
	return c.Send(&wire.JobSource{Source: j.Source})
}

// jobTo sends a job to a volunteer and returns the result. It connects
// with the credential of the user the job's token is for (as a real
// client would), or "tester" if the token does not parse.
func jobTo(t testing.TB, f *testfarm.Farm, host string, req *testJob) (*wire.JobResult, error) {
	t.Helper()
	user := "tester"
	if cl, _, _, err := wire.ParseToken(req.Token); err == nil {
		user = cl.User
	}
	s, err := f.DialVolunteer(addrOf(t, f, host), host, user)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	c := wire.NewConn(st, wire.MaxJobFrame, 60*time.Second)
	if err := req.send(c); err != nil {
		return nil, err
	}
	m, err := c.Recv()
	if err != nil {
		return nil, err
	}
	r, ok := m.(*wire.JobResult)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	return r, nil
}

// jobFor builds a job request for src under grant g.
func jobFor(t testing.TB, g *wire.LeaseGrant, src []byte, args ...string) *testJob {
	sum := sha256.Sum256(src)
	return &testJob{&wire.JobRequest{Token: g.Token, Compiler: "gcc", Fingerprint: gccFP(t), Ext: ".i", Kind: ".o",
		Args: args, SourceName: "job.i", SourceBytes: int64(len(src)), Digest: sum[:]}, src}
}

// volunteer is a started volunteer with a metrics address.
type volunteer struct {
	name    string
	metrics string
	proc    *testfarm.Proc
}

func startVolunteer(f *testfarm.Farm, name string, slots int, extra ...string) *volunteer {
	m := testfarm.FreeAddr(f.T)
	p := f.StartVolunteer(name, slots, append([]string{"--http", m}, extra...)...)
	return &volunteer{name: name, metrics: m, proc: p}
}

// metric returns the value of a metric line (name with labels, exactly as
// exposed), or -1 if the scrape failed or the series is absent.
func metric(addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(series):]), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func (v *volunteer) jobs(result string) float64 {
	return metric(v.metrics, `dcc_volunteer_jobs_total{result="`+result+`"}`)
}

func (v *volunteer) running() float64 { return metric(v.metrics, "dcc_volunteer_running_jobs") }

// idle says the farm holds no lease, has no queue, and every host's slots are free.
func idle(d *status.Doc) bool {
	if d.Leases != 0 || d.Queue != 0 || d.Busy != 0 {
		return false
	}
	for _, h := range d.Hosts {
		if h.Busy != 0 {
			return false
		}
	}
	return true
}

// waitFor polls cond every few milliseconds until it holds or timeout;
// it returns how long it took and whether it held.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func statusOK(f *testfarm.Farm, cond func(*status.Doc) bool) func() bool {
	return func() bool {
		d, err := f.TryStatus()
		return err == nil && cond(d)
	}
}

// jobProcs counts processes running inside a job directory under dir (compilers a volunteer started).
func jobProcs(dir string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir+"/dccjob-") {
			n++
		}
	}
	return n
}

// rssKB returns a process's resident set size in KiB.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// preprocess runs gcc -E on a C source and returns the preprocessed text.
func preprocess(t testing.TB, src string) []byte {
	t.Helper()
	cmd := exec.Command("gcc", "-E", "-x", "c", "-")
	cmd.Stdin = strings.NewReader(src)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gcc -E: %v %s", err, errb.String())
	}
	return out.Bytes()
}

// slowSource is C that gcc -O2 takes seconds to compile.
func slowSource(n int, salt string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "/* %s */\n", salt)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "int f%d(int *a,int n){int s=0;for(int i=0;i<n;i++){for(int j=0;j<n;j++) s+=a[i]*a[j]^(i*%d+j);}return s;}\n", i, i)
	}
	return b.String()
}

// smallSource is a quick C file, distinct per i.
func smallSource(i int) string {
	return fmt.Sprintf(`#include <string.h>
static int tab[%d];
int fn%d(const char *s) { int h = %d; while (*s) h = h * 31 + *s++; return h ^ (int)strlen(s) ^ tab[%d]; }
int loop%d(int n) { int r = 0; for (int i = 0; i < n; i++) r += (i * %d) %% 7; return r; }
`, i%50+1, i, i, i%50, i, i+3)
}

// dccCmd prepares (without starting) `dcc gcc args...` in dir for user.
func dccCmd(f *testfarm.Farm, dir, user string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(testfarm.Bin(f.T), "dcc"), append([]string{"gcc"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), f.Env(user)...), extraEnv...)
	return cmd
}

// killAgents kills the agents of a farm and waits for them to be gone.
func killAgents(f *testfarm.Farm) { testfarm.KillAgents(f.RuntimeDir) }

// compileLocal compiles src with gcc in a fresh directory and returns the object.
func compileLocal(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(dir, name+".o")
	cmd := exec.Command("gcc", append(args, "-c", name+".c", "-o", out)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("local gcc %s: %v %s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

var _ = io.EOF
