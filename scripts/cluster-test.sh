#!/usr/bin/env bash
# The cluster test (issue 13): two gateways on one 3-node Apache Cassandra cluster
# (keyspace RF 3, LOCAL_QUORUM), load generators sending from 240 registers through both,
# and in turn: one DB node SIGKILLed mid-load (acks go on), a second one (no quorum: no
# acks, readiness false; both restarted: acks resume by themselves), one gateway
# SIGKILLed (the other takes its FNS forwarding, derived views, alert evaluation and
# resend jobs over). Then every acknowledged document is read back through both
# gateways' admin API and must be stored byte-identical, once, and at the FNS receiver.
#
#   scripts/cluster-test.sh                 # ~9 minutes on 2 cores, plus the build
#   REGISTERS=400 ONE_DOWN=60 scripts/cluster-test.sh
#
# Not part of the default test run (it needs three JVMs and several minutes). Needs Java
# 17 and Maven (scripts/cql-cluster.sh fetches Cassandra once) and python3. Nodes run on
# 127.0.0.21-23; results, logs and a summary.json go to target/cluster-test/<time>/.
# Every process it starts is stopped by pid at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "building release binaries (gateway, fns-receiver, loadgen)" >&2
    cargo build --release -p gateway -p loadgen >&2
fi
exec python3 scripts/cluster/cluster_test.py
