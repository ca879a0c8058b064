#!/usr/bin/env bash
# bench/cache.sh [RUNS] — what the farm's result cache costs and gives.
#
# Part 1, one small C file (bench/small.c), RUNS runs each, interleaved:
#   miss    dcc with the cache, a source no one compiled before (each run
#           appends a distinct definition, so every lookup misses)
#   nocache the same with DCC_CACHE=0: the difference is what a miss costs
#   distcc  the same through Debian's distccd
#   hit     dcc, a source the farm compiled before: served from the cache
#   local   gcc alone
#
# Part 2, a real project (GNU awk, as bench/realproject.sh) built with
# make -j8 by two engineers in directories of their own (CFLAGS=-O2):
#   local, distcc, dcc by alice into an empty cache (cold), then dcc by bob
#   (warm: alice's results), objects compared with the local build's.
#
# Everything runs on this machine's loopback. Prints markdown tables; raw
# numbers go to bench/out/cache/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/bench/out/cache
RUNS=${1:-${BENCH_RUNS:-40}}
SLOTS=2
JOBS=8

. "$ROOT/bench/lib.sh"
need_bins broker volunteer dcc
need_tools gcc make distcc distccd python3
rm -rf "$OUT"
mkdir -p "$OUT/work"
trap stop_all EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

machine_info | tee "$OUT/machine.txt"
start_dcc_farm "$SLOTS" --cache-size 1GiB
start_distccd "$SLOTS"
"$BIN/broker" enroll admin ops --state "$FARM_DIR/state" --out "$FARM_DIR/id/admin-ops.pem" --force >/dev/null
for u in alice bob; do
	"$BIN/broker" enroll user "$u" --state "$FARM_DIR/state" --out "$FARM_DIR/id/user-$u.pem" --force >/dev/null
	mkdir -p "$OUT/rt-$u"
done
as_user() { # USER CMD...: run as that engineer (own credential and agent)
	local u=$1
	shift
	DCC_IDENTITY=$FARM_DIR/id/user-$u.pem DCC_RUNTIME_DIR=$OUT/rt-$u "$@"
}
cache_clear() { DCC_IDENTITY=$FARM_DIR/id/admin-ops.pem "$BIN/dcc" cache clear >/dev/null; }
echo "farm:     dcc broker (cache 1GiB on disk) + 1 volunteer ($SLOTS slots); distccd --jobs $SLOTS; all on 127.0.0.1"
echo

# --- part 1: one file ---------------------------------------------------------
cp "$ROOT/bench/small.c" "$OUT/work/small.c"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
as_user alice python3 - "$OUT/work" "$RUNS" "$BIN/dcc" "$OUT/file-$stamp.csv" "$OUT/file.md" <<'PY'
import os, re, statistics, subprocess, sys, time
work, runs, dcc, csv_path, table_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
base = open(os.path.join(work, "small.c")).read()
env = dict(os.environ)
env.pop("DCC_VERBOSE", None)

def compile(prefix, src, out, extra_env=None):
    e = dict(env, **(extra_env or {}))
    t0 = time.perf_counter()
    r = subprocess.run(prefix + ["-O2", "-c", src, "-o", out], cwd=work, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(prefix)} failed: {r.stderr.decode(errors='replace')}")
    m = re.search(r"the job waited ([0-9.]+)(µs|ms|s) for it", r.stderr.decode(errors="replace"))
    if m:
        waits.append(float(m.group(1)) * {"µs": 0.001, "ms": 1, "s": 1000}[m.group(2)])
    return dt

waits = []  # how long each miss waited for its lookup (DCC_VERBOSE)

def fresh(tag, i):
    name = f"u-{tag}-{i}.c"
    with open(os.path.join(work, name), "w") as f:
        f.write(base + f"\nconst int dcc_bench_nonce_{tag}_{i + 10} = {i};\n")
    return name

# the hit variant's source, compiled once through the farm (and cached)
compile([dcc, "gcc"], "small.c", "seed.o")
time.sleep(0.5)
variants = ["miss", "nocache", "distcc", "hit", "local"]
times = {v: [] for v in variants}
for i in range(-3, runs):  # three warm-up rounds
    for v in variants:
        if v == "miss":
            dt = compile([dcc, "gcc"], fresh(v, i), "miss.o", {"DCC_VERBOSE": "1"})
        elif v == "nocache":
            dt = compile([dcc, "gcc"], fresh(v, i), "nocache.o", {"DCC_CACHE": "0"})
        elif v == "distcc":
            dt = compile(["distcc", "gcc"], fresh(v, i), "distcc.o")
        elif v == "hit":
            dt = compile([dcc, "gcc"], "small.c", "hit.o")
        else:
            dt = compile(["gcc"], fresh(v, i), "local.o")
        if i >= 0:
            times[v].append(dt)
with open(csv_path, "w") as f:
    f.write("variant,wall_ms\n")
    for v in variants:
        for dt in times[v]:
            f.write(f"{v},{dt:.3f}\n")
subprocess.run(["gcc", "-O2", "-c", "small.c", "-o", "ref.o"], cwd=work, check=True)
same = open(os.path.join(work, "hit.o"), "rb").read() == open(os.path.join(work, "ref.o"), "rb").read()
med = {v: statistics.median(times[v]) for v in variants}
lines = ["| small.c, -O2 | median ms | p90 ms |", "|---|---:|---:|"]
for v in variants:
    s = sorted(times[v])
    lines.append(f"| {v} | {med[v]:.2f} | {s[int(round(0.9 * (len(s) - 1)))]:.2f} |")
