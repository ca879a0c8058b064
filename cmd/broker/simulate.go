package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/dcc-farm/dcc/internal/sim"
)

// simulate runs `broker simulate`: it replays a scenario on a virtual
// clock under one policy or all of them and prints the figures.
func simulate(args []string) int {
	fs := flag.NewFlagSet("broker simulate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: broker simulate --scenario FILE [--policy NAME|all] [--seed N] [--seeds K] [--json]\n\n"+
			"Replays the scenario's builds on a virtual clock under the policies random (distcc), dmucs (DMUCS),\n"+
			"fastest (icecream) and dcc (this broker's scheduler), deterministically for the scenario's seed.\n"+
			"With --seeds K it runs seeds N .. N+K-1 and prints the mean of each figure.\n\n")
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", "", "scenario JSON file (see scenarios/)")
	policy := fs.String("policy", "all", "policy to run: random, dmucs, fastest, dcc or all")
	seed := fs.Int64("seed", -1, "override the scenario's seed (-1: keep it)")
	seeds := fs.Int("seeds", 1, "run this many seeds from the first and print mean figures")
	asJSON := fs.Bool("json", false, "print JSON: per policy the figures and per user turnaround, p99 wait and share")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scenario == "" {
		fs.Usage()
		return 2
	}
	sc, err := sim.Load(*scenario)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker simulate:", err)
		return 2
	}
	if *seed >= 0 {
		sc.Seed = uint64(*seed)
	}
	if *seeds < 1 {
		fmt.Fprintln(os.Stderr, "broker simulate: --seeds must be at least 1")
		return 2
	}
	names := []string{*policy}
	if *policy == "all" {
		names = sim.Policies
	}
	results := map[string]*sim.Result{}
	first := sc.Seed
	for _, n := range names {
		var rs []*sim.Result
		for k := range *seeds {
			sc.Seed = first + uint64(k)
			r, err := sim.RunNamed(sc, n)
			if err != nil {
				fmt.Fprintln(os.Stderr, "broker simulate:", err)
				return 2
			}
			rs = append(rs, r)
		}
		results[n] = sim.Mean(rs)
	}
	sc.Seed = first
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintln(os.Stderr, "broker simulate:", err)
			return 1
		}
		return 0
	}
	printTable(sc, *seeds, names, results)
	return 0
}

func printTable(sc *sim.Scenario, seeds int, names []string, results map[string]*sim.Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	if seeds > 1 {
		fmt.Fprintf(os.Stdout, "scenario %s, mean of seeds %d-%d, lower bound %.1fs\n", sc.Name, sc.Seed, sc.Seed+uint64(seeds)-1, results[names[0]].LowerBoundS)
	} else {
		fmt.Fprintf(os.Stdout, "scenario %s, seed %d, lower bound %.1fs\n", sc.Name, sc.Seed, results[names[0]].LowerBoundS)
	}
	fmt.Fprintln(w, "policy\tmakespan_s\t/bound\tmean_wait_s\tp99_wait_s\tlight_p99_s\tjain\tmean_turn_s\tlight_turn_s\tworst_turn_s\tlocal\tredone\t")
	for _, n := range names {
		r := results[n]
		fmt.Fprintf(w, "%s\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%d\t%d\t\n", n, r.MakespanS, r.MakespanS/r.LowerBoundS,
			r.MeanWaitS, r.P99WaitS, r.LightP99WaitS, r.Jain, r.MeanTurnaroundS, r.LightTurnaroundS, r.WorstTurnaroundS, r.LocalJobs, r.RedoneJobs)
	}
	w.Flush()
	fmt.Println()
	users := make([]string, 0)
	for u := range results[names[0]].Users {
		users = append(users, u)
	}
	sort.Strings(users)
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "user\tjobs\t")
	for _, n := range names {
		fmt.Fprintf(w, "%s turn_s\tp99_wait\tshare\t", n)
	}
	fmt.Fprintln(w)
	for _, u := range users {
		fmt.Fprintf(w, "%s\t%d\t", u, results[names[0]].Users[u].Jobs)
		for _, n := range names {
			ur := results[n].Users[u]
			fmt.Fprintf(w, "%.1f\t%.2f\t%.3f\t", ur.TurnaroundS, ur.P99WaitS, ur.Share)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}
