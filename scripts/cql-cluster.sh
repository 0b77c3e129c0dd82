#!/usr/bin/env bash
# A real CQL server for tests: an Apache Cassandra cluster of 1-3 nodes on this machine,
# no Docker. Nodes listen on 127.0.0.1, 127.0.0.2, 127.0.0.3 (ports 9042 and 7000 on each),
# data centre dc1, rack rack1, commitlog_sync batch. See docs/cluster.md.
#
#   scripts/cql-cluster.sh start N [--wipe]   start nodes 1..N (1 <= N <= 3), wait until every node
#                                             serves CQL and the ring shows N nodes up, print the
#                                             contact points on one line on stdout
#   scripts/cql-cluster.sh kill I             SIGKILL node I (1-based)
#   scripts/cql-cluster.sh restart I          start node I again on its data, wait until it is up
#   scripts/cql-cluster.sh status             one line per node; exit 0 only when all are up
#   scripts/cql-cluster.sh contact-points     print the contact points of the cluster
#   scripts/cql-cluster.sh stop [--wipe]      SIGTERM the nodes this script started (by pid file)
#   scripts/cql-cluster.sh wipe               stop, then remove the state directory
#
# Environment:
#   CQL_CLUSTER_DIR     state directory (default <repo>/target/cql-cluster)
#   CASSANDRA_VERSION   org.apache.cassandra:cassandra-all version (default 5.0.6)
#   CQL_CACHE_DIR       jar cache (default ~/.cache/ofd-gateway/cassandra-$CASSANDRA_VERSION)
#   CQL_JAVA_HOME       JDK for the nodes, taken as given (default: JAVA_HOME if it is Java 11 or 17,
#                       else the JDK 17 under /usr/lib/jvm, else `java`; 5.0 fails on Java 25)
#   CQL_HEAP            heap per node (default 768m)
#   CQL_JVM_OPTS        extra JVM options per node (appended last; a -XX:+Use...GC there replaces
#                       the default -XX:+UseParallelGC -XX:ParallelGCThreads=2)
#   CQL_START_TIMEOUT   seconds a node may take to serve CQL (default 120)
#   CQL_RING_TIMEOUT    seconds the ring may take to show every node up (default 60)
#   CQL_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 30)
#   CQL_JMX_BASE        JMX port of node 1; node I uses CQL_JMX_BASE+I-1 (default 7199)
#   CQL_ADDR_BASE       last byte of node 1's address; node I listens on 127.0.0.(BASE+I-1)
#                       (default 1; the test suite uses its own, so that it runs beside a
#                       developer's cluster)
#   CQL_KEEP_ON_FAILURE 1: a failed start/restart leaves the nodes it launched running
#                       (default: it SIGKILLs them, so a failure leaves nothing half-started)
#
# Progress goes to stderr; stdout carries only the contact points (start) or status lines.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${CQL_CLUSTER_DIR:-$REPO_ROOT/target/cql-cluster}
# absolute: the nodes are given file:// URLs and run from another directory
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
CASSANDRA_VERSION=${CASSANDRA_VERSION:-5.0.6}
CACHE_DIR=${CQL_CACHE_DIR:-${HOME:?HOME is not set}/.cache/ofd-gateway/cassandra-$CASSANDRA_VERSION}
LIB_DIR=$CACHE_DIR/lib
FETCH_MARKER=$CACHE_DIR/.fetch-complete
HEAP=${CQL_HEAP:-768m}
START_TIMEOUT=${CQL_START_TIMEOUT:-120}
RING_TIMEOUT=${CQL_RING_TIMEOUT:-60}
STOP_TIMEOUT=${CQL_STOP_TIMEOUT:-30}
JMX_BASE=${CQL_JMX_BASE:-7199}
ADDR_BASE=${CQL_ADDR_BASE:-1}
CQL_PORT=9042
STORAGE_PORT=7000
MAX_NODES=3
CLUSTER_NAME=ofd-cql-test

