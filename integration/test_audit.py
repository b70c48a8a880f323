"""The audit trail end to end: real Envoy streams its access log over gRPC (ALS) to the real
`mcp-audit serve`; real MCP client and server (Python SDK). Every request has exactly one
record; the chain and signed checkpoints catch every kind of tampering; the trace id the client
sent is in the record and reached the upstream; SIEM outages lose nothing; killing the audit
service does not stop Envoy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError as McpError

from harness import PEERS, AuditService, Proc, add_audit_log, free_port, gateway_bootstrap, wait_until
from issuer import Issuer
from mcp_client import session

pytestmark = pytest.mark.anyio

POLICY = {
    "servers": {"py": {}, "pyaudit": {"mode": "audit"}},
    "rules": [
        {"id": "nobody-destroys", "effect": "deny", "principals": [{}], "tools": ["delete_*"]},
        {"id": "admins-all", "effect": "allow", "principals": [{"groups": ["admins"]}],
         "tools": ["*"], "resources": ["*"], "prompts": ["*"], "methods": ["*"]},
    ],
}


class AuditMcpServer(Proc):
    """integration/peers/audit_server.py: the demo server plus `seen_traceparent`."""

    def __init__(self, log_dir: Path, name: str = "py"):
        self.port = free_port()
        super().__init__(f"mcp-{name}", [sys.executable, str(PEERS / "audit_server.py"), "--port", str(self.port), "--name", name], log_dir)
        import socket

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True

        wait_until(f"{name} MCP server", up, proc=self)


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


def start(procs, issuer, tmp_path, audit_args=None, concurrency=2):
    audit = procs.add(AuditService(procs.log_dir, tmp_path / "audit", args=audit_args))
    upstream = procs.add(AuditMcpServer(procs.log_dir))
    config = {"server": "py", "identity": {"providers": [issuer.provider(claims={"tenant": "tid"})], "resource": issuer.audience}, "policy": POLICY}
    boot = gateway_bootstrap({"py": upstream.port, "pyaudit": upstream.port}, config, access_log=procs.log_dir / "access.log")
    add_audit_log(boot, audit.port)
    envoy = procs.envoy(boot, concurrency=concurrency)
    envoy.token = issuer.token("alice", groups=["admins"], tid="acme")
    return audit, envoy


def records(audit: AuditService) -> list[dict]:
    out = []
    for seg in sorted(audit.dir.glob("segment-*.log")):
        out += [json.loads(line) for line in seg.read_text().splitlines() if line]
    return out


def access_log(procs) -> list[dict]:
    return [json.loads(line) for line in (procs.log_dir / "access.log").read_text().splitlines() if line.strip()]


def wait_records(audit: AuditService, n: int, timeout: float = 20.0) -> list[dict]:
    return wait_until(f"{n} audit records", lambda: (r := records(audit)) and len(r) >= n and r, timeout=timeout, proc=audit)


async def drive(envoy, trace: str) -> str:
    """Every kind of request: allowed, denied, audit-mode would-deny, refused for bad input,
    unauthenticated, wrong HTTP method. Returns what the upstream saw as traceparent."""
    auth = {"Authorization": f"Bearer {envoy.token}"}
    async with session(envoy.url(path="/py/mcp"), headers={**auth, "traceparent": trace}) as s:
        seen = (await s.call_tool("seen_traceparent", {})).content[0].text
        assert (await s.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
        with pytest.raises(McpError):
            await s.call_tool("delete_branch", {"repo": "acme/prod", "branch": "main"})
    async with session(envoy.url(path="/pyaudit/mcp"), headers=auth) as s:
        result = await s.call_tool("delete_branch", {"repo": "acme/prod", "branch": "old"})
        assert not result.is_error, "audit mode forwards"
    async with httpx.AsyncClient() as c:
        h = {**auth, "content-type": "application/json", "accept": "application/json, text/event-stream"}
        r = await c.post(envoy.url(path="/py/mcp"), content=b'{"jsonrpc":"2.0","id":1,"method":', headers=h)
        assert r.status_code == 400
        r = await c.post(envoy.url(path="/py/mcp"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"accept": "application/json, text/event-stream"})
        assert r.status_code == 401
        r = await c.put(envoy.url(path="/py/mcp"), content=b"{}", headers=h)
        assert r.status_code == 405
    return seen


async def test_every_request_has_exactly_one_record_and_the_trace_reaches_record_and_upstream(procs, issuer, tmp_path):
    audit, envoy = start(procs, issuer, tmp_path)
    trace_id = uuid.uuid4().hex
    trace = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    seen = await drive(envoy, trace)
    assert seen == trace, "the upstream received the client's traceparent unchanged"

    # Envoy's own count of finished downstream requests is the ground truth.
    def completed():
        return sum(v for k, v in envoy.counters("http.").items() if k.endswith(".downstream_rq_completed") and "admin" not in k)

    total = wait_until("Envoy counted requests", completed)
    recs = wait_records(audit, total)
    time.sleep(0.5)  # a straggler would show up now
    recs = records(audit)
    # The file access log flushes on its own timer.
    logged = wait_until("the JSON access log", lambda: len(a := access_log(procs)) >= total and a)
    assert len(recs) == total == len(logged), (len(recs), total, len(logged))
    # Exactly one record per request: the request ids are the file access log's, each once.
    ids = [r["request_id"] for r in recs]
    assert len(set(ids)) == len(ids)
    assert set(ids) == {line["request_id"] for line in logged}
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))

    decisions = {r.get("decision") for r in recs}
    assert {"allow", "deny", "audit_deny", "reject"} <= decisions, decisions
    by_target = {}
    for r in recs:
        by_target.setdefault((r.get("server"), r.get("target"), r.get("decision")), []).append(r)
    denied = by_target[("py", "delete_branch", "deny")]
    assert len(denied) == 1
    d = denied[0]
    assert d["principal"]["subject"] == "alice" and d["principal"]["tenant"] == "acme"
    assert d["principal"]["groups"] == ["admins"] and d["principal"]["source"] == "jwt"
    assert d["rule"] == "nobody-destroys" and d["mode"] == "enforce" and d["policy_version"]
    assert d["args_digest"].startswith("sha256:") and "acme/prod" not in json.dumps(d)
    assert d["trace_id"] == trace_id and d["traceparent"] == trace
    assert d["http"]["status"] == 200 and d["http"]["bytes_sent"] > 0
    would = by_target[("pyaudit", "delete_branch", "audit_deny")][0]
    assert would["mode"] == "audit" and would["rule"] == "nobody-destroys"
    assert would["http"]["upstream_cluster"] == "pyaudit"
    seen_rec = by_target[("py", "seen_traceparent", "allow")][0]
    assert seen_rec["trace_id"] == trace_id
    untraced = [r for r in recs if "traceparent" not in r]
    assert untraced and all(r["trace_id"] == r["request_id"] for r in untraced), "no traceparent: Envoy's request id"
    statuses = {r["http"]["status"] for r in recs}
    assert {200, 400, 401, 405} <= statuses

    # The auditor's question, answered from the verified log.
    envoy.stop()
    audit.stop()
    q = audit.cli("query", "--principal", "alice", "--tool", "delete_branch", "--server", "py")
    assert q.returncode == 0, q.stderr
    answer = [json.loads(line) for line in q.stdout.splitlines()]
    assert [a["request_id"] for a in answer] == [d["request_id"]]
    v = audit.cli("verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK" in v.stdout and "0 unanchored" in v.stdout, v.stdout


def tamper_copy(audit: AuditService, tmp_path: Path, name: str) -> tuple[Path, list[str], Path]:
    d = tmp_path / f"copy-{name}"
    shutil.copytree(audit.dir, d)
    seg = sorted(d.glob("segment-*.log"))[0]
    return d, seg.read_text().splitlines(), seg


async def test_verify_names_each_kind_of_tampering_on_a_real_log(procs, issuer, tmp_path):
    audit, envoy = start(procs, issuer, tmp_path)
    await drive(envoy, f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01")
    async with session(envoy.url(path="/py/mcp"), headers={"Authorization": f"Bearer {envoy.token}"}) as s:
        for i in range(5):
            await s.call_tool("echo", {"text": str(i)})
    time.sleep(0.5)
    envoy.stop()
    audit.stop()  # final checkpoint
    assert audit.cli("verify").returncode == 0
    n = len(records(audit))
    assert n >= 12

    def verify(d: Path) -> tuple[int, str]:
        v = audit.cli("verify", data_dir=d)
        return v.returncode, v.stdout

    def put(seg: Path, lines: list[str]):
        seg.write_text("\n".join(lines) + "\n")

    # edit one byte of record 3
    d, lines, seg = tamper_copy(audit, tmp_path, "edit")
    lines[2] = lines[2].replace('"v":1', '"v":2', 1)
    put(seg, lines)
    rc, out = verify(d)
    assert rc == 1 and out.splitlines()[0].startswith("modified: seq 3 "), out

    d, lines, seg = tamper_copy(audit, tmp_path, "delete")
    del lines[4]
    put(seg, lines)
    rc, out = verify(d)
    assert rc == 1 and out.splitlines()[0].startswith("deleted: seq 5 "), out

    d, lines, seg = tamper_copy(audit, tmp_path, "insert")
    lines.insert(6, lines[1])
    put(seg, lines)
    rc, out = verify(d)
    assert rc == 1 and out.splitlines()[0].startswith("inserted: seq 2 "), out

    d, lines, seg = tamper_copy(audit, tmp_path, "reorder")
    lines[3], lines[4] = lines[4], lines[3]
    put(seg, lines)
    rc, out = verify(d)
    assert rc == 1 and out.splitlines()[0].startswith("reordered: "), out

    d, lines, seg = tamper_copy(audit, tmp_path, "truncate")
    put(seg, lines[: len(lines) - 3])
    # The writer can also empty its local checkpoint file; the anchor still has them.
    (d / "checkpoints.jsonl").write_text("")
    rc, out = verify(d)
    assert rc == 1 and out.splitlines()[0].startswith(f"truncated: seq {len(lines) - 2} "), out

    # A query over a tampered log refuses to answer.
    d, lines, seg = tamper_copy(audit, tmp_path, "query")
    lines[2] = lines[2].replace('"v":1', '"v":2', 1)
    put(seg, lines)
    q = audit.cli("query", "--principal", "alice", data_dir=d)
    assert q.returncode == 1 and q.stdout == "" and "does not verify" in q.stderr
