// Package compilerargs classifies a compiler command line: whether it can be
// compiled on a farm host, and if so how to split it into a local
// preprocessing command and a remote compile command.
package compilerargs

import "strings"

// Plan is the result of classifying one compiler invocation.
type Plan struct {
	Remote bool // true if the job may be distributed
	// Reason says why a job is not Remote: a short constant string ("no
	// -c", "-march=native", ...) for distcc's rules, or, for an option
	// that is not on the remote allow list, a sentence naming it:
	//	option "-fpass-plugin=x.so" is not on the remote allow list
	//	option "-mfoo=/abs" refused remotely: absolute path
	// (the option quoted, cut at 80 bytes). Those start with "option "
	// and are unbounded: log them, but use a constant such as
	// "not allowed" as a metrics label.
	Reason string

	Lang       string // "c", "c++", "objective-c", "objective-c++", "assembler"
	Source     string // the single source file as written on the command line
	Output     string // the -o value as written, or the default (basename of source with .o / .s) in the cwd
	OutputKind string // ".o" (with -c) or ".s" (with -S)

	// PreprocessArgs are the arguments (without the compiler itself) that
	// make the compiler write the preprocessed source to stdout: "-E", then
	// every original argument except -c, -S and -o X, then the dependency
	// fixups: when -MD/-MMD is given, "-MF" <Output with its suffix replaced
	// by .d> unless -MF is given, and "-MQ" <Output> when -o is given and
	// neither -MT nor -MQ is (exactly what gcc's driver adds itself for a
	// plain compile; see gcc -dumpspecs, cpp_unique_options).
	// nil when Preprocessed: the source is shipped as is.
	PreprocessArgs []string

	// RemoteArgs are the arguments for the remote compile of the
	// preprocessed text, without the source, -o, -c/-S and -x, and without
	// preprocessor-only and linker-only options. Everything else keeps its
	// order (and "--param X" / "-Xassembler X" keep their value). A Remote
	// plan's RemoteArgs always pass CheckRemoteArgs.
	RemoteArgs []string

	// PreprocessedExt is the extension the remote side must give the
	// shipped source: ".i", ".ii", ".mi", ".mii", or ".s" for assembler.
	PreprocessedExt string

	// Preprocessed is true when the source is already preprocessed (.i,
	// .ii, .mi, .mii, -x cpp-output ...) or is plain assembler (.s): it is
	// shipped as is and PreprocessArgs is nil.
	Preprocessed bool

	// Rewritten is set by RewriteIncludes: the shipped text is the source
	// with its includes inlined (clang -frewrite-includes), to be compiled
	// on the farm under the source's own name, PreprocessedExt being the
	// source's extension.
	Rewritten bool

	// DepFile is the dependency file the preprocess command writes (the
	// -MF value, or the default gcc would use) when -MD or -MMD is given;
	// "" otherwise. Dependency options passed with -Wp, are not tracked.
	DepFile string
}

// scanner is Classify's state while it walks the arguments.
type scanner struct {
	pre, remote []string

	compile, assemble bool

	output     string
	haveOutput bool

	source  string
	srcLang *language

	xlang   *language // language set by -x, nil for "none"
	xReason string    // non-empty when -x named a language we do not distribute

	depGen        bool // -MD or -MMD
	depFile       string
	haveDepFile   bool
	haveDepTarget bool // -MT or -MQ

	inputReason string // first input that cannot be distributed

	asm asmChecker
}

// Classify inspects args (the compiler's arguments, NOT including the
// compiler name itself) and decides whether the job can be distributed.
// It follows distcc's dcc_scan_args rules, made stricter where a
// distributed compile could differ from a local one: when in doubt, local.
// Compile options are sent only if they are on the remote allow list
// (allow.go); any other makes the job local, with a Reason naming it.
// It never panics.
func Classify(args []string) Plan {
	// One backing array for both argument lists: the preprocess command
	// needs room for "-E" and up to four fixup arguments.
	n := len(args) + 5
	buf := make([]string, n+len(args))
	s := scanner{pre: buf[0:0:n], remote: buf[n:n:len(buf)]}
	s.pre = append(s.pre, "-E")

	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 0 && a[0] == '@' {
			return local(reasonResponseFile)
		}
		if len(a) < 2 || a[0] != '-' {
			if r := s.input(a); r != "" && s.inputReason == "" {
				// Decided at the end: a link line ("x.o y.o -o prog")
				// should say "no -c" rather than blame its inputs.
				s.inputReason = r
			}
			continue
		}
		if so, ok := separateArg[a]; ok {
			if i+1 >= len(args) {
				return local(reasonMissingArg)
			}
			i++
			v := args[i]
			if v == "" {
				return local(reasonEmptyArg)
			}
			if v[0] == '@' {
				return local(reasonResponseFile)
			}
			if r := s.separate(a, v, so); r != "" {
				return local(r)
			}
			continue
		}
		if linkOnly[a] {
			s.place(roleLink, a)
			continue
		}
		rl, r := s.option(a)
		if rl == roleLocal {
			return local(r)
		}
		s.place(rl, a)
	}
	return s.finish()
}

