package reliability

import (
	"crypto/ed25519"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// securityFarm: two volunteers, a 1 s lease TTL (for the expiry case).
func securityFarm(t *testing.T) (*testfarm.Farm, map[string]*volunteer) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2}, testfarm.Host{Name: "v2", CPUs: 16, Power: 2})
	f.StartBroker("--lease-ttl", "1s")
	// No clock-skew allowance: the expiry checks below are exact.
	vols := map[string]*volunteer{"v1": startVolunteer(f, "v1", 4, "--clock-skew", "0s"), "v2": startVolunteer(f, "v2", 4, "--clock-skew", "0s")}
	f.WaitHosts("v1", "v2")
	return f, vols
}

func addrOf(t testing.TB, f *testfarm.Farm, host string) string {
	h := testfarm.HostOf(f.Status(), host)
	if h == nil {
		t.Fatalf("no host %s", host)
	}
	return h.Addr
}

// TestVolunteerRefusesDangerousArguments sends jobs with valid tokens whose
// arguments would load code, run programs, or read or write files outside
// the job directory. Each must be rejected, and nothing must run: a canary
// that any of them would create must not exist, and no compile must start.
func TestVolunteerRefusesDangerousArguments(t *testing.T) {
	f, vols := securityFarm(t)
	evil := t.TempDir()
	canary := filepath.Join(evil, "CANARY")
	script := "#!/bin/sh\ntouch " + canary + "\nexit 0\n"
	writeFile(t, filepath.Join(evil, "hook.sh"), script)
	os.Chmod(filepath.Join(evil, "hook.sh"), 0o755)
	for _, prog := range []string{"cc1", "as", "collect2"} { // for -B
		writeFile(t, filepath.Join(evil, prog), script)
		os.Chmod(filepath.Join(evil, prog), 0o755)
	}
	writeFile(t, filepath.Join(evil, "evil.specs"), "*cc1:\n+ %:getenv(HOME /../../"+canary+")\n")
	writeFile(t, filepath.Join(evil, "resp"), "-wrapper "+filepath.Join(evil, "hook.sh")+"\n")
	src := preprocess(t, smallSource(5))

	bad := [][]string{
		{"-fplugin=" + filepath.Join(evil, "hook.so")},
		{"-fplugin-arg-x-y=z"},
		{"-specs=" + filepath.Join(evil, "evil.specs")},
		{"-specs", filepath.Join(evil, "evil.specs")},
		{"-B" + evil},
		{"-B", evil},
		{"-wrapper", filepath.Join(evil, "hook.sh")},
		{"@" + filepath.Join(evil, "resp")},
		{"-o", "/tmp/abs.o"},
		{"-o/tmp/abs.o"},
		{"../x.i"},
		{"-I/etc"},
		{"-include", "/etc/passwd"},
		{"-iquote../.."},
		{"-save-temps=" + evil},
		{"-fdump-tree-all"},
		{"-MF" + filepath.Join(evil, "dep")},
		{"-fprofile-generate=" + evil},
		{"-Xlinker", "-T" + evil},
		{"-Wa,-o" + filepath.Join(evil, "x")},
		{"-Wl,--wrap=x"},
		{"-fdebug-prefix-map=/=/", "-I../../etc"},
		{"--sysroot=/etc"},
		{"-O2", "x.i"},
		{"-fpass-plugin=" + filepath.Join(evil, "hook.so")},
		{"-mllvm", "-print-after-all"},
		{"-S"},
		{"-c"},
		{"-Xclang", "-load"},
	}
	okBefore := vols["v1"].jobs(wire.OutcomeOK) + vols["v2"].jobs(wire.OutcomeOK)
	rejBefore := vols["v1"].jobs(wire.OutcomeRejected) + vols["v2"].jobs(wire.OutcomeRejected)
	for _, args := range bad {
		s, g := grab(t, f, "mallory", src)
		r, err := jobTo(t, f, g.Host, jobFor(t, g, src, args...))
		s.Close()
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if r.Rejected == "" || len(r.Output) != 0 {
			t.Errorf("%q was not rejected (exit %d, %d bytes out)", args, r.ExitCode, len(r.Output))
		}
	}
	// Bad extension or output kind: refused by the executor before it runs anything.
	for _, ek := range [][2]string{{"/../../x.i", ".o"}, {".i", ".so"}, {".c", ".o"}, {".i", "/../x"}} {
		s, g := grab(t, f, "mallory", src)
		j := jobFor(t, g, src)
		j.Ext, j.Kind = ek[0], ek[1]
		r, err := jobTo(t, f, g.Host, j)
		s.Close()
		if err != nil || r.Rejected == "" {
			t.Errorf("ext %q kind %q: not refused (%v)", ek[0], ek[1], err)
		}
	}
	// A compiler the volunteer was not configured with cannot be chosen: the
	// name only selects among the offered drivers of the signed fingerprint.
	s, g := grab(t, f, "mallory", src)
	j := jobFor(t, g, src)
	j.Compiler = filepath.Join(evil, "hook.sh")
	r, err := jobTo(t, f, g.Host, j)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A hostile source name stays inside the job directory.
	s, g = grab(t, f, "mallory", src)
	j = jobFor(t, g, src, "-O2")
	j.SourceName = "../../../../" + strings.TrimPrefix(filepath.Join(evil, "escaped.i"), "/")
	r2, err := jobTo(t, f, g.Host, j)
	s.Close()
	if err != nil || r2.Rejected != "" || r2.ExitCode != 0 {
		t.Fatalf("hostile source name: %v %+v", err, r2)
	}
	if _, err := os.Stat(filepath.Join(evil, "escaped.i")); err == nil {
		t.Fatal("a source name escaped the job directory")
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("the canary exists: a hostile argument ran a program")
	}
	okAfter := vols["v1"].jobs(wire.OutcomeOK) + vols["v2"].jobs(wire.OutcomeOK)
	rejAfter := vols["v1"].jobs(wire.OutcomeRejected) + vols["v2"].jobs(wire.OutcomeRejected)
	wantOK := 1.0 // the hostile source name compiled, inside its directory
	if r.Rejected == "" {
		wantOK++ // the hook's name ran the offered gcc (canary checked above)
	}
	if okAfter-okBefore != wantOK {
		t.Fatalf("%v jobs ran, want %v", okAfter-okBefore, wantOK)
	}
	if n := jobProcs(f.Dir); n != 0 {
		t.Fatalf("%d job processes running", n)
	}
	figure(t, "%d hostile argument lists and 4 bad extension/kind pairs sent with valid tokens: all refused before any compiler ran (volunteer rejected counter +%v; the 4 ext/kind pairs are refused by the executor and count as failed), canary absent, no compile ran; a client-chosen compiler path ran the configured gcc (%q); a ../ source name stayed in the job directory",
		len(bad), rejAfter-rejBefore, map[bool]string{true: "compiled", false: "rejected"}[r.Rejected == ""])
}

