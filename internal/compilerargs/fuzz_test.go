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
	for _, c := range refuseList {
		f.Add([]byte(strings.Join(append([]string{"-c", "x.c"}, c.args...), "\x00")))
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
	// The farm host accepts every remote plan, and nothing sent is
	// dangerous by the independent oracle.
	if err := CheckRemoteArgs(p.RemoteArgs); err != nil {
		t.Fatalf("RemoteArgs %q of %q refused: %v", p.RemoteArgs, args, err)
	}
	if i, why := dangerousArgs(p.RemoteArgs); i >= 0 {
		t.Fatalf("RemoteArgs %q of %q send dangerous argument %q (%s)", p.RemoteArgs, args, p.RemoteArgs[i], why)
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
	for _, c := range refuseList {
		f.Add([]byte(strings.Join(c.args, "\x00")))
		f.Add([]byte(strings.Join(append([]string{"-O2", "-fPIC"}, c.args...), "\x00")))
	}
	for _, fam := range allowFamilies {
		f.Add([]byte(strings.Join(fam.ok, "\x00")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		args := strings.Split(string(data), "\x00")
		err := CheckRemoteArgs(args)
		if err == nil {
			if i, why := dangerousArgs(args); i >= 0 {
				t.Fatalf("accepted dangerous argument %q (%s) in %q", args[i], why, args)
			}
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

// The oracle: an independent description of what must never reach a farm
// host, written from gcc's, clang's and gas's manuals rather than from
// allow.go. It knows option families that load code, run programs, read
// or write files, only make sense to the preprocessor or linker, or
// change what is compiled (the mode, the output, the language, the CPU).
// It is deliberately blunt: an accepted argument it flags is either a
// hole in the allow list or a reason to refine the oracle, never noise to
// suppress.

// dangerousPrefixes are option families, matched by prefix.
var dangerousPrefixes = []string{
	// Code loading, other programs, unchecked pass-through.
	"-fplugin", "-fpass-plugin", "-mllvm", "-Xclang", "-Xanalyzer", "-B", "-specs", "-wrapper", "-fuse-ld",
	// Mode, output, language: the executor chooses them.
	"-o", "-c", "-S", "-E", "-x",
	// Files written beside the output.
	"-save-temps", "-save-stats", "-time", "-ftime-trace", "-d", "-aux-info", "-fdump", "-fstack-usage",
	"-fcallgraph-info", "-gsplit-dwarf", "-fcompare-debug", "-fsave-optimization-record",
	"-fdiagnostics-add-output", "-fdiagnostics-set-output", "-fcrash-diagnostics", "-fdeps-", "-fdepfile",
	// Profiles, coverage and other files read.
	"-fprofile", "-fauto-profile", "-fcs-profile", "-fmemory-profile", "-fcoverage", "-ftest-coverage",
	"-fbranch-probabilities", "-frepo", "-fxray", "-fthinlto", "-fapinotes", "-fbuild-session",
	"-fbasic-block-sections",
	// Modules.
	"-fmodule", "-fprebuilt-module", "-fimplicit-module", "-fcxx-modules", "-fbuiltin-module-map", "-gmodules",
	// The preprocessor.
	"-I", "-i", "-D", "-U", "-M", "-A", "-F", "-nostdinc", "-undef", "-Wp,", "-Xpreprocessor",
	// The linker.
	"-L", "-l", "-T", "-Wl,", "-Xlinker",
	// Queries instead of compiles.
	"-print", "-###",
}

// pathExemptPrefixes may contain '/': they rewrite or hash recorded strings.
var pathExemptPrefixes = []string{"-fdebug-prefix-map=", "-ffile-prefix-map=", "-fmacro-prefix-map=", "-frandom-seed=", "-fdebug-compilation-dir="}

// dangerous reports whether a, a whole argument of a remote compile
// command (not the value of --param or -Xassembler), is dangerous.
func dangerous(a string) (bool, string) {
	switch {
	case a == "" || a == "-" || a[0] != '-':
		return true, "not an option"
	case strings.ContainsRune(a, 0):
		return true, "NUL"
	case strings.HasPrefix(a, "--") && a != "--param" && !strings.HasPrefix(a, "--param="):
		return true, "long option"
	case strings.HasPrefix(a, "-X") && a != "-Xassembler":
		return true, "pass-through"
	case strings.HasPrefix(a, "-m") && strings.HasSuffix(a, "=native"):
		return true, "the host's CPU"
	case strings.HasPrefix(a, "-fopt-info") && strings.Contains(a, "="):
		return true, "writes a file"
	case strings.HasPrefix(a, "-fdiagnostics-format=") && strings.HasSuffix(a, "-file"):
		return true, "writes a file"
	case strings.HasPrefix(a, "-fsanitize-"):
		if name, _, _ := strings.Cut(a, "="); strings.Contains(name, "list") {
			return true, "reads a list file"
		}
	}
	for _, p := range dangerousPrefixes {
		if strings.HasPrefix(a, p) {
			return true, "family " + p
		}
	}
	if strings.HasPrefix(a, "-Wa,") {
		return false, "" // checked piece by piece by dangerousArgs
	}
	if strings.Contains(a, "/") {
		for _, p := range pathExemptPrefixes {
			if strings.HasPrefix(a, p) {
				return false, ""
			}
		}
		return true, "a path"
	}
	return false, ""
}

// asmOracle follows the assembler's argument list (every -Wa, and
// -Xassembler in order) the way gas reads it.
type asmOracle struct {
	value string // the option waiting for its value in the next piece
}

// dangerous reports whether one assembler piece is dangerous.
func (o *asmOracle) dangerous(p string) (bool, string) {
	if o.value != "" {
		opt := o.value
		o.value = ""
		switch {
		case p == "" || p[0] == '-' || p[0] == '@':
			return true, "bad value for " + opt
		case opt != "--debug-prefix-map" && strings.Contains(p, "/"):
			return true, "a path"
		}
		return false, ""
	}
	switch {
	case p == "":
		return true, "empty"
	case p[0] == '@':
		return true, "response file"
	case p[0] != '-':
		return true, "an input file"
	case p == "--defsym" || p == "--debug-prefix-map":
		o.value = p
		return false, ""
	case strings.HasPrefix(p, "--debug-prefix-map="):
		return false, ""
	case strings.Contains(p, "/"):
		return true, "a path"
	case strings.HasPrefix(p, "--MD"), strings.HasPrefix(p, "--listing"), strings.HasPrefix(p, "--itbl"):
		return true, "writes or reads a file"
	case strings.HasPrefix(p, "-m"), strings.HasPrefix(p, "--"):
		return false, ""
	}
	// A cluster of short options (gas uses getopt_long_only): -a
	// (listings), -o (output), -I (include), -M (MRI), -i/-l (the
	// beginnings of -itbl and -listing).
	if strings.ContainsAny(p[1:], "aoIMil") {
		return true, "short option writing or reading a file"
	}
	return false, ""
}

// dangerousArgs returns the index of the first dangerous argument of a
// remote compile command, and why, or -1.
func dangerousArgs(args []string) (int, string) {
	var asm asmOracle
	for i := 0; i < len(args); i++ {
		a := args[i]
		if bad, why := dangerous(a); bad {
			return i, why
		}
		switch {
		case a == "--param":
			if i+1 >= len(args) {
				return i, "--param without a value"
			}
			i++
			if v := args[i]; v == "" || v[0] == '@' || strings.Contains(v, "/") || strings.ContainsRune(v, 0) {
				return i, "bad --param value"
			}
		case strings.HasPrefix(a, "--param="):
			if strings.Contains(a, "/") {
				return i, "bad --param value"
			}
		case a == "-Xassembler":
			if i+1 >= len(args) {
				return i, "-Xassembler without a value"
			}
			i++
			if bad, why := asm.dangerous(args[i]); bad {
				return i, "assembler: " + why
			}
		case strings.HasPrefix(a, "-Wa,"):
			for _, p := range strings.Split(a[len("-Wa,"):], ",") {
				if bad, why := asm.dangerous(p); bad {
					return i, "assembler: " + why
				}
			}
		}
	}
	if asm.value != "" {
		return len(args) - 1, "assembler option without its value"
	}
	return -1, ""
}