func local(reason string) Plan { return Plan{Reason: reason} }

// place appends an argument to the commands its role says it belongs to.
func (s *scanner) place(rl role, a string) {
	switch rl {
	case roleBoth:
		s.pre = append(s.pre, a)
		s.remote = append(s.remote, a)
	case roleCpp, roleLink, roleLang:
		s.pre = append(s.pre, a)
	}
}

// input handles a non-option argument: the source, or something that
// makes the job local.
func (s *scanner) input(a string) string {
	switch a {
	case "-":
		return reasonStdin
	case "":
		return reasonEmptyArg
	}
	l := s.xlang
	if l == nil {
		if s.xReason != "" {
			return s.xReason
		}
		ext := gccSuffix(a)
		if ext == ".S" || ext == ".sx" {
			return reasonAsmCpp
		}
		if l = extLang[ext]; l == nil {
			// Headers, linker inputs (.o, .a), other languages.
			return reasonUnknownExt
		}
	}
	if s.srcLang != nil {
		return reasonMultiSource
	}
	s.source, s.srcLang = a, l
	s.pre = append(s.pre, a)
	return ""
}

// separate handles an option written with its value in the next argument.
func (s *scanner) separate(a, v string, so sepOpt) string {
	switch so.role {
	case roleLocal:
		return so.reason
	case roleOutput:
		return s.setOutput(v)
	case roleLang:
		s.setLang(v)
	case roleCpp:
		switch a {
		case "-MF":
			s.depFile, s.haveDepFile = v, true
		case "-MT", "-MQ":
			s.haveDepTarget = true
		case "-Xpreprocessor":
			if r := cppPassThrough(v); r != "" {
				return r
			}
		}
	case roleBoth:
		if a == "-Xassembler" {
			if s.asm.check(v) != "" {
				return reasonAsmOption
			}
		}
		s.remote = append(s.remote, a, v)
	}
	s.pre = append(s.pre, a, v)
	return ""
}

func (s *scanner) setOutput(o string) string {
	if s.haveOutput {
		return reasonMultiOutput
	}
	if o == "" {
		return reasonEmptyArg
	}
	s.output, s.haveOutput = o, true
	return ""
}

// setLang handles the value of -x, which applies to the inputs after it.
func (s *scanner) setLang(v string) {
	s.xlang, s.xReason = nil, ""
	switch {
	case v == "none":
	case xLang[v] != nil:
		s.xlang = xLang[v]
	case v == "assembler-with-cpp":
		s.xReason = reasonAsmCpp
	default:
		s.xReason = reasonUnknownLang
	}
}

