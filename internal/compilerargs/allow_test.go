package compilerargs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// allowFamilies: for each family of the allow list, arguments that must be
// accepted and lookalikes that must be refused.
var allowFamilies = []struct {
	name    string
	ok      []string
	refused []string
}{
	{"optimisation level",
		[]string{"-O", "-O0", "-O1", "-O2", "-O3", "-Os", "-Ofast", "-Og", "-Oz", "-O10"},
		[]string{"-Ox", "-O=2", "-O123", "-Ofast=1"}},
	{"optimisation passes",
		[]string{"-ftree-vectorize", "-ftree-parallelize-loops=4", "-fipa-pta", "-fipa-cp-clone", "-falign-functions=32:16",
			"-falign-jumps=1", "-finline-limit=600", "-finline-functions", "-finline", "-funroll-loops", "-fgcse", "-fgcse-after-reload",
			"-fsched-pressure", "-fschedule-insns2", "-foptimize-sibling-calls", "-freorder-blocks-algorithm=stc",
			"-fstrict-aliasing", "-fstrict-flex-arrays=3", "-floop-interchange", "-fvect-cost-model=cheap", "-fvect-cost-model",
			"-fpeel-loops", "-fwhole-program", "-fomit-frame-pointer", "-fconserve-stack"},
		[]string{"-ftree-", "-ftree-x=/a", "-ftree-x=a=b", "-finline-limit=../x", "-falign-functions=@x", "-fipa-x y"}},
	{"floating point",
		[]string{"-ffast-math", "-ffp-contract=fast", "-fexcess-precision=standard", "-fno-math-errno", "-frounding-math"},
		[]string{"-ffp-contract=", "-ffast-math=1"}},
	{"code generation",
		[]string{"-fPIC", "-fpic", "-fPIE", "-fpie", "-fstack-protector", "-fstack-protector-strong", "-fstack-protector-all",
			"-fstack-clash-protection", "-fcf-protection", "-fcf-protection=branch", "-fvisibility=hidden",
			"-fvisibility-inlines-hidden", "-ffunction-sections", "-fdata-sections", "-fexceptions", "-fasynchronous-unwind-tables",
			"-fzero-call-used-regs=used-gpr", "-ftrivial-auto-var-init=zero", "-fpatchable-function-entry=16,16",
			"-ffixed-x18", "-fcall-saved-r12", "-fshort-wchar", "-fcommon", "-ftls-model=initial-exec", "-fpack-struct=4",
			"-fhardened", "-fharden-compares", "-fsplit-stack", "-finstrument-functions", "-fverbose-asm", "-p", "-pg"},
		[]string{"-fPic", "-fstack-protector=1", "-fvisibility=/x", "-ffixed-x=1", "-fpatchable-function-entry=", "-pgx"}},
	{"sanitizers",
		[]string{"-fsanitize=address", "-fsanitize=address,undefined", "-fsanitize=kernel-address", "-fsanitize-recover",
			"-fsanitize-recover=all", "-fno-sanitize-recover=all", "-fno-sanitize=vptr", "-fsanitize-trap=undefined",
			"-fsanitize-address-use-after-scope", "-fsanitize-coverage=trace-pc", "-fasan-shadow-offset=0xdffffc0000000000",
			"-fsanitize-undefined-trap-on-error", "-fsanitize-memory-track-origins=2"},
		[]string{"-fsanitize-blacklist=bl.txt", "-fsanitize-ignorelist=ig.txt", "-fsanitize-coverage-allowlist=a.txt",
			"-fsanitize-coverage-ignorelist=i.txt", "-fsanitize-system-ignorelist=s.txt", "-fsanitize=/x", "-fsanitize-foo"}},
	{"negations",
		[]string{"-fno-common", "-fno-PIE", "-fno-strict-aliasing", "-fno-omit-frame-pointer", "-fno-plt", "-fno-exceptions",
			"-fno-rtti", "-fno-builtin-memcpy", "-fno-color-diagnostics", "-fno-lto", "-fno-profile-arcs", "-fno-stack-usage"},
		[]string{"-fno-", "-fno-x=1", "-fno-x.y", "-fno-x/y"}},
	{"link-time optimisation",
		[]string{"-flto", "-flto=auto", "-flto=jobserver", "-flto=thin", "-flto=8", "-ffat-lto-objects", "-flto-partition=one"},
		[]string{"-flto=", "-flto=/x", "-fltox"}},
	{"languages",
		[]string{"-std=c11", "-std=gnu++17", "-std=c++2b", "-ansi", "-pedantic", "-pedantic-errors", "-trigraphs", "-frtti",
			"-fpermissive", "-fms-extensions", "-fconcepts", "-fcoroutines", "-fchar8_t", "-fsigned-char", "-funsigned-char",
			"-ftemplate-depth=900", "-ftemplate-depth-900", "-fconstexpr-depth=100", "-fopenmp", "-fopenmp=libomp", "-fopenmp-simd",
			"-fopenacc", "-fobjc-arc", "-fblocks", "-fwrapv", "-ftrapv", "-ffreestanding", "-fgnu89-inline"},
		[]string{"-std=", "-std=/x", "-ansix", "-pedanticx", "-fopenmpx"}},
	{"warnings",
		[]string{"-W", "-Wall", "-Wextra", "-Werror", "-Werror=format-security", "-Wno-error=unused", "-Wno-unused-parameter",
			"-Wformat=2", "-Wframe-larger-than=2048", "-Wstack-usage=1024", "-Wc++11-compat", "-Wbidi-chars=unpaired,ucn",
			"-Wpedantic", "-Wlogical-op", "-Wa,--noexecstack", "-w", "-Weverything", "-Wno-unknown-warning-option"},
		[]string{"-Wl,-z,now", "-Wp,-DX", "-Wa", "-Wl", "-Wp", "-Wa,-al", "-W=x", "-Wfoo=/x", "-Wx,y", "-Wfoo=a=b"}},
	{"diagnostics",
		[]string{"-fdiagnostics-color", "-fdiagnostics-color=always", "-fdiagnostics-show-option", "-fdiagnostics-show-caret",
			"-fdiagnostics-show-location=once", "-fdiagnostics-format=json", "-fdiagnostics-format=sarif-stderr",
			"-fmessage-length=0", "-fmax-errors=5", "-fcolor-diagnostics", "-fansi-escape-codes", "-Qunused-arguments",
			"-ferror-limit=19", "-fdiagnostics-parseable-fixits", "-fdiagnostics-urls=never"},
		[]string{"-fdiagnostics-format=json-file", "-fdiagnostics-format=sarif-file", "-fdiagnostics-add-output=sarif",
			"-fdiagnostics-set-output=text:file=x", "-fdiagnostics-show-", "-Qn", "-fcolor-diagnostics=1"}},
	{"reports on stderr",
		[]string{"-ftime-report", "-ftime-report-details", "-ftime-report=per-pass", "-fmem-report", "-fopt-info",
			"-fopt-info-vec", "-fopt-info-vec-missed", "-fstats", "-v"},
		[]string{"-ftime-trace", "-ftime-trace=t.json", "-fopt-info=o.txt", "-fopt-info-vec=o.txt", "-fopt-info-all=/x",
			"-save-stats", "-save-stats=obj", "-vv"}},
	{"debug information",
		[]string{"-g", "-g0", "-g1", "-g3", "-ggdb", "-ggdb3", "-gdwarf", "-gdwarf-4", "-gdwarf-5", "-gdwarf64", "-gz", "-gz=zlib",
			"-gz=zstd", "-gno-column-info", "-gcolumn-info", "-grecord-gcc-switches", "-gno-record-gcc-switches", "-gbtf", "-gctf",
			"-gno-split-dwarf", "-gline-tables-only", "-gstrict-dwarf", "-fdebug-types-section", "-fvar-tracking-assignments",
			"-fdebug-compilation-dir=.", "-ffile-compilation-dir=."},
		[]string{"-gsplit-dwarf", "-gsplit-dwarf=single", "-gmodules", "-g4", "-gdwarf-6", "-gz=/x", "-gembed-source",
			"-ffile-compilation-dir=../x", "-gx"}},
	{"string rewriting",
		[]string{"-fdebug-prefix-map=/home/u=/src", "-ffile-prefix-map=/build/p=.", "-fmacro-prefix-map=./=",
			"-frandom-seed=/abs/out/x.o", "-frandom-seed=x", "-fcanon-prefix-map"},
		[]string{"-fdebug-prefix-map=", "-frandom-seed", "-fprofile-prefix-map=/a=/b", "-fcoverage-prefix-map=/a=/b"}},
	{"target machine",
		[]string{"-m64", "-m32", "-mx32", "-mavx2", "-msse4.2", "-mno-sse", "-mno-red-zone", "-march=x86-64-v3",
			"-march=armv8-a+crc", "-mtune=generic", "-mcpu=cortex-a53", "-mfpmath=sse", "-mcmodel=kernel", "-mabi=lp64",
			"-mstack-protector-guard-symbol=__ref_stack_chk_guard", "-mindirect-branch=thunk-extern", "-mrecord-mcount",
			"-mfentry", "-mpreferred-stack-boundary=3", "-mno-omit-leaf-frame-pointer", "-mtls-dialect=gnu2"},
		[]string{"-mllvm", "-mllvm=-x", "-mllvm-x", "-march=native", "-mtune=native", "-mcpu=native", "-m", "-m=x",
			"-mfoo=/etc/passwd", "-mfoo=../x", "-mfoo=a=b", "-mfoo,bar"}},
	{"driver",
		[]string{"-pipe", "-pthread"},
		[]string{"-pipex", "-pthreads"}},
	{"parameters and assembler (shape rules)",
		[]string{"--param=max-inline-insns-single=10", "-Wa,--noexecstack", "-Wa,--defsym,X=1", "-Wa,-mrelax-relocations=no"},
		[]string{"--param=x/y", "-Wa,-a", "-Wa,-Lofoo", "-Wa,-o,x", "-Wa,@f"}},
}

