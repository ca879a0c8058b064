package cache

import (
	"encoding/binary"
	"testing"

	"github.com/zeebo/blake3"
)

func baseKeyInput() KeyInput {
	return KeyInput{
		Salt:                "2026-12",
		CompilerFingerprint: "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14)",
		CompilerDigest:      []byte{1, 2, 3, 4},
		Driver:              "g++",
		Lang:                "c++",
		Ext:                 ".ii",
		Kind:                ".o",
		Args:                []string{"-O2", "-g", "-fPIC"},
		SourceDigest:        []byte{9, 9, 9},
		Extra:               map[string]string{"cwd": "/home/ann/src", "output": "foo.o"},
	}
}

// TestComputeKeyLayout recomputes the key from the layout ComputeKey
// documents, written out independently, so the two cannot drift apart.
func TestComputeKeyLayout(t *testing.T) {
	in := baseKeyInput()
	var msg []byte
	field := func(b []byte) {
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(b)))
		msg = append(msg, b...)
	}
	for _, s := range []string{in.Salt, in.CompilerFingerprint} {
		field([]byte(s))
	}
	field(in.CompilerDigest)
	for _, s := range []string{in.Driver, in.Lang, in.Ext, in.Kind} {
		field([]byte(s))
	}
	msg = binary.BigEndian.AppendUint64(msg, 3)
	for _, a := range in.Args {
		field([]byte(a))
	}
	field(in.SourceDigest)
	msg = binary.BigEndian.AppendUint64(msg, 2)
	for _, s := range []string{"cwd", "/home/ann/src", "output", "foo.o"} { // sorted by name
		field([]byte(s))
	}
	var want Key
	blake3.DeriveKey(keyContext, msg, want[:])
	if got := ComputeKey(in); got != want {
		t.Fatalf("ComputeKey = %s, the documented layout gives %s", got, want)
	}
}

// TestComputeKeyCoversEveryField: changing any one field changes the key,
// and so does moving bytes across a field boundary.
func TestComputeKeyCoversEveryField(t *testing.T) {
	base := ComputeKey(baseKeyInput())
	cases := map[string]func(*KeyInput){
		"salt":               func(in *KeyInput) { in.Salt = "2027-01" },
		"fingerprint":        func(in *KeyInput) { in.CompilerFingerprint += " " },
		"compiler digest":    func(in *KeyInput) { in.CompilerDigest = []byte{1, 2, 3, 5} },
		"driver":             func(in *KeyInput) { in.Driver = "gcc" },
		"lang":               func(in *KeyInput) { in.Lang = "c" },
		"ext":                func(in *KeyInput) { in.Ext = ".i" },
		"kind":               func(in *KeyInput) { in.Kind = ".s" },
		"arg order":          func(in *KeyInput) { in.Args = []string{"-g", "-O2", "-fPIC"} },
		"arg added":          func(in *KeyInput) { in.Args = append(in.Args, "-DNDEBUG") },
		"arg split":          func(in *KeyInput) { in.Args = []string{"-O2", "-g", "-f", "PIC"} },
		"empty arg":          func(in *KeyInput) { in.Args = append(in.Args, "") },
		"source":             func(in *KeyInput) { in.SourceDigest = []byte{9, 9, 8} },
		"extra value":        func(in *KeyInput) { in.Extra["cwd"] = "/home/bob/src" },
		"extra dropped":      func(in *KeyInput) { delete(in.Extra, "cwd") },
		"extra empty value":  func(in *KeyInput) { in.Extra["x"] = "" },
		"extra name/value":   func(in *KeyInput) { in.Extra = map[string]string{"cwd/home/ann/src": "", "output": "foo.o"} },
		"across fields":      func(in *KeyInput) { in.Lang, in.Ext = "c++.ii", "" },
		"driver into salt":   func(in *KeyInput) { in.Salt, in.CompilerFingerprint = in.Salt+in.CompilerFingerprint, "" },
		"source into digest": func(in *KeyInput) { in.CompilerDigest, in.SourceDigest = append(in.CompilerDigest, 9), []byte{9, 9} },
	}
	seen := map[Key]string{base: "base"}
	for name, mutate := range cases {
		in := baseKeyInput()
		mutate(&in)
		k := ComputeKey(in)
		if other, dup := seen[k]; dup {
			t.Errorf("%s gives the same key as %s", name, other)
		}
		seen[k] = name
	}
}

func TestComputeKeyIgnoresMapOrderAndNil(t *testing.T) {
	a := baseKeyInput()
	b := baseKeyInput()
	b.Extra = map[string]string{}
	b.Extra["output"] = "foo.o" // inserted in the other order
	b.Extra["cwd"] = "/home/ann/src"
	if ComputeKey(a) != ComputeKey(b) {
		t.Fatal("Extra's insertion order changed the key")
	}
	a.Extra, b.Extra = nil, map[string]string{}
	a.Args, b.Args = nil, []string{}
	if ComputeKey(a) != ComputeKey(b) {
		t.Fatal("nil and empty differ")
	}
}

func TestKeyString(t *testing.T) {
	k := ComputeKey(baseKeyInput())
	s := k.String()
	if len(s) != 64 {
		t.Fatalf("String() = %q", s)
	}
	back, err := ParseKey(s)
	if err != nil || back != k {
		t.Fatalf("ParseKey(%q) = %s, %v", s, back, err)
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
