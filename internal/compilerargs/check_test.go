package compilerargs

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckRemoteArgsAccepts(t *testing.T) {
	cases := [][]string{
		{},
		{"-O2", "-g", "-Wall", "-Wextra", "-Werror=format-security", "-fPIC", "-std=c11", "-pipe"},
		{"-march=x86-64-v3", "-mtune=generic", "-m64", "-mno-red-zone"},
		{"--param", "max-inline-insns-single=100"},
		{"--param=ggc-min-expand=10"},
		{"-Xassembler", "--noexecstack"},
		{"-Xassembler", "--defsym", "-Xassembler", "X=1"},
		{"-Wa,--noexecstack,--gdwarf-5,-mrelax-relocations=no"},
		{"-Wa,--defsym,FOO=1", "-Wa,--defsym=BAR=2"},
		{"-Wa,--compress-debug-sections=zlib", "-Wa,--64", "-Wa,-O2", "-Wa,--generate-missing-build-notes=yes"},
		{"-Wa,--debug-prefix-map=/home/u=/src"},
		{"-Wa,--debug-prefix-map,/home/u=/src"},
		{"-fdebug-prefix-map=/home/u=/src", "-ffile-prefix-map=/a=.", "-fmacro-prefix-map=/b=/c"},
		{"-frecord-gcc-switches", "-frandom-seed=/abs/out/x.o"},
		{"-fno-profile-arcs", "-fno-stack-usage", "-gno-split-dwarf"},
		{"-trigraphs", "-ansi", "-pedantic-errors", "-std=gnu++20"},
		{"-fopt-info-vec", "-fdiagnostics-format=json", "-fsanitize=address", "-flto", "-fopenmp", "-pthread"},
		{"-v", "-w", "-p", "-pg"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if err := CheckRemoteArgs(args); err != nil {
				t.Errorf("CheckRemoteArgs(%q) = %v, want nil", args, err)
			}
		})
	}
}

