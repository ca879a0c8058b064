package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type conf struct {
	Listen string        `toml:"listen"`
	Slots  int           `toml:"slots"`
	Name   string        `toml:"name"`
	Debug  bool          `toml:"debug"`
	Every  time.Duration `toml:"every"`
}

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	good := write(t, "listen = \":3633\"\nslots = 4\n")
	other := write(t, "name = \"from-other\"\n")
	missing := filepath.Join(t.TempDir(), "missing.toml")
	tests := []struct {
		name    string
		args    []string
		env     string
		want    conf
		wantErr string
	}{
		{"no config anywhere", []string{"--slots", "2"}, "", conf{}, ""},
		{"--config X", []string{"--config", good}, "", conf{Listen: ":3633", Slots: 4}, ""},
		{"--config=X", []string{"-v", "--config=" + good}, "", conf{Listen: ":3633", Slots: 4}, ""},
		{"-config X", []string{"-config", good}, "", conf{Listen: ":3633", Slots: 4}, ""},
		{"-config=X", []string{"-config=" + good}, "", conf{Listen: ":3633", Slots: 4}, ""},
		{"env only", nil, good, conf{Listen: ":3633", Slots: 4}, ""},
		{"flag beats env", []string{"--config", other}, good, conf{Name: "from-other"}, ""},
		{"last flag wins", []string{"--config", good, "--config=" + other}, "", conf{Name: "from-other"}, ""},
		{"--config at the end without a value", []string{"--config"}, "", conf{}, ""},
		{"missing file", []string{"--config", missing}, "", conf{}, "missing.toml"},
		{"missing file via env", nil, missing, conf{}, "missing.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DCC_X_CONFIG", tt.env)
			if tt.env == "" {
				os.Unsetenv("DCC_X_CONFIG")
			}
			var c conf
			err := LoadFile(tt.args, "DCC_X", &c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Fatalf("got %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, content string
		wantErr       []string
	}{
		{"unknown key", "listen = \":1\"\nlisten_addr = \":2\"\n", []string{"unknown keys", "listen_addr"}},
		{"unknown table", "[extra]\nx = 1\n", []string{"unknown keys", "extra"}},
		{"syntax error", "listen = \n", []string{"config"}},
		{"wrong type", "slots = \"four\"\n", []string{"config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, tt.content)
			os.Unsetenv("DCC_X_CONFIG")
			var c conf
			err := LoadFile([]string{"--config", p}, "DCC_X", &c)
			if err == nil {
				t.Fatalf("no error; decoded %+v", c)
			}
			for _, w := range append(tt.wantErr, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	tests := []struct{ prefix, flag, want string }{
		{"DCC_BROKER", "listen", "DCC_BROKER_LISTEN"},
		{"DCC_BROKER", "lease-ttl", "DCC_BROKER_LEASE_TTL"},
		{"DCC_VOLUNTEER", "max-mem-mb", "DCC_VOLUNTEER_MAX_MEM_MB"},
		{"P", "already_snake", "P_ALREADY_SNAKE"},
		{"P", "MiXed-Case", "P_MIXED_CASE"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := EnvName(tt.prefix, tt.flag); got != tt.want {
				t.Fatalf("EnvName(%q, %q) = %q", tt.prefix, tt.flag, got)
			}
		})
	}
}

func newFlags() (*flag.FlagSet, *string, *int, *bool, *time.Duration) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	listen := fs.String("listen", ":3633", "address to listen on")
	slots := fs.Int("max-slots", 4, "jobs at once")
	debug := fs.Bool("debug", false, "debug logging")
	every := fs.Duration("report-every", time.Second, "report interval")
	return fs, listen, slots, debug, every
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		listen  string
		slots   int
		debug   bool
		every   time.Duration
	}{
		{"nothing set", nil, "", ":3633", 4, false, time.Second},
		{"all set", map[string]string{"DCC_T_LISTEN": ":9", "DCC_T_MAX_SLOTS": "12", "DCC_T_DEBUG": "true", "DCC_T_REPORT_EVERY": "250ms"}, "", ":9", 12, true, 250 * time.Millisecond},
		{"empty string is a value", map[string]string{"DCC_T_LISTEN": ""}, "", "", 4, false, time.Second},
		{"bad int", map[string]string{"DCC_T_MAX_SLOTS": "many"}, "DCC_T_MAX_SLOTS", ":3633", 4, false, time.Second},
		{"bad bool", map[string]string{"DCC_T_DEBUG": "perhaps"}, "DCC_T_DEBUG", ":3633", 4, false, time.Second},
		{"bad duration", map[string]string{"DCC_T_REPORT_EVERY": "5"}, "DCC_T_REPORT_EVERY", ":3633", 4, false, time.Second},
		{"other prefix ignored", map[string]string{"DCC_U_LISTEN": ":1"}, "", ":3633", 4, false, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"DCC_T_LISTEN", "DCC_T_MAX_SLOTS", "DCC_T_DEBUG", "DCC_T_REPORT_EVERY"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs, listen, slots, debug, every := newFlags()
			err := ApplyEnv(fs, "DCC_T")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "$"+tt.wantErr) {
					t.Fatalf("err = %v, want one naming $%s", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr == "" && (*listen != tt.listen || *slots != tt.slots || *debug != tt.debug || *every != tt.every) {
				t.Fatalf("listen %q slots %d debug %v every %v", *listen, *slots, *debug, *every)
			}
		})
	}
}

// The command line, parsed after ApplyEnv, still wins.
func TestApplyEnvThenFlags(t *testing.T) {
	t.Setenv("DCC_T_MAX_SLOTS", "12")
	t.Setenv("DCC_T_LISTEN", ":9")
	fs, listen, slots, _, _ := newFlags()
	if err := ApplyEnv(fs, "DCC_T"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--max-slots", "3"}); err != nil {
		t.Fatal(err)
	}
	if *slots != 3 || *listen != ":9" {
		t.Fatalf("slots %d listen %q", *slots, *listen)
	}
}

func TestApplyEnvUsage(t *testing.T) {
	fs, _, _, _, _ := newFlags()
	if err := ApplyEnv(fs, "DCC_T"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ flag, want string }{
		{"listen", "address to listen on [$DCC_T_LISTEN]"},
		{"max-slots", "jobs at once [$DCC_T_MAX_SLOTS]"},
		{"debug", "debug logging [$DCC_T_DEBUG]"},
		{"report-every", "report interval [$DCC_T_REPORT_EVERY]"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			if got := fs.Lookup(tt.flag).Usage; got != tt.want {
				t.Fatalf("usage %q, want %q", got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	if !strings.Contains(buf.String(), "[$DCC_T_MAX_SLOTS]") {
		t.Fatalf("PrintDefaults lacks the variable:\n%s", buf.String())
	}
}

// An error in one variable does not stop the usage notes of the others.
func TestApplyEnvErrorStillAnnotates(t *testing.T) {
	t.Setenv("DCC_T_DEBUG", "perhaps")
	fs, _, _, _, _ := newFlags()
	if err := ApplyEnv(fs, "DCC_T"); err == nil {
		t.Fatal("no error")
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "[$DCC_T_") {
			t.Errorf("flag %s usage %q", f.Name, f.Usage)
		}
	})
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"0": 0, "4096": 4096, "10GiB": 10 << 30, "512MiB": 512 << 20, "300M": 300 << 20,
		"1g": 1 << 30, "2 KiB": 2048, "1.5GiB": 3 << 29, "1T": 1 << 40} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "10 parsecs", "1e400"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	z := Size(10 << 30)
	if z.String() != "10GiB" {
		t.Errorf("String() = %s", z.String())
	}
}
