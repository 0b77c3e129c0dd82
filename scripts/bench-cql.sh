#!/usr/bin/env bash
# The CQL path beside the CQL server's own pace (issue 19): for 1 and 3 Apache Cassandra
# nodes, the CQL baseline (one plain insert per document; one conditional insert per
# document) and the gateway on the same cluster, in ABBA order, with the CPU per
# document of the gateway (or the baseline client) and of the cluster's JVMs.
#
#   scripts/bench-cql.sh                        # ~15 minutes on 2 cores, plus the build
#   NODES_LIST=3 DURATION=60 scripts/bench-cql.sh
#
# Not part of the default test run. Needs Java 17 and Maven (scripts/cql-cluster.sh
# fetches Cassandra once) and python3. Nodes run on 127.0.0.41-43; results, logs and
# summary.{json,md} go to target/bench-cql/<time>/. Every process it starts is stopped by
# pid at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "building release binaries (gateway, loadgen)" >&2
    cargo build --release -p gateway -p loadgen >&2
fi
exec python3 scripts/bench/cql_bench.py
