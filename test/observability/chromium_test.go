package observability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium runs headless Chromium with args plus the page URL, returning stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
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

// testStatusPage loads the broker's status page in headless Chromium while
// the farm works and checks the rendered DOM for the hosts, their states
// and tiers, and the users. It takes a screenshot too; with
// DCC_UPDATE_SCREENSHOT=1 that replaces docs/status-page.png.
func testStatusPage(t *testing.T, f *busyFarm) {
	page := "http://" + f.HTTP + "/"
	head := get(t, page)
	if !strings.Contains(head, `<meta http-equiv="refresh"`) {
		t.Error("status page does not refresh itself")
	}

	dom := chromium(t, "--dump-dom", page)
	if !strings.Contains(dom, "<h1>dcc farm</h1>") {
		t.Fatalf("chromium did not render the status page:\n%s", dom)
	}
	for _, h := range hosts {
		if !strings.Contains(dom, `data-host="`+h.Name+`"`) {
			t.Errorf("host %s not on the page", h.Name)
		}
	}
	for _, u := range users {
		if !strings.Contains(dom, `data-user="`+u+`"`) {
			t.Errorf("user %s not on the page", u)
		}
	}
	// The live farm timeline: every user who compiled has bars in it.
	i := strings.Index(dom, `id="farm-timeline"`)
	if i < 0 {
		t.Fatal("the status page has no live farm timeline")
	}
	lanes := dom[i:]
	if j := strings.Index(lanes, "</section>"); j > 0 {
		lanes = lanes[:j]
	}
	for _, u := range users {
		if !strings.Contains(lanes, `data-user="`+u+`"`) {
			t.Errorf("the live timeline shows no bar of user %s", u)
		}
	}
	// a and b take jobs (their state may be healthy or probation: see
	// the test log); c is drained, so "not used" (tier 0) comes last.
	for _, want := range []string{
		`data-host="c" data-state="draining"`, `id="tier-0"`, "Not used", "Users", "Queue", "Recent reclaims",
		"Compilers offered", ">draining<", "busy ·", "free",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if !strings.Contains(dom, `id="tier-3"`) && !strings.Contains(dom, `id="tier-2"`) && !strings.Contains(dom, `id="tier-1"`) {
		t.Error("no usable tier on the page")
	}
	i0 := strings.Index(dom, `id="tier-0"`)
	for _, tier := range []string{"1", "2", "3"} {
		if i := strings.Index(dom, `id="tier-`+tier+`"`); i > i0 {
			t.Errorf("tier %s listed after \"not used\"", tier)
		}
	}
	if ic := strings.Index(dom, `data-host="c"`); ic < i0 {
		t.Errorf("drained host c not in the \"not used\" group")
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, "--screenshot="+shot, "--window-size=1280,900", page)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no screenshot: %v", err)
	}
	if os.Getenv("DCC_UPDATE_SCREENSHOT") == "1" {
		dst := filepath.Join(repoRoot(), "docs", "status-page.png")
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}
}
