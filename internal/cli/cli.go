// Package cli binds a daemon's flags to its other configuration sources:
// defaults, then a TOML config file, then environment variables, then the
// command line, each overriding the one before.
package cli

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// EnvName is the environment variable for a flag: PREFIX_FLAG_NAME.
func EnvName(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// LoadFile decodes a TOML config file into cfg if path is not empty. It
// looks for the path in args (--config X or --config=X) and in the
// PREFIX_CONFIG variable, before flags are parsed.
func LoadFile(args []string, prefix string, cfg any) error {
	path := os.Getenv(prefix + "_CONFIG")
	for i, a := range args {
		if a == "--config" || a == "-config" {
			if i+1 < len(args) {
				path = args[i+1]
			}
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		} else if v, ok := strings.CutPrefix(a, "-config="); ok {
			path = v
		}
	}
	if path == "" {
		return nil
	}
	md, err := toml.DecodeFile(path, cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("config %s: unknown keys %v", path, u)
	}
	return nil
}

// ApplyEnv sets every flag of fs whose PREFIX_NAME variable is set, and
// appends the variable's name to each flag's usage text.
func ApplyEnv(fs *flag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(prefix, f.Name)
		f.Usage += " [$" + name + "]"
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("$%s: %w", name, e)
			}
		}
	})
	return err
}

// Size is a byte count given as "10GiB", "512MiB", "300M", "1g" or a plain
// number of bytes. It works as a flag.Value and in TOML files.
type Size int64

// ParseSize reads a Size: a non-negative number and an optional unit
// (k, M, G, T, with or without "iB" or "B"; all powers of 1024).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number and an optional unit (KiB, MiB, GiB, TiB)", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (KiB, MiB, GiB, TiB)", s, t[i:])
	}
	v := n * float64(uint64(1)<<sh)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(v), nil
}

func (z *Size) String() string {
	v := int64(*z)
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if v != 0 && v%(1<<u.shift) == 0 {
			return strconv.FormatInt(v>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set implements flag.Value.
func (z *Size) Set(s string) error {
	v, err := ParseSize(s)
	if err == nil {
		*z = v
	}
	return err
}

// UnmarshalText lets TOML files say cache_size = "10GiB".
func (z *Size) UnmarshalText(b []byte) error { return z.Set(string(b)) }
