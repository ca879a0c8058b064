#!/usr/bin/env bash
# demo/run.sh — `make demo`: a two-volunteer dcc farm on loopback builds a
# generated 50-file C project, then checks the objects against plain gcc.
#
# Everything lives in demo/build/ (gitignored); every process started here
# is stopped on exit, including on failure and ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/demo/build
NMODS=${DEMO_MODULES:-48}

for b in broker volunteer dcc; do
	[ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing; run 'make build' first" >&2; exit 1; }
done
for t in gcc make python3 cmp ar; do
	command -v "$t" >/dev/null || { echo "demo: needs $t" >&2; exit 1; }
done

. "$ROOT/demo/farm.sh"

rm -rf "$OUT"
mkdir -p "$OUT"
trap 'farm_stop' EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

say() { printf '%s\n' "$*"; }

# --- farm -----------------------------------------------------------------
export DCC_USER=${DCC_USER:-demo} # the name the demo enrols (farm_init)
farm_init "$OUT/farm"
# Both volunteers run on this one machine, so each sees the other's jobs,
# the local preprocessing (and anything else running here) in the machine's
# load average and would count it as "foreign" load, which makes the broker
# stop using a host (tier 0 above 2.0 foreign load per declared CPU). The
# farm file therefore declares 16 CPUs per host and limits slots to 2.
farm_host fast 16 3 slots=2
farm_host slow 16 1 slots=2
farm_start
farm_volunteer fast 2
farm_volunteer slow 2
farm_wait_healthy 2
say "farm: broker 127.0.0.1:$FARM_PORT (status http://127.0.0.1:$FARM_HTTP/v1/status)"
say "      volunteers fast (power 3, 2 slots) and slow (power 1, 2 slots)"

# --- project ----------------------------------------------------------------
python3 "$ROOT/demo/genproject.py" "$OUT/project" "$NMODS"
cp -r "$OUT/project" "$OUT/plain"
nsrc=$(ls "$OUT/project/src"/*.c | wc -l)
say "project: $nsrc C files in demo/build/project"

# --- build through dcc --------------------------------------------------------
log=$OUT/dcc-build.log
say "building with: make -j8 CC=\"dcc gcc\"   (dcc's messages: demo/build/dcc-build.log)"
t0=$(date +%s.%N)
if ! DCC_VERBOSE=1 make -C "$OUT/project" -j8 CC="$BIN/dcc gcc" >"$OUT/make.log" 2>"$log"; then
	echo "demo: build failed; last lines of $log:" >&2
	tail -20 "$log" >&2
	exit 1
fi
t1=$(date +%s.%N)
say "$(printf 'built in %.1fs' "$(echo "$t1 - $t0" | bc -l 2>/dev/null || python3 -c "print($t1-$t0)")")"

"$BIN/dcc" status --json >"$OUT/status.json"
report=$(python3 - "$log" "$OUT/status.json" <<'PY'
import collections, json, re, sys
log = open(sys.argv[1], errors="replace").read().splitlines()
doc = json.load(open(sys.argv[2]))
remote = collections.Counter()    # compiled on HOST
refused = collections.Counter()   # lease granted on HOST, but HOST refused the job
fallback = collections.Counter()  # why a remote candidate ran locally
natural = collections.Counter()   # jobs that are local by nature
for l in log:
    if m := re.search(r"\] compiled (\S+) on (\S+) \(tier", l):
        remote[m.group(2)] += 1
    elif m := re.search(r"\] compiling locally: (.*)", l):
        # group reasons that differ only in their numbers (waits, times)
        fallback[re.sub(r"\d+(\.\d+)?(ms|µs|s)?", "#", m.group(1))] += 1
        if r := re.match(r"rejected: (\S+) refused", m.group(1)):
            refused[r.group(1)] += 1
    elif m := re.search(r"\] local: (.*)", l):
        natural[m.group(1)] += 1
done = {h["name"]: h.get("jobs_done", 0) for h in doc.get("hosts") or []}
ok = True
print("compiled remotely, per host (dcc's log; the broker's jobs_done in brackets):")
for h in sorted(set(remote) | set(done)):
    note = ""
    if remote[h] != done.get(h, 0):
        if remote[h] + refused[h] == done.get(h, 0):
            note = f"  (the broker also counts the {refused[h]} lease(s) {h} refused)"
        else:
            note = "  <-- MISMATCH"
            ok = False
    print(f"  {h:<6} {remote[h]:3d}  [{done.get(h, 0)}]{note}")
print(f"  total  {sum(remote.values()):3d}")
if fallback:
    print("fell back to local gcc:")
    for why, n in fallback.most_common():
        print(f"  {n:3d}  {why}")
else:
    print("fell back to local gcc: none")
if natural:
    print("local by nature (never offered to the farm):")
    for why, n in natural.most_common():
        print(f"  {n:3d}  {why}")
print(f"REMOTE={sum(remote.values())} CONSISTENT={int(ok)}")
PY
)
say "$report" | grep -v '^REMOTE='
remote=$(say "$report" | sed -n 's/^REMOTE=\([0-9]*\).*/\1/p')
consistent=$(say "$report" | sed -n 's/.*CONSISTENT=\([01]\)/\1/p')

say "running the program:"
(cd "$OUT/project" && ./demo) | sed 's/^/  /'

# --- plain gcc, for comparison ------------------------------------------------
make -C "$OUT/plain" -j8 CC=gcc >/dev/null 2>"$OUT/plain-build.log" || {
	echo "demo: plain gcc build failed" >&2; tail "$OUT/plain-build.log" >&2; exit 1; }
same=0 diff=0 difflist=()
for o in "$OUT/plain/obj"/*.o; do
	b=$(basename "$o")
	if cmp -s "$o" "$OUT/project/obj/$b"; then same=$((same + 1)); else diff=$((diff + 1)); difflist+=("$b"); fi
done
want=$(cd "$OUT/plain" && ./demo)
got=$(cd "$OUT/project" && ./demo)
say "plain gcc rebuild in demo/build/plain: $same objects byte-identical, $diff different"
[ "$want" = "$got" ] || say "  program output differs: plain gcc says '$want'"

# --- the result cache ---------------------------------------------------------
# A second engineer (or this one after `make clean`) gets what the farm
# compiled from the broker's cache: no compile, no slot.
make -C "$OUT/project" clean >/dev/null
rlog=$OUT/dcc-rebuild.log
t0=$(date +%s.%N)
DCC_VERBOSE=1 make -C "$OUT/project" -j8 CC="$BIN/dcc gcc" >/dev/null 2>"$rlog" || {
	echo "demo: rebuild failed; see $rlog" >&2; exit 1; }
t1=$(date +%s.%N)
hits=$(grep -c '\] cache hit (produced by' "$rlog" || true)
rsame=0
for o in "$OUT/plain/obj"/*.o; do
	cmp -s "$o" "$OUT/project/obj/$(basename "$o")" && rsame=$((rsame + 1))
done
say "$(printf 'rebuilt from clean in %.1fs: %d files from the farm'"'"'s result cache, %d objects byte-identical to plain gcc' \
	"$(python3 -c "print($t1-$t0)")" "$hits" "$rsame")"
[ "$rsame" -eq "$same" ] || diff=$((diff + 1))

say ""
say "dcc status:"
"$BIN/dcc" status | sed 's/^/  /'
say ""

fail=""
[ "$diff" -eq 0 ] || fail="objects differ from plain gcc: ${difflist[*]}"
[ "$want" = "$got" ] || fail="${fail:+$fail; }program output differs"
[ "${remote:-0}" -gt 0 ] || fail="${fail:+$fail; }no file was compiled remotely"
[ "${consistent:-0}" = 1 ] || fail="${fail:+$fail; }log and broker disagree on jobs per host"
if [ -n "$fail" ]; then
	say "demo FAILED: $fail"
	exit 1
fi
say "demo OK: $remote of $nsrc files compiled on the farm, all objects identical to plain gcc."
