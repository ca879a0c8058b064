// Package cli binds a daemon's flags to its other configuration sources:
// defaults, then a TOML config file, then environment variables, then the
// command line, each overriding the one before.
package cli

import (
	"flag"
	"fmt"
	"os"
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
