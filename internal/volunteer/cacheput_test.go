package volunteer

import (
	"testing"

	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestCacheable: only a successful compile whose diagnostics are exactly
// the local compiler's may serve other clients.
func TestCacheable(t *testing.T) {
	ok := &wire.JobResult{Output: []byte("obj")}
	warned := &wire.JobResult{Output: []byte("obj"), Stderr: []byte("w.c:1: warning")}
	for _, tc := range []struct {
		name string
		ext  string
		res  *wire.JobResult
		want bool
	}{
		{"clean preprocessed", ".i", ok, true},
		{"gcc warning on preprocessed text", ".i", warned, false},
		{"clang warning on a rewritten source", ".c", warned, true},
		{"failed compile", ".i", &wire.JobResult{ExitCode: 1, Stderr: []byte("error")}, false},
		{"refused job", ".i", &wire.JobResult{Code: wire.RejectFailed, Output: []byte("obj")}, false},
		{"no object", ".i", &wire.JobResult{}, false},
	} {
		if got := cacheable(&wire.JobRequest{Ext: tc.ext}, tc.res); got != tc.want {
			t.Errorf("%s: cacheable %v, want %v", tc.name, got, tc.want)
		}
	}
}
