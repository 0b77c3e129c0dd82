#!/usr/bin/env bash
# The benchmark suite of issue 7: every scenario run against the gateway and, in the same
# run, against loadgen's baseline responder (canned acks, no parsing, no storage: this
# machine's practical limit per transport), then BENCHMARKS.md written from the results.
#
#   scripts/bench.sh                 # everything (~25-35 min on the 2-vCPU build VM)
#   SCENARIOS="max latency" REPS=1 DURATION=5s scripts/bench.sh   # a quick subset
#
# Scenarios (design §10 targets; docs/loadgen.md explains the measurement):
#   max      durable acks/s, 1,000 persistent TCP registers, closed loop          (× REPS)
#   latency  open loop at 50 % of the gateway's median `max` rate: p50/p99/p99.9  (× REPS)
#   perdoc   connect–send–ack–close per document: TCP, TLS full handshakes, TLS
#            resumed                                                               (× REPS)
#   idle     idle connections (TCP and TLS at the highest count one gateway process
#            allows here, QUIC at QUIC_CONNS) with the server's RSS per connection,
#            then the reconnect storm: the server restarts, every register reconnects
#            and delivers its next document
#
# Environment (defaults in brackets):
#   SCENARIOS [max latency perdoc idle]   IDLE_TRANSPORTS [tcp tls quic]
#   DURATION [20s] WARMUP [3s] REPS [3] REGISTERS [1000]
#   PERDOC_TCP_REGISTERS [200] PERDOC_TLS_REGISTERS [100]
#   IDLE_CONNS [gateway capacity - 44] IDLE_HOLDERS [2] TCP_RAMP [4000] TLS_RAMP [1500]
#   QUIC_CONNS [100000] QUIC_HOLDERS [2] QUIC_RAMP [1000] SETTLE [5] STORM_HOLD [300]
#   STORM_BACKOFF [100ms-1s] STORM_CONNECT_TIMEOUT [30s] STORM_DOC_TIMEOUT [10s]: TCP and TLS
#   QUIC_STORM_BACKOFF [1s-30s] QUIC_CONNECT_TIMEOUT [60s] QUIC_DOC_TIMEOUT [30s]
#   QUIC_KEEP_ALIVE [20s] QUIC_IDLE_TIMEOUT [60s]: the QUIC clients (see BENCHMARKS.md, 5)
#   LOAD_MAX [1.0] QUIET_WAIT [1800]: wait for the 1-minute load average first
#   SKIP_BUILD [0] FSYNC_BENCH [1] WRITE_REPORT [1] KEEP_DATA [0]
#   GW [target/release/gateway] LG [target/release/loadgen]: the binaries (an A/B of a change)
#   OUT [bench-results/<UTC timestamp>]
#   ports (below the ephemeral range 32768-60999): GW_TCP 23777 GW_TLS 23778 (TLS and QUIC)
#          GW_ADMIN 23780 GW_METRICS 23781,
#          B_TCP 24777 B_TLS 24778
#
# Output: OUT/raw (every loadgen JSON, with a .meta.json each: command, load average,
# CPU split), OUT/logs, OUT/meta (machine, versions, effective gateway config), and
# BENCHMARKS.md at the repository root (scripts/bench/report.py OUT rewrites it).
set -euo pipefail

