#!/usr/bin/env bash
# bench/overhead.sh [RUNS] — per-compile wall time of one small C file
# (bench/small.c, ~200 lines including stdio.h, stdlib.h, string.h):
#
#   local   gcc -O2 -c small.c
#   dcc     dcc gcc -O2 -c small.c     one volunteer, 2 slots, agent warm
#   distcc  distcc gcc -O2 -c small.c  Debian's distccd, 2 jobs
#
# all on loopback on this machine, interleaved run by run (local, dcc,
# distcc, local, ...) so machine noise hits each variant equally. Prints a
# markdown table; raw per-run numbers go to bench/out/overhead-*.csv.
# RUNS defaults to 50 (or $BENCH_RUNS).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/bench/out/overhead
RUNS=${1:-${BENCH_RUNS:-50}}
WARMUP=${BENCH_WARMUP:-5}
SLOTS=2

. "$ROOT/bench/lib.sh"
need_bins broker volunteer dcc
need_tools gcc distcc distccd python3
rm -rf "$OUT"
mkdir -p "$OUT/work"
trap stop_all EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

machine_info | tee "$OUT/machine.txt"
start_dcc_farm "$SLOTS"
start_distccd "$SLOTS"
echo "farm:     dcc broker + 1 volunteer ($SLOTS slots); distccd --jobs $SLOTS; both on 127.0.0.1"
echo "runs:     $RUNS per variant after $WARMUP warm-up runs each, interleaved"
echo

cp "$ROOT/bench/small.c" "$OUT/work/small.c"
dcc0=$(dcc_jobs_done)
distcc0=$(distcc_jobs_done)

stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$OUT/work" "$RUNS" "$WARMUP" "$BIN/dcc" "$OUT/overhead-$stamp.csv" "$OUT/table.md" <<'PY'
import os, statistics, subprocess, sys, time
work, runs, warm, dcc, csv_path, table_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
variants = [
    ("local gcc", ["gcc"]),
    ("dcc", [dcc, "gcc"]),
    ("distcc", ["distcc", "gcc"]),
]
env = dict(os.environ)
env.pop("DCC_VERBOSE", None)
env.pop("DISTCC_VERBOSE", None)

def once(i, prefix):
    out = f"out{i}.o"
    t0 = time.perf_counter()
    r = subprocess.run(prefix + ["-O2", "-c", "small.c", "-o", out], cwd=work, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(prefix)} failed: {r.stderr.decode(errors='replace')}")
    return dt

for _ in range(warm):
    for i, (_, p) in enumerate(variants):
        once(i, p)
times = {name: [] for name, _ in variants}
with open(csv_path, "w") as f:
    f.write("run,variant,wall_ms\n")
    for run in range(runs):
        for i, (name, p) in enumerate(variants):
            dt = once(i, p)
            times[name].append(dt)
            f.write(f"{run},{name},{dt:.3f}\n")

# the objects must be identical: every variant compiled the same thing
objs = [open(os.path.join(work, f"out{i}.o"), "rb").read() for i in range(len(variants))]
same = all(o == objs[0] for o in objs)

def p90(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]

med = {k: statistics.median(v) for k, v in times.items()}
loc = med["local gcc"]
lines = ["| variant | median ms | p90 ms | overhead vs local (median) |",
         "|---|---:|---:|---:|"]
for name, _ in variants:
    ov = "—" if name == "local gcc" else f"{med[name] - loc:+.1f}"
    lines.append(f"| {name} | {med[name]:.1f} | {p90(times[name]):.1f} | {ov} |")
ovd, ovx = med["dcc"] - loc, med["distcc"] - loc
lines.append("")
lines.append(f"ratio dcc/distcc: wall medians {med['dcc'] / med['distcc']:.2f}, "
             f"overheads {ovd / ovx if ovx > 0 else float('nan'):.2f} "
             f"({runs} runs each; objects identical across variants: {'yes' if same else 'NO'})")
text = "\n".join(lines)
print(text)
open(table_path, "w").write(text + "\n")
if not same:
    sys.exit("objects differ between variants")
PY

dcc_n=$(( $(dcc_jobs_done) - dcc0 ))
distcc_n=$(( $(distcc_jobs_done) - distcc0 ))
want=$((RUNS + WARMUP))
echo
echo "remote compiles: dcc $dcc_n (broker jobs_done), distcc $distcc_n (distccd COMPILE_OK), want $want each" | tee -a "$OUT/table.md"
echo "raw numbers: ${OUT#$ROOT/}/overhead-$stamp.csv"
if [ "$dcc_n" -ne "$want" ] || [ "$distcc_n" -ne "$want" ]; then
	echo "bench: not every compile went remote; the numbers above are not comparable" >&2
	exit 1
fi
