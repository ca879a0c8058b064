package compilerargs

import (
	"fmt"
	"strconv"
	"strings"
)

// RemoteArgError is the error CheckRemoteArgs returns. Arg is the
// offending argument as received and Index its position in the list.
type RemoteArgError struct {
	Index  int
	Arg    string
	Reason string
}

func (e *RemoteArgError) Error() string {
	return fmt.Sprintf("compilerargs: remote argument %d %q refused: %s", e.Index, e.Arg, e.Reason)
}

// CheckRemoteArgs is run by the farm host (volunteer) on RemoteArgs
// received from the network, before anything is executed. It returns a
// *RemoteArgError naming the first argument that is not known to be safe:
// one that could make the compiler read or write a file outside the job
// directory, load code or run another program, or that is meaningless
// remotely. It is an allow list: an argument is accepted only if it
// passes every step below.
//
//  1. Shape. Every argument is a self-contained option: it starts with '-'
//     and is not "-" alone. Bare names (input files), response files
//     ("@file", expanded by gcc and gas wherever they appear), empty
//     arguments and arguments containing NUL are refused. The only two
//     options that carry their value in the next argument are accepted:
//     "--param NAME[=VALUE]" (the value must consist of letters, digits,
//     '_', '-' and '=') and "-Xassembler ARG". No other "--" long option
//     and no other "-X" option is accepted.
//  2. Assembler arguments ("-Wa,A,B" and "-Xassembler A") are accepted
//     only in the shapes listed in options.go (asmExact, asmJoined,
//     asmSeparate, and "-m..." machine options); everything else is
//     refused. gas clusters short options ("-Lofile" is "-L -o file") so
//     only an allow list is safe there.
//  3. The allow list (allowList in allow.go): optimisation, code
//     generation, language, warning, diagnostics, debug-format and target
//     machine options, each family with a narrow value syntax that admits
//     no path. Everything else is refused, among it -o -c -S -E -x, the
//     preprocessor's and the linker's options, -B -specs -wrapper,
//     -fplugin* -fpass-plugin= -mllvm -Xclang, -save-temps*, dumps,
//     profiles, sanitizer lists, modules and -m*=native.
//  4. Paths. Split at '=', ',' and ':'; no piece may start with '/' (an
//     absolute path) or contain a ".." path element. Exempt: the options
//     that only rewrite recorded strings, -fdebug-prefix-map=,
//     -ffile-prefix-map=, -fmacro-prefix-map=, -frandom-seed= (and the
//     assembler's --debug-prefix-map). The allow list's value syntax
//     already excludes '/'; this is a second line.
//
// It never panics.
func CheckRemoteArgs(args []string) error {
	if e := checkRemote(args); e != nil {
		return e
	}
	return nil
}

// checkRemote is CheckRemoteArgs with a concrete result, for Classify.
func checkRemote(args []string) *RemoteArgError {
	var asm asmChecker
	lastAsm := -1
	for i := 0; i < len(args); i++ {
		a := args[i]
		if r := argShape(a); r != "" {
			return &RemoteArgError{Index: i, Arg: a, Reason: r}
		}
		switch {
		case a == "--param":
			if i+1 >= len(args) {
				return &RemoteArgError{Index: i, Arg: a, Reason: "missing value"}
			}
			i++
			if !paramShape(args[i]) {
				return &RemoteArgError{Index: i, Arg: args[i], Reason: "--param value must be NAME[=VALUE]"}
			}
			continue
		case strings.HasPrefix(a, "--param="):
			if !paramShape(a[len("--param="):]) {
				return &RemoteArgError{Index: i, Arg: a, Reason: "--param value must be NAME[=VALUE]"}
			}
			continue
		case a == "-Xassembler":
			if i+1 >= len(args) {
				return &RemoteArgError{Index: i, Arg: a, Reason: "missing value"}
			}
			i++
			if r := asm.check(args[i]); r != "" {
				return &RemoteArgError{Index: i, Arg: args[i], Reason: r}
			}
			lastAsm = i
			continue
		case strings.HasPrefix(a, "-Wa,"):
			if r := asm.checkList(a[len("-Wa,"):]); r != "" {
				return &RemoteArgError{Index: i, Arg: a, Reason: r}
			}
			lastAsm = i
			continue
		}
		r := allowed.find(a)
		if r == nil {
			return &RemoteArgError{Index: i, Arg: a, Reason: refusal(a)}
		}
		if r.kind != anyValue {
			if why := pathRule(a); why != "" {
				return &RemoteArgError{Index: i, Arg: a, Reason: why}
			}
		}
	}
	if asm.pending {
		return &RemoteArgError{Index: lastAsm, Arg: args[lastAsm], Reason: "assembler option missing its value"}
	}
	return nil
}

// notAllowed is the reason for an option that is not on the allow list.
const notAllowed = "not on the remote allow list"

