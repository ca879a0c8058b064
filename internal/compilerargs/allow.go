package compilerargs

import "strings"

// This file is the remote allow list: the only options a compile command
// sent to a farm host may contain. CheckRemoteArgs (run by the farm host
// on what it receives) and Classify (run by the client, which compiles
// locally whatever would be refused) both use it, so the two cannot
// disagree. An option that is not here is not sent; the list is meant to
// grow one reviewed family at a time. docs/security.md explains the families.
//
// An entry is an option name and what may follow it (valueKind). Values
// are deliberately narrow: no kind except anyValue admits '/', '=' (in a
// value), '@', spaces or quotes, so no allowed option can carry a path;
// the anyValue options only set or rewrite strings recorded in the output.
//
// Not here, on purpose (each reads or writes files, loads code or runs a
// program, or is meaningless without a preprocessor or linker): -o -c -S
// -E -x, -D -U -I -i* -M* -Wp, -Xpreprocessor, -Wl, -Xlinker -L -l and the
// link-only flags, -B -specs -wrapper, -fplugin* -fpass-plugin= -mllvm
// -Xclang, @file, -save-temps* -save-stats, -fdump* -fprofile* -fcoverage*
// -fsanitize-*list=, -fmodule* and other module options, -fcrash-
// diagnostics-dir=, -ftime-trace, -fstack-usage, -fcallgraph-info*,
// -gsplit-dwarf, -gmodules, -fopt-info*=FILE, -fdiagnostics-format=*-file,
// -fuse-ld=, -m*=native.

// valueKind says what may follow an allow-list entry's name.
type valueKind uint8

const (
	// exact: nothing; the option is written exactly as the name.
	exact valueKind = iota
	// joined: a word (see isWord), as in -std=gnu11 or -fvisibility=hidden.
	joined
	// optJoined: nothing, or '=' and a word (-flto, -flto=auto).
	optJoined
	// family: a name (see isName), optionally followed by '=' and a word:
	// "-ftree-" admits -ftree-vectorize and -ftree-parallelize-loops=4.
	family
	// familyNoValue: a name and nothing else (-fno-common, -gno-pubnames).
	familyNoValue
	// level: nothing or one digit 0-3 (-g, -g2, -ggdb3).
	level
	// oneOf: one of the entry's values.
	oneOf
	// anyValue: any non-empty string, exempt from the path rule. Only for
	// options that rewrite or hash strings recorded in the output and
	// read or write nothing (the prefix maps, -frandom-seed=).
	anyValue
	// optimize: -O's levels: nothing, s, fast, g, z, or a number.
	optimize
	// warning: -W's names, with an optional "=word" (-Wall, -Wno-unused,
	// -Werror=format-security, -Wformat=2); never -Wa, -Wl, -Wp (the
	// pass-through options, which use a comma).
	warning
	// machine: -m's target options (-m64, -mavx2, -march=x86-64-v3,
	// -mno-red-zone), except -mllvm (options for LLVM's command line,
	// which can write files) and a value of "native" (the farm host's
	// CPU is not the client's).
	machine
)

// allowRule is one entry of the allow list.
type allowRule struct {
	name   string
	kind   valueKind
	values []string // for oneOf
	why    string   // why it is safe; documentation, not used by the code
}

// accepts reports whether rest (the argument after the rule's name) is a
// value this rule admits.
func (r *allowRule) accepts(rest string) bool {
	switch r.kind {
	case exact:
		return rest == ""
	case joined:
		return isWord(rest)
	case optJoined:
		return rest == "" || (rest[0] == '=' && isWord(rest[1:]))
	case family:
		name, val, hasVal := strings.Cut(rest, "=")
		return isName(name) && (!hasVal || isWord(val))
	case familyNoValue:
		return isName(rest)
	case level:
		return rest == "" || (len(rest) == 1 && '0' <= rest[0] && rest[0] <= '3')
	case oneOf:
		for _, v := range r.values {
			if rest == v {
				return true
			}
		}
		return false
	case anyValue:
		return rest != ""
	case optimize:
		switch rest {
		case "", "s", "fast", "g", "z":
			return true
		}
		return len(rest) <= 2 && isDigits(rest)
	case warning:
		name, val, hasVal := strings.Cut(rest, "=")
		if name == "a" || name == "l" || name == "p" {
			return false
		}
		return (name == "" && !hasVal) || (isName(name) && (!hasVal || isWord(val)))
	case machine:
		name, val, hasVal := strings.Cut(rest, "=")
		if strings.HasPrefix(name, "llvm") || !isMachineName(name) {
			return false
		}
		return !hasVal || (isWord(val) && val != "native")
	}
	return false
}

