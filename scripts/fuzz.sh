#!/usr/bin/env bash
# Runs every fuzz target in the module for a fixed number of executions
# (default 200000x each), on top of the committed corpus.
#
# The budget is a count, not a duration, on purpose: with a duration
# (-fuzztime=10s) Go 1.26's coordinator can report "context deadline
# exceeded" as a failure when a worker is mid-call at the deadline
# (golang/go#75804, fixed in Go 1.27), which fails CI with no input to
# reproduce. A count has no deadline to race; a slower machine only takes
# longer. A real finding still fails the run and writes its input to
# testdata/fuzz/.
set -euo pipefail
t=${1:-200000x}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $f ($t)"
    go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
  done
done
echo "fuzz: all targets ran clean"
