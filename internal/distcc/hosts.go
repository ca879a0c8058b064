package distcc

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

// HostSpec is one entry of a distcc host list.
type HostSpec struct {
	// Host is the host name or address (an IPv6 literal without its
	// brackets); "localhost" for the local entry.
	Host string
	// Port is the TCP port (default 3632); 0 for ssh and local entries.
	Port int
	// Limit is how many jobs distcc sends the host at once (default 4;
	// 2 for localhost).
	Limit int
	// LZO asks for protocol 2 (compressed); CPP for protocol 3 (pump:
	// preprocessing on the host), which distcc allows only with LZO.
	LZO, CPP bool
	// SSH entries ([USER]@HOST[/LIMIT][:COMMAND]) run distccd over ssh.
	SSH     bool
	User    string // ssh only, may be empty
	Command string // ssh only: the remote distccd command, may be empty
	// Local is the "localhost" entry: compile on this machine.
	Local bool
	// Down is the ",down" option: listed but marked unavailable.
	Down bool
	// Text is the entry as written.
	Text string
}

// HostList is a parsed host list with its global options.
type HostList struct {
	Hosts []HostSpec
	// Randomize is --randomize: distcc shuffles the list per compile.
	Randomize bool
	// LocalSlots and LocalSlotsCPP are --localslots=N and
	// --localslots_cpp=N (0: not given; distcc's defaults apply).
	LocalSlots, LocalSlotsCPP int
}

// HostsError names the entry that failed to parse.
type HostsError struct {
	Entry string
	Msg   string
}

func (e *HostsError) Error() string {
	return fmt.Sprintf("distcc host list: %q: %s", e.Entry, e.Msg)
}

// maxLimit matches the farm file's cap on slots.
const maxLimit = 4096

// ParseHosts parses a distcc host list (DISTCC_HOSTS or the contents of
// ~/.distcc/hosts) and returns its hosts; see ParseHostList.
func ParseHosts(s string) ([]HostSpec, error) {
	l, err := ParseHostList(s)
	if err != nil {
		return nil, err
	}
	return l.Hosts, nil
}

// ParseHostList parses a distcc host list with the grammar of distcc 3.4's
// src/hosts.c:
//
//	LIST     = { ENTRY | OPTION | "#" comment-to-end-of-line } (whitespace-separated)
//	ENTRY    = localhost[/LIMIT]
//	         | [USER]@HOST[/LIMIT][:COMMAND][OPTIONS]
//	         | HOST[/LIMIT][:PORT][/LIMIT][OPTIONS]   (HOST may be [IPv6])
//	OPTIONS  = { ",lzo" | ",cpp" | ",down" | ",auth" }
//	OPTION   = --randomize | --localslots=N | --localslots_cpp=N
//
// It is stricter than distcc where distcc silently accepts nonsense
// (trailing characters after an option, port 0 or above 65535, a
// --localslots without a number, which distcc takes for a host name): a
// migration should fail loudly rather than produce a wrong farm file.
// "+zeroconf" is refused: those hosts have to be listed by name. Like
// distcc, "localhost:PORT" and "localhost,lzo" are TCP hosts, not the
// local entry, and a list with no hosts is an error.
func ParseHostList(s string) (*HostList, error) {
	l := &HostList{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '#':
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
			continue
		case isSpace(c):
			i++
			continue
		}
		j := i
		for j < len(s) && !isSpace(s[j]) && s[j] != '#' {
			j++
		}
		tok := s[i:j]
		i = j
		if strings.HasPrefix(tok, "--") {
			if err := l.option(tok); err != nil {
				return nil, err
			}
			continue
		}
		h, err := parseEntry(tok)
		if err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, h)
	}
	if len(l.Hosts) == 0 {
		return nil, &HostsError{Entry: s, Msg: "no hosts"}
	}
	return l, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func (l *HostList) option(tok string) error {
	switch {
	case tok == "--randomize":
		l.Randomize = true
	case strings.HasPrefix(tok, "--localslots_cpp"):
		n, err := slotsValue(tok, len("--localslots_cpp"))
		if err != nil {
			return err
		}
		l.LocalSlotsCPP = n
	case strings.HasPrefix(tok, "--localslots"):
		n, err := slotsValue(tok, len("--localslots"))
		if err != nil {
			return err
		}
		l.LocalSlots = n
	default:
		return &HostsError{Entry: tok, Msg: "unknown option (want --randomize, --localslots=N or --localslots_cpp=N)"}
	}
	return nil
}

