package commands

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dcc-farm/dcc/internal/client"
	"github.com/dcc-farm/dcc/internal/timeline"
)

// openBuilds opens the user's build records for reading.
func openBuilds() (*timeline.Store, error) {
	cfg, _ := client.LoadConfig()
	if cfg.BuildsDir == "" {
		return nil, errors.New("no build records are kept (DCC_BUILDS_DIR or builds_dir is empty)")
	}
	return timeline.Open(cfg.BuildsDir, cfg.KeepBuilds)
}

// BuildsCmd implements `dcc builds [--json]`: the user's recent builds on
// this machine.
func BuildsCmd(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("dcc builds", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the list as JSON")
	if fs.Parse(args) != nil {
		return 2
	}
	st, err := openBuilds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc builds:", err)
		return 1
	}
	list, err := st.List()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc builds:", err)
		return 1
	}
	if *asJSON {
		if list == nil {
			list = []timeline.Summary{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(list)
		return 0
	}
	if len(list) == 0 {
		fmt.Fprintln(out, "no builds recorded yet")
		return 0
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tSTARTED\tWALL\tFILES\tREMOTE\tLOCAL\tCACHED\tCOMMAND\tDIRECTORY\n")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.Start.Local().Format("2006-01-02 15:04:05"),
			b.Wall.Round(10*time.Millisecond), b.Files, b.Remote, b.Local, b.Cached, clip(strings.Join(b.Command, " "), 60), b.Dir)
	}
	tw.Flush()
	return 0
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// TraceCmd implements `dcc trace [--build ID | --last] --out FILE [--html]`
// and `dcc trace [--build ID | --last] --summary`.
func TraceCmd(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("dcc trace", flag.ContinueOnError)
	id := fs.String("build", "", "the build's id (dcc builds lists them)")
	last := fs.Bool("last", false, "the most recent build")
	file := fs.String("out", "", "write the trace to FILE")
	html := fs.Bool("html", false, "write a self-contained HTML page instead of Chrome trace-event JSON")
	summary := fs.Bool("summary", false, "print the build's summary, slowest files and critical path")
	if fs.Parse(args) != nil {
		return 2
	}
	if (*id == "") == !*last {
		fmt.Fprintln(os.Stderr, "dcc trace: give one of --build ID and --last")
		return 2
	}
	if *file == "" && !*summary {
		fmt.Fprintln(os.Stderr, "dcc trace: give --out FILE or --summary")
		return 2
	}
	st, err := openBuilds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc trace:", err)
		return 1
	}
	var b *timeline.Build
	if *id != "" {
		b, err = st.Load(*id)
	} else {
		b, err = st.Last()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc trace:", err)
		return 1
	}
	if *summary {
		if err := timeline.WriteSummary(out, b); err != nil {
			fmt.Fprintln(os.Stderr, "dcc trace:", err)
			return 1
		}
	}
	if *file == "" {
		return 0
	}
	tmp, err := os.CreateTemp(filepath.Dir(*file), ".dcc-trace-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc trace:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	if *html {
		err = timeline.WriteHTML(tmp, b)
	} else {
		err = timeline.WriteTrace(tmp, b)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		os.Chmod(tmp.Name(), 0o644)
		err = os.Rename(tmp.Name(), *file)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc trace:", err)
		return 1
	}
	fmt.Fprintf(out, "wrote %s: build %s, %d files\n", *file, b.ID, len(b.Jobs))
	return 0
}
