package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// cacheSources are a small tree two engineers check out in directories of
// their own: a clean file, one clang warns about, a header.
var cacheSources = map[string]string{
	"inc/cfg.h": "#define SCALE 3\nstatic inline int scale(int x) { return x * SCALE; }\n",
	"clean.c":   "#include \"inc/cfg.h\"\nint clean(int x) { return scale(x) + 1; }\n",
	"warn.c":    "#include \"inc/cfg.h\"\nint warn(int x) { int unused; return scale(x); }\n",
}

func writeTree(t *testing.T, dir string) {
	t.Helper()
	for name, text := range cacheSources {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cacheFarm is one host and a broker with a result cache.
func cacheFarm(t *testing.T, brokerArgs ...string) *testfarm.Farm {
	t.Helper()
	f := testfarm.New(t, testfarm.Host{Name: "h1", CPUs: 2, Power: 2})
	if len(brokerArgs) == 0 {
		brokerArgs = []string{"--cache-size", "64MiB"}
	}
	f.StartBroker(brokerArgs...)
	f.StartVolunteer("h1", 2)
	f.WaitHosts("h1")
	return f
}

// dccAs runs dcc in dir as user, with extra environment.
func dccAs(f *testfarm.Farm, user, dir string, env []string, args ...string) testfarm.Result {
	f.T.Helper()
	return testfarm.Run(f.T, dir, append(f.Env(user), env...), filepath.Join(testfarm.Bin(f.T), "dcc"), args...)
}

func cacheDoc(f *testfarm.Farm) *status.Cache {
	f.T.Helper()
	c := f.Status().Cache
	if c == nil {
		f.T.Fatal("status has no cache section")
	}
	return c
}

// waitEntries waits until the cache holds n entries (a volunteer's put
// follows its result to the client).
func waitEntries(f *testfarm.Farm, n int64) {
	f.T.Helper()
	f.WaitStatus(func(d *status.Doc) bool { return d.Cache != nil && d.Cache.Entries == n }, 10*time.Second, fmt.Sprintf("%d cache entries", n))
}

// stored runs a compile that the farm runs and waits until its result is
// in the cache.
func stored(f *testfarm.Farm, user, dir string, args ...string) testfarm.Result {
	f.T.Helper()
	before := cacheDoc(f).Puts
	r := dccAs(f, user, dir, nil, args...)
	if r.Code != 0 || isHit(r.Stderr) {
		f.T.Fatalf("%s should compile on the farm:\n%s", strings.Join(args, " "), r.Stderr)
	}
	f.WaitStatus(func(d *status.Doc) bool { return d.Cache.Puts > before }, 10*time.Second, "the result stored")
	return r
}

func sha256sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func isHit(stderr string) bool { return strings.Contains(stderr, "cache hit (produced by h1 at ") }

// sameAsLocal compiles args locally in a fresh copy of the tree at dir
// and requires dcc's result there to be byte-identical: stdout, stderr
// (without dcc's own lines), exit code, and every file the compile wrote.
func sameAsLocal(t *testing.T, dir string, rem testfarm.Result, driver string, args []string, outputs ...string) {
	t.Helper()
	local := filepath.Join(t.TempDir(), filepath.Base(dir))
	os.MkdirAll(local, 0o755)
	writeTree(t, local)
	// the same absolute directory matters only for -g; the tests that use
	// -g compare against their own directory instead
	loc := testfarm.Run(t, local, nil, driver, args...)
	if rem.Code != loc.Code || rem.Stdout != loc.Stdout || stripDCC(rem.Stderr) != loc.Stderr {
		t.Fatalf("dcc differs from local %s: exit %d vs %d\n--- local stderr:\n%s\n--- dcc stderr:\n%s", driver, rem.Code, loc.Code, loc.Stderr, rem.Stderr)
	}
	for _, o := range outputs {
		want, err1 := os.ReadFile(filepath.Join(local, o))
		got, err2 := os.ReadFile(filepath.Join(dir, o))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: local %v, dcc %v", o, err1, err2)
		}
		if strings.HasSuffix(o, ".d") {
			want = bytes.ReplaceAll(want, []byte(local), []byte(dir))
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("%s differs from the local compile's", o)
		}
	}
}

// TestCacheHitIsExact: the second engineer to compile a file gets the
// first one's result from the cache, byte for byte what the local
// compiler gives, warnings included, with the .d file made locally, and
// without a farm job or fair-share usage; what differs misses.
func TestCacheHitIsExact(t *testing.T) {
	f := cacheFarm(t)
	alice, bob := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "src")
	writeTree(t, alice)
	writeTree(t, bob)
	entries := int64(0)
	for _, tc := range []struct {
		driver, file string
		cached       bool // gcc's warnings on preprocessed text are not gcc's own: not kept
	}{
		{"gcc", "clean.c", true},
		{"clang", "clean.c", true},
		{"clang", "warn.c", true},
		{"gcc", "warn.c", false},
	} {
		t.Run(tc.driver+"/"+tc.file, func(t *testing.T) {
			obj := strings.TrimSuffix(tc.file, ".c") + "-" + tc.driver + ".o"
			dep := strings.TrimSuffix(obj, ".o") + ".d"
			args := []string{tc.driver, "-O2", "-Wall", "-MD", "-MF", dep, "-c", tc.file, "-o", obj}
			first := dccAs(f, "alice", alice, nil, args...)
			if first.Code != 0 || isHit(first.Stderr) || tc.cached && remoteHost(first.Stderr) != "h1" {
				t.Fatalf("first compile should run on h1:\n%s", first.Stderr)
			}
			if tc.cached {
				entries++
			}
			waitEntries(f, entries)
			jobs := farmJobs(f.Status())
			before := cacheDoc(f)
			second := dccAs(f, "bob", bob, nil, args...)
			if isHit(second.Stderr) != tc.cached {
				t.Fatalf("cache hit %v, want %v:\n%s", isHit(second.Stderr), tc.cached, second.Stderr)
			}
			sameAsLocal(t, bob, second, tc.driver, args[1:], obj, dep)
			if !tc.cached {
				return
			}
			after := cacheDoc(f)
			if after.Hits != before.Hits+1 {
				t.Fatalf("hits %d -> %d", before.Hits, after.Hits)
			}
			time.Sleep(200 * time.Millisecond) // a farm job would be counted at its release
			if d := f.Status(); farmJobs(d) != jobs || d.Leases != 0 {
				t.Fatalf("a hit ran a farm job or holds a lease: jobs %d -> %d, leases %d", jobs, farmJobs(d), d.Leases)
			}
			for _, u := range f.Status().Users {
				if u.Name == "bob" && u.Usage > 0.01 {
					t.Fatalf("bob was charged %.3f for cache hits", u.Usage)
				}
			}
		})
	}
	var bobHits int64
	for _, u := range cacheDoc(f).Users {
		if u.Name == "bob" {
			bobHits = u.Hits
		}
	}
	if bobHits != 3 {
		t.Fatalf("status shows %d hits for bob, want 3: %+v", bobHits, cacheDoc(f).Users)
	}

	args := []string{"gcc", "-O2", "-c", "clean.c", "-o", "clean.o"}
	stored(f, "alice", alice, args...)
	if r := dccAs(f, "bob", bob, nil, args...); !isHit(r.Stderr) {
		t.Fatalf("baseline should hit:\n%s", r.Stderr)
	}
	t.Run("a job sent home still hits", func(t *testing.T) {
		// A machine faster than the farm (carol's agent starts with her
		// settings): the broker or the agent sends the job to a free local
		// slot, and the cache still answers it.
		r := dccAs(f, "carol", bob, []string{"DCC_LOCAL_POWER=1000"}, args...)
		if !isHit(r.Stderr) || strings.Contains(r.Stderr, "compiling locally") {
			t.Fatalf("a job sent home compiled instead of hitting:\n%s", r.Stderr)
		}
		sameAsLocal(t, bob, r, "gcc", args[1:], "clean.o")
	})
	t.Run("DCC_CACHE=0", func(t *testing.T) {
		if r := dccAs(f, "bob", bob, []string{"DCC_CACHE=0"}, args...); isHit(r.Stderr) || remoteHost(r.Stderr) != "h1" {
			t.Fatalf("DCC_CACHE=0 used the cache:\n%s", r.Stderr)
		}
	})
	t.Run("-D", func(t *testing.T) {
		// The key is what is compiled: a macro that changes the
		// preprocessed text misses, one that the source never uses hits.
		if r := dccAs(f, "bob", bob, nil, append(args, "-Dscale=scale2")...); isHit(r.Stderr) {
			t.Fatalf("a -D that changes the source hit:\n%s", r.Stderr)
		}
		if r := dccAs(f, "bob", bob, nil, append(args, "-DNOT_USED=1")...); !isHit(r.Stderr) {
			t.Fatalf("a -D the source does not use missed:\n%s", r.Stderr)
		}
	})
	t.Run("other flags", func(t *testing.T) {
		if r := dccAs(f, "bob", bob, nil, "gcc", "-O1", "-c", "clean.c", "-o", "clean.o"); isHit(r.Stderr) {
			t.Fatalf("-O1 hit the -O2 entry:\n%s", r.Stderr)
		}
	})
	t.Run("header edited", func(t *testing.T) {
		edited := filepath.Join(t.TempDir(), "src")
		writeTree(t, edited)
		os.WriteFile(filepath.Join(edited, "inc/cfg.h"), []byte("#define SCALE 4\nstatic inline int scale(int x) { return x * SCALE; }\n"), 0o644)
		r := dccAs(f, "bob", edited, nil, args...)
		if isHit(r.Stderr) || remoteHost(r.Stderr) != "h1" {
			t.Fatalf("an edited header hit:\n%s", r.Stderr)
		}
	})
	t.Run("same version, other compiler binary", func(t *testing.T) {
		// A wrapper that reports gcc's version exactly: the fingerprint
		// matches, the binary's digest does not.
		g := testfarm.NewGate(t, "gcc")
		g.Open()
		env := []string{"PATH=" + g.Dir + ":" + os.Getenv("PATH")}
		if r := dccAs(f, "bob", bob, env, args...); isHit(r.Stderr) || r.Code != 0 {
			t.Fatalf("another binary hit:\n%s", r.Stderr)
		}
	})
	t.Run("-g in another directory", func(t *testing.T) {
		for _, cc := range []string{"gcc", "clang"} {
			g := []string{cc, "-g", "-O2", "-c", "clean.c", "-o", "clean-g.o"}
			stored(f, "alice", alice, g...)
			stored(f, "bob", bob, g...) // not alice's entry: a miss, compiled on the farm
			o := readFile(t, filepath.Join(bob, "clean-g.o"))
			if bytes.Contains(o, []byte(alice)) || !bytes.Contains(o, []byte(bob)) {
				t.Fatalf("%s -g object does not name its own directory %s", cc, bob)
			}
			// the same directory again is a hit
			os.Remove(filepath.Join(bob, "clean-g.o"))
			if r := dccAs(f, "bob", bob, nil, g...); !isHit(r.Stderr) {
				t.Fatalf("%s -g in the same directory missed:\n%s", cc, r.Stderr)
			}
		}
	})
}