// slotsValue parses the "=N" or "/N" after an option name (distcc's
// dcc_parse_multiplier accepts both).
func slotsValue(tok string, at int) (int, error) {
	rest := tok[at:]
	if rest == "" || (rest[0] != '=' && rest[0] != '/') {
		return 0, &HostsError{Entry: tok, Msg: "want =N"}
	}
	n, err := parseLimit(rest[1:])
	if err != nil {
		return 0, &HostsError{Entry: tok, Msg: err.Error()}
	}
	return n, nil
}

func parseLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit || s[0] == '+' {
		return 0, fmt.Errorf("limit %q: want a number from 1 to %d", s, maxLimit)
	}
	return n, nil
}

// cursor walks one entry.
type cursor struct {
	tok string
	s   string // what is left
}

func (c *cursor) fail(format string, args ...any) error {
	return &HostsError{Entry: c.tok, Msg: fmt.Sprintf(format, args...)}
}

// upTo consumes and returns everything before the first byte in stops.
func (c *cursor) upTo(stops string) string {
	i := strings.IndexAny(c.s, stops)
	if i < 0 {
		i = len(c.s)
	}
	v := c.s[:i]
	c.s = c.s[i:]
	return v
}

// limit parses an optional "/N".
func (c *cursor) limit(h *HostSpec) error {
	if !strings.HasPrefix(c.s, "/") {
		return nil
	}
	c.s = c.s[1:]
	digits := c.upTo(":,")
	n, err := parseLimit(digits)
	if err != nil {
		return c.fail("%v", err)
	}
	h.Limit = n
	return nil
}

// options parses ",lzo,cpp,..." to the end of the entry.
func (c *cursor) options(h *HostSpec) error {
	for c.s != "" {
		if c.s[0] != ',' {
			return c.fail("unexpected %q", c.s)
		}
		c.s = c.s[1:]
		switch opt := c.upTo(","); opt {
		case "lzo":
			h.LZO = true
		case "cpp":
			h.CPP = true
		case "down":
			h.Down = true
		case "auth":
			// GSS-API authentication (builds with --with-auth); it changes
			// nothing in the host's address or limits.
		default:
			return c.fail("unknown option %q (want lzo, cpp, down or auth)", opt)
		}
	}
	if h.CPP && !h.LZO {
		return c.fail("pump mode (',cpp') requires compression (',lzo')")
	}
	return nil
}

func parseEntry(tok string) (HostSpec, error) {
	c := &cursor{tok: tok, s: tok}
	h := HostSpec{Text: tok, Limit: 4}
	switch {
	case tok == "+zeroconf":
		return h, c.fail("zeroconf discovery cannot be migrated: list the hosts by name")
	case tok == "localhost" || strings.HasPrefix(tok, "localhost/"):
		h.Host, h.Local, h.Limit = "localhost", true, 2
		c.s = tok[len("localhost"):]
		if err := c.limit(&h); err != nil {
			return h, err
		}
		if c.s != "" {
			return h, c.fail("unexpected %q after localhost's limit", c.s)
		}
		return h, nil
	case strings.Contains(tok, "@"):
		h.SSH = true
		h.User = c.upTo("@")
		c.s = c.s[1:]
		h.Host = c.upTo("/:,")
		if err := checkHostName(h.Host); err != nil {
			return h, c.fail("%v", err)
		}
		if err := c.limit(&h); err != nil {
			return h, err
		}
		if strings.HasPrefix(c.s, ":") {
			c.s = c.s[1:]
			h.Command = c.upTo(",")
		}
		return h, c.options(&h)
	}
	if strings.HasPrefix(c.s, "[") {
		c.s = c.s[1:]
		h.Host = c.upTo("]/,")
		if !strings.HasPrefix(c.s, "]") {
			return h, c.fail("IPv6 address needs a closing ']'")
		}
		c.s = c.s[1:]
		if ip := net.ParseIP(h.Host); ip == nil || ip.To4() != nil {
			return h, c.fail("%q is not an IPv6 address", h.Host)
		}
	} else {
		h.Host = c.upTo("/:,")
		if err := checkHostName(h.Host); err != nil {
			return h, c.fail("%v", err)
		}
	}
	h.Port = DefaultPort
	if err := c.limit(&h); err != nil { // old style: HOST/LIMIT:PORT
		return h, err
	}
	if strings.HasPrefix(c.s, ":") {
		c.s = c.s[1:]
		p := c.upTo("/,")
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > math.MaxUint16 || p[0] == '+' {
			return h, c.fail("port %q: want a number from 1 to 65535", p)
		}
		h.Port = n
	}
	if err := c.limit(&h); err != nil {
		return h, err
	}
	return h, c.options(&h)
}

