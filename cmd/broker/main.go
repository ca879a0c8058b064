// Command broker runs the farm's broker: it knows every host, grants
// leases tier by tier with per-user fair share, and serves status and
// metrics. `broker simulate` replays a workload on a virtual clock.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dcc-farm/dcc/internal/broker"
	"github.com/dcc-farm/dcc/internal/cli"
	"github.com/dcc-farm/dcc/internal/logging"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "simulate" {
		os.Exit(simulate(os.Args[2:]))
	}
	cfg := broker.DefaultConfig()
	if err := cli.LoadFile(os.Args[1:], "DCC_BROKER", &cfg); err != nil {
		fatal(err)
	}
	fs := flag.NewFlagSet("broker", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: broker --listen HOST:PORT --http HOST:PORT --farm FILE --state DIR --key FILE\n"+
			"       broker simulate --scenario FILE [--policy NAME|all] [--json]\n\n"+
			"Every flag can also be set in a TOML file (--config, keys as in the flag names with _) or by the environment variable shown.\n\n")
		fs.PrintDefaults()
	}
	fs.String("config", "", "TOML config file")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address for volunteers and clients")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP address for the status page, /v1/status, /metrics and the API (empty: none)")
	fs.StringVar(&cfg.FarmFile, "farm", cfg.FarmFile, "farm file: NAME NCPUS POWER [key=value...] per line")
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "directory for the usage database and the token signing key")
	fs.StringVar(&cfg.KeyFile, "key", cfg.KeyFile, "file holding the farm secret")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "a lease not renewed for this long is revoked")
	fs.DurationVar(&cfg.HalfLife, "half-life", cfg.HalfLife, "half-life of fair-share usage")
	fs.DurationVar(&cfg.MaxWait, "max-wait", cfg.MaxWait, "longest a lease request may wait in the queue")
	fs.IntVar(&cfg.MaxStreams, "max-streams", cfg.MaxStreams, "streams served at once per client session (more are told to compile locally)")
	fs.IntVar(&cfg.MaxQueued, "max-queued", cfg.MaxQueued, "lease requests one user may have waiting (more are told to compile locally)")
	fs.Float64Var(&cfg.Overload, "overload", cfg.Overload, "foreign load per CPU (load1 minus our jobs, over cpus) above which a host drops one tier")
	fs.Float64Var(&cfg.Saturated, "saturated", cfg.Saturated, "foreign load per CPU above which a host gets no jobs")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or console")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	if err := cli.ApplyEnv(fs, "DCC_BROKER"); err != nil {
		fatal(err)
	}
	fs.Parse(os.Args[1:])
	logs, err := logging.New(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fatal(err)
	}
	b, err := broker.New(cfg, logs)
	if err != nil {
		fatal(err)
	}
	if err := b.Start(); err != nil {
		fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	b.Close()
	logs.Log.Sync()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "broker:", err)
	os.Exit(2)
}
