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
