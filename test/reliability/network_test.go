package reliability

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

// faultProxy forwards TCP between agents and a volunteer (the volunteer
// advertises the proxy's address) and injects one kind of fault into
// every connection once a byte count in one direction is reached.
type faultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    string // "", "blackhole", "reset", "corrupt"
	up      bool   // fault on the client→volunteer direction (else volunteer→client)
	at      int64  // byte offset in that direction
	faults  int
	conns   map[net.Conn]struct{}
	stopped bool
}

func newFaultProxy(t *testing.T) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) arm(mode string, up bool, at int64) {
	p.mu.Lock()
	p.mode, p.up, p.at, p.faults = mode, up, at, 0
	p.mu.Unlock()
}

func (p *faultProxy) faultCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.stopped = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *faultProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	mode, up, at := p.mode, p.up, p.at
	p.mu.Unlock()
	hole := make(chan struct{})
	var holeOnce sync.Once
	closeBoth := func() {
		client.Close()
		server.Close()
		holeOnce.Do(func() { close(hole) })
	}
	pump := func(dst, src net.Conn, faulty bool) {
		defer closeBoth()
		buf := make([]byte, 32<<10)
		var n int64
		done := false
		for {
			k, err := src.Read(buf)
			if k > 0 {
				chunk := buf[:k]
				if faulty && !done && mode != "" && n+int64(k) > at {
					done = true
					p.mu.Lock()
					p.faults++
					p.mu.Unlock()
					switch mode {
					case "corrupt":
						chunk[at-n] ^= 0x5a
					case "reset":
						for _, c := range []net.Conn{client, server} {
							if tc, ok := c.(*net.TCPConn); ok {
								tc.SetLinger(0)
							}
						}
						if at > n {
							dst.Write(chunk[:at-n])
						}
						return
					case "blackhole":
						if at > n {
							dst.Write(chunk[:at-n])
						}
						// Forward nothing more, either way, until someone closes.
						holeOnce.Do(func() { close(hole) })
						<-make(chan struct{}) // never read again: the peer's writes back up
					}
				}
				select {
				case <-hole:
					if mode == "blackhole" {
						<-make(chan struct{})
					}
				default:
				}
				if _, werr := dst.Write(chunk); werr != nil {
					return
				}
				n += int64(k)
			}
			if err != nil {
				return
			}
		}
	}
	go pump(server, client, up)
	pump(client, server, !up)
}

var _ = io.EOF

// bigSource is C with a large initialised array: about 1 MB of source and
// hundreds of KB of object, so that faults land mid-transfer.
func bigSource(n int) string {
	var b strings.Builder
	b.WriteString("const int big[] = {")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,", (i*2654435761)%1000003)
	}
	b.WriteString("};\nint get(int i) { return big[i]; }\n")
	return b.String()
}

// TestNetworkFaults puts a fault-injecting proxy between the agent and the
// only volunteer (the broker stays reachable): a connection reset while
// the source goes up or the object comes down, a corrupted byte in the
// object, and a partition (black hole) mid-upload. Each must end in a
// correct object, compiled locally or after a retry on a fresh connection,
// never in a corrupt one; and the lease must be freed.
func TestNetworkFaults(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	px := newFaultProxy(t)
	listen := testfarm.FreeAddr(t)
	px.target = listen
	startVolunteer(f, "v1", 2, "--listen", listen, "--advertise", px.addr())
	f.WaitHosts("v1")

	dir := t.TempDir()
	src := bigSource(150000)
	writeFile(t, filepath.Join(dir, "big.c"), src)
	want := compileLocal(t, dir, "big", "-O0")
	srcLen := len(preprocess(t, src))
	env := []string{"DCC_LOCAL_POWER=0.000001"}
	t.Logf("source %d bytes preprocessed, object %d bytes", srcLen, len(want))

	cases := []struct {
		name string
		mode string
		up   bool
		at   int64
	}{
		{"reset-mid-upload", "reset", true, int64(srcLen / 2)},
		{"reset-mid-download", "reset", false, int64(len(want) / 2)},
		{"corrupt-byte-in-object", "corrupt", false, int64(len(want) / 2)},
		{"partition-mid-upload", "blackhole", true, int64(srcLen / 2)},
	}
	var rows []string
	for _, tc := range cases {
		killAgents(f) // a fresh agent dials a fresh connection through the proxy
		// Each fault counts as farm failures against v1; lift the resulting
		// block so that every case starts with a usable host.
		if r := f.Admin(dir, "farm", "unblock", "v1"); r.Code != 0 {
			t.Fatalf("unblock: %s", r.Stderr)
		}
		f.WaitHosts("v1")
		px.arm(tc.mode, tc.up, tc.at)
		os.Remove(filepath.Join(dir, "big.o"))
		se, took, err := runDCC(f, dir, "nina", env, "-O0", "-c", "big.c", "-o", "big.o")
		if err != nil {
			t.Fatalf("%s: dcc failed: %v\n%s", tc.name, err, se)
		}
		if px.faultCount() == 0 {
			t.Fatalf("%s: the fault never fired\n%s", tc.name, se)
		}
		sameObject(t, filepath.Join(dir, "big.o"), want)
		where := "locally"
		if m := remoteRe.FindStringSubmatch(se); m != nil {
			where = "remotely after a retry"
			if !strings.Contains(se, "asking for another host") {
				t.Fatalf("%s: compiled remotely without noticing the fault:\n%s", tc.name, se)
			}
		}
		why := ""
		for _, line := range strings.Split(se, "\n") {
			if i := strings.Index(line, "attempt 1 failed ("); i >= 0 {
				why = strings.TrimSuffix(line[i+len("attempt 1 failed ("):], "); asking for another host")
				break
			}
			if i := strings.Index(line, "compiling locally: "); i >= 0 && why == "" {
				why = line[i+len("compiling locally: "):]
			}
		}
		if tc.mode == "corrupt" && !strings.Contains(why, "checksum") && !strings.Contains(why, "transport") &&
			!strings.Contains(why, "result") && !strings.Contains(why, "malformed") {
			t.Logf("%s: detected as: %s", tc.name, why)
		}
		if _, ok := waitFor(freeWithin, statusOK(f, idle)); !ok {
			t.Fatalf("%s: lease not freed: %+v", tc.name, f.Status())
		}
		rows = append(rows, fmt.Sprintf("%s: %d fault(s), compiled %s in %s, object identical (first failure: %s)", tc.name, px.faultCount(), where, took.Round(time.Millisecond), why))
	}
	px.arm("", false, 0)
	figure(t, "%s", strings.Join(rows, "; "))
}
