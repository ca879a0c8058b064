package distcc

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCompile compares one small compile through this client with
// the same compile through distcc's own client, to the same stock distccd
// on loopback, and with running gcc here. Each iteration runs all three in
// turn, so that load from other work on the machine weighs on them alike;
// the figures are the metrics (ms per compile), not ns/op. The distcc
// client's figure includes starting its process, which is how it is
// always used.
//
//	go test -run '^$' -bench 'Compile$' -benchtime 100x ./internal/distcc/
func BenchmarkCompile(b *testing.B) {
	d := startDistccd(b, "127.0.0.1")
	src := preprocess(b, "gcc", "clean.c", cClean)
	dir := b.TempDir()
	in := filepath.Join(dir, "clean.i")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "clean.o")
	job := Job{Compiler: "gcc", Args: []string{"-O2"}, Kind: ".o", Ext: ".i", Source: src}
	env := append(os.Environ(), "DISTCC_HOSTS="+d.addr, "DISTCC_FALLBACK=0", "DISTCC_DIR="+dir)

	var protocol1, client, local time.Duration
	timed := func(sum *time.Duration, f func()) {
		start := time.Now()
		f()
		*sum += time.Since(start)
	}
	n := 0
	for b.Loop() {
		n++
		timed(&protocol1, func() {
			res, err := Compile(context.Background(), d.addr, job, Limits{})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v, %v", res, err)
			}
		})
		timed(&client, func() {
			cmd := exec.Command("distcc", "gcc", "-O2", "-c", in, "-o", out)
			cmd.Env = env
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("distcc: %v\n%s", err, msg)
			}
		})
		timed(&local, func() {
			if msg, err := exec.Command("gcc", "-O2", "-c", in, "-o", out).CombinedOutput(); err != nil {
				b.Fatalf("gcc: %v\n%s", err, msg)
			}
		})
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e6 }
	b.ReportMetric(ms(protocol1), "protocol1-ms/op")
	b.ReportMetric(ms(client), "distcc-ms/op")
	b.ReportMetric(ms(local), "local-ms/op")
}

// BenchmarkClientOverhead is this client's own cost for a job whose
// reply carries a 1 MiB object, against an in-process server that answers
// at once: encoding, the connection, parsing and checking the reply.
func BenchmarkClientOverhead(b *testing.B) {
	object := make([]byte, 1<<20)
	for i := range object {
		object[i] = byte(i)
	}
	answer := encodeReply(1, 0, []byte("warning: x\n"), nil, object)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := readRequest(c); err == nil {
				c.Write(answer)
			}
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	job := testJob
	job.Source = make([]byte, 64<<10)
	b.SetBytes(int64(len(answer) + len(job.Source)))
	for b.Loop() {
		res, err := Compile(context.Background(), ln.Addr().String(), job, Limits{})
		if err != nil || len(res.Object) != len(object) {
			b.Fatalf("%v", err)
		}
	}
}