cd "$(dirname "$0")/.."
SCENARIOS=${SCENARIOS:-max latency perdoc idle}
IDLE_TRANSPORTS=${IDLE_TRANSPORTS:-tcp tls quic}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
REPS=${REPS:-3}
REGISTERS=${REGISTERS:-1000}
PERDOC_TCP_REGISTERS=${PERDOC_TCP_REGISTERS:-200}
PERDOC_TLS_REGISTERS=${PERDOC_TLS_REGISTERS:-100}
IDLE_HOLDERS=${IDLE_HOLDERS:-2}
TCP_RAMP=${TCP_RAMP:-4000}
TLS_RAMP=${TLS_RAMP:-1500}
QUIC_CONNS=${QUIC_CONNS:-100000}
QUIC_HOLDERS=${QUIC_HOLDERS:-2}
QUIC_RAMP=${QUIC_RAMP:-1000}
SETTLE=${SETTLE:-5}
STORM_HOLD=${STORM_HOLD:-300}
STORM_BACKOFF=${STORM_BACKOFF:-100ms-1s}
STORM_CONNECT_TIMEOUT=${STORM_CONNECT_TIMEOUT:-30s}
STORM_DOC_TIMEOUT=${STORM_DOC_TIMEOUT:-10s}
QUIC_STORM_BACKOFF=${QUIC_STORM_BACKOFF:-1s-30s}
QUIC_CONNECT_TIMEOUT=${QUIC_CONNECT_TIMEOUT:-60s}
QUIC_DOC_TIMEOUT=${QUIC_DOC_TIMEOUT:-30s}
QUIC_KEEP_ALIVE=${QUIC_KEEP_ALIVE:-20s}
QUIC_IDLE_TIMEOUT=${QUIC_IDLE_TIMEOUT:-60s}
LOAD_MAX=${LOAD_MAX:-1.0}
QUIET_WAIT=${QUIET_WAIT:-1800}
SKIP_BUILD=${SKIP_BUILD:-0}
FSYNC_BENCH=${FSYNC_BENCH:-1}
WRITE_REPORT=${WRITE_REPORT:-1}
KEEP_DATA=${KEEP_DATA:-0}
GW_TCP=${GW_TCP:-23777}
GW_TLS=${GW_TLS:-23778}
GW_ADMIN=${GW_ADMIN:-23780}
GW_METRICS=${GW_METRICS:-23781}
B_TCP=${B_TCP:-24777}
B_TLS=${B_TLS:-24778}
OUT=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
RAW=$OUT/raw
LOGS=$OUT/logs
DATA=$OUT/data
LG=${LG:-target/release/loadgen}
GW=${GW:-target/release/gateway}
ADMIN_URL=http://127.0.0.1:$GW_ADMIN

# shellcheck source=scripts/bench/lib.sh
source scripts/bench/lib.sh
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

for tool in jq curl ss python3 awk; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
mkdir -p "$RAW" "$LOGS" "$DATA" "$OUT/meta"
echo "$0 $*" >"$OUT/meta/invocation.txt"
env | grep -E '^(SCENARIOS|IDLE_TRANSPORTS|DURATION|WARMUP|REPS|REGISTERS|PERDOC_|IDLE_|TCP_RAMP|TLS_RAMP|QUIC_|SETTLE|STORM_|LOAD_MAX|QUIET_WAIT)=' \
    >>"$OUT/meta/invocation.txt" || true

# ---------------------------------------------------------------- build
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries (cargo serialises builds on the shared target dir: be patient)"
    cargo build --release -p gateway -p loadgen >"$LOGS/build.log" 2>&1 || die "build failed: $LOGS/build.log"
    if [[ $FSYNC_BENCH == 1 ]]; then
        cargo build --release -p storage --bin storage-bench >>"$LOGS/build.log" 2>&1 || FSYNC_BENCH=0
    fi
fi
[[ -x $GW && -x $LG ]] || die "no release binaries ($GW, $LG): run without SKIP_BUILD=1"
for p in "$GW_TCP" "$GW_TLS" "$GW_ADMIN" "$GW_METRICS" "$B_TCP" "$B_TLS"; do
    port_free "$p" || die "port $p is in use (set GW_*/B_* to free ports)"
done

# ---------------------------------------------------------------- machine and versions
scripts/bench/machine.sh "$OUT/meta" "$GW" "$LG"

# the development certificate every gateway and the baseline use (ECDSA P-256)
gw_start certgen
cp -r "$DATA/certgen/tls" "$OUT/tls"
CAPACITY=$(grep -o 'allows about [0-9]* TCP/TLS' "$LOGS/certgen.gateway.log" | grep -o '[0-9]*' | head -1 || true)
gw_stop
rm -rf "$DATA/certgen"
CAPACITY=${CAPACITY:-$(($(ulimit -n) - 256))}
IDLE_CONNS=${IDLE_CONNS:-$((CAPACITY - 44))}
jq -n --argjson cap "$CAPACITY" --argjson conns "$IDLE_CONNS" '{gateway_tcp_tls_capacity: $cap, idle_connections: $conns}' \
    >"$OUT/meta/capacity.json"
