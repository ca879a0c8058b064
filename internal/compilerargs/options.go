package compilerargs

import "strings"

// This file is the package's knowledge about gcc's options. It is
// deliberately data: the two users (Classify and CheckRemoteArgs) are
// small loops over these tables.

// role says where an option goes when a job is split into a local
// preprocessing command and a remote compile command.
type role uint8

const (
	// roleBoth: a compile option, kept in both commands (-O2, -g, -fPIC ...).
	// This is the default for anything not otherwise known: keeping an
	// option in the preprocess command is the safe direction, and the
	// remote command is sent only if every option in it is on the remote
	// allow list (allow.go); otherwise the job compiles locally.
	roleBoth role = iota
	// roleCpp: only matters to the preprocessor (-D, -I, -include, -M*,
	// -Wp,...). Kept in the preprocess command, dropped from the remote one.
	roleCpp
	// roleLink: only matters to the linker (-L, -l, -Wl,...). gcc -c and
	// gcc -E both ignore it; it is kept locally and never sent.
	roleLink
	// roleOutput: -o. Dropped from both commands.
	roleOutput
	// roleLang: -x. Kept for preprocessing, dropped remotely (the
	// executor names the shipped file by PreprocessedExt instead).
	roleLang
	// roleAction: -c / -S. Dropped from both (the preprocess command gets
	// -E, the executor adds -c or -S remotely).
	roleAction
	// roleLocal: the job must run locally.
	roleLocal
)

// sepOpt describes an option that takes the next argument as its value
// when written alone ("-I dir"). Most of these also have a joined form
// ("-Idir"), recognised by prefix in classifyOption.
type sepOpt struct {
	role   role
	reason string // for roleLocal
}

// separateArg lists gcc's options that consume the following argument.
// Their values must never be mistaken for a source file.
var separateArg = map[string]sepOpt{
	"-o": {role: roleOutput},
	"-x": {role: roleLang},

	// Preprocessor options (c.opt: Joined Separate).
	"-D":                 {role: roleCpp},
	"-U":                 {role: roleCpp},
	"-I":                 {role: roleCpp},
	"-A":                 {role: roleCpp},
	"-F":                 {role: roleCpp},
	"-include":           {role: roleCpp},
	"-imacros":           {role: roleCpp},
	"-isystem":           {role: roleCpp},
	"-iquote":            {role: roleCpp},
	"-idirafter":         {role: roleCpp},
	"-iprefix":           {role: roleCpp},
	"-iwithprefix":       {role: roleCpp},
	"-iwithprefixbefore": {role: roleCpp},
	"-isysroot":          {role: roleCpp},
	"-imultilib":         {role: roleCpp},
	"-imultiarch":        {role: roleCpp},
	"-iframework":        {role: roleCpp},
	"-MF":                {role: roleCpp},
	"-MT":                {role: roleCpp},
	"-MQ":                {role: roleCpp},
	"-Xpreprocessor":     {role: roleCpp},
	"--sysroot":          {role: roleCpp},

	// Passed to the compiler / assembler.
	"--param":     {role: roleBoth},
	"-Xassembler": {role: roleBoth},

	// Linker options (ignored with -c).
	"-Xlinker": {role: roleLink},
	"-L":       {role: roleLink},
	"-l":       {role: roleLink},
	"-u":       {role: roleLink},
	"-T":       {role: roleLink},
	"-z":       {role: roleLink},
	"-e":       {role: roleLink},

	// clang's options with a separate value that are not on the remote
	// allow list: consuming the value keeps it from being taken for a
	// source, and the reason names the option.
	"-mllvm":  {role: roleLocal, reason: notAllowedReason("-mllvm")},
	"-target": {role: roleLocal, reason: notAllowedReason("-target")},

	// Options that name files or programs: always local.
	"-aux-info":     {role: roleLocal, reason: "-aux-info"},
	"-dumpbase":     {role: roleLocal, reason: "-dumpbase"},
	"-dumpbase-ext": {role: roleLocal, reason: "-dumpbase"},
	"-dumpdir":      {role: roleLocal, reason: "-dumpbase"},
	"-specs":        {role: roleLocal, reason: "-specs"},
	"-wrapper":      {role: roleLocal, reason: "-wrapper"},
	"-B":            {role: roleLocal, reason: "-B"},
}

