package distcc

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/dcc-farm/dcc/internal/farm"
)

func tcp(host string, port, limit int, text string) HostSpec {
	return HostSpec{Host: host, Port: port, Limit: limit, Text: text}
}

var hostCases = []struct {
	in   string
	want []HostSpec // nil: an error
	// distccOK is distcc 3.4's verdict on the same list (checked against
	// the real client below). Where it accepts and we refuse, distcc
	// silently does something useless; each such case says what.
	distccOK bool
}{
	{"a", []HostSpec{tcp("a", 3632, 4, "a")}, true},
	{"a b:4000 c/8", []HostSpec{tcp("a", 3632, 4, "a"), tcp("b", 4000, 4, "b:4000"), tcp("c", 3632, 8, "c/8")}, true},
	{"d/3:4000", []HostSpec{tcp("d", 4000, 3, "d/3:4000")}, true}, // the old order
	{"e:4000/5", []HostSpec{tcp("e", 4000, 5, "e:4000/5")}, true},
	{"10.0.0.7:3633/12", []HostSpec{tcp("10.0.0.7", 3633, 12, "10.0.0.7:3633/12")}, true},
	{"[::1]:77/2", []HostSpec{tcp("::1", 77, 2, "[::1]:77/2")}, true},
	{"[fe80::1]", []HostSpec{tcp("fe80::1", 3632, 4, "[fe80::1]")}, true},
	{"g,lzo", []HostSpec{{Host: "g", Port: 3632, Limit: 4, LZO: true, Text: "g,lzo"}}, true},
	{"h:9/2,lzo,cpp", []HostSpec{{Host: "h", Port: 9, Limit: 2, LZO: true, CPP: true, Text: "h:9/2,lzo,cpp"}}, true},
	{"j,down", []HostSpec{{Host: "j", Port: 3632, Limit: 4, Down: true, Text: "j,down"}}, true},
	{"k,auth", []HostSpec{tcp("k", 3632, 4, "k,auth")}, true},
	{"localhost", []HostSpec{{Host: "localhost", Limit: 2, Local: true, Text: "localhost"}}, true},
	{"localhost/3", []HostSpec{{Host: "localhost", Limit: 3, Local: true, Text: "localhost/3"}}, true},
	// distcc's rule: only "localhost" and "localhost/N" are local.
	{"localhost:9", []HostSpec{tcp("localhost", 9, 4, "localhost:9")}, true},
	{"localhost,lzo", []HostSpec{{Host: "localhost", Port: 3632, Limit: 4, LZO: true, Text: "localhost,lzo"}}, true},
	{"@f", []HostSpec{{Host: "f", Limit: 4, SSH: true, Text: "@f"}}, true},
	{"u@k/2:/usr/bin/distccd,lzo", []HostSpec{{Host: "k", Limit: 2, SSH: true, User: "u", Command: "/usr/bin/distccd", LZO: true, Text: "u@k/2:/usr/bin/distccd,lzo"}}, true},
	{"--randomize a --localslots=3 --localslots_cpp=7", []HostSpec{tcp("a", 3632, 4, "a")}, true},
	{"# build farm\na  # the fast one\n\tb/2 \r\n#c\n", []HostSpec{tcp("a", 3632, 4, "a"), tcp("b", 3632, 2, "b/2")}, true},
	{"x#c y", []HostSpec{tcp("x", 3632, 4, "x")}, true}, // '#' ends the entry and starts a comment

	{"", nil, false},
	{"# only a comment\n", nil, false},
	{"--randomize", nil, false},
	{"x,cpp", nil, false},
	{"x:abc", nil, false},
	{"x/0", nil, false},
	{"x,foo", nil, false},
	{"x,zstd", nil, false},
	{":4000", nil, false},
	{"/4", nil, false},
	{"[::1", nil, false},
	// distcc accepts these and then fails or does something else:
	{"x:0", nil, true},            // port 0 cannot be connected to
	{"x:99999", nil, true},        // truncated by the kernel to another port
	{"x,lzoq", nil, true},         // distcc ignores everything after "lzo"
	{"x/3x", nil, true},           // and after a limit's digits
	{"--localslots a", nil, true}, // no number: distcc ignores it
	{"--localslots=0", nil, true}, // distcc takes it for a host named "--localslots=0"
	{"--randomized a", nil, true}, // distcc matches the first 11 characters
	{"localhost/2x", nil, true},
}

