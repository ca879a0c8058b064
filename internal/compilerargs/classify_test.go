package compilerargs

import (
	"slices"
	"strings"
	"testing"
)

// sp splits a command line on spaces (tests only use simple arguments).
func sp(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

// eqArgs compares argument lists, treating nil and empty alike.
func eqArgs(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}

type remoteCase struct {
	name    string
	args    string
	lang    string
	source  string
	output  string
	kind    string
	pre     string // "" with preprocessed=true means nil
	remote  string
	ext     string
	prepro  bool
	depFile string
}

func TestClassifyRemote(t *testing.T) {
	cases := []remoteCase{
		{name: "plain", args: "-c x.c", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E x.c", remote: "", ext: ".i"},
		{name: "flags kept in order", args: "-O2 -g -Wall -c x.c -o sub/x.o", lang: "c", source: "x.c", output: "sub/x.o", kind: ".o",
			pre: "-E -O2 -g -Wall x.c", remote: "-O2 -g -Wall", ext: ".i"},
		{name: "-o joined", args: "-c -osub/x.o x.c", lang: "c", source: "x.c", output: "sub/x.o", kind: ".o",
			pre: "-E x.c", remote: "", ext: ".i"},
		{name: "-o any directory and extension", args: "-c -o out/dir/x.obj src/x.c", lang: "c", source: "src/x.c", output: "out/dir/x.obj", kind: ".o",
			pre: "-E src/x.c", remote: "", ext: ".i"},
		{name: "default output is basename in cwd", args: "-c src/dir/x.y.c", lang: "c", source: "src/dir/x.y.c", output: "x.y.o", kind: ".o",
			pre: "-E src/dir/x.y.c", remote: "", ext: ".i"},
		{name: "preprocessor options separate", args: "-c -I inc -D FOO=1 -U X -include cfg.h -imacros m.h -isystem sys -iquote q -idirafter d -iprefix p -iwithprefix w -iwithprefixbefore wb -isysroot sr -imultilib ml -A a=b -O2 x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -I inc -D FOO=1 -U X -include cfg.h -imacros m.h -isystem sys -iquote q -idirafter d -iprefix p -iwithprefix w -iwithprefixbefore wb -isysroot sr -imultilib ml -A a=b -O2 x.c", remote: "-O2", ext: ".i"},
		{name: "preprocessor options joined", args: "-c -Iinc -DFOO=1 -UX -includecfg.h -isystemsys -iquoteq -idirafterd -Aa=b -O2 x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -Iinc -DFOO=1 -UX -includecfg.h -isystemsys -iquoteq -idirafterd -Aa=b -O2 x.c", remote: "-O2", ext: ".i"},
		{name: "preprocessor-only flags", args: "-nostdinc -nostdinc++ -undef -H -traditional-cpp -trigraphs -remap -fpch-deps -c x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -nostdinc -nostdinc++ -undef -H -traditional-cpp -trigraphs -remap -fpch-deps x.c", remote: "-trigraphs", ext: ".i"},
		{name: "-Wp and -Xpreprocessor", args: "-Wp,-MMD,sub/.x.o.d -Xpreprocessor -DFOO -c x.c -o sub/x.o", lang: "c", source: "x.c", output: "sub/x.o", kind: ".o",
			pre: "-E -Wp,-MMD,sub/.x.o.d -Xpreprocessor -DFOO x.c", remote: "", ext: ".i"},
		{name: "--sysroot both forms", args: "--sysroot=/sr --sysroot /sr2 -c x.c", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E --sysroot=/sr --sysroot /sr2 x.c", remote: "", ext: ".i"},
		{name: "-MD with -o", args: "-c x.c -MD -o sub/x.o", lang: "c", source: "x.c", output: "sub/x.o", kind: ".o",
			pre: "-E x.c -MD -MF sub/x.d -MQ sub/x.o", remote: "", ext: ".i", depFile: "sub/x.d"},
		{name: "-MD without -o", args: "-c -MD x.c", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-MMD -MF", args: "-c -MMD -MF custom.d x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MMD -MF custom.d x.c -MQ x.o", remote: "", ext: ".i", depFile: "custom.d"},
		{name: "-MD -MFjoined", args: "-c -MD -MFdep.d x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD -MFdep.d x.c -MQ x.o", remote: "", ext: ".i", depFile: "dep.d"},
		{name: "-MD -MT", args: "-c -MD -MT custom x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD -MT custom x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-MD -MTjoined -MP -MG", args: "-c -MD -MTcustom -MP -MG x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD -MTcustom -MP -MG x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-MD -MQ", args: "-c -MD -MQ q x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD -MQ q x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-MD -MQjoined", args: "-c -MD -MQq x.c -o x.o", lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -MD -MQq x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-MD .d of odd output name", args: "-c -MD x.c -o sub.d/x", lang: "c", source: "x.c", output: "sub.d/x", kind: ".o",
			pre: "-E -MD x.c -MF sub.d/x.d -MQ sub.d/x", remote: "", ext: ".i", depFile: "sub.d/x.d"},
		{name: "-S", args: "-S -O2 x.c", lang: "c", source: "x.c", output: "x.s", kind: ".s",
			pre: "-E -O2 x.c", remote: "-O2", ext: ".i"},
		{name: "-S -MD without -o", args: "-S -MD x.c", lang: "c", source: "x.c", output: "x.s", kind: ".s",
			pre: "-E -MD x.c -MF x.d", remote: "", ext: ".i", depFile: "x.d"},
		{name: "-S wins over -c", args: "-c -S x.c", lang: "c", source: "x.c", output: "x.s", kind: ".s",
			pre: "-E x.c", remote: "", ext: ".i"},
		{name: "c++", args: "-c -std=c++17 y.cpp", lang: "c++", source: "y.cpp", output: "y.o", kind: ".o",
			pre: "-E -std=c++17 y.cpp", remote: "-std=c++17", ext: ".ii"},
		{name: "-x c++", args: "-x c++ -c x.c", lang: "c++", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -x c++ x.c", remote: "", ext: ".ii"},
		{name: "-xc++ joined", args: "-xc++ -c x.c", lang: "c++", source: "x.c", output: "x.o", kind: ".o",
			pre: "-E -xc++ x.c", remote: "", ext: ".ii"},
		{name: "-x c any name", args: "-x c -c foo.weird", lang: "c", source: "foo.weird", output: "foo.o", kind: ".o",
			pre: "-E -x c foo.weird", remote: "", ext: ".i"},
		{name: "-x none resets", args: "-x c++ -x none -c foo.c", lang: "c", source: "foo.c", output: "foo.o", kind: ".o",
			pre: "-E -x c++ -x none foo.c", remote: "", ext: ".i"},
		{name: "-x after source has no effect", args: "-c foo.c -x c++", lang: "c", source: "foo.c", output: "foo.o", kind: ".o",
			pre: "-E foo.c -x c++", remote: "", ext: ".i"},
		{name: "-x objective-c", args: "-x objective-c -c foo.c", lang: "objective-c", source: "foo.c", output: "foo.o", kind: ".o",
			pre: "-E -x objective-c foo.c", remote: "", ext: ".mi"},
		{name: "-x cpp-output", args: "-x cpp-output -c foo.c", lang: "c", source: "foo.c", output: "foo.o", kind: ".o",
			prepro: true, remote: "", ext: ".i"},
		{name: "-x c++-cpp-output", args: "-x c++-cpp-output -c foo.c", lang: "c++", source: "foo.c", output: "foo.o", kind: ".o",
			prepro: true, remote: "", ext: ".ii"},
		{name: "-x assembler", args: "-x assembler -c foo.asm", lang: "assembler", source: "foo.asm", output: "foo.o", kind: ".o",
			prepro: true, remote: "", ext: ".s"},
		{name: "preprocessed .i ignores -MD", args: "-c -MD x.i -o x.o", lang: "c", source: "x.i", output: "x.o", kind: ".o",
			prepro: true, remote: "", ext: ".i"},
		{name: "assembler .s", args: "-c -Wa,--noexecstack x.s", lang: "assembler", source: "x.s", output: "x.o", kind: ".o",
			prepro: true, remote: "-Wa,--noexecstack", ext: ".s"},
		{name: "--param and -Xassembler keep values", args: "--param max-inline-insns-single=100 --param=ggc-min-expand=10 -Xassembler --noexecstack -Xassembler --defsym -Xassembler X=1 -c x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre:    "-E --param max-inline-insns-single=100 --param=ggc-min-expand=10 -Xassembler --noexecstack -Xassembler --defsym -Xassembler X=1 x.c",
			remote: "--param max-inline-insns-single=100 --param=ggc-min-expand=10 -Xassembler --noexecstack -Xassembler --defsym -Xassembler X=1", ext: ".i"},
		{name: "linker options dropped remotely", args: "-c x.c -L lib -Llib2 -l m -lz -Xlinker -zdefs -Wl,--as-needed -u sym -usym2 -T s.ld -Ts2.ld -z now -znow -e entry -static -s",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre:    "-E x.c -L lib -Llib2 -l m -lz -Xlinker -zdefs -Wl,--as-needed -u sym -usym2 -T s.ld -Ts2.ld -z now -znow -e entry -static -s",
			remote: "", ext: ".i"},
		{name: "prefix maps and record switches", args: "-fdebug-prefix-map=/home/u=/src -ffile-prefix-map=/a=. -fmacro-prefix-map=/b=/c -frecord-gcc-switches -g -c x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre:    "-E -fdebug-prefix-map=/home/u=/src -ffile-prefix-map=/a=. -fmacro-prefix-map=/b=/c -frecord-gcc-switches -g x.c",
			remote: "-fdebug-prefix-map=/home/u=/src -ffile-prefix-map=/a=. -fmacro-prefix-map=/b=/c -frecord-gcc-switches -g", ext: ".i"},
		{name: "target flags", args: "-march=x86-64-v2 -mtune=generic -m64 -fPIC -pthread -fopenmp -std=c11 -ansi -pedantic -c x.c",
			lang: "c", source: "x.c", output: "x.o", kind: ".o",
			pre:    "-E -march=x86-64-v2 -mtune=generic -m64 -fPIC -pthread -fopenmp -std=c11 -ansi -pedantic x.c",
			remote: "-march=x86-64-v2 -mtune=generic -m64 -fPIC -pthread -fopenmp -std=c11 -ansi -pedantic", ext: ".i"},
	}
	for _, ext := range []string{".cc", ".cp", ".cxx", ".cpp", ".CPP", ".c++", ".C"} {
		cases = append(cases, remoteCase{name: "ext " + ext, args: "-c f" + ext, lang: "c++", source: "f" + ext, output: "f.o", kind: ".o",
			pre: "-E f" + ext, ext: ".ii"})
	}
	cases = append(cases,
		remoteCase{name: "ext .m", args: "-c f.m", lang: "objective-c", source: "f.m", output: "f.o", kind: ".o", pre: "-E f.m", ext: ".mi"},
		remoteCase{name: "ext .mm", args: "-c f.mm", lang: "objective-c++", source: "f.mm", output: "f.o", kind: ".o", pre: "-E f.mm", ext: ".mii"},
		remoteCase{name: "ext .M", args: "-c f.M", lang: "objective-c++", source: "f.M", output: "f.o", kind: ".o", pre: "-E f.M", ext: ".mii"},
		remoteCase{name: "ext .ii", args: "-c f.ii", lang: "c++", source: "f.ii", output: "f.o", kind: ".o", prepro: true, ext: ".ii"},
		remoteCase{name: "ext .mi", args: "-c f.mi", lang: "objective-c", source: "f.mi", output: "f.o", kind: ".o", prepro: true, ext: ".mi"},
		remoteCase{name: "ext .mii", args: "-c f.mii", lang: "objective-c++", source: "f.mii", output: "f.o", kind: ".o", prepro: true, ext: ".mii"},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := sp(c.args)
			orig := slices.Clone(args)
			p := Classify(args)
			if !slices.Equal(args, orig) {
				t.Fatalf("Classify modified its input: %q", args)
			}
			if !p.Remote {
				t.Fatalf("Classify(%q) is local: %q", c.args, p.Reason)
			}
			if p.Reason != "" || p.Lang != c.lang || p.Source != c.source || p.Output != c.output ||
				p.OutputKind != c.kind || p.PreprocessedExt != c.ext || p.Preprocessed != c.prepro || p.DepFile != c.depFile {
				t.Errorf("Classify(%q) = %+v\nwant lang=%q source=%q output=%q kind=%q ext=%q preprocessed=%v depfile=%q",
					c.args, p, c.lang, c.source, c.output, c.kind, c.ext, c.prepro, c.depFile)
			}
			if c.prepro {
				if p.PreprocessArgs != nil {
					t.Errorf("PreprocessArgs = %q, want nil", p.PreprocessArgs)
				}
			} else if !eqArgs(p.PreprocessArgs, sp(c.pre)) {
				t.Errorf("PreprocessArgs =\n  %q\nwant\n  %q", p.PreprocessArgs, sp(c.pre))
			}
			if !eqArgs(p.RemoteArgs, sp(c.remote)) {
				t.Errorf("RemoteArgs =\n  %q\nwant\n  %q", p.RemoteArgs, sp(c.remote))
			}
			if err := CheckRemoteArgs(p.RemoteArgs); err != nil {
				t.Errorf("CheckRemoteArgs(RemoteArgs): %v", err)
			}
		})
	}
}

func TestClassifyLocal(t *testing.T) {
	cases := []struct {
		args   []string
		reason string
	}{
		// Not a compile.
		{sp("x.c"), "no -c"},
		{sp("x.c -o prog"), "no -c"},
		{sp("x.o y.o -o prog -lm"), "no -c"},
		{sp("a.c b.c -o prog"), "no -c"},
		{sp("-E x.c"), "-E"},
		{sp("-c -E x.c"), "-E"},
		{sp("-M x.c"), "-M"},
		{sp("-MM x.c"), "-M"},
		{sp("-c -M x.c"), "-M"},
		{sp("-c -MM x.c"), "-M"},
		{sp("-c -Mfoo x.c"), "-M"},
		{sp("-c -fsyntax-only x.c"), "-fsyntax-only"},
		{sp("-c -print-file-name=libc.a x.c"), "-print"},
		{sp("-### -c x.c"), "-###"},
		{sp("--help"), "unsupported long option"},
		// Host-specific code.
		{sp("-c -march=native x.c"), "-march=native"},
		{sp("-c -mtune=native x.c"), "-mtune=native"},
		{sp("-c -mcpu=native x.c"), "-mcpu=native"},
		{sp("-c -mfoo=native x.c"), "-m*=native"},
		// Profiles and coverage.
		{sp("-c -fprofile-arcs x.c"), "-fprofile-arcs"},
		{sp("-c -ftest-coverage x.c"), "-ftest-coverage"},
		{sp("-c --coverage x.c"), "--coverage"},
		{sp("-c -fprofile-generate x.c"), "-fprofile-generate"},
		{sp("-c -fprofile-generate=dir x.c"), "-fprofile-generate"},
		{sp("-c -fprofile-use x.c"), "-fprofile-use"},
		{sp("-c -fprofile-use=x.gcda x.c"), "-fprofile-use"},
		{sp("-c -fprofile-instr-generate x.c"), "-fprofile-instr"},
		{sp("-c -fprofile-dir=d x.c"), "-fprofile"},
		{sp("-c -fauto-profile x.c"), "-fauto-profile"},
		{sp("-c -fauto-profile=f.afdo x.c"), "-fauto-profile"},
		{sp("-c -fbranch-probabilities x.c"), "-fbranch-probabilities"},
		{sp("-c -frepo x.cc"), "-frepo"},
		// Assembler listings and dependency files.
		{sp("-c -Wa,-adhln=x.lst x.c"), "-Wa"},
		{sp("-c -Wa,-a x.c"), "-Wa"},
		{sp("-c -Wa,--MD,x.d x.c"), "-Wa"},
		{sp("-c -Wa,-Lofoo x.c"), "-Wa"},
		{sp("-c -Xassembler -al x.c"), "-Wa"},
		{sp("-c -Wa,--defsym x.c"), "-Wa"},
		// Files, plugins, programs.
		{sp("-c -specs=my.specs x.c"), "-specs"},
		{sp("-c -specs my.specs x.c"), "-specs"},
		{sp("-c -fplugin=p.so x.c"), "-fplugin"},
		{sp("-c -fplugin-arg-p-k=v x.c"), "-fplugin"},
		{sp("-c -B/opt/bin x.c"), "-B"},
		{sp("-c -B /opt/bin x.c"), "-B"},
		{sp("-c -wrapper gdb,--args x.c"), "-wrapper"},
		{sp("-c -save-temps x.c"), "-save-temps"},
		{sp("-c -save-temps=obj x.c"), "-save-temps"},
		{sp("-c -fdump-tree-all x.c"), "-fdump"},
		{sp("-c -fstack-usage x.c"), "-fstack-usage"},
		{sp("-c -fcallgraph-info x.c"), "-fcallgraph-info"},
		{sp("-c -fcallgraph-info=su x.c"), "-fcallgraph-info"},
		{sp("-c -gsplit-dwarf x.c"), "-gsplit-dwarf"},
		{sp("-c -fcompare-debug x.c"), "-fcompare-debug"},
		{sp("-c -fopt-info-vec=opt.txt x.c"), "-fopt-info=file"},
		{sp("-c -fdiagnostics-format=sarif-file x.c"), "-fdiagnostics-format=file"},
		{sp("-c -fmodules-ts x.cc"), "-fmodules"},
		{sp("-c -aux-info x.aux x.c"), "-aux-info"},
		{sp("-c -aux-info=x.aux x.c"), "-aux-info"},
		{sp("-c -dumpbase x x.c"), "-dumpbase"},
		{sp("-c -dumpdir d/ x.c"), "-dumpbase"},
		{sp("-c -dM x.c"), "-d"},
		{sp("-c -time=t.txt x.c"), "-time="},
		{sp("-c -finput-charset=latin1 x.c"), "-finput-charset"},
		{sp("-c -fdirectives-only x.c"), "-fdirectives-only"},
		{sp("-c -fpreprocessed x.c"), "-fpreprocessed"},
		{sp("-c -fpch-preprocess x.c"), "-fpch-preprocess"},
		{sp("-c -C x.c"), "-C"},
		{sp("-c -CC x.c"), "-C"},
		{sp("-c -P x.c"), "-P"},
		{sp("-c -Wp,-P x.c"), "-Wp"},
		{sp("-c -Wp,-dD x.c"), "-Wp"},
		{sp("-c -Xpreprocessor -M x.c"), "-Wp"},
		{sp("-c -Xfoo x.c"), "unknown -X option"},
		{sp("-c --include=h.h x.c"), "unsupported long option"},
		{sp("-c --output=x.o x.c"), "unsupported long option"},
		// Response files anywhere.
		{sp("-c @args"), "@file"},
		{sp("@args"), "@file"},
		{sp("-c x.c -o @out"), "@file"},
		{sp("-c -Wp,@f x.c"), "@file"},
		// Sources.
		{sp("-c a.c b.c"), "multiple sources"},
		{sp("-c a.c -x c b"), "multiple sources"},
		{sp("-c"), "no source"},
		{sp("-c -O2"), "no source"},
		{sp("-c conftest.c"), "conftest"},
		{sp("-c dir/conftest.cpp -o conftest.o"), "conftest"},
		{sp("-c tmp.conftest.c"), "conftest"},
		{sp("-c x.h"), "unknown source extension"},
		{sp("-c x.o"), "unknown source extension"},
		{sp("-c x.f90"), "unknown source extension"},
		{sp("-c noext"), "unknown source extension"},
		{sp("-c .c"), "unknown source extension"},
		{sp("-c dir.c/x"), "unknown source extension"},
		{sp("-c x.c y.o"), "unknown source extension"},
		{sp("-c x.S"), "assembler-with-cpp"},
		{sp("-c x.sx"), "assembler-with-cpp"},
		{sp("-x assembler-with-cpp -c x.s"), "assembler-with-cpp"},
		{sp("-x ada -c x.c"), "-x unsupported language"},
		{sp("-x c-header -c x.h"), "-x unsupported language"},
		{sp("-c -x c -"), "stdin source"},
		{sp("-S x.s"), "-S on assembler"},
		// Outputs.
		{sp("-c x.c -o -"), "output to stdout"},
		{sp("-c x.c -o-"), "output to stdout"},
		{sp("-c x.c -o a.o -o b.o"), "multiple -o"},
		{sp("-c x.c -o x.c"), "output is source"},
		// Missing option arguments.
		{sp("-c x.c -o"), "missing option argument"},
		{sp("-c x.c -I"), "missing option argument"},
		{sp("-c x.c -x"), "missing option argument"},
		{sp("-c x.c -MF"), "missing option argument"},
		{sp("-c x.c --param"), "missing option argument"},
		{sp("-c x.c -Xassembler"), "missing option argument"},
		// Options that are not on the remote allow list (paths in values,
		// unknown options): local, with a reason naming the option.
		{sp("-c -finstrument-functions-exclude-file-list=/usr/include x.c"), `option "-finstrument-functions-exclude-file-list=/usr/include" is not on the remote allow list`},
		{sp("-c -mfoo=/abs x.c"), `option "-mfoo=/abs" is not on the remote allow list`},
		{sp("-c -auxfoo x.c"), `option "-auxfoo" is not on the remote allow list (writes a file)`},
		{sp("-c -fpass-plugin=x.so x.c"), `option "-fpass-plugin=x.so" is not on the remote allow list (loads code)`},
		{sp("-c -mllvm -inline-threshold=1 x.c"), `option "-mllvm" is not on the remote allow list`},
		{sp("-c -target x86_64-linux-gnu x.c"), `option "-target" is not on the remote allow list`},
		{sp("-c -fno-such=1 x.c"), `option "-fno-such=1" is not on the remote allow list`},
		{sp("-c -Wa,--noexecstack -fbrand-new x.c"), `option "-fbrand-new" is not on the remote allow list`},
		{[]string{"-c", "-f" + strings.Repeat("x", 100), "x.c"}, `option "-f` + strings.Repeat("x", 78) + `"... is not on the remote allow list`},
		// Odd inputs must not panic.
		{[]string{}, "no -c"},
		{[]string{""}, "no -c"},
		{[]string{"-"}, "no -c"},
		{[]string{"-c", ""}, "empty argument"},
		{[]string{"-xc", "-c", ""}, "empty argument"},
		{[]string{"-c", "x.c", "-o", ""}, "empty argument"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			p := Classify(c.args)
			if p.Remote {
				t.Fatalf("Classify(%q) is remote: %+v", c.args, p)
			}
			if p.Reason != c.reason {
				t.Errorf("Classify(%q).Reason = %q, want %q", c.args, p.Reason, c.reason)
			}
			if p.Source != "" || p.PreprocessArgs != nil || p.RemoteArgs != nil {
				t.Errorf("local plan has fields set: %+v", p)
			}
		})
	}
}

// TestSeparateArgValuesAreNotSources checks both forms of every option
// that takes a separate argument: its value (named like a source) must
// never be taken for the source.
func TestSeparateArgValuesAreNotSources(t *testing.T) {
	for opt, so := range separateArg {
		t.Run(opt, func(t *testing.T) {
			p := Classify([]string{"-c", opt, "v.c", "x.c"})
			switch {
			case so.role == roleLocal:
				if p.Remote || p.Reason != so.reason {
					t.Fatalf("got %+v, want local %q", p, so.reason)
				}
				return
			case opt == "-o":
				if !p.Remote || p.Source != "x.c" || p.Output != "v.c" {
					t.Fatalf("got %+v", p)
				}
				return
			case opt == "-x":
				// "-x v.c" is an unknown language applied to x.c.
				if p.Remote || p.Reason != reasonUnknownLang {
					t.Fatalf("got %+v", p)
				}
				return
			case opt == "-Xassembler":
				// gas would read v.c as an input: refused.
				if p.Remote || p.Reason != reasonAsmOption {
					t.Fatalf("got %+v", p)
				}
				return
			case opt == "--param":
				// Not a --param shape: refused by the farm-host check.
				if p.Remote || p.Reason != `option "v.c" refused remotely: --param value must be NAME[=VALUE]` {
					t.Fatalf("got %+v", p)
				}
				return
			}
			if !p.Remote || p.Source != "x.c" {
				t.Fatalf("Classify(-c %s v.c x.c) = %+v, want remote with source x.c", opt, p)
			}
			if slices.Contains(p.RemoteArgs, "v.c") {
				t.Errorf("value of %s leaked into RemoteArgs %q", opt, p.RemoteArgs)
			}
			if !slices.Contains(p.PreprocessArgs, "v.c") {
				t.Errorf("value of %s missing from PreprocessArgs %q", opt, p.PreprocessArgs)
			}
			// The source may also come first.
			if p2 := Classify([]string{"-c", "x.c", opt, "v.c"}); !p2.Remote || p2.Source != "x.c" {
				t.Errorf("Classify(-c x.c %s v.c) = %+v", opt, p2)
			}
		})
	}
}

func TestSuffixHelpers(t *testing.T) {
	for _, c := range []struct{ in, suffix, dotD string }{
		{"x.c", ".c", "x.d"},
		{"x.tar.c", ".c", "x.tar.d"},
		{"noext", "", "noext.d"},
		{".c", "", ".d"},
		{"a/.c", ".c", "a/.d"},
		{"dir.c/x", "", "dir.c/x.d"},
	} {
		if got := gccSuffix(c.in); got != c.suffix {
			t.Errorf("gccSuffix(%q) = %q, want %q", c.in, got, c.suffix)
		}
		if got := replaceSuffix(c.in, ".d"); got != c.dotD {
			t.Errorf("replaceSuffix(%q) = %q, want %q", c.in, got, c.dotD)
		}
	}
	for in, want := range map[string]string{"x.c": "x", ".c": ".c", "x.y.z": "x.y", "x": "x", "x.": "x"} {
		if got := stripSuffix(in); got != want {
			t.Errorf("stripSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}

// benchArgs is a typical 30-argument autotools/rpm compile line.
var benchArgs = strings.Split("-DHAVE_CONFIG_H -I. -I../include -I/usr/include/glib-2.0 -DNDEBUG -D_GNU_SOURCE "+
	"-O2 -g -pipe -Wall -Wextra -Werror=format-security -Wp,-D_FORTIFY_SOURCE=2 -fexceptions "+
	"-fstack-protector-strong -grecord-gcc-switches -m64 -mtune=generic -fasynchronous-unwind-tables "+
	"-fstack-clash-protection -fcf-protection -fPIC -std=gnu11 -MT foo.o -MD -MP -MF .deps/foo.Tpo -c -o foo.o foo.c", " ")

func BenchmarkClassify(b *testing.B) {
	if len(benchArgs) < 30 {
		b.Fatalf("benchmark line has %d arguments", len(benchArgs))
	}
	if p := Classify(benchArgs); !p.Remote {
		b.Fatalf("benchmark line is local: %s", p.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		Classify(benchArgs)
	}
}