// linkOnly are flags only the link step reads: gcc -c hands none of them
// to cc1 or as (TestLinkOnlyFlagsDoNotReachTheCompiler checks this against
// the real gcc). Like -L and -Wl, they stay in the preprocess command
// (gcc -E ignores them) and are never sent. -fuse-ld= and
// -fuse-linker-plugin, handled in fOption, are the same except that gcc
// records them in DW_AT_producer with -g.
var linkOnly = map[string]bool{
	"-static": true, "-static-pie": true, "-shared": true, "-s": true, "-symbolic": true,
	"-rdynamic": true, "-r": true, "-pie": true, "-no-pie": true,
	"-static-libgcc": true, "-shared-libgcc": true, "-static-libstdc++": true,
	"-static-libasan": true, "-static-libtsan": true, "-static-liblsan": true, "-static-libubsan": true,
	"-nostdlib": true, "-nostartfiles": true, "-nodefaultlibs": true, "-nolibc": true,
}

// prefixRule matches an option by exact name or by prefix.
type prefixRule struct {
	name   string
	prefix bool   // match name as a prefix (otherwise exactly)
	reason string // Plan.Reason when the rule forces a local compile
}

func (r prefixRule) match(a string) bool {
	if r.prefix {
		return strings.HasPrefix(a, r.name)
	}
	return a == r.name
}

// ruleIndex finds the first matching rule of a list without trying them
// all: a rule can only match an argument that starts with its name, so
// rules are bucketed by their second byte ("-d...") or, for the many "-f"
// rules, by their third byte. Order within a bucket is the list's order.
type ruleIndex struct {
	byOpt [256][]prefixRule // by name[1], rules not starting with "-f"
	byF   [256][]prefixRule // by name[2], rules starting with "-f"
}

func newRuleIndex(rules []prefixRule) *ruleIndex {
	x := new(ruleIndex)
	for _, r := range rules {
		if len(r.name) < 2 || r.name[0] != '-' || (r.name[1] == 'f' && len(r.name) < 3) {
			panic("compilerargs: bad rule " + r.name)
		}
		if r.name[1] == 'f' {
			x.byF[r.name[2]] = append(x.byF[r.name[2]], r)
		} else {
			x.byOpt[r.name[1]] = append(x.byOpt[r.name[1]], r)
		}
	}
	return x
}

// find returns the first rule matching a.
func (x *ruleIndex) find(a string) (prefixRule, bool) {
	if len(a) < 2 {
		return prefixRule{}, false
	}
	list := x.byOpt[a[1]]
	if a[1] == 'f' {
		if len(a) < 3 {
			return prefixRule{}, false
		}
		list = x.byF[a[2]]
	}
	for _, r := range list {
		if r.match(a) {
			return r, true
		}
	}
	return prefixRule{}, false
}

var (
	localFIndex  = newRuleIndex(localF)
	refusalIndex = newRuleIndex(refusalWhy)
)

