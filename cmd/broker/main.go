// Command broker runs the farm's broker: it knows every host, grants
// leases tier by tier with per-user fair share, and serves status and
// metrics. `broker simulate` replays a workload on a virtual clock.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dcc-farm/dcc/internal/broker"
	"github.com/dcc-farm/dcc/internal/cli"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
)

const usage = `Usage: broker --listen HOST:PORT --http HOST:PORT --https HOST:PORT --farm FILE --state DIR
       broker enroll host|user|admin NAME --state DIR --out FILE
       broker enroll user --from FILE --state DIR --out-dir DIR
       broker revoke host|user|admin NAME --state DIR
       broker simulate --scenario FILE [--policy NAME|all] [--json]
       broker farm-lines [--compiler C] [--power P] [--users U,...] DISTCC_HOSTS...

The broker is the farm's certificate authority: its CA lives in --state,
made on first start or by the first enroll. enroll writes one PEM file per
name (the CA's certificate, the name's certificate and its key, mode 0600)
and works while the broker runs; revoke takes effect in the running broker
within 5 s (it closes the credential's sessions and tells every volunteer)
and survives restarts.

Every flag can also be set in a TOML file (--config, keys as in the flag names with _) or by the environment variable shown.

`

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "simulate":
			os.Exit(simulate(os.Args[2:]))
		case "enroll":
			os.Exit(identity.EnrollCmd(os.Args[2:], os.Stdout, os.Stderr))
		case "revoke":
			os.Exit(identity.RevokeCmd(os.Args[2:], os.Stdout, os.Stderr))
		case "farm-lines":
			os.Exit(farmLines(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	cfg := broker.DefaultConfig()
	if err := cli.LoadFile(os.Args[1:], "DCC_BROKER", &cfg); err != nil {
		fatal(err)
	}
	fs := flag.NewFlagSet("broker", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.String("config", "", "TOML config file")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address for volunteers and clients")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "plain HTTP address for the read-only status page, /v1/status and /metrics (empty: none)")
	fs.StringVar(&cfg.HTTPS, "https", cfg.HTTPS, "HTTPS address (client certificates) for the API that changes state (empty: none)")
	tlsNames := strings.Join(cfg.TLSNames, ",")
	fs.StringVar(&tlsNames, "tls-names", tlsNames, "extra comma-separated DNS names or IPs for the broker's certificate")
	fs.StringVar(&cfg.FarmFile, "farm", cfg.FarmFile, "farm file: NAME NCPUS POWER [key=value...] per line")
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "directory for the usage database, the token signing key and the farm's CA")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "a lease not renewed for this long is revoked")
	fs.DurationVar(&cfg.HalfLife, "half-life", cfg.HalfLife, "half-life of fair-share usage")
	fs.DurationVar(&cfg.MaxWait, "max-wait", cfg.MaxWait, "longest a lease request may wait in the queue")
	fs.IntVar(&cfg.MaxStreams, "max-streams", cfg.MaxStreams, "streams served at once per client session (more are told to compile locally)")
	fs.IntVar(&cfg.MaxQueued, "max-queued", cfg.MaxQueued, "lease requests one user may have waiting (more are told to compile locally)")
	fs.Float64Var(&cfg.Overload, "overload", cfg.Overload, "foreign load per CPU (load1 minus our jobs, over cpus) above which a host drops one tier")
	fs.Float64Var(&cfg.Saturated, "saturated", cfg.Saturated, "foreign load per CPU above which a host gets no jobs")
	fs.Var(&cfg.CacheSize, "cache-size", "size bound of the result cache in --cache-dir, e.g. 10GiB (0: no cache)")
	fs.StringVar(&cfg.CacheDir, "cache-dir", cfg.CacheDir, "directory of the result cache (default: STATE/cache)")
	fs.StringVar(&cfg.CacheRedis, "cache-redis", cfg.CacheRedis, "keep the result cache in the Redis server at HOST:PORT instead")
	fs.StringVar(&cfg.CacheSalt, "cache-salt", cfg.CacheSalt, "a string in every cache key: change it to disown every entry")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or console")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	if err := cli.ApplyEnv(fs, "DCC_BROKER"); err != nil {
		fatal(err)
	}
	fs.Parse(os.Args[1:])
	cfg.TLSNames = nil
	for _, n := range strings.Split(tlsNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.TLSNames = append(cfg.TLSNames, n)
		}
	}
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
