#!/usr/bin/env bash
# The design §10 figure set, measured against loadgen's own baseline responder (this
# machine's practical limit per transport) and, when GATEWAY_* is set, against the gateway
# in the same run, so every gateway figure has its baseline beside it.
#
#   loadgen/scenarios/bench.sh [OUT_DIR]
#
# Environment:
#   LOADGEN        path of the loadgen binary (default: target/release/loadgen)
#   GATEWAY_TCP    gateway plain-TCP listener, e.g. 127.0.0.1:7777 (unset: baseline only)
#   GATEWAY_TLS    gateway TLS listener, e.g. 127.0.0.1:7778
#   GATEWAY_QUIC   gateway QUIC listener, e.g. 127.0.0.1:7778
#   GATEWAY_DIR    gateway data directory (dev certificate, admin token; registers are
#                  onboarded through the admin API before the first gateway run)
#   DURATION       load phase of each run (default 20s), WARMUP (default 3s)
#   REGISTERS      registers of the persistent runs (default 1000)
#
# Every run writes OUT_DIR/<scenario>-<system>.json (schema loadgen.run/1); a table of the
# headline figures is printed at the end. Bounded: about 12 runs of DURATION each.
set -euo pipefail

OUT=${1:-bench-$(date +%Y%m%d-%H%M%S)}
LOADGEN=${LOADGEN:-target/release/loadgen}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
REGISTERS=${REGISTERS:-1000}
BASE_TCP=127.0.0.1:27777
BASE_TLS=127.0.0.1:27778
mkdir -p "$OUT"

"$LOADGEN" baseline --listen "$BASE_TCP" --tls-listen "$BASE_TLS" --quic-listen "$BASE_TLS" \
    --cert-out "$OUT/baseline-cert.pem" 2>"$OUT/baseline.log" &
BASELINE_PID=$!
trap 'kill "$BASELINE_PID" 2>/dev/null || true' EXIT
sleep 1

systems=(baseline)
if [[ -n "${GATEWAY_TCP:-}" ]]; then systems+=(gateway); fi

common=(--no-progress --quiet --warmup "$WARMUP" --duration "$DURATION")

target() { # system transport
    case "$1:$2" in
        baseline:tcp) echo "--target $BASE_TCP" ;;
        baseline:tls | baseline:quic) echo "--target $BASE_TLS --ca $OUT/baseline-cert.pem" ;;
        gateway:tcp) echo "--target $GATEWAY_TCP" ;;
        gateway:tls) echo "--target ${GATEWAY_TLS:-127.0.0.1:7778} --gateway-data-dir $GATEWAY_DIR" ;;
        gateway:quic) echo "--target ${GATEWAY_QUIC:-127.0.0.1:7778} --gateway-data-dir $GATEWAY_DIR" ;;
    esac
}

run() { # name system transport args...
    local name=$1 sys=$2 transport=$3
    shift 3
    # shellcheck disable=SC2046
    "$LOADGEN" run --transport "$transport" $(target "$sys" "$transport") "${common[@]}" \
        --json "$OUT/$name-$sys.json" "$@" || echo "  ($name-$sys exited $?)"
}

for sys in "${systems[@]}"; do
    if [[ $sys == gateway && -n "${GATEWAY_DIR:-}" ]]; then
        "$LOADGEN" run --onboard --gateway-data-dir "$GATEWAY_DIR" --count "$REGISTERS" \
            --target "$GATEWAY_TCP" --rate 10 --duration 1s --quiet --no-progress || true
    fi
    # maximum throughput, persistent sessions (closed loop)
    run max-tcp "$sys" tcp --count "$REGISTERS" --closed --ramp-rate 2000
    rate=$(jq -r '.rates.achieved' "$OUT/max-tcp-$sys.json")
    half=$(jq -rn --arg r "$rate" '($r|tonumber)/2|floor')
    # latency at half that rate (open loop, corrected)
    run half-tcp "$sys" tcp --count "$REGISTERS" --rate "$half" --ramp-rate 2000
    # connect-send-ack-close per document
    run perdoc-tcp "$sys" tcp --count 200 --closed --behaviour per-document
    # full TLS handshakes per second (one per document, no resumption)
    run handshakes-tls "$sys" tls --count 100 --closed --behaviour per-document
    # persistent TLS and QUIC
    run max-tls "$sys" tls --count "$REGISTERS" --closed --ramp-rate 1000
    run max-quic "$sys" quic --count "$REGISTERS" --closed --ramp-rate 1000
done

printf '\n%-16s %-9s %10s %10s %10s %10s %9s %8s\n' scenario system "rate/s" "p50" "p99" "p99.9" mismatch timeouts
for f in "$OUT"/*.json; do
    [[ $(jq -r '.schema // ""' "$f") == loadgen.run/1 ]] || continue
    b=$(basename "$f" .json)
    jq -r --arg n "${b%-*}" --arg s "${b##*-}" '
        (.latency_us.corrected // .latency_us.uncorrected) as $l
        | [$n, $s, (.rates.achieved|floor), $l.p50, $l.p99, $l.p999, .mismatches_total, .counters.timeouts]
        | @tsv' "$f" |
        awk -F'\t' '{printf "%-16s %-9s %10s %8sµs %8sµs %8sµs %9s %8s\n", $1,$2,$3,$4,$5,$6,$7,$8}'
done
