"""Smoke: a real MCP client talks to real MCP servers through Envoy + the module."""

from __future__ import annotations

import json

import pytest

from mcp_client import session

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("json_response", [True, False], ids=["json_server", "sse_server"])
async def test_initialize_list_and_call_pass_through_the_gateway(procs, json_response):
    upstream = procs.mcp_server("demo", json_response=json_response)
    envoy = procs.gateway({"demo": upstream})

    async with session(envoy.url()) as s:
        tools = await s.list_tools()
        assert {"echo", "add", "search_repos", "delete_branch"} <= {t.name for t in tools.tools}
        result = await s.call_tool("add", {"a": 2, "b": 40})
        assert not result.is_error
        assert result.content[0].text == "42"

    counters = envoy.counters("mcp_policy.")
    assert counters.get("mcp_policy.requests_total.server.demo.method.initialize.decision.unchecked", 0) >= 1
    assert counters.get("mcp_policy.requests_total.server.demo.method.tools_list.decision.unchecked", 0) >= 1
    assert counters.get("mcp_policy.requests_total.server.demo.method.tools_call.decision.unchecked", 0) == 1
    assert counters.get("mcp_policy.requests_total.server.demo.method.notification.decision.unchecked", 0) >= 1
    assert counters.get("mcp_policy.panics_total.hook.request_body", 0) == 0


async def test_two_servers_behind_one_gateway_are_counted_apart(procs):
    a = procs.mcp_server("alpha", json_response=True)
    b = procs.mcp_server("beta", json_response=False)
    envoy = procs.gateway({"alpha": a, "beta": b})

    async with session(envoy.url(path="/alpha/mcp")) as s:
        assert (await s.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
    async with session(envoy.url(path="/beta/mcp")) as s:
        await s.list_tools()

    c = envoy.counters("mcp_policy.")
    assert c.get("mcp_policy.requests_total.server.alpha.method.tools_call.decision.unchecked") == 1
    assert c.get("mcp_policy.requests_total.server.beta.method.tools_call.decision.unchecked", 0) == 0
    assert c.get("mcp_policy.requests_total.server.beta.method.tools_list.decision.unchecked", 0) >= 1


async def test_access_log_has_one_json_line_per_request_with_module_metadata(procs):
    upstream = procs.mcp_server("demo", json_response=True)
    envoy = procs.gateway({"demo": upstream})
    async with session(envoy.url()) as s:
        await s.call_tool("echo", {"text": "x"})
    envoy.stop()  # flushes the access log

    lines = [json.loads(line) for line in (procs.log_dir / "access.log").read_text().splitlines()]
    calls = [line for line in lines if line["mcp_method"] == "tools/call"]
    assert len(calls) == 1
    assert calls[0]["mcp_server"] == "demo"
    assert calls[0]["status"] == 200
