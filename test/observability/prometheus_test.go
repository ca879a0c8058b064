package observability

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

// collectFor is how long Prometheus scrapes the busy farm before the
// dashboard's queries run.
const collectFor = 16 * time.Second

// testDashboardQueries starts a real Prometheus scraping the broker and the
// volunteers every second while the farm works, then runs every query of
// every panel of every dashboard in deploy/grafana against its HTTP API,
// failing for each that returns no series.
func testDashboardQueries(t *testing.T, f *busyFarm) {
	dashboards, _ := filepath.Glob(filepath.Join(repoRoot(), "deploy", "grafana", "*.json"))
	if len(dashboards) == 0 {
		t.Fatal("no dashboard in deploy/grafana")
	}
	var queries []panelQuery
	for _, d := range dashboards {
		queries = append(queries, dashboardQueries(t, d)...)
	}

	dir := t.TempDir()
	var vols []string
	for _, a := range f.vhttp {
		vols = append(vols, fmt.Sprintf("%q", a))
	}
	sort.Strings(vols)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dcc-broker
    static_configs:
      - targets: [%q]
  - job_name: dcc-volunteer
    static_configs:
      - targets: [%s]
`, f.HTTP, strings.Join(vols, ", "))
	write(t, filepath.Join(dir, "prometheus.yml"), cfg, 0o644)
	addr := testfarm.FreeAddr(t)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	started := time.Now()
	plog := func() string { b, _ := os.ReadFile(log.Name()); return string(b) }
	api := "http://" + addr

	// Ready, and scraping all four targets.
	wantUp := 1 + len(f.vhttp)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := query(api, "sum(up)")
		if err == nil && len(res) == 1 && res[0].Value[1] == fmt.Sprint(wantUp) {
			break
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", plog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not scraping %d targets after 20s (last: %v %v); log:\n%s", wantUp, res, err, plog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Until(started.Add(collectFor)))

	t.Logf("running %d panel queries from %d dashboards after %s of scraping", len(queries), len(dashboards), time.Since(started).Round(time.Second))
	for _, q := range queries {
		res, err := query(api, q.PromQL)
		switch {
		case err != nil:
			t.Errorf("%s: panel %q: %s\n  %s", q.Dashboard, q.Panel, err, q.PromQL)
		case len(res) == 0:
			t.Errorf("%s: panel %q: no series\n  %s", q.Dashboard, q.Panel, q.PromQL)
		}
	}

	// The fallback of the client with the unknown compiler reached the
	// broker (agents report every 10 s) and Prometheus.
	deadline = time.Now().Add(10 * time.Second)
	for {
		res, err := query(api, `sum(dcc_client_local_fallbacks_total{reason="denied"}) > 0`)
		if err == nil && len(res) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no client fallback reached Prometheus (%v):\n%s", err, grepLines(get(t, "http://"+f.HTTP+"/metrics"), "dcc_client_local_fallbacks_total"))
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type panelQuery struct {
	Dashboard, Panel, Expr, PromQL string
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query and returns its vector.
func query(api, q string) ([]promSample, error) {
	resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", r.Data.ResultType)
	}
	var out []promSample
	if err := json.Unmarshal(r.Data.Result, &out); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Value[1] = fmt.Sprint(out[i].Value[1])
	}
	return out, nil
}

// grafanaVars are what Grafana would substitute for its built-in variables.
var grafanaVars = strings.NewReplacer(
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"${__interval}", "5s", "$__interval", "5s",
	"${__range}", "1m", "$__range", "1m",
	"${__range_s}", "60", "$__range_s", "60",
)

var leftoverVar = regexp.MustCompile(`\$\{?\w+`)

// dashboardQueries extracts every target expression of every panel (rows
// included) of a dashboard file, checking the dashboard is importable as is.
func dashboardQueries(t *testing.T, path string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Schema     int     `json:"schemaVersion"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	name := filepath.Base(path)
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Errorf("%s: no templating variable datasource of type datasource for prometheus", name)
	}
	if d.Schema < 36 || d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q uid %q schemaVersion %d", name, d.Title, d.UID, d.Schema)
	}
	var out []panelQuery
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			if ds, _ := p.Datasource["uid"].(string); ds != "${datasource}" {
				t.Errorf("%s: panel %q datasource uid %q, want ${datasource}", name, p.Title, ds)
			}
			for _, tg := range p.Targets {
				q := grafanaVars.Replace(tg.Expr)
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", name, p.Title)
					continue
				}
				if v := leftoverVar.FindString(q); v != "" {
					t.Errorf("%s: panel %q uses unknown variable %s", name, p.Title, v)
				}
				out = append(out, panelQuery{Dashboard: name, Panel: p.Title + " / " + tg.RefID, Expr: tg.Expr, PromQL: q})
			}
		}
	}
	walk(d.Panels)
	return out
}

type panel struct {
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
