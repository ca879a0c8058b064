#!/usr/bin/env bash
# bench/phases.sh [RUNS] — where dcc's per-job time goes, from DCC_VERBOSE=1:
# compiles bench/small.c RUNS times (default 30) through a one-volunteer farm
# and prints the median of each phase next to plain gcc -E and gcc -c run
# interleaved on the same machine. Raw lines go to bench/out/phases/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/bench/out/phases
RUNS=${1:-${BENCH_RUNS:-30}}

. "$ROOT/bench/lib.sh"
rm -rf "$OUT"
mkdir -p "$OUT/work"
trap stop_all EXIT
trap 'exit 130' INT TERM
start_dcc_farm 2
cp "$ROOT/bench/small.c" "$OUT/work/"

python3 - "$OUT/work" "$RUNS" "$BIN/dcc" "$OUT/verbose.log" <<'PY'
import os, re, statistics, subprocess, sys, time
work, runs, dcc, logp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
env = dict(os.environ, DCC_VERBOSE="1")
noenv = dict(os.environ, DCC_BROKER="", DCC_NO_AGENT="1")  # dcc with no farm: classify, then exec gcc
noenv.pop("DCC_VERBOSE", None)

def wall(cmd, e=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=work, env=e or os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode:
        sys.exit(r.stderr.decode())
    return (time.perf_counter() - t0) * 1000, r.stderr.decode()

def ms(s):
    m = re.match(r"([\d.]+)(µs|ms|s)$", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "µs" else v * 1000 if m.group(2) == "s" else v

for _ in range(3):
    wall([dcc, "gcc", "-O2", "-c", "small.c", "-o", "d.o"], env)
cols = {k: [] for k in ["gcc -E", "gcc -c", "dcc, no farm (exec gcc)", "dcc total (wall)",
                        "  dcc start -> preprocessed", "  lease granted (agent clock)",
                        "  job done (agent clock)", "  volunteer compile", "  after job done"]}
log = open(logp, "w")
for _ in range(runs):
    cols["gcc -E"].append(wall(["gcc", "-O2", "-E", "small.c", "-o", "small.i"])[0])
    cols["gcc -c"].append(wall(["gcc", "-O2", "-c", "small.c", "-o", "g.o"])[0])
    cols["dcc, no farm (exec gcc)"].append(wall([dcc, "gcc", "-O2", "-c", "small.c", "-o", "n.o"], noenv)[0])
    w, err = wall([dcc, "gcc", "-O2", "-c", "small.c", "-o", "d.o"], env)
    log.write(err)
    cols["dcc total (wall)"].append(w)
    pre = ms(re.search(r"preprocessed \S+: \d+ bytes in (\S+)", err).group(1))
    grant = ms(re.search(r"agent \+(\S+): lease \d+ granted", err).group(1))
    done = ms(re.search(r"agent \+(\S+): job done", err).group(1))
    comp = float(re.search(r"compile (\d+)ms", err).group(1))
    total = ms(re.search(r"; total (\S+)", err).group(1))
    cols["  dcc start -> preprocessed"].append(pre)
    cols["  lease granted (agent clock)"].append(grant)
    cols["  job done (agent clock)"].append(done)
    cols["  volunteer compile"].append(comp)
    cols["  after job done"].append(total - pre - done)
print(f"| phase ({runs} runs, interleaved) | median ms |")
print("|---|---:|")
for k, v in cols.items():
    print(f"| {k} | {statistics.median(v):.1f} |")
PY
