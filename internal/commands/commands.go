// Package commands holds dcc's commands other than compiling: status,
// farm, cache, builds, trace, and the agent itself (package agent). They
// run in the dcc-agent binary, which dcc execs for them (and starts as
// the agent), so that dcc, started on every compile, links none of their
// TLS, multiplexing, logging and rendering.
package commands

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dcc-farm/dcc/internal/agent"
	"github.com/dcc-farm/dcc/internal/buildinfo"
	"github.com/dcc-farm/dcc/internal/client"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/status"
	"github.com/dcc-farm/dcc/internal/timeline"
	"github.com/dcc-farm/dcc/internal/transport"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// Main is dcc-agent's entry point (argv[1] is the command, as after
// `dcc`); it returns the exit status.
func Main(argv []string) int {
	if len(argv) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s status|farm|cache|builds|trace|agent ... (these are dcc's commands: see dcc --help)\n", filepath.Base(argv[0]))
		return 2
	}
	switch argv[1] {
	case "status":
		return StatusCmd(argv[2:], os.Stdout)
	case "farm":
		return FarmCmd(argv[2:], os.Stdout)
	case "agent":
		return AgentCmd(argv[2:])
	case "builds":
		return BuildsCmd(argv[2:], os.Stdout)
	case "cache":
		return CacheCmd(argv[2:], os.Stdout)
	case "trace":
		return TraceCmd(argv[2:], os.Stdout)
	case "version", "--version":
		fmt.Println("dcc-agent", buildinfo.ID())
		return 0
	}
	fmt.Fprintf(os.Stderr, "dcc: unknown command %q (see dcc --help)\n", argv[1])
	return 2
}

// brokerCall opens an admin session to the broker, sends m and returns the reply.
func brokerCall(m wire.Message, cap int) (wire.Message, error) {
	cfg, _ := client.LoadConfig()
	if cfg.Broker == "" {
		return nil, fmt.Errorf("no broker configured (set DCC_BROKER or broker in ~/.dccrc)")
	}
	id, err := identity.Load(cfg.Identity, identity.RoleUser)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	s, _, err := transport.Dial(ctx, cfg.Broker, identity.ClientConfig(id, identity.Expect(identity.RoleBroker, "")),
		wire.Hello{Role: wire.RoleAdmin, Name: host, User: cfg.User, Build: buildinfo.ID()})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	c := wire.NewConn(st, cap, 10*time.Second)
	if err := c.Send(m); err != nil {
		return nil, err
	}
	reply, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(*wire.Error); ok {
		return nil, e
	}
	return reply, nil
}

// StatusCmd implements `dcc status`.
func StatusCmd(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("dcc status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the status document as JSON (same as GET /v1/status)")
	explain := fs.String("explain", "", "explain why HOST is in its tier")
	if fs.Parse(args) != nil {
		return 2
	}
	raw, err := fetchStatus(*explain)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc status:", err)
		return 1
	}
	if *asJSON {
		out.Write(raw)
		fmt.Fprintln(out)
		return 0
	}
	doc := new(status.Doc)
	if err := json.Unmarshal(raw, doc); err != nil {
		fmt.Fprintln(os.Stderr, "dcc status:", err)
		return 1
	}
	if *explain != "" && doc.Explain != nil {
		e := doc.Explain
		fmt.Fprintf(out, "%s: tier %d, %s\n  reason: %s\n  detail: %s\n", e.Host, e.Tier, e.State, e.Reason, e.Detail)
		return 0
	}
	PrintTable(out, doc)
	return 0
}

// fetchStatus asks the broker for its status document (JSON).
func fetchStatus(explain string) ([]byte, error) {
	m, err := brokerCall(&wire.StatusQuery{Explain: explain}, wire.MaxStatusFrame)
	if err != nil {
		return nil, err
	}
	rep, ok := m.(*wire.StatusReply)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	return rep.JSON, nil
}

// PrintTable renders the status document as a compact terminal table.
func PrintTable(out io.Writer, doc *status.Doc) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST\tSTATE\tTIER\tBUSY/SLOTS\tLOAD1\tCPUS\tPOWER\tJOBS\tPROTOCOL\tWHY\n")
	for _, h := range doc.Hosts {
		why := h.Reason
		if h.Note != "" { // why it is unavailable or blocked
			why += ": " + h.Note
		}
		proto := cmp.Or(h.Protocol, "dcc")
		if h.Auth == "unauthenticated" {
			proto += " (unauthenticated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%.2f\t%d\t%g\t%d\t%s\t%s\n", h.Name, h.State, h.Tier, h.Busy, h.Slots, h.Load1, h.CPUs, h.Power, h.JobsDone, proto, why)
	}
	tw.Flush()
	if len(doc.Users) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintf(tw, "USER\tRUNNING\tWAITING\tSHARE\tUSAGE\n")
		for _, u := range doc.Users {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\t%.1f\n", u.Name, u.Running, u.Waiting, 100*u.Share, u.Usage)
		}
		tw.Flush()
	}
	comps := map[string][]string{}
	for _, h := range doc.Hosts {
		for _, c := range h.Compilers {
			comps[c] = append(comps[c], h.Name)
		}
	}
	if len(comps) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintf(tw, "COMPILER\tHOSTS\n")
		for c, hs := range comps {
			fmt.Fprintf(tw, "%s\t%s\n", c, strings.Join(hs, ","))
		}
		tw.Flush()
	}
	if doc.Cache != nil {
		fmt.Fprintln(out)
		printCache(out, doc.Cache)
	}
	fmt.Fprintf(out, "\nleases %d, queued %d, slots %d busy of %d\n", doc.Leases, doc.Queue, doc.Busy, doc.Slots)
}