// isName: an option name's characters, [A-Za-z0-9_+-], non-empty
// (-Wc++11-compat, -fno-tree-vectorize).
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}

// isMachineName: a name that may also contain '.' (-msse4.2).
func isMachineName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_' || c == '-' || c == '+' || c == '.') {
			return false
		}
	}
	return true
}

// isWord: an option value, [A-Za-z0-9_+.,:-], non-empty: names, numbers,
// versions, comma-separated lists (-fsanitize=address,undefined) and
// gcc's colon-separated alignments (-falign-functions=32:16). No '/', so
// never a path, and no '=', so never a second option.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_' || c == '-' || c == '+' || c == '.' || c == ',' || c == ':') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// allowList is the remote allow list. Within a group, entries are
// alphabetical. Families (a prefix and a kind) are used only where gcc
// or clang names a group of options by a common prefix none of whose
// members touches a file.
var allowList = []allowRule{
	// Optimisation level and the families of individual optimisation
	// passes: they change the code generated, nothing else.
	{name: "-O", kind: optimize, why: "optimisation level"},
	{name: "-falign-", kind: family, why: "code alignment"},
	{name: "-fallow-store-data-races", why: "optimisation"},
	{name: "-fauto-inc-dec", why: "optimisation"},
	{name: "-fbit-tests", why: "optimisation"},
	{name: "-fbranch-count-reg", why: "optimisation"},
	{name: "-fcaller-saves", why: "optimisation"},
	{name: "-fcode-hoisting", why: "optimisation"},
	{name: "-fcombine-stack-adjustments", why: "optimisation"},
	{name: "-fcompare-elim", why: "optimisation"},
	{name: "-fconserve-stack", why: "optimisation"},
	{name: "-fcprop-registers", why: "optimisation"},
	{name: "-fcrossjumping", why: "optimisation"},
	{name: "-fcse-", kind: family, why: "optimisation"},
	{name: "-fdce", why: "optimisation"},
	{name: "-fdefer-pop", why: "optimisation"},
	{name: "-fdelete-null-pointer-checks", why: "optimisation"},
	{name: "-fdevirtualize", why: "optimisation"},
	{name: "-fdevirtualize-", kind: family, why: "optimisation"},
	{name: "-fdse", why: "optimisation"},
	{name: "-fearly-inlining", why: "optimisation"},
	{name: "-fexpensive-optimizations", why: "optimisation"},
	{name: "-ffinite-loops", why: "optimisation"},
	{name: "-fforward-propagate", why: "optimisation"},
	{name: "-fgcse", why: "optimisation"},
	{name: "-fgcse-", kind: family, why: "optimisation"},
	{name: "-fgraphite", why: "optimisation"},
	{name: "-fgraphite-", kind: family, why: "optimisation"},
	{name: "-fguess-branch-probability", why: "optimisation"},
	{name: "-fhoist-adjacent-loads", why: "optimisation"},
	{name: "-fif-conversion", why: "optimisation"},
	{name: "-fif-conversion2", why: "optimisation"},
	{name: "-finline", why: "optimisation"},
	{name: "-finline-", kind: family, why: "inlining (-finline-functions, -finline-limit=N)"},
	{name: "-fipa-", kind: family, why: "interprocedural optimisation passes"},
	{name: "-fira-", kind: family, why: "register allocation"},
	{name: "-fisolate-erroneous-paths-", kind: family, why: "optimisation"},
	{name: "-fivopts", why: "optimisation"},
	{name: "-fjump-tables", why: "optimisation"},
	{name: "-flive-range-shrinkage", why: "optimisation"},
	{name: "-floop-", kind: family, why: "loop optimisation passes"},
	{name: "-flra-remat", why: "optimisation"},
	{name: "-fmerge-all-constants", why: "optimisation"},
	{name: "-fmerge-constants", why: "optimisation"},
	{name: "-fmodulo-sched", why: "optimisation"},
	{name: "-fmodulo-sched-allow-regmoves", why: "optimisation"},
	{name: "-fmove-loop-invariants", why: "optimisation"},
	{name: "-fomit-frame-pointer", why: "code generation"},
	{name: "-foptimize-", kind: family, why: "optimisation (-foptimize-sibling-calls)"},
	{name: "-fpartial-inlining", why: "optimisation"},
	{name: "-fpeel-loops", why: "optimisation"},
	{name: "-fpeephole", why: "optimisation"},
	{name: "-fpeephole2", why: "optimisation"},
	{name: "-fpredictive-commoning", why: "optimisation"},
	{name: "-fprefetch-loop-arrays", why: "optimisation"},
	{name: "-fprintf-return-value", why: "optimisation"},
	{name: "-free", why: "optimisation"},
	{name: "-frename-registers", why: "optimisation"},
	{name: "-freorder-", kind: family, why: "block and function ordering"},
	{name: "-frerun-cse-after-loop", why: "optimisation"},
	{name: "-fsched-", kind: family, why: "instruction scheduling"},
	{name: "-fsched2-", kind: family, why: "instruction scheduling"},
	{name: "-fschedule-", kind: family, why: "instruction scheduling"},
	{name: "-fsection-anchors", why: "optimisation"},
	{name: "-fsel-sched-", kind: family, why: "instruction scheduling"},
	{name: "-fselective-scheduling", why: "instruction scheduling"},
	{name: "-fselective-scheduling2", why: "instruction scheduling"},
	{name: "-fshrink-wrap", why: "optimisation"},
	{name: "-fshrink-wrap-separate", why: "optimisation"},
	{name: "-fsimd-cost-model=", kind: joined, why: "vectoriser cost model"},
	{name: "-fsplit-ivs-in-unroller", why: "optimisation"},
	{name: "-fsplit-loops", why: "optimisation"},
	{name: "-fsplit-paths", why: "optimisation"},
	{name: "-fsplit-wide-types", why: "optimisation"},
	{name: "-fssa-", kind: family, why: "optimisation (-fssa-phiopt)"},
	{name: "-fstdarg-opt", why: "optimisation"},
	{name: "-fstore-merging", why: "optimisation"},
	{name: "-fstrict-", kind: family, why: "language assumptions the optimiser may make (-fstrict-aliasing, -fstrict-overflow, -fstrict-flex-arrays=3)"},
	{name: "-fthread-jumps", why: "optimisation"},
	{name: "-ftoplevel-reorder", why: "optimisation"},
	{name: "-ftracer", why: "optimisation"},
	{name: "-ftree-", kind: family, why: "tree-level optimisation passes (-ftree-vectorize)"},
	{name: "-funroll-all-loops", why: "optimisation"},
	{name: "-funroll-loops", why: "optimisation"},
	{name: "-funswitch-loops", why: "optimisation"},
	{name: "-fvariable-expansion-in-unroller", why: "optimisation"},
	{name: "-fvect-cost-model", kind: optJoined, why: "vectoriser cost model"},
	{name: "-fversion-loops-for-strides", why: "optimisation"},
	{name: "-fweb", why: "optimisation"},
	{name: "-fwhole-program", why: "optimisation (within the one translation unit)"},

	// Floating point semantics.
	{name: "-fapprox-func", why: "floating point"},
	{name: "-fassociative-math", why: "floating point"},
	{name: "-fcx-fortran-rules", why: "floating point"},
	{name: "-fcx-limited-range", why: "floating point"},
	{name: "-fdenormal-fp-math=", kind: joined, why: "floating point (clang)"},
	{name: "-fexcess-precision=", kind: joined, why: "floating point"},
	{name: "-ffast-math", why: "floating point"},
	{name: "-ffinite-math-only", why: "floating point"},
	{name: "-ffloat-store", why: "floating point"},
	{name: "-ffp-contract=", kind: joined, why: "floating point"},
	{name: "-ffp-exception-behavior=", kind: joined, why: "floating point (clang)"},
	{name: "-ffp-int-builtin-inexact", why: "floating point"},
	{name: "-ffp-model=", kind: joined, why: "floating point (clang)"},
	{name: "-fhonor-infinities", why: "floating point (clang)"},
	{name: "-fhonor-nans", why: "floating point (clang)"},
	{name: "-fmath-errno", why: "floating point"},
	{name: "-fpermitted-flt-eval-methods=", kind: joined, why: "floating point"},
	{name: "-freciprocal-math", why: "floating point"},
	{name: "-frounding-math", why: "floating point"},
	{name: "-fsignaling-nans", why: "floating point"},
	{name: "-fsigned-zeros", why: "floating point"},
	{name: "-fsingle-precision-constant", why: "floating point"},
	{name: "-ftrapping-math", why: "floating point"},
	{name: "-funsafe-math-optimizations", why: "floating point"},

	// Code generation and ABI.
	{name: "-fPIC", why: "position-independent code"},
	{name: "-fPIE", why: "position-independent code"},
	{name: "-fasynchronous-unwind-tables", why: "unwind tables in the object"},
	{name: "-fcall-saved-", kind: familyNoValue, why: "register usage (-fcall-saved-REG)"},
	{name: "-fcall-used-", kind: familyNoValue, why: "register usage (-fcall-used-REG)"},
	{name: "-fcf-protection", kind: optJoined, why: "control-flow protection instrumentation"},
	{name: "-fcommon", why: "tentative definitions as common symbols"},
	{name: "-fdata-sections", why: "one section per object"},
	{name: "-fexceptions", why: "exception handling code"},
	{name: "-ffixed-", kind: familyNoValue, why: "register usage (-ffixed-REG, the arm64 kernel's -ffixed-x18)"},
	{name: "-ffunction-sections", why: "one section per function"},
	{name: "-fharden-", kind: family, why: "hardening instrumentation"},
	{name: "-fhardened", why: "hardening instrumentation (gcc 14)"},
	{name: "-finstrument-functions", why: "calls at function entry and exit"},
	{name: "-finstrument-functions-after-inlining", why: "calls at function entry and exit (clang)"},
	{name: "-finstrument-functions-exclude-file-list=", kind: joined, why: "substrings matched against recorded file names; reads nothing"},
	{name: "-finstrument-functions-exclude-function-list=", kind: joined, why: "function names"},
	{name: "-fkeep-inline-functions", why: "code generation"},
	{name: "-fkeep-static-consts", why: "code generation"},
	{name: "-fkeep-static-functions", why: "code generation"},
	{name: "-fleading-underscore", why: "symbol naming"},
	{name: "-fmin-function-alignment=", kind: joined, why: "code alignment"},
	{name: "-fnon-call-exceptions", why: "exception handling code"},
	{name: "-fpack-struct", kind: optJoined, why: "structure layout"},
	{name: "-fpatchable-function-entry=", kind: joined, why: "NOPs at function entry (the kernel's ftrace)"},
	{name: "-fpcc-struct-return", why: "ABI"},
	{name: "-fpic", why: "position-independent code"},
	{name: "-fpie", why: "position-independent code"},
	{name: "-freg-struct-return", why: "ABI"},
	{name: "-fsemantic-interposition", why: "code generation"},
	{name: "-fshort-enums", why: "ABI"},
	{name: "-fshort-wchar", why: "ABI"},
	{name: "-fsplit-stack", why: "code generation"},
	{name: "-fstack-check", kind: optJoined, why: "stack probing code"},
	{name: "-fstack-clash-protection", why: "stack probing code"},
	{name: "-fstack-limit-register=", kind: joined, why: "stack limit check against a register"},
	{name: "-fstack-limit-symbol=", kind: joined, why: "stack limit check against a symbol"},
	{name: "-fstack-protector", why: "stack canaries"},
	{name: "-fstack-protector-all", why: "stack canaries"},
	{name: "-fstack-protector-explicit", why: "stack canaries"},
	{name: "-fstack-protector-strong", why: "stack canaries"},
	{name: "-fstack-reuse=", kind: joined, why: "stack slot sharing"},
	{name: "-ftls-model=", kind: joined, why: "thread-local storage access model"},
	{name: "-ftrivial-auto-var-init", kind: optJoined, why: "initialisation of automatic variables"},
	{name: "-ftrivial-auto-var-init-stop-after=", kind: joined, why: "initialisation of automatic variables (clang)"},
	{name: "-funique-section-names", why: "section naming (clang)"},
	{name: "-funwind-tables", why: "unwind tables in the object"},
	{name: "-fverbose-asm", why: "comments in the assembler output"},
	{name: "-fvisibility", kind: optJoined, why: "default symbol visibility"},
	{name: "-fvisibility-global-new-delete-hidden", why: "symbol visibility (clang)"},
	{name: "-fvisibility-inlines-hidden", why: "symbol visibility"},
	{name: "-fvisibility-ms-compat", why: "symbol visibility"},
	{name: "-fzero-call-used-regs=", kind: joined, why: "register clearing on return"},
	{name: "-fzero-init-padding-bits=", kind: joined, why: "initialisation of padding"},
	{name: "-fzero-initialized-in-bss", why: "data placement"},
	{name: "-p", why: "profiling calls to mcount (the profile is written when the program runs, not when it compiles)"},
	{name: "-pg", why: "profiling calls to mcount (as -p)"},

	// Sanitizers: compile-time instrumentation. The options that name
	// a file (-fsanitize-blacklist=, -fsanitize-ignorelist=,
	// -fsanitize-coverage-allowlist= ...) are not here.
	{name: "-fasan-shadow-offset=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fsanitize=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-destructor=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-field-padding=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-globals-dead-stripping", why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-poison-custom-array-cookie", why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-use-after-return=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-use-after-scope", why: "sanitizer instrumentation"},
	{name: "-fsanitize-address-use-odr-indicator", why: "sanitizer instrumentation"},
	{name: "-fsanitize-cfi-canonical-jump-tables", why: "sanitizer instrumentation"},
	{name: "-fsanitize-cfi-cross-dso", why: "sanitizer instrumentation"},
	{name: "-fsanitize-cfi-icall-generalize-pointers", why: "sanitizer instrumentation"},
	{name: "-fsanitize-coverage=", kind: joined, why: "coverage instrumentation for fuzzers (the kernel's kcov); writes nothing"},
	{name: "-fsanitize-memory-track-origins", kind: optJoined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-memory-use-after-dtor", why: "sanitizer instrumentation"},
	{name: "-fsanitize-minimal-runtime", why: "sanitizer instrumentation"},
	{name: "-fsanitize-recover", kind: optJoined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-stats", why: "sanitizer instrumentation"},
	{name: "-fsanitize-trap", kind: optJoined, why: "sanitizer instrumentation"},
	{name: "-fsanitize-undefined-trap-on-error", why: "sanitizer instrumentation"},

	// Negations turn a feature off and never name a file; the few that
	// take a value are listed with theirs.
	{name: "-fno-", kind: familyNoValue, why: "turns an -f feature off"},
	{name: "-fno-sanitize=", kind: joined, why: "turns sanitizers off"},
	{name: "-fno-sanitize-recover=", kind: joined, why: "sanitizer instrumentation"},
	{name: "-fno-sanitize-trap=", kind: joined, why: "sanitizer instrumentation"},

	// Link-time optimisation: the compile writes IR into the object and
	// nothing else. The value (auto, jobserver, thin, N) only matters to
	// the link, which runs locally.
	{name: "-ffat-lto-objects", why: "LTO object contents"},
	{name: "-flto", kind: optJoined, why: "IR in the object"},
	{name: "-flto-compression-level=", kind: joined, why: "IR compression"},
	{name: "-flto-partition=", kind: joined, why: "LTO partitioning"},
	{name: "-fsplit-lto-unit", why: "LTO object contents (clang)"},
	{name: "-fwhole-program-vtables", why: "LTO devirtualisation (clang)"},

	// Languages and their dialects.
	{name: "-ansi", why: "language standard"},
	{name: "-faligned-new", kind: optJoined, why: "C++ language"},
	{name: "-fabi-compat-version=", kind: joined, why: "C++ ABI"},
	{name: "-fabi-version=", kind: joined, why: "C++ ABI"},
	{name: "-fblocks", why: "language extension (clang)"},
	{name: "-fbuiltin", why: "language"},
	{name: "-fchar8_t", why: "C++ language"},
	{name: "-fcheck-new", why: "C++ language"},
	{name: "-fcomplete-member-pointers", why: "C++ language (clang)"},
	{name: "-fconcepts", why: "C++ language"},
	{name: "-fconcepts-", kind: family, why: "C++ language (-fconcepts-ts, -fconcepts-diagnostics-depth=N)"},
	{name: "-fconstant-cfstrings", why: "Objective-C language"},
	{name: "-fconstant-string-class=", kind: joined, why: "Objective-C language"},
	{name: "-fconstexpr-", kind: family, why: "C++ constant evaluation limits (-fconstexpr-depth=N)"},
	{name: "-fcoroutines", why: "C++ language"},
	{name: "-fcxx-exceptions", why: "C++ exceptions (clang)"},
	{name: "-fdeclone-ctor-dtor", why: "C++ code generation"},
	{name: "-fdeclspec", why: "language extension (clang)"},
	{name: "-fdelayed-template-parsing", why: "C++ language (clang)"},
	{name: "-fdollars-in-identifiers", why: "language"},
	{name: "-felide-constructors", why: "C++ language"},
	{name: "-fenforce-eh-specs", why: "C++ language"},
	{name: "-fext-numeric-literals", why: "C++ language"},
	{name: "-fextended-identifiers", why: "language"},
	{name: "-fforce-emit-vtables", why: "C++ code generation (clang)"},
	{name: "-ffreestanding", why: "language"},
	{name: "-fgnu-keywords", why: "language"},
	{name: "-fgnu-runtime", why: "Objective-C runtime"},
	{name: "-fgnu-tm", why: "transactional memory"},
	{name: "-fgnu-unique", why: "C++ symbol binding"},
	{name: "-fgnu89-inline", why: "C inline semantics"},
	{name: "-fhosted", why: "language"},
	{name: "-fident", why: "the .ident directive"},
	{name: "-fimplicit-constexpr", why: "C++ language"},
	{name: "-fimplicit-inline-templates", why: "C++ language"},
	{name: "-fimplicit-templates", why: "C++ language"},
	{name: "-fms-compatibility", why: "language extension (clang)"},
	{name: "-fms-compatibility-version=", kind: joined, why: "language extension (clang)"},
	{name: "-fms-extensions", why: "language extension"},
	{name: "-fnew-ttp-matching", why: "C++ language"},
	{name: "-fnext-runtime", why: "Objective-C runtime"},
	{name: "-fnothrow-opt", why: "C++ language"},
	{name: "-fobjc-", kind: family, why: "Objective-C language (-fobjc-arc, -fobjc-exceptions)"},
	{name: "-fopenacc", why: "OpenACC pragmas (the runtime is linked locally)"},
	{name: "-fopenmp", kind: optJoined, why: "OpenMP pragmas (libgomp is linked locally)"},
	{name: "-fopenmp-simd", why: "OpenMP SIMD pragmas"},
	{name: "-fpermissive", why: "C++ diagnostics"},
	{name: "-fplan9-extensions", why: "language extension"},
	{name: "-fpretty-templates", why: "C++ diagnostics"},
	{name: "-frtti", why: "C++ run-time type information"},
	{name: "-fsigned-bitfields", why: "language"},
	{name: "-fsigned-char", why: "language"},
	{name: "-fsized-deallocation", why: "C++ language"},
	{name: "-fstrong-eval-order", kind: optJoined, why: "C++ language"},
	{name: "-ftemplate-backtrace-limit=", kind: joined, why: "C++ diagnostics"},
	{name: "-ftemplate-depth-", kind: joined, why: "C++ instantiation limit (old spelling)"},
	{name: "-ftemplate-depth=", kind: joined, why: "C++ instantiation limit"},
	{name: "-fthreadsafe-statics", why: "C++ code generation"},
	{name: "-ftrapv", why: "overflow traps"},
	{name: "-funsigned-bitfields", why: "language"},
	{name: "-funsigned-char", why: "language"},
	{name: "-fuse-cxa-atexit", why: "C++ code generation"},
	{name: "-fwrapv", why: "signed overflow semantics"},
	{name: "-fwrapv-pointer", why: "pointer overflow semantics"},
	{name: "-pedantic", why: "ISO diagnostics"},
	{name: "-pedantic-errors", why: "ISO diagnostics"},
	{name: "-std=", kind: joined, why: "language standard"},
	{name: "-trigraphs", why: "language standard"},

	// Warnings and diagnostics: they change what is printed on stderr.
	{name: "-W", kind: warning, why: "warnings (not -Wa, -Wl, -Wp: those pass options on)"},
	{name: "-fansi-escape-codes", why: "diagnostics (clang)"},
	{name: "-fbracket-depth=", kind: joined, why: "parser limit (clang)"},
	{name: "-fcaret-diagnostics", why: "diagnostics (clang)"},
	{name: "-fcolor-diagnostics", why: "diagnostics (clang)"},
	{name: "-fdiagnostics-absolute-paths", why: "diagnostics (clang)"},
	{name: "-fdiagnostics-color", kind: optJoined, why: "diagnostics"},
	{name: "-fdiagnostics-column-origin=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-column-unit=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-escape-format=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-fixit-info", why: "diagnostics (clang)"},
	{name: "-fdiagnostics-format=", kind: oneOf, values: []string{"text", "json", "json-stderr", "sarif-stderr", "clang", "msvc", "vi"},
		why: "diagnostics format on stderr (not json-file, sarif-file: they write files)"},
	{name: "-fdiagnostics-generate-patch", why: "diagnostics (the patch goes to stderr)"},
	{name: "-fdiagnostics-minimum-margin-width=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-parseable-fixits", why: "diagnostics"},
	{name: "-fdiagnostics-path-format=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-plain-output", why: "diagnostics"},
	{name: "-fdiagnostics-print-source-range-info", why: "diagnostics (clang)"},
	{name: "-fdiagnostics-show-", kind: family, why: "diagnostics (-fdiagnostics-show-option, -fdiagnostics-show-caret ...)"},
	{name: "-fdiagnostics-text-art-charset=", kind: joined, why: "diagnostics"},
	{name: "-fdiagnostics-urls", kind: optJoined, why: "diagnostics"},
	{name: "-felide-type", why: "diagnostics (clang)"},
	{name: "-ferror-limit=", kind: joined, why: "diagnostics (clang)"},
	{name: "-fmacro-backtrace-limit=", kind: joined, why: "diagnostics"},
	{name: "-fmax-errors=", kind: joined, why: "diagnostics"},
	{name: "-fmessage-length=", kind: joined, why: "diagnostics"},
	{name: "-fshow-column", why: "diagnostics"},
	{name: "-fshow-source-location", why: "diagnostics (clang)"},
	{name: "-fspell-checking-limit=", kind: joined, why: "diagnostics (clang)"},
	{name: "-w", why: "no warnings"},
	{name: "-Qunused-arguments", why: "no warnings about unused arguments (clang)"},

	// Reports printed on stderr (nothing is written to a file).
	{name: "-fmem-report", why: "memory statistics on stderr"},
	{name: "-fmem-report-wpa", why: "memory statistics on stderr"},
	{name: "-fopt-info", why: "optimisation notes on stderr"},
	{name: "-fopt-info-", kind: familyNoValue, why: "optimisation notes on stderr (never -fopt-info...=FILE)"},
	{name: "-fstats", why: "C++ statistics on stderr"},
	{name: "-ftime-report", kind: optJoined, why: "pass timings on stderr (not -ftime-trace, which writes a file)"},
	{name: "-ftime-report-details", why: "pass timings on stderr"},
	{name: "-v", why: "the driver's commands and version on stderr"},

	// Debug information: levels and formats, written into the object.
	// Not -gsplit-dwarf (writes a .dwo beside the output) nor -gmodules
	// (reads module caches).
	{name: "-g", kind: level, why: "debug information level"},
	{name: "-gas-loc-support", why: "debug information"},
	{name: "-gas-locview-support", why: "debug information"},
	{name: "-gbtf", why: "debug information format"},
	{name: "-gcodeview", why: "debug information format (clang)"},
	{name: "-gcolumn-info", why: "debug information"},
	{name: "-gctf", kind: level, why: "debug information format"},
	{name: "-gdescribe-dies", why: "debug information"},
	{name: "-gdwarf", why: "debug information format"},
	{name: "-gdwarf-", kind: oneOf, values: []string{"2", "3", "4", "5"}, why: "DWARF version"},
	{name: "-gdwarf32", why: "DWARF format"},
	{name: "-gdwarf64", why: "DWARF format"},
	{name: "-gfull", why: "debug information (clang)"},
	{name: "-ggdb", kind: level, why: "debug information level"},
	{name: "-ggnu-pubnames", why: "debug information"},
	{name: "-ginline-points", why: "debug information"},
	{name: "-ginternal-reset-location-views", why: "debug information"},
	{name: "-gline-directives-only", why: "debug information (clang)"},
	{name: "-gline-tables-only", why: "debug information (clang)"},
	{name: "-gmlt", why: "debug information (clang)"},
	{name: "-gno-", kind: familyNoValue, why: "turns a debug information feature off"},
	{name: "-gpubnames", why: "debug information"},
	{name: "-grecord-gcc-switches", why: "the command line in the debug information"},
	{name: "-gsimple-template-names", kind: optJoined, why: "debug information (clang)"},
	{name: "-gstatement-frontiers", why: "debug information"},
	{name: "-gstrict-dwarf", why: "debug information"},
	{name: "-gtoggle", why: "debug information"},
	{name: "-gused", why: "debug information (clang)"},
	{name: "-gvariable-location-views", kind: optJoined, why: "debug information"},
	{name: "-gz", kind: optJoined, why: "compressed debug sections (-gz=zlib)"},
	{name: "-fdebug-macro", why: "debug information (clang)"},
	{name: "-fdebug-types-section", why: "debug information"},
	{name: "-fdwarf2-cfi-asm", why: "debug information"},
	{name: "-feliminate-unused-debug-symbols", why: "debug information"},
	{name: "-feliminate-unused-debug-types", why: "debug information"},
	{name: "-femit-class-debug-always", why: "debug information"},
	{name: "-ffile-compilation-dir=", kind: joined, why: "the recorded compilation directory, a name such as \".\" (clang)"},
	{name: "-fmerge-debug-strings", why: "debug information"},
	{name: "-frecord-gcc-switches", why: "the command line in the object"},
	{name: "-fstandalone-debug", why: "debug information (clang)"},
	{name: "-fvar-tracking", why: "debug information"},
	{name: "-fvar-tracking-assignments", why: "debug information"},

	// String rewriting: these values are paths, but they are only
	// matched against and substituted into names recorded in the output
	// (or hashed): nothing is opened.
	{name: "-fcanon-prefix-map", why: "how the prefix maps match"},
	// dcc adds -fdebug-compilation-dir=CWD to clang's -g jobs, so that the
	// object records the engineer's directory, not the host's job directory.
	{name: "-fdebug-compilation-dir=", kind: anyValue, why: "the recorded compilation directory (clang)"},
	{name: "-fdebug-prefix-map=", kind: anyValue, why: "rewrites recorded paths"},
	{name: "-ffile-prefix-map=", kind: anyValue, why: "rewrites recorded paths"},
	{name: "-fmacro-prefix-map=", kind: anyValue, why: "rewrites __FILE__ paths"},
	{name: "-frandom-seed=", kind: anyValue, why: "a string hashed into symbol names"},

	// Target machine options: instruction sets, tuning, code models,
	// ABIs (-m64, -mavx2, -march=x86-64-v3, -mno-red-zone, -mcmodel=kernel).
	{name: "-m", kind: machine, why: "target machine options (never -mllvm, never =native)"},

	// The driver.
	{name: "-pipe", why: "pipes instead of temporary files between the compiler's passes"},
	{name: "-pthread", why: "defines _REENTRANT (already applied by the local preprocessor) and links libpthread (locally)"},
}

// allowIndex finds an argument's allow-list entry without trying them
// all: exact entries by map, the others bucketed like ruleIndex by their
// second byte or, for "-f", their third.
type allowIndex struct {
	exact map[string]*allowRule
	byOpt [256][]*allowRule
	byF   [256][]*allowRule
}

var allowed = newAllowIndex(allowList)

func newAllowIndex(rules []allowRule) *allowIndex {
	x := &allowIndex{exact: make(map[string]*allowRule)}
	for i := range rules {
		r := &rules[i]
		if len(r.name) < 2 || r.name[0] != '-' || (r.name[1] == 'f' && len(r.name) < 3) {
			panic("compilerargs: bad allow rule " + r.name)
		}
		switch {
		case r.kind == exact:
			if x.exact[r.name] != nil {
				panic("compilerargs: duplicate allow rule " + r.name)
			}
			x.exact[r.name] = r
		case r.name[1] == 'f':
			x.byF[r.name[2]] = append(x.byF[r.name[2]], r)
		default:
			x.byOpt[r.name[1]] = append(x.byOpt[r.name[1]], r)
		}
	}
	return x
}

// find returns the entry that admits a, or nil.
func (x *allowIndex) find(a string) *allowRule {
	if r := x.exact[a]; r != nil {
		return r
	}
	if len(a) < 2 || a[0] != '-' {
		return nil
	}
	list := x.byOpt[a[1]]
	if a[1] == 'f' {
		if len(a) < 3 {
			return nil
		}
		list = x.byF[a[2]]
	}
	for _, r := range list {
		if strings.HasPrefix(a, r.name) && r.accepts(a[len(r.name):]) {
			return r
		}
	}
	return nil
}
