// Package client is what runs in every `dcc` process on an engineer's
// machine: it resolves the real compiler, classifies the command line,
// preprocesses locally, hands the job to the per-user agent and writes the
// object, stdout, stderr and exit status back exactly as the compiler
// would; whenever the farm cannot serve it runs the compiler locally. It
// also implements `dcc status` and `dcc farm`.
package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/dcc-farm/dcc/internal/agentlink"
)

// Config is the client configuration: defaults, then ~/.dccrc (or the file
// DCC_CONFIG names), then environment variables.
type Config struct {
	Broker     string        // DCC_BROKER, broker = "host:port"
	Identity   string        // DCC_IDENTITY, identity = "...": the user's credential (default ~/.config/dcc/identity.pem)
	Verbose    bool          // DCC_VERBOSE=1, verbose = true
	MaxWait    time.Duration // DCC_MAX_WAIT, max_wait = "60s": longest wait for a lease
	AgentIdle  time.Duration // DCC_AGENT_IDLE, agent_idle = "10m": the agent exits after this long unused
	RuntimeDir string        // DCC_RUNTIME_DIR, runtime_dir: agent socket and log
	LocalSlots int           // DCC_LOCAL_SLOTS, local_slots: local compiles at once (default: CPUs)
	LocalPower float64       // DCC_LOCAL_POWER, local_power: this machine's power index (default 1)
	NoAgent    bool          // DCC_NO_AGENT=1: never start an agent (compile locally if none runs)
	User       string        // DCC_USER, user: whom to charge; honoured only for an admin's credential (a user is charged as the name in its own)
	Verify     int           // DCC_VERIFY=N, verify = N: also compile 1 in N remote jobs locally and compare
	BuildsDir  string        // DCC_BUILDS_DIR, builds_dir: where build timelines are kept ("": none; default ~/.cache/dcc/builds)
	KeepBuilds int           // DCC_KEEP_BUILDS, keep_builds: how many builds to keep (default 20)
	NoCache    bool          // DCC_CACHE=0, cache = false: do not use the farm's result cache
}

type fileConfig struct {
	Broker     string  `toml:"broker"`
	Identity   string  `toml:"identity"`
	Verbose    bool    `toml:"verbose"`
	MaxWait    string  `toml:"max_wait"`
	AgentIdle  string  `toml:"agent_idle"`
	RuntimeDir string  `toml:"runtime_dir"`
	LocalSlots int     `toml:"local_slots"`
	LocalPower float64 `toml:"local_power"`
	User       string  `toml:"user"`
	Verify     int     `toml:"verify"`
	BuildsDir  *string `toml:"builds_dir"`
	KeepBuilds int     `toml:"keep_builds"`
	Cache      *bool   `toml:"cache"`
}

// LoadConfig builds the configuration. Problems are returned as warnings:
// a broken config must never fail a build, only make it local.
func LoadConfig() (Config, []string) {
	var warn []string
	c := Config{MaxWait: 60 * time.Second, AgentIdle: 10 * time.Minute, LocalSlots: numCPU(), LocalPower: 1,
		BuildsDir: defaultBuildsDir(), KeepBuilds: 20}
	path := os.Getenv("DCC_CONFIG")
	if path == "" {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, ".dccrc")
		}
	}
	if path != "" {
		var fc fileConfig
		if _, err := toml.DecodeFile(path, &fc); err == nil {
			c.Broker, c.Identity, c.Verbose, c.RuntimeDir, c.User = fc.Broker, fc.Identity, fc.Verbose, fc.RuntimeDir, fc.User
			if fc.LocalSlots > 0 {
				c.LocalSlots = fc.LocalSlots
			}
			c.Verify = fc.Verify
			if fc.BuildsDir != nil {
				c.BuildsDir = *fc.BuildsDir
			}
			if fc.KeepBuilds > 0 {
				c.KeepBuilds = fc.KeepBuilds
			}
			if fc.Cache != nil {
				c.NoCache = !*fc.Cache
			}
			if fc.LocalPower > 0 {
				c.LocalPower = fc.LocalPower
			}
			setDur(&c.MaxWait, fc.MaxWait, "max_wait", &warn)
			setDur(&c.AgentIdle, fc.AgentIdle, "agent_idle", &warn)
		} else if !os.IsNotExist(err) {
			warn = append(warn, fmt.Sprintf("config %s: %v", path, err))
		}
	}
	if v := os.Getenv("DCC_BROKER"); v != "" {
		c.Broker = v
	}
	if v := os.Getenv("DCC_IDENTITY"); v != "" {
		c.Identity = v
	}
	if v := os.Getenv("DCC_VERBOSE"); v != "" {
		c.Verbose = v != "0" && v != "false"
	}
	if v := os.Getenv("DCC_CACHE"); v != "" {
		c.NoCache = v == "0" || v == "false"
	}
	if v := os.Getenv("DCC_NO_AGENT"); v != "" {
		c.NoAgent = v != "0" && v != "false"
	}
	if v := os.Getenv("DCC_RUNTIME_DIR"); v != "" {
		c.RuntimeDir = v
	}
	if v := os.Getenv("DCC_USER"); v != "" {
		c.User = v
	}
	if v := os.Getenv("DCC_LOCAL_SLOTS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.LocalSlots = n
		} else {
			warn = append(warn, "DCC_LOCAL_SLOTS: not a positive integer")
		}
	}
	if v, ok := os.LookupEnv("DCC_BUILDS_DIR"); ok {
		c.BuildsDir = v
	}
	if v := os.Getenv("DCC_KEEP_BUILDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.KeepBuilds = n
		} else {
			warn = append(warn, "DCC_KEEP_BUILDS: not a positive integer")
		}
	}
	if v := os.Getenv("DCC_VERIFY"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			c.Verify = n
		} else {
			warn = append(warn, "DCC_VERIFY: not a non-negative integer")
		}
	}
	if v := os.Getenv("DCC_LOCAL_POWER"); v != "" {
		if p, err := strconv.ParseFloat(v, 64); err == nil && p > 0 {
			c.LocalPower = p
		} else {
			warn = append(warn, "DCC_LOCAL_POWER: not a positive number")
		}
	}
	setDur(&c.MaxWait, os.Getenv("DCC_MAX_WAIT"), "DCC_MAX_WAIT", &warn)
	setDur(&c.AgentIdle, os.Getenv("DCC_AGENT_IDLE"), "DCC_AGENT_IDLE", &warn)
	if c.RuntimeDir == "" {
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			c.RuntimeDir = filepath.Join(x, "dcc")
		} else {
			c.RuntimeDir = filepath.Join(os.TempDir(), fmt.Sprintf("dcc-%d", os.Getuid()))
		}
	}
	if c.Identity == "" {
		if p, err := agentlink.DefaultIdentity(); err == nil {
			c.Identity = p
		}
	}
	return c, warn
}

func setDur(dst *time.Duration, s, name string, warn *[]string) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		*warn = append(*warn, fmt.Sprintf("%s: bad duration %q", name, s))
		return
	}
	*dst = d
}

// defaultBuildsDir is where build records go: the user's cache.
func defaultBuildsDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dcc", "builds")
	}
	return ""
}