func TestCheckRemoteArgsRefuses(t *testing.T) {
	cases := []struct {
		args []string
		bad  string // the argument the error must name
	}{
		// Plugins, specs, program search, wrappers.
		{[]string{"-O2", "-fplugin=x.so"}, "-fplugin=x.so"},
		{[]string{"-fplugin-arg-x-k=v"}, "-fplugin-arg-x-k=v"},
		{[]string{"-specs=x.specs"}, "-specs=x.specs"},
		{[]string{"-specs", "x"}, "-specs"},
		{[]string{"--specs=x"}, "--specs=x"},
		{[]string{"-B/usr/bin"}, "-B/usr/bin"},
		{[]string{"-Bprefix"}, "-Bprefix"},
		{[]string{"-wrapper", "gdb"}, "-wrapper"},
		{[]string{"-iplugindir=/x"}, "-iplugindir=/x"},
		{[]string{"-fmodule-mapper=|cmd"}, "-fmodule-mapper=|cmd"},
		// Response files and bare names.
		{[]string{"@file"}, "@file"},
		{[]string{"-O2", "x.c"}, "x.c"},
		{[]string{"-"}, "-"},
		{[]string{""}, ""},
		{[]string{"a\x00b"}, "a\x00b"},
		// Outputs and written files.
		{[]string{"-o", "x.o"}, "-o"},
		{[]string{"-ox.o"}, "-ox.o"},
		{[]string{"-fdump-tree-all"}, "-fdump-tree-all"},
		{[]string{"-save-temps"}, "-save-temps"},
		{[]string{"-save-temps=obj"}, "-save-temps=obj"},
		{[]string{"-fstack-usage"}, "-fstack-usage"},
		{[]string{"-fcallgraph-info"}, "-fcallgraph-info"},
		{[]string{"-fcallgraph-info=su"}, "-fcallgraph-info=su"},
		{[]string{"-gsplit-dwarf"}, "-gsplit-dwarf"},
		{[]string{"-fopt-info-vec=out.txt"}, "-fopt-info-vec=out.txt"},
		{[]string{"-fdiagnostics-format=json-file"}, "-fdiagnostics-format=json-file"},
		{[]string{"-fcompare-debug"}, "-fcompare-debug"},
		{[]string{"-aux-info", "x"}, "-aux-info"},
		{[]string{"-dumpdir", "d"}, "-dumpdir"},
		{[]string{"-dA"}, "-dA"},
		{[]string{"-time=t"}, "-time=t"},
		// Profiles and coverage.
		{[]string{"-fprofile-generate"}, "-fprofile-generate"},
		{[]string{"-fprofile-use=/x"}, "-fprofile-use=/x"},
		{[]string{"-fprofile-arcs"}, "-fprofile-arcs"},
		{[]string{"-fauto-profile"}, "-fauto-profile"},
		{[]string{"-fcoverage-mapping"}, "-fcoverage-mapping"},
		{[]string{"--coverage"}, "--coverage"},
		{[]string{"-ftest-coverage"}, "-ftest-coverage"},
		{[]string{"-fbranch-probabilities"}, "-fbranch-probabilities"},
		// Assembler.
		{[]string{"-Wa,-adhln=x.lst"}, "-Wa,-adhln=x.lst"},
		{[]string{"-Wa,-a"}, "-Wa,-a"},
		{[]string{"-Wa,--MD,x.d"}, "-Wa,--MD,x.d"},
		{[]string{"-Wa,-o,x"}, "-Wa,-o,x"},
		{[]string{"-Wa,-Lofoo"}, "-Wa,-Lofoo"},
		{[]string{"-Wa,-I,inc"}, "-Wa,-I,inc"},
		{[]string{"-Wa,foo.s"}, "-Wa,foo.s"},
		{[]string{"-Wa,"}, "-Wa,"},
		{[]string{"-Wa,--noexecstack,,-g"}, "-Wa,--noexecstack,,-g"},
		{[]string{"-Wa,@f"}, "-Wa,@f"},
		{[]string{"-Wa,--defsym"}, "-Wa,--defsym"},
		{[]string{"-Wa,-march=/x"}, "-Wa,-march=/x"},
		{[]string{"-Wa,-m/"}, "-Wa,-m/"}, // found by FuzzCheckRemoteArgs: no '/' at all in assembler arguments
		{[]string{"-Wa,-mfoo=a/b"}, "-Wa,-mfoo=a/b"},
		{[]string{"-Wa,--defsym,A=a/b"}, "-Wa,--defsym,A=a/b"},
		{[]string{"-Wa,--defsym=A=a/b"}, "-Wa,--defsym=A=a/b"},
		{[]string{"-Xassembler", "-al"}, "-al"},
		{[]string{"-Xassembler", "-I"}, "-I"},
		{[]string{"-Xassembler"}, "-Xassembler"},
		{[]string{"-Xassembler", "--defsym", "-Xassembler", "-o"}, "-o"},
		// Linker.
		{[]string{"-Wl,-rpath,/x"}, "-Wl,-rpath,/x"},
		{[]string{"-Xlinker", "x"}, "-Xlinker"},
		{[]string{"-L."}, "-L."},
		{[]string{"-lm"}, "-lm"},
		{[]string{"-T", "s.ld"}, "-T"},
		{[]string{"-u"}, "-u"},
		{[]string{"-usym"}, "-usym"},
		{[]string{"-zdefs"}, "-zdefs"},
		// Preprocessor.
		{[]string{"-I."}, "-I."},
		{[]string{"-Iinc"}, "-Iinc"},
		{[]string{"-isystem", "x"}, "-isystem"},
		{[]string{"-include", "x.h"}, "-include"},
		{[]string{"-DX=1"}, "-DX=1"},
		{[]string{"-UX"}, "-UX"},
		{[]string{"-E"}, "-E"},
		{[]string{"-MD"}, "-MD"},
		{[]string{"-MF", "x"}, "-MF"},
		{[]string{"-Wp,-MD,x"}, "-Wp,-MD,x"},
		{[]string{"-Xpreprocessor", "-M"}, "-Xpreprocessor"},
		{[]string{"--sysroot=/x"}, "--sysroot=/x"},
		{[]string{"--sysroot", "/x"}, "--sysroot"},
		{[]string{"-x", "c"}, "-x"},
		// Paths in values.
		{[]string{"-mfoo=/etc/passwd"}, "-mfoo=/etc/passwd"},
		{[]string{"-mfoo=../x"}, "-mfoo=../x"},
		{[]string{"-fsomething=a/../../b"}, "-fsomething=a/../../b"},
		{[]string{"-fsomething=x:/abs"}, "-fsomething=x:/abs"},
		{[]string{"-finstrument-functions-exclude-file-list=/usr/include"}, "-finstrument-functions-exclude-file-list=/usr/include"},
		// Long options and -X.
		{[]string{"--param"}, "--param"},
		{[]string{"--param", "x.c"}, "x.c"},
		{[]string{"--param", "../x"}, "../x"},
		{[]string{"--param=x/y"}, "--param=x/y"},
		{[]string{"--output=x"}, "--output=x"},
		{[]string{"--help"}, "--help"},
		{[]string{"-Xclang", "x"}, "-Xclang"},
		// The executor adds the mode; preprocessor-only and link-only flags
		// are never sent.
		{[]string{"-c"}, "-c"},
		{[]string{"-S"}, "-S"},
		{[]string{"-undef"}, "-undef"},
		{[]string{"-traditional-cpp"}, "-traditional-cpp"},
		{[]string{"-nostdinc"}, "-nostdinc"},
		{[]string{"-H"}, "-H"},
		{[]string{"-static"}, "-static"},
		{[]string{"-shared"}, "-shared"},
		{[]string{"-s"}, "-s"},
		{[]string{"-Q"}, "-Q"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			err := CheckRemoteArgs(c.args)
			if err == nil {
				t.Fatalf("CheckRemoteArgs(%q) = nil, want an error naming %q", c.args, c.bad)
			}
			var re *RemoteArgError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RemoteArgError", err)
			}
			if re.Arg != c.bad || re.Index < 0 || re.Index >= len(c.args) || c.args[re.Index] != re.Arg {
				t.Errorf("error names %d %q, want %q: %v", re.Index, re.Arg, c.bad, err)
			}
			if !strings.Contains(err.Error(), "refused") {
				t.Errorf("unhelpful message: %v", err)
			}
		})
	}
}
