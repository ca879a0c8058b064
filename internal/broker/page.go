package broker

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/timeline"
)

// The status page: server-rendered, no scripts, no external assets; it
// reloads itself every few seconds. html/template escapes every value.

//go:embed page.html
var pageHTML string

// pageRefresh is the status page's self-refresh period in seconds.
const pageRefresh = 5

// maxPageReclaims bounds the reclaims the page lists.
const maxPageReclaims = 15

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"f1":     func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"f2":     func(x float64) string { return fmt.Sprintf("%.2f", x) },
	"pct":    func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) },
	"mul100": func(x float64) float64 { return 100 * x },
	"bytes":  timeline.FormatBytes,
	"ago":    func(now, t time.Time) string { return roundAgo(now.Sub(t)) },
	"clock": func(t time.Time) string {
		return t.Local().Format("15:04:05")
	},
	"dur": func(s float64) string { return roundAgo(time.Duration(s * float64(time.Second))) },
}).Parse(pageHTML))

// pageView is what the template renders.
type pageView struct {
	Doc       *status.Doc
	Version   string
	Refresh   int
	Util      float64 // busy / slots of usable hosts
	Connected int
	Tiers     []tierGroup
	Users     []status.User
	// Timeline is the live farm timeline (an inline SVG fragment).
	Timeline       template.HTML
	TimelineWindow string
	Waiting        int
	Reclaims       []status.Reclaim
	MoreReclaim    int
	Compilers      []compilerRow
}

type tierGroup struct {
	Tier  int
	Title string
	Note  string
	Slots int
	Busy  int
	Hosts []hostRow
}

type hostRow struct {
	status.Host
	Free     int
	BusyPct  float64 // bar width, 0..100
	Gone     bool
	StateCSS string
}

type compilerRow struct {
	Fingerprint string
	Hosts       []string
}

func buildPage(doc *status.Doc) *pageView {
	v := &pageView{Doc: doc, Version: buildinfo.Version, Refresh: pageRefresh, Users: doc.Users}
	if doc.Slots > 0 {
		v.Util = float64(doc.Busy) / float64(doc.Slots)
	}
	groups := map[int]*tierGroup{}
	comps := map[string][]string{}
	for _, h := range doc.Hosts {
		g := groups[h.Tier]
		if g == nil {
			g = &tierGroup{Tier: h.Tier, Title: fmt.Sprintf("Tier %d", h.Tier)}
			if h.Tier == 0 {
				g.Title, g.Note = "Not used", "tier 0: blocked, draining, gone, or too loaded by its owner"
			}
			groups[h.Tier] = g
		}
		r := hostRow{Host: h, Gone: h.State == "gone", StateCSS: stateClass(h.State)}
		if r.Free = h.Slots - h.Busy; r.Free < 0 {
			r.Free = 0
		}
		if h.Slots > 0 {
			r.BusyPct = 100 * float64(min(h.Busy, h.Slots)) / float64(h.Slots)
		}
		g.Hosts = append(g.Hosts, r)
		g.Busy += h.Busy
		if !r.Gone {
			v.Connected++
			g.Slots += h.Slots
			for _, c := range h.Compilers {
				comps[c] = append(comps[c], h.Name)
			}
		}
	}
	for _, g := range groups {
		sort.SliceStable(g.Hosts, func(i, j int) bool { return g.Hosts[i].Name < g.Hosts[j].Name })
		v.Tiers = append(v.Tiers, *g)
	}
	// Best tier first, "not used" last.
	sort.Slice(v.Tiers, func(i, j int) bool { return v.Tiers[i].Tier > v.Tiers[j].Tier })
	for _, u := range doc.Users {
		v.Waiting += u.Waiting
	}
	v.Reclaims = doc.Reclaims
	if len(v.Reclaims) > maxPageReclaims {
		v.MoreReclaim = len(v.Reclaims) - maxPageReclaims
		v.Reclaims = v.Reclaims[:maxPageReclaims]
	}
	for fp, hosts := range comps {
		sort.Strings(hosts)
		v.Compilers = append(v.Compilers, compilerRow{Fingerprint: fp, Hosts: hosts})
	}
	sort.Slice(v.Compilers, func(i, j int) bool { return v.Compilers[i].Fingerprint < v.Compilers[j].Fingerprint })
	return v
}

func stateClass(s string) string {
	switch s {
	case "healthy", "probation", "blocked", "draining", "gone":
		return "st-" + s
	}
	return "st-other"
}

// renderPage writes the status page for doc.
func renderPage(w io.Writer, doc *status.Doc) error {
	return pageTmpl.Execute(w, buildPage(doc))
}

// timelineWindow is how much of the farm's recent past the status page's
// live timeline shows.
const timelineWindow = 5 * time.Minute

func (b *Broker) statusPage(w http.ResponseWriter, r *http.Request) {
	doc := b.Status("")
	v := buildPage(doc)
	v.TimelineWindow = roundAgo(timelineWindow)
	b.mu.Lock()
	events := b.ring.Events()
	b.mu.Unlock()
	if len(events) > 0 {
		var svg strings.Builder
		if err := timeline.WriteFarmSVG(&svg, events, doc.Time, timelineWindow); err == nil {
			v.Timeline = template.HTML(svg.String()) // built from escaped parts by WriteFarmSVG
		}
	}
	var buf strings.Builder
	if err := pageTmpl.Execute(&buf, v); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, buf.String())
}

func roundAgo(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
