"""Fleet-wide limits (docs/limits.md): two real Envoys share one budget through a real
`mcp-ratelimit` and a real Redis (Envoy's rate-limit filter after the module, descriptors from
the module's dynamic metadata, cost as `hits_addend`); under concurrent load the sum admitted is
exactly the limit (the service checks and charges in one Redis script). Redis killed → each
Envoy's configured fail mode: closed refuses limited calls, open lets them through."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
from pathlib import Path

import httpx
import pytest

from harness import ROOT, HarnessError, Proc, free_port, gateway_bootstrap, wait_until
from issuer import Issuer

POLICY = {
    "servers": {"py": {}},
    "rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}],
    "limits": {
        "costs": [{"tools": ["search_repos"], "cost": 10}],
        "rules": [
            {"id": "fleet-echo", "scope": "global", "per": "tenant", "principals": [{"tenants": ["*"]}],
             "tools": ["echo"], "calls": {"max": 40, "per": "day"}},
            {"id": "fleet-search", "scope": "global", "tools": ["search_repos"], "budget": {"max": 50, "per": "day"}},
        ],
    },
}


def rls_binary() -> Path:
    p = Path(os.environ.get("MCP_RATELIMIT_BIN", ROOT / "target" / "release" / "mcp-ratelimit"))
    if not p.exists():
        raise HarnessError(f"{p} not found: build it with `make build`")
    return p


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def with_ratelimit(boot: dict, rls_port: int, fail_closed: bool) -> dict:
    """Envoy's rate-limit filter right after the module; one descriptor per call a global limit
    covers: `mcp` = the module's `rl`, `id` = the JSON-RPC id; cost from the module's `cost`."""
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    at = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.dynamic_modules")
    filters.insert(at + 1, {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": "mcp",
            "timeout": "0.5s",
            "failure_mode_deny": fail_closed,
            "status_on_error": {"code": "ServiceUnavailable"},
            "rate_limit_service": {"transport_api_version": "V3",
                                   "grpc_service": {"envoy_grpc": {"cluster_name": "mcp_ratelimit"}}},
            "rate_limits": [{
                "actions": [
                    {"metadata": {"descriptor_key": "mcp", "source": "DYNAMIC", "skip_if_absent": True,
                                  "metadata_key": {"key": "mcp_policy", "path": [{"key": "rl"}]}}},
                    {"metadata": {"descriptor_key": "id", "source": "DYNAMIC", "default_value": "null",
                                  "metadata_key": {"key": "mcp_policy", "path": [{"key": "jsonrpc_id"}]}}},
                ],
                "hits_addend": {"format": "%DYNAMIC_METADATA(mcp_policy:cost)%"},
            }],
        },
    })
    boot["static_resources"]["clusters"].append({
        "name": "mcp_ratelimit",
        "type": "STATIC",
        "connect_timeout": "0.5s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {"cluster_name": "mcp_ratelimit", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": rls_port}}}}]}]},
    })
    return boot


@pytest.fixture
def fleet(procs):
    issuer = Issuer()
    redis_port = free_port()
    redis = procs.add(Proc("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no"], procs.log_dir))
    wait_until("redis", lambda: listening(redis_port), proc=redis)
    policy_path = procs.log_dir / "policy.json"
    policy_path.write_text(json.dumps(POLICY))
    rls_port = free_port()
    rls = procs.add(Proc("rls", [str(rls_binary()), "--policy", str(policy_path), "--listen", f"127.0.0.1:{rls_port}",
                                 "--redis", f"127.0.0.1:{redis_port}"], procs.log_dir))
    wait_until("mcp-ratelimit", lambda: listening(rls_port), proc=rls)
    py = procs.mcp_server("py", json_response=True, stateless=True)
    config = {
        "server": "py",
        "identity": {"providers": [issuer.provider(claims={"tenant": "tid"})], "resource": issuer.audience},
        "policy": POLICY,
    }
    envoys = []
    for name, closed in (("envoy-closed", True), ("envoy-open", False)):
        boot = gateway_bootstrap({"py": py.port}, config, access_log=procs.log_dir / f"{name}.access.log")
        envoys.append(procs.envoy(with_ratelimit(boot, rls_port, closed), name=name))
    return issuer, envoys, redis


def call(issuer, envoy, who: str, tool: str, args: dict, tenant: str = "acme", rid: int = 1) -> httpx.Response:
    token = issuer.token(who, tid=tenant)
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    with httpx.Client(timeout=10) as c:
        return c.post(envoy.url(path="/py/mcp"), json=body, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18"})


def test_two_envoys_share_one_budget_under_concurrent_load(fleet):
    issuer, envoys, _ = fleet
    jobs = [(envoys[i % 2], f"user{i % 7}", i) for i in range(100)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda j: call(issuer, j[0], j[1], "echo", {"text": "x"}, rid=j[2]), jobs))
    ok = [r for r in results if r.status_code == 200]
    limited = [r for r in results if r.status_code == 429]
    assert len(ok) + len(limited) == 100, [(r.status_code, r.text) for r in results if r.status_code not in (200, 429)]
    # Tenant acme's 40 calls a day, across both Envoys: exact (documented bound: 0).
    assert len(ok) == 40
    for r in limited:
        err = r.json()
        assert err["error"]["code"] == -32029
        assert err["error"]["data"]["limit"] == "fleet-echo"
        assert isinstance(err["id"], int)
        assert int(r.headers["retry-after"]) >= 1
    # Both Envoys admitted some: the budget really is shared.
    assert {r.request.url.port for r in ok} == {e.listener_port("mcp_gateway") for e in envoys}
    # Another tenant has its own 40.
    assert call(issuer, envoys[0], "zed", "echo", {"text": "x"}, tenant="globex").status_code == 200


def test_weighted_global_budget_counts_hits_addend(fleet):
    issuer, envoys, _ = fleet
    args = {"repo": "acme/x", "query": "q"}
    # 50 units per subject and day, a search costs 10: five searches, whichever Envoy serves them.
    codes = [call(issuer, envoys[i % 2], "sam", "search_repos", args, rid=i).status_code for i in range(7)]
    assert codes == [200] * 5 + [429] * 2
    r = call(issuer, envoys[0], "sam", "search_repos", args, rid=99)
    assert r.json()["error"]["data"] == {"limit": "fleet-search", "kind": "budget", "max": 50, "window": "day",
                                         "retry_after": int(r.headers["retry-after"])}
    assert call(issuer, envoys[1], "other", "search_repos", args).status_code == 200


def test_redis_down_gives_each_envoy_its_configured_fail_mode(fleet):
    issuer, (closed, open_), redis = fleet
    assert call(issuer, closed, "a", "echo", {"text": "x"}).status_code == 200
    redis.stop()
    r = call(issuer, closed, "a", "echo", {"text": "x"})
    assert r.status_code == 503, r.text
    assert call(issuer, open_, "a", "echo", {"text": "x"}).status_code == 200
    # Calls no global limit covers never ask the service.
    assert call(issuer, closed, "a", "add", {"a": 1, "b": 2}).status_code == 200
    assert any(v > 0 for k, v in closed.counters("cluster.mcp_ratelimit.ratelimit.error").items()) or \
        any("ratelimit" in k and "error" in k and v > 0 for k, v in closed.counters().items())
