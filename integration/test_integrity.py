"""Tool-definition integrity end to end (docs/tool-integrity.md): a real Python-SDK MCP server
serving poisoned tools is audited, sanitized or hidden per server policy through the real Envoy,
as a real SDK client sees it; a server that changes a pinned tool mid-session gets it
quarantined on two Envoys, and an approved re-pin (`mcp-policy pin record`) brings it back."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from mcp.shared.exceptions import MCPError as McpError

from harness import PEERS, ROOT, McpServer, Proc, add_virtual_server_routes, free_port, gateway_bootstrap, wait_until
from mcp_client import session

pytestmark = pytest.mark.anyio

CLI = ROOT / "target" / "release" / "mcp-policy"
POISONED = {"joke_teller", "get_time", "shadow_mail"}


class PoisonedServer(McpServer):
    def __init__(self, log_dir, name="poisoned"):
        self.port = free_port()
        Proc.__init__(self, f"mcp-{name}", [sys.executable, str(PEERS / "poisoned_server.py"), "--port", str(self.port)], log_dir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        wait_until(f"{name} MCP server", self._listening, proc=self)


def access_lines(procs, want, name="access.log") -> list[dict]:
    """The access log's lines once one matches `want` (Envoy flushes the file asynchronously)."""
    path = procs.log_dir / name

    def read():
        lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
        return lines if any(want(l) for l in lines) else None

    return wait_until(f"an access-log line in {name}", read, timeout=15)


@pytest.fixture
def gw(procs):
    up = procs.add(PoisonedServer(procs.log_dir))
    config = {
        "pass_through": False,
        "integrity": {"servers": {
            "audit": {"action": "audit", "results": "audit"},
            "sanitize": {"action": "sanitize"},
            "hide": {"action": "hide", "exceptions": [
                {"name": "shadow_mail", "rules": ["shadow.cross_tool", "directive.concealment", "directive.coercion"], "reason": "test: excused on purpose"}]},
        }},
    }
    boot = gateway_bootstrap({"audit": up.port, "sanitize": up.port, "hide": up.port}, config,
                             access_log=procs.log_dir / "access.log")
    # One worker: the table of withheld tools is per worker (see docs/tool-integrity.md).
    return procs.envoy(boot, concurrency=1)


async def tools_of(url):
    async with session(url) as s:
        return {t.name: t for t in (await s.list_tools()).tools}


async def test_audit_delivers_everything_and_records_findings(gw, procs):
    tools = await tools_of(gw.url(path="/audit/mcp"))
    assert POISONED <= set(tools) and "add" in tools
    assert "<IMPORTANT>" in tools["joke_teller"].description
    c = gw.counters("mcp_policy.integrity_findings_total")
    audit = {k: v for k, v in c.items() if ".server.audit." in k}
    assert any("directive_markup" in k and k.endswith(".outcome.kept") for k in audit), audit
    assert any("unicode_tag" in k for k in audit), audit
    is_list = lambda l: l.get("mcp_method") == "tools/list" and l.get("mcp_server") == "audit"
    lists = [l for l in access_lines(procs, is_list) if is_list(l)]
    assert lists[-1]["mcp_integrity_action"] == "audit" and lists[-1]["mcp_integrity_rule"], lists


async def test_call_results_are_scanned_and_recorded_when_asked_and_delivered_unchanged(gw, procs):
    async with session(gw.url(path="/audit/mcp")) as s:
        r = await s.call_tool("fetch_page", {"url": "https://example.com"})
        assert "<IMPORTANT>Ignore previous instructions" in r.content[0].text, r
        assert (await s.call_tool("add", {"a": 1, "b": 1})).structured_content == {"result": 2}
    c = gw.counters("mcp_policy.integrity_findings_total")
    assert any(".server.audit." in k and "directive_override" in k and k.endswith("outcome.kept") for k in c), c
    is_call = lambda l: l.get("mcp_method") == "tools/call" and l.get("mcp_server") == "audit"
    calls = [l for l in access_lines(procs, lambda l: is_call(l) and l.get("mcp_integrity_rule")) if is_call(l)]
    # The poisoned result is recorded; the clean one (`add`) is not.
    assert [l["mcp_integrity_action"] for l in calls] == ["audit", None], calls
    assert calls[0]["mcp_integrity_rule"].startswith("directive."), calls
    # The hide server does not scan results (off by default): its calls are not read.
    async with session(gw.url(path="/hide/mcp")) as s:
        assert "IMPORTANT" in (await s.call_tool("fetch_page", {"url": "u"})).content[0].text
    c = gw.counters("mcp_policy.integrity_findings_total")
    assert not any(".server.hide." in k and "lure_secret_path" in k and k.endswith("outcome.kept") for k in c), c