// TestTokens checks what binds a lease token: a replay, a token for another
// host, for another source, after expiry, signed by another key or
// tampered with, and a fingerprint that differs from the signed one are all
// refused; the user the volunteer records is the token's, not the
// client's claim; and a wrong or missing farm key is refused at the
// handshake, before any other message.
func TestTokens(t *testing.T) {
	f, _ := securityFarm(t)
	src := preprocess(t, smallSource(9))
	other := preprocess(t, smallSource(10))
	refused := map[string]string{}
	expect := func(name string, r *wire.JobResult, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Rejected == "" || !strings.Contains(r.Rejected, want) {
			t.Errorf("%s: got %q, want a refusal containing %q", name, r.Rejected, want)
		}
		refused[name] = r.Rejected
	}

	// Replay: the first use runs, the second is refused.
	s, g := grab(t, f, "alice", src)
	r, err := jobTo(t, f, g.Host, jobFor(t, g, src, "-O2"))
	if err != nil || r.Rejected != "" || r.ExitCode != 0 {
		t.Fatalf("first use: %v %+v", err, r)
	}
	r, err = jobTo(t, f, g.Host, jobFor(t, g, src, "-O2"))
	expect("replay", r, err, "already used")
	s.Close()

	// Another host.
	s, g = grab(t, f, "alice", src)
	otherHost := map[string]string{"v1": "v2", "v2": "v1"}[g.Host]
	r, err = jobTo(t, f, otherHost, jobFor(t, g, src, "-O2"))
	expect("other host", r, err, "another host")

	// Another source under the same token.
	j := jobFor(t, g, other, "-O2")
	r, err = jobTo(t, f, g.Host, j)
	expect("other source", r, err, "another job")
	j.Digest = jobFor(t, g, src).Digest // lie about the digest too
	r, err = jobTo(t, f, g.Host, j)
	expect("other source, lying digest", r, err, "does not match")

	// A fingerprint other than the signed one.
	j = jobFor(t, g, src, "-O2")
	j.Fingerprint = "x86_64-linux-gnu gcc version 99"
	r, err = jobTo(t, f, g.Host, j)
	expect("other fingerprint", r, err, "fingerprint")

	// Tampered claims (the user) and a token signed by another key.
	cl, _, _, perr := wire.ParseToken(g.Token)
	if perr != nil {
		t.Fatal(perr)
	}
	tampered := append([]byte(nil), g.Token...)
	i := strings.Index(string(tampered), "alice")
	tampered[i] = 'm'
	j = jobFor(t, g, src, "-O2")
	j.Token = tampered
	r, err = jobTo(t, f, g.Host, j)
	expect("tampered user", r, err, "bad signature")
	_, foreign, _ := ed25519.GenerateKey(nil)
	cl.Lease++
	j.Token = lease.Sign(foreign, cl)
	r, err = jobTo(t, f, g.Host, j)
	expect("another broker's key", r, err, "bad signature")
	s.Close()

	// Expired: the farm's TTL is 1 s; the token expires with the lease.
	s, g = grab(t, f, "alice", src)
	time.Sleep(1300 * time.Millisecond)
	r, err = jobTo(t, f, g.Host, jobFor(t, g, src, "-O2"))
	expect("expired", r, err, "expired")
	s.Close()

	// A token is for its user: another user's credential cannot spend it.
	s, g = grab(t, f, "alice", src)
	r, err = jobTo(t, f, g.Host, func() *testJob {
		j := jobFor(t, g, src, "-O2")
		j.Token = append([]byte(nil), g.Token...)
		return j
	}())
	if err != nil || r.Rejected != "" {
		t.Fatalf("alice's own token: %v %+v", err, r)
	}
	s.Close()
	s, g = grab(t, f, "alice", src)
	vs, derr := f.DialVolunteer(g.Addr, g.Host, "mallory")
	if derr != nil {
		t.Fatal(derr)
	}
	st, _ := vs.OpenStream()
	c := wire.NewConn(st, wire.MaxJobFrame, 20*time.Second)
	jobFor(t, g, src, "-O2").send(c)
	m, rerr := c.Recv()
	vs.Close()
	s.Close()
	if jr, ok := m.(*wire.JobResult); rerr != nil || !ok || !strings.Contains(jr.Rejected, "alice's, not mallory's") {
		t.Fatalf("mallory spent alice's token: %v %+v", rerr, m)
	}
	refused["another user's token"] = m.(*wire.JobResult).Rejected

	// Another farm's credential: refused at the TLS handshake by the broker
	// and by the volunteer, before any message.
	eve, err := testfarm.Enroll(filepath.Join(t.TempDir(), "other-farm"), "user", "eve", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range []struct{ addr, role, name string }{{f.Broker, "broker", ""}, {addrOf(t, f, "v1"), "host", "v1"}} {
		_, err := testfarm.DialAs(tg.addr, eve, identity.Expect(tg.role, tg.name), wire.Hello{Role: wire.RoleClient, Name: "x"})
		if err == nil {
			t.Fatalf("%s accepted another farm's credential", tg.addr)
		}
		refused["other farm "+tg.role] = err.Error()
		// No TLS at all: a lease or job message sent in the clear is never answered.
		for _, msg := range []wire.Message{&wire.LeaseRequest{Fingerprint: gccFP(t), Digest: make([]byte, 32)}, jobFor(t, g, src).JobRequest} {
			conn, err := net.DialTimeout("tcp", tg.addr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			wire.WriteFrame(conn, msg)
			conn.SetReadDeadline(time.Now().Add(wire.HandshakeTimeout + 2*time.Second))
			typ, _, err := wire.ReadFrame(conn, wire.MaxJobFrame)
			if err == nil && (typ == wire.TypeLeaseGrant || typ == wire.TypeLeaseQueued || typ == wire.TypeJobResult) {
				t.Fatalf("%s answered a %T sent without TLS with frame type %d", tg.addr, msg, typ)
			}
			conn.Close()
		}
	}
	// Nothing was granted to the refused attempts.
	for _, u := range f.Status().Users {
		if u.Name == "eve" {
			t.Fatal("a user of another farm appears in the broker's users")
		}
	}
	figure(t, "refused: replay, other host, other source (twice), other fingerprint, tampered claims, another broker's key, expired (TTL 1s), another user's token; another farm's credential refused by broker and volunteer at TLS; lease/job messages without TLS never answered. Refusals: %d", len(refused))
}
