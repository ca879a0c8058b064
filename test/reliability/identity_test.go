package reliability

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// refusedCount is the broker's refusal counter for reason.
func refusedCount(f *testfarm.Farm, reason string) float64 {
	return metric(f.HTTP, `dcc_broker_refused_total{reason="`+reason+`"}`)
}

// oneLine checks that a refusal says what happened on one line.
func oneLine(t *testing.T, what, msg, want string) {
	t.Helper()
	msg = strings.TrimSpace(msg)
	if msg == "" || strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Fatalf("%s: refusal %q is not one clear line mentioning %q", what, msg, want)
	}
}

// TestRolesEnforced: each of these is refused, leaves the farm unchanged,
// gives whoever tried it a one-line reason, and the admin a log line and a
// metric:
//   - a user credential registering as a host;
//   - a host credential registering under another host's name;
//   - a user draining a host (an admin may);
//   - a user charging a colleague (the compile is charged to the user);
//   - a job sent straight to a volunteer without a token.
func TestRolesEnforced(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2}, testfarm.Host{Name: "v2", CPUs: 16, Power: 2})
	f.StartBroker()
	startVolunteer(f, "v1", 2)
	f.WaitHosts("v1")

	// A user credential registering as a host (v2 is in the farm file).
	before := refusedCount(f, "not_host")
	_, err := f.Dial("user", "mallory", wire.Hello{Role: wire.RoleVolunteer, Name: "v2"})
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("a user registering as a host: %v, want a refusal", err)
	}
	oneLine(t, "user as host", we.Message, "cannot register as a volunteer")
	if refusedCount(f, "not_host") != before+1 {
		t.Fatal("the refusal is not counted")
	}

	// A host credential under another host's name: v1's credential claims v2.
	before = refusedCount(f, "wrong_name")
	_, err = f.Dial("host", "v1", wire.Hello{Role: wire.RoleVolunteer, Name: "v2"})
	if !errors.As(err, &we) {
		t.Fatalf("a host registering as another: %v", err)
	}
	oneLine(t, "host as another host", we.Message, `for host "v1", not "v2"`)
	if refusedCount(f, "wrong_name") != before+1 {
		t.Fatal("the refusal is not counted")
	}
	// A volunteer started with v1's credential and --name v2 refuses to start.
	r := testfarm.Run(t, t.TempDir(), nil, filepath.Join(testfarm.Bin(t), "volunteer"), "--broker", f.Broker,
		"--identity", f.Identity("host", "v1"), "--name", "v2", "--state", t.TempDir(), "--listen", "127.0.0.1:0")
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not match the credential") {
		t.Fatalf("volunteer --name v2 with v1's credential: exit %d\n%s", r.Code, r.Stderr)
	}
	d := f.Status()
	if h := testfarm.HostOf(d, "v2"); h != nil && h.State != "gone" {
		t.Fatalf("v2 was registered by a refused credential: %+v", h)
	}

	// A user draining a host: refused; an admin may.
	before = refusedCount(f, "not_admin")
	r = f.DCC(t.TempDir(), "farm", "drain", "v1", "--reason", "mine now")
	if r.Code == 0 {
		t.Fatal("a user drained a host")
	}
	oneLine(t, "user drains", r.Stderr, "needs an admin credential")
	if refusedCount(f, "not_admin") != before+1 {
		t.Fatal("the refusal is not counted")
	}
	if h := testfarm.HostOf(f.Status(), "v1"); h.State != "healthy" {
		t.Fatalf("a refused drain changed the host: %+v", h)
	}
	if !strings.Contains(f.BrokerProc().Output(), "not_admin") {
		t.Fatal("the refusal is not logged")
	}
	if r := f.Admin(t.TempDir(), "farm", "drain", "v1", "--reason", "kernel update"); r.Code != 0 {
		t.Fatalf("an admin's drain: %+v", r)
	}
	f.WaitStatus(func(d *status.Doc) bool { return testfarm.HostOf(d, "v1").State == "draining" }, 5*time.Second, "v1 drained")
	if r := f.Admin(t.TempDir(), "farm", "undrain", "v1"); r.Code != 0 {
		t.Fatalf("an admin's undrain: %+v", r)
	}
	f.WaitHosts("v1")

	// A user charging a colleague: DCC_USER is not believed.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c.c"), smallSource(21))
	r = testfarm.Run(t, dir, append(f.Env("mallory"), "DCC_USER=victim"), filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-O2", "-c", "c.c")
	if r.Code != 0 || remoteRe.FindStringSubmatch(r.Stderr) == nil {
		t.Fatalf("compile: %+v", r)
	}
	// Every lease event names the user charged: mallory, never victim.
	log := f.BrokerProc().Output()
	if !strings.Contains(log, `"user": "mallory"`) || strings.Contains(log, "victim") {
		t.Fatalf("DCC_USER charged a colleague; the broker's lease log:\n%s", grepLines(log, "grant"))
	}

	// A job sent straight to a volunteer without a token.
	src := preprocess(t, smallSource(22))
	j := jobFor(t, &wire.LeaseGrant{}, src, "-O2")
	res, err := jobTo(t, f, "v1", j)
	if err != nil || res.Code != wire.RejectToken || len(res.Output) != 0 {
		t.Fatalf("a job without a token: %v %+v", err, res)
	}
	oneLine(t, "job without token", res.Rejected, "lease token")
	figure(t, "refused with a one-line reason, a log line and a metric: user credential as a host, host credential under another name, a user draining a host (an admin may), a job without a token; DCC_USER of a user credential ignored (charged to the credential's name)")
}

