package main

import (
	"fmt"
	"os"
)

func simulate(args []string) int {
	fmt.Fprintln(os.Stderr, "broker simulate: not built yet")
	return 2
}
