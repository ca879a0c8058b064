package farm

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	in := `# NAME  NCPUS  POWER  [key=value ...]

sun1    8      3      slots=8 targets=sparc-sun-solaris2.10
linux7  16     4        # trailing comment
	desk12	2	1	weight=1   
fast    64     2.5    targets=x86_64-linux-gnu,aarch64-linux-gnu, slots=32 zone=b
old1    2      2      protocol=distcc addr=10.0.0.9:3632 compiler="x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14+deb12u1)" users=alice,bob
old2    4      1      protocol=distcc compiler=gcc   # default port
user vic weight=2
user ann weight=0.5 # half
   # indented comment
`
	f, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Host{
		"sun1":   {Name: "sun1", CPUs: 8, Power: 3, Slots: 8, Targets: []string{"sparc-sun-solaris2.10"}, Extra: map[string]string{}, Line: 3, Protocol: "dcc"},
		"linux7": {Name: "linux7", CPUs: 16, Power: 4, Extra: map[string]string{}, Line: 4, Protocol: "dcc"},
		"desk12": {Name: "desk12", CPUs: 2, Power: 1, Extra: map[string]string{"weight": "1"}, Line: 5, Protocol: "dcc"},
		"fast":   {Name: "fast", CPUs: 64, Power: 2.5, Slots: 32, Targets: []string{"x86_64-linux-gnu", "aarch64-linux-gnu"}, Extra: map[string]string{"zone": "b"}, Line: 6, Protocol: "dcc"},
		"old1": {Name: "old1", CPUs: 2, Power: 2, Extra: map[string]string{}, Line: 7, Protocol: "distcc", Addr: "10.0.0.9:3632",
			Compiler: "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14+deb12u1)", Users: []string{"alice", "bob"}},
		"old2": {Name: "old2", CPUs: 4, Power: 1, Extra: map[string]string{}, Line: 8, Protocol: "distcc", Addr: "old2:3632", Compiler: "gcc"},
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			got, ok := f.Hosts[name]
			if !ok {
				t.Fatalf("host %s missing", name)
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("got  %+v\nwant %+v", got, w)
			}
		})
	}
	if len(f.Hosts) != len(want) {
		t.Errorf("%d hosts, want %d: %v", len(f.Hosts), len(want), f.Names())
	}
	if !reflect.DeepEqual(f.Names(), []string{"desk12", "fast", "linux7", "old1", "old2", "sun1"}) {
		t.Errorf("Names = %v", f.Names())
	}
	if !reflect.DeepEqual(f.Users, map[string]float64{"vic": 2, "ann": 0.5}) {
		t.Errorf("Users = %v", f.Users)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only comments\n   # more\n", "\t \n"} {
		f, err := Parse(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if len(f.Hosts) != 0 || len(f.Users) != 0 || f.Hosts == nil || f.Users == nil {
			t.Fatalf("%q: %+v", in, f)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string // part of the message
	}{
		{"missing POWER", "a 1\n", 1, "NAME NCPUS POWER"},
		{"only a name", "# c\n\nb\n", 3, "NAME NCPUS POWER"},
		{"NCPUS not a number", "a x 1\n", 1, "NCPUS"},
		{"NCPUS zero", "a 0 1\n", 1, "NCPUS"},
		{"NCPUS negative", "a -2 1\n", 1, "NCPUS"},
		{"NCPUS too big", "a 4097 1\n", 1, "NCPUS"},
		{"NCPUS fractional", "a 1.5 1\n", 1, "NCPUS"},
		{"POWER not a number", "ok 1 1\na 1 fast\n", 2, "POWER"},
		{"POWER zero", "a 1 0\n", 1, "POWER"},
		{"POWER negative", "a 1 -1\n", 1, "POWER"},
		{"POWER too big", "a 1 1001\n", 1, "POWER"},
		{"POWER Inf", "a 1 Inf\n", 1, "POWER"},
		{"slots zero", "a 1 1 slots=0\n", 1, "slots"},
		{"slots not a number", "a 1 1 slots=many\n", 1, "slots"},
		{"slots too big", "a 1 1 slots=5000\n", 1, "slots"},
		{"slots empty", "a 1 1 slots=\n", 1, "slots"},
		{"not key=value", "a 1 1 fast\n", 1, "key=value"},
		{"empty key", "a 1 1 =3\n", 1, "key=value"},
		{"duplicate host", "a 1 1\nb 1 1\n\na 2 2\n", 4, "twice"},
		{"user without weight", "user vic\n", 1, "user NAME weight=W"},
		{"user with bad key", "user vic w=2\n", 1, "user NAME weight=W"},
		{"user extra field", "user vic weight=2 x=1\n", 1, "user NAME weight=W"},
		{"user weight zero", "user vic weight=0\n", 1, "positive"},
		{"user weight negative", "user vic weight=-1\n", 1, "positive"},
		{"user weight junk", "a 1 1\nuser vic weight=lots\n", 2, "positive"},
		{"bad protocol", "a 1 1 protocol=ssh\n", 1, "protocol"},
		{"distcc without compiler", "a 1 1 protocol=distcc\n", 1, "compiler="},
		{"addr without port", "a 1 1 protocol=distcc compiler=gcc addr=box\n", 1, "HOST:PORT"},
		{"addr on a volunteer", "a 1 1 addr=box:1\n", 1, "protocol=distcc"},
		{"compiler on a volunteer", "a 1 1 compiler=gcc\n", 1, "protocol=distcc"},
		{"empty users", "a 1 1 users=,\n", 1, "users="},
		{"unterminated quote", "a 1 1 protocol=distcc compiler=\"gcc\n", 1, "quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error; parsed %+v", f)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Line != tt.line {
				t.Errorf("line %d, want %d (%v)", pe.Line, tt.line, err)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("message %q lacks %q", pe.Msg, tt.msg)
			}
			lineText := strings.Split(tt.in, "\n")[tt.line-1]
			if pe.Text != lineText {
				t.Errorf("Text %q, want %q", pe.Text, lineText)
			}
			if s := err.Error(); !strings.Contains(s, "line ") || !strings.Contains(s, strconv.Itoa(tt.line)) {
				t.Errorf("Error() %q does not name line %d", s, tt.line)
			}
		})
	}
}