func TestAllowListFamilies(t *testing.T) {
	for _, fam := range allowFamilies {
		t.Run(fam.name, func(t *testing.T) {
			for _, a := range fam.ok {
				if err := CheckRemoteArgs([]string{a}); err != nil {
					t.Errorf("%q refused: %v", a, err)
				}
				if bad, why := dangerous(a); bad {
					t.Errorf("%q is on the allow list but the oracle calls it dangerous (%s)", a, why)
				}
				// The client sends it.
				p := Classify([]string{"-c", a, "x.c"})
				if !p.Remote || !slices.Equal(p.RemoteArgs, []string{a}) {
					t.Errorf("Classify(-c %s x.c) = remote %v %q (%s), want it sent", a, p.Remote, p.RemoteArgs, p.Reason)
				}
			}
			for _, a := range fam.refused {
				err := CheckRemoteArgs([]string{a})
				var re *RemoteArgError
				if !errors.As(err, &re) || re.Arg != a || re.Index != 0 {
					t.Errorf("%q: got %v, want it refused", a, err)
				}
				// The client does not send it: local with a reason, or
				// (for options the preprocessor or linker consume) kept
				// out of RemoteArgs.
				p := Classify([]string{"-c", a, "x.c"})
				if p.Remote && slices.Contains(p.RemoteArgs, a) {
					t.Errorf("Classify(-c %s x.c) sends it: %q", a, p.RemoteArgs)
				}
			}
		})
	}
}

