package timeline

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// The page is one file a person can mail or attach to a bug: inline SVG
// and an inline stylesheet, no script, nothing fetched. Hover details are
// SVG <title> elements, which every browser shows as a tooltip. The
// markup is also well-formed XML (every element closed, only numeric
// character references), so tests can check it with encoding/xml. Every
// string from the record goes through esc: file names are user data.

// Geometry of the lanes, in CSS pixels.
const (
	pageLabelW = 190
	pagePlotW  = 1000
	pageRightW = 20
	pageAxisH  = 26
	pageGroupH = 18
	pageLaneH  = 12
	pageLaneGp = 2
)

// phaseColour is each phase's fill.
var phaseColour = map[string]string{
	PhasePreprocess:    "#9ecae1",
	PhaseCacheLookup:   "#dadaeb",
	PhaseCacheHit:      "#756bb1",
	PhaseLeaseWait:     "#d4d4d4",
	PhaseSend:          "#fdae6b",
	PhaseRemoteCompile: "#3182bd",
	PhaseReturn:        "#fdd0a2",
	PhaseLocalCompile:  "#e6550d",
	PhaseWrite:         "#74c476",
}

// esc makes s safe as HTML text or a quoted attribute value, replacing
// invalid UTF-8 and control characters (which XML forbids and a browser
// would mangle) with U+FFFD.
func esc(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.Map(func(r rune) rune {
			if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
				return '\uFFFD'
			}
			return r
		}, strings.ToValidUTF8(s, "\uFFFD"))
	}
	return html.EscapeString(s)
}

// pageScale maps instants to x coordinates.
type pageScale struct {
	start time.Time
	wall  time.Duration
}

func (sc pageScale) x(t time.Time) float64 {
	return pageLabelW + float64(t.Sub(sc.start))/float64(sc.wall)*pagePlotW
}

// ticks are the axis marks over [0, wall]: multiples of a 1-2-5 step,
// at most eleven, counted so that no addition can overflow.
func ticks(wall time.Duration) []time.Duration {
	step := tickStep(wall)
	n := int(wall / step)
	out := make([]time.Duration, 0, n+1)
	for k := 0; k <= n; k++ {
		out = append(out, step*time.Duration(k))
	}
	return out
}

// tickStep picks a 1-2-5 step giving at most ten ticks over wall.
func tickStep(wall time.Duration) time.Duration {
	step := time.Microsecond
	for {
		for _, m := range []time.Duration{1, 2, 5} {
			if wall/(step*m) <= 10 {
				return step * m
			}
		}
		step *= 10
	}
}

