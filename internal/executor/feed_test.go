package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// bigSource is a C source whose preprocessed text is larger than a pipe's
// buffer (64 KiB), so a fed job's writes block until the compiler reads.
func bigSource() string {
	var b strings.Builder
	b.WriteString("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "int v%d = %d;\n", i, i*7)
	}
	b.WriteString("int main(void) { printf(\"%d\\n\", v42); return 0; }\n")
	return b.String()
}

// preprocessArgs is preprocess with the compile's own arguments.
func preprocessArgs(t *testing.T, cc, ext, src string, args ...string) []byte {
	t.Helper()
	lang := map[string]string{".i": "c", ".ii": "c++"}[ext]
	cmd := exec.Command(cc, append(args, "-E", "-x", lang, "-")...)
	cmd.Stdin = strings.NewReader(src)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -E: %v", cc, err)
	}
	return out
}

// feedAfter is a Feed that writes src after delay (0: at once, before the
// compiler can have opened the pipe).
func feedAfter(src []byte, delay time.Duration) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := w.Write(src)
		return err
	}
}

// TestFeedSameObject: gcc and g++ fed through the pipe while they start
// build the object a file gives them, byte for byte, -g included, whether
// the source comes before or after the compiler opened the pipe.
func TestFeedSameObject(t *testing.T) {
	srcs := map[string]string{"gcc": bigSource(), "g++": compilers[1].src}
	for _, cc := range []string{"gcc", "g++"} {
		ext := map[string]string{"gcc": ".i", "g++": ".ii"}[cc]
		for _, args := range [][]string{{"-O2"}, {"-O2", "-g"}} {
			// With -g the preprocessed text names the client's directory,
			// which the object records (not the job directory).
			src := preprocessArgs(t, cc, ext, srcs[cc], args...)
			if cc == "gcc" && len(src) <= 64<<10 {
				t.Fatalf("preprocessed source of %d bytes fits in a pipe buffer", len(src))
			}
			file, err := Run(context.Background(), realJob(t, cc, ext, src, args...), DefaultLimits())
			if err != nil || file.ExitCode != 0 {
				t.Fatalf("%s from a file: %v %+v", cc, err, file)
			}
			for _, delay := range []time.Duration{0, 200 * time.Millisecond} {
				t.Run(fmt.Sprintf("%s %s after %s", cc, strings.Join(args, " "), delay), func(t *testing.T) {
					j := realJob(t, cc, ext, nil, args...)
					j.Feed = feedAfter(src, delay)
					fed, err := Run(context.Background(), j, DefaultLimits())
					if err != nil || fed.ExitCode != 0 {
						t.Fatalf("fed: %v %+v", err, fed)
					}
					if !bytes.Equal(fed.Output, file.Output) {
						t.Fatalf("fed object (%d bytes) differs from the file's (%d bytes)", len(fed.Output), len(file.Output))
					}
				})
			}
		}
	}
}

// TestFeedWallFromSource: a fed job's wall time counts from the moment its
// source was complete, not from the compiler's start.
func TestFeedWallFromSource(t *testing.T) {
	cc := fake(t, `for a; do case $a in *.i) src=$a;; esac; last=$a; done; cat "$src" > "$last"`)
	j := job(cc, t.TempDir())
	var fedAt time.Time
	inner := feedAfter([]byte("int x;\n"), 300*time.Millisecond)
	j.Feed = func(ctx context.Context, w io.Writer) error {
		err := inner(ctx, w)
		fedAt = time.Now()
		return err
	}
	res, err := Run(context.Background(), j, DefaultLimits())
	end := time.Now()
	if err != nil || res.ExitCode != 0 || string(res.Output) != "int x;\n" {
		t.Fatalf("%v %+v", err, res)
	}
	if res.Wall > end.Sub(fedAt) {
		t.Fatalf("wall %s counts time before the source was complete (%s since)", res.Wall, end.Sub(fedAt))
	}
}

// TestFeedErrorFailsTheJob: a Feed that fails (the client went away, the
// source failed its check) kills the waiting compiler and fails the job
// with its error; no object comes back.
func TestFeedErrorFailsTheJob(t *testing.T) {
	cc := fake(t, `for a; do case $a in *.i) src=$a;; esac; last=$a; done; cat "$src" > "$last"`)
	bad := errors.New("source does not match")
	j := job(cc, t.TempDir())
	j.Feed = func(ctx context.Context, w io.Writer) error { return bad }
	res, err := Run(context.Background(), j, DefaultLimits())
	if !errors.Is(err, bad) || res != nil {
		t.Fatalf("got %v %+v, want the feed's error", err, res)
	}
	assertNoJobDirs(t, j.TempDir)
}

// TestFeedCompilerExitsFirst: a compiler that exits without reading its
// source (an option it refuses) gives its own exit status and message once
// the source has come; the source is read and dropped, nothing blocks.
func TestFeedCompilerExitsFirst(t *testing.T) {
	cc := fake(t, `echo "fakecc: unknown option" >&2; exit 3`)
	src := bytes.Repeat([]byte("int x;\n"), 50000) // beyond a pipe's buffer
	j := job(cc, t.TempDir())
	j.Feed = feedAfter(src, 100*time.Millisecond)
	res, err := Run(context.Background(), j, DefaultLimits())
	if err != nil || res.ExitCode != 3 || !strings.Contains(string(res.Stderr), "unknown option") {
		t.Fatalf("got %v %+v, want exit 3 with the compiler's message", err, res)
	}
}

// TestFeedCancelWhileWaiting: cancelling a job whose source has not come
// (the broker took the lease back) ends it at once.
func TestFeedCancelWhileWaiting(t *testing.T) {
	cc := fake(t, `for a; do case $a in *.i) src=$a;; esac; last=$a; done; cat "$src" > "$last"`)
	j := job(cc, t.TempDir())
	j.Feed = func(ctx context.Context, w io.Writer) error { <-ctx.Done(); return ctx.Err() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, j, DefaultLimits())
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled job succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled fed job did not end")
	}
	assertNoJobDirs(t, j.TempDir)
}

func assertNoJobDirs(t *testing.T, parent string) {
	t.Helper()
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dccjob-") {
			t.Fatalf("job directory %s left behind", e.Name())
		}
	}
}
