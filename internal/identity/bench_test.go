package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func BenchmarkKeygenP256(b *testing.B) {
	for b.Loop() {
		if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssue is a whole enrolment minus writing the bundle: key
// generation, signing, and the fsync'd append to issued.log under the lock.
func BenchmarkIssue(b *testing.B) {
	ca := newCA(b)
	for b.Loop() {
		if _, err := ca.Issue(RoleUser, "bench", 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandshakeFull(b *testing.B) { benchHandshake(b, false) }

func BenchmarkHandshakeResumed(b *testing.B) { benchHandshake(b, true) }

// benchHandshake measures one connection on loopback TCP: dial, the TLS
// 1.3 handshake with both certificates checked (or a resumed session) and
// the first byte from the server, which is when a client knows it was
// accepted.
func benchHandshake(b *testing.B, resume bool) {
	ca := newCA(b)
	broker, _ := ca.ServerIdentity(nil, nil)
	user := issueID(b, ca, RoleUser, "bob")
	rev, _ := LoadRevocations(ca.Dir())
	addr, ch := startServer(b, ServerConfig(broker, Accept(rev, RoleUser)))
	cfg := ClientConfig(user, Expect(RoleBroker, ""))
	if !resume {
		cfg.ClientSessionCache = nil
	}
	// Prime the session cache.
	if _, _, err := dial(b, addr, cfg); err != nil {
		b.Fatal(err)
	}
	<-ch
	cpu0 := cpuTime()
	for b.Loop() {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		tc := tls.Client(c, cfg)
		if _, err := io.ReadFull(tc, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		if tc.ConnectionState().DidResume != resume {
			b.Fatalf("DidResume = %v", !resume)
		}
		c.Close()
		if s := <-ch; s.err != nil {
			b.Fatal(s.err)
		}
	}
	// Both ends run in this process, so its CPU time per connection is the
	// handshake's cost on client plus server, whatever else the machine runs.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReloadUnchanged is the broker's once-a-second poll when nobody
// revoked anything: one stat.
func BenchmarkReloadUnchanged(b *testing.B) {
	ca := newCA(b)
	issueID(b, ca, RoleUser, "bob")
	if _, err := Revoke(ca.Dir(), RoleUser, "bob"); err != nil {
		b.Fatal(err)
	}
	rev, err := LoadRevocations(ca.Dir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if changed, err := rev.ReloadIfChanged(); changed || err != nil {
			b.Fatal(changed, err)
		}
	}
}