// localF lists the -f options that keep a job local: they read or write
// files beside the source or output (profiles, dumps, coverage notes), load
// code (plugins), or change what the preprocessor writes so that the
// two-step compile would differ from a one-step one.
var localF = []prefixRule{
	{"-fprofile-arcs", false, "-fprofile-arcs"},
	{"-fprofile-generate", true, "-fprofile-generate"},
	{"-fprofile-use", true, "-fprofile-use"},
	{"-fprofile-instr-", true, "-fprofile-instr"},
	{"-fprofile", true, "-fprofile"}, // -fprofile-dir, -fprofile-update, ...
	{"-fauto-profile", true, "-fauto-profile"},
	{"-fbranch-probabilities", false, "-fbranch-probabilities"}, // reads .gcda
	{"-ftest-coverage", false, "-ftest-coverage"},
	{"-fcoverage", true, "-fcoverage"},
	{"-frepo", false, "-frepo"},
	{"-fplugin", true, "-fplugin"},
	{"-fdump", true, "-fdump"},
	{"-fstack-usage", false, "-fstack-usage"},
	{"-fcallgraph-info", true, "-fcallgraph-info"},
	{"-fcompare-debug", true, "-fcompare-debug"},
	{"-fsave-optimization-record", true, "-fsave-optimization-record"},
	{"-fdeps-", true, "-fdeps"},
	{"-fmodule", true, "-fmodules"}, // C++ modules: CMI files, mapper programs
	{"-fself-test", true, "-fself-test"},
	{"-fdiagnostics-add-output", true, "-fdiagnostics-output"},
	{"-fdiagnostics-set-output", true, "-fdiagnostics-output"},
	{"-fsyntax-only", false, "-fsyntax-only"},
	{"-fpreprocessed", false, "-fpreprocessed"},
	{"-fdirectives-only", false, "-fdirectives-only"},
	{"-fpch-preprocess", false, "-fpch-preprocess"},
	{"-fdebug-cpp", false, "-fdebug-cpp"},
	// The -E output is already converted to UTF-8; compiling it again
	// with -finput-charset would convert twice.
	{"-finput-charset", true, "-finput-charset"},
}

// cppF lists -f options that only the preprocessor uses.
var cppF = []prefixRule{
	{"-fpch-deps", false, ""},
}

// Reasons for a local compile (Plan.Reason). Constant strings, except
// the reasons built by notAllowedReason and refusedReason, which name the
// option (see Plan.Reason).
const (
	reasonNoCompile      = "no -c"
	reasonE              = "-E"
	reasonM              = "-M"
	reasonNative         = "-m*=native"
	reasonMultiSource    = "multiple sources"
	reasonNoSource       = "no source"
	reasonConftest       = "conftest"
	reasonStdout         = "output to stdout"
	reasonStdin          = "stdin source"
	reasonEmptyArg       = "empty argument"
	reasonUnknownExt     = "unknown source extension"
	reasonAsmCpp         = "assembler-with-cpp"
	reasonUnknownLang    = "-x unsupported language"
	reasonResponseFile   = "@file"
	reasonMissingArg     = "missing option argument"
	reasonMultiOutput    = "multiple -o"
	reasonLongOption     = "unsupported long option"
	reasonSaveTemps      = "-save-temps"
	reasonDebugDump      = "-d"
	reasonSplitDwarf     = "-gsplit-dwarf"
	reasonCoverage       = "--coverage"
	reasonPrint          = "-print"
	reasonHashHashHash   = "-###"
	reasonTime           = "-time="
	reasonComments       = "-C"
	reasonNoLineMarkers  = "-P"
	reasonAsmOption      = "-Wa"
	reasonCppOption      = "-Wp"
	reasonUnknownX       = "unknown -X option"
	reasonOptInfoFile    = "-fopt-info=file"
	reasonDiagFile       = "-fdiagnostics-format=file"
	reasonAsmS           = "-S on assembler"
	reasonOutputIsSource = "output is source"
)

// language describes one source language gcc can compile.
type language struct {
	lang         string // Plan.Lang
	preprocessed bool   // already preprocessed (or plain assembler): ship as is
	ext          string // Plan.PreprocessedExt
}

var (
	langC      = &language{"c", false, ".i"}
	langCI     = &language{"c", true, ".i"}
	langCXX    = &language{"c++", false, ".ii"}
	langCXXI   = &language{"c++", true, ".ii"}
	langObjC   = &language{"objective-c", false, ".mi"}
	langObjCI  = &language{"objective-c", true, ".mi"}
	langObjCXX = &language{"objective-c++", false, ".mii"}
	langObjCXI = &language{"objective-c++", true, ".mii"}
	langAsm    = &language{"assembler", true, ".s"}
)

