package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
)

type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`
	Dur  int64          `json:"dur"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args"`
}

// TestBuildTimeline runs a real `make -j8` through dcc, then reads its
// record back with the dcc commands: `dcc builds` lists the build with its
// command and counts; the Chrome trace has every source exactly once as a
// compile event with its host, each file's phases in order, no two
// compile events overlapping in a lane, and spans the build's wall time;
// the HTML page renders in headless Chromium with a bar for every file;
// and the summary names the critical path.
func TestBuildTimeline(t *testing.T) {
	f := startFarm(t)
	dir := t.TempDir()
	const n = 12
	var objs []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("t%02d", i)
		src := fmt.Sprintf("int %s(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n", name, i+1)
		os.WriteFile(filepath.Join(dir, name+".c"), []byte(src), 0o644)
		objs = append(objs, name+".o")
	}
	mk := "all: " + strings.Join(objs, " ") + "\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n"
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644)
	dcc := filepath.Join(testfarm.Bin(t), "dcc")
	env := f.Env("tester")
	start := time.Now()
	if r := testfarm.Run(t, dir, env, "make", "-j8", "CC="+dcc+" gcc"); r.Code != 0 {
		t.Fatalf("make: %+v", r)
	}
	wall := time.Since(start)

	// dcc builds
	r := testfarm.Run(t, dir, env, dcc, "builds", "--json")
	var list []struct {
		ID      string   `json:"id"`
		Command []string `json:"command"`
		Dir     string   `json:"dir"`
		Files   int      `json:"files"`
		Remote  int      `json:"remote"`
		Local   int      `json:"local"`
		Cached  int      `json:"cached"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &list) != nil || len(list) != 1 {
		t.Fatalf("dcc builds --json: %+v", r)
	}
	b := list[0]
	if b.Files != n || b.Remote+b.Local+b.Cached != n || len(b.Command) < 2 || b.Command[0] != "make" || b.Command[1] != "-j8" || b.Dir != dir {
		t.Fatalf("the build's record: %+v", b)
	}
	if r := testfarm.Run(t, dir, env, dcc, "builds"); r.Code != 0 || !strings.Contains(r.Stdout, b.ID) || !strings.Contains(r.Stdout, "make -j8") {
		t.Fatalf("dcc builds: %+v", r)
	}

	// dcc trace (Chrome trace-event JSON)
	tracePath := filepath.Join(t.TempDir(), "build.json")
	if r := testfarm.Run(t, dir, env, dcc, "trace", "--last", "--out", tracePath); r.Code != 0 {
		t.Fatalf("dcc trace: %+v", r)
	}
	var doc struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	raw, _ := os.ReadFile(tracePath)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("trace is not JSON: %v", err)
	}
	compiles := map[string]int{}
	perFile := map[string][]traceEvent{}
	type lane struct{ pid, tid int }
	lanes := map[lane][]traceEvent{}
	var first, last int64 = 1 << 62, 0
	for _, e := range doc.TraceEvents {
		if e.Ph != "X" {
			continue
		}
		if e.Cat == "build" {
			if time.Duration(e.Dur)*time.Microsecond > wall+time.Second {
				t.Fatalf("the build's span %dus is longer than make's wall time %s", e.Dur, wall)
			}
			continue
		}
		src, _ := e.Args["source"].(string)
		perFile[src] = append(perFile[src], e)
		first, last = min(first, e.Ts), max(last, e.Ts+e.Dur)
		if e.Cat == "remote" || e.Cat == "local" || e.Cat == "cache" {
			compiles[src]++
			if h, _ := e.Args["host"].(string); h == "" || (e.Cat == "remote" && h == "local") || (e.Cat == "local" && h != "local") {
				t.Fatalf("compile event of %s has host %q for category %s", src, h, e.Cat)
			}
			lanes[lane{e.Pid, e.Tid}] = append(lanes[lane{e.Pid, e.Tid}], e)
		}
	}
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("t%02d.c", i)
		if compiles[src] != 1 {
			t.Fatalf("%s has %d compile events, want 1", src, compiles[src])
		}
		evs := perFile[src]
		for k := 1; k < len(evs); k++ {
			if evs[k].Ts < evs[k-1].Ts+evs[k-1].Dur {
				t.Fatalf("%s: phase %s starts before %s ends", src, evs[k].Name, evs[k-1].Name)
			}
		}
		if evs[0].Name != "preprocess "+src {
			t.Fatalf("%s: first phase %q, want preprocess", src, evs[0].Name)
		}
	}
	for l, evs := range lanes {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Ts < evs[j].Ts })
		for k := 1; k < len(evs); k++ {
			if evs[k].Ts < evs[k-1].Ts+evs[k-1].Dur {
				t.Fatalf("lane %v: %s overlaps %s", l, evs[k].Name, evs[k-1].Name)
			}
		}
	}
	if time.Duration(last-first)*time.Microsecond > wall {
		t.Fatalf("the jobs span %dus, more than the build's wall time %s", last-first, wall)
	}

	// dcc trace --html, rendered by Chromium
	htmlPath := filepath.Join(t.TempDir(), "build.html")
	if r := testfarm.Run(t, dir, env, dcc, "trace", "--build", b.ID, "--html", "--out", htmlPath); r.Code != 0 {
		t.Fatalf("dcc trace --html: %+v", r)
	}
	dom := chromiumDOM(t, "file://"+htmlPath)
	for i := 0; i < n; i++ {
		if c := strings.Count(dom, fmt.Sprintf(`data-file="t%02d.c"`, i)); c != 1 {
			t.Fatalf("the rendered page has %d bars for t%02d.c, want 1", c, i)
		}
	}
	for _, want := range []string{"critical path", "slowest"} {
		if !strings.Contains(strings.ToLower(dom), want) {
			t.Fatalf("the page lacks %q", want)
		}
	}

	// dcc trace --summary
	r = testfarm.Run(t, dir, env, dcc, "trace", "--last", "--summary")
	if r.Code != 0 || !strings.Contains(strings.ToLower(r.Stdout), "critical path") || !strings.Contains(r.Stdout, b.ID) {
		t.Fatalf("dcc trace --summary: %+v", r)
	}
	t.Logf("make -j8 of %d files: %d remote, %d local; trace %d events", n, b.Remote, b.Local, len(doc.TraceEvents))
}

// chromiumDOM renders url in headless Chromium and returns the DOM.
func chromiumDOM(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String()
}
