#!/usr/bin/env python3
"""Per-table request counts of a keyspace, summed over the given nodes, from Cassandra's
own counters (`system_views.local_read_latency`, `local_write_latency`,
`local_scan_latency`: what each replica served). Take a snapshot before and after a
measured run and divide the difference by the documents acknowledged meanwhile:

    python3 scripts/bench/cql_tablestats.py 127.0.0.41,127.0.0.42,127.0.0.43 ofd_bench_gw > before.json
    ... run the load ...
    python3 scripts/bench/cql_tablestats.py 127.0.0.41,127.0.0.42,127.0.0.43 ofd_bench_gw > after.json
    python3 scripts/bench/cql_tablestats.py --diff before.json after.json DOCUMENTS

Needs the DataStax Python driver (`pip install cassandra-driver`); a diagnostic, not a test.
Works with Apache Cassandra 4.1+ (ScyllaDB has no such virtual tables).
"""
import json
import sys

VIEWS = ("local_read_latency", "local_write_latency", "local_scan_latency")


def snapshot(hosts, ks):
    from cassandra.cluster import Cluster
    from cassandra.policies import WhiteListRoundRobinPolicy
    out = {}
    for h in hosts:
        c = Cluster([h], port=9042, load_balancing_policy=WhiteListRoundRobinPolicy([h]))
        s = c.connect()
        for view in VIEWS:
            for r in s.execute(f"SELECT table_name, count FROM system_views.{view} "
                               f"WHERE keyspace_name = %s ALLOW FILTERING", (ks,)):
                k = f"{view.split('_')[1]}/{r.table_name}"
                out[k] = out.get(k, 0) + r.count
        c.shutdown()
    return out


def diff(a, b, docs):
    rows = sorted(((b[k] - a.get(k, 0)) / docs, k) for k in b if b[k] - a.get(k, 0) > 0)
    for per_doc, k in reversed(rows):
        print(f"{per_doc:8.3f} per document  {k}")
    total = {}
    for per_doc, k in rows:
        total[k.split("/")[0]] = total.get(k.split("/")[0], 0) + per_doc
    print("replica requests per document: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(total.items())))


if __name__ == "__main__":
    if sys.argv[1] == "--diff":
        diff(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), float(sys.argv[4]))
    else:
        print(json.dumps(snapshot(sys.argv[1].split(","), sys.argv[2]), indent=1, sort_keys=True))
