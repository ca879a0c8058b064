package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dcc-farm/dcc/internal/farm"
)

func runFarmLines(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = farmLines(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestFarmLines(t *testing.T) {
	t.Setenv("DISTCC_HOSTS", "")
	code, out, errs := runFarmLines(t, "--power", "2", "--randomize",
		"fast1/8", "fast2:3633/8,lzo", "--users=alice,bob", "@laptop", "bob@build9/4", "localhost/2",
		"old,down", "pump,lzo,cpp", "fast1:3632", "--localslots=3")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	// What is not a comment is a farm file the broker reads.
	f, err := farm.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if len(f.Hosts) != 2 {
		t.Fatalf("hosts %v in\n%s", f.Names(), out)
	}
	h := f.Hosts["fast1"]
	if !h.Distcc() || h.Addr != "fast1:3632" || h.CPUs != 8 || h.Slots != 8 || h.Power != 2 || h.Compiler != "gcc" ||
		strings.Join(h.Users, ",") != "alice,bob" {
		t.Errorf("fast1: %+v", h)
	}
	if h := f.Hosts["fast2:3633"]; h.Addr != "fast2:3633" || h.Slots != 8 {
		t.Errorf("fast2: %+v", h)
	}
	for _, want := range []string{
		"# @laptop: ssh hosts cannot join the farm",
		"# bob@build9/4: ssh hosts cannot join the farm",
		"# localhost/2: localhost is this machine",
		"# old,down: the host is marked ',down'",
		"# pump,lzo,cpp: pump mode",
		"# fast1:3632: the same host as fast1/8",
		"# --randomize: not needed",
		"# --localslots=3: on each client, DCC_LOCAL_SLOTS=3",
		"# was fast2:3633/8,lzo",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFarmLinesFingerprintAndEnv(t *testing.T) {
	const fp = "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14)"
	t.Setenv("DISTCC_HOSTS", "a b/3")
	code, out, errs := runFarmLines(t, "--compiler="+fp)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	f, err := farm.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if a, b := f.Hosts["a"], f.Hosts["b"]; a.Compiler != fp || a.Slots != 4 || b.Compiler != fp || b.Slots != 3 || a.Power != 1 {
		t.Fatalf("a %+v, b %+v", a, b)
	}
}

func TestFarmLinesErrors(t *testing.T) {
	t.Setenv("DISTCC_HOSTS", "")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "DISTCC_HOSTS is empty"},
		{[]string{"a:99999"}, 1, "port"},
		{[]string{"+zeroconf"}, 1, "zeroconf"},
		{[]string{"--users", "a b", "h"}, 2, "--users"},
		{[]string{"--power", "x", "h"}, 2, "invalid value"},
	} {
		code, _, errs := runFarmLines(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	if code, out, _ := runFarmLines(t, "--help"); code != 0 || !strings.Contains(out, "Usage: broker farm-lines") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}
