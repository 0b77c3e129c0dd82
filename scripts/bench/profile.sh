#!/usr/bin/env bash
# Profiles the gateway on its embedded store at saturation: 1,000 persistent TCP
# registers in a closed loop (scenario 1 of scripts/bench.sh), `perf record` of the
# gateway process during the measured window, then a summary by thread and by stage.
#
#   scripts/bench/profile.sh [GATEWAY_BINARY]        (default target/release/gateway)
#   DURATION=20s PERF_SECONDS=10 REGISTERS=1000 OUT=/tmp/prof scripts/bench/profile.sh
#
# Writes OUT/perf.data, OUT/threads.txt (samples per thread), OUT/symbols.txt (self
# time per symbol, all threads) and OUT/stages.txt (inclusive samples per stage, from
# scripts/bench/stages.py), and prints the stage table. Needs perf(1) and a release build
# with symbols (the release profile keeps them: see Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/../.."
GW=$(realpath "${1:-target/release/gateway}")
LG=target/release/loadgen
DURATION=${DURATION:-20s}
PERF_SECONDS=${PERF_SECONDS:-10}
REGISTERS=${REGISTERS:-1000}
OUT=${OUT:-bench-results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
PORT_BASE=${PORT_BASE:-27700}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
DATA=$OUT/data
rm -rf "$DATA"
command -v perf >/dev/null || { echo "perf is needed" >&2; exit 1; }
[[ -x $LG ]] || cargo build --release -p loadgen
TCP=127.0.0.1:$PORT_BASE ADMIN=127.0.0.1:$((PORT_BASE + 2)) METRICS=127.0.0.1:$((PORT_BASE + 3))
GATEWAY_LOG__LEVEL=info,fjall=warn,lsm_tree=warn "$GW" --data-dir "$DATA" --tcp-listen "$TCP" \
    --tls-listen 127.0.0.1:$((PORT_BASE + 1)) --quic-listen 127.0.0.1:$((PORT_BASE + 1)) \
    --admin-listen "$ADMIN" --metrics-listen "$METRICS" >"$OUT/gateway.log" 2>&1 </dev/null &
GW_PID=$!
PERF_PID=
cleanup() {
    [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null || true
    kill -TERM "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 600); do curl -sf "http://$METRICS/readyz" -o /dev/null && break; sleep 0.2; done
"$LG" onboard --count "$REGISTERS" --seed 1 --admin "http://$ADMIN" --gateway-data-dir "$DATA" >"$OUT/onboard.log" 2>&1
"$LG" run --target "$TCP" --count "$REGISTERS" --closed --ramp-rate 2000 --duration "$DURATION" --warmup 3s \
    --json "$OUT/loadgen.json" --no-progress --quiet >"$OUT/loadgen.log" 2>&1 &
LG_PID=$!
sleep 6
t0=$(awk '{print $14+$15}' "/proc/$GW_PID/stat")
perf record -F ${PERF_FREQ:-499} --call-graph dwarf,16384 -p "$GW_PID" -o "$OUT/perf.data" -- sleep "$PERF_SECONDS" >"$OUT/perf.log" 2>&1 &
PERF_PID=$!
wait "$PERF_PID" || true
PERF_PID=
t1=$(awk '{print $14+$15}' "/proc/$GW_PID/stat")
wait "$LG_PID"
rate=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['rates']['achieved']))" "$OUT/loadgen.json")
cpu_s=$(python3 -c "print(($t1 - $t0) / $(getconf CLK_TCK))")
echo "acknowledged ${rate}/s (whole run); gateway CPU ${cpu_s} s in the ${PERF_SECONDS} s profiled (≈ $(python3 -c "print(round($cpu_s / $PERF_SECONDS / $rate * 1e6, 1))") µs per document)" | tee "$OUT/summary.txt"
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20 >"$OUT/threads.txt" || true
perf report -i "$OUT/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$OUT/symbols.txt" || true
perf script -i "$OUT/perf.data" 2>/dev/null | python3 scripts/bench/stages.py >"$OUT/stages.txt"
cat "$OUT/threads.txt" "$OUT/stages.txt"
