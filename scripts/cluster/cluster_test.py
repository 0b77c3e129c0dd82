#!/usr/bin/env python3
"""The cluster test: two gateways on one 3-node CQL cluster (Apache Cassandra, keyspace
RF 3, LOCAL_QUORUM), loadgen registers sending through both, and the failures an OFD
must survive: one DB node lost, a quorum lost and regained, a gateway killed.

Run it through scripts/cluster-test.sh (which builds the release binaries). Everything
runs on 127.0.0.0/8: the DB nodes on 127.0.0.21-23, the gateways, the FNS receiver and
the load generators on 127.0.0.1. Every process this script starts is stopped by pid at
the end. It prints one summary (also written as JSON) and exits non-zero if a document
was lost or an expectation failed.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release")
STAMP = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
OUT = os.environ.get("OUT", os.path.join(ROOT, "target", "cluster-test", STAMP))
CQL_DIR = os.path.join(OUT, "cql")
KEY = "6f66642d636c7573746572202d20736861726564207369676e6572206b6579"
REGISTERS = int(os.environ.get("REGISTERS", "240"))
PHASE = {  # seconds
    "warmup": int(os.environ.get("WARMUP", "20")),
    "steady": int(os.environ.get("STEADY", "30")),
    "one_down": int(os.environ.get("ONE_DOWN", "30")),
    "quorum_lost": int(os.environ.get("QUORUM_LOST", "120")),
    "gateway_killed": int(os.environ.get("GATEWAY_KILLED", "45")),
}
OUTAGE = int(os.environ.get("OUTAGE", "20"))  # seconds without a quorum
CQL_ENV = dict(os.environ, CQL_CLUSTER_DIR=CQL_DIR, CQL_ADDR_BASE="21", CQL_JMX_BASE="7221")
NODES = ["127.0.0.21:9042", "127.0.0.22:9042", "127.0.0.23:9042"]
GW = {
    "a": {"tcp": 27777, "tls": 27778, "admin": 27780, "metrics": 27781},
    "b": {"tcp": 28777, "tls": 28778, "admin": 28780, "metrics": 28781},
}
RECEIVER = 27500
TOKEN = "cluster-test-admin-token"
TOKEN_SHA = ""  # set at start

started = []  # (name, Popen) of everything this script started
log_lock = threading.Lock()
notes = []


def log(msg):
    with log_lock:
        line = f"[cluster-test {time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        notes.append(line)


def spawn(name, args, env=None):
    out = open(os.path.join(OUT, "logs", f"{name}.log"), "ab")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True, cwd=ROOT)
    started.append((name, p))
    return p


def cql(*args):
    r = subprocess.run([os.path.join(ROOT, "scripts", "cql-cluster.sh"), *args], env=CQL_ENV,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cql-cluster.sh {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout.strip()


def http(method, url, body=None, token=TOKEN, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None, b""


def metric(gw, name, labels=None):
    """Sum of a metric's series at a gateway (None if unreachable)."""
    st, body = http("GET", f"http://127.0.0.1:{GW[gw]['metrics']}/metrics", token=None, timeout=5)
    if st != 200:
        return None
    text = body.decode()
    if f"# TYPE {name} " not in text:
        # a misspelt name would read as 0 for ever and make every check about it vacuous
        raise SystemExit(f"gateway {gw} exports no metric {name}")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest[:1] not in ("{", " "):
            continue
        if labels and not all(f'{k}="{v}"' in rest for k, v in labels.items()):
            continue
        try:
            total += float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass
    return total


def ready(gw):
    st, _ = http("GET", f"http://127.0.0.1:{GW[gw]['metrics']}/readyz", token=None, timeout=3)
    return st == 200


def wait(what, pred, limit, step=0.25):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    raise SystemExit(f"timed out after {limit} s waiting for {what}")


