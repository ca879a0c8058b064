package reliability

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// frame builds a raw frame: declared length (type byte + body), type, body.
func frame(declared uint32, typ wire.Type, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, declared)
	b = append(b, byte(typ))
	return append(b, body...)
}

// closedWithin reports whether the peer closes conn (EOF or reset) within d,
// and whether it sent an Error frame first.
func closedWithin(conn net.Conn, d time.Duration) (closed, gotError bool) {
	conn.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, conn)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return false, false
	}
	if buf.Len() >= wire.HeaderSize {
		t, body, ferr := wire.ReadFrame(&buf, wire.MaxControlFrame)
		if ferr == nil {
			if m, derr := wire.Decode(t, body); derr == nil {
				if _, ok := m.(*wire.Error); ok {
					gotError = true
				}
				if r, ok := m.(*wire.JobResult); ok && r.Rejected != "" {
					gotError = true
				}
			}
		}
	}
	return true, gotError
}

// attack is one kind of hostile connection.
type attack struct {
	name string
	// run talks to addr and reports whether the peer closed the stream and sent an error.
	run func(addr string, key []byte) (closed, gotError bool, err error)
}

func rawAttack(payload func() []byte, trickle bool) func(string, []byte) (bool, bool, error) {
	return func(addr string, _ []byte) (bool, bool, error) {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return false, false, err
		}
		defer conn.Close()
		p := payload()
		if trickle {
			// slow-loris: a byte every 500 ms; the handshake deadline must end it.
			stop := make(chan struct{})
			go func() {
				for _, c := range p {
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{c}); err != nil {
						return
					}
				}
			}()
			defer close(stop)
		} else if _, err := conn.Write(p); err != nil {
			return true, false, nil // already closed on us
		}
		closed, gotErr := closedWithin(conn, wire.HandshakeTimeout+3*time.Second)
		return closed, gotErr, nil
	}
}

// streamAttack authenticates properly, then sends payload on a yamux stream.
func streamAttack(payload func() []byte) func(string, []byte) (bool, bool, error) {
	return func(addr string, key []byte) (bool, bool, error) {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return false, false, err
		}
		defer conn.Close()
		if _, err := wire.ClientHandshake(conn, key, wire.Hello{Role: wire.RoleClient, Name: "mallory", User: "mallory"}); err != nil {
			return false, false, err
		}
		s, err := yamux.Client(conn, transport.YamuxConfig())
		if err != nil {
			return false, false, err
		}
		defer s.Close()
		st, err := s.OpenStream()
		if err != nil {
			return false, false, err
		}
		if _, err := st.Write(payload()); err != nil {
			return true, false, nil
		}
		closed, gotErr := closedWithin(st, 10*time.Second)
		return closed, gotErr, nil
	}
}

func hello() []byte {
	f, _ := wire.AppendFrame(nil, &wire.Hello{Version: wire.ProtocolVersion, Role: wire.RoleClient, Name: "x", User: "x", Nonce: make([]byte, wire.NonceSize)})
	return f
}

func attacks(msgType wire.Type) []attack {
	garbage := func() []byte { b := make([]byte, 4096); rand.Read(b); return b }
	return []attack{
		{"4GiB frame before hello", rawAttack(func() []byte { return frame(0xffffffff, wire.TypeHello, nil) }, false)},
		{"garbage before hello", rawAttack(func() []byte { return append(garbage(), hello()...) }, false)},
		{"truncated hello", rawAttack(func() []byte { return hello()[:20] }, false)},
		{"slow-loris hello", rawAttack(hello, true)},
		{"4GiB frame after handshake", streamAttack(func() []byte { return frame(0xffffffff, msgType, nil) })},
		// array32 declaring 2^31 elements, and map32 declaring 2^31 pairs
		{"msgpack array 2^31", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdd, 0x80, 0, 0, 0}) })},
		{"msgpack map 2^31", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdf, 0x80, 0, 0, 0}) })},
		{"str32 4GiB", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}) })},
		{"unknown type", streamAttack(func() []byte { return frame(2, 0xee, []byte{0xc0}) })},
	}
}