// TestRevocation: `broker revoke user NAME` while the broker runs cuts the
// user off within 5 s (its agent's sessions closed; its next compile gets
// no farm and compiles locally, saying why), volunteers refuse the
// credential too, a colleague is unaffected, re-enrolling gives a new
// working credential, and the revocation survives a broker restart.
func TestRevocation(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	startVolunteer(f, "v1", 2)
	f.WaitHosts("v1")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.c"), smallSource(31))
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	compileAs := func(user string) testfarm.Result {
		return testfarm.Run(t, dir, f.Env(user), dcc, "gcc", "-O2", "-c", "r.c", "-o", user+".o")
	}
	if r := compileAs("bob"); r.Code != 0 || remoteRe.FindStringSubmatch(r.Stderr) == nil {
		t.Fatalf("bob before the revocation: %+v", r)
	}
	bobCred := f.Identity("user", "bob")
	// bob holds a job session to the volunteer too (his agent keeps it).
	vs, err := f.DialVolunteer(addrOf(t, f, "v1"), "v1", "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()

	r := testfarm.Run(t, t.TempDir(), nil, filepath.Join(testfarm.Bin(t), "broker"), "revoke", "user", "bob", "--state", f.StateDir)
	if r.Code != 0 {
		t.Fatalf("broker revoke: %+v", r)
	}
	revoked := time.Now()
	if _, ok := waitFor(5*time.Second, func() bool { return vs.IsClosed() }); !ok {
		t.Fatal("the volunteer did not close the revoked user's session within 5 s")
	}
	// Within 5 s bob gets no farm: his compiles run locally and say why.
	var cutoff time.Duration
	for {
		r = compileAs("bob")
		cutoff = time.Since(revoked)
		if r.Code != 0 {
			t.Fatalf("bob's compile failed after the revocation: %+v", r)
		}
		if remoteRe.FindStringSubmatch(r.Stderr) == nil {
			break
		}
		if cutoff > 5*time.Second {
			t.Fatalf("bob still compiles on the farm %s after the revocation", cutoff)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(r.Stderr, "revoked") {
		t.Fatalf("bob's local compile does not say his credential is revoked:\n%s", r.Stderr)
	}
	if got, want := readFile2(t, filepath.Join(dir, "bob.o")), compileLocal(t, dir, "r", "-O2"); !bytes.Equal(got, want) {
		t.Fatal("bob's local compile differs from gcc's")
	}
	if _, err := f.DialVolunteer(addrOf(t, f, "v1"), "v1", "bob"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the volunteer admitted a revoked credential: %v", err)
	}
	if refusedCount(f, "revoked") < 1 {
		t.Fatal("the broker's refusal of a revoked credential is not counted")
	}
	if r := compileAs("alice"); r.Code != 0 || remoteRe.FindStringSubmatch(r.Stderr) == nil {
		t.Fatalf("alice is affected by bob's revocation: %+v", r)
	}

	// The revocation survives a restart.
	f.BrokerProc().Signal(9)
	f.BrokerProc().Wait()
	f.StartBroker()
	f.WaitHosts("v1")
	if _, err := testfarm.DialAs(f.Broker, bobCred, identity.Expect(identity.RoleBroker, ""), wire.Hello{Role: wire.RoleClient, Name: "x"}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the restarted broker admitted the revoked credential: %v", err)
	}
	// Rotation: a new credential for bob works.
	fresh, err := testfarm.Enroll(f.StateDir, "user", "bob", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r = testfarm.Run(t, dir, append(f.Env("bob"), "DCC_IDENTITY="+fresh), dcc, "gcc", "-O2", "-c", "r.c", "-o", "bob2.o")
	if r.Code != 0 || remoteRe.FindStringSubmatch(r.Stderr) == nil {
		t.Fatalf("bob with a new credential: %+v", r)
	}
	figure(t, "broker revoke user bob: volunteer closed bob's session and bob's next compile ran locally %s after the revoke (limit 5 s), saying why; alice unaffected; refused after a broker restart; a re-enrolled credential works", cutoff.Round(time.Millisecond))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func readFile2(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is a TCP proxy that keeps every byte it forwards.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	seen   bytes.Buffer
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.handle(c)
		}
	}()
	return r
}

func (r *recorder) handle(c net.Conn) {
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	pump := func(dst, src net.Conn) {
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				r.mu.Lock()
				r.seen.Write(buf[:n])
				r.mu.Unlock()
				dst.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	go pump(s, c)
	pump(c, s)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.seen.Bytes()...)
}

// TestNoPlaintextOnTheWire records both links of a compile (agent to
// broker, agent to volunteer) through proxies: a marker string in the
// source, and in the object, never appears in what crossed them.
func TestNoPlaintextOnTheWire(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	listen := testfarm.FreeAddr(t)
	toVol := newRecorder(t, listen)
	startVolunteer(f, "v1", 2, "--listen", listen, "--advertise", toVol.ln.Addr().String())
	f.WaitHosts("v1")
	toBroker := newRecorder(t, f.Broker)
	const marker = "MARKER_dcc_plaintext_4f1e"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.c"), `const char *m(void) { return "`+marker+`"; }
int `+marker+`_fn(int x) { return x + 1; }
`)
	env := append(f.Env("alice"), "DCC_BROKER="+toBroker.ln.Addr().String())
	r := testfarm.Run(t, dir, env, filepath.Join(testfarm.Bin(t), "dcc"), "gcc", "-O2", "-c", "m.c")
	if r.Code != 0 || remoteRe.FindStringSubmatch(r.Stderr) == nil {
		t.Fatalf("compile did not go through the proxies to the farm: %+v", r)
	}
	obj := readFile2(t, filepath.Join(dir, "m.o"))
	if !bytes.Contains(obj, []byte(marker)) {
		t.Fatal("the object lacks the marker: the test proves nothing")
	}
	for name, rec := range map[string]*recorder{"agent-broker": toBroker, "agent-volunteer": toVol} {
		seen := rec.bytes()
		if len(seen) == 0 {
			t.Fatalf("%s: nothing crossed the proxy", name)
		}
		if bytes.Contains(seen, []byte(marker)) {
			t.Fatalf("%s: the marker crossed the wire in clear", name)
		}
	}
	figure(t, "a marker in the source and object never appeared in %d bytes recorded agent-broker nor %d bytes agent-volunteer", len(toBroker.bytes()), len(toVol.bytes()))
}

var _ = io.EOF

// TestSandboxStopsIncbin: a source whose inline assembly embeds a file
// (.incbin) the volunteer's user can read, but outside what the sandbox
// allows, fails on the farm, and the object never carries the file; the
// same with a system header (inside the sandbox) works, so the sandbox is
// what refused.
func TestSandboxStopsIncbin(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	startVolunteer(f, "v1", 2)
	f.WaitHosts("v1")
	if h := testfarm.HostOf(f.Status(), "v1"); !strings.Contains(f.Volunteer("v1").Output(), "sandbox") {
		t.Fatalf("the volunteer does not report its sandbox: %+v", h)
	}
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	const marker = "TOP-SECRET-dcc-4c7d"
	writeFile(t, secret, marker+"\n")
	run := func(path string) *wire.JobResult {
		src := preprocess(t, `__asm__(".section .rodata\n.incbin \"`+path+`\"\n.text\n");`+"\nint f(void) { return 1; }\n")
		s, g := grab(t, f, "alice", src)
		defer s.Close()
		r, err := jobTo(t, f, g.Host, jobFor(t, g, src, "-O2"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run(secret)
	if r.Code == wire.RejectNone && r.ExitCode == 0 {
		t.Fatalf("the farm compiled an .incbin of %s: %d bytes out", secret, len(r.Output))
	}
	if bytes.Contains(r.Output, []byte(marker)) || bytes.Contains(r.Stdout, []byte(marker)) {
		t.Fatal("the secret left the volunteer")
	}
	if r := run("/usr/include/stdio.h"); r.Code != wire.RejectNone || r.ExitCode != 0 || !bytes.Contains(r.Output, []byte("stdio")) {
		t.Fatalf("an .incbin of a system header (inside the sandbox) failed too: %+v", r)
	}
	figure(t, "an .incbin of a file outside the sandbox failed on the farm (exit %d: %s); of a system header inside it, worked", r.ExitCode, strings.SplitN(strings.TrimSpace(string(r.Stderr)), "\n", 2)[0])
}