def gateway_config(name):
    p = GW[name]
    return f"""data_dir = "{OUT}/gw-{name}"
ofd_inn = "7700000009"
node_id = "gw-{name}"

[listen]
tcp = "127.0.0.1:{p['tcp']}"
tls = "127.0.0.1:{p['tls']}"
quic = "127.0.0.1:{p['tls']}"
admin = "127.0.0.1:{p['admin']}"
metrics = "127.0.0.1:{p['metrics']}"

[limits]
ack_timeout = "20s"

[ingest]
registry_refresh = "2s"

[signer]
key_hex = "{KEY}"

[storage]
backend = "scylla"
nodes = {json.dumps(NODES)}
keyspace = "ofd_cluster"
local_dc = "dc1"
consistency = "local_quorum"
replication_factor = 3
min_replication_factor = 3

[admin]
dev_token = false
[[admin.tokens]]
name = "cluster-test"
sha256 = "{TOKEN_SHA}"
role = "admin"

[fns]
url = "http://127.0.0.1:{RECEIVER}/documents"
poll_interval = "200ms"
retry_initial = "500ms"
retry_max = "5s"
lease_ttl = "9s"

[alerts]
interval = "3s"
lease_ttl = "9s"

[resend]
poll_interval = "500ms"
lease_ttl = "9s"

[shutdown]
drain_period = "1s"
"""


def start_gateway(name):
    cfg = os.path.join(OUT, f"gw-{name}.toml")
    with open(cfg, "w") as f:
        f.write(gateway_config(name))
    p = spawn(f"gateway-{name}", [os.path.join(BIN, "gateway"), "--config", cfg])
    wait(f"gateway {name} ready", lambda: ready(name) or (p.poll() is not None and sys.exit(
        f"gateway {name} exited:\n" + open(os.path.join(OUT, 'logs', f'gateway-{name}.log')).read()[-3000:])), 120)
    return p


def loadgen(tag, gw, first, count, seconds, fd_start):
    js = os.path.join(OUT, f"{tag}.json")
    acked = os.path.join(OUT, f"{tag}.acked.tsv")
    p = spawn(tag, [os.path.join(BIN, "loadgen"), "run", "--target", f"127.0.0.1:{GW[gw]['tcp']}",
                    "--count", str(count), "--first-register", str(first), "--closed", "--ramp-rate", "500",
                    "--duration", f"{seconds}s", "--timeout", "5s", "--max-resends", "100", "--retry-refused",
                    "--fd-start", str(fd_start), "--acked-out", acked, "--json", js, "--no-progress", "--quiet",
                    "--think-time", "20ms"])
    return p, js, acked


def run_phase(tag, seconds, fd_start, events):
    """Both loadgens for `seconds`; `events` = [(at_seconds, callable)] run meanwhile."""
    half = REGISTERS // 2
    la = loadgen(f"{tag}-a", "a", 0, half, seconds, fd_start)
    lb = loadgen(f"{tag}-b", "b", half, REGISTERS - half, seconds, fd_start)
    t0 = time.monotonic()
    for at, fn in sorted(events, key=lambda e: e[0]):
        delay = at - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        fn()
    for p, _, _ in (la, lb):
        p.wait(timeout=seconds + 900)
    out = {}
    for side, (_, js, acked) in (("a", la), ("b", lb)):
        try:
            with open(js) as f:
                out[side] = json.load(f)
        except (OSError, ValueError):
            out[side] = {}
        out[side]["acked_file"] = acked
    return out


def phase_figures(rep):
    f = {}
    for side, r in rep.items():
        c = r.get("counters", {})
        # closed loop: the uncorrected histogram is the one measured (µs → ms)
        u = ((r.get("latency_us") or {}).get("uncorrected")) or {}
        lat = {k: round(u[k] / 1000, 1) for k in ("p50", "p99", "p999", "max") if isinstance(u.get(k), (int, float))}
        f[side] = {
            "acked": c.get("documents_ok"),
            "rate": (r.get("rates") or {}).get("achieved"),
            "timeouts": c.get("timeouts"),
            "refusals": c.get("refusals"),
            "io_errors": c.get("io_errors"),
            "resends": c.get("resends"),
            "gave_up": c.get("gave_up"),
            "mismatches": r.get("mismatches_total"),
            "latency_ms": lat,
        }
    return f


