# bench/lib.sh — helpers shared by the scripts in bench/.
# Sourced, not run. Needs BIN and OUT set; sources demo/farm.sh for the dcc farm.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
. "$ROOT/demo/farm.sh"

DISTCCD_PID=

# need_bins NAME...: binaries that `make build` puts in $BIN.
need_bins() {
	local b
	for b in "$@"; do
		[ -x "$BIN/$b" ] || { echo "bench: $BIN/$b missing; run 'make build' first" >&2; exit 1; }
	done
}

# need_tools NAME...: programs on PATH (scripts/deps.sh installs distcc).
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "bench: needs $t (scripts/deps.sh installs it)" >&2; exit 1; }
	done
}

# start_dcc_farm SLOTS [BROKER ARGS...]: a broker and one volunteer "bench"
# with SLOTS slots. Without broker arguments the broker keeps no result
# cache: these benchmarks compile the same file again and again and
# measure the farm's path, not the cache's (bench/cache.sh does that).
# The volunteer shares this machine with the client (and with whatever else
# runs here), so the machine's load average would count as "foreign" load
# and make the broker stop using it; the farm file declares 64 CPUs so that
# the load gate never triggers and every job really goes through the farm.
start_dcc_farm() {
	local slots=$1
	shift
	[ $# -gt 0 ] || set -- --cache-size 0
	export DCC_USER=bench # the user farm_init enrols
	# The volunteer is this machine: with equal power, dcc would rightly
	# keep the job on its own free slot (scheduler.DeclineGrant). These
	# benchmarks measure the farm's path, so this machine counts as slow.
	export DCC_LOCAL_POWER=0.000001
	farm_init "$OUT/farm"
	farm_host bench 64 1 "slots=$slots"
	farm_start "$@"
	farm_volunteer bench "$slots"
	farm_wait_healthy 1
}

dcc_jobs_done() {
	farm_status_json | python3 -c 'import json,sys; print(sum(h.get("jobs_done",0) for h in json.load(sys.stdin)["hosts"] or []))'
}

# start_distccd SLOTS: Debian's distccd on a free loopback port, with the
# same number of job slots and the same niceness (10) as dcc's volunteer.
# distccd refuses to run as root, so it drops to "nobody" (--user), which
# must be able to write its log. distcc 3.4 only runs compilers that have a
# masquerade link in /usr/lib/distcc (the distcc package creates them for the
# installed gcc; `update-distcc-symlinks` refreshes them).
start_distccd() {
	local slots=$1
	DISTCCD_PORT=$(free_port)
	DISTCCD_LOG=$OUT/distccd.log
	: >"$DISTCCD_LOG"
	local user=()
	if [ "$(id -u)" = 0 ]; then
		chown nobody "$DISTCCD_LOG"
		user=(--user nobody)
	fi
	if [ ! -e /usr/lib/distcc/x86_64-linux-gnu-gcc ] && [ ! -e /usr/lib/distcc/gcc ]; then
		echo "bench: /usr/lib/distcc has no gcc link; run update-distcc-symlinks as root" >&2
		return 1
	fi
	distccd --daemon --no-detach --listen 127.0.0.1 --port "$DISTCCD_PORT" --allow 127.0.0.1 \
		--jobs "$slots" --nice 10 "${user[@]}" --log-file "$DISTCCD_LOG" --log-level info &
	DISTCCD_PID=$!
	local i
	for i in $(seq 50); do
		grep -q "listening on" "$DISTCCD_LOG" 2>/dev/null && break
		sleep 0.1
	done
	mkdir -p "$OUT/distcc-dir"
	# 127.0.0.1 (not "localhost", which distcc treats as "run it here").
	export DISTCC_HOSTS="127.0.0.1:$DISTCCD_PORT/$slots" DISTCC_DIR=$OUT/distcc-dir
	# Never fall back to local compiles silently: we want to measure the remote path.
	export DISTCC_FALLBACK=0
}

distcc_jobs_done() { grep -c "COMPILE_OK" "$DISTCCD_LOG" || true; }

stop_all() {
	if [ -n "$DISTCCD_PID" ]; then
		kill "$DISTCCD_PID" 2>/dev/null || true
		wait "$DISTCCD_PID" 2>/dev/null || true
		DISTCCD_PID=
	fi
	farm_stop
}

machine_info() {
	echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
	echo "os:       $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
	echo "gcc:      $(gcc --version | head -1)"
	echo "distcc:   $(distcc --version | head -1)"
	echo "dcc:      $("$BIN/dcc" version)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start)"
}