// printCache renders the result cache's figures: hit rate overall and
// per user.
func printCache(out io.Writer, c *status.Cache) {
	fmt.Fprintf(out, "cache (%s): %d entries, %s; hit rate %.0f%% (%d hits, %d misses); %d evictions\n",
		c.Store, c.Entries, timeline.FormatBytes(c.Bytes), 100*c.HitRate(), c.Hits, c.Misses, c.Evictions)
	if len(c.Users) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "USER\tCACHE HITS\tMISSES\tHIT RATE\n")
	for _, u := range c.Users {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\n", u.Name, u.Hits, u.Misses, 100*u.HitRate())
	}
	tw.Flush()
}

// CacheCmd implements `dcc cache` (the cache's figures) and `dcc cache
// clear` (empties it; an admin's credential).
func CacheCmd(args []string, out io.Writer) int {
	if len(args) == 1 && args[0] == "clear" {
		return adminCall("dcc cache clear", &wire.AdminRequest{Action: wire.AdminCacheClear}, out)
	}
	if len(args) != 0 {
		fmt.Fprint(os.Stderr, "usage: dcc cache [clear]\n")
		return 2
	}
	raw, err := fetchStatus("")
	doc := new(status.Doc)
	if err == nil {
		err = json.Unmarshal(raw, doc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc cache:", err)
		return 1
	}
	if doc.Cache == nil {
		fmt.Fprintln(out, "the broker keeps no result cache")
		return 0
	}
	printCache(out, doc.Cache)
	return 0
}

// FarmCmd implements `dcc farm drain|undrain|block|unblock HOST`.
func FarmCmd(args []string, out io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(os.Stderr, "usage: dcc farm drain|undrain|block|unblock HOST [--reason TEXT]\n")
		return 2
	}
	action, host := args[0], args[1]
	fs := flag.NewFlagSet("dcc farm", flag.ContinueOnError)
	reason := fs.String("reason", "", "why (logged, and shown in status)")
	if fs.Parse(args[2:]) != nil {
		return 2
	}
	switch action {
	case wire.AdminDrain, wire.AdminUndrain, wire.AdminBlock, wire.AdminUnblock:
	default:
		fmt.Fprintf(os.Stderr, "dcc farm: unknown action %q\n", action)
		return 2
	}
	if action == wire.AdminBlock && *reason == "" {
		fmt.Fprintln(os.Stderr, "dcc farm block: --reason is required")
		return 2
	}
	return adminCall("dcc farm", &wire.AdminRequest{Action: action, Host: host, Reason: *reason}, out)
}

// adminCall sends an admin request and prints the broker's answer.
func adminCall(what string, req *wire.AdminRequest, out io.Writer) int {
	m, err := brokerCall(req, wire.MaxControlFrame)
	if err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		return 1
	}
	rep, ok := m.(*wire.AdminReply)
	if !ok || !rep.OK {
		msg := "unexpected reply"
		if ok {
			msg = rep.Message
		}
		fmt.Fprintln(os.Stderr, what+":", msg)
		return 1
	}
	fmt.Fprintln(out, rep.Message)
	return 0
}

// AgentCmd runs the agent (started by dcc itself).
func AgentCmd(args []string) int {
	fs := flag.NewFlagSet("dcc agent", flag.ContinueOnError)
	var o agent.Options
	sock := fs.String("socket", "", "unix socket to serve")
	fs.StringVar(&o.Broker, "broker", "", "broker address")
	fs.StringVar(&o.Identity, "identity", "", "the user's credential")
	fs.StringVar(&o.User, "user", "", "user to charge (honoured for an admin's credential only)")
	fs.DurationVar(&o.Idle, "idle", 10*time.Minute, "exit after this long without work")
	fs.IntVar(&o.LocalSlots, "local-slots", 2, "compiles to run here at once when the farm is slower")
	fs.Float64Var(&o.LocalPower, "local-power", 1, "this machine's power index")
	fs.StringVar(&o.BuildsDir, "builds-dir", "", "where to keep build records (empty: none)")
	fs.IntVar(&o.KeepBuilds, "keep-builds", 20, "how many builds' records to keep")
	if fs.Parse(args) != nil || *sock == "" {
		return 2
	}
	o.RuntimeDir = filepath.Dir(*sock)
	logs, err := logging.New("console", "info")
	if err != nil {
		return 2
	}
	a, err := agent.New(o, *sock, logs.Log)
	if err == agent.ErrRunning {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcc agent:", err)
		return 1
	}
	a.Run()
	return 0
}
