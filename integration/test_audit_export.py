"""Audit exports with at-least-once delivery, and the audit service's failure modes, on the
real Envoy with the real `mcp-audit serve`: syslog into Debian's rsyslog (down for a while,
then back: nothing missing), OTLP/HTTP logs parsed by the official OpenTelemetry protobuf
schema, Splunk-HEC JSON, and the audit service killed under load while Envoy keeps serving."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harness import AuditService, Proc, add_audit_log, free_port, gateway_bootstrap, wait_until
from test_audit import AuditMcpServer, POLICY, issuer, records  # noqa: F401 - fixture re-used

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


class Rsyslog(Proc):
    """rsyslogd in the foreground with its own config: imtcp on `port` → one file, raw message."""

    def __init__(self, log_dir: Path, work: Path, port: int, name: str = "rsyslog"):
        work.mkdir(parents=True, exist_ok=True)
        self.out = work / "received.log"
        self.port = port
        conf = work / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{work}" maxMessageSize="64k")\n'
            'module(load="imtcp")\n'
            'template(name="raw" type="string" string="%rawmsg%\\n")\n'
            f'ruleset(name="audit") {{ action(type="omfile" file="{self.out}" template="raw" flushOnTXEnd="on") }}\n'
            f'input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="audit")\n'
        )
        super().__init__(name, [RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")], log_dir)
        import socket

        def up():
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True

        wait_until("rsyslog imtcp", up, proc=self)

    def seqs(self) -> list[int]:
        if not self.out.exists():
            return []
        out = []
        for line in self.out.read_text().splitlines():
            if 'seq="' in line:
                out.append(int(line.split('seq="', 1)[1].split('"', 1)[0]))
        return out


def gateway(procs, issuer, audit, concurrency=2):
    upstream = procs.add(AuditMcpServer(procs.log_dir))
    config = {"server": "py", "identity": {"providers": [issuer.provider()], "resource": issuer.audience}, "policy": POLICY}
    boot = gateway_bootstrap({"py": upstream.port, "pyaudit": upstream.port}, config, access_log=procs.log_dir / "access.log")
    add_audit_log(boot, audit.port)
    envoy = procs.envoy(boot, concurrency=concurrency)
    envoy.token = issuer.token("alice", groups=["admins"])
    return envoy


def calls(envoy, n: int, client: httpx.Client | None = None) -> list[int]:
    """`n` stateless tools/call requests (one HTTP request each); their statuses."""
    c = client or httpx.Client(timeout=10)
    h = {"Authorization": f"Bearer {envoy.token}", "content-type": "application/json", "accept": "application/json, text/event-stream"}
    out = []
    for i in range(n):
        body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "delete_branch", "arguments": {"repo": "r", "branch": str(i)}}}
        out.append(c.post(envoy.url(path="/py/mcp"), json=body, headers=h).status_code)
    return out


def envoy_completed(envoy) -> int:
    return sum(v for k, v in envoy.counters("http.").items() if k.endswith(".downstream_rq_completed") and "admin" not in k)


@pytest.mark.skipif(not os.path.exists(RSYSLOGD), reason="rsyslog not installed (.ci/run installs it)")
def test_syslog_receiver_down_then_back_loses_nothing(procs, issuer, tmp_path):
    port = free_port()
    rs = procs.add(Rsyslog(procs.log_dir, tmp_path / "rsyslog", port))
    audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit", args=["--export", f"syslog=tcp://127.0.0.1:{port}"]))
    envoy = gateway(procs, issuer, audit)

    assert set(calls(envoy, 20)) == {200}
    wait_until("rsyslog got 20 records", lambda: len(set(rs.seqs())) >= 20, proc=rs)
    rs.stop()
    assert set(calls(envoy, 30)) == {200}, "Envoy serves while the SIEM is down"
    wait_until("export notices the outage", lambda: audit.metrics().get('mcp_audit_export_failures_total{sink="syslog"}', 0) >= 1, proc=audit)
    backlog = wait_until("backlog grows", lambda: audit.metrics().get('mcp_audit_export_backlog_records{sink="syslog"}', 0) >= 30, proc=audit)
    assert backlog
    rs2 = procs.add(Rsyslog(procs.log_dir, tmp_path / "rsyslog", port, name="rsyslog-2"))
    total = envoy_completed(envoy)
    assert total == 50
    wait_until("every record delivered after the outage", lambda: set(rs2.seqs()) >= set(range(1, total + 1)), timeout=30, proc=audit)
    m = audit.metrics()
    assert m['mcp_audit_export_backlog_records{sink="syslog"}'] == 0
    assert m['mcp_audit_export_spool_full{sink="syslog"}'] == 0
    # The frames are RFC 5424: PRI, version 1, timestamp, host, app, procid, msgid, SD, JSON.
    line = next(ln for ln in rs2.out.read_text().splitlines() if 'seq="1"' in ln)
    assert line.startswith("<13") and "1 " in line[:8] and " mcp-audit " in line and "[mcp-audit@32473 " in line
    rec = json.loads(line[line.index("] ") + 2:])
    assert rec["seq"] == 1 and rec["decision"] == "deny"


def test_spool_full_metric_when_the_backlog_passes_the_bound(procs, issuer, tmp_path):
    port = free_port()  # nothing listens: the sink is down from the start
    audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit",
                                   args=["--export", f"syslog=tcp://127.0.0.1:{port}", "--spool-max-records", "5"]))
    envoy = gateway(procs, issuer, audit)
    calls(envoy, 3)
    time.sleep(0.5)
    assert audit.metrics()['mcp_audit_export_spool_full{sink="syslog"}'] == 0
    calls(envoy, 5)
    wait_until("spool full", lambda: audit.metrics()['mcp_audit_export_spool_full{sink="syslog"}'] == 1, proc=audit)
    # Nothing is dropped: the segments still hold every record.
    wait_until("all records written", lambda: len(records(audit)) == 8, proc=audit)


class _Collector(BaseHTTPRequestHandler):
    received: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        if type(self).down:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"text":"Success","code":0}' if "collector" in self.path else b"{}")


def collector():
    handler = type("H", (_Collector,), {"received": [], "down": False})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, handler


def test_otlp_logs_parse_under_the_official_schema_and_carry_the_trace(procs, issuer, tmp_path):
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    srv, h = collector()
    h.down = True  # first attempts fail: the exporter retries
    try:
        audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit", args=["--export", f"otlp=http://127.0.0.1:{srv.server_port}/v1/logs"]))
        envoy = gateway(procs, issuer, audit)
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        with httpx.Client() as c:
            c.post(envoy.url(path="/py/mcp"), headers={"Authorization": f"Bearer {envoy.token}", "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
                                                       "content-type": "application/json", "accept": "application/json, text/event-stream"},
                   json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_branch", "arguments": {"repo": "r", "branch": "b"}}})
        calls(envoy, 4)
        wait_until("failed attempts", lambda: len(h.received) >= 2, proc=audit)
        h.down = False
        got: dict[int, object] = {}

        def delivered():
            for path, headers, body in h.received:
                assert path == "/v1/logs" and headers["content-type"] == "application/json"
                doc = json.loads(body)
                # OTLP/JSON writes traceId as hex (the spec's one exception to the proto3 JSON
                # mapping, which would use base64); protobuf's parser expects base64.
                for rl in doc["resourceLogs"]:
                    for sl in rl["scopeLogs"]:
                        for lr in sl["logRecords"]:
                            if "traceId" in lr:
                                assert len(lr["traceId"]) == 32
                                lr["traceId"] = base64.b64encode(bytes.fromhex(lr["traceId"])).decode()
                req = json_format.ParseDict(doc, ExportLogsServiceRequest())  # strict: unknown fields fail
                for rl in req.resource_logs:
                    for sl in rl.scope_logs:
                        for lr in sl.log_records:
                            seq = next(a.value.int_value for a in lr.attributes if a.key == "mcp.audit.seq")
                            got[seq] = lr
            return set(got) >= set(range(1, 6))

        wait_until("OTLP delivery", delivered, timeout=30, proc=audit)
        # Two Envoy workers ship their batches independently: the traced call is not
        # necessarily seq 1. Find it by its record, then check the OTLP mapping.
        traced = [lr for lr in got.values() if json.loads(lr.body.string_value).get("trace_id") == trace]
        assert len(traced) == 1, "exactly one record carries the caller's trace"
        first = traced[0]
        assert first.trace_id.hex() == trace, "the record's trace id is the OTLP log's traceId"
        untraced = [lr for lr in got.values() if lr is not first]
        assert all(lr.trace_id.hex() != trace for lr in untraced)
        assert first.time_unix_nano > 1_700_000_000 * 10**9
        attrs = {a.key: a.value.string_value for a in first.attributes}
        assert attrs["mcp.audit.decision"] == "deny" and attrs["enduser.id"] == "alice"
    finally:
        srv.shutdown()


def test_hec_events_with_token(procs, issuer, tmp_path):
    srv, h = collector()
    try:
        audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit",
                                       args=["--export", f"hec=http://127.0.0.1:{srv.server_port}/services/collector/event", "--hec-token", "s3cr3t"]))
        envoy = gateway(procs, issuer, audit)
        calls(envoy, 3)
        wait_until("HEC delivery", lambda: sum(b.count(b'"sourcetype"') for _, _, b in h.received) >= 3, proc=audit)
        path, headers, body = h.received[0]
        assert path == "/services/collector/event" and headers["authorization"] == "Splunk s3cr3t"
        events = [json.loads(line) for line in body.decode().splitlines()]
        assert events[0]["sourcetype"] == "mcp:audit" and events[0]["event"]["seq"] == 1
    finally:
        srv.shutdown()


def test_audit_service_killed_under_load_envoy_keeps_serving(procs, issuer, tmp_path):
    """SIGKILL the audit service mid-load: every request still answered; what was in flight
    (Envoy's per-worker buffer and the unflushed gRPC stream) is the measured loss; after a
    restart the chain continues and verifies."""
    port = free_port()  # the restarted service listens where Envoy's cluster points
    audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit", port=port))
    envoy = gateway(procs, issuer, audit)
    statuses: list[int] = []
    stop = threading.Event()

    def load():
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                statuses.extend(calls(envoy, 10, c))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until("some records", lambda: len(records(audit)) >= 50, proc=audit)
    os.kill(audit.popen.pid, signal.SIGKILL)
    audit.popen.wait()
    killed_at = len(statuses)
    time.sleep(2)  # load continues with the audit service gone
    during_outage = len(statuses) - killed_at
    restarted = procs.add(AuditService(procs.log_dir, tmp_path / "audit", name="mcp-audit-2", key=audit.key, port=port))
    time.sleep(3)  # Envoy reconnects and streams again
    stop.set()
    for t in threads:
        t.join()
    assert during_outage > 0 and set(statuses) == {200}, "Envoy kept serving, every request answered"
    total = envoy_completed(envoy)
    wait_until("records after restart", lambda: len(records(restarted)) > 0 and records(restarted)[-1]["seq"] > 50, proc=restarted)
    time.sleep(1)
    got = len(records(restarted))
    lost = total - got
    print(f"\nALS loss: {total} requests, {got} records, {lost} lost ({during_outage} requests while the service was down)")
    als = {k: v for k, v in envoy.counters().items() if "access_log" in k}
    print(f"Envoy ALS counters: {als}")
    (procs.log_dir.parent / "als-loss.txt").write_text(f"{total} {got} {lost} {during_outage}\n{json.dumps(als)}\n")
    assert lost >= 0
    restarted.stop()
    v = restarted.cli("verify")
    assert v.returncode == 0, v.stdout + v.stderr