// extLang maps gcc's source suffixes (case-sensitive, as gcc's own
// default_compilers table) to languages. .S and .sx (assembler-with-cpp)
// are handled separately: they stay local.
var extLang = map[string]*language{
	".c":   langC,
	".i":   langCI,
	".cc":  langCXX,
	".cp":  langCXX,
	".cxx": langCXX,
	".cpp": langCXX,
	".CPP": langCXX,
	".c++": langCXX,
	".C":   langCXX,
	".ii":  langCXXI,
	".m":   langObjC,
	".mi":  langObjCI,
	".mm":  langObjCXX,
	".M":   langObjCXX,
	".mii": langObjCXI,
	".s":   langAsm,
}

// xLang maps the values of -x that can be distributed. "none" (reset) is
// handled by the caller; "assembler-with-cpp" and anything else is local.
var xLang = map[string]*language{
	"c":                        langC,
	"c++":                      langCXX,
	"objective-c":              langObjC,
	"objective-c++":            langObjCXX,
	"cpp-output":               langCI,
	"c++-cpp-output":           langCXXI,
	"objective-c-cpp-output":   langObjCI,
	"objc-cpp-output":          langObjCI,
	"objective-c++-cpp-output": langObjCXI,
	"objc++-cpp-output":        langObjCXI,
	"assembler":                langAsm,
}

// --- knowledge used by CheckRemoteArgs ---

// refusalWhy explains, for the farm host's log and the client's
// DCC_VERBOSE, why a well-known option is refused. It decides nothing:
// anything not on the allow list (allow.go) is refused whether or not it
// is named here. Checked by prefix; the first match wins.
var refusalWhy = []prefixRule{
	{"-o", true, "names the output file (the executor chooses it)"},
	{"-x", true, "selects the language (the executor chooses it by extension)"},
	{"-c", false, "the executor adds the mode itself"},
	{"-S", false, "the executor adds the mode itself"},
	{"-E", false, "preprocessing does not happen remotely"},
	{"-M", true, "dependency output does not happen remotely"},
	{"-Wp,", true, "preprocessing does not happen remotely"},
	{"-Xpreprocessor", false, "preprocessing does not happen remotely"},
	{"-Xclang", false, "passes options to the compiler proper unchecked"},
	{"-Xanalyzer", false, "passes options to the analyzer unchecked"},
	{"-D", true, "preprocessing does not happen remotely"},
	{"-U", true, "preprocessing does not happen remotely"},
	{"-A", true, "preprocessing does not happen remotely"},
	{"-I", true, "include paths: preprocessing does not happen remotely"},
	{"-i", true, "include paths/files: preprocessing does not happen remotely"}, // -include -isystem -iplugindir ...
	{"-F", true, "framework paths: preprocessing does not happen remotely"},
	{"-undef", false, "preprocessing does not happen remotely"},
	{"-nostdinc", true, "preprocessing does not happen remotely"},
	{"-traditional-cpp", false, "preprocessing does not happen remotely"},
	{"-Wl,", true, "linking does not happen remotely"},
	{"-Xlinker", false, "linking does not happen remotely"},
	{"-L", true, "linking does not happen remotely"},
	{"-l", true, "linking does not happen remotely"},
	{"-T", true, "linking does not happen remotely"},
	{"-z", true, "linking does not happen remotely"},
	{"-e", true, "linking does not happen remotely"},
	{"-u", true, "linking does not happen remotely"},
	{"-fuse-ld=", true, "linking does not happen remotely"},
	{"-B", true, "changes where programs are found"},
	{"-specs", true, "spec files can run programs"},
	{"-wrapper", true, "runs a program"},
	{"-fplugin", true, "loads code"},
	{"-fpass-plugin", true, "loads code"},
	{"-mllvm", true, "options for LLVM can write files"},
	{"-save-temps", true, "writes files"},
	{"-save-stats", true, "writes a file"},
	{"-time=", true, "writes a file"},
	{"-ftime-trace", true, "writes a file"},
	{"-aux", true, "writes a file"},
	{"-d", true, "dumps write files"}, // -dumpbase, -dumpdir, -dA, -dr ...
	{"-fdump", true, "writes dump files"},
	{"-fstack-usage", false, "writes a .su file"},
	{"-fcallgraph-info", true, "writes a .ci file"},
	{"-gsplit-dwarf", true, "writes a .dwo file"},
	{"-gmodules", false, "reads module caches"},
	{"-fcompare-debug", true, "writes files and reruns the compiler"},
	{"-fsave-optimization-record", true, "writes a file"},
	{"-fdeps-", true, "writes a file"},
	{"-fmodule", true, "C++ modules read/write files and may run a mapper program"},
	{"-fprebuilt-module-path", true, "reads module files"},
	{"-fimplicit-module", true, "reads and writes module caches"},
	{"-fcxx-modules", false, "reads and writes module caches"},
	{"-fcrash-diagnostics", true, "writes files"},
	{"-fself-test", true, "reads files"},
	{"-fdiagnostics-add-output", true, "writes a file"},
	{"-fdiagnostics-set-output", true, "writes a file"},
	{"-fprofile", true, "profiles read or write files"},
	{"-fauto-profile", true, "reads a profile"},
	{"-fbranch-probabilities", false, "reads a profile"},
	{"-fcoverage", true, "writes coverage files"},
	{"-ftest-coverage", false, "writes a .gcno file"},
	{"-frepo", false, "writes a .rpo file"},
	{"-fsanitize-blacklist", true, "reads a file"},
	{"-fsanitize-ignorelist", true, "reads a file"},
	{"-fsanitize-system-", true, "reads a file"},
	{"-fsanitize-coverage-", true, "reads a file"},
}

