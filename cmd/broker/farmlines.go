package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dcc-farm/dcc/internal/distcc"
	"github.com/dcc-farm/dcc/internal/identity"
)

const farmLinesUsage = `Usage: broker farm-lines [--compiler C] [--power P] [--users U,...] DISTCC_HOSTS...

Prints farm-file lines (protocol=distcc) for the hosts of a distcc host list,
as in DISTCC_HOSTS or ~/.distcc/hosts; with no list, $DISTCC_HOSTS is used.
Entries the farm cannot use (ssh, localhost, pump mode, ',down') and the list's
own options are printed as comments saying why. Review the lines, set each
host's NCPUS and POWER, and append them to the farm file.

`

// farmLineFlags are farm-lines' own flags; every other word, even one
// starting with "--" (distcc's --randomize, --localslots=N), belongs to
// the host list.
var farmLineFlags = map[string]bool{"compiler": true, "power": true, "users": true}

// farmLines runs `broker farm-lines` with args, the words after
// "farm-lines"; it returns the exit code.
func farmLines(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker farm-lines", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), farmLinesUsage)
		fs.PrintDefaults()
	}
	compiler := fs.String("compiler", "gcc", "the distccd hosts' compiler: a name the broker resolves on its own machine, or a fingerprint as dcc status lists them")
	power := fs.Float64("power", 1, "power index for every host (1 = reference)")
	users := fs.String("users", "", "comma-separated users the hosts serve (default: everyone)")

	var flagArgs, list []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			list = append(list, args[i+1:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-h" || a == "-help" || a == "--help":
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		case strings.HasPrefix(a, "-") && farmLineFlags[name]:
			flagArgs = append(flagArgs, a)
			if !hasValue && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		default:
			list = append(list, a)
		}
	}
	if err := fs.Parse(flagArgs); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "broker farm-lines: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run broker farm-lines --help for usage.")
		return 2
	}
	var userList []string
	for _, u := range strings.Split(*users, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := identity.CheckName(u); err != nil {
			return usage("--users: %v", err)
		}
		userList = append(userList, u)
	}
	text := strings.Join(list, " ")
	if strings.TrimSpace(text) == "" {
		text = os.Getenv("DISTCC_HOSTS")
	}
	if strings.TrimSpace(text) == "" {
		return usage("no host list given and DISTCC_HOSTS is empty")
	}
	hl, err := distcc.ParseHostList(text)
	if err != nil {
		fmt.Fprintln(stderr, "broker farm-lines:", err)
		return 1
	}

	fmt.Fprintln(stdout, "# NAME NCPUS POWER [key=value...]: from a distcc host list; NCPUS is distcc's job limit, check it")
	if hl.Randomize {
		fmt.Fprintln(stdout, "# --randomize: not needed, the broker spreads jobs over the hosts")
	}
	if hl.LocalSlots > 0 {
		fmt.Fprintf(stdout, "# --localslots=%d: on each client, DCC_LOCAL_SLOTS=%d (local_slots in ~/.dccrc)\n", hl.LocalSlots, hl.LocalSlots)
	}
	if hl.LocalSlotsCPP > 0 {
		fmt.Fprintf(stdout, "# --localslots_cpp=%d: no equivalent, dcc has no separate limit for preprocessing\n", hl.LocalSlotsCPP)
	}
	seen := map[string]string{}
	for _, h := range hl.Hosts {
		line, err := distcc.FarmLine(h, *power, *compiler)
		if err != nil {
			fmt.Fprintln(stdout, "#", err)
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		if prev, dup := seen[name]; dup {
			fmt.Fprintf(stdout, "# %s: the same host as %s; a farm file lists each host once\n", h.Text, prev)
			continue
		}
		seen[name] = h.Text
		if len(userList) > 0 {
			line += " users=" + strings.Join(userList, ",")
		}
		if h.LZO {
			line += " # was " + h.Text + ": the farm speaks protocol 1, uncompressed"
		}
		fmt.Fprintln(stdout, line)
	}
	return 0
}
