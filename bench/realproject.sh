#!/usr/bin/env bash
# bench/realproject.sh [ROUNDS] — wall time of building a real open-source C
# project (GNU awk, Debian's gawk source package) with make -j8 three ways:
#
#   local   make -j8
#   dcc     make -j8 CC="dcc gcc"      one volunteer on this machine, 2 slots
#   distcc  make -j8 CC="distcc gcc"   Debian's distccd on this machine, 2 jobs
#
# ROUNDS (default 3) rounds, each building local, dcc, distcc in turn from
# clean (make clean between builds; configure runs once, untimed). Prints
# a markdown table of medians; raw numbers go to bench/out/realproject/.
#
# Needs root for apt: adds a deb-src entry if there is none, then
# `apt-get source gawk`. gawk is pure C with a plain configure/make build
# and no build dependencies beyond gcc and make (it is configured without
# NLS, MPFR and readline; its docs are skipped because Debian strips the
# texinfo sources).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/bench/out/realproject
ROUNDS=${1:-${BENCH_ROUNDS:-3}}
PKG=gawk
SLOTS=2
JOBS=8

. "$ROOT/bench/lib.sh"
need_bins broker volunteer dcc
need_tools gcc make distcc distccd python3 apt-get

# --- source -----------------------------------------------------------------
SRC=$ROOT/bench/out/src
if ! ls -d "$SRC/$PKG"-*/ >/dev/null 2>&1; then
	if ! apt-cache showsrc "$PKG" 2>/dev/null | grep -q '^Package:'; then
		if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			echo "adding a deb-src entry: /etc/apt/sources.list.d/dcc-bench-src.sources"
			. /etc/os-release
			cat >/etc/apt/sources.list.d/dcc-bench-src.sources <<SRCS
# added by dcc's bench/realproject.sh: source packages for apt-get source
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
		fi
		apt-get update -qq
	fi
	command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev
	mkdir -p "$SRC"
	(cd "$SRC" && apt-get source -qq "$PKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
fi
TREE=$(ls -d "$SRC/$PKG"-*/ | head -1)
TREE=${TREE%/}
VERSION=$(cd "$SRC" && ls "$PKG"_*.dsc | head -1 | sed "s/^${PKG}_//; s/\.dsc$//")

rm -rf "$OUT"
mkdir -p "$OUT"
trap stop_all EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

machine_info | tee "$OUT/machine.txt"
echo "project:  $PKG $VERSION (apt-get source $PKG), the gawk program and its support library"

if [ ! -f "$TREE/config.status" ]; then
	echo "configuring (once, untimed) ..."
	(cd "$TREE" && ./configure -q CC=gcc --disable-nls --without-mpfr --without-readline >"$OUT/configure.log" 2>&1) || {
		tail "$OUT/configure.log" >&2; exit 1; }
fi

start_dcc_farm "$SLOTS"
start_distccd "$SLOTS"
echo "farm:     dcc broker + 1 volunteer ($SLOTS slots); distccd --jobs $SLOTS; both on 127.0.0.1 of this $(nproc)-CPU machine"
echo "builds:   make -j$JOBS, $ROUNDS rounds of local, dcc, distcc (clean before each)"
echo

# Build the program and its support library; SUBDIRS=support skips the
# extensions, docs and tests.
build() { # NAME CC
	make -C "$TREE" clean SUBDIRS=support >/dev/null 2>&1 || true
	local t0 t1
	t0=$(date +%s.%N)
	if ! make -C "$TREE" -j$JOBS SUBDIRS=support CC="$2" >"$OUT/build-$1.log" 2>&1; then
		echo "bench: $1 build failed; see $OUT/build-$1.log" >&2
		tail -5 "$OUT/build-$1.log" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	python3 -c "print('%.2f' % ($t1 - $t0))"
}

nobj() { find "$TREE" -name "*.o" | wc -l; }

: >"$OUT/times.csv"
echo "round,variant,wall_s,objects,remote" >>"$OUT/times.csv"
for r in $(seq "$ROUNDS"); do
	t=$(build local gcc)
	echo "$r,local,$t,$(nobj),0" >>"$OUT/times.csv"
	echo "round $r: local  ${t}s"

	d0=$(dcc_jobs_done)
	t=$(build dcc "$BIN/dcc gcc")
	n=$(( $(dcc_jobs_done) - d0 ))
	echo "$r,dcc,$t,$(nobj),$n" >>"$OUT/times.csv"
	echo "round $r: dcc    ${t}s  ($n of $(nobj) compiles remote)"

	d0=$(distcc_jobs_done)
	t=$(build distcc "distcc gcc")
	n=$(( $(distcc_jobs_done) - d0 ))
	echo "$r,distcc,$t,$(nobj),$n" >>"$OUT/times.csv"
	echo "round $r: distcc ${t}s  ($n of $(nobj) compiles remote)"
done
"$TREE/gawk" 'BEGIN { print "built gawk runs:", PROCINFO["version"] }'
echo

python3 - "$OUT/times.csv" "$PKG $VERSION" "$JOBS" <<'PY' | tee "$OUT/table.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = ["local", "dcc", "distcc"]
med = {n: statistics.median(float(r["wall_s"]) for r in rows if r["variant"] == n) for n in names}
print(f"| {sys.argv[2]}, make -j{sys.argv[3]} | median wall s | all runs s | compiles remote (per build) |")
print("|---|---:|---|---|")
for n in names:
    rs = [r for r in rows if r["variant"] == n]
    runs = ", ".join(r["wall_s"] for r in rs)
    rem = "—" if n == "local" else ", ".join(f'{r["remote"]}/{r["objects"]}' for r in rs)
    print(f"| {n} | {med[n]:.1f} | {runs} | {rem} |")
print()
print(f"ratio dcc/distcc of median wall: {med['dcc'] / med['distcc']:.2f}; "
      f"dcc/local {med['dcc'] / med['local']:.2f}, distcc/local {med['distcc'] / med['local']:.2f}")
PY
echo "raw numbers: ${OUT#$ROOT/}/times.csv"