// Values that are not finite numbers must be refused: a NaN power makes
// every tier comparison false, a NaN or infinite weight breaks fair share.
func TestParseRejectsNonFinite(t *testing.T) {
	tests := []struct{ name, in string }{
		{"POWER NaN", "a 1 NaN\n"},
		{"user weight NaN", "user vic weight=NaN\n"},
		{"user weight Inf", "user vic weight=Inf\n"},
		{"user weight +Inf", "user vic weight=+Inf\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("farm.Parse accepts %q (hosts %+v, users %v); POWER/weight checks in farm.go use p <= 0 / w <= 0, which NaN and +Inf pass", strings.TrimSpace(tt.in), f.Hosts, f.Users)
			}
		})
	}
}

func TestDuplicateUserLastWins(t *testing.T) {
	f, err := Parse(strings.NewReader("user vic weight=2\nuser vic weight=3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Users["vic"] != 3 {
		t.Fatalf("weight %g", f.Users["vic"])
	}
}

func TestLongLine(t *testing.T) {
	long := "a 1 1 x=" + strings.Repeat("y", 100<<10) + "\n"
	if _, err := Parse(strings.NewReader(long)); err == nil {
		t.Fatal("a 100 KiB line was accepted")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "farm")
	if err := os.WriteFile(p, []byte("h 4 2 slots=3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := f.Hosts["h"]; h.CPUs != 4 || h.Power != 2 || h.Slots != 3 {
		t.Fatalf("%+v", h)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestAllowsTarget(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		t       string
		want    bool
	}{
		{"no restriction", nil, "x86_64-linux-gnu", true},
		{"no restriction, empty target", nil, "", true},
		{"listed", []string{"a", "x86_64-linux-gnu"}, "x86_64-linux-gnu", true},
		{"not listed", []string{"aarch64-linux-gnu"}, "x86_64-linux-gnu", false},
		{"prefix is not a match", []string{"x86_64"}, "x86_64-linux-gnu", false},
		{"case matters", []string{"X86_64-LINUX-GNU"}, "x86_64-linux-gnu", false},
		{"empty target with restriction", []string{"a"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Host{Targets: tt.targets}).AllowsTarget(tt.t); got != tt.want {
				t.Fatalf("AllowsTarget(%q) = %v", tt.t, got)
			}
		})
	}
}

func TestTargetsFromParse(t *testing.T) {
	f, err := Parse(strings.NewReader("h 1 1 targets=a,,b\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := f.Hosts["h"]
	if !reflect.DeepEqual(h.Targets, []string{"a", "b"}) {
		t.Fatalf("targets %q", h.Targets)
	}
	if !h.AllowsTarget("b") || h.AllowsTarget("c") || h.AllowsTarget("") {
		t.Fatal("AllowsTarget disagrees with the parsed targets")
	}
}
