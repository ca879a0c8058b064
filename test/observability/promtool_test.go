package observability

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// testPromtool scrapes the broker and every volunteer of a busy farm and
// runs `promtool check metrics` on each scrape: any line it prints is a
// lint problem. It also checks that the metrics the issue asks for are
// there and that docs/operations.md lists every dcc_ metric.
func testPromtool(t *testing.T, f *busyFarm) {
	scrapes := map[string]string{"broker": get(t, "http://"+f.HTTP+"/metrics")}
	for name, addr := range f.vhttp {
		scrapes["volunteer "+name] = get(t, "http://"+addr+"/metrics")
	}
	for what, body := range scrapes {
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil || strings.TrimSpace(out.String()) != "" {
			t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", what, err, out.String())
		}
	}

	broker := scrapes["broker"]
	for _, want := range []string{
		"dcc_broker_leases_active ",
		`dcc_broker_leases_granted_total{tier="3"} `,
		"dcc_broker_lease_wait_seconds_bucket{",
		"dcc_broker_queue_length ",
		`dcc_broker_leases_reclaimed_total{reason="expired"} `,
		`dcc_broker_leases_reclaimed_total{reason="client_gone"} `,
		`dcc_broker_leases_reclaimed_total{reason="host_gone"} `,
		`dcc_broker_leases_reclaimed_total{reason="revoked"} `,
		`dcc_broker_hosts{state="draining"} 1`,
		`dcc_broker_hosts{state="healthy"} `,
		`dcc_broker_host_slots{host="a"} 2`,
		`dcc_broker_host_busy_slots{host="b"} `,
		`dcc_broker_host_load1{host="a"} `,
		`dcc_broker_host_tier{host="c"} 0`,
		`dcc_broker_user_running_leases{user="alice"} `,
		`dcc_broker_user_waiting_requests{user="bob"} `,
		`dcc_broker_user_usage_slot_seconds{user="carol"} `,
		`dcc_client_local_fallbacks_total{reason="denied"} `,
	} {
		if !strings.Contains(broker, want) {
			t.Errorf("broker /metrics lacks %q", want)
		}
	}
	// The client with the unknown compiler was denied at once.
	if !regexp.MustCompile(`(?m)^dcc_broker_requests_denied_total\{reason="no_compiler"\} [1-9]`).MatchString(broker) {
		t.Errorf("no request denied for want of a compiler:\n%s", grepLines(broker, "dcc_broker_requests_denied_total"))
	}
	va := scrapes["volunteer a"]
	for _, want := range []string{
		`dcc_volunteer_jobs_total{result="compile_error"} `, `dcc_volunteer_jobs_total{result="rejected"} `,
		`dcc_volunteer_jobs_total{result="failed"} `, `dcc_volunteer_jobs_total{result="cancelled"} `,
		"dcc_volunteer_job_duration_seconds_bucket{", "dcc_volunteer_received_bytes_total ", "dcc_volunteer_sent_bytes_total ",
		"dcc_volunteer_slots 2", "dcc_volunteer_running_jobs ", "dcc_volunteer_available 1",
	} {
		if !strings.Contains(va, want) {
			t.Errorf("volunteer a's /metrics lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^dcc_volunteer_jobs_total\{result="ok"\} [1-9]`).MatchString(va + scrapes["volunteer b"]) {
		t.Errorf("no volunteer counted an ok job:\n%s", grepLines(va, "dcc_volunteer_jobs_total"))
	}

	// Every dcc_ metric is documented; the failure prints the missing rows.
	doc, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*family{}
	sample := regexp.MustCompile(`^(dcc_\w+?)(_bucket|_sum|_count)?(\{[^}]*\})? `)
	for _, body := range scrapes {
		for _, l := range strings.Split(body, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "dcc_"):
				fam(fams, f[2]).typ = f[3]
			case len(f) >= 3 && f[0] == "#" && f[1] == "HELP" && strings.HasPrefix(f[2], "dcc_"):
				fam(fams, f[2]).help = strings.Join(f[3:], " ")
			default:
				if m := sample.FindStringSubmatch(l); m != nil && fams[m[1]] != nil && fams[m[1]].labels == "" && m[3] != "" {
					var names []string
					for _, kv := range regexp.MustCompile(`(\w+)="`).FindAllStringSubmatch(m[3], -1) {
						if kv[1] != "le" {
							names = append(names, kv[1])
						}
					}
					fams[m[1]].labels = strings.Join(names, ", ")
				}
			}
		}
	}
	var missing []string
	for n, f := range fams {
		if !strings.Contains(string(doc), "`"+n+"`") {
			missing = append(missing, fmt.Sprintf("| `%s` | %s | %s | %s |", n, f.typ, f.labels, f.help))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/operations.md does not list these metrics; add these rows to its table:\n%s", strings.Join(missing, "\n"))
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// family is one metric family of a scrape, for the documentation table.
type family struct{ typ, help, labels string }

func fam(m map[string]*family, name string) *family {
	if m[name] == nil {
		m[name] = &family{}
	}
	return m[name]
}