// checkHostName accepts DNS names and IPv4 addresses: letters, digits,
// '.', '-' and '_'.
func checkHostName(s string) error {
	if s == "" {
		return errors.New("host name required")
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '-' || b == '_') {
			return fmt.Errorf("host name %q: unexpected %q", s, b)
		}
	}
	if s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("host name %q must start with a letter or digit", s)
	}
	return nil
}

// Addr is the host's TCP address, host:port ([v6]:port for IPv6).
func (h HostSpec) Addr() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// FarmLine returns the dcc farm-file line for a distccd host:
//
//	NAME NCPUS POWER protocol=distcc addr=HOST:PORT compiler=COMPILER slots=LIMIT
//
// NAME is the host, with ":PORT" when the port is not distccd's default;
// NCPUS is the limit (a host list does not say how many CPUs a host has,
// and distcc users set the limit from them); slots is the limit. compiler
// is what the farm file's compiler= needs: a compiler name the broker
// resolves on its own machine (gcc, clang-14) or a fingerprint ("TARGET
// VERSION LINE", quoted in the line since it holds spaces); a host list
// cannot say which compiler a distccd runs. An ",lzo" entry is fine: the
// farm speaks protocol 1, which every distccd accepts. ssh, pump (",cpp"),
// localhost and ",down" entries are errors, each saying why.
func FarmLine(h HostSpec, power float64, compiler string) (string, error) {
	switch {
	case h.SSH:
		return "", fmt.Errorf("%s: ssh hosts cannot join the farm: it reaches distccd over TCP only; run distccd --daemon there and list HOST[:PORT]", h.Text)
	case h.CPP:
		return "", fmt.Errorf("%s: pump mode (',cpp') is not spoken by the farm, which preprocesses on the client; drop ',cpp' to use the host over protocol 1", h.Text)
	case h.Local:
		return "", fmt.Errorf("%s: localhost is this machine, not a farm host; dcc compiles locally by itself when the farm is busy", h.Text)
	case h.Down:
		return "", fmt.Errorf("%s: the host is marked ',down'", h.Text)
	case !(power > 0 && power <= 1000): // also refuses NaN and Inf
		return "", fmt.Errorf("%s: power %v: want a number above 0, at most 1000", h.Text, power)
	case h.Port < 1 || h.Port > math.MaxUint16 || h.Limit < 1 || h.Limit > maxLimit:
		return "", fmt.Errorf("%s: port %d or limit %d out of range", h.Text, h.Port, h.Limit)
	}
	if err := checkHostName(h.Host); err != nil && (net.ParseIP(h.Host) == nil) {
		return "", fmt.Errorf("%s: %v", h.Text, err)
	}
	c, err := farmValue(compiler)
	if err != nil {
		return "", fmt.Errorf("%s: compiler %q: %v", h.Text, compiler, err)
	}
	name := h.Host
	if h.Port != DefaultPort {
		name = h.Addr()
	}
	return fmt.Sprintf("%s %d %s protocol=distcc addr=%s compiler=%s slots=%d",
		name, h.Limit, strconv.FormatFloat(power, 'g', -1, 64), h.Addr(), c, h.Limit), nil
}

// farmValue writes v as a farm-file value: as is, or in double quotes
// when it holds a space, a tab or a '#' (a fingerprint does). A value the
// farm file cannot hold (empty, a quote, a control character) is an error.
func farmValue(v string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", errors.New("want a compiler name (gcc) or fingerprint")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || (c < ' ' && c != '\t') || c == 0x7f {
			return "", fmt.Errorf("%q cannot be written in a farm file", c)
		}
	}
	if strings.ContainsAny(v, " \t#") {
		return `"` + v + `"`, nil
	}
	return v, nil
}