func TestParseHosts(t *testing.T) {
	for _, tc := range hostCases {
		got, err := ParseHosts(tc.in)
		if tc.want == nil {
			var he *HostsError
			if err == nil || !errors.As(err, &he) {
				t.Errorf("%q: got %+v, %v; want a *HostsError", tc.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tc.in, got, err, tc.want)
		}
	}
	l, err := ParseHostList("--randomize a --localslots=3 --localslots_cpp=7")
	if err != nil || !l.Randomize || l.LocalSlots != 3 || l.LocalSlotsCPP != 7 {
		t.Errorf("options: %+v, %v", l, err)
	}
}

// TestParseHostsAgreesWithDistcc runs the real distcc client on every
// list above: its verdict must be the one the table records, so the table
// is distcc's grammar and not our reading of it.
func TestParseHostsAgreesWithDistcc(t *testing.T) {
	if _, err := exec.LookPath("distcc"); err != nil {
		t.Fatalf("distcc is not installed (scripts/deps.sh installs package distcc): %v", err)
	}
	dir := t.TempDir()
	for _, tc := range hostCases {
		cmd := exec.Command("distcc", "--show-hosts")
		cmd.Env = append(os.Environ(), "DISTCC_HOSTS="+tc.in, "DISTCC_DIR="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ok := err == nil && !strings.Contains(stderr.String(), "Failed to get host list")
		if ok != tc.distccOK {
			t.Errorf("%q: distcc accepts it: %v; the table says %v (stderr %q)", tc.in, ok, tc.distccOK, stderr.String())
		}
	}
}

func TestFarmLine(t *testing.T) {
	hosts, err := ParseHosts("a b:4000/8,lzo [::1]:77/2")
	if err != nil {
		t.Fatal(err)
	}
	const fp = "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14)"
	compilers := []string{"gcc", fp, "clang-14"}
	var lines []string
	for i, h := range hosts {
		line, err := FarmLine(h, float64(i)+1.5, compilers[i])
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	want := []string{
		"a 4 1.5 protocol=distcc addr=a:3632 compiler=gcc slots=4",
		"b:4000 8 2.5 protocol=distcc addr=b:4000 compiler=\"" + fp + "\" slots=8",
		"[::1]:77 2 3.5 protocol=distcc addr=[::1]:77 compiler=clang-14 slots=2",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The farm file parser reads them back.
	f, err := farm.Parse(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := f.Hosts["b:4000"]
	if b.CPUs != 8 || b.Slots != 8 || b.Power != 2.5 || !b.Distcc() || b.Addr != "b:4000" || b.Compiler != fp {
		t.Fatalf("farm host %+v", b)
	}
	if a := f.Hosts["a"]; a.Compiler != "gcc" || a.Addr != "a:3632" || !a.Distcc() {
		t.Fatalf("farm host %+v", a)
	}

	for _, in := range []string{"@f", "u@k:/bin/distccd", "h,lzo,cpp", "localhost", "localhost/3", "j,down"} {
		hs, err := ParseHosts(in)
		if err != nil {
			t.Fatal(err)
		}
		if line, err := FarmLine(hs[0], 1, "gcc"); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("%q: %q, %v; want an error naming the entry", in, line, err)
		}
	}
	for _, p := range []float64{0, -1, 1001, math.NaN(), math.Inf(1)} {
		if _, err := FarmLine(hosts[0], p, "gcc"); err == nil {
			t.Errorf("power %v accepted", p)
		}
	}
	for _, c := range []string{"", " ", `gcc"`, "gcc\nfoo", "a\x00"} {
		if line, err := FarmLine(hosts[0], 1, c); err == nil {
			t.Errorf("compiler %q accepted: %q", c, line)
		}
	}
	if line, err := FarmLine(hosts[0], 1, "cc#1"); err != nil || !strings.HasSuffix(line, `compiler="cc#1" slots=4`) {
		t.Errorf("compiler with '#': %q, %v", line, err)
	}
}