// refuseList: arguments the farm host must refuse, each family the issue
// names. bad is the argument the error must name. The fuzz targets use
// every entry as a seed.
var refuseList = []struct {
	args []string
	bad  string
}{
	// Code loading, other programs, unchecked pass-through.
	{[]string{"-fplugin=x.so"}, "-fplugin=x.so"},
	{[]string{"-fplugin-arg-x-k=v"}, "-fplugin-arg-x-k=v"},
	{[]string{"-fpass-plugin=x.so"}, "-fpass-plugin=x.so"},
	{[]string{"-mllvm", "-inline-threshold=1"}, "-mllvm"},
	{[]string{"-mllvm=-inline-threshold=1"}, "-mllvm=-inline-threshold=1"},
	{[]string{"-Xclang", "-load"}, "-Xclang"},
	{[]string{"-Xanalyzer", "x"}, "-Xanalyzer"},
	{[]string{"-B/opt/bin"}, "-B/opt/bin"},
	{[]string{"-Bprefix"}, "-Bprefix"},
	{[]string{"-B", "dir"}, "-B"},
	{[]string{"-specs=x.specs"}, "-specs=x.specs"},
	{[]string{"-specs", "x.specs"}, "-specs"},
	{[]string{"--specs=x.specs"}, "--specs=x.specs"},
	{[]string{"-wrapper", "gdb"}, "-wrapper"},
	{[]string{"-fuse-ld=lld"}, "-fuse-ld=lld"},
	{[]string{"@args"}, "@args"},
	// Mode and output: the executor adds them.
	{[]string{"-o", "x.o"}, "-o"},
	{[]string{"-ox.o"}, "-ox.o"},
	{[]string{"-c"}, "-c"},
	{[]string{"-S"}, "-S"},
	{[]string{"-E"}, "-E"},
	{[]string{"-x", "c"}, "-x"},
	{[]string{"-xc"}, "-xc"},
	// Files written.
	{[]string{"-save-temps"}, "-save-temps"},
	{[]string{"-save-temps=obj"}, "-save-temps=obj"},
	{[]string{"--save-temps"}, "--save-temps"},
	{[]string{"-save-stats"}, "-save-stats"},
	{[]string{"-save-stats=obj"}, "-save-stats=obj"},
	{[]string{"-fdump-tree-all"}, "-fdump-tree-all"},
	{[]string{"-fdump-rtl-expand"}, "-fdump-rtl-expand"},
	{[]string{"-fstack-usage"}, "-fstack-usage"},
	{[]string{"-fcallgraph-info"}, "-fcallgraph-info"},
	{[]string{"-fcallgraph-info=su,da"}, "-fcallgraph-info=su,da"},
	{[]string{"-fcrash-diagnostics-dir=d"}, "-fcrash-diagnostics-dir=d"},
	{[]string{"-fdiagnostics-format=json-file"}, "-fdiagnostics-format=json-file"},
	{[]string{"-fdiagnostics-format=sarif-file"}, "-fdiagnostics-format=sarif-file"},
	{[]string{"-fopt-info=o.txt"}, "-fopt-info=o.txt"},
	{[]string{"-fopt-info-vec-missed=o.txt"}, "-fopt-info-vec-missed=o.txt"},
	{[]string{"-ftime-trace"}, "-ftime-trace"},
	{[]string{"-ftime-trace=t.json"}, "-ftime-trace=t.json"},
	{[]string{"-gsplit-dwarf"}, "-gsplit-dwarf"},
	{[]string{"-dA"}, "-dA"},
	{[]string{"-dumpdir", "d"}, "-dumpdir"},
	{[]string{"-aux-info", "x"}, "-aux-info"},
	{[]string{"-Wa,-a"}, "-Wa,-a"},
	{[]string{"-Wa,-adhln=x.lst"}, "-Wa,-adhln=x.lst"},
	{[]string{"-Wa,-al"}, "-Wa,-al"},
	{[]string{"-Xassembler", "-al"}, "-al"},
	{[]string{"-Wa,--MD,x.d"}, "-Wa,--MD,x.d"},
	{[]string{"-Wa,-Lofoo"}, "-Wa,-Lofoo"},
	// Files read: profiles, lists, modules.
	{[]string{"-fprofile-generate"}, "-fprofile-generate"},
	{[]string{"-fprofile-use=x.profdata"}, "-fprofile-use=x.profdata"},
	{[]string{"-fprofile-arcs"}, "-fprofile-arcs"},
	{[]string{"-fprofile-instr-generate"}, "-fprofile-instr-generate"},
	{[]string{"-fprofile-sample-use=x.prof"}, "-fprofile-sample-use=x.prof"},
	{[]string{"-fsanitize-blacklist=bl.txt"}, "-fsanitize-blacklist=bl.txt"},
	{[]string{"-fsanitize-ignorelist=ig.txt"}, "-fsanitize-ignorelist=ig.txt"},
	{[]string{"-fsanitize-coverage-allowlist=a.txt"}, "-fsanitize-coverage-allowlist=a.txt"},
	{[]string{"-fmodules"}, "-fmodules"},
	{[]string{"-fmodules-ts"}, "-fmodules-ts"},
	{[]string{"-fmodule-file=m.pcm"}, "-fmodule-file=m.pcm"},
	{[]string{"-fmodule-mapper=|cmd"}, "-fmodule-mapper=|cmd"},
	{[]string{"-fmodules-cache-path=c"}, "-fmodules-cache-path=c"},
	{[]string{"-fprebuilt-module-path=p"}, "-fprebuilt-module-path=p"},
	{[]string{"-fimplicit-modules"}, "-fimplicit-modules"},
	{[]string{"-gmodules"}, "-gmodules"},
	{[]string{"-fxray-attr-list=x"}, "-fxray-attr-list=x"},
	{[]string{"-fbasic-block-sections=list=x"}, "-fbasic-block-sections=list=x"},
	// The preprocessor (it runs locally; nothing of it is sent).
	{[]string{"-include", "x.h"}, "-include"},
	{[]string{"-includex.h"}, "-includex.h"},
	{[]string{"-imacros", "x.h"}, "-imacros"},
	{[]string{"-isystem", "d"}, "-isystem"},
	{[]string{"-iquote", "d"}, "-iquote"},
	{[]string{"-idirafter", "d"}, "-idirafter"},
	{[]string{"-isysroot", "d"}, "-isysroot"},
	{[]string{"-iplugindir=d"}, "-iplugindir=d"},
	{[]string{"--sysroot=d"}, "--sysroot=d"},
	{[]string{"--sysroot", "d"}, "--sysroot"},
	{[]string{"-I", "d"}, "-I"},
	{[]string{"-Id"}, "-Id"},
	{[]string{"-DX=1"}, "-DX=1"},
	{[]string{"-D", "X"}, "-D"},
	{[]string{"-UX"}, "-UX"},
	{[]string{"-MD"}, "-MD"},
	{[]string{"-MF", "x.d"}, "-MF"},
	{[]string{"-Wp,-MD,x.d"}, "-Wp,-MD,x.d"},
	{[]string{"-Xpreprocessor", "-M"}, "-Xpreprocessor"},
	{[]string{"-undef"}, "-undef"},
	// The linker.
	{[]string{"-Wl,-rpath,/x"}, "-Wl,-rpath,/x"},
	{[]string{"-Xlinker", "x"}, "-Xlinker"},
	{[]string{"-lm"}, "-lm"},
	{[]string{"-L."}, "-L."},
	// The host's CPU.
	{[]string{"-march=native"}, "-march=native"},
	{[]string{"-mtune=native"}, "-mtune=native"},
	{[]string{"-mcpu=native"}, "-mcpu=native"},
}

