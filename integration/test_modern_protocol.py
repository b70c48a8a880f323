"""MCP 2026-07-28 (stateless: `server/discover`, `Mcp-Method`/`Mcp-Name` headers, `_meta`
protocol version in every body) through the gateway, driven by the official Python SDK's
high-level `Client`, which negotiates the modern protocol with the Python SDK server."""

from __future__ import annotations

import contextlib
import json

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from harness import gateway_bootstrap
from issuer import Issuer
from test_policy import EXPECTED, PEOPLE, POLICY

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def modern_client(url: str, token: str):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="auto") as c:
            yield c


@pytest.fixture
def gw(procs):
    issuer = Issuer()
    py = procs.mcp_server("py", json_response=False)
    config = {"server": "py", "identity": {"providers": [issuer.provider()], "resource": issuer.audience}, "policy": POLICY}
    envoy = procs.envoy(gateway_bootstrap({"py": py.port}, config, access_log=procs.log_dir / "access.log"))
    envoy.tokens = {who: issuer.token(who, groups=groups) for who, groups in PEOPLE.items()}
    return envoy


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
async def test_modern_clients_get_their_own_tool_list(gw, who, procs):
    async with modern_client(gw.url(path="/py/mcp"), gw.tokens[who]) as c:
        assert {t.name for t in (await c.list_tools()).tools} == EXPECTED[(who, "py")][0]
    gw.stop()
    lines = [json.loads(x) for x in (procs.log_dir / "access.log").read_text().splitlines()]
    listed = [x for x in lines if x["mcp_method"] == "tools/list"]
    assert listed and all(x["mcp_protocol_version"] == "2026-07-28" for x in listed), listed


async def test_modern_client_call_is_judged_and_refused_with_the_policy_error(gw):
    async with modern_client(gw.url(path="/py/mcp"), gw.tokens["bob"]) as c:
        assert (await c.call_tool("echo", {"text": "modern"})).content[0].text == "modern"
        with pytest.raises(MCPError) as e:
            await c.call_tool("add", {"a": 1, "b": 2})
        assert e.value.error.code == -32030
    async with modern_client(gw.url(path="/py/mcp"), gw.tokens["alice"]) as c:
        assert (await c.call_tool("add", {"a": 1, "b": 2})).content[0].text == "3"
