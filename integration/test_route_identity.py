"""Routes that match on identity headers see what the gateway vouches for, never the client's copy.

The module rewrites `x-mcp-tenant` (and subject, groups) after establishing the principal; Envoy
chose the route earlier, on the client's headers. The module clears the route cache after the
rewrite, so a route matching `x-mcp-tenant: acme` is chosen for a caller whose token says acme,
and never for one who merely sends the header. Real Envoy, real JWTs, the header-echo upstream.
"""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from harness import gateway_bootstrap
from issuer import Issuer

AUDIENCE = "http://localhost:10000/mcp"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(audience=AUDIENCE)


@pytest.fixture
def gateway(procs, issuer):
    echo = procs.header_echo("echo")
    vip = procs.header_echo("vip")
    config = {"server": "echo", "identity": {"providers": [issuer.provider(claims={"tenant": "tid"})], "resource": AUDIENCE}}
    boot = gateway_bootstrap({"echo": echo.port, "vip": vip.port}, config, access_log=procs.log_dir / "access.log")
    routes = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"
    ][0]["routes"]
    # A tenant route in front of the default `/mcp` route; the router tags what it chose.
    acme = copy.deepcopy(next(r for r in routes if r["match"] == {"path": "/vip/mcp"}))
    acme["match"] = {"path": "/mcp", "headers": [{"name": "x-mcp-tenant", "string_match": {"exact": "acme"}}]}
    acme["route"].pop("prefix_rewrite", None)
    acme["request_headers_to_add"] = [{"header": {"key": "x-routed-to", "value": "vip"}}]
    for r in routes:
        r.setdefault("request_headers_to_add", [{"header": {"key": "x-routed-to", "value": r["route"]["cluster"]}}])
    routes.insert(0, acme)
    return procs.envoy(boot)


def call(envoy, token: str, **headers: str) -> dict:
    r = httpx.post(
        envoy.url(),
        content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}", **headers},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["result"]["headers"]


def test_a_spoofed_tenant_header_does_not_choose_the_tenant_route(gateway, issuer):
    seen = call(gateway, issuer.token("mallory", tid="other"), **{"x-mcp-tenant": "acme"})
    assert seen["x-routed-to"] == "echo"
    assert seen["x-mcp-tenant"] == "other"


def test_the_vouched_tenant_chooses_the_tenant_route(gateway, issuer):
    seen = call(gateway, issuer.token("alice", tid="acme"))
    assert seen["x-routed-to"] == "vip"
    assert seen["x-mcp-tenant"] == "acme"
    # Known limit (docs/design/failure-modes.md): Envoy 1.40 hands a dynamic module the route
    # metadata of the route first matched, even after the route cache is cleared, so the
    # request is judged for that route's server. Routes that match on identity headers must
    # name the same MCP server as the route they shadow.
    stats = gateway.counters("mcp_policy.requests_total")
    assert any(".server.echo." in k for k in stats), stats
