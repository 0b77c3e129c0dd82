#!/usr/bin/env bash
# Two gateway builds side by side in one run: the closed-loop maximum (durable acks/s,
# REGISTERS persistent TCP registers) of build A and build B, with the canned-ack
# baseline beside them, in ABBA order per repetition so that drift favours neither.
#
#   scripts/bench/ab.sh A_GATEWAY_BINARY B_GATEWAY_BINARY
#   REPS=3 DURATION=20s REGISTERS=1000 scripts/bench/ab.sh /tmp/old/gateway target/release/gateway
#   RATE=17000 scripts/bench/ab.sh A B      # open loop at a fixed rate: compare latencies
#   B_ENV="GATEWAY_STORAGE__MAX_BATCH=64" scripts/bench/ab.sh G G   # one build, two settings
#
# A_ENV / B_ENV: space-separated VAR=value settings (configuration overrides) for the
# runs of A / of B.
# Prints one line per run and a summary (median achieved rate of A and B, B/A, and
# each one's share of the baseline, and CPU per document by thread: ab_cpu.py). Results and logs go to OUT (default
# bench-results/ab-<time>). Uses target/release/loadgen (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -eq 2 ]] || { echo "usage: $0 A_GATEWAY B_GATEWAY" >&2; exit 2; }
A_BIN=$(realpath "$1")
B_BIN=$(realpath "$2")
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
REPS=${REPS:-3}
REGISTERS=${REGISTERS:-1000}
GW_TCP=${GW_TCP:-25777}
GW_TLS=${GW_TLS:-25778}
GW_ADMIN=${GW_ADMIN:-25780}
GW_METRICS=${GW_METRICS:-25781}
B_TCP=${B_TCP:-26777}
B_TLS=${B_TLS:-26778}
OUT=${OUT:-bench-results/ab-$(date -u +%Y%m%dT%H%M%SZ)}
RAW=$OUT/raw
LOGS=$OUT/logs
DATA=$OUT/data
LG=target/release/loadgen
ADMIN_URL=http://127.0.0.1:$GW_ADMIN
KEEP_DATA=0

source scripts/bench/lib.sh
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
for tool in jq curl ss python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[[ -x $A_BIN && -x $B_BIN ]] || die "both gateway binaries must exist"
[[ -x $LG ]] || cargo build --release -p loadgen >/dev/null 2>&1 || die "cannot build loadgen"
mkdir -p "$RAW" "$LOGS" "$DATA" "$OUT/meta"
echo "A=$A_BIN A_ENV=${A_ENV:-} B=$B_BIN B_ENV=${B_ENV:-} RATE=${RATE:-} REPS=$REPS DURATION=$DURATION REGISTERS=$REGISTERS" >"$OUT/meta/invocation.txt"

# the development certificate of the baseline
GW=$B_BIN
gw_start certgen
cp -r "$DATA/certgen/tls" "$OUT/tls"
gw_stop
rm -rf "$DATA/certgen"
base_start
common=(--duration "$DURATION" --warmup "$WARMUP")
# closed loop (the maximum), or open loop at RATE documents/s (latency at a fixed load)
if [[ -n ${RATE:-} ]]; then
    SCENARIO=latency
    load=(--rate "$RATE")
else
    SCENARIO=max
    load=(--closed)
fi

run_gateway() { # LABEL BIN REP [VAR=value ...]
    GW=$2
    local name=ab-$1-r$3
    gw_start "$name" "${@:4}"
    ONBOARD_CMD="$LG onboard --count $REGISTERS"
    "$LG" onboard --count "$REGISTERS" --seed 1 --admin "$ADMIN_URL" --gateway-data-dir "$DATA/$name" \
        >>"$LOGS/$name.onboard.log" 2>&1 || die "onboarding failed: $LOGS/$name.onboard.log"
    lg_run "$name" "$GW_PID" "$SCENARIO" gateway "$3" -- --target "127.0.0.1:$GW_TCP" \
        --count "$REGISTERS" "${load[@]}" --ramp-rate 2000 "${common[@]}"
    gw_stop
    rm -rf "${DATA:?}/$name"
}
run_baseline() { # REP
    lg_run "ab-baseline-r$1" "$BASE_PID" "$SCENARIO" baseline "$1" -- --target "127.0.0.1:$B_TCP" \
        --count "$REGISTERS" "${load[@]}" --ramp-rate 2000 "${common[@]}"
}

for rep in $(seq 1 "$REPS"); do
    if ((rep % 2)); then
        run_gateway a "$A_BIN" "$rep" ${A_ENV:-}
        run_gateway b "$B_BIN" "$rep" ${B_ENV:-}
    else
        run_gateway b "$B_BIN" "$rep" ${B_ENV:-}
        run_gateway a "$A_BIN" "$rep" ${A_ENV:-}
    fi
    run_baseline "$rep"
done

median() { jq -s 'map(.rates.achieved) | sort | .[(length - 1) / 2 | floor]' "$@"; }
a=$(median "$RAW"/ab-a-r*[0-9].json)
b=$(median "$RAW"/ab-b-r*[0-9].json)
base=$(median "$RAW"/ab-baseline-r*[0-9].json)
{
    echo "runs (achieved acks/s):"
    for f in "$RAW"/ab-*-r*[0-9].json; do
        printf '  %-18s %8.0f\n' "$(basename "$f" .json)" "$(jq .rates.achieved "$f")"
    done
    awk -v a="$a" -v b="$b" -v base="$base" 'BEGIN {
        printf "median: A %.0f/s, B %.0f/s, baseline %.0f/s; B/A = %.3f; A %.1f %% and B %.1f %% of the baseline\n",
            a, b, base, b / a, 100 * a / base, 100 * b / base }'
} | tee "$OUT/summary.txt"
python3 scripts/bench/ab_cpu.py "$OUT" | tee -a "$OUT/summary.txt"
if [[ -n ${RATE:-} ]]; then
    echo "ack latency, open loop at $RATE/s (µs):" | tee -a "$OUT/summary.txt"
    for f in "$RAW"/ab-*-r*[0-9].json; do
        jq -r --arg n "$(basename "$f" .json)" \
            '(.latency_us.corrected // .latency_us.uncorrected) as $l | "  \($n)  p50 \($l.p50)  p99 \($l.p99)  p99.9 \($l.p999)  achieved \(.rates.achieved | floor)/s"' "$f"
    done | tee -a "$OUT/summary.txt"
fi