log "gateway capacity $CAPACITY TCP/TLS connections; idle scenarios hold $IDLE_CONNS (QUIC $QUIC_CONNS)"
env GATEWAY_LIMITS__IDLE_TIMEOUT=30m "$GW" print-config >"$OUT/meta/gateway-config.toml" 2>/dev/null || true

if [[ $FSYNC_BENCH == 1 && -x target/release/storage-bench ]]; then
    log "disk: storage-bench (raw fsync rate, group commit), 1 s per case"
    target/release/storage-bench --dir "$DATA/storage-bench" --seconds 1 --skip-recovery \
        --json "$OUT/meta/storage-bench.json" >"$LOGS/storage-bench.out" 2>&1 || log "storage-bench failed"
    rm -rf "$DATA/storage-bench"
fi

# ---------------------------------------------------------------- quiet machine
wait_quiet "$OUT/meta/load.json"

has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
scenario_start() { # NAME
    jq -cn --arg s "$1" --arg la "$(loadavg)" --arg at "$(date -u +%FT%TZ)" '{scenario: $s, loadavg: $la, at: $at}' \
        >>"$OUT/meta/scenario-starts.jsonl"
    log "=== $1 (load average $(loadavg))"
}
order() { # REP → the systems in ABBA order, so that drift does not favour either
    if (($1 % 2)); then echo gateway baseline; else echo baseline gateway; fi
}
fresh_gateway() { # NAME COUNT SEED [ENV...]: a gateway on an empty data dir with COUNT registers onboarded
    local name=$1 count=$2 seed=$3
    shift 3
    gw_start "$name" "$@"
    local cmd=("$LG" onboard --count "$count" --seed "$seed" --admin "$ADMIN_URL" --gateway-data-dir "$DATA/$name")
    ONBOARD_CMD="${cmd[*]}"
    "${cmd[@]}" >>"$LOGS/$name.onboard.log" 2>&1 || die "onboarding failed: $LOGS/$name.onboard.log"
}
drop_gateway() { # NAME
    gw_stop
    [[ $KEEP_DATA == 1 ]] || rm -rf "${DATA:?}/$1"
}

base_start
common=(--duration "$DURATION" --warmup "$WARMUP")

# ---------------------------------------------------------------- 1. maximum durable acks/s
if has max; then
    scenario_start max
    for rep in $(seq 1 "$REPS"); do
        for sys in $(order "$rep"); do
            name=max-$sys-r$rep
            if [[ $sys == gateway ]]; then
                fresh_gateway "$name" "$REGISTERS" 1
                lg_run "$name" "$GW_PID" max gateway "$rep" -- --target "127.0.0.1:$GW_TCP" \
                    --count "$REGISTERS" --closed --ramp-rate 2000 "${common[@]}"
                drop_gateway "$name"
            else
                lg_run "$name" "$BASE_PID" max baseline "$rep" -- --target "127.0.0.1:$B_TCP" \
                    --count "$REGISTERS" --closed --ramp-rate 2000 "${common[@]}"
            fi
        done
    done
fi

# ---------------------------------------------------------------- 2. latency at half of it
if has latency; then
    scenario_start latency
    if [[ -n ${HALF_RATE:-} ]]; then
        half=$HALF_RATE
    elif maxes=$(for f in "$RAW"/max-gateway-r*.json; do [[ $f == *.meta.json ]] || echo "$f"; done) && [[ -n $maxes ]]; then
        # shellcheck disable=SC2086
        half=$(jq -s 'map(.rates.achieved) | sort | .[(length - 1) / 2 | floor] / 2 | floor' $maxes)
    else
        half=10000
        log "no max-gateway runs: latency at the default $half/s (set HALF_RATE)"
    fi
    echo "$half" >"$OUT/meta/half-rate.txt"
    log "open loop at $half/s for both systems (50 % of the gateway's median maximum)"
    for rep in $(seq 1 "$REPS"); do
        for sys in $(order "$rep"); do
            name=latency-$sys-r$rep
            if [[ $sys == gateway ]]; then
                fresh_gateway "$name" "$REGISTERS" 1
                lg_run "$name" "$GW_PID" latency gateway "$rep" -- --target "127.0.0.1:$GW_TCP" \
                    --count "$REGISTERS" --rate "$half" --ramp-rate 2000 "${common[@]}"
                drop_gateway "$name"
            else
                lg_run "$name" "$BASE_PID" latency baseline "$rep" -- --target "127.0.0.1:$B_TCP" \
                    --count "$REGISTERS" --rate "$half" --ramp-rate 2000 "${common[@]}"
            fi
        done
    done
