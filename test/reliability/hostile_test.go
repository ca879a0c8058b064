package reliability

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
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

	"github.com/dcc-farm/dcc/internal/identity"
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
	// run talks to the target and reports whether the peer closed the stream and sent an error.
	run func(tg target) (closed, gotError bool, err error)
}

// target is a daemon under attack: its address and a TLS configuration
// holding a valid user credential for it.
type target struct {
	addr string
	tls  *tls.Config
}

// dialTLS completes a real mutual TLS handshake with the target.
func dialTLS(tg target) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", tg.addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, tg.tls)
	c.SetDeadline(time.Now().Add(wire.HandshakeTimeout))
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// rawAttack sends payload where the TLS handshake should be.
func rawAttack(payload func() []byte, trickle bool) func(target) (bool, bool, error) {
	return func(tg target) (bool, bool, error) {
		conn, err := net.DialTimeout("tcp", tg.addr, 3*time.Second)
		if err != nil {
			return false, false, err
		}
		return sendPayload(conn, payload, trickle)
	}
}

// helloAttack completes the TLS handshake, then sends payload where the
// hello should be.
func helloAttack(payload func() []byte, trickle bool) func(target) (bool, bool, error) {
	return func(tg target) (bool, bool, error) {
		conn, err := dialTLS(tg)
		if err != nil {
			return false, false, err
		}
		return sendPayload(conn, payload, trickle)
	}
}

func sendPayload(conn net.Conn, payload func() []byte, trickle bool) (bool, bool, error) {
	{
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

// streamAttack connects properly (TLS and hello), then sends payload on a
// yamux stream.
func streamAttack(payload func() []byte) func(target) (bool, bool, error) {
	return func(tg target) (bool, bool, error) {
		conn, err := dialTLS(tg)
		if err != nil {
			return false, false, err
		}
		defer conn.Close()
		if _, err := wire.ClientHello(conn, wire.Hello{Role: wire.RoleClient, Name: "mallory"}); err != nil {
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
	f, _ := wire.AppendFrame(nil, &wire.Hello{Version: wire.ProtocolVersion, Role: wire.RoleClient, Name: "x"})
	return f
}

func attacks(msgType wire.Type) []attack {
	garbage := func() []byte { b := make([]byte, 4096); rand.Read(b); return b }
	return []attack{
		{"4GiB frame instead of TLS", rawAttack(func() []byte { return frame(0xffffffff, wire.TypeHello, nil) }, false)},
		{"garbage instead of TLS", rawAttack(func() []byte { return append(garbage(), hello()...) }, false)},
		{"plain hello without TLS", rawAttack(hello, false)},
		{"slow-loris TLS", rawAttack(hello, true)},
		{"4GiB frame instead of hello", helloAttack(func() []byte { return frame(0xffffffff, wire.TypeHello, nil) }, false)},
		{"garbage instead of hello", helloAttack(garbage, false)},
		{"truncated hello", helloAttack(func() []byte { return hello()[:7] }, false)},
		{"slow-loris hello", helloAttack(hello, true)},
		{"4GiB frame after handshake", streamAttack(func() []byte { return frame(0xffffffff, msgType, nil) })},
		// array32 declaring 2^31 elements, and map32 declaring 2^31 pairs
		{"msgpack array 2^31", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdd, 0x80, 0, 0, 0}) })},
		{"msgpack map 2^31", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdf, 0x80, 0, 0, 0}) })},
		{"str32 4GiB", streamAttack(func() []byte { return frame(6, msgType, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}) })},
		{"unknown type", streamAttack(func() []byte { return frame(2, 0xee, []byte{0xc0}) })},
	}
}

// TestHostileInput throws hostile connections at the broker's and a
// volunteer's listen ports: a frame declaring 4 GiB, garbage or a plain
// hello where TLS should start, a slow-loris TLS handshake; after a real
// TLS handshake, a 4 GiB frame, garbage, a truncated hello or a
// slow-loris where the hello should be; and after the hello, a 4 GiB
// frame, msgpack containers declaring 2^31 elements and an unknown type. Each must end in a closed stream (with an error message where the
// stream is past authentication); RSS must grow by less than 50 MB; and a
// normal compile must work during and after the attack.
func TestHostileInput(t *testing.T) {
	f := testfarm.New(t, testfarm.Host{Name: "v1", CPUs: 16, Power: 2})
	f.StartBroker()
	listen := testfarm.FreeAddr(t)
	v := startVolunteer(f, "v1", 2, "--listen", listen)
	f.WaitHosts("v1")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.c"), smallSource(11))
	compile := func(when string) {
		se, _, err := runDCC(f, dir, "victim", nil, "-O2", "-c", "ok.c", "-o", "ok.o")
		if err != nil || remoteRe.FindStringSubmatch(se) == nil {
			t.Fatalf("normal compile %s the attack did not run remotely: %v\n%s", when, err, se)
		}
	}
	compile("before")
	mallory, err := identity.Load(f.Identity("user", "mallory"))
	if err != nil {
		t.Fatal(err)
	}
	targets := []struct {
		name string
		tg   target
		pid  int
		typ  wire.Type
	}{
		{"broker", target{f.Broker, identity.ClientConfig(mallory, identity.Expect(identity.RoleBroker, ""))}, f.BrokerProc().Cmd.Process.Pid, wire.TypeLeaseRequest},
		{"volunteer", target{listen, identity.ClientConfig(mallory, identity.Expect(identity.RoleHost, "v1"))}, v.proc.Cmd.Process.Pid, wire.TypeJobRequest},
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
					closed, gotErr, err := a.run(tg.tg)
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