def acked_docs(reports):
    docs = {}
    for rep in reports:
        for side in rep.values():
            try:
                with open(side["acked_file"]) as f:
                    for line in f:
                        fn, fd, raw, ack = line.rstrip("\n").split("\t")
                        key = (fn, int(fd))
                        if key in docs and docs[key] != (raw, ack):
                            docs[key] = ("conflict", "conflict")
                        else:
                            docs[key] = (raw, ack)
            except OSError:
                pass
    return docs


def verify(docs, gws):
    """Every acknowledged document readable through each gateway, byte-identical."""
    import hashlib

    def one(item):
        (fn, fd), (raw, ack) = item
        bad = []
        for gw in gws:
            st, body = http("GET", f"http://127.0.0.1:{GW[gw]['admin']}/v1/documents/{fn}/{fd}")
            if st != 200:
                bad.append(f"{gw}:{st}")
                continue
            d = json.loads(body)
            got_raw = hashlib.sha256(bytes.fromhex(d["raw_hex"])).hexdigest()
            got_ack = hashlib.sha256(bytes.fromhex(d["ack_hex"])).hexdigest()
            if (got_raw, got_ack) != (raw, ack):
                bad.append(f"{gw}:differs")
        return (fn, fd, bad)

    with ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, docs.items()))
    return [r for r in results if r[2]]