// TestHostileInput throws hostile connections at the broker's and a
// volunteer's listen ports: a frame declaring 4 GiB, garbage before the
// hello, a truncated hello, a slow-loris, and after a valid handshake a
// 4 GiB frame, msgpack containers declaring 2^31 elements and an unknown
// type. Each must end in a closed stream (with an error message where the
// stream is past authentication); RSS must grow by less than 50 MB; and a
// normal compile must work during and after the attack.
func TestHostileInput(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	listen := testfarm.FreeAddr(t)
	v := startVolunteer(f, "v1", 2, "--listen", listen)
	f.WaitHosts("v1")
	key := farmKey(t, f)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.c"), smallSource(11))
	compile := func(when string) {
		se, _, err := runDCC(f, dir, "victim", nil, "-O2", "-c", "ok.c", "-o", "ok.o")
		if err != nil || remoteRe.FindStringSubmatch(se) == nil {
			t.Fatalf("normal compile %s the attack did not run remotely: %v\n%s", when, err, se)
		}
	}
	compile("before")
	targets := []struct {
		name string
		addr string
		pid  int
		typ  wire.Type
	}{
		{"broker", f.Broker, f.BrokerProc().Cmd.Process.Pid, wire.TypeLeaseRequest},
		{"volunteer", listen, v.proc.Cmd.Process.Pid, wire.TypeJobRequest},
	}
	const perAttack = 25 // connections of each kind, all at once
	var rows []string
	for _, tg := range targets {
		before := rssKB(tg.pid)
		var wg sync.WaitGroup
		var mu sync.Mutex
		type tally struct{ n, closed, errs int }
		got := map[string]*tally{}
		var fails []string
		for _, a := range attacks(tg.typ) {
			got[a.name] = &tally{}
		}
		for _, a := range attacks(tg.typ) {
			for i := 0; i < perAttack; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					closed, gotErr, err := a.run(tg.addr, key)
					mu.Lock()
					defer mu.Unlock()
					tl := got[a.name]
					tl.n++
					if err != nil {
						fails = append(fails, fmt.Sprintf("%s: %v", a.name, err))
						return
					}
					if closed {
						tl.closed++
					}
					if gotErr {
						tl.errs++
					}
				}()
			}
		}
		// While the attack runs (slow-loris connections are open), others are served.
		time.Sleep(200 * time.Millisecond)
		compile("during")
		peak := rssKB(tg.pid)
		wg.Wait()
		compile("after")
		after := rssKB(tg.pid)
		if len(fails) > 0 {
			t.Errorf("%s: %d attacks could not run: %v", tg.name, len(fails), fails[:min(3, len(fails))])
		}
		for name, tl := range got {
			if tl.closed != tl.n {
				t.Errorf("%s: %s: %d of %d streams not closed", tg.name, name, tl.n-tl.closed, tl.n)
			}
			postAuth := name == "4GiB frame after handshake" || name[:7] == "msgpack" || name == "str32 4GiB" || name == "unknown type"
			if postAuth && tl.errs != tl.n {
				t.Errorf("%s: %s: %d of %d got no error message before the close", tg.name, name, tl.n-tl.errs, tl.n)
			}
		}
		growth := max(peak, after) - before
		if growth > 50<<10 {
			t.Errorf("%s: RSS grew by %d KiB (before %d, peak %d, after %d)", tg.name, growth, before, peak, after)
		}
		rows = append(rows, fmt.Sprintf("%s: %d hostile connections (%d kinds x %d, concurrent), all closed, post-handshake ones with an error; RSS %d -> peak %d -> %d KiB (growth %d KiB); compiles during and after OK",
			tg.name, perAttack*len(got), len(got), perAttack, before, peak, after, growth))
	}
	if !f.BrokerProc().Running() || !v.proc.Running() {
		t.Fatal("a daemon died under hostile input")
	}
	for _, r := range rows {
		figure(t, "%s", r)
	}
}
