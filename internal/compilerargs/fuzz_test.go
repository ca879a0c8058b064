package compilerargs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fuzzSeeds are NUL-separated argument lists.
var fuzzSeeds = []string{
	"-c\x00x.c",
	"-O2\x00-g\x00-c\x00x.c\x00-o\x00sub/x.o",
	"-c\x00-MD\x00-MF\x00x.d\x00-MT\x00t\x00x.c",
	"-c\x00-MMD\x00x.c\x00-o\x00o/x.o",
	"-x\x00c++\x00-c\x00x.c",
	"-c\x00-Wa,--noexecstack\x00-Xassembler\x00--defsym\x00-Xassembler\x00A=1\x00x.s",
	"--param\x00max-inline-insns-single=10\x00-S\x00x.cc",
	"-c\x00-I\x00inc\x00-include\x00h.h\x00-Wp,-MMD,d.d\x00x.c",
	"-c\x00-fdebug-prefix-map=/a=/b\x00x.c",
	"-c\x00@rsp",
	"-c\x00x.c\x00-o\x00-",
	"-c\x00-march=native\x00x.c",
	"x.c\x00-o\x00prog",
	"-c\x00-x\x00cpp-output\x00x.c",
	"-c\x00x.i",
	"",
}

func FuzzClassify(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		args := strings.Split(string(data), "\x00")
		orig := slices.Clone(args)
		p := Classify(args)
		if !slices.Equal(args, orig) {
			t.Fatalf("Classify modified its input")
		}
		checkPlan(t, args, p)
	})
}

// checkPlan asserts the invariants every plan must satisfy.
func checkPlan(t *testing.T, args []string, p Plan) {
	t.Helper()
	if !p.Remote {
		if p.Reason == "" {
			t.Fatalf("local plan without a reason for %q", args)
		}
		if p.Source != "" || p.Output != "" || p.PreprocessArgs != nil || p.RemoteArgs != nil {
			t.Fatalf("local plan has fields set: %+v", p)
		}
		return
	}
	if p.Reason != "" {
		t.Fatalf("remote plan with reason %q", p.Reason)
	}
	if p.Source == "" || !slices.Contains(args, p.Source) {
		t.Fatalf("bad source %q for %q", p.Source, args)
	}
	if p.Output == "" || p.Output == "-" || p.Output == p.Source {
		t.Fatalf("bad output %q for %q", p.Output, args)
	}
	if p.OutputKind != ".o" && p.OutputKind != ".s" {
		t.Fatalf("bad output kind %q", p.OutputKind)
	}
	wantExt := map[string][]string{
		"c": {".i"}, "c++": {".ii"}, "objective-c": {".mi"}, "objective-c++": {".mii"}, "assembler": {".s"},
	}[p.Lang]
	if !slices.Contains(wantExt, p.PreprocessedExt) {
		t.Fatalf("lang %q with ext %q", p.Lang, p.PreprocessedExt)
	}
	// The farm host accepts every remote plan.
	if err := CheckRemoteArgs(p.RemoteArgs); err != nil {
		t.Fatalf("RemoteArgs %q of %q refused: %v", p.RemoteArgs, args, err)
	}
	// RemoteArgs keep the original order and drop the source: the only
	// place the source's text may appear is as the value of --param or
	// -Xassembler (e.g. "-x c abc --param abc").
	if !isSubsequence(p.RemoteArgs, args) {
		t.Fatalf("RemoteArgs %q not a subsequence of %q", p.RemoteArgs, args)
	}
	for i, a := range p.RemoteArgs {
		if a == p.Source && (i == 0 || (p.RemoteArgs[i-1] != "--param" && p.RemoteArgs[i-1] != "-Xassembler")) {
			t.Fatalf("source %q in RemoteArgs %q", p.Source, p.RemoteArgs)
		}
	}
	if p.Preprocessed {
		if p.PreprocessArgs != nil || p.DepFile != "" {
			t.Fatalf("preprocessed source with PreprocessArgs %q / DepFile %q", p.PreprocessArgs, p.DepFile)
		}
	} else {
		pre := p.PreprocessArgs
		if len(pre) < 2 || pre[0] != "-E" || !slices.Contains(pre, p.Source) {
			t.Fatalf("bad PreprocessArgs %q", pre)
		}
		// "-E", a subsequence of the original arguments, then at most
		// the -MF and -MQ fixups.
		body := pre[1:]
		for range 2 {
			if n := len(body); n >= 2 && (body[n-2] == "-MF" || body[n-2] == "-MQ") && !isSubsequence(body, args) {
				body = body[:n-2]
			}
		}
		if !isSubsequence(body, args) {
			t.Fatalf("PreprocessArgs %q do not come from %q", pre, args)
		}
	}
	// The remote command, as the executor builds it, is itself a remote
	// compile of an already preprocessed file.
	action := "-c"
	if p.OutputKind == ".s" {
		action = "-S"
	}
	job := "job" + p.PreprocessedExt
	rp := Classify(append(slices.Clone(p.RemoteArgs), action, job, "-o", "job"+p.OutputKind))
	if !rp.Remote || rp.Source != job || !rp.Preprocessed || rp.Lang != p.Lang {
		t.Fatalf("executor command for %q classifies as %+v", args, rp)
	}
}

// isSubsequence reports whether sub is a subsequence of full.
func isSubsequence(sub, full []string) bool {
	j := 0
	for _, a := range full {
		if j < len(sub) && sub[j] == a {
			j++
		}
	}
	return j == len(sub)
}

func FuzzCheckRemoteArgs(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("-Wa,--defsym\x00-Xassembler\x00X=1"))
	f.Add([]byte("--param\x00a=1\x00-fdebug-prefix-map=/a=/b"))
	f.Add([]byte("-Wa,-mfoo=../x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		args := strings.Split(string(data), "\x00")
		err := CheckRemoteArgs(args)
		if err == nil {
			for _, a := range args {
				if a == "" || a[0] == '@' || (a[0] != '-' && !slices.Contains(args, "--param") && !slices.Contains(args, "-Xassembler")) {
					t.Fatalf("accepted %q in %q", a, args)
				}
			}
			return
		}
		var re *RemoteArgError
		if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(args) || args[re.Index] != re.Arg {
			t.Fatalf("bad error %v for %q", err, args)
		}
	})
}