def get_pages(url):
    """Every item of a paged admin API listing."""
    import urllib.parse
    items, cursor = [], None
    while True:
        st, body = http("GET", url + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
        if st != 200:
            raise RuntimeError(f"GET {url}: HTTP {st} {body[:200]!r}")
        page = json.loads(body)
        items += page.get("items", [])
        cursor = page.get("next")
        if not cursor:
            return items


def derived_gaps(docs, gw):
    """Acknowledged documents missing from the derived views read through `gw`: each
    register's time index (`/v1/documents?rnm=`) and its activity count (`documents`
    of `/v1/registers/{rnm}`, which counts every stored document of the register)."""
    by_fn = {}
    for fn, fd in docs:
        by_fn.setdefault(fn, set()).add(fd)
    base = f"http://127.0.0.1:{GW[gw]['admin']}"
    regs = [i.get("register", i) for i in get_pages(f"{base}/v1/registers?limit=1000")]

    def one(reg):
        rnm = reg["rnm"]
        want = by_fn.get(reg.get("fn_number"), set())
        indexed = {d["fd"] for d in get_pages(f"{base}/v1/documents?rnm={rnm}&limit=1000")
                   if d.get("fn_number") == reg.get("fn_number")}
        st, body = http("GET", f"{base}/v1/registers/{rnm}")
        counted = (json.loads(body).get("activity") or {}).get("documents", 0) if st == 200 else -1
        return {"rnm": rnm, "not_indexed": len(want - indexed), "acked": len(want), "counted": counted}

    with ThreadPoolExecutor(8) as ex:
        rows = list(ex.map(one, regs))
    return [r for r in rows if r["not_indexed"] or r["counted"] < r["acked"]]


def main():
    global TOKEN_SHA
    import hashlib
    TOKEN_SHA = hashlib.sha256(TOKEN.encode()).hexdigest()
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    summary = {"out": OUT, "registers": REGISTERS, "phases": {}}
    t_all = time.monotonic()
    log(f"results in {OUT}")
    log("starting a 3-node CQL cluster (Apache Cassandra) on 127.0.0.21-23")
    cql("start", "3", "--wipe")
    with open(os.path.join(OUT, "gw-a.toml"), "w") as f:
        f.write(gateway_config("a"))
    r = subprocess.run([os.path.join(BIN, "gateway"), "--config", os.path.join(OUT, "gw-a.toml"), "migrate"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"migrate failed: {r.stderr}")
    log(r.stdout.strip())
    spawn("fns-receiver", [os.path.join(BIN, "fns-receiver"), "--listen", f"127.0.0.1:{RECEIVER}",
                           "--data", os.path.join(OUT, "fns-receiver.jsonl")])
    wait("the FNS receiver", lambda: http("GET", f"http://127.0.0.1:{RECEIVER}/stats", token=None)[0] == 200, 30)
    gws = {"a": start_gateway("a"), "b": start_gateway("b")}
    log("onboarding registers through gateway a's admin API")
    r = subprocess.run([os.path.join(BIN, "loadgen"), "onboard", "--count", str(REGISTERS),
                        "--admin", f"http://127.0.0.1:{GW['a']['admin']}", "--admin-token", TOKEN],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"onboarding failed: {r.stderr}{r.stdout}")
    st, _ = http("POST", f"http://127.0.0.1:{GW['a']['admin']}/v1/alerts/rules",
                 {"name": "silent-1h", "condition": {"kind": "silent", "for_secs": 3600}, "severity": "warning"})
    log(f"alert rule created: HTTP {st}")
    time.sleep(3)  # the other gateway's register index refresh
    reports = []

    # Each phase's FDs start 5,000 above the previous phase's start: far more than a
    # register sends in a phase, and well within what a register's activity remembers
    # (FdLedger keeps the last 10,000 missing FDs; a jump beyond that forgets the oldest
    # gaps, and a document derived later from inside a forgotten gap is not counted).

    # 0. warm-up (the JVMs compile, the onboarding's memtables flush): its acks are
    # verified like all others, its rates are not reported as steady
    log(f"phase warmup: {PHASE['warmup']} s")
    rep = run_phase("warmup", PHASE["warmup"], 1, [])
    reports.append(rep)
    summary["phases"]["warmup"] = phase_figures(rep)

    # 1. steady load
    log(f"phase steady: {PHASE['steady']} s")
    rep = run_phase("steady", PHASE["steady"], 5_001, [])
    reports.append(rep)
    summary["phases"]["steady"] = phase_figures(rep)

    # 2. one DB node of three SIGKILLed mid-load: acks go on
    log(f"phase one_down: {PHASE['one_down']} s, node 3 SIGKILLed after 5 s")
    rep = run_phase("one_down", PHASE["one_down"], 10_001, [(5, lambda: (cql("kill", "3"), log("killed DB node 3")))])
    reports.append(rep)
    summary["phases"]["one_down"] = phase_figures(rep)
    cql("restart", "3")
    log("DB node 3 back")

    # 3. a second node lost: no quorum, no acks, readiness false; then both back
    events = []
    quorum = {}

    def lose_quorum():
        cql("kill", "2")
        cql("kill", "3")
        quorum["lost_at"] = time.monotonic()
        quorum["acked_before"] = sum(metric(g, "ofd_gateway_documents_acknowledged_total") or 0 for g in "ab")
        log("killed DB nodes 2 and 3: no quorum")

    def observe():
        t = time.monotonic()
        quorum["readyz_false_s"] = {
            g: round(wait(f"gateway {g} not ready", lambda g=g: not ready(g), 30), 1) for g in "ab"}
        # a write the replicas had taken before the kill may still be acknowledged: wait
        # out the client timeout (3 s) before counting
        time.sleep(max(0.0, quorum["lost_at"] + 4 - time.monotonic()))
        quorum["acked_during"] = sum(metric(g, "ofd_gateway_documents_acknowledged_total") or 0 for g in "ab")
        quorum["storage_errors"] = sum(metric(g, "ofd_gateway_storage_errors_total") or 0 for g in "ab")
        log(f"without a quorum: readyz false after {quorum['readyz_false_s']} s")
        _ = t

    def regain():
        quorum["acked_end_of_outage"] = sum(metric(g, "ofd_gateway_documents_acknowledged_total") or 0 for g in "ab")
        # node 2 back is a quorum again (2 of 3); node 3 follows once acks have resumed
        cql("restart", "2")
        back = time.monotonic()
        quorum["quorum_back_after_s"] = round(back - quorum["lost_at"], 1)
        before = sum(metric(g, "ofd_gateway_documents_acknowledged_total") or 0 for g in "ab")
        quorum["acks_resumed_s"] = round(wait("acks resuming", lambda: sum(
            metric(g, "ofd_gateway_documents_acknowledged_total") or 0 for g in "ab") > before + 10, 120), 1)
        quorum["ready_again_s"] = round(wait("readiness back", lambda: all(ready(g) for g in "ab"), 120), 1)
        log(f"quorum back: acks resumed {quorum['acks_resumed_s']} s after node 2 was up")
        cql("restart", "3")
        log("DB node 3 back")

    events = [(5, lose_quorum), (6, observe), (5 + OUTAGE, regain)]
    log(f"phase quorum_lost: {PHASE['quorum_lost']} s, nodes 2 and 3 SIGKILLed after 5 s, back after {OUTAGE} s")
    rep = run_phase("quorum_lost", PHASE["quorum_lost"], 15_001, events)
    reports.append(rep)
    summary["phases"]["quorum_lost"] = phase_figures(rep)
    # acks during the outage beyond those in flight at the kill would be acks without a quorum
    quorum["acked_without_quorum"] = quorum["acked_end_of_outage"] - quorum["acked_during"]
    summary["quorum_lost"] = quorum

    # 4. a gateway SIGKILLed: the other takes its background work over
    takeover = {}

    def kill_gateway():
        takeover["fns_before"] = metric("b", "ofd_gateway_fns_partitions_leased")
        takeover["derive_before"] = metric("b", "ofd_storage_journal_partitions", {"follower": "derive"})
        takeover["evals_before"] = metric("b", "ofd_gateway_alert_evaluations_total")
        os.killpg(gws["a"].pid, signal.SIGKILL)
        takeover["killed_at"] = time.monotonic()
        log("gateway a SIGKILLed")
        # a resend job, created on the surviving node while the runner lease may still be a's
        _, regs = http("GET", f"http://127.0.0.1:{GW['b']['admin']}/v1/registers?limit=1")
        rnm = json.loads(regs or b"{}").get("items", [{}])[0].get("rnm")
        st, body = http("POST", f"http://127.0.0.1:{GW['b']['admin']}/v1/resend",
                        {"rnm": rnm, "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
        takeover["resend_create"] = st
        takeover["resend_job"] = json.loads(body).get("id") if st in (200, 201) else body.decode()[:300]

    def watch_takeover():
        # each duty's takeover time is measured on its own (watched together, not one
        # after the other)
        k = takeover["killed_at"]
        conds = {
            "fns_s": lambda: (metric("b", "ofd_gateway_fns_partitions_leased") or 0) >= 64,
            "derive_s": lambda: (metric("b", "ofd_storage_journal_partitions", {"follower": "derive"}) or 0) >= 64,
            "alerts_s": lambda: (metric("b", "ofd_gateway_alert_evaluations_total") or 0)
            > (takeover["evals_before"] or 0) + 1,
        }
        job = takeover.get("resend_job")
        if isinstance(job, str) and len(job) == 36:
            def resend_done():
                st, body = http("GET", f"http://127.0.0.1:{GW['b']['admin']}/v1/resend/{job}")
                return st == 200 and json.loads(body).get("state") in ("completed", "failed", "cancelled")
            conds["resend_s"] = resend_done
        deadline = time.monotonic() + 180
        while conds and time.monotonic() < deadline:
            for name, cond in list(conds.items()):
                if cond():
                    takeover[name] = round(time.monotonic() - k, 1)
                    del conds[name]
            time.sleep(0.25)
        if conds:
            raise SystemExit(f"gateway b did not take over within 180 s: {sorted(conds)}")
        log(f"takeover: FNS {takeover.get('fns_s')} s, deriver {takeover.get('derive_s')} s, "
            f"alerts {takeover.get('alerts_s')} s, resend {takeover.get('resend_s')} s")

    log(f"phase gateway_killed: {PHASE['gateway_killed']} s, gateway a SIGKILLed after 5 s")
    rep = run_phase("gateway_killed", PHASE["gateway_killed"], 20_001, [(5, kill_gateway), (5.5, watch_takeover)])
    reports.append(rep)
    summary["phases"]["gateway_killed"] = phase_figures(rep)
    summary["takeover"] = {k: v for k, v in takeover.items() if k != "killed_at"}
    gws["a"] = start_gateway("a")
    log("gateway a restarted")

    # 5. what was acknowledged is stored, byte-identical, through both gateways; FNS has it
    docs = acked_docs(reports)
    conflicts = [k for k, v in docs.items() if v[0] == "conflict"]
    log(f"verifying {len(docs)} acknowledged documents through both gateways")
    bad = verify(docs, ["a", "b"])
    st, _ = http("GET", f"http://127.0.0.1:{GW['b']['admin']}/v1/fns")

    def fns_caught_up():
        s = json.loads(http("GET", f"http://127.0.0.1:{RECEIVER}/stats", token=None)[1] or b"{}")
        return s.get("unique", 0) >= len(docs)
    try:
        wait("the FNS receiver holding every acknowledged document", fns_caught_up, 300, step=1)
    except SystemExit as e:
        log(str(e))
    stats = json.loads(http("GET", f"http://127.0.0.1:{RECEIVER}/stats", token=None)[1] or b"{}")

    # the derived views (time index, activity) hold every acknowledged document, including
    # those whose derived writes gateway a's SIGKILL interrupted (given the settle time)
    gaps = []
    for _ in range(12):
        gaps = derived_gaps(docs, "b")
        if not gaps:
            break
        time.sleep(5)
    log(f"derived views: {len(gaps)} register(s) with acknowledged documents missing")

    def at_receiver(key):
        fn, fd = key
        return http("GET", f"http://127.0.0.1:{RECEIVER}/documents/{fn}/{fd}", token=None)[0] == 200
    with ThreadPoolExecutor(16) as ex:
        missing_fns = [k for k, ok in zip(docs, ex.map(at_receiver, docs)) if not ok]
    summary.update({
        "acked": len(docs),
        "lost": len(bad),
        "lost_examples": bad[:10],
        "conflicting_acks_seen": len(conflicts),
        "fns_unique": stats.get("unique"),
        "fns_duplicates": stats.get("duplicates"),
        "fns_missing": len(missing_fns),
        "derived_gaps": len(gaps),
        "derived_gap_examples": gaps[:5],
        "wall_s": round(time.monotonic() - t_all, 1),
    })
    ok = not bad and not conflicts and not missing_fns and not gaps and quorum.get("acked_without_quorum", 1) <= 0
    summary["ok"] = ok
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    q = summary["quorum_lost"]
    t = summary["takeover"]
    print(f"\nSUMMARY acked={len(docs)} lost={len(bad)} fns_missing={len(missing_fns)} "
          f"fns_duplicates={stats.get('duplicates')} derived_gaps={len(gaps)} acked_without_quorum={q.get('acked_without_quorum')} "
          f"takeover_s(fns/derive/alerts/resend)={t.get('fns_s')}/{t.get('derive_s')}/{t.get('alerts_s')}/{t.get('resend_s')} "
          f"{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def cleanup():
    for name, p in reversed(started):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 20
    for name, p in started:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    subprocess.run([os.path.join(ROOT, "scripts", "cql-cluster.sh"), "stop"], env=CQL_ENV,
                   capture_output=True, text=True)


def run_script(main_fn):
    """Runs `main_fn` and exits with its code, always through `cleanup()`, which stops
    everything this script started — also when stopped by a signal (SIGINT included: a
    script started in the background has it ignored otherwise)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda n, _f: sys.exit(128 + n))
    rc = 1
    try:
        rc = main_fn()
    finally:
        cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    run_script(main)
