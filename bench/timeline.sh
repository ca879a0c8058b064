#!/usr/bin/env bash
# bench/timeline.sh [RUNS] — what recording build timelines costs a compile:
# bench/small.c compiled through a one-volunteer farm RUNS times (default
# 40) with records on (DCC_BUILDS_DIR set, the default) and off
# (DCC_BUILDS_DIR empty), interleaved; plus the client's and the agent's
# own work per record from `go test -bench` (buildroot.Find, which the
# agent runs while a farm job compiles: reading the
# process tree; Store.Append: validate, encode, one write).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/bench/out/timeline
RUNS=${1:-${BENCH_RUNS:-40}}
. "$ROOT/bench/lib.sh"
need_bins broker volunteer dcc
need_tools gcc python3
rm -rf "$OUT"
mkdir -p "$OUT/work"
trap stop_all EXIT
machine_info | tee "$OUT/machine.txt"
start_dcc_farm 2
cp "$ROOT/bench/small.c" "$OUT/work/small.c"
python3 - "$OUT/work" "$RUNS" "$BIN/dcc" "$OUT/builds" <<'PY'
import os, statistics, subprocess, sys, time
work, runs, dcc, builds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
env = dict(os.environ)
env.pop("DCC_VERBOSE", None)
def once(d):
    e = dict(env, DCC_BUILDS_DIR=d)
    t0 = time.perf_counter()
    subprocess.run([dcc, "gcc", "-O2", "-c", "small.c", "-o", "x.o"], cwd=work, env=e, check=True)
    return (time.perf_counter() - t0) * 1000
on, off = [], []
for i in range(-3, runs):
    a, b = once(builds), once("")
    if i >= 0:
        on.append(a); off.append(b)
mon, moff = statistics.median(on), statistics.median(off)
print("| small.c through dcc | median ms |\n|---|---:|")
print(f"| records on | {mon:.2f} |\n| records off | {moff:.2f} |")
print(f"\ndifference {mon - moff:+.2f} ms ({100 * (mon - moff) / moff:+.2f} % of the compile), {runs} runs each, interleaved")
PY
echo
cd "$ROOT"
go test -run '^$' -bench 'BenchmarkFind' -benchtime 2000x ./internal/buildroot/ | grep Benchmark
go test -run '^$' -bench 'BenchmarkAppend' ./internal/timeline/ | grep Benchmark
