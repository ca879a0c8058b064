// Command dcc-agent holds the per-user agent that dcc starts by itself,
// and dcc's commands other than compiling (dcc status, farm, cache,
// builds, trace), which dcc runs through it. It is installed beside dcc;
// it is not meant to be run by hand.
package main

import (
	"os"

	"github.com/dcc-farm/dcc/internal/commands"
)

func main() { os.Exit(commands.Main(os.Args)) }
