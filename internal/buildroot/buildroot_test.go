package buildroot

import (
	"os"
	"testing"
)

// TestFindOwnParent: this test's parent process (go test, or a shell) is
// a build of its own when no build tool is above it, and has an id,
// command and directory.
func TestFindOwnParent(t *testing.T) {
	wd, _ := os.Getwd()
	b := Find(os.Getppid(), wd)
	if b.ID == "" || b.ID == "unknown" || len(b.Command) == 0 || b.Dir == "" || b.Start.IsZero() {
		t.Fatalf("build of this test: %+v", b)
	}
	if again := Find(os.Getppid(), wd); again.ID != b.ID {
		t.Fatalf("the same build named %q, then %q", b.ID, again.ID)
	}
	if gone := Find(1<<30, wd); gone.ID != "unknown" || gone.Dir != wd {
		t.Fatalf("a parent that does not exist: %+v", gone)
	}
}

// BenchmarkFind is the cost of naming a build: reading the stat files of
// the process's ancestors (bench/timeline.sh).
func BenchmarkFind(b *testing.B) {
	wd, _ := os.Getwd()
	for i := 0; i < b.N; i++ {
		if Find(os.Getppid(), wd).ID == "" {
			b.Fatal("no build")
		}
	}
}