fi

# ---------------------------------------------------------------- 3. a connection per document
if has perdoc; then
    scenario_start perdoc
    # variant transport registers extra-args
    variants=("perdoc-tcp tcp $PERDOC_TCP_REGISTERS" "perdoc-tls-full tls $PERDOC_TLS_REGISTERS"
        "perdoc-tls-resumed tls $PERDOC_TLS_REGISTERS --tls-resume")
    # spread over source addresses: TIME_WAIT sockets stay on loadgen's side
    src=(--source-ips 127.0.0.2-127.0.0.9)
    for v in "${variants[@]}"; do
        read -r vname transport count extra <<<"$v"
        for rep in $(seq 1 "$REPS"); do
            for sys in $(order "$rep"); do
                name=$vname-$sys-r$rep
                # shellcheck disable=SC2206
                args=(--transport "$transport" --count "$count" --closed --behaviour per-document "${src[@]}" ${extra:-} "${common[@]}")
                if [[ $sys == gateway ]]; then
                    fresh_gateway "$name" "$count" 1
                    if [[ $transport == tls ]]; then
                        args+=(--target "127.0.0.1:$GW_TLS" --gateway-data-dir "$DATA/$name")
                    else
                        args+=(--target "127.0.0.1:$GW_TCP")
                    fi
                    lg_run "$name" "$GW_PID" "$vname" gateway "$rep" -- "${args[@]}"
                    drop_gateway "$name"
                else
                    if [[ $transport == tls ]]; then
                        args+=(--target "127.0.0.1:$B_TLS" --ca "$OUT/tls/dev-cert.pem")
                    else
                        args+=(--target "127.0.0.1:$B_TCP")
                    fi
                    lg_run "$name" "$BASE_PID" "$vname" baseline "$rep" -- "${args[@]}"
                fi
            done
        done
    done
fi
base_stop

