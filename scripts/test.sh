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
# `--no-fail-fast`: one red suite must not hide the state of the suites after it.
# Long benchmarks, fuzzing and soak tests are separate commands (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}" >&2
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

exec cargo test --workspace --no-fail-fast "$@"
