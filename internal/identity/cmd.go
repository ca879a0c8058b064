package identity

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Exit codes of EnrollCmd and RevokeCmd.
const (
	exitOK    = 0
	exitFail  = 1 // the command was right but could not be done
	exitUsage = 2 // the command line was wrong
)

const enrollUsage = `Usage:
  broker enroll host|user|admin NAME --state DIR --out FILE [--validity D] [--force]
  broker enroll host|user|admin --from FILE --state DIR --out-dir DIR [--validity D] [--force]

Issues a credential from the farm CA in the broker's state directory (creating the CA
if there is none yet): one PEM file, mode 0600, holding the certificate for NAME in that
role, the farm CA certificate and the private key. With --from, one file NAME.pem in
--out-dir per name in FILE (one name a line; '#' comments). Safe while the broker runs.
Give the file to its holder: volunteer --identity FILE; dcc reads DCC_IDENTITY, identity
in ~/.dccrc, or ~/.config/dcc/identity.pem.

`

const revokeUsage = `Usage:
  broker revoke host|user|admin NAME --state DIR

Revokes every credential issued so far for NAME in that role. Within 5 s the running
broker refuses it, closes its connections and tells every volunteer to refuse it too;
the revocation survives restarts. Enrolling NAME again gives a new, working credential.

`

// EnrollCmd runs `broker enroll` with args, the words after "enroll";
// it returns the exit code.
func EnrollCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), enrollUsage)
		fs.PrintDefaults()
	}
	state := fs.String("state", "", "the broker's state directory, holding the farm CA (required)")
	out := fs.String("out", "", "file to write the credential to (with NAME)")
	from := fs.String("from", "", "file of names, one a line (instead of NAME)")
	outDir := fs.String("out-dir", "", "directory for the NAME.pem files (with --from)")
	validity := fs.String("validity", "365d", "how long the credential is valid: a Go duration (720h) or days (90d)")
	force := fs.Bool("force", false, "overwrite existing files")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	if err != nil {
		return exitUsage // flag has printed the error and the usage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "broker enroll: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run broker enroll --help for usage.")
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "broker enroll:", err)
		return exitFail
	}
	if len(pos) == 0 {
		return usage("missing the role: host, user or admin")
	}
	role := pos[0]
	if role != RoleHost && role != RoleUser && role != RoleAdmin {
		return usage("unknown role %q: want host, user or admin", role)
	}
	if *state == "" {
		return usage("missing --state DIR")
	}
	d, err := parseValidity(*validity)
	if err != nil {
		return usage("--validity: %v", err)
	}
	opt := EnrollOptions{Validity: d, Overwrite: *force}

	if *from != "" {
		if len(pos) > 1 {
			return usage("give NAME or --from FILE, not both")
		}
		if *out != "" {
			return usage("--out goes with NAME; with --from use --out-dir DIR")
		}
		if *outDir == "" {
			return usage("missing --out-dir DIR")
		}
		ca, err := OpenCA(*state)
		if err != nil {
			return fail(err)
		}
		written, err := EnrollFromFile(ca, role, *from, *outDir, opt)
		for _, p := range written {
			fmt.Fprintln(stdout, "wrote", p)
		}
		if err != nil {
			if len(written) > 0 {
				return fail(fmt.Errorf("stopped after %d credentials: %w", len(written), err))
			}
			return fail(err)
		}
		fmt.Fprintf(stdout, "enrolled %d %ss, valid until %s, farm CA %s\n", len(written), role,
			time.Now().Add(d).UTC().Format(time.DateOnly), ca.ID())
		return exitOK
	}

	switch {
	case len(pos) < 2:
		return usage("missing NAME (or --from FILE)")
	case len(pos) > 2:
		return usage("unexpected argument %q", pos[2])
	case *outDir != "":
		return usage("--out-dir goes with --from; with NAME use --out FILE")
	case *out == "":
		return usage("missing --out FILE")
	}
	name := pos[1]
	if err := CheckName(name); err != nil {
		return usage("%v", err)
	}
	ca, err := OpenCA(*state)
	if err != nil {
		return fail(err)
	}
	bundle, err := ca.Issue(role, name, d)
	if err != nil {
		return fail(err)
	}
	if err := WriteBundle(*out, bundle, *force); err != nil {
		return fail(err)
	}
	id, err := ParseBundle(bundle)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s %s, serial %s, valid until %s, farm CA %s\n", *out, role, name,
		id.Serial.Text(16), id.NotAfter.UTC().Format(time.DateOnly), ca.ID())
	return exitOK
}

// RevokeCmd runs `broker revoke` with args, the words after "revoke"; it
// returns the exit code.
func RevokeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), revokeUsage)
		fs.PrintDefaults()
	}
	state := fs.String("state", "", "the broker's state directory, holding the farm CA (required)")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "broker revoke: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run broker revoke --help for usage.")
		return exitUsage
	}
	switch {
	case len(pos) == 0:
		return usage("missing the role: host, user or admin")
	case pos[0] != RoleHost && pos[0] != RoleUser && pos[0] != RoleAdmin:
		return usage("unknown role %q: want host, user or admin", pos[0])
	case len(pos) < 2:
		return usage("missing NAME")
	case len(pos) > 2:
		return usage("unexpected argument %q", pos[2])
	case *state == "":
		return usage("missing --state DIR")
	}
	role, name := pos[0], pos[1]
	if err := CheckName(name); err != nil {
		return usage("%v", err)
	}
	n, err := Revoke(*state, role, name)
	if err != nil {
		fmt.Fprintln(stderr, "broker revoke:", err)
		return exitFail
	}
	if n == 0 {
		fmt.Fprintf(stdout, "%s %s: every credential was already revoked\n", role, name)
		return exitOK
	}
	fmt.Fprintf(stdout, "revoked %d credential%s of %s %s; a running broker refuses %s within 5 s\n",
		n, plural(n), role, name, map[bool]string{true: "it", false: "them"}[n == 1])
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// parseInterleaved parses flags wherever they are among the positional
// arguments (`enroll user bob --state D` puts them last, which the flag
// package alone would not see) and returns the positionals in order.
// After "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at the first non-flag, or consumes a "--" just before it.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseValidity accepts a Go duration or a whole number of days ("90d").
func parseValidity(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("bad number of days %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d <= 0 || d > 20*365*24*time.Hour {
		return 0, fmt.Errorf("%s is not between 1s and 20 years", s)
	}
	return d, nil
}
