package client

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var dccVars = []string{
	"DCC_CONFIG", "DCC_BROKER", "DCC_IDENTITY", "DCC_VERBOSE", "DCC_NO_AGENT", "DCC_RUNTIME_DIR",
	"DCC_USER", "DCC_BUILDS_DIR", "DCC_KEEP_BUILDS", "DCC_LOCAL_SLOTS", "DCC_VERIFY", "DCC_LOCAL_POWER", "DCC_MAX_WAIT", "DCC_AGENT_IDLE",
}

// cleanEnv gives the test an environment with no dcc settings, a HOME
// without .dccrc and known USER and XDG_RUNTIME_DIR.
func cleanEnv(t *testing.T) string {
	t.Helper()
	for _, k := range dccVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USER", "tester")
	t.Setenv("LOGNAME", "")
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CACHE_HOME", "")
	return home
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigDefaults(t *testing.T) {
	home := cleanEnv(t)
	c, warn := LoadConfig()
	if len(warn) != 0 {
		t.Fatalf("warnings: %v", warn)
	}
	want := Config{
		MaxWait: 60 * time.Second, AgentIdle: 10 * time.Minute, LocalSlots: runtime.NumCPU(), LocalPower: 1,
		RuntimeDir: filepath.Join(home, "run", "dcc"), Identity: filepath.Join(home, ".config", "dcc", "identity.pem"),
		BuildsDir: filepath.Join(home, ".cache", "dcc", "builds"), KeepBuilds: 20,
	}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadConfigRuntimeDirFallbacks(t *testing.T) {
	cleanEnv(t)
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("USER", "")
	c, _ := LoadConfig()
	if c.RuntimeDir == "" || !strings.HasPrefix(c.RuntimeDir, os.TempDir()) {
		t.Errorf("RuntimeDir %q", c.RuntimeDir)
	}
	// The user is the credential's: no login name is sent to be honoured.
	if c.User != "" {
		t.Errorf("User %q, want none unless DCC_USER or user = is set", c.User)
	}
}

const fullRC = `broker = "broker.example:3633"
identity = "/etc/dcc/vic.pem"
verbose = true
max_wait = "90s"
agent_idle = "2m"
runtime_dir = "/run/user/1000/dcc-x"
local_slots = 3
local_power = 2.5
user = "vic"
verify = 20
builds_dir = "/var/tmp/vic-builds"
keep_builds = 5
`

func TestLoadConfigFile(t *testing.T) {
	want := Config{
		Broker: "broker.example:3633", Identity: "/etc/dcc/vic.pem", Verbose: true,
		MaxWait: 90 * time.Second, AgentIdle: 2 * time.Minute, RuntimeDir: "/run/user/1000/dcc-x",
		LocalSlots: 3, LocalPower: 2.5, User: "vic", Verify: 20, BuildsDir: "/var/tmp/vic-builds", KeepBuilds: 5,
	}
	tests := []struct {
		name string
		// where the file goes: "DCC_CONFIG" or "HOME"
		via string
	}{
		{"DCC_CONFIG", "DCC_CONFIG"},
		{"~/.dccrc", "HOME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := cleanEnv(t)
			if tt.via == "HOME" {
				writeFile(t, filepath.Join(home, ".dccrc"), fullRC)
			} else {
				t.Setenv("DCC_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "rc.toml"), fullRC))
			}
			c, warn := LoadConfig()
			if len(warn) != 0 {
				t.Fatalf("warnings: %v", warn)
			}
			if c != want {
				t.Fatalf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestLoadConfigEnvOverridesFile(t *testing.T) {
	cleanEnv(t)
	t.Setenv("DCC_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "rc"), fullRC))
	env := map[string]string{
		"DCC_BROKER": "other:1", "DCC_IDENTITY": "/k", "DCC_VERBOSE": "0", "DCC_NO_AGENT": "1",
		"DCC_RUNTIME_DIR": "/tmp/rd", "DCC_USER": "ann", "DCC_LOCAL_SLOTS": "7", "DCC_VERIFY": "0",
		"DCC_LOCAL_POWER": "0.5", "DCC_MAX_WAIT": "5s", "DCC_AGENT_IDLE": "1h", "DCC_BUILDS_DIR": "", "DCC_KEEP_BUILDS": "3",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, warn := LoadConfig()
	if len(warn) != 0 {
		t.Fatalf("warnings: %v", warn)
	}
	want := Config{
		Broker: "other:1", Identity: "/k", Verbose: false, NoAgent: true, RuntimeDir: "/tmp/rd", User: "ann",
		LocalSlots: 7, Verify: 0, LocalPower: 0.5, MaxWait: 5 * time.Second, AgentIdle: time.Hour, BuildsDir: "", KeepBuilds: 3,
	}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadConfigBooleans(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{{"1", true}, {"true", true}, {"yes", true}, {"0", false}, {"false", false}}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("DCC_VERBOSE", tt.v)
			t.Setenv("DCC_NO_AGENT", tt.v)
			c, _ := LoadConfig()
			if c.Verbose != tt.want || c.NoAgent != tt.want {
				t.Fatalf("Verbose %v NoAgent %v, want %v", c.Verbose, c.NoAgent, tt.want)
			}
		})
	}
}

func TestLoadConfigWarnings(t *testing.T) {
	tests := []struct {
		name    string
		rc      string            // file content ("" = no file)
		env     map[string]string // environment
		warnHas string
		check   func(c Config) bool
	}{
		{"bad max_wait in file", `max_wait = "soon"`, nil, "max_wait", func(c Config) bool { return c.MaxWait == 60*time.Second }},
		{"negative agent_idle in file", `agent_idle = "-1m"`, nil, "agent_idle", func(c Config) bool { return c.AgentIdle == 10*time.Minute }},
		{"bad DCC_MAX_WAIT", "", map[string]string{"DCC_MAX_WAIT": "60"}, "DCC_MAX_WAIT", func(c Config) bool { return c.MaxWait == 60*time.Second }},
		{"bad DCC_AGENT_IDLE keeps file value", `agent_idle = "3m"`, map[string]string{"DCC_AGENT_IDLE": "x"}, "DCC_AGENT_IDLE", func(c Config) bool { return c.AgentIdle == 3*time.Minute }},
		{"bad DCC_LOCAL_SLOTS", "", map[string]string{"DCC_LOCAL_SLOTS": "-2"}, "DCC_LOCAL_SLOTS", func(c Config) bool { return c.LocalSlots == runtime.NumCPU() }},
		{"bad DCC_VERIFY", "", map[string]string{"DCC_VERIFY": "often"}, "DCC_VERIFY", func(c Config) bool { return c.Verify == 0 }},
		{"bad DCC_LOCAL_POWER", "", map[string]string{"DCC_LOCAL_POWER": "0"}, "DCC_LOCAL_POWER", func(c Config) bool { return c.LocalPower == 1 }},
		{"broken TOML", "broker = \n", nil, "config", func(c Config) bool { return c.Broker == "" }},
		{"wrong type in TOML", "local_slots = \"four\"\n", nil, "config", func(c Config) bool { return c.LocalSlots == runtime.NumCPU() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			if tt.rc != "" {
				t.Setenv("DCC_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "rc"), tt.rc))
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, warn := LoadConfig()
			if len(warn) == 0 || !strings.Contains(strings.Join(warn, "\n"), tt.warnHas) {
				t.Fatalf("warnings %q, want one about %s", warn, tt.warnHas)
			}
			if !tt.check(c) {
				t.Fatalf("config after a bad value: %+v", c)
			}
		})
	}
}

func TestLoadConfigMissingFileIsSilent(t *testing.T) {
	cleanEnv(t)
	t.Setenv("DCC_CONFIG", filepath.Join(t.TempDir(), "does-not-exist"))
	if _, warn := LoadConfig(); len(warn) != 0 {
		t.Fatalf("warnings for a missing file: %v", warn)
	}
}

func TestLoadConfigFileSanitised(t *testing.T) {
	cleanEnv(t)
	t.Setenv("DCC_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "rc"), "local_slots = -3\nlocal_power = -1\n"))
	c, _ := LoadConfig()
	if c.LocalSlots != runtime.NumCPU() || c.LocalPower != 1 {
		t.Fatalf("LocalSlots %d LocalPower %g from negative file values", c.LocalSlots, c.LocalPower)
	}
}

// capture runs f with os.Stdout and os.Stderr redirected and returns what
// was written.
func capture(t *testing.T, f func()) (stdout, stderr string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	os.Stdout, os.Stderr = wo, we
	outc, errc := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outc <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	defer func() {
		os.Stdout, os.Stderr = oldOut, oldErr
	}()
	f()
	wo.Close()
	we.Close()
	return <-outc, <-errc
}

func TestMainUsage(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name       string
		argv       []string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"no args", []string{"dcc"}, 2, "", "Usage:"},
		{"no args, full path", []string{"/usr/local/bin/dcc"}, 2, "", "Usage:"},
		{"--help", []string{"dcc", "--help"}, 0, "Usage:", ""},
		{"-h", []string{"dcc", "-h"}, 0, "Usage:", ""},
		{"help", []string{"dcc", "help"}, 0, "DCC_BROKER", ""},
		{"version", []string{"dcc", "version"}, 0, "dcc ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			out, errOut := capture(t, func() { code = Main(tt.argv) })
			if code != tt.want {
				t.Errorf("Main(%q) = %d, want %d; stderr %q", tt.argv, code, tt.want, errOut)
			}
			if tt.wantStdout != "" && !strings.Contains(out, tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", out, tt.wantStdout)
			}
			if tt.wantStderr != "" && !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantStderr)
			}
		})
	}
}

// Every setting the usage text documents exists.
func TestUsageListsEveryVariable(t *testing.T) {
	for _, k := range dccVars {
		if k == "DCC_VERIFY" || k == "DCC_CONFIG" {
			continue
		}
		if !strings.Contains(usage, k) {
			t.Errorf("usage does not mention %s", k)
		}
	}
	if !strings.Contains(usage, "DCC_CONFIG") {
		t.Error("usage does not mention DCC_CONFIG")
	}
	t.Run("DCC_VERIFY", func(t *testing.T) {
		if !strings.Contains(usage, "DCC_VERIFY") {
			t.Fatal("dcc --help (internal/client/main.go usage) does not list DCC_VERIFY / verify = N, which LoadConfig reads and README promises --help lists")
		}
	})
}
