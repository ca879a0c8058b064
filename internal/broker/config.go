// Package broker is the farm's central daemon: it authenticates volunteers
// and clients, keeps host state, grants leases through the scheduler,
// reclaims them when they expire or their holder or host goes away, keeps
// fair-share usage on disk, and serves status and metrics over HTTP.
package broker

import (
	"errors"
	"time"

	"github.com/dcc-farm/dcc/internal/cli"
)

// Config configures a broker. Every field has a flag in cmd/broker and a
// key in the broker's TOML config file.
type Config struct {
	Listen   string `toml:"listen"` // TCP address for volunteers and clients
	HTTP     string `toml:"http"`   // plain HTTP: the read-only status page, /v1/status and /metrics
	HTTPS    string `toml:"https"`  // HTTPS with client certificates: the API that changes state
	FarmFile string `toml:"farm"`   // the admin's farm file
	StateDir string `toml:"state"`  // usage database, token signing key, the farm's CA and revocations
	// TLSNames are extra DNS names or IP addresses for the broker's own
	// certificate (its host name, localhost and the listen addresses are
	// always in it), so that curl --cacert can check it by any of them.
	TLSNames []string      `toml:"tls_names"`
	LeaseTTL time.Duration `toml:"lease_ttl"` // a lease not renewed for this long is revoked
	HalfLife time.Duration `toml:"half_life"` // fair-share usage half-life
	MaxWait  time.Duration `toml:"max_wait"`  // longest a request may wait in the queue
	// MaxStreams bounds the streams served at once on one client session,
	// and MaxQueued the requests one user may have waiting: past them the
	// client is told to compile locally.
	MaxStreams int     `toml:"max_streams"`
	MaxQueued  int     `toml:"max_queued"`
	Overload   float64 `toml:"overload"`   // foreign load per CPU above which a host drops a tier
	Saturated  float64 `toml:"saturated"`  // foreign load per CPU above which a host gets no jobs
	LogFormat  string  `toml:"log_format"` // json or console
	LogLevel   string  `toml:"log_level"`
	// The result cache (docs/cache.md): CacheSize bounds the embedded
	// store in CacheDir (default STATE/cache; 0 turns the cache off);
	// CacheRedis, when set, names a Redis server to use instead; CacheSalt
	// goes into every key, so changing it disowns every entry.
	CacheSize  cli.Size `toml:"cache_size"`
	CacheDir   string   `toml:"cache_dir"`
	CacheRedis string   `toml:"cache_redis"`
	CacheSalt  string   `toml:"cache_salt"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:     ":3633",
		HTTP:       ":3634",
		HTTPS:      ":3635",
		StateDir:   "/var/lib/dcc-broker",
		LeaseTTL:   30 * time.Second,
		HalfLife:   time.Hour,
		MaxWait:    10 * time.Minute,
		MaxStreams: 2048,
		MaxQueued:  4096,
		Overload:   0.9,
		Saturated:  2.0,
		LogFormat:  "json",
		LogLevel:   "info",
		CacheSize:  10 << 30,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("--listen is required")
	case c.FarmFile == "":
		return errors.New("--farm is required")
	case c.StateDir == "":
		return errors.New("--state is required")
	case c.LeaseTTL < time.Second:
		return errors.New("--lease-ttl must be at least 1s")
	case c.HalfLife <= 0:
		return errors.New("--half-life must be positive")
	case c.Overload <= 0 || c.Saturated < c.Overload:
		return errors.New("--overload must be positive and --saturated at least --overload")
	case c.MaxStreams < 1 || c.MaxQueued < 1:
		return errors.New("--max-streams and --max-queued must be at least 1")
	case c.MaxWait <= 0:
		return errors.New("--max-wait must be positive")
	}
	return nil
}
