// Package status defines the farm status document: what GET /v1/status
// returns, what `dcc status --json` prints, and what the status page and
// the terminal table render.
package status

import "time"

// Doc is the whole farm status.
type Doc struct {
	Time     time.Time `json:"time"`
	Broker   string    `json:"broker"`
	Hosts    []Host    `json:"hosts"`
	Users    []User    `json:"users"`
	Leases   int       `json:"leases"`
	Queue    int       `json:"queue"`
	Slots    int       `json:"slots"`    // total slots of connected, usable hosts
	Busy     int       `json:"busy"`     // leased slots
	Reclaims []Reclaim `json:"reclaims"` // most recent first
	Uptime   float64   `json:"uptime_s"`
	Explain  *Explain  `json:"explain,omitempty"`
	Cache    *Cache    `json:"cache,omitempty"` // the result cache, when the broker keeps one
}

// Cache describes the farm's result cache. Hits and Misses count lookups
// since the broker started; Users splits them by user.
type Cache struct {
	Store     string      `json:"store"` // "disk DIR" or "redis ADDR"
	Entries   int64       `json:"entries"`
	Bytes     int64       `json:"bytes"`
	Hits      int64       `json:"hits"`
	Misses    int64       `json:"misses"`
	Evictions int64       `json:"evictions"`
	Corrupt   int64       `json:"corrupt"`
	Puts      int64       `json:"puts"`
	Users     []CacheUser `json:"users,omitempty"`
}

// HitRate is Hits over lookups, or 0 before the first.
func (c *Cache) HitRate() float64 { return hitRate(c.Hits, c.Misses) }

// CacheUser is one user's lookups.
type CacheUser struct {
	Name   string `json:"name"`
	Hits   int64  `json:"hits"`
	Misses int64  `json:"misses"`
}

// HitRate is Hits over lookups, or 0 before the first.
func (u CacheUser) HitRate() float64 { return hitRate(u.Hits, u.Misses) }

func hitRate(hits, misses int64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// Host is one farm host.
type Host struct {
	Name      string   `json:"name"`
	Addr      string   `json:"addr,omitempty"`
	CPUs      int      `json:"cpus"`
	Power     float64  `json:"power"`
	Slots     int      `json:"slots"`
	Busy      int      `json:"busy"`
	Tier      int      `json:"tier"`
	Reason    string   `json:"reason"`
	State     string   `json:"state"`
	Load1     float64  `json:"load1"`
	Load5     float64  `json:"load5"`
	Load15    float64  `json:"load15"`
	JobsDone  int64    `json:"jobs_done"`
	Failures  int64    `json:"failures"`
	Compilers []string `json:"compilers"`
	Note      string   `json:"note,omitempty"` // why unavailable / blocked
	// ClockSkewMs is the host's clock minus the broker's, from its last
	// report (lease tokens expire by the broker's clock).
	ClockSkewMs int64 `json:"clock_skew_ms,omitempty"`
	// Protocol is "dcc" (a volunteer) or "distcc" (a stock distccd), and
	// Auth how the farm knows the host: "mtls" (its credential) or
	// "unauthenticated" (distccd: by address only).
	Protocol string   `json:"protocol"`
	Auth     string   `json:"auth"`
	Users    []string `json:"users,omitempty"` // only these users may use it
	// Sandbox says what confines the host's compiles (its volunteer's
	// report), or why nothing does.
	Sandbox string `json:"sandbox,omitempty"`
}

// User is one user with running or waiting work or recent usage.
type User struct {
	Name    string  `json:"name"`
	Running int     `json:"running"`
	Waiting int     `json:"waiting"`
	Usage   float64 `json:"usage"` // decayed power-normalised slot-seconds
	Weight  float64 `json:"weight"`
	Share   float64 `json:"share"` // fraction of busy power-weighted slots held now
}

// Reclaim is a lease the broker took back.
type Reclaim struct {
	Time   time.Time `json:"time"`
	Lease  uint64    `json:"lease"`
	User   string    `json:"user"`
	Host   string    `json:"host"`
	Reason string    `json:"reason"`
}

// Explain says why a host is in its tier.
type Explain struct {
	Host   string `json:"host"`
	Tier   int    `json:"tier"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}
