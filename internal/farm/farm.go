// Package farm parses the admin's farm file: the hosts allowed to volunteer,
// with their CPU count and power index, in DMUCS's format.
//
//	# NAME  NCPUS  POWER  [key=value ...]
//	sun1    8      3      slots=8 targets=sparc-sun-solaris2.10
//	linux7  16     4
//	desk12  2      1      weight=1
//
// Recognised keys:
//
//	slots=N          jobs at once (default: ncpus)
//	targets=T,...    target triples the host may serve (default: any)
//	users=U,...      the users it serves (default: everyone)
//	protocol=distcc  a stock distccd, not a dcc volunteer (default: dcc)
//	addr=HOST:PORT   a distccd's address (default: NAME:3632)
//	compiler=C       a distccd's compiler: a fingerprint ("TARGET VERSION
//	                 LINE", as dcc status lists them) or a name (gcc, clang,
//	                 ...) that the broker resolves on its own machine
//
// Unknown keys are kept in Extra.
package farm

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Host is one farm-file line.
type Host struct {
	Name    string
	CPUs    int
	Power   float64
	Slots   int      // 0: as many as the volunteer offers, capped at CPUs... see Broker
	Targets []string // empty: any
	Users   []string // empty: everyone
	// Protocol is ProtocolDCC (a volunteer registers) or ProtocolDistcc
	// (a stock distccd at Addr, offering Compiler; the broker probes it).
	Protocol string
	Addr     string
	Compiler string
	Extra    map[string]string
	Line     int
}

// Protocols a farm host speaks.
const (
	ProtocolDCC    = "dcc"
	ProtocolDistcc = "distcc"
)

// Distcc reports whether the host is a stock distccd.
func (h Host) Distcc() bool { return h.Protocol == ProtocolDistcc }

// Farm is a parsed farm file.
type Farm struct {
	Hosts map[string]Host
	// Users holds per-user weights from "user NAME weight=W" lines.
	Users map[string]float64
}

// Names returns the host names sorted.
func (f *Farm) Names() []string {
	out := make([]string, 0, len(f.Hosts))
	for n := range f.Hosts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseError names the line that failed.
type ParseError struct {
	Line int
	Text string
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("farm file line %d %q: %s", e.Line, e.Text, e.Msg)
}

// Load reads and parses a farm file.
func Load(path string) (*Farm, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse parses a farm file. Lines "user NAME weight=W" set user weights.
func Parse(r io.Reader) (*Farm, error) {
	farm := &Farm{Hosts: make(map[string]Host), Users: make(map[string]float64)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		bad := func(msg string) error { return &ParseError{Line: n, Text: raw, Msg: msg} }
		fields, ok := splitFields(raw)
		if !ok {
			return nil, bad("unterminated quote")
		}
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "user" {
			if len(fields) != 3 || !strings.HasPrefix(fields[2], "weight=") {
				return nil, bad("want: user NAME weight=W")
			}
			w, err := strconv.ParseFloat(strings.TrimPrefix(fields[2], "weight="), 64)
			if err != nil || !(w > 0 && w <= 1e6) { // also refuses NaN and Inf
				return nil, bad("weight must be a positive number")
			}
			farm.Users[fields[1]] = w
			continue
		}
		if len(fields) < 3 {
			return nil, bad("want: NAME NCPUS POWER [key=value...]")
		}
		h := Host{Name: fields[0], Line: n, Extra: map[string]string{}, Protocol: ProtocolDCC}
		cpus, err := strconv.Atoi(fields[1])
		if err != nil || cpus < 1 || cpus > 4096 {
			return nil, bad("NCPUS must be an integer from 1 to 4096")
		}
		h.CPUs = cpus
		p, err := strconv.ParseFloat(fields[2], 64)
		if err != nil || !(p > 0 && p <= 1000) { // also refuses NaN and Inf
			return nil, bad("POWER must be a positive number")
		}
		h.Power = p
		for _, kv := range fields[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, bad(fmt.Sprintf("field %q is not key=value", kv))
			}
			switch k {
			case "slots":
				s, err := strconv.Atoi(v)
				if err != nil || s < 1 || s > 4096 {
					return nil, bad("slots must be an integer from 1 to 4096")
				}
				h.Slots = s
			case "targets":
				h.Targets = list(v)
			case "users":
				h.Users = list(v)
				if len(h.Users) == 0 {
					return nil, bad("users= names no user")
				}
			case "protocol":
				if v != ProtocolDCC && v != ProtocolDistcc {
					return nil, bad("protocol must be dcc or distcc")
				}
				h.Protocol = v
			case "addr":
				if _, _, err := net.SplitHostPort(v); err != nil {
					return nil, bad("addr must be HOST:PORT")
				}
				h.Addr = v
			case "compiler":
				h.Compiler = v
			default:
				h.Extra[k] = v
			}
		}
		if _, dup := farm.Hosts[h.Name]; dup {
			return nil, bad("host listed twice")
		}
		if h.Distcc() {
			if h.Compiler == "" {
				return nil, bad("a distccd host needs compiler= (a fingerprint or a name such as gcc): distccd cannot say which compiler it has")
			}
			if h.Addr == "" {
				h.Addr = net.JoinHostPort(h.Name, "3632")
			}
		} else if h.Addr != "" || h.Compiler != "" {
			return nil, bad("addr= and compiler= are for protocol=distcc hosts; a volunteer reports its own")
		}
		farm.Hosts[h.Name] = h
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("farm file: %w", err)
	}
	return farm, nil
}

// splitFields splits a line into white-space separated fields, up to a
// '#' that starts a comment; a double-quoted part of a field keeps its
// spaces (compiler="x86_64-linux-gnu gcc version 12.2.0") and loses its
// quotes. ok is false for an unterminated quote.
func splitFields(line string) (fields []string, ok bool) {
	var cur strings.Builder
	in, started := false, false
	for _, r := range line {
		switch {
		case r == '"':
			in, started = !in, true
		case in:
			cur.WriteRune(r)
		case r == '#':
			goto end
		case r == ' ' || r == '\t':
			if started {
				fields = append(fields, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
end:
	if in {
		return nil, false
	}
	if started {
		fields = append(fields, cur.String())
	}
	return fields, true
}

func list(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// AllowsTarget reports whether a host may serve a compiler of target triple t.
func (h Host) AllowsTarget(t string) bool {
	return len(h.Targets) == 0 || slices.Contains(h.Targets, t)
}
