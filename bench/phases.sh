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
cols = {k: [] for k in ["gcc -E", "gcc -c", "gcc -c small.i (what the host runs)", "dcc, no farm (exec gcc)", "dcc total (wall)",
                        "  process start and exit (wall - dcc's own clock)", "  dcc start -> preprocessed",
                        "  lease granted (agent clock, overlaps preprocessing)", "  source ready -> result (agent)",
                        "    of which the volunteer's compile, after its source", "    of which transfer and hand-offs",
                        "  result -> object written (dcc)"]}
log = open(logp, "w")
for _ in range(runs):
    cols["gcc -E"].append(wall(["gcc", "-O2", "-E", "small.c", "-o", "small.i"])[0])
    cols["gcc -c"].append(wall(["gcc", "-O2", "-c", "small.c", "-o", "g.o"])[0])
    cols["gcc -c small.i (what the host runs)"].append(wall(["gcc", "-O2", "-c", "small.i", "-o", "i.o"])[0])
    cols["dcc, no farm (exec gcc)"].append(wall([dcc, "gcc", "-O2", "-c", "small.c", "-o", "n.o"], noenv)[0])
    w, err = wall([dcc, "gcc", "-O2", "-c", "small.c", "-o", "d.o"], env)
    log.write(err)
    cols["dcc total (wall)"].append(w)
    pre = ms(re.search(r"preprocessed \S+: \d+ bytes in (\S+)", err).group(1))
    asked = ms(re.search(r"agent \+(\S+): lease requested", err).group(1))
    grant = ms(re.search(r"agent \+(\S+): lease \d+ granted", err).group(1))
    done = ms(re.search(r"agent \+(\S+): job done", err).group(1))
    comp = float(re.search(r"compile (\d+)ms", err).group(1))
    total = ms(re.search(r"; total (\S+)", err).group(1))
    # The agent's clock starts when dcc's request reaches it, just after
    # dcc's own start: close enough to place the source's arrival at pre.
    cols["  process start and exit (wall - dcc's own clock)"].append(w - total)
    cols["  dcc start -> preprocessed"].append(pre)
    cols["  lease granted (agent clock, overlaps preprocessing)"].append(grant - asked)
    cols["  source ready -> result (agent)"].append(done - pre)
    cols["    of which the volunteer's compile, after its source"].append(comp)
    cols["    of which transfer and hand-offs"].append(done - pre - comp)
    cols["  result -> object written (dcc)"].append(total - done)
print(f"| phase ({runs} runs, interleaved) | median ms |")
print("|---|---:|")
for k, v in cols.items():
    print(f"| {k} | {statistics.median(v):.1f} |")
PY
