// Command dcc-sandbox is the small helper a volunteer starts for every job
// (internal/sandbox): it confines itself (rlimits, nice, Landlock, no
// sockets) and execs the compiler. It is the volunteer's helper re-executed
// alone: a binary that links nothing else starts in a fraction of the time
// the volunteer's own binary takes. The volunteer uses it when it sits
// beside the volunteer binary, and runs itself as the helper otherwise.
package main

import (
	"fmt"
	"os"

	"github.com/dcc-farm/dcc/internal/sandbox" // its init serves `dcc-sandbox __sandbox`
)

func main() {
	fmt.Fprintf(os.Stderr, "dcc-sandbox is started by the volunteer for each job (as %q), not by hand.\n", sandbox.HelperArg)
	os.Exit(2)
}
