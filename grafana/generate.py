#!/usr/bin/env python3
"""Generates the Grafana dashboards of the OFD gateway (grafana/dashboards/*.json) and the
list of "traffic" panels (grafana/traffic-panels.yml).

    python3 grafana/generate.py          # rewrite the files
    python3 grafana/generate.py --check  # exit 1 when the committed files are stale

The JSON files are what Grafana loads (provisioning, see grafana/README.md) and what the
tests read: tests/tests/observability.rs runs every expression of every panel through a
real Prometheus scraping a gateway under loadgen traffic. Edit this script, not the JSON,
then run it. Only the Python standard library is used.

Conventions of every panel: a description saying what it shows and how to read it, a
unit (base units: seconds, bytes, 0..1 ratios; rates per second), the data source and
job/instance template variables, and `$__rate_interval` for rate windows. Metric names
must exist in the catalogue (gateway/src/metrics.rs); a test checks it.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "dashboards")
TRAFFIC_FILE = os.path.join(HERE, "traffic-panels.yml")

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'
RI = "$__rate_interval"

# units (Grafana unit ids; `suffix:` units are shown as "<value> <suffix>")
DOCS_PER_S = "suffix:docs/s"
CONN_PER_S = "suffix:conn/s"
PER_S = "suffix:/s"
SECONDS = "s"
BYTES = "bytes"
BYTES_PER_S = "Bps"
RATIO = "percentunit"
COUNT = "short"


def sel(extra=""):
    return "{" + SEL + ("," + extra if extra else "") + "}"


def rate(metric, extra="", by=None, fn="rate"):
    inner = f"{fn}({metric}{sel(extra)}[{RI}])"
    if by is None:
        return f"sum({inner})"
    return f"sum by ({by}) ({inner})"


def quantile(q, histogram, by=None, extra=""):
    labels = "le" if not by else f"{by}, le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket{sel(extra)}[{RI}])))"


def target(expr, legend="__auto", fmt=None):
    t = {"expr": expr, "legendFormat": legend}
    if fmt:
        t["format"] = fmt
    return t


class Dashboard:
    def __init__(self, uid, title, description):
        self.uid = uid
        self.title = title
        self.description = description
        self.panels = []
        self.traffic = {}
        self._x = 0
        self._y = 0
        self._row_h = 0

    def _place(self, w, h):
        if self._x + w > 24:
            self._x = 0
            self._y += self._row_h
            self._row_h = 0
        pos = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        self._row_h = max(self._row_h, h)
        return pos

    def _add(self, panel, traffic):
        titles = [p["title"] for p in self.panels]
        assert panel["title"] not in titles, f"{self.uid}: duplicate title {panel['title']}"
        assert panel["description"].strip(), panel["title"]
        panel["id"] = len(self.panels) + 1
        panel["datasource"] = DS
        for i, t in enumerate(panel["targets"]):
            t["refId"] = chr(ord("A") + i)
            t["datasource"] = DS
            t.setdefault("range", True)
            t.setdefault("instant", False)
            t["editorMode"] = "code"
        self.panels.append(panel)
        if traffic:
            assert traffic in ("nonzero", "nonempty"), traffic
            self.traffic[panel["title"]] = traffic

    def stat(self, title, description, unit, targets, traffic=None, w=6, h=4, thresholds=None, mappings=None,
             decimals=None):
        defaults = {
            "unit": unit,
            "color": {"mode": "thresholds"},
            "thresholds": {"mode": "absolute", "steps": thresholds or [{"color": "green", "value": None}]},
            "mappings": mappings or [],
        }
        if decimals is not None:
            defaults["decimals"] = decimals
        self._add({
            "type": "stat",
            "title": title,
            "description": description,
            "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
            },
            "targets": targets,
        }, traffic)

    def ts(self, title, description, unit, targets, traffic=None, w=12, h=8, stack=False, min0=True,
           thresholds=None):
        custom = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if stack else 8,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "axisSoftMin": 0 if min0 else None,
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        }
        if not min0:
            del custom["axisSoftMin"]
        self._add({
            "type": "timeseries",
            "title": title,
            "description": description,
            "gridPos": self._place(w, h),
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "custom": custom,
                    "color": {"mode": "palette-classic"},
                    "thresholds": {"mode": "absolute",
                                   "steps": thresholds or [{"color": "green", "value": None}]},
                },
                "overrides": [],
            },
            "options": {
                "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"],
                           "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
            "targets": targets,
        }, traffic)

    def heatmap(self, title, description, histogram, traffic=None, w=12, h=8):
        self._add({
            "type": "heatmap",
            "title": title,
            "description": description,
            "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": {"unit": SECONDS, "custom": {"hideFrom": {"legend": False, "tooltip": False,
                                                                                  "viz": False}}},
                            "overrides": []},
            "options": {
                "calculate": False,
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential", "exponent": 0.5,
                          "steps": 64, "fill": "dark-orange", "reverse": False},
                "yAxis": {"unit": SECONDS, "axisPlacement": "left"},
                "rowsFrame": {"layout": "auto"},
                "filterValues": {"le": 1e-9},
                "legend": {"show": True},
                "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
            },
            "targets": [target(f"sum by (le) (increase({histogram}_bucket{sel()}[{RI}]))", "{{le}}", "heatmap")],
        }, traffic)

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["ofd", "gateway"],
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "links": [{"title": "OFD dashboards", "type": "dashboards", "tags": ["ofd"], "asDropdown": True,
                       "includeVars": True, "keepTime": True, "icon": "external link", "tooltip": "",
                       "url": "", "targetBlank": False}],
            "templating": {"list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                 "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
                 "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": "",
                 "skipUrlSync": False},
                {"name": "job", "label": "Job", "type": "query", "datasource": DS,
                 "definition": "label_values(ofd_gateway_build_info, job)",
                 "query": {"query": "label_values(ofd_gateway_build_info, job)", "refId": "job"},
                 "current": {"selected": False, "text": "ofd-gateway", "value": "ofd-gateway"},
                 "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 2, "regex": "",
                 "skipUrlSync": False, "sort": 1},
                {"name": "instance", "label": "Node", "type": "query", "datasource": DS,
                 "definition": 'label_values(ofd_gateway_build_info{job=~"$job"}, instance)',
                 "query": {"query": 'label_values(ofd_gateway_build_info{job=~"$job"}, instance)',
                           "refId": "instance"},
                 "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                 "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [], "refresh": 2,
                 "regex": "", "skipUrlSync": False, "sort": 1},
            ]},
            "panels": self.panels,
        }


# ------------------------------------------------------------------------------ ingest

def ingest():
    d = Dashboard("ofd-ingest", "OFD gateway — ingest (RED)",
                  "Documents from registers: rate, acceptance and rejection by reason, acknowledgment latency "
                  "(from a whole message read to its acknowledgment written, durable write included), "
                  "retransmissions. One series per cluster unless the title says per node. Panels listed in "
                  "grafana/traffic-panels.yml must show data under loadgen traffic (tested).")
    acc = "ofd_gateway_documents_acknowledged_total"
    ack_lat = "ofd_gateway_ack_latency_seconds"
    rejected = (f"(({rate('ofd_gateway_documents_refused_total')} or vector(0))"
                " + (" + rate(acc, 'code!="0"') + " or vector(0))"
                f" + ({rate('ofd_gateway_protocol_errors_total')} or vector(0)))")
    attempted = (f"(({rate('ofd_gateway_documents_received_total')} or vector(0))"
                 f" + ({rate('ofd_gateway_protocol_errors_total')} or vector(0)))")
    ratio = f"{rejected} / {attempted}"

    d.stat("Documents received", "Intact documents received per second, all selected nodes (retransmissions "
           "included).", DOCS_PER_S, [target(rate("ofd_gateway_documents_received_total"), "received")],
           traffic="nonzero")
    d.stat("Accepted", "Documents acknowledged with response code 0 per second (stored durably first).",
           DOCS_PER_S, [target(rate(acc, 'code="0"'), "accepted")], traffic="nonzero")
    d.stat("Rejection ratio", "Share of documents not accepted: refused without an acknowledgment (unknown FN, "
           "suspended, tariff expired, replaced FN), answered with error code 11/14, or malformed (connection "
           "closed). Alert OfdGatewayRejectionRatioHigh fires above 5% for 10 minutes.", RATIO,
           [target(ratio, "rejected")], traffic="nonzero",
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.02},
                       {"color": "red", "value": 0.05}])
    d.stat("Ack latency p99", "99th percentile of the acknowledgment latency over the selected nodes. Target: "
           "5 ms at half the peak rate; alert OfdGatewayAckLatencyHigh above 250 ms.", SECONDS,
           [target(quantile(0.99, ack_lat), "p99")], traffic="nonempty",
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                       {"color": "red", "value": 0.25}])

    d.ts("Document outcomes", "What happened to each document per second: accepted (code 0), stored and answered "
         "with an error code (11 not recognised, 14 format-logic error), answered with the stored acknowledgment "
         "(retransmission), refused without an answer, malformed (connection closed).", DOCS_PER_S, [
             target(rate(acc, 'code="0"'), "accepted"),
             target(rate(acc, 'code!="0"'), "error code (11/14)"),
             target(rate("ofd_gateway_duplicates_total"), "retransmission"),
             target(rate("ofd_gateway_documents_refused_total"), "refused"),
             target(rate("ofd_gateway_protocol_errors_total"), "malformed"),
         ], traffic="nonzero", stack=True)
    d.ts("Rejection ratio over time", "Rejected share of documents (see the stat above for the definition); the "
         "red line is the alert threshold.", RATIO, [target(ratio, "rejected")], traffic="nonzero",
         thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.05}])
    d.ts("Documents received by type", "Intact documents per second by document type (receipt, shift_open, "
         "shift_close, registration, state_report, ...; `other` for the rest; the values are listed in "
         "docs/metrics.md).", DOCS_PER_S,
         [target(rate("ofd_gateway_documents_received_total", by="doc_type"), "{{doc_type}}")],
         traffic="nonzero", stack=True)
    d.ts("Acknowledgments by response code", "Acknowledgments sent per second by response code (0 accepted, 11 "
         "not recognised, 14 format-logic error).", DOCS_PER_S,
         [target(rate(acc, by="code"), "code {{code}}")], traffic="nonzero", stack=True)
    d.ts("Refused documents by reason", "Documents refused without an acknowledgment per second, by reason. "
         "unknown_fn: an FN no register owns (see the onboarding backlog: adminctl backlog); "
         "register_suspended, tariff_expired, fn_replaced: admin decisions.", DOCS_PER_S,
         [target(rate("ofd_gateway_documents_refused_total", by="reason"), "{{reason}}")], traffic="nonzero",
         stack=True)
    d.ts("Malformed messages by error", "Messages that closed the connection without an answer, per second, by "
         "error code (bad signature, CRC mismatch, lengths beyond limits, truncated).", PER_S,
         [target(rate("ofd_gateway_protocol_errors_total", by="code"), "{{code}}")], traffic="nonzero",
         stack=True)
    d.ts("Format-logic errors by error", "Documents stored and answered with code 11 or 14 per second, by the "
         "validation error found.", DOCS_PER_S,
         [target(rate("ofd_gateway_flk_errors_total", by="code"), "{{code}}")], traffic="nonzero", stack=True)
    d.ts("Retransmissions", "Documents whose (FN, FD) was already stored, per second: identical (the stored "
         "acknowledgment re-sent byte for byte) or conflict (different content under a used number; the "
         "original is kept and logged).", DOCS_PER_S,
         [target(rate("ofd_gateway_duplicates_total", by="kind"), "{{kind}}")], traffic="nonzero")
    d.ts("Ack latency percentiles", "Acknowledgment latency percentiles over the selected nodes, from the "
         "histogram (buckets 100 µs .. 10 s).", SECONDS, [
             target(quantile(0.5, ack_lat), "p50"),
             target(quantile(0.9, ack_lat), "p90"),
             target(quantile(0.99, ack_lat), "p99"),
             target(quantile(0.999, ack_lat), "p99.9"),
         ], traffic="nonempty",
         thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.25}])
    d.ts("Ack latency p99 by node and transport", "99th percentile of the acknowledgment latency per node and "
         "transport: a single slow node points at its storage or CPU.", SECONDS,
         [target(quantile(0.99, ack_lat, by="instance, transport"), "{{instance}} {{transport}}")],
         traffic="nonempty")
    d.heatmap("Ack latency distribution", "Acknowledgments per latency bucket over time (all selected nodes).",
              ack_lat, traffic="nonempty")
    d.ts("Documents received per node", "Intact documents per second per node: the balancer's share of each "
         "node.", DOCS_PER_S,
         [target(rate("ofd_gateway_documents_received_total", by="instance"), "{{instance}}")],
         traffic="nonzero")
    d.ts("Unknown-FN attempts", "Messages per second from FNs that belong to no register (refused). A burst "
         "after a sale campaign means registers waiting for onboarding: adminctl backlog.", PER_S,
         [target(rate("ofd_gateway_unknown_fn_attempts_total"), "unknown FN")], traffic="nonzero")
    d.ts("Register index", "FNs in the in-memory register index of each node; all nodes converge within "
         "ingest.registry_refresh of an admin change.", COUNT,
         [target(f"max by (instance) (ofd_gateway_registry_fns{sel()})", "{{instance}}")], traffic="nonzero")
    d.ts("Register index refresh failures", "Failed refreshes of the register index from storage per second, "
         "per node: a node that cannot refresh misses other nodes' register changes.", PER_S,
         [target(rate("ofd_gateway_registry_refreshes_total", 'result!="ok"', by="instance"), "{{instance}}")])
    return d


# ------------------------------------------------------------------------------ connections

def connections():
    d = Dashboard("ofd-connections", "OFD gateway — connections (USE)",
                  "Register connections by transport (tcp, tls, quic): utilisation (open), throughput (accepts, "
                  "bytes), errors and saturation (closes by reason, handshake failures, shed connections). "
                  "Panels listed in grafana/traffic-panels.yml must show data under loadgen traffic (tested).")
    closed = "ofd_gateway_connections_closed_total"
    d.stat("Open connections", "Register connections open now on the selected nodes (all transports).", COUNT,
           [target(f"sum(ofd_gateway_connections_open{sel()})", "open")], traffic="nonzero")
    d.stat("Accepts", "Connections accepted per second on the selected nodes.", CONN_PER_S,
           [target(rate("ofd_gateway_connections_accepted_total"), "accepted")], traffic="nonzero")
    d.stat("Shed connections", "Connections closed at accept because the node is at its connection limit "
           "(limits.max_connections, derived from the file limit). Anything above 0 means the cluster needs "
           "another node.", CONN_PER_S, [target(rate(closed, 'reason="shed_connections"') + " or vector(0)",
                                                "shed")],
           thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.001}])
    d.stat("Handshake failures", "TLS/QUIC handshakes per second that failed or timed out.", PER_S,
           [target(rate("ofd_gateway_handshakes_total", 'result!="ok"') + " or vector(0)", "failed")],
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}])
    d.ts("Open connections by transport", "Open register connections by transport (selected nodes).", COUNT,
         [target(f"sum by (transport) (ofd_gateway_connections_open{sel()})", "{{transport}}")],
         traffic="nonzero", stack=True)
    d.ts("Open connections per node", "Open register connections per node: an even spread is what the "
         "balancer should produce.", COUNT,
         [target(f"sum by (instance) (ofd_gateway_connections_open{sel()})", "{{instance}}")], traffic="nonzero")
    d.ts("Accepted connections by transport", "Connections accepted per second by transport. Most registers "
         "connect once per document, so this follows the document rate.", CONN_PER_S,
         [target(rate("ofd_gateway_connections_accepted_total", by="transport"), "{{transport}}")],
         traffic="nonzero", stack=True)
    d.ts("Closed connections by reason", "Connections closed per second by reason: client_closed and probe are "
         "normal; idle_timeout, frame_timeout, write_timeout, protocol_error, refusals (unknown_fn, ...), "
         "storage_error/_timeout, handshake_*, shed_connections are not.", CONN_PER_S,
         [target(rate(closed, by="reason"), "{{reason}}")], traffic="nonzero", stack=True)
    d.ts("Abnormal closes by transport and reason", "Closes per second other than client_closed, probe and "
         "shutdown, by transport and reason.", CONN_PER_S,
         [target(rate(closed, 'reason!~"client_closed|probe|shutdown"', by="transport, reason"),
                 "{{transport}} {{reason}}")], traffic="nonzero")
    d.ts("Handshakes by result", "TLS and QUIC handshakes per second by transport and result (ok, timeout, "
         "failed).", PER_S,
         [target(rate("ofd_gateway_handshakes_total", by="transport, result"), "{{transport}} {{result}}")],
         traffic="nonzero")
    hs = "ofd_gateway_handshake_seconds"
    d.ts("Handshake latency", "Successful TLS/QUIC handshake duration by transport (p50, p99), measured inside "
         "the connection task under limits.handshake_timeout.", SECONDS, [
             target(quantile(0.5, hs, by="transport"), "{{transport}} p50"),
             target(quantile(0.99, hs, by="transport"), "{{transport}} p99"),
         ], traffic="nonempty")
    d.ts("Bytes received", "Bytes of messages read from registers per second, by transport.", BYTES_PER_S,
         [target(rate("ofd_gateway_received_bytes_total", by="transport"), "{{transport}}")], traffic="nonzero",
         stack=True)
    d.ts("Bytes sent", "Bytes of replies written to registers per second, by transport.", BYTES_PER_S,
         [target(rate("ofd_gateway_sent_bytes_total", by="transport"), "{{transport}}")], traffic="nonzero",
         stack=True)
    d.ts("Pings", "Header-only messages (pings) answered per second, by transport.", PER_S,
         [target(rate("ofd_gateway_pings_total", by="transport"), "{{transport}}")])
    d.ts("Buffered message bytes", "Bytes of message buffers held by connections per node (bounded by "
         "limits.max_buffered_bytes; reads wait when it is reached). Only messages that arrive in several reads "
         "are counted, so a node whose messages all arrive whole shows no data.", BYTES,
         [target(f"max by (instance) (ofd_gateway_buffered_bytes{sel()})", "{{instance}}")])
    return d


# ------------------------------------------------------------------------------ storage

def storage():
    d = Dashboard("ofd-storage", "OFD gateway — storage",
                  "The durable write behind every acknowledgment: group commits of the embedded store (batch "
                  "size, write+sync latency, queue depth), documents waiting, errors, the poisoned state, free disk "
                  "space; cluster-backend (ScyllaDB) operation latency. Panels listed in grafana/traffic-panels.yml "
                  "must show data under loadgen traffic (tested).")
    batch = "ofd_storage_commit_batch_documents"
    commit = "ofd_storage_commit_seconds"
    d.stat("Poisoned stores", "Nodes whose store is poisoned by a durability failure (a failed sync). Such a "
           "node stops acknowledging, fails readiness and exits; alert OfdStoragePoisoned.", COUNT,
           [target(f"sum(max by (instance) (ofd_storage_poisoned{sel()}))", "poisoned")], traffic="nonempty",
           thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
           mappings=[{"type": "value", "options": {"0": {"text": "none", "color": "green"}}}])
    d.stat("Commit p99", "99th percentile of one group commit (write and sync).", SECONDS,
           [target(quantile(0.99, commit), "p99")], traffic="nonempty")
    d.stat("Mean batch", "Mean documents per group commit over the selected nodes: larger batches mean one "
           "sync serves many acknowledgments.", COUNT,
           [target(f"{rate(batch + '_sum')} / {rate(batch + '_count')}", "mean")], traffic="nonempty", decimals=1)
    d.stat("Storage errors", "Storage failures on the ingest path per second (nothing acknowledged; the "
           "register retries).", PER_S, [target(f"{rate('ofd_gateway_storage_errors_total')} or vector(0)",
                                                 "errors")],
           thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.001}])
    d.ts("Group-commit batch size", "Documents per group commit (p50, p99 from the histogram) and the mean.",
         COUNT, [
             target(quantile(0.5, batch), "p50"),
             target(quantile(0.99, batch), "p99"),
             target(f"{rate(batch + '_sum')} / {rate(batch + '_count')}", "mean"),
         ], traffic="nonzero")
    d.ts("Group commits", "Group commits per second per node (each is one durable sync).", PER_S,
         [target(rate(commit + "_count", by="instance"), "{{instance}}")], traffic="nonzero")
    d.ts("Commit latency (write + sync)", "Duration of one group commit, write and sync (p50, p99, p99.9). "
         "It is the floor of the acknowledgment latency.", SECONDS, [
             target(quantile(0.5, commit), "p50"),
             target(quantile(0.99, commit), "p99"),
             target(quantile(0.999, commit), "p99.9"),
         ], traffic="nonempty")
    d.ts("Commit latency p99 by node", "99th percentile of the group-commit duration per node: a slow disk "
         "shows on one node.", SECONDS, [target(quantile(0.99, commit, by="instance"), "{{instance}}")],
         traffic="nonempty")
    d.ts("Commit queue depth", "Append requests waiting for the group-commit writer, per node (saturation of "
         "the writer).", COUNT,
         [target(f"max by (instance) (ofd_storage_commit_queue_depth{sel()})", "{{instance}}")],
         traffic="nonempty")
    d.ts("Documents waiting for a durable write", "Documents between validation and their durable write, per "
         "node (bounded by limits.max_inflight_documents; connections wait past it: backpressure).", COUNT,
         [target(f"max by (instance) (ofd_gateway_inflight_documents{sel()})", "{{instance}}")],
         traffic="nonempty")
    d.ts("Commit errors by error", "Failed group commits per second by error code.", PER_S,
         [target(rate("ofd_storage_commit_errors_total", by="error"), "{{error}}")])
    d.ts("Storage errors on the ingest path by code", "Appends that failed or timed out per second (no "
         "acknowledgment sent), by error code.", PER_S,
         [target(rate("ofd_gateway_storage_errors_total", by="code"), "{{code}}")])
    d.ts("Poisoned state by node", "1 while a node's store is poisoned.", COUNT,
         [target(f"max by (instance) (ofd_storage_poisoned{sel()})", "{{instance}}")], traffic="nonempty")
    d.ts("Free disk space", "Free space on the file system of each node's embedded store (statvfs, to "
         "unprivileged users) and its storage.min_free_space mark: below the mark the node stops acknowledging "
         "documents until space is freed (alerts OfdStorageFreeSpaceLow, OfdStorageIntakePaused). Zero with the "
         "CQL store.", BYTES, [
             target(f"min by (instance) (ofd_storage_free_bytes{sel()})", "{{instance}} free"),
             target(f"max by (instance) (ofd_storage_min_free_bytes{sel()})", "{{instance}} min_free_space"),
         ], traffic="nonempty")
    d.ts("Intake paused by node", "1 while a node's embedded store refuses new documents and admin writes for "
         "lack of disk space (below storage.min_free_space, or a journal write failed with ENOSPC until the store "
         "reopened).", COUNT,
         [target(f"max by (instance) (ofd_storage_intake_paused{sel()})", "{{instance}}")], traffic="nonempty")
    d.ts("Cluster-backend operation latency", "ScyllaDB backend: p99 duration by operation (empty with the "
         "embedded store).", SECONDS,
         [target(quantile(0.99, "ofd_storage_operation_seconds", by="op"), "{{op}} p99")])
    d.ts("Report aggregates lag by node", "Seconds since each node's report aggregates (revenue reports, shifts, "
         "FD continuity) last reflected every stored document: under load a saw-tooth up to the 5 s flush "
         "interval; a steady rise means the aggregator is stuck (alert OfdReportAggregatesLagging). Embedded "
         "store; with the CQL store see the derive follower's journal lag.", SECONDS,
         [target(f"max by (instance) (ofd_storage_report_lag_seconds{sel()})", "{{instance}}")])
    d.ts("Report aggregation errors", "Folds, scans and flushes of the report aggregator that failed and are "
         "retried (the node's log names the FN). Embedded store.", PER_S,
         [target(rate("ofd_storage_report_errors_total", by="instance"), "{{instance}}")])
    return d


# ------------------------------------------------------------------------------ FNS

def fns():
    d = Dashboard("ofd-fns", "OFD gateway — FNS delivery",
                  "Forwarding of accepted documents to the tax service (FNS): the outbox backlog and the age of "
                  "its oldest document, delivery rate and errors, request latency, receipt-to-delivery delay, "
                  "resend jobs. The backlog gauges describe the whole store, so every node reports the same "
                  "value: panels take the maximum, not the sum. Panels listed in grafana/traffic-panels.yml "
                  "must show data under loadgen traffic (tested).")
    deliveries = "ofd_gateway_fns_deliveries_total"
    d.stat("Backlog", "Documents stored but not yet delivered to the FNS (whole store).", COUNT,
           [target(f"max(ofd_gateway_fns_backlog_documents{sel()})", "backlog")], traffic="nonempty")
    d.stat("Oldest undelivered", "Age of the oldest document not yet delivered (0 when none). Alerts: "
           "OfdFnsBacklogGrowing (growing and older than 10 min), OfdFnsDeliveryStalled (older than 1 h).",
           SECONDS, [target(f"max(ofd_gateway_fns_backlog_oldest_age_seconds{sel()})", "oldest")],
           traffic="nonempty",
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 600},
                       {"color": "red", "value": 3600}])
    d.stat("Delivered", "Documents delivered to the FNS per second.", DOCS_PER_S,
           [target(rate(deliveries, 'result="delivered"'), "delivered")], traffic="nonzero")
    d.stat("Delivery error ratio", "Share of delivery attempts that failed (timeout, connect, rejected, "
           "unavailable, error); failed attempts are retried with backoff.", RATIO,
           [target("(" + rate(deliveries, 'result!="delivered"') + " or vector(0)) / " + rate(deliveries), "errors")],
           traffic="nonempty",
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                       {"color": "red", "value": 0.5}])
    d.ts("Backlog over time", "Documents waiting for FNS delivery (whole store; maximum over the nodes).", COUNT,
         [target(f"max(ofd_gateway_fns_backlog_documents{sel()})", "backlog")], traffic="nonzero")
    d.ts("Oldest undelivered age", "Age of the oldest undelivered document; the lines are the alert "
         "thresholds (10 min growing, 1 h stalled).", SECONDS,
         [target(f"max(ofd_gateway_fns_backlog_oldest_age_seconds{sel()})", "oldest")], traffic="nonempty",
         thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 600},
                     {"color": "red", "value": 3600}])
    d.ts("Delivery attempts by result", "FNS delivery attempts per second by result: delivered, or the error "
         "class (timeout, connect, rejected, unavailable, error).", PER_S,
         [target(rate(deliveries, by="result"), "{{result}}")], traffic="nonzero", stack=True)
    d.ts("Delivery errors by result", "Failed delivery attempts per second by error class, per node.", PER_S,
         [target(rate(deliveries, 'result!="delivered"', by="instance, result"), "{{instance}} {{result}}")],
         traffic="nonzero")
    req = "ofd_gateway_fns_request_seconds"
    d.ts("FNS request latency", "Duration of one delivery request by kind (forward, resend): p50 and p99.",
         SECONDS, [
             target(quantile(0.5, req, by="kind"), "{{kind}} p50"),
             target(quantile(0.99, req, by="kind"), "{{kind}} p99"),
         ], traffic="nonempty")
    delay = "ofd_gateway_fns_delivery_delay_seconds"
    d.ts("Receipt-to-delivery delay", "Time from the receipt of a document to its delivery to the FNS (p50, "
         "p99): what the tax service sees.", SECONDS, [
             target(quantile(0.5, delay), "p50"),
             target(quantile(0.99, delay), "p99"),
         ], traffic="nonempty")
    d.ts("Delivery partitions leased", "Outbox partitions whose lease each node holds; a dead node's share "
         "moves to the others after fns.lease_ttl.", COUNT,
         [target(f"max by (instance) (ofd_gateway_fns_partitions_leased{sel()})", "{{instance}}")],
         traffic="nonempty")
    d.ts("Resend jobs: documents by result", "Documents delivered again by admin resend jobs per second, by "
         "result.", DOCS_PER_S,
         [target(rate("ofd_gateway_resend_documents_total", by="result"), "{{result}}")])
    d.ts("Resend jobs finished", "Resend jobs finished per second by final state (completed, cancelled, "
         "failed).", PER_S, [target(rate("ofd_gateway_resend_jobs_finished_total", by="state"), "{{state}}")])
    return d


# ------------------------------------------------------------------------------ alerts

def alerts():
    d = Dashboard("ofd-alerts", "OFD gateway — register alerts",
                  "The platform's own alert rules about registers (silent register, FN end of life, paid period "
                  "ending, unsent backlog, FN warnings, format-logic errors): firing alerts by rule and "
                  "severity, transitions, webhook notifications, evaluations. Counts only: which registers "
                  "fire is in the admin API (adminctl alerts). One node holds the evaluation lease; panels "
                  "take the maximum over nodes. Panels listed in grafana/traffic-panels.yml must show data "
                  "under loadgen traffic (tested).")
    firing = "ofd_gateway_alerts_firing"
    d.stat("Firing alerts", "Registers with a firing alert, all rules.", COUNT,
           [target(f"sum(max by (rule, severity) ({firing}{sel()})) or vector(0)", "firing")], traffic="nonzero")
    d.stat("Critical alerts", "Registers with a firing alert of severity critical.", COUNT,
           [target("sum(max by (rule, severity) (" + firing + sel('severity="critical"') + ")) or vector(0)",
                   "critical")],
           thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}])
    d.stat("Webhook failures", "Webhook notification attempts per second that failed or were abandoned.", PER_S,
           [target(rate("ofd_gateway_alert_notifications_total", 'result!="delivered"') + " or vector(0)",
                   "failed")],
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.001}])
    d.stat("Evaluation errors", "Failed evaluations of the rules per second.", PER_S,
           [target(rate("ofd_gateway_alert_evaluations_total", 'result!="ok"') + " or vector(0)", "errors")],
           thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.001}])
    d.ts("Firing alerts by rule and severity", "Registers with a firing alert, by rule and severity.", COUNT,
         [target(f"max by (rule, severity) ({firing}{sel()})", "{{rule}} ({{severity}})")], stack=True, traffic="nonzero")
    d.ts("Alert transitions", "Alerts that started firing or resolved per second, by rule and new status.", PER_S,
         [target(rate("ofd_gateway_alert_transitions_total", by="rule, status"), "{{rule}} {{status}}")], traffic="nonzero")
    d.ts("Webhook notifications by result", "Webhook notification attempts per second by result (delivered, "
         "failed: retried with backoff, abandoned after webhook_max_attempts).", PER_S,
         [target(rate("ofd_gateway_alert_notifications_total", by="result"), "{{result}}")], traffic="nonzero")
    d.ts("Alertmanager pushes by result", "Pushes of the alert states to the Alertmanager (alerts.alertmanager_url) "
         "per second, by result; errors are logged and made up by the next push.", PER_S,
         [target(rate("ofd_gateway_alertmanager_pushes_total", by="result"), "{{result}}")])
    d.ts("Evaluations by result", "Evaluations of every enabled rule over every register, per second, by "
         "result; only the node holding the lease evaluates.", PER_S,
         [target(rate("ofd_gateway_alert_evaluations_total", by="instance, result"), "{{instance}} {{result}}")],
         traffic="nonempty")
    ev = "ofd_gateway_alert_evaluation_seconds"
    d.ts("Evaluation duration", "Duration of one evaluation of every rule over every register (p50, p99): it "
         "must stay well below alerts.interval.", SECONDS, [
             target(quantile(0.5, ev), "p50"),
             target(quantile(0.99, ev), "p99"),
         ], traffic="nonempty")
    return d


# ------------------------------------------------------------------------------ process

def process():
    d = Dashboard("ofd-process", "OFD gateway — nodes and process",
                  "Node health (scrape up, readiness, version) and process resources (CPU, resident memory, "
                  "open files against the limit, which also bounds TCP/TLS connections), plus the admin API. "
                  "Panels listed in grafana/traffic-panels.yml must show data under loadgen traffic (tested).")
    d.stat("Nodes up", "Gateway nodes Prometheus scrapes successfully.", COUNT,
           [target('sum(up{job=~"$job",instance=~"$instance"})', "up")], traffic="nonzero",
           thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])
    d.stat("Nodes ready", "Gateway nodes whose /readyz passes (started, not draining, storage healthy).", COUNT,
           [target(f"sum(ofd_gateway_ready{sel()})", "ready")], traffic="nonzero",
           thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])
    d.stat("Max file-descriptor usage", "Highest share of the file-descriptor limit in use on any node; the "
           "gateway sheds connections near it. Alert OfdGatewayFileDescriptorsNearLimit above 90%.", RATIO,
           [target(f"max(process_open_fds{sel()} / process_max_fds{sel()})", "max")], traffic="nonzero",
           thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.8},
                       {"color": "red", "value": 0.9}])
    d.stat("Versions", "Distinct gateway versions running (more than one during a rolling upgrade only).",
           COUNT, [target(f"count(count by (version) (ofd_gateway_build_info{sel()}))", "versions")],
           traffic="nonzero")
    d.ts("Up and ready by node", "Per node: 1 when Prometheus scrapes it (up) and when it is ready.", COUNT, [
        target('up{job=~"$job",instance=~"$instance"}', "{{instance}} up"),
        target(f"ofd_gateway_ready{sel()}", "{{instance}} ready"),
    ], traffic="nonzero")
    d.ts("CPU", "CPU time used per second (1 = one core busy), per node.", "percentunit",
         [target(f"rate(process_cpu_seconds_total{sel()}[{RI}])", "{{instance}}")], traffic="nonempty")
    d.ts("Resident memory", "Resident set size per node.", BYTES,
         [target(f"process_resident_memory_bytes{sel()}", "{{instance}}")], traffic="nonzero")
    d.ts("Open files vs limit", "Open file descriptors and the process limit per node. TCP/TLS connections "
         "use one each; QUIC connections share the UDP socket.", COUNT, [
             target(f"process_open_fds{sel()}", "{{instance}} open"),
             target(f"process_max_fds{sel()}", "{{instance}} limit"),
         ], traffic="nonzero")
    d.ts("File-descriptor usage", "Open file descriptors as a share of the limit per node; the red line is the "
         "alert threshold.", RATIO, [target(f"process_open_fds{sel()} / process_max_fds{sel()}", "{{instance}}")],
         traffic="nonzero", thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.9}])
    d.ts("Uptime", "Time since each node's process started (a drop is a restart).", SECONDS,
         [target(f"time() - process_start_time_seconds{sel()}", "{{instance}}")], traffic="nonzero")
    d.ts("Versions by node", "Gateway version per node (build info).", COUNT,
         [target(f"max by (instance, version) (ofd_gateway_build_info{sel()})", "{{instance}} {{version}}")],
         traffic="nonzero")
    d.ts("Admin API requests by route and status", "Admin API requests per second by route template and HTTP "
         "status.", PER_S,
         [target(rate("ofd_gateway_admin_requests_total", by="route, status"), "{{route}} {{status}}")],
         traffic="nonzero")
    d.ts("Admin API errors", "Admin API responses per second with status 5xx (server errors) and 401/403 "
         "(authentication or role refused), by route.", PER_S,
         [target(rate("ofd_gateway_admin_requests_total", 'status=~"5..|401|403"', by="route, status"),
                 "{{route}} {{status}}")])
    d.ts("Admin API failed authentications", "Failed admin authentications per second (unauthenticated: a 401) "
         "and requests refused because their address is over admin.max_auth_failures (limited: a 429).", PER_S,
         [target(rate("ofd_gateway_admin_auth_failures_total", by="result"), "{{result}}")])
    d.ts("Admin API latency", "Admin API request duration p99 by route template.", SECONDS,
         [target(quantile(0.99, "ofd_gateway_admin_request_seconds", by="route"), "{{route}} p99")],
         traffic="nonempty")
    return d


DASHBOARDS = [ingest, connections, storage, fns, alerts, process]


def render():
    files = {}
    traffic = {}
    for make in DASHBOARDS:
        d = make()
        files[os.path.join(OUT_DIR, d.uid + ".json")] = json.dumps(d.json(), indent=2, ensure_ascii=False) + "\n"
        traffic[d.uid] = d.traffic
    lines = [
        "# Generated by grafana/generate.py: do not edit.",
        "#",
        "# Panels that must show data while a gateway is under loadgen traffic. The end-to-end",
        "# test (tests/tests/observability.rs) runs a real Prometheus against a gateway under load",
        "# and, besides running every expression of every panel without error, requires of",
        "# every expression (target) of each panel listed here:",
        "#   nonempty: a series with a finite sample during the run (a gauge at 0 counts),",
        "#   nonzero:  some sample above 0 during the run.",
        "# Panels not listed may legitimately be empty on a healthy node (errors, resend jobs,",
        "# firing register alerts, the ScyllaDB backend).",
    ]
    for uid, panels in traffic.items():
        lines.append(f"{uid}:")
        for title, need in panels.items():
            lines.append(f"  {json.dumps(title, ensure_ascii=False)}: {need}")
    files[TRAFFIC_FILE] = "\n".join(lines) + "\n"
    return files


def main():
    check = "--check" in sys.argv[1:]
    files = render()
    stale = []
    for path, text in files.items():
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            stale.append(os.path.relpath(path, os.path.dirname(HERE)))
            if not check:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    known = {os.path.basename(p) for p in files if p.endswith(".json")}
    extra = [f for f in os.listdir(OUT_DIR) if f.endswith(".json") and f not in known] if os.path.isdir(
        OUT_DIR) else []
    if check:
        if stale or extra:
            print("stale: " + ", ".join(stale + extra) + " (run python3 grafana/generate.py)", file=sys.stderr)
            sys.exit(1)
        print("dashboards are up to date")
    else:
        for f in extra:
            print(f"note: grafana/dashboards/{f} is not generated by this script", file=sys.stderr)
        n = sum(len(json.loads(t)["panels"]) for p, t in files.items() if p.endswith(".json"))
        print(f"wrote {len(files) - 1} dashboards, {n} panels" + (f"; changed: {', '.join(stale)}" if stale else ""))


if __name__ == "__main__":
    main()
