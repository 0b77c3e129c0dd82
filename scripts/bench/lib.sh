# shellcheck shell=bash
# Helpers of scripts/bench.sh: process control of the gateway and the baseline, CPU and
# memory accounting from /proc, load-average waits, and the record of every command run.
# Sourced, not executed. Expects: OUT RAW LOGS DATA LG GW (paths relative to the repo root).

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
STARTED_PIDS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---------------------------------------------------------------- CPU and memory

# "busy all iowait steal" jiffies over all CPUs
cpu_stat() {
    local _c u n s i w irq sirq st _rest
    read -r _c u n s i w irq sirq st _rest </proc/stat
    echo "$((u + n + s + irq + sirq + st)) $((u + n + s + i + w + irq + sirq + st)) $w $st"
}

# utime + stime of a process, in ticks (0 when it is gone)
pid_ticks() {
    local f
    f=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    f=${f##*) }
    # shellcheck disable=SC2086
    set -- $f
    echo $((${12} + ${13}))
}

# CPU ticks of this shell's reaped children (the loadgen runs)
children_ticks() {
    local f
    f=$(cat /proc/$$/stat)
    f=${f##*) }
    # shellcheck disable=SC2086
    set -- $f
    echo $((${14} + ${15}))
}

# VmRSS of a process in bytes
rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# kernel socket memory: "tcp_pages udp_pages tcp_inuse udp_inuse"
sockstat() {
    awk '/^TCP:/ {for (i=2;i<NF;i+=2) t[$i]=$(i+1)} /^UDP:/ {for (i=2;i<NF;i+=2) u[$i]=$(i+1)}
         END {print t["mem"]+0, u["mem"]+0, t["inuse"]+0, u["inuse"]+0}' /proc/net/sockstat
}

# A CPU window: cpu_begin SERVER_PID [LOADGEN_PID...]; ...; cpu_end SERVER_PID > file.json
# Servers are started detached (not children of this shell), so their CPU is read from
# /proc/<pid>/stat. loadgen runs are children: a foreground run is counted when it is reaped
# (children ticks); background ones (the idle holders) are passed as LOADGEN_PIDs and
# counted from /proc while they run, their ticks before the window subtracted once reaped.
# SRV_TICKS, if set, replaces the server's ticks in the window (a restart spans two pids).
cpu_begin() {
    CPU0=$(cpu_stat)
    CPU0_T=$(now)
    CPU0_SRV=0
    [[ -n ${1:-} ]] && CPU0_SRV=$(pid_ticks "$1")
    shift || true
    CPU0_KIDS=$(children_ticks)
    CPU0_LGP=("$@")
    CPU0_LGT=()
    local p
    for p in "$@"; do CPU0_LGT+=("$(pid_ticks "$p")"); done
}
cpu_end() { # SERVER_PID → JSON on stdout (CPU-% where 100 = one CPU)
    local c1 t1 srv lg i p
    c1=$(cpu_stat)
    t1=$(now)
    if [[ -n ${SRV_TICKS:-} ]]; then
        srv=$SRV_TICKS
    elif [[ -n ${1:-} ]]; then
        srv=$(($(pid_ticks "$1") - CPU0_SRV))
    else
        srv=0
    fi
    lg=$(($(children_ticks) - CPU0_KIDS))
    for i in "${!CPU0_LGP[@]}"; do
        p=${CPU0_LGP[$i]}
        if [[ -r /proc/$p/stat ]]; then
            lg=$((lg + $(pid_ticks "$p") - CPU0_LGT[i]))
        else
            lg=$((lg - CPU0_LGT[i]))
        fi
    done
    jq -n --argjson hz "$HZ" --argjson ncpu "$NCPU" --arg c0 "$CPU0" --arg c1 "$c1" \
        --argjson t0 "$CPU0_T" --argjson t1 "$t1" --argjson srv "$srv" --argjson lg "$lg" '
        ($c0 | split(" ") | map(tonumber)) as $a | ($c1 | split(" ") | map(tonumber)) as $b
        | ($t1 - $t0) as $wall
        | (($b[1] - $a[1]) | if . <= 0 then 1 else . end) as $all
        | (($b[0] - $a[0]) / $all * 100 * $ncpu) as $busy
        | ($srv / $hz / $wall * 100) as $s
        | ($lg / $hz / $wall * 100) as $l
        | {wall_s: $wall, cpus: $ncpu,
           busy_pct: ($busy * 10 | round / 10),
           server_pct: ($s * 10 | round / 10),
           loadgen_pct: ($l * 10 | round / 10),
           other_pct: ([($busy - $s - $l), 0] | max * 10 | round / 10),
           iowait_pct: (($b[2] - $a[2]) / $all * 100 * $ncpu * 10 | round / 10),
           steal_pct: (($b[3] - $a[3]) / $all * 100 * $ncpu * 10 | round / 10)}'
}

# ---------------------------------------------------------------- waiting

# Waits until the 1-minute load average is below LOAD_MAX, polling every 15 s, for at
# most QUIET_WAIT seconds. Writes the outcome to $1 (JSON).
wait_quiet() {
    local out=$1 t0 waited l
    t0=$(date +%s)
    l=$(load1)
    log "load average $(loadavg); waiting up to ${QUIET_WAIT}s for the 1-minute figure to drop below $LOAD_MAX"
    while awk -v l="$l" -v m="$LOAD_MAX" 'BEGIN {exit !(l >= m)}'; do
        waited=$(($(date +%s) - t0))
        if ((waited >= QUIET_WAIT)); then
            log "still $(loadavg) after ${waited}s: running anyway (recorded in the report)"
            break
        fi
        sleep 15
        l=$(load1)
    done
    waited=$(($(date +%s) - t0))
    jq -n --arg la "$(loadavg)" --argjson waited "$waited" --argjson max "$LOAD_MAX" --argjson limit "$QUIET_WAIT" \
        '{load_at_start: $la, waited_s: $waited, load_max: $max, wait_limit_s: $limit,
          quiet: (($la | split(" ")[0] | tonumber) < $max)}' >"$out"
    log "starting at load average $(loadavg) after waiting ${waited}s"
}

# Polls a condition (a command) every 0.1 s for at most $1 seconds.
wait_for() {
    local limit=$1
    shift
    local deadline=$(($(date +%s) + limit))
    until "$@"; do
        (($(date +%s) < deadline)) || return 1
        sleep 0.1
    done
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q . && ! ss -Huan "sport = :$1" | grep -q .; }
listening() { ss -Htln "sport = :$1" | grep -q .; }

# ---------------------------------------------------------------- servers

# gw_start NAME [ENV=VALUE...]: a gateway on a fresh data directory DATA/NAME (or the
# existing one, for a restart) with the shared development certificate. Sets GW_PID.
gw_start() {
    local name=$1
    shift
    local dir=$DATA/$name
    mkdir -p "$dir"
    [[ -d $dir/tls ]] || { [[ -d $OUT/tls ]] && cp -r "$OUT/tls" "$dir/tls"; }
    local envs=(GATEWAY_LOG__LEVEL="${GW_LOG_LEVEL:-info,fjall=warn,lsm_tree=warn}" "$@")
    local cmd=("$GW" --data-dir "$dir" --tcp-listen "127.0.0.1:$GW_TCP" --tls-listen "127.0.0.1:$GW_TLS"
        --quic-listen "127.0.0.1:$GW_TLS" --admin-listen "127.0.0.1:$GW_ADMIN" --metrics-listen "127.0.0.1:$GW_METRICS")
    GW_CMD="${envs[*]} ${cmd[*]}"
    # detached (a subshell that exits at once): its CPU time never lands in ours
    (env "${envs[@]}" "${cmd[@]}" >>"$LOGS/$name.gateway.log" 2>&1 </dev/null & echo $! >"$LOGS/$name.gateway.pid")
    GW_PID=$(cat "$LOGS/$name.gateway.pid")
    STARTED_PIDS+=("$GW_PID")
    wait_for 120 curl -sf "http://127.0.0.1:$GW_METRICS/readyz" -o /dev/null ||
        die "gateway $name not ready after 120 s (log: $LOGS/$name.gateway.log)"
}

# True while a process runs (an exited child that was not reaped yet is a zombie: not
# running, although `kill -0` still succeeds).
alive() {
    local f
    f=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    f=${f##*) }
    [[ ${f:0:1} != Z ]]
}

# Stops a process by pid with a signal and waits (bounded) for it; SIGKILL after $3 s.
# STOP_LAST_TICKS: its CPU ticks when last seen running.
stop_pid() {
    local pid=$1 sig=${2:-TERM} limit=${3:-120}
    alive "$pid" || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$(($(date +%s) + limit))
    STOP_LAST_TICKS=$(pid_ticks "$pid")
    while alive "$pid"; do
        STOP_LAST_TICKS=$(pid_ticks "$pid")
        if (($(date +%s) >= deadline)); then
            log "pid $pid still running ${limit}s after SIG$sig: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
}

gw_stop() { stop_pid "$GW_PID" TERM 120; }

# The baseline on its own ports with the gateway's certificate (same key type and chain as
# the gateway's TLS and QUIC). Sets BASE_PID.
base_start() {
    local name=${1:-baseline}
    local cmd=("$LG" baseline --listen "127.0.0.1:$B_TCP" --tls-listen "127.0.0.1:$B_TLS" --quic-listen "127.0.0.1:$B_TLS"
        --cert "$OUT/tls/dev-cert.pem" --key "$OUT/tls/dev-key.pem")
    BASE_CMD="${cmd[*]}"
    ("${cmd[@]}" >>"$LOGS/$name.log" 2>&1 </dev/null & echo $! >"$LOGS/$name.pid")
    BASE_PID=$(cat "$LOGS/$name.pid")
    STARTED_PIDS+=("$BASE_PID")
    wait_for 30 listening "$B_TCP" || die "baseline did not start (log: $LOGS/$name.log)"
}

base_stop() { stop_pid "$BASE_PID" INT 30; }

# Stops everything this script started (by pid).
cleanup() {
    local p
    local any=0
    for p in "${STARTED_PIDS[@]}"; do
        if alive "$p"; then
            kill -INT "$p" 2>/dev/null || true
            any=1
        fi
    done
    ((any)) || return 0
    sleep 2
    for p in "${STARTED_PIDS[@]}"; do
        if alive "$p"; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

# ---------------------------------------------------------------- loadgen runs

# lg_run NAME SERVER_PID SCENARIO SYSTEM REP -- loadgen-run-args...
# Runs `loadgen run`, writes RAW/NAME.json (loadgen.run/1) and RAW/NAME.meta.json (command,
# load average, CPU split, server command).
lg_run() {
    local name=$1 spid=$2 scenario=$3 system=$4 rep=$5
    shift 6
    local cmd=("$LG" run "$@" --json "$RAW/$name.json" --no-progress --quiet)
    local la rc=0 server_cmd
    la=$(loadavg)
    server_cmd=$([[ $system == gateway ]] && echo "$GW_CMD" || echo "$BASE_CMD")
    log "$scenario $system #$rep: ${cmd[*]:1}"
    python3 scripts/bench/threads.py snap "$spid" >"$RAW/$name.threads0.json"
    cpu_begin "$spid"
    "${cmd[@]}" >"$LOGS/$name.out" 2>&1 || rc=$?
    cpu_end "$spid" >"$RAW/$name.cpu.json"
    python3 scripts/bench/threads.py snap "$spid" >"$RAW/$name.threads1.json"
    python3 scripts/bench/threads.py diff "$RAW/$name.threads0.json" "$RAW/$name.threads1.json" \
        "$(jq .wall_s "$RAW/$name.cpu.json")" >"$RAW/$name.threads.json" || true
    rm -f "$RAW/$name.threads0.json" "$RAW/$name.threads1.json"
    if [[ $system == gateway ]]; then
        curl -sf "http://127.0.0.1:$GW_METRICS/metrics" >"$RAW/$name.metrics.txt" || true
    fi
    jq -n --arg scenario "$scenario" --arg system "$system" --argjson rep "$rep" --arg cmd "${cmd[*]}" \
        --arg la "$la" --argjson rc "$rc" --arg server "$server_cmd" --slurpfile cpu "$RAW/$name.cpu.json" \
        --arg onboard "$([[ $system == gateway ]] && echo "${ONBOARD_CMD:-}")" \
        --slurpfile threads "$RAW/$name.threads.json" \
        '{scenario: $scenario, system: $system, rep: $rep, command: $cmd, server_command: $server, onboard_command: $onboard,
          server_threads: $threads[0],
          loadavg: $la, exit_code: $rc, cpu: $cpu[0]}' >"$RAW/$name.meta.json"
    rm -f "$RAW/$name.cpu.json" "$RAW/$name.threads.json"
    if [[ ! -s $RAW/$name.json ]]; then
        log "  $name produced no report (exit $rc): see $LOGS/$name.out"
    else
        log "  $(jq -r '"achieved \(.rates.achieved|floor)/s, mismatches \(.mismatches_total), timeouts \(.counters.timeouts), exit '"$rc"'"' "$RAW/$name.json")"
    fi
}