// option classifies an option written as one argument (a flag, or an
// option with its value joined). len(a) >= 2 and a[0] == '-'.
func (s *scanner) option(a string) (role, string) {
	switch a[1] {
	case 'c':
		if a == "-c" {
			s.compile = true
			return roleAction, ""
		}
	case 'S':
		if a == "-S" {
			s.assemble = true
			return roleAction, ""
		}
	case 'E':
		if a == "-E" {
			return roleLocal, reasonE
		}
	case 'o':
		if r := s.setOutput(a[2:]); r != "" {
			return roleLocal, r
		}
		return roleOutput, ""
	case 'x':
		s.setLang(a[2:])
		return roleLang, ""
	case 'D', 'U', 'I', 'A', 'F', 'i':
		// -DX, -Idir, -isystemdir, -includefile, -iplugindir=... : all
		// -i options are preprocessor options.
		return roleCpp, ""
	case 'M':
		return s.depOption(a)
	case 'W':
		switch {
		case strings.HasPrefix(a, "-Wp,"):
			if r := cppPassThroughList(a[4:]); r != "" {
				return roleLocal, r
			}
			return roleCpp, ""
		case strings.HasPrefix(a, "-Wa,"):
			if s.asm.checkList(a[4:]) != "" {
				return roleLocal, reasonAsmOption
			}
		case strings.HasPrefix(a, "-Wl,"):
			return roleLink, ""
		}
	case 'X':
		// -Xassembler, -Xlinker, -Xpreprocessor are separate-argument
		// options handled by the caller.
		return roleLocal, reasonUnknownX
	case 'L', 'l', 'T', 'z', 'e':
		return roleLink, ""
	case 'u':
		if a == "-undef" {
			return roleCpp, ""
		}
		return roleLink, ""
	case 'B':
		return roleLocal, "-B"
	case 'd':
		// -dumpbase..., -dD/-dM (preprocessor output), -dA/-dr (RTL dumps).
		return roleLocal, reasonDebugDump
	case 'f':
		return fOption(a)
	case 'm':
		if strings.HasSuffix(a, "=native") {
			switch {
			case strings.HasPrefix(a, "-march="):
				return roleLocal, "-march=native"
			case strings.HasPrefix(a, "-mtune="):
				return roleLocal, "-mtune=native"
			case strings.HasPrefix(a, "-mcpu="):
				return roleLocal, "-mcpu=native"
			}
			return roleLocal, reasonNative
		}
	case 'g':
		if strings.HasPrefix(a, "-gsplit-dwarf") {
			return roleLocal, reasonSplitDwarf
		}
	case 's':
		if strings.HasPrefix(a, "-save-temps") {
			return roleLocal, reasonSaveTemps
		}
		if strings.HasPrefix(a, "-specs") {
			return roleLocal, "-specs"
		}
		if strings.HasPrefix(a, "-stdlib=") {
			// clang's C++ library: header search (done locally) and
			// the link.
			return roleCpp, ""
		}
	case 'a':
		if strings.HasPrefix(a, "-aux-info") {
			return roleLocal, "-aux-info"
		}
	case 'p':
		if strings.HasPrefix(a, "-print-") {
			return roleLocal, reasonPrint
		}
	case 'n':
		if a == "-nostdinc" || a == "-nostdinc++" || a == "-nostdlibinc" || a == "-nobuiltininc" {
			return roleCpp, ""
		}
	case 't':
		if a == "-traditional-cpp" {
			return roleCpp, ""
		}
		if strings.HasPrefix(a, "-time=") {
			return roleLocal, reasonTime
		}
	case 'H':
		if a == "-H" {
			return roleCpp, ""
		}
	case 'r':
		if a == "-remap" {
			return roleCpp, ""
		}
	case 'C':
		// Comments in the -E output: accepted by gcc -c, but the two-step
		// compile would see different text. Rare; keep it local.
		if a == "-C" || a == "-CC" {
			return roleLocal, reasonComments
		}
	case 'P':
		// -P drops line markers from -E output (ignored by gcc -c): the
		// remote object would name the temporary file.
		if a == "-P" {
			return roleLocal, reasonNoLineMarkers
		}
	case '#':
		return roleLocal, reasonHashHashHash
	case '-':
		switch {
		case strings.HasPrefix(a, "--param="):
			return roleBoth, ""
		case strings.HasPrefix(a, "--sysroot="):
			return roleCpp, ""
		case a == "--coverage":
			return roleLocal, reasonCoverage
		}
		// gcc's many long aliases (--include, --output, --specs,
		// --save-temps, --help ...) are rare in builds: keep them local
		// rather than teach the tables every alias.
		return roleLocal, reasonLongOption
	}
	return roleBoth, ""
}

// depOption classifies a -M option. -MD/-MMD/-MP/-MG and -MF/-MT/-MQ are
// handled during local preprocessing; anything else (-M, -MM: they imply
// -E) keeps the job local.
func (s *scanner) depOption(a string) (role, string) {
	switch a {
	case "-MD", "-MMD":
		s.depGen = true
		return roleCpp, ""
	case "-MP", "-MG":
		return roleCpp, ""
	}
	if len(a) > 3 {
		switch a[:3] {
		case "-MF":
			s.depFile, s.haveDepFile = a[3:], true
			return roleCpp, ""
		case "-MT", "-MQ":
			s.haveDepTarget = true
			return roleCpp, ""
		}
	}
	return roleLocal, reasonM
}