JAVA=
JAVA_MAJOR=

log() { printf 'cql-cluster: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    cleanup_launched
    exit 1
}
now_ms() { date +%s%3N; }
elapsed() { # start_ms -> "12.3 s"
    local ms=$(($(now_ms) - $1))
    printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- layout

node_addr() { printf '127.0.0.%d' $((ADDR_BASE + $1 - 1)); }
node_dir() { printf '%s/node%d' "$STATE_DIR" "$1"; }
node_jmx() { printf '%d' $((JMX_BASE + $1 - 1)); }
node_log() { printf '%s/node.log' "$(node_dir "$1")"; }
pid_file() { printf '%s/pid' "$(node_dir "$1")"; }
size_file() { printf '%s/size' "$STATE_DIR"; }

cluster_size() { # the size recorded by the last start, or empty
    local f
    f=$(size_file)
    if [[ -f $f ]]; then cat "$f"; fi
}

contact_points() { # N
    local i out=
    for ((i = 1; i <= $1; i++)); do
        out+="${out:+,}$(node_addr "$i"):$CQL_PORT"
    done
    printf '%s\n' "$out"
}

check_index() { # value max what
    if ! [[ $1 =~ ^[1-9][0-9]*$ ]] || (($1 > $2)); then
        die "$3 must be 1..$2, got '$1'"
    fi
}

# ---------------------------------------------------------------- processes

# The pid of node I if it is alive and is the JVM this script started for that node (its
# command line names the node's own cassandra.yaml), else nothing. Guards against pid reuse:
# a pid file never makes us signal a process we did not start.
node_pid() {
    local f pid cmdline
    f=$(pid_file "$1")
    [[ -f $f ]] || return 0
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ -r /proc/$pid/cmdline ]] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    [[ $cmdline == *"-Dcassandra.config=file://$(node_dir "$1")/cassandra.yaml "* ]] || return 0
    printf '%s' "$pid"
}

node_rss() { # pid -> "1234MiB"
    awk '/^VmRSS:/ { printf "%dMiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true
}