// Assembler arguments (-Wa,... and -Xassembler) are checked by shape:
// only the forms below are accepted, everything else is refused. gas
// parses its arguments with getopt_long_only and clusters short options
// ("-Lofile" is -L -o file), so a deny list of bad letters is not enough.

// asmExact are assembler flags accepted exactly as written.
var asmExact = map[string]bool{
	"--noexecstack": true, "--execstack": true,
	"--32": true, "--64": true, "--x32": true,
	"-g": true, "--gen-debug": true,
	"--gstabs": true, "--gstabs+": true, "--gdwarf2": true,
	"-W": true, "--no-warn": true, "--warn": true, "--fatal-warnings": true, "-w": true,
	"-K": true, "-L": true, "--keep-locals": true, "-R": true, "-n": true, "-Z": true,
	"-v": true, "-V": true,
	"-EL": true, "-EB": true,
	"--nocompress-debug-sections": true, "--compress-debug-sections": true,
	"--reduce-memory-overheads": true, "--sectname-subst": true,
	"--strip-local-absolute": true, "--traditional-format": true,
	"--no-pad-sections": true, "--divide": true, "--statistics": true,
	"-O": true, "-O0": true, "-O1": true, "-O2": true, "-Os": true,
}

// asmJoined are assembler long options accepted with a joined "=value".
var asmJoined = []string{
	"--compress-debug-sections=",
	"--gdwarf-", // --gdwarf-2..5, --gdwarf-sections, --gdwarf-cie-version=N
	"--elf-stt-common=",
	"--generate-missing-build-notes=",
	"--size-check=",
	"--multibyte-handling=",
	"--hash-size=",
	"--defsym=",
	"--debug-prefix-map=", // value exempt from the path rule
}

// asmSeparate are assembler options accepted with their value in the
// next assembler argument.
var asmSeparate = map[string]bool{
	"--defsym":           true,
	"--debug-prefix-map": true,
}
