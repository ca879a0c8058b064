package timeline

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// element is a parsed start tag.
type element struct {
	name  string
	attrs map[string]string
	text  string // character data directly inside, for <title> and <td>
}

// parseXML parses markup strictly as XML (the page promises to be
// well-formed) and returns its elements in document order.
func parseXML(t *testing.T, doc []byte) []*element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var out []*element
	var stack []*element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			e := &element{name: tk.Name.Local, attrs: map[string]string{}}
			for _, a := range tk.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%d unclosed elements", len(stack))
	}
	return out
}

func hasClass(e *element, c string) bool {
	for _, f := range strings.Fields(e.attrs["class"]) {
		if f == c {
			return true
		}
	}
	return false
}

// viaPage is s as the page shows it: control characters and invalid
// UTF-8 as U+FFFD.
func viaPage(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func TestHTML(t *testing.T) {
	b := synthBuild(250, 16, 11)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, b); err != nil {
		t.Fatal(err)
	}
	page := buf.Bytes()
	els := parseXML(t, page)

	// Self-contained: no script, no external resource of any kind.
	for _, e := range els {
		switch e.name {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignObject":
			t.Errorf("page has a <%s>", e.name)
		}
		for k, v := range e.attrs {
			if k == "xmlns" {
				continue
			}
			if k == "src" || k == "href" || strings.HasPrefix(k, "on") || strings.Contains(v, "url(") {
				t.Errorf("<%s %s=%q>", e.name, k, v)
			}
		}
	}
	if bytes.Contains(page, []byte("@import")) || bytes.Contains(page, []byte("@font-face")) {
		t.Error("stylesheet loads something")
	}

	// One bar per file, carrying the file's name exactly (as the page can
	// show it), inside its job's group, whose title has the details.
	var bars []string
	jobOf := map[string]int{}
	var group *element
	groupOfBar := map[*element]*element{}
	titles := map[int]string{}
	for i, e := range els {
		if e.name == "g" && hasClass(e, "job") {
			group = e
			if i+1 < len(els) && els[i+1].name == "title" {
				n, _ := strconv.Atoi(e.attrs["data-job"])
				titles[n] = els[i+1].text
			}
		}
		if hasClass(e, "bar") {
			bars = append(bars, e.attrs["data-file"])
			groupOfBar[e] = group
			n, _ := strconv.Atoi(group.attrs["data-job"])
			jobOf[e.attrs["data-file"]] = n
		}
	}
	var want []string
	for _, j := range b.Jobs {
		want = append(want, viaPage(j.Source))
	}
	sort.Strings(bars)
	sort.Strings(want)
	if strings.Join(bars, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bars %d, files %d:\n%q\n%q", len(bars), len(want), bars, want)
	}
	for ji, j := range b.Jobs {
		title := titles[ji]
		if jobOf[viaPage(j.Source)] != ji {
			t.Errorf("bar of %q is in group %d, want %d", j.Source, jobOf[viaPage(j.Source)], ji)
		}
		for _, want := range []string{viaPage(j.Source), "exit " + strconv.Itoa(j.Exit), FormatBytes(j.BytesOut) + " sent"} {
			if !strings.Contains(title, want) {
				t.Errorf("job %d title lacks %q:\n%s", ji, want, title)
			}
		}
		for _, p := range j.Phases {
			if !strings.Contains(title, p.Name+" "+fmtDur(p.Duration())) {
				t.Errorf("job %d title lacks phase %s", ji, p.Name)
			}
		}
		if j.Where == WhereRemote && !strings.Contains(title, j.Host) {
			t.Errorf("job %d title lacks host %s", ji, j.Host)
		}
		if j.LocalReason != "" && !strings.Contains(title, j.LocalReason) {
			t.Errorf("job %d title lacks reason", ji)
		}
	}

	// No two rects overlap within a lane (same y).
	type iv struct{ x0, x1 float64 }
	lanes := map[string][]iv{}
	for _, e := range els {
		if e.name != "rect" || !strings.HasPrefix(e.attrs["class"], "bar") && !strings.HasPrefix(e.attrs["class"], "ph-") {
			continue
		}
		x, _ := strconv.ParseFloat(e.attrs["x"], 64)
		w, _ := strconv.ParseFloat(e.attrs["width"], 64)
		lanes[e.attrs["y"]] = append(lanes[e.attrs["y"]], iv{x, x + w})
	}
	for y, ivs := range lanes {
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].x0 < ivs[b].x0 })
		for i := 1; i < len(ivs); i++ {
			// Bars narrower than half a pixel are drawn half a pixel wide,
			// and coordinates are rounded to 0.01.
			if ivs[i].x0 < ivs[i-1].x1-0.52 {
				t.Fatalf("lane y=%s: bars %v and %v overlap", y, ivs[i-1], ivs[i])
			}
		}
	}

	// The sections under the lanes.
	text := string(page)
	for _, id := range []string{`id="summary"`, `id="slowest"`, `id="critical"`, "wall time", "compiling on the farm",
		"compiling locally", "waiting for slots", "preprocessing"} {
		if !strings.Contains(text, id) {
			t.Errorf("page lacks %s", id)
		}
	}
	var slowRows, critRows []int
	table := ""
	for _, e := range els {
		if e.name == "table" {
			table = e.attrs["id"]
		}
		if e.name == "tr" && e.attrs["data-job"] != "" {
			n, _ := strconv.Atoi(e.attrs["data-job"])
			if table == "slowest" {
				slowRows = append(slowRows, n)
			} else if table == "critical" {
				critRows = append(critRows, n)
			}
		}
	}
	if got, want := slowRows, Slowest(b, 10); !equalInts(got, want) {
		t.Errorf("slowest rows %v, want %v", got, want)
	}
	var wantPath []int
	for _, st := range CriticalPath(b) {
		wantPath = append(wantPath, st.Job)
	}
	if len(wantPath) > maxPathShown {
		wantPath = wantPath[len(wantPath)-maxPathShown:]
	}
	if !equalInts(critRows, wantPath) || len(wantPath) < 2 {
		t.Errorf("critical rows %v, want %v", critRows, wantPath)
	}
	// Critical jobs are outlined.
	for _, e := range els {
		if e.name == "g" && hasClass(e, "job") {
			n, _ := strconv.Atoi(e.attrs["data-job"])
			onPath := false
			for _, p := range CriticalPath(b) {
				onPath = onPath || p.Job == n
			}
			if hasClass(e, "crit") != onPath {
				t.Errorf("job %d crit class %v, on path %v", n, hasClass(e, "crit"), onPath)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHTMLEmpty renders a build without jobs.
func TestHTMLEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, &Build{ID: "e", Start: at(0)}); err != nil {
		t.Fatal(err)
	}
	parseXML(t, buf.Bytes())
}

// chromium runs headless Chromium with args plus the page, returning
// stdout (as test/observability does).
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Fatal("chromium is not installed: run scripts/deps.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, "chromium", append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// TestHTMLChromium loads the build page and the farm timeline in a real
// browser and counts the bars in the DOM it built: a name that broke out
// of its attribute or title would add or remove elements. With
// DCC_TIMELINE_SHOTS=dir it also leaves the pages and screenshots there.
func TestHTMLChromium(t *testing.T) {
	dir := t.TempDir()
	b := synthBuild(120, 16, 21)
	var page bytes.Buffer
	if err := WriteHTML(&page, b); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "build.html")
	os.WriteFile(file, page.Bytes(), 0o600)

	now := at(10 * time.Minute)
	events := farmEvents(now)
	var farm bytes.Buffer
	farm.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"/></head><body>")
	if err := WriteFarmSVG(&farm, events, now, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	farm.WriteString("</body></html>")
	farmFile := filepath.Join(dir, "farm.html")
	os.WriteFile(farmFile, farm.Bytes(), 0o600)

	dom := chromium(t, "--dump-dom", "file://"+file)
	if !strings.Contains(dom, "<h1>dcc build synth-21</h1>") {
		t.Fatalf("chromium did not render the page:\n%.2000s", dom)
	}
	bars := regexp.MustCompile(`<rect class="bar[ "]`).FindAllString(dom, -1)
	files := len(regexp.MustCompile(`<rect class="bar[^"]*" data-file="`).FindAllString(dom, -1))
	groups := strings.Count(dom, `<g class="job`)
	titles := strings.Count(dom, "<title>")
	if len(bars) != len(b.Jobs) || files != len(b.Jobs) || groups != len(b.Jobs) || titles != len(b.Jobs)+1 {
		t.Fatalf("rendered DOM: %d bars, %d data-file, %d job groups, %d titles; %d files", len(bars), files, groups, titles, len(b.Jobs))
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, `<rect class="bar" data-file="forged"`) {
		t.Fatal("a file name became markup")
	}
	for _, want := range []string{`id="summary"`, `id="slowest"`, `id="critical"`, "this machine", "waiting for a slot", "sun1"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}

	fdom := chromium(t, "--dump-dom", "file://"+farmFile)
	if n := regexp.MustCompile(`<rect class="bar[ "]`).FindAllStringIndex(fdom, -1); len(n) != farmInWindow {
		t.Errorf("farm timeline: %d bars rendered, want %d", len(n), farmInWindow)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(fdom, `data-user="`+u+`"`) {
			t.Errorf("farm timeline lacks user %s", u)
		}
	}

	// Screenshots on request only: each Chromium start costs seconds.
	shots := os.Getenv("DCC_TIMELINE_SHOTS")
	if shots == "" {
		return
	}
	os.WriteFile(filepath.Join(shots, "build.html"), page.Bytes(), 0o644)
	os.WriteFile(filepath.Join(shots, "farm.html"), farm.Bytes(), 0o644)
	for name, f := range map[string]string{"build.png": file, "farm.png": farmFile} {
		shot := filepath.Join(shots, name)
		chromium(t, "--screenshot="+shot, "--window-size=1280,1400", "file://"+f)
		png, err := os.ReadFile(shot)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatalf("no screenshot of %s: %v", name, err)
		}
	}
}