// TestCacheOnlyHostsWrite: a user's session cannot store anything; a host
// that colleagues find producing wrong objects loses its entries; a
// corrupt entry is a miss, not a wrong object; entries survive a restart;
// an admin can clear the cache.
func TestCacheOnlyHostsWrite(t *testing.T) {
	f := cacheFarm(t)
	dir := filepath.Join(t.TempDir(), "src")
	writeTree(t, dir)
	args := []string{"gcc", "-O2", "-c", "clean.c", "-o", "clean.o"}
	stored(f, "alice", dir, args...)

	t.Run("user cannot put", func(t *testing.T) {
		sess, err := f.Dial("user", "mallory", wire.Hello{Role: wire.RoleClient, Name: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		st, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		c := wire.NewConn(st, wire.MaxControlFrame, 5*time.Second)
		obj := []byte("not an object")
		sum := sha256sum(obj)
		c.Send(&wire.CachePut{Key: make([]byte, 32), Object: obj, ObjectDigest: sum})
		m, err := c.Recv()
		if e, ok := m.(*wire.Error); err != nil || !ok || e.Code != wire.CodeBadRequest {
			t.Fatalf("broker answered a user's put with %v, %v", m, err)
		}
		if n := cacheDoc(f).Entries; n != 1 {
			t.Fatalf("%d entries after a user's put", n)
		}
	})

	t.Run("corrupt entry is a miss", func(t *testing.T) {
		corruptEntries(t, filepath.Join(f.StateDir, "cache"))
		os.Remove(filepath.Join(dir, "clean.o"))
		r := dccAs(f, "bob", dir, nil, args...)
		if isHit(r.Stderr) || remoteHost(r.Stderr) != "h1" {
			t.Fatalf("a corrupt entry was served:\n%s", r.Stderr)
		}
		sameAsLocal(t, dir, r, "gcc", args[1:], "clean.o")
		if c := cacheDoc(f); c.Corrupt < 1 {
			t.Fatalf("corruption not counted: %+v", c)
		}
		waitEntries(f, 1) // the farm's compile stored it again
	})

	t.Run("survives a restart", func(t *testing.T) {
		f.BrokerProc().Signal(15)
		f.BrokerProc().Wait()
		f.StartBroker("--cache-size", "64MiB")
		f.WaitHosts("h1")
		os.Remove(filepath.Join(dir, "clean.o"))
		r := dccAs(f, "bob", dir, nil, args...)
		if !isHit(r.Stderr) {
			t.Fatalf("no hit after a restart:\n%s", r.Stderr)
		}
		sameAsLocal(t, dir, r, "gcc", args[1:], "clean.o")
	})

	t.Run("verify samples hits", func(t *testing.T) {
		os.Remove(filepath.Join(dir, "clean.o"))
		r := dccAs(f, "bob", dir, []string{"DCC_VERIFY=1"}, args...)
		if !isHit(r.Stderr) || !strings.Contains(r.Stderr, "verify: object from h1 matches a local compile") {
			t.Fatalf("DCC_VERIFY=1 did not check the hit:\n%s", r.Stderr)
		}
	})

	t.Run("producer found wrong is purged", func(t *testing.T) {
		for _, u := range []string{"carol", "dave"} {
			sess, err := f.Dial("user", u, wire.Hello{Role: wire.RoleClient, Name: "desk"})
			if err != nil {
				t.Fatal(err)
			}
			st, _ := sess.OpenStream()
			c := wire.NewConn(st, wire.MaxControlFrame, 5*time.Second)
			c.Send(&wire.ClientReport{Mismatches: []string{"h1"}})
			if _, err := c.Recv(); err != nil {
				t.Fatal(err)
			}
			sess.Close()
		}
		waitEntries(f, 0)
		if d := f.Status(); testfarm.HostOf(d, "h1").State != "probation" {
			t.Fatalf("h1 is %s, want probation", testfarm.HostOf(d, "h1").State)
		}
	})

	t.Run("admin clears", func(t *testing.T) {
		f.Admin(dir, "farm", "unblock", "h1")
		stored(f, "alice", dir, "gcc", "-O2", "-c", "warn.c", "-Wno-unused-variable", "-o", "w.o")
		if r := f.Admin(dir, "cache", "clear"); r.Code != 0 || !strings.Contains(r.Stdout, "cache cleared") {
			t.Fatalf("dcc cache clear: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		waitEntries(f, 0)
		r := dccAs(f, "bob", dir, nil, "cache", "clear")
		if r.Code == 0 {
			t.Fatalf("a user cleared the cache:\n%s", r.Stdout)
		}
	})
}

// corruptEntries flips a byte in the middle of every stored blob.
func corruptEntries(t *testing.T, dir string) {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() < 64 || strings.HasSuffix(p, ".db") || !strings.Contains(p, "objects") {
			return nil
		}
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
		n++
		return nil
	})
	if n == 0 {
		t.Fatalf("no cache blobs under %s", dir)
	}
}

// TestCacheInRedis: the same rules with the cache in a real Redis server.
func TestCacheInRedis(t *testing.T) {
	addr := startRedis(t)
	f := cacheFarm(t, "--cache-redis", addr)
	alice, bob := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "src")
	writeTree(t, alice)
	writeTree(t, bob)
	args := []string{"clang", "-O2", "-Wall", "-c", "warn.c", "-o", "warn.o"}
	stored(f, "alice", alice, args...)
	r := dccAs(f, "bob", bob, nil, args...)
	if !isHit(r.Stderr) {
		t.Fatalf("no hit from Redis:\n%s", r.Stderr)
	}
	sameAsLocal(t, bob, r, "clang", args[1:], "warn.o")
	if c := cacheDoc(f); !strings.HasPrefix(c.Store, "redis ") {
		t.Fatalf("store %q", c.Store)
	}
}

// startRedis runs a redis-server for the test on a free port.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed (scripts/deps.sh installs it): %v", err)
	}
	addr := testfarm.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatal("redis-server did not start")
	return ""
}