# ---------------------------------------------------------------- 4 + 5. idle connections, reconnect storm
# idle_storm TRANSPORT SYSTEM: start a fresh server, hold N connections with H loadgen
# processes, measure the server's RSS (before, connected, after one document each), restart
# the server and let every register reconnect and deliver its next document.
phase_all() { # DIR HOLDERS PHASE: every holder has written PHASE (or a later one)
    local dir=$1 h=$2 want=$3 i p
    for ((i = 0; i < h; i++)); do
        p=$(jq -r '.phase' "$dir/ready.$i.json" 2>/dev/null) || return 1
        case "$want:$p" in
            connected:connected | connected:plateau | connected:done | plateau:plateau | plateau:done | done:done) ;;
            *) return 1 ;;
        esac
    done
}
holders_done() {
    local p
    for p in "${HOLDER_PIDS[@]}"; do alive "$p" && return 1; done
    return 0
}
server_sample() { # PID LABEL DIR SYSTEM: RSS, kernel socket memory, open connections
    local pid=$1 label=$2 dir=$3 sys=$4 open=null
    if [[ $sys == gateway ]]; then
        open=$(curl -sf "http://127.0.0.1:$GW_METRICS/metrics" | awk '/^ofd_gateway_connections_open\{/ {s += $2} END {print s + 0}') || open=null
    fi
    read -r tcp_pages udp_pages tcp_inuse udp_inuse <<<"$(sockstat)"
    local slab
    slab=$(awk '/^Slab:/ {print $2 * 1024}' /proc/meminfo)
    jq -n --arg lbl "$label" --argjson rss "$(rss_bytes "$pid")" --argjson open "${open:-null}" \
        --argjson tp "$tcp_pages" --argjson up "$udp_pages" --argjson ti "$tcp_inuse" --argjson ui "$udp_inuse" \
        --argjson at "$(now)" --arg la "$(loadavg)" --argjson slab "$slab" \
        '{sample: $lbl, kernel_slab_bytes: $slab, at_unix_s: $at, rss_bytes: $rss, server_connections_open: $open, loadavg: $la,
          sockstat: {tcp_mem_pages: $tp, udp_mem_pages: $up, tcp_inuse: $ti, udp_inuse: $ui}}' >"$dir/sample-$label.json"
}
idle_storm() {
    local transport=$1 sys=$2
    local name=idle-$transport-$sys dir=$RAW/idle-$transport-$sys
    mkdir -p "$dir"
    local conns holders ramp backoff=$STORM_BACKOFF ctimeout=$STORM_CONNECT_TIMEOUT dtimeout=$STORM_DOC_TIMEOUT quic=()
    case $transport in
        quic)
            conns=$QUIC_CONNS holders=$QUIC_HOLDERS ramp=$QUIC_RAMP backoff=$QUIC_STORM_BACKOFF
            ctimeout=$QUIC_CONNECT_TIMEOUT dtimeout=$QUIC_DOC_TIMEOUT
            quic=(--quic-keep-alive "$QUIC_KEEP_ALIVE" --quic-idle-timeout "$QUIC_IDLE_TIMEOUT")
            ;;
        tls) conns=$IDLE_CONNS holders=$IDLE_HOLDERS ramp=$TLS_RAMP ;;
        *) conns=$IDLE_CONNS holders=$IDLE_HOLDERS ramp=$TCP_RAMP ;;
    esac
    scenario_start "$name"
    local pid target trust seed=7 server_cmd
    if [[ $sys == gateway ]]; then
        fresh_gateway "$name" "$conns" "$seed" GATEWAY_LIMITS__IDLE_TIMEOUT=30m
        pid=$GW_PID server_cmd=$GW_CMD
        target=127.0.0.1:$([[ $transport == tcp ]] && echo "$GW_TCP" || echo "$GW_TLS")
        trust=(--gateway-data-dir "$DATA/$name")
    else
        base_start "$name"
        pid=$BASE_PID server_cmd=$BASE_CMD
        target=127.0.0.1:$([[ $transport == tcp ]] && echo "$B_TCP" || echo "$B_TLS")
        trust=(--ca "$OUT/tls/dev-cert.pem")
    fi
    [[ $transport == tcp ]] && trust=()
    sleep "$SETTLE"
    server_sample "$pid" before "$dir" "$sys"
    # holders: each its own share of registers and its own 8 source addresses
    HOLDER_PIDS=()
    local per=$(((conns + holders - 1) / holders)) i first n lo cmds=()
    for ((i = 0; i < holders; i++)); do
        first=$((i * per))
        n=$((conns - first < per ? conns - first : per))
        lo=$((10 + i * 8))
        local cmd=("$LG" idle --transport "$transport" --target "$target" "${trust[@]}" --seed "$seed"
            --first-register "$first" --connections "$n" --source-ips "127.0.0.$lo-127.0.0.$((lo + 7))"
            --ramp-rate "$(awk -v r="$ramp" -v h="$holders" 'BEGIN {print r / h}')" --send-first
            --wait-file "$dir/go" --ready-file "$dir/ready.$i.json" --reconnect --reconnect-backoff "$backoff"
            --connect-timeout "$ctimeout" --timeout "$dtimeout" "${quic[@]}" --hold "${STORM_HOLD}s"
            --storm-csv "$dir/storm.$i.csv" --json "$dir/holder.$i.json" --no-progress)
        cmds+=("${cmd[*]}")
        "${cmd[@]}" >"$LOGS/$name.holder.$i.out" 2>&1 &
        HOLDER_PIDS+=($!)
        STARTED_PIDS+=($!)
    done
    local ramp_limit=$((conns / ramp + 180))
    cpu_begin "$pid" "${HOLDER_PIDS[@]}"
    wait_for "$ramp_limit" phase_all "$dir" "$holders" connected || log "  not every holder connected within ${ramp_limit}s"
    cpu_end "$pid" >"$dir/cpu-ramp.json"
    sleep "$SETTLE"
    cpu_begin "$pid" "${HOLDER_PIDS[@]}"
    sleep "$SETTLE"
    cpu_end "$pid" >"$dir/cpu-idle.json"
    server_sample "$pid" connected "$dir" "$sys"
    touch "$dir/go"
    cpu_begin "$pid" "${HOLDER_PIDS[@]}"
    wait_for $((conns / ramp + 300)) phase_all "$dir" "$holders" plateau || log "  first documents not all answered in time"
    cpu_end "$pid" >"$dir/cpu-first-documents.json"
    sleep "$SETTLE"
    server_sample "$pid" plateau "$dir" "$sys"
    # the restart
    log "  restarting the $sys ($(jq -s 'map(.established) | add' "$dir"/ready.*.json) connections held)"
    local t_signal t_exit t_ready
    t_signal=$(now)
    local old_ticks
    old_ticks=$(pid_ticks "$pid")
    cpu_begin "" "${HOLDER_PIDS[@]}"
    if [[ $sys == gateway ]]; then
        stop_pid "$pid" TERM 180
        t_exit=$(now)
        gw_start "$name" GATEWAY_LIMITS__IDLE_TIMEOUT=30m
        pid=$GW_PID
    else
        stop_pid "$pid" INT 60
        t_exit=$(now)
        base_start "$name"
        pid=$BASE_PID
    fi
    t_ready=$(now)
    # holders end by themselves once every register recovered (bounded by STORM_HOLD)
    local old_last=$STOP_LAST_TICKS
    wait_for $((STORM_HOLD + 60)) holders_done || log "  holders still running after the storm bound"
    SRV_TICKS=$((old_last - old_ticks + $(pid_ticks "$pid"))) cpu_end "" >"$dir/cpu-storm.json"
    for i in "${HOLDER_PIDS[@]}"; do stop_pid "$i" INT 30; done
    server_sample "$pid" after-storm "$dir" "$sys"
    if [[ $sys == gateway ]]; then
        curl -sf "http://127.0.0.1:$GW_METRICS/metrics" >"$dir/metrics-after-storm.txt" || true
        drop_gateway "$name"
    else
        base_stop
    fi
    jq -n --arg transport "$transport" --arg system "$sys" --argjson conns "$conns" --argjson holders "$holders" \
        --argjson ramp "$ramp" --argjson ts "$t_signal" --argjson te "$t_exit" --argjson tr "$t_ready" \
        --arg server "$server_cmd" --arg backoff "$backoff" --argjson settle "$SETTLE" \
        --arg ct "$ctimeout" --arg dt "$dtimeout" --arg qo "${quic[*]}" \
        --arg onboard "$([[ $sys == gateway ]] && echo "$ONBOARD_CMD")" \
        --arg restart "$([[ $sys == gateway ]] && echo 'SIGTERM (graceful drain), then the same command on the same data dir' || echo 'SIGINT, then the same command')" \
        --args '{transport: $transport, system: $system, connections: $conns, holders: $holders, ramp_rate: $ramp,
          settle_s: $settle, restart: $restart, signal_at_unix_s: $ts, old_exited_at_unix_s: $te, new_ready_at_unix_s: $tr,
          server_command: $server, onboard_command: $onboard, holder_commands: $ARGS.positional, reconnect_backoff: $backoff,
          connect_timeout: $ct, doc_timeout: $dt, quic_options: $qo}' \
        "${cmds[@]}" >"$dir/meta.json"
}
if has idle; then
    for transport in $IDLE_TRANSPORTS; do
        for sys in gateway baseline; do
            idle_storm "$transport" "$sys"
        done
    done
fi

jq -n --arg la "$(loadavg)" --arg at "$(date -u +%FT%TZ)" '{loadavg: $la, at: $at}' >"$OUT/meta/end.json"
[[ $KEEP_DATA == 1 ]] || rm -rf "$DATA"
if [[ $WRITE_REPORT == 1 ]]; then
    python3 scripts/bench/report.py "$OUT" BENCHMARKS.md
    log "wrote BENCHMARKS.md from $OUT"
fi
log "done: $OUT"