func TestRefuseList(t *testing.T) {
	for _, c := range refuseList {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			err := CheckRemoteArgs(c.args)
			var re *RemoteArgError
			if !errors.As(err, &re) {
				t.Fatalf("CheckRemoteArgs(%q) = %v, want a *RemoteArgError", c.args, err)
			}
			if re.Arg != c.bad || c.args[re.Index] != re.Arg {
				t.Errorf("error names %d %q, want %q: %v", re.Index, re.Arg, c.bad, err)
			}
			// The oracle knows every entry (otherwise the fuzz targets
			// could not catch it being allowed).
			if i, _ := dangerousArgs(c.args); i < 0 {
				t.Errorf("the oracle does not call %q dangerous", c.args)
			}
			// The client never sends it.
			p := Classify(append([]string{"-c", "x.c"}, c.args...))
			if p.Remote && slices.Contains(p.RemoteArgs, c.bad) {
				t.Errorf("Classify sends %q: RemoteArgs %q", c.bad, p.RemoteArgs)
			}
		})
	}
}

// TestAllowListEntries builds an argument from every entry of the allow
// list and requires the farm host to accept it and the oracle not to call
// it dangerous: an entry added for a dangerous family fails here, without
// the fuzzer.
func TestAllowListEntries(t *testing.T) {
	for i := range allowList {
		r := &allowList[i]
		if r.why == "" {
			t.Errorf("%s: no reason why it is safe", r.name)
		}
		var samples []string
		switch r.kind {
		case exact:
			samples = []string{r.name}
		case joined:
			samples = []string{r.name + "x", r.name + "1"}
		case optJoined:
			samples = []string{r.name, r.name + "=x"}
		case family:
			samples = []string{r.name + "x", r.name + "x=1"}
		case familyNoValue:
			samples = []string{r.name + "x"}
		case level:
			samples = []string{r.name, r.name + "0", r.name + "3"}
		case oneOf:
			for _, v := range r.values {
				samples = append(samples, r.name+v)
			}
		case anyValue:
			samples = []string{r.name + "/a=/b"}
		case optimize:
			samples = []string{r.name, r.name + "2", r.name + "s"}
		case warning:
			samples = []string{r.name, r.name + "all", r.name + "x=1"}
		case machine:
			samples = []string{r.name + "64", r.name + "arch=x"}
		default:
			t.Fatalf("%s: kind %d has no samples", r.name, r.kind)
		}
		for _, a := range samples {
			if err := CheckRemoteArgs([]string{a}); err != nil {
				t.Errorf("entry %s: %q refused: %v", r.name, a, err)
			}
			if bad, why := dangerous(a); bad {
				t.Errorf("entry %s admits %q, which the oracle calls dangerous (%s)", r.name, a, why)
			}
		}
	}
}

