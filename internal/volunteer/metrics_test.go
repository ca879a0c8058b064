package volunteer

import (
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
)

func TestMetrics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Broker, cfg.Name, cfg.Slots, cfg.Compilers = "127.0.0.1:1", "t", 3, []string{"gcc"}
	dir := t.TempDir()
	cfg.StateDir = dir
	var err error
	ca, err := identity.OpenCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ca.Issue(identity.RoleHost, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Identity = filepath.Join(dir, "t.pem")
	if err := identity.WriteBundle(cfg.Identity, pem, true); err != nil {
		t.Fatal(err)
	}
	v, err := New(cfg, logging.Nop())
	if err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.running[1] = &job{user: "alice"}
	v.mu.Unlock()
	v.m.results.WithLabelValues("ok").Inc()
	v.m.duration.Observe(0.25)
	srv := httptest.NewServer(v.httpHandler())
	defer srv.Close()
	v.httpHandler() // a second handler must not register the collector twice
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		"dcc_volunteer_slots 3", "dcc_volunteer_running_jobs 1", "dcc_volunteer_available 1", "dcc_volunteer_compilers 1",
		`dcc_volunteer_jobs_total{result="ok"} 1`, `dcc_volunteer_jobs_total{result="compile_error"} 0`,
		`dcc_volunteer_jobs_total{result="rejected"} 0`, `dcc_volunteer_jobs_total{result="failed"} 0`,
		`dcc_volunteer_jobs_total{result="cancelled"} 0`, "dcc_volunteer_job_duration_seconds_count 1",
		"dcc_volunteer_received_bytes_total 0", "dcc_volunteer_sent_bytes_total 0", "dcc_volunteer_load1 ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(v.m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "dcc_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}
