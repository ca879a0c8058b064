// Command volunteer lends this machine's CPUs to the farm: it registers
// with the broker, reports load and availability, and runs compile jobs
// that carry a lease token the broker signed for this host.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dcc-farm/dcc/internal/cli"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/volunteer"
)

func main() {
	// `volunteer __sandbox`, the helper each job's compiler starts from, is
	// served before main runs, by package sandbox's init (see its doc).
	if len(os.Args) > 1 && (os.Args[1] == volunteer.ControlPause || os.Args[1] == volunteer.ControlResume) {
		os.Exit(control(os.Args[1], os.Args[2:]))
	}
	cfg := volunteer.DefaultConfig()
	if err := cli.LoadFile(os.Args[1:], "DCC_VOLUNTEER", &cfg); err != nil {
		fatal(err)
	}
	fs := flag.NewFlagSet("volunteer", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: volunteer --broker HOST:PORT --listen HOST:PORT --identity FILE [--slots N]\n"+
			"       volunteer pause [--reason TEXT] [--control SOCKET]   take no new jobs (drain)\n"+
			"       volunteer resume [--control SOCKET]\n\n"+
			"Availability rules (owner idle, schedule, load) go in the [availability] table of the TOML config; see docs/operations.md.\n"+
			"Every flag can also be set in a TOML file (--config, keys as in the flag names with _) or by the environment variable shown.\n\n")
		fs.PrintDefaults()
	}
	compilers := strings.Join(cfg.Compilers, ",")
	fs.String("config", "", "TOML config file")
	fs.StringVar(&cfg.Broker, "broker", cfg.Broker, "broker address HOST:PORT")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to accept jobs on")
	fs.StringVar(&cfg.Advertise, "advertise", cfg.Advertise, "address clients dial for jobs (default: the listen address)")
	fs.StringVar(&cfg.Name, "name", cfg.Name, "this host's name in the broker's farm file (default: its credential's; if given, must match it)")
	fs.IntVar(&cfg.Slots, "slots", cfg.Slots, "jobs to run at once (default: number of CPUs)")
	fs.StringVar(&cfg.Identity, "identity", cfg.Identity, "this host's credential: the PEM file from `broker enroll host NAME`")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "address for /metrics (empty: none)")
	fs.StringVar(&compilers, "compilers", compilers, "comma-separated compilers to offer (default: gcc,g++,cc,c++,clang,clang++ found on PATH)")
	fs.StringVar(&cfg.TempDir, "temp-dir", cfg.TempDir, "parent directory for job directories")
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "directory for state kept across restarts (the token replay log)")
	fs.DurationVar(&cfg.ClockSkew, "clock-skew", cfg.ClockSkew, "how far this host's clock may run ahead of the broker's before tokens count as expired")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", cfg.JobTimeout, "wall-clock and CPU limit per job")
	fs.Uint64Var(&cfg.MaxMemory, "max-memory", cfg.MaxMemory, "address-space limit per job in bytes")
	fs.IntVar(&cfg.Nice, "nice", cfg.Nice, "niceness added to jobs")
	fs.DurationVar(&cfg.Report, "report", cfg.Report, "interval of load reports to the broker")
	if cfg.Control == "" { // keep a socket set in the config file
		cfg.Control = volunteer.DefaultControl()
	}
	fs.StringVar(&cfg.Control, "control", cfg.Control, "unix socket for volunteer pause/resume (empty: none)")
	fs.StringVar(&cfg.LoadSource, "load-source", cfg.LoadSource, "proc (report /proc/loadavg) or external (a monitor reports through the broker's API)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or console")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	if err := cli.ApplyEnv(fs, "DCC_VOLUNTEER"); err != nil {
		fatal(err)
	}
	fs.Parse(os.Args[1:])
	cfg.Compilers = nil
	for _, c := range strings.Split(compilers, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Compilers = append(cfg.Compilers, c)
		}
	}
	logs, err := logging.New(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fatal(err)
	}
	v, err := volunteer.New(cfg, logs)
	if err != nil {
		fatal(err)
	}
	if err := v.Start(); err != nil {
		fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	v.Close()
	logs.Log.Sync()
}

// control runs `volunteer pause` or `volunteer resume`.
func control(action string, args []string) int {
	fs := flag.NewFlagSet("volunteer "+action, flag.ExitOnError)
	sock := fs.String("control", volunteer.DefaultControl(), "the volunteer's control socket")
	reason := fs.String("reason", "", "why (shown in the farm status)")
	fs.Parse(args)
	msg, err := volunteer.Control(*sock, action, *reason)
	if err != nil {
		fmt.Fprintln(os.Stderr, "volunteer:", err)
		return 1
	}
	fmt.Println(msg)
	return 0
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "volunteer:", err)
	os.Exit(2)
}
