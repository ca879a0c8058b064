package testfarm

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/broker"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/volunteer"
)

// InProcess is a broker started in the test's own process, for tests that
// need goroutine-level checks (goleak) rather than separate binaries. The
// caller closes what it starts (defer b.Close()), so that a leak check
// deferred before it runs after everything has stopped.
type InProcess struct {
	Dir      string
	StateDir string
	Broker   *broker.Broker
}

// Identity enrols name in role with the broker's CA and returns the
// credential file.
func (p *InProcess) Identity(t testing.TB, role, name string) string {
	t.Helper()
	path, err := Enroll(p.StateDir, role, name, filepath.Join(p.Dir, "id"))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// StartInProcess writes a key and the farm file text into a temporary
// directory and starts a broker on loopback (with HTTP on a free port if
// withHTTP). The load gate is off: the test machine's own load must not
// take a host out.
func StartInProcess(t testing.TB, farm string, withHTTP bool) *InProcess {
	t.Helper()
	return StartInProcessWith(t, farm, withHTTP, nil)
}

// StartInProcessWith is StartInProcess with tune adjusting the broker's
// configuration before it starts.
func StartInProcessWith(t testing.TB, farm string, withHTTP bool, tune func(*broker.Config)) *InProcess {
	t.Helper()
	p := &InProcess{Dir: t.TempDir()}
	p.StateDir = filepath.Join(p.Dir, "state")
	farmFile := filepath.Join(p.Dir, "farm")
	if err := os.WriteFile(farmFile, []byte(farm), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.FarmFile, cfg.StateDir = "127.0.0.1:0", farmFile, p.StateDir
	cfg.HTTP, cfg.HTTPS = "", ""
	if withHTTP {
		cfg.HTTP = "127.0.0.1:0"
	}
	cfg.Overload, cfg.Saturated = 1e6, 1e6
	if tune != nil {
		tune(&cfg)
	}
	b, err := broker.New(cfg, logging.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	p.Broker = b
	return p
}

// StartVolunteer starts a volunteer offering gcc in this process and waits
// until the broker can lease its slots. extra adjusts its config.
func (p *InProcess) StartVolunteer(t testing.TB, name string, slots int, extra func(*volunteer.Config)) *volunteer.Volunteer {
	t.Helper()
	vc := volunteer.DefaultConfig()
	vc.Broker, vc.Listen, vc.Name, vc.Slots, vc.TempDir, vc.Compilers = p.Broker.Addr(), "127.0.0.1:0", name, slots, p.Dir, []string{"gcc"}
	vc.Identity = p.Identity(t, "host", name)
	vc.StateDir = p.Dir
	if extra != nil {
		extra(&vc)
	}
	v, err := volunteer.New(vc, logging.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	if !v.WaitRegistered(5 * time.Second) {
		v.Close()
		t.Fatal("volunteer did not register")
	}
	for deadline := time.Now().Add(5 * time.Second); p.Broker.Status("").Slots == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			v.Close()
			t.Fatalf("volunteer %s not usable: %+v", name, p.Broker.Status(""))
		}
	}
	return v
}
