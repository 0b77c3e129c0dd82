#!/usr/bin/env python3
"""Splits `perf script` samples of the gateway into the stages of the ack path.

    perf script -i perf.data | python3 scripts/bench/stages.py

Each sample is counted once, in the first stage (in the order of STAGES) whose pattern
matches its thread name or one of its frames; the stage table therefore adds up to 100 %
of the process's samples. Frames are matched as substrings of the demangled symbol.
"""
import re
import sys
from collections import Counter

# (stage, thread-name regex or None, frame substrings) — first match wins
STAGES = [
    ("store: flush and compaction (fjall workers)", r"^(fjall|lsm|compaction|flush)", None),
    ("store writer: fsync", r"^storage-writer", ["fsync", "fdatasync", "sync_all", "sync_data", "persist"]),
    ("store writer: journal write", r"^storage-writer", ["journal", "Journal"]),
    ("store writer: memtable insert", r"^storage-writer", ["memtable", "skiplist", "Memtable"]),
    ("store writer: staging (overlay, encoding, activity)", r"^storage-writer", ["stage_append", "Tx", "codec", "to_json", "serde_json"]),
    ("store writer: other", r"^storage-writer", None),
    ("metrics (counters, histograms)", None, ["metrics::", "metrics_exporter", "metrics_util"]),
    ("decode + validate (ffd::inspect)", None, ["ffd::inspect", "ffd::flk", "ffd::tlv", "ffd::form", "ffd::container::"]),
    ("sign the acknowledgment", None, ["build_ack_container", "AckSigner", "hmac", "sha2", "Hmac", "ring::", "aws_lc"]),
    ("store hand-off (channel, waiting)", None, ["append_documents", "oneshot", "mpsc", "Semaphore"]),
    ("registry check", None, ["Registry::check", "registry::"]),
    ("socket write", None, ["tcp_sendmsg", "sys_sendto", "sys_write", "poll_write", "write_all"]),
    ("socket read + framing", None, ["tcp_recvmsg", "sys_recvfrom", "sys_read", "poll_read", "read_frame", "read_message", "framing"]),
    ("runtime: scheduling, wake-ups, epoll", None, ["epoll", "futex", "schedule", "park", "tokio::runtime", "wake"]),
    ("allocator", None, ["malloc", "free", "realloc", "mi_", "je_", "__rust_alloc", "__rust_dealloc"]),
]


def main():
    counts = Counter()
    threads = Counter()
    total = 0
    comm = None
    frames = []

    def flush():
        nonlocal total
        if comm is None:
            return
        total += 1
        threads[comm] += 1
        for name, thread_re, pats in STAGES:
            if thread_re and not re.search(thread_re, comm):
                continue
            if pats is None or any(p in f for f in frames for p in pats):
                counts[name] += 1
                return
        counts["other (" + comm + ")"] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            flush()
            comm = line.split()[0]
            frames = []
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(parts[1])
    flush()
    if not total:
        print("no samples")
        return
    print(f"{'stage':<55} {'samples':>8} {'share':>7}")
    for name, n in counts.most_common():
        print(f"{name:<55} {n:>8} {100 * n / total:>6.1f}%")
    print(f"{'total':<55} {total:>8}")
    print()
    print(f"{'thread':<55} {'samples':>8} {'share':>7}")
    for name, n in threads.most_common(12):
        print(f"{name:<55} {n:>8} {100 * n / total:>6.1f}%")


if __name__ == "__main__":
    main()
