package distcc

import (
	"math"
	"strings"
)

// Job is one compile of an already preprocessed source.
type Job struct {
	// Compiler is argv[0] as distccd will see it: a bare driver name such
	// as "gcc", "g++", "cc" or "clang". Since 3.3 distccd runs only names
	// with a masquerade link in /usr/lib/distcc, or those in the file
	// named by DISTCC_CMDLIST (src/serve.c, dcc_check_compiler_whitelist,
	// dcc_remap_compiler); a path is refused, so none is accepted here.
	Compiler string
	// Args are the remote compile arguments, without -c/-S, -o, -x and the
	// source, and free of preprocessor options. Arguments that distccd's
	// scanner (src/arg.c, dcc_scan_args) refuses or would take for the
	// input or output file are rejected before anything is sent.
	Args []string
	// Kind is the output: ".o" (compile, -c) or ".s" (assembly, -S).
	Kind string
	// Ext is the shipped source's extension, which tells the compiler its
	// language: ".i" (C), ".ii" (C++), ".mi" (Objective-C), ".mii"
	// (Objective-C++). ".s" is refused: distccd 3.4 does not count
	// assembly as a source unless built with ENABLE_REMOTE_ASSEMBLE
	// (src/filename.c, dcc_is_source), and Debian's is not, so it would
	// close the connection without a reply.
	Ext string
	// Source is the preprocessed text, sent as DOTI.
	Source []byte
}

// sourceBase names the source and output in the argv. distccd uses only
// the extension of the source name (dcc_input_tmpnam keeps it for its
// temporary input) and replaces both names with its own temporary files
// (dcc_set_input, dcc_set_output), so they never reach the compiler; they
// appear in distccd's log ("compile from dcc.i to dcc.o"). It must not
// start with "conftest." (dcc_source_needs_local refuses autoconf probes).
const sourceBase = "dcc"

// Caps on what a job may send; far above any real command line.
const (
	maxArgs   = 4096
	maxArgLen = 64 << 10
)

// argv returns the command line sent as ARGV, after checking the job:
//
//	COMPILER ARGS... -c|-S dcc.EXT -o dcc.KIND
//
// distccd needs -c or -S and exactly one argument with a source extension
// (dcc_scan_args gives up on none or two), and finds the output after -o;
// it replaces the source with its temporary DOTI file, whose extension it
// derives from ours (.i stays .i, .ii stays .ii), and -o's value with its
// temporary output, which is what comes back as DOTO.
func (j *Job) argv() ([]string, error) {
	if err := checkCompiler(j.Compiler); err != nil {
		return nil, err
	}
	var action string
	switch j.Kind {
	case ".o":
		action = "-c"
	case ".s":
		action = "-S"
	default:
		return nil, badJob("Kind %q: want .o or .s", j.Kind)
	}
	switch j.Ext {
	case ".i", ".ii", ".mi", ".mii":
	case ".s":
		return nil, badJob("Ext .s: distccd does not distribute assembly (built without ENABLE_REMOTE_ASSEMBLE)")
	default:
		return nil, badJob("Ext %q: want .i, .ii, .mi or .mii", j.Ext)
	}
	if uint64(len(j.Source)) > math.MaxUint32 {
		return nil, badJob("source of %d bytes does not fit DOTI's 32-bit length", len(j.Source))
	}
	if len(j.Args) > maxArgs {
		return nil, badJob("%d arguments, limit %d", len(j.Args), maxArgs)
	}
	for _, a := range j.Args {
		if err := checkArg(a); err != nil {
			return nil, err
		}
	}
	argv := make([]string, 0, len(j.Args)+5)
	argv = append(argv, j.Compiler)
	argv = append(argv, j.Args...)
	return append(argv, action, sourceBase+j.Ext, "-o", sourceBase+j.Kind), nil
}

func checkCompiler(c string) error {
	if c == "" || c[0] == '-' || len(c) > 255 {
		return badJob("compiler %q: want a bare driver name such as gcc", c)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '+' || b == '-') {
			return badJob("compiler %q: want a bare driver name (distccd refuses paths)", c)
		}
	}
	return nil
}

// checkArg refuses an argument that distccd's server-side scan would
// refuse (src/arg.c dcc_scan_args and dcc_check_army_of_clones,
// src/serve.c's -fplugin=/-specs= check) or misread, and the ones this
// package adds itself.
func checkArg(a string) error {
	switch {
	case a == "" || a == "-":
		return badJob("argument %q is not an option", a)
	case len(a) > maxArgLen:
		return badJob("argument of %d bytes, limit %d", len(a), maxArgLen)
	case strings.IndexByte(a, 0) >= 0:
		return badJob("argument %q contains a NUL byte", a)
	case a[0] != '-':
		// A bare word with a source extension is a second input to
		// distccd, one ending in .o a second output.
		if isSourceName(a) || strings.HasSuffix(a, ".o") {
			return badJob("argument %q would be taken for the source or output", a)
		}
		return nil
	}
	switch a {
	case "-c", "-S", "-E":
		return badJob("argument %s: the action is set from Kind", a)
	case "-fprofile-arcs", "-ftest-coverage", "--coverage", "-frepo",
		"-march=native", "-mtune=native":
		return badJob("argument %s must run locally (distccd refuses it)", a)
	}
	switch {
	case strings.HasPrefix(a, "-o"):
		return badJob("argument %q: the output is set by Compile", a)
	case strings.HasPrefix(a, "-x"):
		return badJob("argument %q: the language comes from Ext (distccd refuses -x)", a)
	case a[1] == 'M':
		return badJob("argument %q: dependency output belongs to local preprocessing", a)
	case strings.HasPrefix(a, "-dr"),
		strings.HasPrefix(a, "-specs="),
		strings.HasPrefix(a, "-fplugin="),
		strings.HasPrefix(a, "-Wa,") && (strings.Contains(a, ",-a") || strings.Contains(a, "--MD")):
		return badJob("argument %q must run locally (distccd refuses it)", a)
	}
	return nil
}

// isSourceName mirrors dcc_is_source (src/filename.c), including the
// assembly extensions some builds count.
func isSourceName(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 || dot == len(s)-1 {
		return false
	}
	switch s[dot+1:] {
	case "i", "ii", "c", "cc", "cpp", "cxx", "cp", "c++", "C", "m", "mm", "mi", "mii", "M", "s", "S":
		return true
	}
	return false
}