// fOption classifies a -f option.
func fOption(a string) (role, string) {
	if r, ok := localFIndex.find(a); ok {
		return roleLocal, r.reason
	}
	if strings.HasPrefix(a, "-fopt-info") && strings.IndexByte(a, '=') >= 0 {
		return roleLocal, reasonOptInfoFile
	}
	if strings.HasPrefix(a, "-fdiagnostics-format=") && strings.HasSuffix(a, "-file") {
		return roleLocal, reasonDiagFile
	}
	for _, r := range cppF {
		if r.match(a) {
			return roleCpp, ""
		}
	}
	if strings.HasPrefix(a, "-fuse-ld=") || a == "-fuse-linker-plugin" {
		return roleLink, ""
	}
	return roleBoth, ""
}

// cppPassThroughList checks the comma-separated list of a -Wp, option.
func cppPassThroughList(list string) string {
	for {
		j := strings.IndexByte(list, ',')
		part := list
		if j >= 0 {
			part = list[:j]
		}
		if r := cppPassThrough(part); r != "" {
			return r
		}
		if j < 0 {
			return ""
		}
		list = list[j+1:]
	}
}

// cppPassThrough checks one argument given to the preprocessor directly
// (-Wp, or -Xpreprocessor). Dependency options are fine (cpp writes the
// same file in both modes); options that change or replace the -E output
// keep the job local.
func cppPassThrough(p string) string {
	if len(p) > 0 && p[0] == '@' {
		return reasonResponseFile
	}
	switch p {
	case "-E", "-M", "-MM", "-P", "-C", "-CC", "-fpreprocessed", "-fdirectives-only", "-fdebug-cpp":
		return reasonCppOption
	}
	if strings.HasPrefix(p, "-d") {
		return reasonCppOption
	}
	return ""
}

// finish applies the whole-command rules and builds the plan.
func (s *scanner) finish() Plan {
	if !s.compile && !s.assemble {
		return local(reasonNoCompile)
	}
	if s.inputReason != "" {
		return local(s.inputReason)
	}
	if s.srcLang == nil {
		return local(reasonNoSource)
	}
	if s.asm.pending {
		return local(reasonAsmOption)
	}
	base := lbasename(s.source)
	if strings.HasPrefix(base, "conftest.") || strings.HasPrefix(base, "tmp.conftest.") {
		return local(reasonConftest)
	}
	kind := ".o"
	if s.assemble { // -S wins over -c, as in gcc
		kind = ".s"
		if s.srcLang == langAsm {
			return local(reasonAsmS)
		}
	}
	out := s.output
	if !s.haveOutput {
		out = stripSuffix(base) + kind
	}
	if out == "-" {
		return local(reasonStdout)
	}
	if out == s.source {
		return local(reasonOutputIsSource)
	}

	p := Plan{
		Remote:          true,
		Lang:            s.srcLang.lang,
		Source:          s.source,
		Output:          out,
		OutputKind:      kind,
		RemoteArgs:      s.remote,
		PreprocessedExt: s.srcLang.ext,
		Preprocessed:    s.srcLang.preprocessed,
	}
	if !p.Preprocessed {
		if s.depGen {
			// What gcc's driver adds for a compile but not for -E
			// (cpp_unique_options): the .d beside the output, and the
			// output as the quoted target when -o is given.
			df := s.depFile
			if !s.haveDepFile {
				df = replaceSuffix(out, ".d")
				s.pre = append(s.pre, "-MF", df)
			}
			if !s.haveDepTarget && s.haveOutput {
				s.pre = append(s.pre, "-MQ", out)
			}
			p.DepFile = df
		}
		p.PreprocessArgs = s.pre
	}
	// The farm host's check, on the client: an option that is not on the
	// remote allow list compiles locally rather than being refused there.
	if e := checkRemote(p.RemoteArgs); e != nil {
		return local(refusedReason(e))
	}
	return p
}

// gccSuffix returns the suffix gcc uses to pick a language: from the last
// '.', provided it is not the first character of the name and no '/'
// follows it.
func gccSuffix(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || strings.IndexByte(name[i:], '/') >= 0 {
		return ""
	}
	return name[i:]
}

// lbasename returns the part of name after the last '/'.
func lbasename(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// stripSuffix implements gcc's %b: a basename without its last suffix,
// unless the only '.' is its first character.
func stripSuffix(base string) string {
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		return base[:i]
	}
	return base
}

// replaceSuffix implements gcc's "%.d%*" spec: the suffix after the last
// '.' of the last path element (if any) is replaced by suf.
func replaceSuffix(name, suf string) string {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			return name[:i] + suf
		}
	}
	return name + suf
}
