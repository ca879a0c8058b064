# demo/farm.sh — shell helpers to run a throwaway dcc farm on loopback.
# Sourced by demo/run.sh and the bench/ scripts; not meant to be run directly.
#
#   farm_init DIR            # state dir (the farm's CA), runtime dir under DIR; enrols the user; sets FARM_* vars
#   farm_host NAME NCPUS POWER   (before farm_start) adds a line to the farm file
#   farm_start               # starts the broker
#   farm_volunteer NAME SLOTS    # starts a volunteer
#   farm_wait_healthy N      # waits until N hosts report state "healthy"
#   farm_stop                # stops everything started here (also the dcc agent)
#
# Every process started here is recorded in FARM_PIDS and killed by pid.

: "${BIN:?BIN must point at the directory holding broker, volunteer and dcc}"

FARM_PIDS=()

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

farm_init() {
	FARM_DIR=$1
	mkdir -p "$FARM_DIR/state" "$FARM_DIR/logs" "$FARM_DIR/id"
	FARM_FILE=$FARM_DIR/farm.txt
	echo "# NAME NCPUS POWER" >"$FARM_FILE"
	FARM_PORT=$(free_port)
	FARM_HTTP=$(free_port)
	FARM_HTTPS=$(free_port)
	# The agent's unix socket path must be short: keep it under /tmp.
	FARM_RT=$(mktemp -d /tmp/dccrt.XXXXXX)
	# The broker is the farm's CA: `broker enroll` makes the CA in the state
	# directory if the broker has not yet, and writes one credential file.
	FARM_USER=${DCC_USER:-${USER:-demo}}
	"$BIN/broker" enroll user "$FARM_USER" --state "$FARM_DIR/state" --out "$FARM_DIR/id/user-$FARM_USER.pem" >/dev/null
	unset DCC_USER
	export DCC_BROKER=127.0.0.1:$FARM_PORT DCC_IDENTITY=$FARM_DIR/id/user-$FARM_USER.pem DCC_RUNTIME_DIR=$FARM_RT
	export DCC_CONFIG=/nonexistent DCC_AGENT_IDLE=${DCC_AGENT_IDLE:-5m}
}

farm_host() { echo "$1 $2 $3" >>"$FARM_FILE"; }

farm_start() {
	"$BIN/broker" --listen "127.0.0.1:$FARM_PORT" --http "127.0.0.1:$FARM_HTTP" --https "127.0.0.1:$FARM_HTTPS" \
		--farm "$FARM_FILE" --state "$FARM_DIR/state" \
		--log-format console "$@" >"$FARM_DIR/logs/broker.log" 2>&1 &
	FARM_PIDS+=($!)
	local i
	for i in $(seq 100); do
		farm_status_json >/dev/null 2>&1 && return 0
		kill -0 "${FARM_PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "broker did not start; see $FARM_DIR/logs/broker.log" >&2
	tail -5 "$FARM_DIR/logs/broker.log" >&2
	return 1
}

farm_volunteer() {
	local name=$1 slots=$2 port
	port=$(free_port)
	# Each host its own credential, named after it.
	"$BIN/broker" enroll host "$name" --state "$FARM_DIR/state" --out "$FARM_DIR/id/host-$name.pem" --force >/dev/null
	"$BIN/volunteer" --broker "127.0.0.1:$FARM_PORT" --listen "127.0.0.1:$port" \
		--identity "$FARM_DIR/id/host-$name.pem" --slots "$slots" --control "$FARM_DIR/$name.ctl" \
		--state "$FARM_DIR/volunteer-$name" \
		--log-format console >"$FARM_DIR/logs/volunteer-$name.log" 2>&1 &
	FARM_PIDS+=($!)
}

farm_status_json() {
	python3 - "$FARM_HTTP" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/v1/status" % sys.argv[1], timeout=2).read().decode())
PY
}

# farm_wait_healthy N [TIMEOUT_S]
farm_wait_healthy() {
	local want=$1 timeout=${2:-20} i n
	for i in $(seq $((timeout * 10))); do
		n=$(farm_status_json 2>/dev/null | python3 -c '
import json,sys
try: d=json.load(sys.stdin)
except Exception: print(0); sys.exit()
print(sum(1 for h in d.get("hosts") or [] if h.get("state")=="healthy"))' 2>/dev/null)
		[ "${n:-0}" -ge "$want" ] && return 0
		sleep 0.1
	done
	echo "only ${n:-0} of $want volunteers became healthy; logs in $FARM_DIR/logs" >&2
	for f in "$FARM_DIR"/logs/volunteer-*.log; do echo "== $f" >&2; tail -n 3 "$f" >&2; done
	return 1
}

farm_stop() {
	local p
	# The agent was started by dcc itself; find it by its own socket path.
	if [ -n "${FARM_RT:-}" ]; then
		pkill -f "agent --socket $FARM_RT" 2>/dev/null || true
	fi
	for p in "${FARM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${FARM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	FARM_PIDS=()
	if [ -n "${FARM_RT:-}" ]; then rm -rf "$FARM_RT"; fi
}
