"""Policy `limits` on the real Envoy (docs/limits.md): a per-principal call limit refuses the
(N+1)th call with 429, `Retry-After` and a JSON-RPC error naming the limit; a per-tenant budget
charges tool weights; audit mode lets the call through and logs `would_limit`. Counters are
shared by both Envoy workers (new connection per call, so calls land on either)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from harness import gateway_bootstrap, wait_until
from issuer import Issuer

LIMITS = {
    "costs": [{"tools": ["search_repos"], "cost": 10}],
    "rules": [
        # Day windows: the test cannot straddle a window boundary unless run at midnight UTC.
        {"id": "per-user-echo", "tools": ["echo"], "principals": [{"groups": ["devs"]}],
         "calls": {"max": 3, "per": "day"}},
        {"id": "tenant-budget", "per": "tenant", "principals": [{"tenants": ["acme"]}],
         "tools": ["search_repos", "add"], "budget": {"max": 25, "per": "day"}},
    ],
}

POLICY = {
    "servers": {"py": {}, "pyaudit": {"mode": "audit"}},
    "rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}],
    "limits": LIMITS,
}


@pytest.fixture
def gw(procs):
    issuer = Issuer()
    py = procs.mcp_server("py", json_response=True, stateless=True)
    config = {
        "server": "py",
        "identity": {"providers": [issuer.provider(claims={"tenant": "tid"})], "resource": issuer.audience},
        "policy": POLICY,
    }
    boot = gateway_bootstrap({"py": py.port, "pyaudit": py.port}, config, access_log=procs.log_dir / "access.log")
    envoy = procs.envoy(boot)
    envoy.issuer = issuer
    envoy.access_log = procs.log_dir / "access.log"
    return envoy


def call(gw, who: str, tool: str, args: dict, server: str = "py", tenant: str = "acme", rid: int = 1) -> httpx.Response:
    token = gw.issuer.token(who, groups=["devs"], tid=tenant)
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    # A fresh connection per call: Envoy's two workers both take calls and share the counters.
    with httpx.Client(timeout=10) as c:
        return c.post(gw.url(path=f"/{server}/mcp"), json=body, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18"})


def log_lines(gw, n: int) -> list[dict]:
    def enough():
        lines = [json.loads(l) for l in gw.access_log.read_text().splitlines() if l.strip()] if gw.access_log.exists() else []
        return lines if len(lines) >= n else None
    return wait_until("access log lines", enough, timeout=10)


def test_per_principal_call_limit_refuses_the_next_call(gw):
    for i in range(3):
        r = call(gw, "alice", "echo", {"text": f"hi {i}"}, rid=i)
        assert r.status_code == 200, r.text
        assert r.json()["result"]["content"][0]["text"].endswith(f"hi {i}")
    r = call(gw, "alice", "echo", {"text": "one too many"}, rid=42)
    assert r.status_code == 429, r.text
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 86_400
    err = r.json()
    assert err["id"] == 42
    assert err["error"]["code"] == -32029
    assert err["error"]["data"] == {"limit": "per-user-echo", "kind": "calls", "max": 3, "window": "day", "retry_after": retry}
    assert "at most 3 calls per day" in err["error"]["message"]
    # Bob has his own counter; Alice's other tools are not covered by this limit.
    assert call(gw, "bob", "echo", {"text": "x"}).status_code == 200
    assert call(gw, "alice", "add", {"a": 1, "b": 2}, tenant="other").status_code == 200
    counters = gw.counters("mcp_policy.")
    limited = [k for k, v in counters.items() if "decision.limit" in k and v == 1]
    assert limited, counters
    lines = log_lines(gw, 6)
    refused = [l for l in lines if l["mcp_decision"] == "limit"]
    assert len(refused) == 1
    assert refused[0]["mcp_limit"] == "per-user-echo" and refused[0]["status"] == 429
    assert refused[0]["mcp_principal"] == "alice" and refused[0]["mcp_target"] == "echo"


def test_tenant_budget_charges_tool_weights(gw):
    # 25 units per day for tenant acme, shared by its people: search_repos costs 10, add 1.
    assert call(gw, "alice", "search_repos", {"repo": "acme/x", "query": "q"}).status_code == 200
    assert call(gw, "bob", "search_repos", {"repo": "acme/x", "query": "q"}).status_code == 200
    r = call(gw, "alice", "search_repos", {"repo": "acme/x", "query": "q"})
    assert r.status_code == 429
    assert r.json()["error"]["data"]["limit"] == "tenant-budget"
    assert r.json()["error"]["data"]["kind"] == "budget"
    for _ in range(5):
        assert call(gw, "carol", "add", {"a": 1, "b": 1}).status_code == 200
    assert call(gw, "carol", "add", {"a": 1, "b": 1}).status_code == 429
    # Another tenant has its own budget... and `tenant-budget` covers only acme.
    assert call(gw, "dave", "search_repos", {"repo": "acme/x", "query": "q"}, tenant="globex").status_code == 200
    costs = [l.get("mcp_cost") for l in log_lines(gw, 9) if l["status"] == 200]
    assert costs.count("10") == 3 and costs.count("1") == 5


def test_audit_mode_passes_and_logs_would_limit(gw):
    for i in range(4):
        r = call(gw, "erin", "echo", {"text": str(i)}, server="pyaudit", rid=i)
        assert r.status_code == 200, r.text
        assert "result" in r.json()
    lines = log_lines(gw, 4)
    decisions = [l["mcp_decision"] for l in lines]
    assert decisions.count("would_limit") == 1, decisions
    would = next(l for l in lines if l["mcp_decision"] == "would_limit")
    assert would["mcp_limit"] == "per-user-echo" and would["status"] == 200
    assert any("decision.would_limit" in k and v == 1 for k, v in gw.counters("mcp_policy.").items())


def test_usage_report_over_a_recorded_run_matches_the_calls_made(gw):
    import subprocess
    from harness import ROOT

    made = {("alice", "echo"): 4, ("bob", "add"): 2, ("carol", "search_repos"): 3}
    for (who, tool), n in made.items():
        args = {"echo": {"text": "hello"}, "add": {"a": 2, "b": 3}, "search_repos": {"repo": "acme/x", "query": "q"}}[tool]
        for i in range(n):
            call(gw, who, tool, args, rid=i)
    log_lines(gw, sum(made.values()))
    cli = ROOT / "target" / "release" / "mcp-policy"
    out = subprocess.run([str(cli), "usage", "--log", str(gw.access_log), "--format", "json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)["rows"]
    got = {(r["principal"], r["tool"]): r for r in rows}
    assert set(got) == set(made)
    for key, n in made.items():
        assert got[key]["calls"] == n
        assert got[key]["tenant"] == "acme" and got[key]["server"] == "py"
        assert got[key]["request_bytes"] > 0
    # alice: 3 echoes admitted, the 4th limited; carol: two 10-unit searches fit acme's 25.
    assert (got[("alice", "echo")]["admitted"], got[("alice", "echo")]["limited"]) == (3, 1)
    assert (got[("carol", "search_repos")]["admitted"], got[("carol", "search_repos")]["cost"]) == (2, 20)
    assert got[("bob", "add")]["cost"] == 2 and got[("bob", "add")]["response_bytes"] > 0
    # Estimated per call (bytes / 4, rounded down), so never more than the total / 4.
    assert 0 < got[("bob", "add")]["tokens_estimated"] <= got[("bob", "add")]["response_bytes"] // 4
    csv = subprocess.run([str(cli), "usage", "--log", str(gw.access_log), "--format", "csv", "--period", "hour"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0].startswith("period,principal,tenant,server,tool,calls")
    assert len(csv) >= 4