lines += ["", f"a miss costs {med['miss'] - med['nocache']:+.2f} ms over DCC_CACHE=0 (medians, {runs} runs each); "
          f"ratio miss/distcc {med['miss'] / med['distcc']:.2f}, hit/distcc {med['hit'] / med['distcc']:.2f}, "
          f"hit/local {med['hit'] / med['local']:.2f}; hit object identical to local gcc: {'yes' if same else 'NO'}",
          "", f"a miss waited for its lookup (agent's DCC_VERBOSE figure, {len(waits)} misses): median {statistics.median(waits):.2f} ms, "
          f"p90 {sorted(waits)[int(round(0.9 * (len(waits) - 1)))]:.2f} ms, max {max(waits):.2f} ms"]
text = "\n".join(lines)
print(text)
open(table_path, "w").write(text + "\n")
if not same:
    sys.exit("a hit's object differs from local gcc's")
PY
echo

# --- part 2: a real project, two engineers ------------------------------------
[ "${BENCH_SKIP_PROJECT:-}" = 1 ] && exit 0
PKG=gawk
SRC=$ROOT/bench/out/src
if ! ls -d "$SRC/$PKG"-*/ >/dev/null 2>&1; then
	echo "bench: the gawk source is fetched by bench/realproject.sh; run it once first" >&2
	exit 1
fi
TREE=$(ls -d "$SRC/$PKG"-*/ | head -1)
TREE=${TREE%/}
for u in alice bob local distcc; do
	mkdir -p "$OUT/$u"
	cp -a "$TREE" "$OUT/$u/gawk"
	(cd "$OUT/$u/gawk" && make distclean >/dev/null 2>&1 || true
	 ./configure -q CC=gcc CFLAGS=-O2 --disable-nls --without-mpfr --without-readline >"$OUT/configure-$u.log" 2>&1) || {
		tail "$OUT/configure-$u.log" >&2; exit 1; }
done
build() { # DIR CC [ENV...]
	local dir=$1 cc=$2 t0 t1
	shift 2
	make -C "$dir" clean SUBDIRS=support >/dev/null 2>&1 || true
	t0=$(date +%s.%N)
	if ! env "$@" make -C "$dir" -j$JOBS SUBDIRS=support CC="$cc" >"$dir.build.log" 2>&1; then
		echo "bench: build in $dir failed; see $dir.build.log" >&2; tail -5 "$dir.build.log" >&2; exit 1
	fi
	t1=$(date +%s.%N)
	python3 -c "print('%.2f' % ($t1 - $t0))"
}
ROUNDS=${BENCH_ROUNDS:-3}
echo "round,variant,wall_s" >"$OUT/project.csv"
for r in $(seq "$ROUNDS"); do
	t=$(build "$OUT/local/gawk" gcc); echo "$r,local,$t" >>"$OUT/project.csv"
	t=$(build "$OUT/distcc/gawk" "distcc gcc"); echo "$r,distcc,$t" >>"$OUT/project.csv"
	cache_clear
	t=$(build "$OUT/alice/gawk" "$BIN/dcc gcc" DCC_IDENTITY="$FARM_DIR/id/user-alice.pem" DCC_RUNTIME_DIR="$OUT/rt-alice")
	echo "$r,dcc cold (alice),$t" >>"$OUT/project.csv"
	sleep 1 # the last results' puts land
	t=$(build "$OUT/bob/gawk" "$BIN/dcc gcc" DCC_IDENTITY="$FARM_DIR/id/user-bob.pem" DCC_RUNTIME_DIR="$OUT/rt-bob")
	echo "$r,dcc warm (bob),$t" >>"$OUT/project.csv"
	echo "round $r done"
done
same=yes
for o in $(cd "$OUT/local/gawk" && find . -name '*.o'); do
	cmp -s "$OUT/local/gawk/$o" "$OUT/bob/gawk/$o" || { same=no; echo "differs: $o" >&2; }
done
farm_status_json >"$OUT/status.json"
python3 - "$OUT/project.csv" "$OUT/status.json" "$same" <<'PY' | tee "$OUT/project.md"
import csv, json, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = ["local", "distcc", "dcc cold (alice)", "dcc warm (bob)"]
med = {n: statistics.median(float(r["wall_s"]) for r in rows if r["variant"] == n) for n in names}
print("| gawk, make -j8, CFLAGS=-O2 | median wall s | all runs s |")
print("|---|---:|---|")
for n in names:
    print(f"| {n} | {med[n]:.2f} | {', '.join(r['wall_s'] for r in rows if r['variant'] == n)} |")
c = json.load(open(sys.argv[2])).get("cache") or {}
users = {u["name"]: u for u in c.get("users", [])}
b = users.get("bob", {"hits": 0, "misses": 0})
print()
print(f"ratio warm/distcc {med['dcc warm (bob)'] / med['distcc']:.2f}, cold/distcc {med['dcc cold (alice)'] / med['distcc']:.2f}, "
      f"warm/local {med['dcc warm (bob)'] / med['local']:.2f}; bob's hit rate {b['hits']}/{b['hits'] + b['misses']}; "
      f"bob's objects identical to the local build's: {sys.argv[3]}")
PY