// refusal explains why a, which is not on the allow list, is refused.
func refusal(a string) string {
	why := ""
	switch {
	case strings.HasPrefix(a, "--"):
		why = "long options other than --param are not accepted"
	case strings.HasPrefix(a, "-m") && strings.HasSuffix(a, "=native"):
		why = "the farm host's CPU is not the client's"
	case strings.HasPrefix(a, "-fopt-info") && strings.IndexByte(a, '=') >= 0:
		why = "writes a file" // -fopt-info-vec=FILE
	case strings.HasPrefix(a, "-fdiagnostics-format=") && strings.HasSuffix(a, "-file"):
		why = "writes a file" // json-file, sarif-file
	default:
		if r, ok := refusalIndex.find(a); ok {
			why = r.reason
		}
	}
	if why == "" {
		return notAllowed
	}
	return notAllowed + " (" + why + ")"
}

// maxReasonArg caps how much of an option a Plan.Reason quotes.
const maxReasonArg = 80

// notAllowedReason is Plan.Reason for an option that is not on the remote
// allow list.
func notAllowedReason(a string) string {
	return "option " + quoteCapped(a) + " is " + notAllowed
}

// refusedReason is Plan.Reason for a RemoteArgs list the farm host would
// refuse.
func refusedReason(e *RemoteArgError) string {
	if rest, ok := strings.CutPrefix(e.Reason, notAllowed); ok {
		return notAllowedReason(e.Arg) + rest
	}
	return "option " + quoteCapped(e.Arg) + " refused remotely: " + e.Reason
}

func quoteCapped(a string) string {
	if len(a) > maxReasonArg {
		return strconv.Quote(a[:maxReasonArg]) + "..."
	}
	return strconv.Quote(a)
}

// argShape returns why a cannot be a remote argument at all, or "".
func argShape(a string) string {
	switch {
	case a == "":
		return "empty argument"
	case strings.IndexByte(a, 0) >= 0:
		return "contains NUL"
	case a[0] == '@':
		return "response file"
	case a[0] != '-' || a == "-":
		return "not an option (a file name)"
	}
	return ""
}

// pathRule splits s at '=', ',' and ':' and refuses any piece that is an
// absolute path or has a ".." path element.
func pathRule(s string) string {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ':' {
			continue
		}
		piece := s[start:i]
		start = i + 1
		if len(piece) > 0 && piece[0] == '/' {
			return "absolute path"
		}
		if hasDotDot(piece) {
			return `".." path element`
		}
	}
	return ""
}

func hasDotDot(p string) bool {
	for len(p) > 0 {
		j := strings.IndexByte(p, '/')
		elem := p
		if j >= 0 {
			elem, p = p[:j], p[j+1:]
		} else {
			p = ""
		}
		if elem == ".." {
			return true
		}
	}
	return false
}

// paramShape accepts --param values: NAME or NAME=VALUE made of letters,
// digits, '_', '-' and '='.
func paramShape(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '=') {
			return false
		}
	}
	return true
}

// asmChecker checks the assembler's argument list, which gcc assembles
// from every -Wa, and -Xassembler in order; the state carries an option
// that takes its value in the next assembler argument.
type asmChecker struct {
	pending       bool // the previous assembler argument wants a value
	pendingExempt bool // ... and that value is exempt from the path rule
}

// checkList checks the comma-separated list of a -Wa, option.
func (c *asmChecker) checkList(list string) string {
	for {
		j := strings.IndexByte(list, ',')
		part := list
		if j >= 0 {
			part = list[:j]
		}
		if r := c.check(part); r != "" {
			return r
		}
		if j < 0 {
			return ""
		}
		list = list[j+1:]
	}
}

// check checks one assembler argument and returns why it is refused, or "".
func (c *asmChecker) check(p string) string {
	if c.pending {
		c.pending = false
		if p == "" || p[0] == '@' || p[0] == '-' || strings.IndexByte(p, 0) >= 0 {
			return "bad value for assembler option"
		}
		if !c.pendingExempt {
			return asmPathRule(p)
		}
		return ""
	}
	if p == "" || strings.IndexByte(p, 0) >= 0 {
		return "empty assembler argument"
	}
	if asmExact[p] {
		return ""
	}
	// Machine options. 'm' is never a no-argument short option of gas, so
	// "-m..." cannot be read as a cluster of short options.
	if len(p) > 2 && strings.HasPrefix(p, "-m") {
		return asmPathRule(p)
	}
	for _, j := range asmJoined {
		if strings.HasPrefix(p, j) {
			if j == "--debug-prefix-map=" {
				return ""
			}
			return asmPathRule(p)
		}
	}
	if asmSeparate[p] {
		c.pending = true
		c.pendingExempt = p == "--debug-prefix-map"
		return ""
	}
	return "assembler option not in the accepted set"
}

// asmPathRule refuses any '/' in an assembler argument or value: none of
// the accepted ones (machine options, --defsym values, section and
// compression names) is a path, so unlike the compiler's options no
// relative path is admitted either.
func asmPathRule(p string) string {
	if strings.IndexByte(p, '/') >= 0 {
		return "path in an assembler argument"
	}
	return pathRule(p)
}
