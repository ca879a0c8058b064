package client

import "testing"

// BenchmarkCurrentBuild is the client's cost of naming its build: reading
// the stat files of its ancestors (bench/timeline.sh).
func BenchmarkCurrentBuild(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if currentBuild().ID == "" {
			b.Fatal("no build")
		}
	}
}
