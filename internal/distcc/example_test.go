package distcc_test

import (
	"fmt"

	"github.com/dcc-farm/dcc/internal/distcc"
)

// A team's ~/.distcc/hosts turned into farm-file lines; entries the farm
// cannot use become comments that say why.
func ExampleFarmLine() {
	hosts, err := distcc.ParseHosts(`# the build boxes
fast1/8 fast2:3633/8,lzo
@laptop localhost/2
`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range hosts {
		line, err := distcc.FarmLine(h, 2, "gcc")
		if err != nil {
			fmt.Println("#", err)
			continue
		}
		fmt.Println(line)
	}
	// Output:
	// fast1 8 2 protocol=distcc addr=fast1:3632 compiler=gcc slots=8
	// fast2:3633 8 2 protocol=distcc addr=fast2:3633 compiler=gcc slots=8
	// # @laptop: ssh hosts cannot join the farm: it reaches distccd over TCP only; run distccd --daemon there and list HOST[:PORT]
	// # localhost/2: localhost is this machine, not a farm host; dcc compiles locally by itself when the farm is busy
}