// TestRealWorldCommandLines: ordinary flags of real builds still go remote.
func TestRealWorldCommandLines(t *testing.T) {
	cases := []struct{ name, args string }{
		{"gawk", `-DDEFPATH=".:/usr/local/share/awk" -DDEFLIBPATH="/usr/local/lib/gawk" -DSHLIBEXT="so" -DHAVE_CONFIG_H ` +
			`-DGAWK -DLOCALEDIR="/usr/local/share/locale" -I. -g -O2 -DNDEBUG -MT array.o -MD -MP -MF .deps/array.Tpo -c -o array.o array.c`},
		{"gawk extension (libtool)", "-DHAVE_CONFIG_H -I. -I.. -g -O2 -MT filefuncs.lo -MD -MP -MF .deps/filefuncs.Tpo -c filefuncs.c -fPIC -DPIC -o .libs/filefuncs.o"},
		{"CMake Release", "-O3 -DNDEBUG -fPIC -std=gnu11 -MD -MT CMakeFiles/x.dir/x.c.o -MF CMakeFiles/x.dir/x.c.o.d -o CMakeFiles/x.dir/x.c.o -c /src/x.c"},
		{"CMake C++ with IPO", "-O2 -g -DNDEBUG -std=gnu++17 -fvisibility=hidden -fvisibility-inlines-hidden -flto=auto -fno-fat-lto-objects " +
			"-fdiagnostics-color=always -fPIE -pthread -MD -MT a.o -MF a.o.d -o a.o -c /src/a.cpp"},
		{"Meson", "-Ilibfoo.so.p -I. -I.. -fdiagnostics-color=always -D_FILE_OFFSET_BITS=64 -Wall -Winvalid-pch -Wextra -Wpedantic " +
			"-std=c11 -O3 -fPIC -pthread -MD -MQ libfoo.so.p/foo.c.o -MF libfoo.so.p/foo.c.o.d -o libfoo.so.p/foo.c.o -c ../foo.c"},
		{"Debian dpkg-buildflags", "-g -O2 -ffile-prefix-map=/build/pkg-1.0=. -fstack-protector-strong -fstack-clash-protection -Wformat " +
			"-Werror=format-security -fcf-protection -Wdate-time -D_FORTIFY_SOURCE=2 -c x.c -o x.o"},
		{"Fedora (without -specs)", "-O2 -flto=auto -ffat-lto-objects -fexceptions -g -grecord-gcc-switches -pipe -Wall -Wno-complain-wrong-lang " +
			"-Werror=format-security -Wp,-U_FORTIFY_SOURCE,-D_FORTIFY_SOURCE=3 -Wp,-D_GLIBCXX_ASSERTIONS -fstack-protector-strong -m64 " +
			"-march=x86-64 -mtune=generic -fasynchronous-unwind-tables -fstack-clash-protection -fcf-protection -mtls-dialect=gnu2 " +
			"-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -c x.c"},
		{"Arch", "-march=x86-64 -mtune=generic -O2 -pipe -fno-plt -fexceptions -Wp,-D_FORTIFY_SOURCE=3 -Wformat -Werror=format-security " +
			"-fstack-clash-protection -fcf-protection -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -g " +
			"-ffile-prefix-map=/build/pkg/src=/usr/src/debug/pkg -flto=auto -c x.c"},
		{"Linux kernel (x86-64, KASAN, ftrace)", "-Wp,-MMD,fs/.open.o.d -nostdinc -I./arch/x86/include -I./arch/x86/include/generated " +
			"-I./include -I./arch/x86/include/uapi -I./include/uapi -include ./include/linux/compiler-version.h " +
			"-include ./include/linux/kconfig.h -include ./include/linux/compiler_types.h -D__KERNEL__ -fmacro-prefix-map=./= " +
			"-std=gnu11 -fshort-wchar -funsigned-char -fno-common -fno-PIE -fno-strict-aliasing -mno-sse -mno-mmx -mno-sse2 " +
			"-mno-3dnow -mno-avx -fcf-protection=none -m64 -falign-jumps=1 -falign-loops=1 -mno-80387 -mno-fp-ret-in-387 " +
			"-mpreferred-stack-boundary=3 -mskip-rax-setup -mtune=generic -mno-red-zone -mcmodel=kernel " +
			"-mstack-protector-guard-reg=gs -mstack-protector-guard-symbol=__ref_stack_chk_guard -Wno-sign-compare " +
			"-fno-asynchronous-unwind-tables -mindirect-branch=thunk-extern -mindirect-branch-register " +
			"-mindirect-branch-cs-prefix -mfunction-return=thunk-extern -fno-jump-tables -mharden-sls=all " +
			"-fpatchable-function-entry=16,16 -fno-delete-null-pointer-checks -O2 -fno-allow-store-data-races " +
			"-fstack-protector-strong -fno-omit-frame-pointer -fno-optimize-sibling-calls -ftrivial-auto-var-init=zero " +
			"-fno-stack-clash-protection -fzero-call-used-regs=used-gpr -pg -mrecord-mcount -mfentry -DCC_USING_FENTRY " +
			"-falign-functions=16 -fstrict-flex-arrays=3 -fno-strict-overflow -fno-stack-check -fconserve-stack -Wall -Wundef " +
			"-Werror=implicit-function-declaration -Werror=implicit-int -Werror=return-type -Werror=strict-prototypes " +
			"-Wno-format-security -Wno-trigraphs -Wno-frame-address -Wno-address-of-packed-member -Wframe-larger-than=2048 " +
			"-Wno-main -Wvla -Wno-pointer-sign -Wcast-function-type -Wno-stringop-overflow -Wno-array-bounds " +
			"-Wno-alloc-size-larger-than -Wimplicit-fallthrough=5 -Werror=date-time -Werror=incompatible-pointer-types " +
			"-Werror=designated-init -Wenum-conversion -Wextra -Wunused -Wno-unused-but-set-variable -Wno-unused-const-variable " +
			"-Wno-packed-not-aligned -Wno-format-overflow -Wno-format-truncation -Wno-stringop-truncation -Wno-override-init " +
			"-Wno-missing-field-initializers -Wno-type-limits -Wno-shift-negative-value -Wno-maybe-uninitialized -g -gdwarf-5 " +
			"-fsanitize=kernel-address -fasan-shadow-offset=0xdffffc0000000000 --param asan-globals=1 " +
			"--param asan-instrumentation-with-call-threshold=10000 --param asan-stack=1 -fsanitize-coverage=trace-pc " +
			`-DKBUILD_MODFILE="fs/open" -DKBUILD_BASENAME="open" -DKBUILD_MODNAME="open" -D__KBUILD_MODNAME=kmod_open -c -o fs/open.o fs/open.c`},
		{"clang", "-Qunused-arguments -fcolor-diagnostics -Wno-unknown-warning-option -fdebug-compilation-dir=. -ffile-compilation-dir=. " +
			"-gline-tables-only -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize-address-use-after-scope -flto=thin " +
			"-fsplit-lto-unit -fwhole-program-vtables -fvisibility=hidden -std=c++20 -stdlib=libc++ -c a.cpp -o a.o"},
		{"link flags in CFLAGS", "-O2 -static -pie -rdynamic -nostdlib -fuse-ld=lld -Wl,--as-needed -shared -s -c x.c"},
		{"rpm/autotools benchmark line", strings.Join(benchArgs, " ")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Classify(sp(c.args))
			if !p.Remote {
				t.Fatalf("local: %s", p.Reason)
			}
			if i, why := dangerousArgs(p.RemoteArgs); i >= 0 {
				t.Errorf("sends %q (%s)", p.RemoteArgs[i], why)
			}
			for _, a := range p.RemoteArgs {
				if strings.HasPrefix(a, "-D") || strings.HasPrefix(a, "-I") || strings.HasPrefix(a, "-M") ||
					strings.HasPrefix(a, "-include") || strings.HasPrefix(a, "-Wp,") || strings.HasPrefix(a, "-Wl,") ||
					linkOnly[a] || strings.HasPrefix(a, "-fuse-ld=") || strings.HasPrefix(a, "-stdlib=") {
					t.Errorf("sends preprocessor or linker option %q", a)
				}
			}
		})
	}
}
