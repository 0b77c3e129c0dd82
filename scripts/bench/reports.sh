#!/usr/bin/env bash
# Reports at scale, through the real gateway:
#
#   1. storage's report-bench fills an embedded store with REGISTERS registers (stored as
#      registers too) × DAYS local days × PER_DAY real receipts (default 10,000 × 31 × 32
#      = 9.92 million documents), and prints the aggregator's CPU per document and the
#      store-level 31-day report time (cold and warm);
#   2. a gateway opens that directory, and the admin API's report over every register,
#      those 31 days, grouped by day, is timed as an operator runs it: CSV with curl, and
#      `adminctl reports` (table), REPS times each.
#
#   scripts/bench/reports.sh                     # ~6 min on 2 cores; needs ~6 GB free
#   REGISTERS=2000 DAYS=31 PER_DAY=8 scripts/bench/reports.sh    # a quick one
#   KEEP=1 scripts/bench/reports.sh              # keep OUT/data for another run (no refill)
#
# Prints the figures; everything goes to OUT (default bench-results/reports-<time>).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
REGISTERS=${REGISTERS:-10000}
DAYS=${DAYS:-31}
PER_DAY=${PER_DAY:-32}
REPS=${REPS:-3}
OUT=${OUT:-bench-results/reports-$(date -u +%Y%m%dT%H%M%SZ)}
GW_TCP=${GW_TCP:-27777}
GW_TLS=${GW_TLS:-27778}
GW_ADMIN=${GW_ADMIN:-27780}
GW_METRICS=${GW_METRICS:-27781}
DATA=$OUT/data
LOGS=$OUT/logs
STARTED_PIDS=()
mkdir -p "$DATA" "$LOGS"
trap 'for p in "${STARTED_PIDS[@]}"; do stop_pid "$p" TERM 30; done' EXIT

[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --release -q -p storage --bin report-bench -p gateway -p adminctl
GW=target/release/gateway
ADMINCTL=target/release/adminctl

log "fill: $REGISTERS registers × $DAYS days × $PER_DAY receipts"
target/release/report-bench --dir "$DATA/gw/store" --registers "$REGISTERS" --days "$DAYS" \
    --per-day "$PER_DAY" --keep | tee "$OUT/report-bench.txt"

gw_start gw
TOKEN=$(cat "$DATA/gw/admin-token")
# the bench's first local day is 2026-11-01
FROM=2026-11-01
TO=$(date -u -d "$FROM + $((DAYS - 1)) days" +%F)
URL="http://127.0.0.1:$GW_ADMIN/v1/reports?from=$FROM&to=$TO&by=day&format=csv"
for i in $(seq 1 "$REPS"); do
    t0=$(now)
    curl -sf -H "Authorization: Bearer $TOKEN" "$URL" -o "$OUT/report-$i.csv"
    t1=$(now)
    ADMINCTL_SERVER="http://127.0.0.1:$GW_ADMIN" ADMINCTL_TOKEN="$TOKEN" \
        "$ADMINCTL" reports --from "$FROM" --to "$TO" --by day >"$OUT/report-$i.txt"
    t2=$(now)
    printf 'gateway report, %s registers x %s days by day: curl CSV %.0f ms, adminctl table %.0f ms (%s rows)\n' \
        "$REGISTERS" "$DAYS" "$(echo "($t1 - $t0) * 1000" | bc)" "$(echo "($t2 - $t1) * 1000" | bc)" \
        "$(($(wc -l <"$OUT/report-$i.csv") - 2))" | tee -a "$OUT/gateway.txt"
done
tail -n 4 "$OUT/report-1.txt"
gw_stop
[[ ${KEEP:-0} == 1 ]] || rm -rf "$DATA"
log "results in $OUT"
