#!/usr/bin/env python3
"""Per-thread CPU of a process, for the evidence of BENCHMARKS.md (which thread saturates).

    threads.py snap PID > before.json          # {tid: [name, ticks]} from /proc/PID/task/*/stat
    threads.py diff before.json after.json WALL_S > threads.json
        # [{"name", "threads", "cpu_pct"}] by thread name, busiest first (100 = one CPU)
"""

import json
import os
import sys


def snap(pid):
    out = {}
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"{base}/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1 : s.rindex(")")]
        fields = s[s.rindex(")") + 2 :].split()
        out[tid] = [name, int(fields[11]) + int(fields[12])]  # utime, stime
    return out


def diff(a, b, wall):
    hz = os.sysconf("SC_CLK_TCK")
    by = {}
    for tid, (name, ticks) in b.items():
        before = a.get(tid, [name, 0])[1]
        d = by.setdefault(name, [0, 0])
        d[0] += 1
        d[1] += max(ticks - before, 0)
    rows = [
        {"name": n, "threads": c, "cpu_pct": round(t / hz / wall * 100, 1)} for n, (c, t) in by.items() if t > 0
    ]
    return sorted(rows, key=lambda r: -r["cpu_pct"])


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "snap":
        json.dump(snap(sys.argv[2]), sys.stdout)
    elif len(sys.argv) >= 5 and sys.argv[1] == "diff":
        with open(sys.argv[2]) as f:
            a = json.load(f)
        with open(sys.argv[3]) as f:
            b = json.load(f)
        json.dump(diff(a, b, float(sys.argv[4])), sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