port_busy() { # addr port: something accepts connections there
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# A CQL native-protocol v4 OPTIONS request; ready when the node answers SUPPORTED (0x06).
cql_ready() { # addr
    local hex
    # shellcheck disable=SC2016 # expanded by the inner bash
    hex=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "\x04\x00\x00\x01\x05\x00\x00\x00\x00" >&3
        head -c 9 <&3 | od -An -tx1' _ "$1" "$CQL_PORT" 2>/dev/null) || return 1
    local -a b
    read -ra b <<<"$hex"
    [[ ${#b[@]} -ge 5 && ${b[0]} == 84 && ${b[4]} == 06 ]]
}

show_log_tail() { # I
    local f
    f=$(node_log "$1")
    if [[ -f $f ]]; then
        log "last 40 lines of $f:"
        tail -n 40 "$f" >&2
    else
        log "node $1 has no log at $f"
    fi
}

# ---------------------------------------------------------------- java and jars

java_major() { # java binary -> its major version
    "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { print $2 }'
}

# Cassandra 5.0 runs on Java 11 and 17 only: on Java 25 it dies at startup with
# "UnsupportedOperationException: Setting a system-wide Policy object is not supported".
# CQL_JAVA_HOME is taken as given; JAVA_HOME when it is 11 or 17; else a JDK 17 from
# /usr/lib/jvm; else whatever `java` is.
find_java() {
    local cand
    if [[ -n ${CQL_JAVA_HOME:-} ]]; then
        [[ -x $CQL_JAVA_HOME/bin/java ]] || die "CQL_JAVA_HOME=$CQL_JAVA_HOME has no bin/java"
        JAVA=$CQL_JAVA_HOME/bin/java
    elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java && $(java_major "$JAVA_HOME/bin/java") =~ ^(11|17)$ ]]; then
        JAVA=$JAVA_HOME/bin/java
    else
        for cand in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* \
            /usr/lib/jvm/*-17* /usr/lib/jvm/*jdk-17*; do
            if [[ -x $cand/bin/java ]]; then
                JAVA=$cand/bin/java
                break
            fi
        done
        if [[ -z $JAVA ]]; then
            JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
            [[ -x $JAVA ]] || JAVA=$(command -v java) || die "no Java found: install a JDK 17 or set CQL_JAVA_HOME"
        fi
        if [[ -n ${JAVA_HOME:-} && $JAVA != "$JAVA_HOME/bin/java" ]]; then
            log "JAVA_HOME=$JAVA_HOME is not Java 11 or 17; using $JAVA (set CQL_JAVA_HOME to force a JDK)"
        fi
    fi
    JAVA_MAJOR=$(java_major "$JAVA")
    case $JAVA_MAJOR in
    11 | 17) ;;
    *) log "warning: $JAVA is Java $JAVA_MAJOR; Cassandra 5.0 runs on 11 and 17 only" ;;
    esac
}

fetch_jars() {
    [[ -f $FETCH_MARKER ]] && return 0
    command -v mvn >/dev/null || die "mvn (Maven) is needed to fetch cassandra-all $CASSANDRA_VERSION"
    mkdir -p "$CACHE_DIR"
    # One fetch at a time per cache; a second caller waits and then finds the marker.
    exec 8>"$CACHE_DIR/.lock"
    flock -w 900 8 || die "timed out waiting for another fetch into $CACHE_DIR"
    if [[ -f $FETCH_MARKER ]]; then
        exec 8>&-
        return 0
    fi
    local t0 work n
    t0=$(now_ms)
    rm -rf "$CACHE_DIR"/fetch.* # left by an interrupted fetch (we hold the lock)
    log "fetching org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION and its dependencies into $LIB_DIR (Maven Central)"
    work=$(mktemp -d "$CACHE_DIR/fetch.XXXXXX")
    cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ofd-gateway</groupId>
  <artifactId>cassandra-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    if ! JAVA_HOME=$(dirname "$(dirname "$JAVA")") mvn -q -B -f "$work/pom.xml" \
        org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1; then
        tail -n 40 "$work/mvn.log" >&2
        die "Maven could not fetch cassandra-all $CASSANDRA_VERSION (log above; left in $work)"
    fi
    [[ -f $work/lib/cassandra-all-$CASSANDRA_VERSION.jar ]] ||
        die "the fetch finished without cassandra-all-$CASSANDRA_VERSION.jar (see $work)"
    n=$(find "$work/lib" -name '*.jar' | wc -l)
    rm -rf "$LIB_DIR"
    mv "$work/lib" "$LIB_DIR"
    rm -rf "$work"
    printf 'cassandra-all %s, %d jars, fetched %s\n' "$CASSANDRA_VERSION" "$n" "$(date -u +%FT%TZ)" >"$FETCH_MARKER"
    exec 8>&-
    log "fetched $n jars ($(du -sh "$LIB_DIR" | cut -f1)) in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- node configuration

write_node_config() { # I N
    local i=$1 n=$2 dir addr seeds='' j
    dir=$(node_dir "$i")
    addr=$(node_addr "$i")
    for ((j = 1; j <= n; j++)); do
        seeds+="${seeds:+,}$(node_addr "$j"):$STORAGE_PORT"
    done
    mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
    # Every node of the cluster is a seed, so any node restarts while another one is down.
    cat >"$dir/cassandra.yaml" <<EOF
# Written by scripts/cql-cluster.sh; rewritten on every start.
cluster_name: $CLUSTER_NAME
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
auto_bootstrap: false
endpoint_snitch: GossipingPropertyFileSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
listen_address: $addr
rpc_address: $addr
storage_port: $STORAGE_PORT
native_transport_port: $CQL_PORT
data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
# A write is answered only after the commit log is synced: the durability our acks promise.
commitlog_sync: batch
disk_failure_policy: stop
commit_failure_policy: stop
# Small on purpose: up to three nodes share two cores with the gateway and the load generator.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_compactors: 1
key_cache_size: 16MiB
# Test cluster: dropping or truncating a table does not keep a snapshot of it.
auto_snapshot: false
paxos_variant: v2
EOF
    printf 'dc=dc1\nrack=rack1\n' >"$dir/cassandra-rackdc.properties"
    cat >"$dir/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

# Module flags of Cassandra's conf/jvm17-server.options (also valid on Java 11).
JPMS_FLAGS=(
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.math=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.net=ALL-UNNAMED
)

declare -A LAUNCHED_AT=()
LAUNCHED_PIDS=() # nodes launched by this invocation; SIGKILLed when it fails

# A failed start or restart leaves none of the nodes it launched running (unless
# CQL_KEEP_ON_FAILURE=1, to look at them).
cleanup_launched() {
    local pid i
    ((${#LAUNCHED_PIDS[@]} > 0)) || return 0
    if [[ ${CQL_KEEP_ON_FAILURE:-0} == 1 ]]; then
        log "CQL_KEEP_ON_FAILURE=1: leaving pid(s) ${LAUNCHED_PIDS[*]} running"
        return 0
    fi
    for i in "${!LAUNCHED_PIDS[@]}"; do
        pid=${LAUNCHED_PIDS[$i]}
        if [[ $pid == "$(node_pid "$i")" ]]; then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$(pid_file "$i")"
            log "node $i (pid $pid), launched by this command, killed"
        fi
    done
    LAUNCHED_PIDS=()
}

check_free_ports() { # I (called before any node is launched)
    local port
    for port in "$(node_addr "$1"):$CQL_PORT" "$(node_addr "$1"):$STORAGE_PORT" "127.0.0.1:$(node_jmx "$1")"; do
        if port_busy "${port%:*}" "${port##*:}"; then
            die "$port is already in use by a process this script did not start (node $1 cannot listen there)"
        fi
    done
}

launch_node() { # I
    local i=$1 dir addr jmx pid
    dir=$(node_dir "$i")
    addr=$(node_addr "$i")
    jmx=$(node_jmx "$i")
    local -a extra=() gc=(-XX:+UseParallelGC -XX:ParallelGCThreads=2)
    if [[ -n ${CQL_JVM_OPTS:-} ]]; then
        read -ra extra <<<"$CQL_JVM_OPTS"
        # A collector chosen there replaces ours (the JVM refuses two).
        [[ $CQL_JVM_OPTS != *-XX:+Use*GC* ]] || gc=()
    fi
    local -a cmd=(
        "$JAVA"
        -Xms"$HEAP" -Xmx"$HEAP" -Xss256k
        "${gc[@]}"
        -XX:+ExitOnOutOfMemoryError -XX:+PerfDisableSharedMem -XX:ErrorFile="$dir/hs_err_%p.log"
        -Djava.net.preferIPv4Stack=true
        -Dio.netty.tryReflectionSetAccessible=true
        "${JPMS_FLAGS[@]}"
        -Dcassandra.config="file://$dir/cassandra.yaml"
        -Dcassandra-rackdc.properties="file://$dir/cassandra-rackdc.properties"
        -Dlogback.configurationFile="file://$dir/logback.xml"
        -Dcassandra.storagedir="$dir"
        -Dcassandra.logdir="$dir/logs"
        -Dcassandra-foreground=yes
        -Dcassandra.jmx.local.port="$jmx"
        -Dcassandra.skip_wait_for_gossip_to_settle=0
        -Dcassandra.ring_delay_ms=3000
        "${extra[@]}"
        -cp "$LIB_DIR/*"
        org.apache.cassandra.service.CassandraDaemon
    )
    {
        printf '\n===== %s: node %d starting (%s, JMX %s)\n' "$(date -u +%FT%TZ)" "$i" "$addr" "$jmx"
        printf '%q ' "${cmd[@]}"
        printf '\n'
    } >>"$(node_log "$i")"
    # Detached: its own session, stdin closed, output to the node's log, none of our lock fds.
    (cd "$dir" && exec setsid "${cmd[@]}" </dev/null >>"$(node_log "$i")" 2>&1 8>&- 9>&-) &
    pid=$!
    disown "$pid" 2>/dev/null || true
    LAUNCHED_AT[$i]=$(now_ms)
    LAUNCHED_PIDS[i]=$pid
    printf '%s\n' "$pid" >"$(pid_file "$i")"
    sleep 0.5
    if [[ -z $(node_pid "$i") ]]; then
        show_log_tail "$i"
        die "node $i (pid $pid) exited at once"
    fi
    log "node $i launched: $addr:$CQL_PORT, pid $pid, JMX $jmx, log $(node_log "$i")"
}

# ---------------------------------------------------------------- waiting

wait_cql() { # I
    local i=$1 deadline addr since
    addr=$(node_addr "$i")
    since=${LAUNCHED_AT[$i]:-$(now_ms)}
    deadline=$((since + START_TIMEOUT * 1000))
    while :; do
        if [[ -z $(node_pid "$i") ]]; then
            show_log_tail "$i"
            die "node $i exited before serving CQL on $addr:$CQL_PORT"
        fi
        if cql_ready "$addr"; then
            log "node $i serves CQL on $addr:$CQL_PORT ($(elapsed "$since") after its launch)"
            return 0
        fi
        if (($(now_ms) > deadline)); then
            show_log_tail "$i"
            die "node $i did not serve CQL on $addr:$CQL_PORT within ${START_TIMEOUT} s"
        fi
        sleep 1
    done
}

nodetool() { # I args...
    local i=$1
    shift
    "$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
        "${JPMS_FLAGS[@]}" -Dlogback.configurationFile="file://$STATE_DIR/logback-tools.xml" \
        -Duser.home="$STATE_DIR/tools" \
        -cp "$LIB_DIR/*" org.apache.cassandra.tools.NodeTool \
        -h 127.0.0.1 -p "$(node_jmx "$i")" "$@" 8>&- 9>&-
}

# Addresses that node I's `nodetool status` shows as Up/Normal, one per line.
ring_up() { # I
    nodetool "$1" status 2>/dev/null | awk '$1 == "UN" { print $2 }' || true
}

# Wait until every running node of the N sees every running node as UN (Up, Normal).
wait_ring() { # N t0_ms
    local n=$1 deadline i j up want=() missing
    deadline=$(($(now_ms) + RING_TIMEOUT * 1000))
    printf '<configuration><root level="WARN"/></configuration>\n' >"$STATE_DIR/logback-tools.xml"
    for ((i = 1; i <= n; i++)); do
        if [[ -n $(node_pid "$i") ]]; then want+=("$i"); fi
    done
    while :; do
        missing=
        for i in "${want[@]}"; do
            up=$(ring_up "$i")
            for j in "${want[@]}"; do
                grep -qx "$(node_addr "$j")" <<<"$up" || missing+=" node$i-sees-node$j"
            done
        done
        if [[ -z $missing ]]; then
            log "ring: ${#want[@]} of $n node(s) UN as seen from each of them ($(elapsed "$2") since the command began)"
            return 0
        fi
        if (($(now_ms) > deadline)); then
            for i in "${want[@]}"; do
                log "nodetool status on node $i:"
                nodetool "$i" status >&2 || true
            done
            log "not up:$missing"
            show_log_tail "${want[0]}"
            die "the ring did not show the nodes up within ${RING_TIMEOUT} s"
        fi
        sleep 2
    done
}

# ---------------------------------------------------------------- state lock

lock_state() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 600 9 || die "another cql-cluster.sh holds $STATE_DIR/.lock"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    local n=${1:-} wipe=${2:-}
    [[ -n $n ]] || usage
    check_index "$n" "$MAX_NODES" "the number of nodes"
    [[ -z $wipe || $wipe == --wipe ]] || usage
    local t0 recorded i running=() down=()
    t0=$(now_ms)
    find_java
    fetch_jars
    lock_state
    if [[ -n $wipe ]]; then
        stop_nodes
        wipe_state
        lock_state
    fi
    recorded=$(cluster_size)
    for ((i = 1; i <= MAX_NODES; i++)); do
        if [[ -n $(node_pid "$i") ]]; then running+=("$i"); fi
    done
    if [[ -n $recorded && $recorded != "$n" ]]; then
        if ((${#running[@]} > 0)); then
            die "a cluster of $recorded node(s) is running in $STATE_DIR: stop it first ($0 stop)"
        fi
        die "$STATE_DIR holds the data of a $recorded-node cluster: start $recorded, or wipe it ($0 start $n --wipe)"
    fi
    for ((i = n + 1; i <= MAX_NODES; i++)); do
        [[ -z $(node_pid "$i") ]] || die "node $i is running but the cluster size is $n: stop first ($0 stop)"
    done
    for ((i = 1; i <= n; i++)); do
        [[ -n $(node_pid "$i") ]] || down+=("$i")
    done
    if ((${#down[@]} == 0)); then
        log "a $n-node cluster is already running in $STATE_DIR"
        wait_ring "$n" "$t0"
        contact_points "$n"
        return 0
    fi
    printf '%s\n' "$n" >"$(size_file)"
    log "starting node(s) ${down[*]} of $n with Java $JAVA_MAJOR ($JAVA), heap $HEAP, state in $STATE_DIR"
    for i in "${down[@]}"; do
        check_free_ports "$i"
        write_node_config "$i" "$n"
    done
    # A new cluster forms around node 1, and the others join it one at a time: two nodes that
    # join together can both take the same tokens (the allocator is deterministic on the
    # same view of the ring; seen here as "Nodes … have the same token", the ring then lacks
    # a node). Nodes that already have data (a stopped cluster started again) are launched
    # all at once: one launched alone would wait 10 s for its peers before serving CQL.
    if [[ ${down[0]} == 1 && ${#down[@]} -gt 1 && ! -d $(node_dir 1)/data/system ]]; then
        for i in "${down[@]}"; do
            launch_node "$i"
            wait_cql "$i"
        done
    else
        for i in "${down[@]}"; do
            launch_node "$i"
        done
        for i in "${down[@]}"; do
            wait_cql "$i"
        done
    fi
    wait_ring "$n" "$t0"
    log "cluster of $n node(s) up in $(elapsed "$t0")"
    contact_points "$n"
}

cmd_kill() {
    local i=${1:-} n pid
    [[ -n $i ]] || usage
    check_index "$i" "$MAX_NODES" "the node"
    lock_state
    pid=$(node_pid "$i")
    if [[ -z $pid ]]; then
        log "node $i is not running"
        rm -f "$(pid_file "$i")"
        return 0
    fi
    kill -KILL "$pid"
    for ((n = 0; n < 100; n++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    [[ ! -d /proc/$pid ]] || die "node $i (pid $pid) still exists 10 s after SIGKILL"
    rm -f "$(pid_file "$i")"
    printf '\n===== %s: node %d SIGKILLed by cql-cluster.sh\n' "$(date -u +%FT%TZ)" "$i" >>"$(node_log "$i")"
    log "node $i (pid $pid) killed"
}

cmd_restart() {
    local i=${1:-} n t0
    [[ -n $i ]] || usage
    t0=$(now_ms)
    n=$(cluster_size)
    [[ -n $n ]] || die "no cluster in $STATE_DIR: use '$0 start N' first"
    check_index "$i" "$n" "the node"
    find_java
    fetch_jars
    lock_state
    if [[ -n $(node_pid "$i") ]]; then
        log "node $i is already running"
    else
        check_free_ports "$i"
        write_node_config "$i" "$n"
        launch_node "$i"
    fi
    wait_cql "$i"
    wait_ring "$n" "$t0"
    log "node $i up in $(elapsed "$t0")"
}

cmd_status() {
    local n i pid all_up=0
    n=$(cluster_size)
    if [[ -z $n ]]; then
        log "no cluster in $STATE_DIR"
        return 1
    fi
    for ((i = 1; i <= n; i++)); do
        pid=$(node_pid "$i")
        if [[ -z $pid ]]; then
            printf 'node%d %s:%d pid=- down\n' "$i" "$(node_addr "$i")" "$CQL_PORT"
            all_up=1
        elif cql_ready "$(node_addr "$i")"; then
            printf 'node%d %s:%d pid=%s up rss=%s\n' "$i" "$(node_addr "$i")" "$CQL_PORT" "$pid" "$(node_rss "$pid")"
        else
            printf 'node%d %s:%d pid=%s starting rss=%s\n' "$i" "$(node_addr "$i")" "$CQL_PORT" "$pid" "$(node_rss "$pid")"
            all_up=1
        fi
    done
    return "$all_up"
}

stop_nodes() {
    local i pid pids=() nodes=() deadline t0 left
    t0=$(now_ms)
    for ((i = 1; i <= MAX_NODES; i++)); do
        pid=$(node_pid "$i")
        if [[ -n $pid ]]; then
            pids+=("$pid")
            nodes+=("$i")
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    if ((${#pids[@]} == 0)); then
        log "no node running"
    else
        log "SIGTERM sent to node(s) ${nodes[*]} (pids ${pids[*]})"
        deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
        while :; do
            left=()
            for pid in "${pids[@]}"; do
                if [[ -d /proc/$pid ]]; then left+=("$pid"); fi
            done
            if ((${#left[@]} == 0)); then break; fi
            if (($(now_ms) > deadline)); then
                log "still running after ${STOP_TIMEOUT} s, SIGKILL: ${left[*]}"
                kill -KILL "${left[@]}" 2>/dev/null || true
                sleep 1
                break
            fi
            sleep 0.2
        done
        log "stopped in $(elapsed "$t0")"
    fi
    for ((i = 1; i <= MAX_NODES; i++)); do
        rm -f "$(pid_file "$i")"
    done
}

wipe_state() {
    [[ -d $STATE_DIR ]] || return 0
    # Remove only a directory this script made: it holds the size file, or nothing but our files.
    local entry
    if [[ ! -f $(size_file) ]]; then
        for entry in "$STATE_DIR"/* "$STATE_DIR"/.[!.]*; do
            [[ -e $entry ]] || continue
            case ${entry#"$STATE_DIR"/} in
            .lock | logback-tools.xml | tools | node[1-3]) ;;
            *) die "$STATE_DIR does not look like a cql-cluster state directory ($entry); not removing it" ;;
            esac
        done
    fi
    rm -rf "$STATE_DIR"
    log "removed $STATE_DIR"
}

cmd_stop() {
    local wipe=${1:-}
    [[ -z $wipe || $wipe == --wipe ]] || usage
    if [[ ! -d $STATE_DIR ]]; then
        log "no cluster in $STATE_DIR"
        return 0
    fi
    lock_state
    stop_nodes
    [[ -z $wipe ]] || wipe_state
}

main() {
    local command=${1:-}
    (($# > 0)) && shift
    case $command in
    start) cmd_start "$@" ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status ;;
    contact-points)
        local n
        n=$(cluster_size)
        [[ -n $n ]] || die "no cluster in $STATE_DIR"
        contact_points "$n"
        ;;
    stop) cmd_stop "$@" ;;
    wipe) cmd_stop --wipe ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
