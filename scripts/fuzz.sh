#!/usr/bin/env bash
# Runs every cargo-fuzz target of the ffd crate for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 600 (the per-PR budget of docs/ffd-testing.md); the
# targets default to all of them. Needs a nightly toolchain (libFuzzer instrumentation);
# installs cargo-fuzz from crates.io if it is missing.
#
# The committed seed corpus (ffd/fuzz/corpus/<target>) is read but never written: new
# inputs go to ffd/fuzz/target/corpus/<target> (ignored by git), crashes to
# ffd/fuzz/artifacts/<target>. A crash makes the script exit non-zero after the remaining
# targets have run; copy the artifact into the committed corpus (it then runs in
# `cargo test -p ffd --all-features --test hostile`) and fix the cause.
set -euo pipefail

secs="${1:-600}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_dir="$root/ffd/fuzz"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(session_frame tlv_decoder)
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: a nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
# build once up front so build time is not charged to the fuzzing budget
cargo +nightly fuzz build --release >/dev/null

status=0
for t in "${targets[@]}"; do
    work="$fuzz_dir/target/corpus/$t"
    mkdir -p "$work" "$fuzz_dir/artifacts/$t"
    log="$fuzz_dir/target/fuzz-$t.log"
    echo "== $t: ${secs}s (log: $log)"
    start=$(date +%s)
    set +e
    cargo +nightly fuzz run --release "$t" "$work" "$fuzz_dir/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len=70000 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    end=$(date +%s)
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
    echo "   ran $((end - start))s, $runs executions, coverage $cov, exit $rc"
    if [ "$rc" -ne 0 ]; then
        echo "   FINDING: see $log and $fuzz_dir/artifacts/$t/" >&2
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -5 >&2 || true
        status=1
    fi
done
exit "$status"
