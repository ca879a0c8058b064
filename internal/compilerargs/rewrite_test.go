package compilerargs

import (
	"strings"
	"testing"
)

func TestRecordDirectory(t *testing.T) {
	plan := func(args string) Plan {
		p, ok := Classify(strings.Fields(args)).RewriteIncludes()
		if !ok {
			t.Fatalf("%s: not rewritten", args)
		}
		return p
	}
	has := func(p Plan, want string) bool {
		for _, a := range p.RemoteArgs {
			if a == want {
				return true
			}
		}
		return false
	}
	if p := plan("-g -O2 -c a.c").RecordDirectory("/home/al/src"); !has(p, "-fdebug-compilation-dir=/home/al/src") {
		t.Errorf("-g job: %q", p.RemoteArgs)
	}
	if p := plan("-O2 -c a.c").RecordDirectory("/home/al/src"); has(p, "-fdebug-compilation-dir=/home/al/src") {
		t.Errorf("job without -g records the directory: %q", p.RemoteArgs)
	}
	if p := plan("-g -g0 -c a.c").RecordDirectory("/w"); has(p, "-fdebug-compilation-dir=/w") {
		t.Errorf("-g0 last: %q", p.RemoteArgs)
	}
	if p := plan("-g -fdebug-compilation-dir=. -c a.c").RecordDirectory("/w"); has(p, "-fdebug-compilation-dir=/w") {
		t.Errorf("user's own directory overridden: %q", p.RemoteArgs)
	}
	gcc := Classify(strings.Fields("-g -c a.c"))
	if p := gcc.RecordDirectory("/w"); has(p, "-fdebug-compilation-dir=/w") {
		t.Errorf("preprocessed gcc job changed: %q", p.RemoteArgs)
	}
	if err := CheckRemoteArgs(plan("-g -c a.c").RecordDirectory("/home/al/src").RemoteArgs); err != nil {
		t.Errorf("the volunteer refuses what dcc adds: %v", err)
	}
}

func TestFromPipe(t *testing.T) {
	gcc := "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14+deb12u1)"
	clang := "x86_64-pc-linux-gnu Debian clang version 14.0.6"
	for _, tt := range []struct {
		ext, fp string
		want    bool
	}{
		{".i", gcc, true}, {".ii", gcc, true}, {".mi", gcc, true}, {".mii", gcc, true},
		{".s", gcc, false}, {".c", gcc, false}, {".i", clang, false}, {".c", clang, false}, {".ii", "", false},
	} {
		if got := FromPipe(tt.ext, tt.fp); got != tt.want {
			t.Errorf("FromPipe(%q, %q) = %v, want %v", tt.ext, tt.fp, got, tt.want)
		}
	}
}
