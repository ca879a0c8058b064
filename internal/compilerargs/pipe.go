package compilerargs

import "strings"

// FromPipe reports whether a farm host may compile a job of this shipped
// extension and compiler fingerprint from a pipe that fills while the
// client still preprocesses (wire.JobRequest.Early), with the object
// exactly as from a file of the same name. GCC reads its whole input
// before it compiles and names the file only by the line markers in it,
// so a pipe and a file give the same object, -g included. clang with -g
// records a checksum of the file it read, which a pipe does not give it;
// an assembler source and a source whose includes were inlined
// (RewriteIncludes, clang only) are compiled from a file.
func FromPipe(ext, fingerprint string) bool {
	switch ext {
	case ".i", ".ii", ".mi", ".mii":
		return strings.Contains(fingerprint, " gcc version ")
	}
	return false
}
