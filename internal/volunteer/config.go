// Package volunteer is the daemon on every machine that lends CPU: it
// registers with the broker, reports load and availability, and runs
// compile jobs for clients that present a lease token the broker signed
// for this host, this user and this job.
package volunteer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dcc-farm/dcc/internal/availability"
	"github.com/dcc-farm/dcc/internal/executor"
	"github.com/dcc-farm/dcc/internal/sandbox"
)

// Config configures a volunteer. Every field has a flag in cmd/volunteer
// and a key in its TOML config file.
type Config struct {
	Broker     string        `toml:"broker"`      // broker address HOST:PORT
	Listen     string        `toml:"listen"`      // where clients send jobs
	Advertise  string        `toml:"advertise"`   // address clients should dial (default: Listen, with the host filled in)
	Name       string        `toml:"name"`        // this host's name in the farm file: its credential's; if set, must match it
	Slots      int           `toml:"slots"`       // jobs at once (default: number of CPUs)
	Identity   string        `toml:"identity"`    // this host's credential (broker enroll host NAME)
	HTTP       string        `toml:"http"`        // metrics address ("" = none)
	Compilers  []string      `toml:"compilers"`   // compilers offered (names or paths); default: gcc g++ cc c++ clang clang++ found on PATH
	TempDir    string        `toml:"temp_dir"`    // parent of job directories
	StateDir   string        `toml:"state"`       // where the volunteer keeps state across restarts (the token replay log)
	ClockSkew  time.Duration `toml:"clock_skew"`  // how far this host's clock may run ahead of the broker's
	JobTimeout time.Duration `toml:"job_timeout"` // wall-clock limit per job
	MaxMemory  uint64        `toml:"max_memory"`  // address-space limit per job, bytes
	Nice       int           `toml:"nice"`        // niceness added to jobs
	Report     time.Duration `toml:"report"`      // status report interval
	LogFormat  string        `toml:"log_format"`
	LogLevel   string        `toml:"log_level"`
	// Control is the unix socket for `volunteer pause` and `volunteer resume`.
	Control string `toml:"control"`
	// LoadSource is "proc" (report /proc/loadavg) or "external" (an outside
	// monitor reports load through the broker's API).
	LoadSource string `toml:"load_source"`
	// Availability holds the rules for when this host may take work.
	Availability availability.Config `toml:"availability"`
	// Sandbox is the policy for confining compiles (docs/security.md):
	// extra directories compilers may read or run, and whether to refuse
	// jobs when the kernel cannot confine them.
	Sandbox sandbox.Config `toml:"sandbox"`
}

// DefaultControl is the control socket path used when none is configured.
func DefaultControl() string {
	if os.Getuid() == 0 {
		return "/run/dcc-volunteer.sock"
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "dcc-volunteer.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("dcc-volunteer-%d.sock", os.Getuid()))
}

// DefaultStateDir is where a volunteer keeps state when none is configured.
func DefaultStateDir() string {
	if os.Getuid() == 0 {
		return "/var/lib/dcc-volunteer"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "dcc-volunteer")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "dcc-volunteer")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("dcc-volunteer-%d", os.Getuid()))
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	lim := executor.DefaultLimits()
	return Config{
		Listen:     ":3632",
		Slots:      runtime.NumCPU(),
		JobTimeout: lim.Wall,
		MaxMemory:  lim.Memory,
		Nice:       lim.Nice,
		Report:     time.Second,
		ClockSkew:  time.Minute,
		StateDir:   DefaultStateDir(),
		LoadSource: "proc",
		LogFormat:  "json",
		LogLevel:   "info",
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Broker == "":
		return errors.New("--broker is required")
	case c.Identity == "":
		return errors.New("--identity is required (the host's credential, from broker enroll host NAME)")
	case c.Listen == "":
		return errors.New("--listen is required")
	case c.Slots < 1:
		return errors.New("--slots must be at least 1")
	case c.JobTimeout < time.Second:
		return errors.New("--job-timeout must be at least 1s")
	case c.Report <= 0 || c.Report > 2*time.Second:
		return errors.New("--report must be between 0 and 2s")
	case c.StateDir == "":
		return errors.New("--state is required")
	case c.ClockSkew < 0 || c.ClockSkew > time.Hour:
		return errors.New("--clock-skew must be between 0 and 1h")
	case c.LoadSource != "proc" && c.LoadSource != "external":
		return errors.New("--load-source must be proc or external")
	}
	if _, err := availability.Compile(c.Availability); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	return nil
}
