package distcc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkCompile compares one small compile through this client with
// the same compile through distcc's own client, to the same stock distccd
// on loopback, and with running gcc here. The distcc client's figure
// includes starting a process (which is how it is always used); the
// difference between "protocol1" and "local" is the per-job cost of going
// through distccd.
//
//	go test -run '^$' -bench Compile -benchtime 200x ./internal/distcc/
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

	b.Run("protocol1", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			res, err := Compile(context.Background(), d.addr, job, Limits{})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v, %v", res, err)
			}
		}
	})
	b.Run("distcc-client", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		env := append(os.Environ(), "DISTCC_HOSTS="+d.addr, "DISTCC_FALLBACK=0", "DISTCC_DIR="+dir)
		for b.Loop() {
			cmd := exec.Command("distcc", "gcc", "-O2", "-c", in, "-o", out)
			cmd.Env = env
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("distcc: %v\n%s", err, msg)
			}
		}
	})
	b.Run("local", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if msg, err := exec.Command("gcc", "-O2", "-c", in, "-o", out).CombinedOutput(); err != nil {
				b.Fatalf("gcc: %v\n%s", err, msg)
			}
		}
	})
}
