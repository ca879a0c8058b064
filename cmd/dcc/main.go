// Command dcc wraps the compiler: `dcc gcc -c foo.c`, CC="dcc gcc",
// CMAKE_C_COMPILER_LAUNCHER=dcc, CCACHE_PREFIX=dcc, or a masquerade
// symlink named after the compiler. `dcc status` and `dcc farm` talk to
// the broker; `dcc agent` is the per-user agent dcc starts by itself.
package main

import (
	"os"

	"github.com/dcc-farm/dcc/internal/client"
)

func main() { os.Exit(client.Main(os.Args)) }
