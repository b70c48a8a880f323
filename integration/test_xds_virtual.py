"""A virtual server declared in the xDS directory, served by real Envoys fed only by the control
plane.

The source directory has two servers of different kinds (the official Python SDK demo server and
npm `@modelcontextprotocol/server-everything`) and `virtual_servers/tools.yaml` over both, with
its session keys in `keys/tools.json`. A real mcp-xds-server gives two ADS-only Envoys the
backends' clusters, the dispatch routes, the virtual server's route and the module's
`virtual_servers` section; the official Python SDK client then sees one server whose tools come
from both backends under their prefixes, and its calls reach each backend through the dispatch
routes. A session opened on one Envoy continues on the other (both got the keys from the control
plane), and survives a key rotation that is only an edit of the keys file.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import yaml

from harness import EverythingServer
from mcp_client import session
from test_virtual_server import Raw, message
from xds_harness import XdsServer, ads_bootstrap, ecds_acked, wait_current, write_atomically, write_source_dir

pytestmark = pytest.mark.anyio

KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.b64encode(bytes(range(32, 64))).decode()
NODES = {"gw-a", "gw-b"}

TOOLS = {
    "routes": [{"path": "/tools/mcp"}],
    "backends": [
        {"server": "demo", "authority": "127.0.0.1"},
        {"server": "everything", "prefix": "every", "authority": "127.0.0.1", "timeout_ms": 5000,
         "failure": "fail_open", "tools": {"exclude": ["get-env"]}},
    ],
    "session_keys_file": "keys/tools.json",
    "instructions": "One endpoint for the demo and everything servers.",
}


def write_keys(directory, keys: list[tuple[str, str]]) -> None:
    doc = {"keys": [{"id": i, "key": k} for i, k in keys]}
    write_atomically(directory / "keys" / "tools.json", json.dumps(doc, indent=2))


async def tool_names(url: str) -> set[str]:
    async with session(url) as s:
        return {t.name for t in (await s.list_tools()).tools}


def listed(raw: Raw, sid: str | None = None) -> set[str]:
    m = message(raw.post("tools/list", {}, sid=sid))
    assert "result" in m, m
    return {t["name"] for t in m["result"]["tools"]}


async def test_envoys_fed_by_the_control_plane_serve_a_virtual_server(procs, tmp_path):
    demo = procs.mcp_server("demo")
    everything = procs.add(EverythingServer(procs.log_dir))
    src = write_source_dir(tmp_path / "source", {"demo": demo.port, "everything": everything.port})
    write_keys(src, [("k1", KEY1)])
    write_atomically(src / "virtual_servers" / "tools.yaml", yaml.safe_dump(TOOLS, sort_keys=False))
    xds = procs.add(XdsServer(procs.log_dir, src))
    a, b = (procs.envoy(ads_bootstrap(xds.xds_port, f"gw-{n}"), name=f"envoy-{n}") for n in "ab")
    st = wait_current(xds, NODES)
    assert st["config"]["valid"] is True, st["config"]

    # What each backend offers by itself, for comparison.
    direct_demo = await tool_names(demo.url)
    direct_every = await tool_names(everything.url)
    assert "get-env" in direct_every and "get-sum" in direct_every

    # One server, both backends' tools under their prefixes; the selector leaves get-env out.
    vurl = a.url(path="/tools/mcp")
    async with session(vurl) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {n for n in names if n.startswith("demo__")} == {f"demo__{n}" for n in direct_demo}
        assert {n for n in names if n.startswith("every__")} == {f"every__{n}" for n in direct_every - {"get-env"}}
        assert names == {n for n in names if n.startswith(("demo__", "every__"))}
        # Calls go out through the dispatch routes the control plane built, to the owner only.
        assert (await s.call_tool("demo__add", {"a": 2, "b": 40})).content[0].text == "42"
        r = await s.call_tool("every__get-sum", {"a": 5, "b": 6})
        assert "11" in r.content[0].text
    c = a.counters("mcp_policy.")
    # Policy saw each call under the backend that owns it.
    for backend in ("demo", "everything"):
        assert c.get(f"mcp_policy.requests_total.server.{backend}.method.tools_call.decision.unchecked") == 1, c

    # The same session id opens on the other Envoy: both were given the keys over ECDS.
    raw = Raw(vurl, "unused")
    raw.initialize()
    assert {"demo__echo", "every__echo"} <= listed(Raw(b.url(path="/tools/mcp"), "unused"), sid=raw.sid)

    # A client cannot take a dispatch route itself: its copy of the header is refused.
    r = httpx.post(
        a.url(path="/demo/mcp"),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"x-mcp-backend-cluster": "demo", "accept": "application/json, text/event-stream"},
        timeout=5,
    )
    assert r.status_code == 400 and "set by the gateway only" in r.text, (r.status_code, r.text)

    # Key rotation is an edit of keys/tools.json: the new key seals, the old one still opens, so
    # the session from before is served by both Envoys, and new sessions work.
    before = ecds_acked(xds.status())
    write_keys(src, [("k2", KEY2), ("k1", KEY1)])
    wait_current(xds, NODES, changed_from=before)
    for envoy in (a, b):
        assert "demo__echo" in listed(Raw(envoy.url(path="/tools/mcp"), "unused"), sid=raw.sid)
    fresh = Raw(b.url(path="/tools/mcp"), "unused")
    fresh.initialize()
    assert fresh.sid != raw.sid
    assert "every__get-sum" in listed(Raw(a.url(path="/tools/mcp"), "unused"), sid=fresh.sid)
