package compilerargs

import (
	"path/filepath"
	"strings"
)

// Diagnostics from a farm host must be exactly the ones the local compiler
// prints (the same source lines, carets, columns, macro-expansion notes).
// A compile of fully preprocessed text cannot give them: the host has not
// the sources to quote, columns inside expanded macros move, the notes
// about macro expansions are gone, and gcc turns off substring locations
// (format-string carets) for any input with line markers.
//
// clang has a preprocessing mode that avoids all of it: -frewrite-includes
// inlines the #included files and nothing else, so macros stay unexpanded
// and every line is the line as written; clang takes the lines it quotes
// from its input buffer, so diagnostics on the farm are byte-identical to
// local ones (tested over a corpus in test/integration). gcc has no such
// mode; for gcc, dcc compiles again locally when the farm's compile
// printed anything (internal/client).

// sourceExts are the extensions a rewritten source may keep on the farm:
// the name clang is given becomes the object's file symbol, so it must be
// the original one.
var sourceExts = map[string]string{
	".c": "c", ".cc": "c++", ".cp": "c++", ".cxx": "c++", ".cpp": "c++", ".CPP": "c++", ".c++": "c++", ".C": "c++",
	".m": "objective-c", ".mm": "objective-c++", ".M": "objective-c++",
}

// SourceExt reports whether ext names a source a farm host may compile
// after -frewrite-includes, and its language.
func SourceExt(ext string) (lang string, ok bool) {
	lang, ok = sourceExts[ext]
	return lang, ok
}

// RewriteIncludes turns a remote plan for clang into one whose local step
// only inlines includes (-frewrite-includes) and whose shipped file keeps
// the source's own name, so that clang on the farm prints exactly the
// diagnostics and writes exactly the object it would locally. Plans it
// cannot turn (already preprocessed input, assembler, a source whose
// extension does not say its language) are returned unchanged, with
// ok false.
func (p Plan) RewriteIncludes() (_ Plan, ok bool) {
	if !p.Remote || p.Preprocessed || p.PreprocessArgs == nil {
		return p, false
	}
	ext := filepath.Ext(p.Source)
	if lang, known := sourceExts[ext]; !known || lang != p.Lang {
		return p, false
	}
	pre := make([]string, 0, len(p.PreprocessArgs)+1)
	for i, a := range p.PreprocessArgs {
		pre = append(pre, a)
		if i == 0 && a == "-E" {
			pre = append(pre, "-frewrite-includes")
		}
	}
	if len(pre) == len(p.PreprocessArgs) {
		return p, false // no -E to extend: not a plan Classify made
	}
	p.PreprocessArgs = pre
	p.PreprocessedExt = ext
	p.Rewritten = true
	return p, true
}

// RecordDirectory makes a rewritten plan's debug information name dir as
// the compilation directory, as a local compile in dir would: clang on the
// farm runs in a job directory of its own. It adds
// -fdebug-compilation-dir=dir when the job makes debug information and
// the command line does not set the directory itself. The directory then
// is part of the job (and of its cache key), as it is of the object.
func (p Plan) RecordDirectory(dir string) Plan {
	if !p.Rewritten || !DebugInfo(p.RemoteArgs) {
		return p
	}
	for _, a := range p.RemoteArgs {
		if strings.HasPrefix(a, "-fdebug-compilation-dir") || strings.HasPrefix(a, "-ffile-compilation-dir") {
			return p
		}
	}
	p.RemoteArgs = append(append([]string{}, p.RemoteArgs...), "-fdebug-compilation-dir="+dir)
	return p
}

// DebugInfo reports whether args ask for debug information: the last -g
// option that sets a level is not -g0.
func DebugInfo(args []string) bool {
	on := false
	for _, a := range args {
		switch {
		case a == "-g0" || a == "-ggdb0":
			on = false
		case a == "-g" || strings.HasPrefix(a, "-g1") || strings.HasPrefix(a, "-g2") || strings.HasPrefix(a, "-g3") ||
			strings.HasPrefix(a, "-ggdb") || strings.HasPrefix(a, "-gdwarf") || a == "-gline-tables-only" ||
			a == "-gline-directives-only" || a == "-gmlt" || a == "-gfull" || a == "-gcodeview" || a == "-gstabs":
			on = true
		}
	}
	return on
}
