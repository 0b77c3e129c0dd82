#!/usr/bin/env python3
"""The CQL path beside the CQL server's own pace (issue 19), in one run per cluster size.

For each cluster size in NODES_LIST (default "1 3"): a fresh Apache Cassandra cluster
(scripts/cql-cluster.sh, nodes on 127.0.0.41-43), then, in the order
insert, lwt, gateway, gateway, lwt, insert (so that drift favours none):

  insert   loadgen cql-baseline --mode insert: one plain row of a document's size per
           document, same driver, LOCAL_QUORUM, CONCURRENCY in flight
  lwt      loadgen cql-baseline --mode lwt: one conditional insert (IF NOT EXISTS) per
           document: the first-writer-wins decision alone
  gateway  one gateway on the cluster (keyspace RF = min(3, nodes)), REGISTERS persistent
           TCP registers in a closed loop, every acknowledgment verified

Each figure is the rate over DURATION after WARMUP, with the CPU of the gateway (or of the
baseline client) and of the cluster's JVMs over the same window, per document, from
/proc. Writes summary.json and summary.md to OUT (default
target/bench-cql/<time>/). Every process it starts is stopped by pid at the end.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
STAMP = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("OUT", os.path.join(ROOT, "target", "bench-cql", STAMP))
import cluster_test as ct  # noqa: E402  (the helpers: spawn, http, wait, gateway config)

OUT = ct.OUT
DURATION = int(os.environ.get("DURATION", "30"))
WARMUP = int(os.environ.get("WARMUP", "5"))
REGISTERS = int(os.environ.get("REGISTERS", "200"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "200"))
NODES_LIST = [int(n) for n in os.environ.get("NODES_LIST", "1 3").split()]
HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def jvm_pids(n):
    pids = []
    for i in range(1, n + 1):
        try:
            with open(os.path.join(ct.CQL_DIR, f"node{i}", "pid")) as f:
                pids.append(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    return pids


def measure(client_pid_fn, jvms, run):
    """Runs `run()` (which returns once the measured window is over, after WARMUP) and
    samples CPU over the measured window only."""
    state = {}

    def window_start():
        state["t0"] = time.monotonic()
        state["c0"] = cpu_ticks([client_pid_fn()])
        state["j0"] = cpu_ticks(jvms)

    def window_end():
        state["wall"] = time.monotonic() - state["t0"]
        state["c1"] = cpu_ticks([client_pid_fn()])
        state["j1"] = cpu_ticks(jvms)

    report = run(window_start, window_end)
    secs = lambda a, b: (state[b] - state[a]) / HZ  # noqa: E731
    return report, {"wall_s": round(state["wall"], 1), "client_cpu_s": secs("c0", "c1"), "jvm_cpu_s": secs("j0", "j1")}


def timed(proc, window_start, window_end):
    time.sleep(WARMUP)
    window_start()
    time.sleep(DURATION)
    window_end()
    proc.wait(timeout=DURATION + 300)


def baseline(tag, mode, nodes, rf, jvms):
    js = os.path.join(OUT, f"{tag}.json")
    args = [os.path.join(ct.BIN, "loadgen"), "cql-baseline", "--nodes", ",".join(nodes), "--dc", "dc1",
            "--keyspace", f"bench_{mode}", "--rf", str(rf), "--mode", mode, "--concurrency", str(CONCURRENCY),
            "--duration", f"{DURATION}s", "--warmup", f"{WARMUP}s", "--json", js]
    p = ct.spawn(tag, args)
    rep, cpu = measure(lambda: p.pid, jvms, lambda s, e: timed(p, s, e))
    try:
        with open(js) as f:
            r = json.load(f)
    except (OSError, ValueError):
        raise SystemExit(f"{tag}: no report; see {OUT}/logs/{tag}.log")
    return figures(tag, r, cpu)


def figures(tag, r, cpu):
    rate = (r.get("rates") or {}).get("achieved") or r.get("rate") or r.get("docs_per_s")
    if "p50_ms" in r:  # the CQL baseline reports milliseconds
        lat = {k: r.get(f"{k}_ms", 0) * 1000 for k in ("p50", "p99", "p999")}
    else:  # loadgen run: the closed loop's measured (uncorrected) histogram, µs
        lat = (r.get("latency_us") or {}).get("uncorrected") or {}
    docs = rate * cpu["wall_s"] if rate else 0
    f = {
        "tag": tag,
        "rate": round(rate or 0, 1),
        "p50_ms": round(lat.get("p50", 0) / 1000, 1),
        "p99_ms": round(lat.get("p99", 0) / 1000, 1),
        "p999_ms": round(lat.get("p999", 0) / 1000, 1),
        "client_us_per_doc": round(cpu["client_cpu_s"] / docs * 1e6, 1) if docs else None,
        "jvm_us_per_doc": round(cpu["jvm_cpu_s"] / docs * 1e6, 1) if docs else None,
        "errors": r.get("errors", (r.get("counters") or {}).get("refusals")),
        "mismatches": r.get("mismatches_total"),
    }
    if not f["rate"]:
        raise SystemExit(f"{tag}: nothing was acknowledged; see {OUT}/logs/{tag}.log")
    ct.log(f"{tag}: {f['rate']}/s p99 {f['p99_ms']} ms; client {f['client_us_per_doc']} µs/doc, "
           f"cluster {f['jvm_us_per_doc']} µs/doc")
    return f


def gateway_run(tag, rep_no, jvms, port=None, server=None):
    js = os.path.join(OUT, f"{tag}.json")
    port = port or ct.GW["a"]["tcp"]
    p = ct.spawn(tag, [os.path.join(ct.BIN, "loadgen"), "run", "--target", f"127.0.0.1:{port}",
                       "--count", str(REGISTERS), "--closed", "--ramp-rate", "1000", "--duration", f"{DURATION}s",
                       "--warmup", f"{WARMUP}s", "--timeout", "10s", "--max-resends", "100", "--retry-refused",
                       "--fd-start", str(1 + rep_no * 1_000_000), "--json", js, "--no-progress", "--quiet"])
    gw_pid = (server or GATEWAY["p"]).pid
    rep, cpu = measure(lambda: gw_pid, jvms, lambda s, e: timed(p, s, e))
    with open(js) as f:
        r = json.load(f)
    return figures(tag, r, cpu)


GATEWAY = {}


def one_size(n):
    base = 40
    nodes = [f"127.0.0.{base + i}:9042" for i in range(1, n + 1)]
    rf = min(3, n)
    ct.NODES = nodes
    ct.CQL_DIR = os.path.join(OUT, f"cql-{n}")
    ct.CQL_ENV = dict(os.environ, CQL_CLUSTER_DIR=ct.CQL_DIR, CQL_ADDR_BASE=str(base + 1), CQL_JMX_BASE="7241")
    ct.log(f"{n} node(s): starting the cluster on {nodes[0]}…")
    ct.cql("start", str(n), "--wipe")
    jvms = jvm_pids(n)
    cfg_text = ct.gateway_config("a").replace("replication_factor = 3", f"replication_factor = {rf}") \
        .replace("min_replication_factor = 3", f"min_replication_factor = {rf}") \
        .replace('keyspace = "ofd_cluster"', 'keyspace = "ofd_bench_gw"') \
        .replace('registry_refresh = "2s"', '')  # the default (the cluster test wants it fast)
    # no FNS forwarding in this measurement (the receiver would share the CPU)
    cfg_text = cfg_text.split("[fns]")[0] + "[alerts]" + cfg_text.split("[alerts]")[1]
    cfg = os.path.join(OUT, f"gw-{n}.toml")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    r = subprocess.run([os.path.join(ct.BIN, "gateway"), "--config", cfg, "migrate"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"migrate failed: {r.stderr}")
    results = []
    order = ["insert", "lwt", "gateway", "gateway", "lwt", "insert"]
    gw_rep = 0
    for i, what in enumerate(order):
        tag = f"n{n}-{i}-{what}"
        if what == "gateway":
            GATEWAY["p"] = ct.spawn(f"gateway-n{n}-{gw_rep}", [os.path.join(ct.BIN, "gateway"), "--config", cfg])
            ct.wait("the gateway ready", lambda: ct.ready("a"), 120)
            if gw_rep == 0:
                r = subprocess.run([os.path.join(ct.BIN, "loadgen"), "onboard", "--count", str(REGISTERS), "--admin",
                                    f"http://127.0.0.1:{ct.GW['a']['admin']}", "--admin-token", ct.TOKEN],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(f"onboarding failed: {r.stderr}{r.stdout}")
            results.append(gateway_run(tag, gw_rep, jvms))
            GATEWAY["p"].terminate()
            GATEWAY["p"].wait(timeout=60)
            gw_rep += 1
        else:
            results.append(baseline(tag, what, nodes, rf, jvms))
    ct.cql("stop", "--wipe")
    return {"nodes": n, "rf": rf, "runs": results}


def local_stage():
    """The same closed loop against the gateway on its embedded store and against the
    canned-ack baseline (no storage at all), both on this machine with no JVM running."""
    d = os.path.join(OUT, "embedded")
    g = ct.GW["a"]
    gw = ct.spawn("gateway-embedded", [os.path.join(ct.BIN, "gateway"), "--data-dir", d,
                                       "--tcp-listen", f"127.0.0.1:{g['tcp']}", "--tls-listen", f"127.0.0.1:{g['tls']}",
                                       "--quic-listen", f"127.0.0.1:{g['tls']}", "--admin-listen",
                                       f"127.0.0.1:{g['admin']}", "--metrics-listen", f"127.0.0.1:{g['metrics']}"])
    ct.wait("the embedded gateway ready", lambda: ct.ready("a"), 120)
    r = subprocess.run([os.path.join(ct.BIN, "loadgen"), "onboard", "--count", str(REGISTERS), "--admin",
                        f"http://127.0.0.1:{g['admin']}", "--gateway-data-dir", d], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"onboarding failed: {r.stderr}{r.stdout}")
    canned_port = ct.GW["b"]["tcp"]
    base = ct.spawn("canned", [os.path.join(ct.BIN, "loadgen"), "baseline", "--listen", f"127.0.0.1:{canned_port}",
                               "--tls-listen", f"127.0.0.1:{ct.GW['b']['tls']}",
                               "--quic-listen", f"127.0.0.1:{ct.GW['b']['tls']}",
                               "--cert", os.path.join(d, "tls", "dev-cert.pem"),
                               "--key", os.path.join(d, "tls", "dev-key.pem")])
    ct.wait("the canned-ack baseline listening", lambda: subprocess.run(
        ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{canned_port}"], capture_output=True).returncode == 0, 30)
    runs = []
    for i, what in enumerate(["canned", "embedded", "embedded", "canned"]):
        tag = f"local-{i}-{what}"
        if what == "canned":
            runs.append(gateway_run(tag, i, [], port=canned_port, server=base))
        else:
            runs.append(gateway_run(tag, i, [], port=g["tcp"], server=gw))
    for p in (gw, base):
        p.terminate()
        p.wait(timeout=60)
    return {"nodes": 0, "rf": 0, "runs": runs}


def mean(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return round(sum(xs) / len(xs), 1) if xs else None


def main():
    import hashlib
    ct.TOKEN_SHA = hashlib.sha256(ct.TOKEN.encode()).hexdigest()
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    ct.log(f"results in {OUT}")
    sizes = ([local_stage()] if os.environ.get("LOCAL", "1") == "1" else []) + [one_size(n) for n in NODES_LIST]
    md = ["| store | system | docs/s | p50 ms | p99 ms | p99.9 ms | client CPU µs/doc | cluster CPU µs/doc | gateway / insert | gateway / lwt |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        by = {}
        for r in s["runs"]:
            by.setdefault(r["tag"].split("-")[-1], []).append(r)
        agg = {k: {f: mean([r[f] for r in v]) for f in ("rate", "p50_ms", "p99_ms", "p999_ms", "client_us_per_doc",
                                                        "jvm_us_per_doc")} for k, v in by.items()}
        s["mean"] = agg
        g = agg.get("gateway", {}).get("rate")
        s["gateway_over_insert"] = round(g / agg["insert"]["rate"], 3) if g and agg.get("insert", {}).get("rate") else None
        s["gateway_over_lwt"] = round(g / agg["lwt"]["rate"], 3) if g and agg.get("lwt", {}).get("rate") else None
        if s["nodes"] == 0:
            e, c = agg.get("embedded", {}).get("rate"), agg.get("canned", {}).get("rate")
            s["embedded_over_canned"] = round(e / c, 3) if e and c else None
        for k in ("canned", "embedded", "insert", "lwt", "gateway"):
            if k not in agg:
                continue
            a = agg[k]
            ratio = ("", "")
            if k == "gateway" and s["gateway_over_insert"] and s["gateway_over_lwt"]:
                ratio = (f"{s['gateway_over_insert']:.0%}", f"{s['gateway_over_lwt']:.0%}")
            if k == "embedded" and s.get("embedded_over_canned"):
                ratio = (f"{s['embedded_over_canned']:.0%} of canned", "")
            where = "this machine, no JVM" if s["nodes"] == 0 else f"{s['nodes']} (RF {s['rf']})"
            md.append(f"| {where} | {k} | {a.get('rate')} | {a.get('p50_ms')} | {a.get('p99_ms')} | "
                      f"{a.get('p999_ms')} | {a.get('client_us_per_doc')} | {a.get('jvm_us_per_doc')} | {ratio[0]} | {ratio[1]} |")
    summary = {"out": OUT, "duration_s": DURATION, "warmup_s": WARMUP, "registers": REGISTERS,
               "concurrency": CONCURRENCY, "sizes": sizes}
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    ct.run_script(main)
