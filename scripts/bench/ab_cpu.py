#!/usr/bin/env python3
"""CPU per acknowledged document of each run of an A/B (scripts/bench/ab.sh), by thread.

    python3 scripts/bench/ab_cpu.py OUT        (OUT: the A/B's output folder)

From each run's RAW/<run>.json (loadgen: achieved rate) and RAW/<run>.meta.json (the
server's CPU over the measured window, whole process and per thread name, from /proc):
µs of CPU per document = CPU share of one core × 10⁶ ÷ documents per second. Prints one
line per run and the medians per system.
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

THREADS = ["storage-writer", "tokio-rt-worker", "fjall:worker"]


def main(out: Path) -> None:
    rows = defaultdict(list)
    print(f"{'run':<16} {'docs/s':>8} {'µs/doc':>7} " + " ".join(f"{t:>16}" for t in THREADS))
    for meta_path in sorted((out / "raw").glob("ab-*-r*.meta.json")):
        run = meta_path.name.removesuffix(".meta.json")
        meta = json.loads(meta_path.read_text())
        rate = json.loads((out / "raw" / f"{run}.json").read_text())["rates"]["achieved"]
        if not rate:
            continue
        per_doc = lambda pct: pct / 100 * 1e6 / rate  # noqa: E731
        threads = {t["name"]: t["cpu_pct"] for t in meta.get("server_threads", [])}
        row = [rate, per_doc(meta["cpu"]["server_pct"])] + [per_doc(threads.get(t, 0.0)) for t in THREADS]
        rows[run.split("-r")[0]].append(row)
        print(f"{run:<16} {row[0]:>8.0f} {row[1]:>7.1f} " + " ".join(f"{v:>16.1f}" for v in row[2:]))
    print("medians:")
    for system, rs in sorted(rows.items()):
        med = [statistics.median(col) for col in zip(*rs)]
        print(f"{system:<16} {med[0]:>8.0f} {med[1]:>7.1f} " + " ".join(f"{v:>16.1f}" for v in med[2:]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