// WriteHTML writes b as a self-contained HTML page: the lanes with one
// bar per phase (the compile bar of each file has class "bar" and
// data-file), hover details, the summary, the ten slowest files and the
// critical path.
func WriteHTML(w io.Writer, b *Build) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	p := layout(b)
	start, end := b.Span()
	wall := end.Sub(start)
	sc := pageScale{start: start, wall: max(wall, time.Microsecond)}
	sum := Summarize(b)
	path := CriticalPath(b)
	onPath := make(map[int]bool, len(path))
	for _, st := range path {
		onPath[st.Job] = true
	}

	fmt.Fprintf(bw, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width"/>
<title>dcc build %s</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}
code{font:12px ui-monospace,monospace}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#333}svg text.grp{font-weight:600}
svg .lane{fill:#f6f6f6}svg .tick{stroke:#ccc;stroke-width:1}
g.job:hover rect{stroke:#000;stroke-width:1}
g.crit rect{stroke:#000;stroke-width:0.6}
rect.fail{stroke:#d00;stroke-width:1.5}
`, esc(b.ID))
	for _, name := range PhaseNames() {
		fmt.Fprintf(bw, "rect.ph-%s,i.ph-%s{fill:%s;background:%s}\n", name, name, phaseColour[name], phaseColour[name])
	}
	bw.WriteString("</style></head><body>\n")

	fmt.Fprintf(bw, "<h1>dcc build %s</h1>\n<p><code>%s</code>", esc(b.ID), esc(strings.Join(b.Command, " ")))
	if b.Dir != "" {
		fmt.Fprintf(bw, " in <code>%s</code>", esc(b.Dir))
	}
	fmt.Fprintf(bw, ", started %s, wall time %s, %d files.</p>\n", esc(start.Format(time.RFC3339)), fmtDur(wall), len(b.Jobs))

	// Lane rows: where each resource's group and lanes sit.
	type row struct{ y0, y float64 }
	rows := make([]row, len(p.res))
	y := float64(pageAxisH)
	for r := range p.res {
		if len(p.res[r].lanes) == 0 {
			continue
		}
		rows[r].y0 = y
		rows[r].y = y + pageGroupH
		y += pageGroupH + float64(len(p.res[r].lanes))*(pageLaneH+pageLaneGp)
	}
	height := y + 4
	width := pageLabelW + pagePlotW + pageRightW
	laneY := func(r, lane int) float64 { return rows[r].y + float64(lane)*(pageLaneH+pageLaneGp) }

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" id="lanes" width="%d" height="%.0f" viewBox="0 0 %d %.0f">`+"\n",
		width, height, width, height)
	// Axis.
	for _, t := range ticks(sc.wall) {
		x := sc.x(start.Add(t))
		fmt.Fprintf(bw, `<line class="tick" x1="%.2f" y1="%d" x2="%.2f" y2="%.0f"/><text x="%.2f" y="14" text-anchor="middle">%s</text>`+"\n",
			x, pageAxisH-6, x, height, x, fmtTick(t))
	}
	// Groups and lanes.
	for r := range p.res {
		res := &p.res[r]
		if len(res.lanes) == 0 {
			continue
		}
		fmt.Fprintf(bw, `<text class="grp" x="4" y="%.1f" data-lanes="%s">%s</text>`+"\n", rows[r].y0+13, esc(res.Name()), esc(res.Name()))
		for lane := range res.lanes {
			ly := laneY(r, lane)
			label := res.laneLabel(lane)
			fmt.Fprintf(bw, `<rect class="lane" x="%d" y="%.1f" width="%d" height="%d"/><text x="14" y="%.1f">%s</text>`+"\n",
				pageLabelW, ly, pagePlotW, pageLaneH, ly+pageLaneH-2, label)
		}
	}
	// Jobs: one group per job, so its title covers all its bars.
	for ji := range b.Jobs {
		j := &b.Jobs[ji]
		ci := j.CompilePhase()
		cls := "job"
		if onPath[ji] {
			cls += " crit"
		}
		fmt.Fprintf(bw, `<g class="%s" data-job="%d"><title>%s</title>`, cls, ji, esc(jobTitle(j, start)))
		for i, ph := range j.Phases {
			seg := &p.segs[p.segOf[ji][i]]
			x0, x1 := sc.x(ph.Start), sc.x(ph.End)
			wd := max(x1-x0, 0.5)
			c := "ph-" + ph.Name
			extra := ""
			if i == ci {
				c = "bar " + c
				if j.Exit != 0 {
					c += " fail"
				}
				host := j.HostOf(i)
				if phaseKind(ph.Name) != resHost || host == "" {
					host = "local"
				}
				extra = fmt.Sprintf(` data-file="%s" data-host="%s" data-where="%s"`, esc(j.Source), esc(host), esc(j.Where))
			}
			fmt.Fprintf(bw, `<rect class="%s"%s x="%.2f" y="%.1f" width="%.2f" height="%d"/>`, c, extra, x0, laneY(seg.res, seg.lane), wd, pageLaneH)
		}
		bw.WriteString("</g>\n")
	}
	bw.WriteString("</svg>\n<p class=\"legend\">")
	for _, name := range PhaseNames() {
		fmt.Fprintf(bw, `<span><i class="ph-%s"></i>%s</span>`, name, name)
	}
	bw.WriteString(`<span>outlined: on the critical path; red outline: compiler failed</span></p>` + "\n")

	// Summary.
	bw.WriteString("<h2>Summary</h2>\n<table id=\"summary\">\n")
	for _, l := range summaryLines(sum) {
		fmt.Fprintf(bw, "<tr><th>%s</th><td>%s</td></tr>\n", esc(l[0]), esc(l[1]))
	}
	if sum.Dropped > 0 {
		fmt.Fprintf(bw, "<tr><th>not recorded</th><td>%d jobs past the record's bounds</td></tr>\n", sum.Dropped)
	}
	if b.Skipped > 0 {
		fmt.Fprintf(bw, "<tr><th>skipped</th><td>%d unreadable records</td></tr>\n", b.Skipped)
	}
	bw.WriteString("</table>\n")

	// Slowest files.
	bw.WriteString("<h2>Slowest files</h2>\n<table id=\"slowest\"><tr><th>wall</th><th>file</th><th>where</th><th>exit</th><th>phases</th></tr>\n")
	for _, i := range Slowest(b, 10) {
		j := &b.Jobs[i]
		fmt.Fprintf(bw, "<tr data-job=\"%d\"><td class=\"n\">%s</td><td><code>%s</code></td><td>%s</td><td class=\"n\">%d</td><td>%s</td></tr>\n",
			i, fmtDur(j.Wall()), esc(j.Source), esc(whereText(j)), j.Exit, esc(phaseText(j)))
	}
	bw.WriteString("</table>\n")

	// Critical path.
	var busy, gaps time.Duration
	for _, st := range path {
		busy += b.Jobs[st.Job].Wall()
		gaps += st.Gap
	}
	fmt.Fprintf(bw, `<h2>Critical path</h2>
<p>%s, %s in jobs and %s between them. The path ends with the job that ended last; each job's
predecessor is the job whose end most closely precedes its start, since every job holds one of make's
job slots on this machine for its whole wall time and starts once a slot or a prerequisite frees.
Time between them is work the record does not show (links, other tools) or make idling.</p>
<table id="critical"><tr><th>start</th><th>gap before</th><th>wall</th><th>file</th><th>where</th></tr>
`, plural(len(path), "job"), fmtDur(busy), fmtDur(gaps))
	shown := path
	if len(shown) > maxPathShown {
		fmt.Fprintf(bw, "<tr><td colspan=\"5\">… %d earlier jobs</td></tr>\n", len(shown)-maxPathShown)
		shown = shown[len(shown)-maxPathShown:]
	}
	for _, st := range shown {
		j := &b.Jobs[st.Job]
		fmt.Fprintf(bw, "<tr data-job=\"%d\"><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td><code>%s</code></td><td>%s</td></tr>\n",
			st.Job, rel(j.Start(), start), fmtDur(st.Gap), fmtDur(j.Wall()), esc(j.Source), esc(whereText(j)))
	}
	bw.WriteString("</table>\n</body></html>\n")
	return bw.Flush()
}

// jobTitle is a job's hover text.
func jobTitle(j *Job, start time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n→ %s\n%s, exit %d, %s\n", j.Source, j.Output, whereText(j), j.Exit, fmtDur(j.Wall()))
	for _, p := range j.Phases {
		fmt.Fprintf(&sb, "%s %s (at %s)", p.Name, fmtDur(p.Duration()), rel(p.Start, start))
		if p.Host != "" {
			sb.WriteString(" on " + p.Host)
		}
		sb.WriteByte('\n')
	}
	fmt.Fprintf(&sb, "%s sent, %s received", FormatBytes(j.BytesOut), FormatBytes(j.BytesIn))
	if j.WaitEstimate > 0 {
		fmt.Fprintf(&sb, "\nbroker's wait estimate %s", fmtDur(j.WaitEstimate))
	}
	return sb.String()
}
