#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need on a fresh
# machine, then runs the default test suite of every crate.
#
#   scripts/test.sh            # everything that belongs in the default run (< 15 min)
#   scripts/test.sh -p gateway # extra arguments go to `cargo test`
#
# Needs: the Rust toolchain (present), and Prometheus' promtool/prometheus for the
# observability tests and Alertmanager for the alert-routing test (Debian packages
# `prometheus` and `prometheus-alertmanager`, installed here if missing; needs root or
# sudo). The tests start their own Prometheus and Alertmanager on free loopback ports, so
# one that is already running (the package's service, or a user's own) is left alone.
# schemathesis (PyPI) is installed into target/schemathesis-venv for the OpenAPI test.
# Java 17 and Maven (present on these machines) run a one-node Apache Cassandra for the
# CQL backend's tests (scripts/cql-cluster.sh), stopped at the end.
# `--no-fail-fast`: one red suite must not hide the state of the suites after it.
# Long benchmarks, fuzzing and soak tests are separate commands (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# schemathesis (PyPI) for the admin API's OpenAPI test, in a venv under target/
st_venv=target/schemathesis-venv
if [ ! -x "$st_venv/bin/schemathesis" ]; then
    command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
fi
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}" >&2
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$st_venv/bin/schemathesis" ]; then
    echo "installing: schemathesis (into $st_venv)" >&2
    rm -rf "$st_venv"
    python3 -m venv "$st_venv"
    "$st_venv/bin/pip" install -q --disable-pip-version-check schemathesis >/dev/null
fi

# A real CQL server for the CQL backend (Apache Cassandra 5.0, one node, on 127.0.0.11 so
# that it runs beside a developer's own cluster): the storage conformance suite and the
# gateway's CQL tests run against it. Jars are fetched from Maven Central once (cached in
# ~/.cache). Set SCYLLA_URI to use a running cluster instead.
if [ -z "${SCYLLA_URI:-}" ]; then
    export CQL_CLUSTER_DIR=${CQL_TEST_DIR:-$PWD/target/cql-test} CQL_ADDR_BASE=11 CQL_JMX_BASE=7211
    SCYLLA_URI=$(scripts/cql-cluster.sh start 1 --wipe)
    export SCYLLA_URI
    trap 'scripts/cql-cluster.sh stop --wipe >/dev/null 2>&1 || true' EXIT
fi
echo "CQL tests against $SCYLLA_URI" >&2

cargo test --workspace --no-fail-fast "$@"