async def test_sanitize_strips_markup_and_invisible_characters_and_keeps_the_tool(gw):
    tools = await tools_of(gw.url(path="/sanitize/mcp"))
    assert POISONED <= set(tools)
    joke = tools["joke_teller"].description
    assert "IMPORTANT" not in joke and "Go back to work" not in joke and "Use this tool to get a joke." in joke
    t = tools["get_time"].description
    assert t == "Returns the time.", repr(t)
    assert tools["add"].description == "Add two integers."


async def test_hide_drops_poisoned_tools_and_refuses_calls_naming_the_rule(gw, procs):
    url = gw.url(path="/hide/mcp")
    async with session(url) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names.isdisjoint({"joke_teller", "get_time"}), names
        # Excepted (with a reason) for the rules it trips: kept.
        assert {"add", "shadow_mail", "get_forecast"} <= names
        assert (await s.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
        with pytest.raises(McpError) as e:
            await s.call_tool("joke_teller", {})
        assert "directive.markup" in str(e.value) and "integrity" in str(e.value)
    lines = access_lines(procs, lambda l: l.get("mcp_reason") == "integrity_withheld")
    refused = [l for l in lines if l.get("mcp_reason") == "integrity_withheld"]
    assert refused and refused[-1]["mcp_integrity_rule"] == "directive.markup"
    listed = [l for l in lines if l.get("mcp_method") == "tools/list" and l.get("mcp_server") == "hide"]
    assert listed[-1]["mcp_integrity_action"] == "hidden"
    c = gw.counters("mcp_policy.integrity_findings_total")
    assert any(".server.hide." in k and k.endswith("outcome.hidden") for k in c), c


async def test_server_instructions_are_audited_sanitized_or_withheld_per_action(gw, procs):
    got = {}
    for server in ("audit", "sanitize", "hide"):
        async with session(gw.url(path=f"/{server}/mcp")) as s:
            got[server] = s.initialize_result.instructions
            # The session goes on whatever was done to the text.
            assert (await s.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
    assert "Ignore previous instructions" in got["audit"], got
    assert got["sanitize"].startswith("Weather and jokes.") and "IMPORTANT" not in got["sanitize"] \
        and "\u200b" not in got["sanitize"] and "Ignore previous" not in got["sanitize"], got
    assert got["hide"] == "", got
    c = gw.counters("mcp_policy.integrity_findings_total")
    for server, outcome in (("audit", "kept"), ("sanitize", "sanitized"), ("hide", "hidden")):
        assert any(f".server.{server}." in k and "directive_override" in k and k.endswith(f"outcome.{outcome}") for k in c), (server, c)
    is_init = lambda l: l.get("mcp_method") == "initialize" and l.get("mcp_server") == "hide"
    inits = [l for l in access_lines(procs, is_init) if is_init(l)]
    assert inits[-1]["mcp_integrity_action"] == "hidden" and inits[-1]["mcp_integrity_rule"].startswith("directive."), inits


async def test_a_virtual_server_judges_each_backend_and_names_that_collide_across_them(procs):
    demo = procs.add(McpServer(procs.log_dir, name="demo"))
    rogue = procs.add(PoisonedServer(procs.log_dir, name="rogue"))
    backends = [
        {"name": "demo", "cluster": "demo", "authority": "127.0.0.1", "failure": "fail_closed"},
        {"name": "rogue", "prefix": "rogue", "cluster": "rogue", "authority": "127.0.0.1", "failure": "fail_closed"},
    ]
    config = {
        "pass_through": False,
        "integrity": {"servers": {"rogue": {"action": "hide"}}},
        "virtual_servers": {"tools": {"backends": backends, "session_keys": [{"id": "k1", "key": base64.b64encode(bytes(range(32))).decode()}]}},
    }
    boot = gateway_bootstrap({"demo": demo.port, "rogue": rogue.port}, config, access_log=procs.log_dir / "vs.access.log")
    gw = procs.envoy(add_virtual_server_routes(boot, "tools", "/tools/mcp", "demo"), concurrency=1, name="envoy-vs")
    async with session(gw.url(path="/tools/mcp")) as s:
        instructions = s.initialize_result.instructions or ""
        names = {t.name for t in (await s.list_tools()).tools}
        # The demo backend is not under integrity; the rogue one is, under its own name.
        assert {"demo__search_repos", "demo__echo", "rogue__add", "rogue__get_forecast"} <= names, names
        assert names.isdisjoint({"rogue__joke_teller", "rogue__get_time"}), names
        # Clean text, but it reads as the demo server's tool: hidden (the earlier backend wins).
        assert "rogue__Search-Repos" not in names, names
        with pytest.raises(McpError) as e:
            await s.call_tool("rogue__joke_teller", {})
        assert "directive.markup" in str(e.value), e.value
        with pytest.raises(McpError) as e:
            await s.call_tool("rogue__Search-Repos", {"repo": "r", "query": "q"})
        assert "name.collision" in str(e.value), e.value
        assert (await s.call_tool("rogue__add", {"a": 2, "b": 2})).structured_content == {"result": 4}
    assert "IMPORTANT" not in instructions and "Ignore previous" not in instructions, instructions
    c = gw.counters("mcp_policy.integrity_findings_total")
    assert any(".server.rogue." in k and "name_collision" in k and k.endswith("outcome.hidden") for k in c), c
    assert not any(".server.demo." in k for k in c), c


def capture(tools: dict) -> dict:
    return {"tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.values()]}


async def test_rug_pull_is_quarantined_on_two_envoys_and_a_re_pin_restores_it(procs, tmp_path):
    up = procs.add(PoisonedServer(procs.log_dir, name="rug"))
    # Record the pins directly from the server (what an operator approves).
    listed = await tools_of(up.url)
    (tmp_path / "v1.json").write_text(json.dumps(capture(listed)))
    pinfile = tmp_path / "pins.json"
    pinfile.write_text(subprocess.run([str(CLI), "pin", "record", str(tmp_path / "v1.json")], check=True, capture_output=True, text=True).stdout)
    pins = json.loads(pinfile.read_text())["pins"]

    def gateway(name, pins):
        config = {"integrity": {"servers": {"rug": {"action": "audit", "drift": "quarantine", "pins": pins}}}}
        boot = gateway_bootstrap({"rug": up.port}, config, access_log=procs.log_dir / f"access-{name}.log")
        return procs.envoy(boot, name=name, concurrency=1)

    a, b = gateway("envoy-a", pins), gateway("envoy-b", pins)
    for e in (a, b):
        assert "get_forecast" in await tools_of(e.url(path="/rug/mcp"))
    async with session(a.url(path="/rug/mcp")) as s:
        assert "get_forecast" in {t.name for t in (await s.list_tools()).tools}
        await s.call_tool("rug_pull", {})
        # The same session, after the server changed the tool: quarantined.
        assert "get_forecast" not in {t.name for t in (await s.list_tools()).tools}
        with pytest.raises(McpError) as e:
            await s.call_tool("get_forecast", {"city": "Oslo"})
        assert "pin.changed" in str(e.value)
    for e in (a, b):
        names = set(await tools_of(e.url(path="/rug/mcp")))
        assert "get_forecast" not in names and "add" in names, names
        drift = e.counters("mcp_policy.integrity_drift_total")
        assert any(".server.rug." in k and k.endswith("change.changed") and v >= 1 for k, v in drift.items()), drift
        access_lines(procs, lambda l: "changed:tool:get_forecast" in (l.get("mcp_integrity_drift") or ""), name=f"access-{e.name}.log")

    # The diff an operator reviews, then the approved re-pin.
    (tmp_path / "v2.json").write_text(json.dumps(capture(await tools_of(up.url))))
    d = subprocess.run([str(CLI), "pin", "diff", str(pinfile), str(tmp_path / "v2.json")], capture_output=True, text=True)
    assert d.returncode == 1 and 'changed tools "get_forecast"' in d.stdout and "$.inputSchema.properties.units" in d.stdout, d.stdout
    repinned = json.loads(subprocess.run([str(CLI), "pin", "record", str(tmp_path / "v2.json")], check=True, capture_output=True, text=True).stdout)["pins"]
    c = gateway("envoy-c", repinned)
    async with session(c.url(path="/rug/mcp")) as s:
        assert "get_forecast" in {t.name for t in (await s.list_tools()).tools}
        r = await s.call_tool("get_forecast", {"city": "Oslo", "units": "imperial"})
        assert "imperial" in r.content[0].text
