"""One virtual MCP server over several real backends, on the real Envoy 1.40 binary.

Backends: the official Python SDK demo server (`demo`, SSE answers, stateful) and the official
reference server `@modelcontextprotocol/server-everything` (`everything`, TypeScript SDK,
stateful, resumable SSE), and npm `@modelcontextprotocol/server-memory` (a stdio server) behind
`mcp-stdio-bridge`.
Clients: the official Python SDK and raw JSON-RPC over httpx (for what an SDK hides: session ids
moved between replicas or principals).

What is checked: merged lists differ per principal and keep every field; calls, prompts and
resource reads reach the backend that owns them, un-prefixed; a sampling round trip crosses the
gateway; a session id opens on a second Envoy replica (with rotated keys) and is refused for
another principal; a dead backend is left out (fail_open) or named in a JSON-RPC error
(fail_closed), never an HTTP 5xx.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess

import anyio
import httpx
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import Procs
from harness import NODE_DIR, EverythingServer, McpServer, StdioBridge, add_virtual_server_routes, gateway_bootstrap, node_binary, wait_until
from issuer import Issuer

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.b64encode(bytes(range(32, 64))).decode()
SECURITY = {"allowed_hosts": ["127.0.0.1:*", "localhost:*"]}
POLICY = {
    "servers": {"demo": {}, "everything": {}, "memory": {}},
    "rules": [
        {"id": "dev-demo", "effect": "allow", "servers": ["demo"], "principals": [{"groups": ["dev"]}],
         "tools": ["echo", "add", "search_repos"], "prompts": ["review"], "resources": ["docs://*"]},
        {"id": "dev-everything", "effect": "allow", "servers": ["everything"], "principals": [{"groups": ["dev"]}],
         "tools": ["echo", "get-sum", "trigger-sampling-request"], "prompts": ["simple-prompt"]},
        {"id": "dev-memory", "effect": "allow", "servers": ["memory"], "principals": [{"groups": ["dev"]}],
         "tools": ["create_entities", "read_graph", "search_nodes"]},
        {"id": "contractor-demo", "effect": "allow", "servers": ["demo"], "principals": [{"groups": ["contractor"]}],
         "tools": ["echo"]},
    ]
}


BACKENDS = {
    "demo": {"name": "demo", "cluster": "demo", "authority": "127.0.0.1", "failure": "fail_closed"},
    "everything": {"name": "everything", "prefix": "every", "cluster": "everything", "authority": "127.0.0.1",
                   "failure": "fail_open", "timeout_ms": 5000},
    "memory": {"name": "memory", "prefix": "mem", "cluster": "memory", "authority": "127.0.0.1", "failure": "fail_open"},
}


def virtual(keys: list[dict], names: list[str]) -> dict:
    return {
        "tools": {
            "backends": [BACKENDS[n] for n in names],
            "session_keys": keys,
            "instructions": "One endpoint for the demo and everything servers.",
        }
    }


def bootstrap(issuer: Issuer, ports: dict[str, int], keys: list[dict], log_dir, name: str) -> dict:
    config = {
        "server": "direct",
        "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
        "policy": POLICY,
        "security": SECURITY,
        "virtual_servers": virtual(keys, list(ports)),
    }
    b = gateway_bootstrap(ports, config, access_log=log_dir / f"{name}.access.log")
    return add_virtual_server_routes(b, "tools", "/tools/mcp", "demo")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("vserver") / "logs"
    log_dir.mkdir()
    procs = Procs(log_dir)
    try:
        demo = procs.add(McpServer(log_dir, name="demo"))
        everything = procs.add(EverythingServer(log_dir))
        # A stdio server (npm server-memory) behind mcp-stdio-bridge: the third kind of backend.
        memory = procs.add(StdioBridge(log_dir, name="memory"))
        issuer = Issuer()
        ports = {"demo": demo.port, "everything": everything.port, "memory": memory.port}
        k1 = [{"id": "k1", "key": KEY1}]
        a = procs.envoy(bootstrap(issuer, ports, k1, log_dir, "a"), name="envoy-a")
        # The second replica has rotated: a new key seals, the old one still opens.
        b = procs.envoy(bootstrap(issuer, ports, [{"id": "k2", "key": KEY2}] + k1, log_dir, "b"), name="envoy-b")
        tokens = {
            "dana": issuer.token("dana", groups=["dev"]),
            "carl": issuer.token("carl", groups=["contractor"]),
        }
        yield {"procs": procs, "a": a, "b": b, "tokens": tokens, "demo": demo, "everything": everything, "log_dir": log_dir}
    finally:
        procs.stop_all()


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request, env):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        env["procs"]._dump()


@contextlib.asynccontextmanager
async def session(url: str, token: str, **kw):
    try:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=TIMEOUT, **kw) as s:
                    with anyio.fail_after(TIMEOUT):
                        await s.initialize()
                    yield s
    except BaseExceptionGroup as group:
        leaf = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        raise leaf from group


def vurl(envoy) -> str:
    return envoy.url(path="/tools/mcp")


class Raw:
    """JSON-RPC over plain HTTP: what a client does, with the session id in our hands."""

    def __init__(self, url: str, token: str):
        self.url, self.token, self.sid, self.n = url, token, None, 0

    def post(self, method: str, params: dict | None = None, notify: bool = False, sid: str | None = None) -> httpx.Response:
        self.n += 1
        msg = {"jsonrpc": "2.0", "method": method}
        if not notify:
            msg["id"] = self.n
        if params is not None:
            msg["params"] = params
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json, text/event-stream",
                   "Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"}
        if sid or self.sid:
            headers["Mcp-Session-Id"] = sid or self.sid
        return httpx.post(self.url, json=msg, headers=headers, timeout=TIMEOUT)

    def initialize(self) -> dict:
        r = self.post("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                     "clientInfo": {"name": "raw", "version": "1"}})
        assert r.status_code == 200, r.text
        self.sid = r.headers["mcp-session-id"]
        assert self.post("notifications/initialized", notify=True).status_code == 202
        return r.json()


def message(r: httpx.Response) -> dict:
    """The JSON-RPC message in a JSON or SSE answer."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        for block in r.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(l[5:].lstrip() for l in block.split("\n") if l.startswith("data:"))
            if data.strip():
                m = json.loads(data)
                if "result" in m or "error" in m:
                    return m
        raise AssertionError(f"no response in {r.text!r}")
    return r.json()


async def test_initialize_merges_both_backends(env):
    async with session(vurl(env["a"]), env["tokens"]["dana"]) as s:
        info = s.initialize_result if hasattr(s, "initialize_result") else None
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert "demo__echo" in tools and "every__echo" in tools
    if info is not None:
        assert info.server_info.name == "tools"


async def test_lists_are_merged_prefixed_and_scoped_per_caller(env):
    async with session(vurl(env["a"]), env["tokens"]["dana"]) as s:
        dana = {t.name: t for t in (await s.list_tools()).tools}
        dana_prompts = {p.name for p in (await s.list_prompts()).prompts}
        dana_res = {str(r.uri) for r in (await s.list_resources()).resources}
    async with session(vurl(env["a"]), env["tokens"]["carl"]) as s:
        carl = {t.name for t in (await s.list_tools()).tools}
    assert {"demo__echo", "demo__add", "demo__search_repos", "every__echo", "every__get-sum",
            "mem__create_entities", "mem__read_graph"} <= set(dana)
    assert "mem__delete_entities" not in dana
    assert "demo__delete_branch" not in dana and "every__get-env" not in dana
    assert carl == {"demo__echo"}
    assert dana_prompts == {"demo__review", "every__simple-prompt"}
    assert dana_res == {"demo+docs://readme"}
    # Every field the backend sent is kept (schemas, descriptions, annotations).
    direct = await direct_tools(env["everything"].url)
    assert dana["every__get-sum"].input_schema == direct["get-sum"].input_schema
    assert dana["every__get-sum"].description == direct["get-sum"].description
    assert dana["every__get-sum"].annotations == direct["get-sum"].annotations


async def direct_tools(url: str) -> dict:
    async with create_mcp_http_client() as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=TIMEOUT) as s:
                await s.initialize()
                return {t.name: t for t in (await s.list_tools()).tools}


async def test_calls_prompts_and_reads_reach_their_owner(env):
    async with session(vurl(env["a"]), env["tokens"]["dana"]) as s:
        r = await s.call_tool("demo__add", {"a": 2, "b": 40})
        assert r.content[0].text == "42"
        r = await s.call_tool("every__get-sum", {"a": 5, "b": 6})
        assert "11" in r.content[0].text
        p = await s.get_prompt("demo__review", {"code": "x = 1"})
        assert "x = 1" in p.messages[0].content.text
        res = await s.read_resource("demo+docs://readme")
        assert res.contents[0].text == "hello from the demo server"
        # The stdio backend, through the bridge.
        await s.call_tool("mem__create_entities", {"entities": [{"name": "vs-test", "entityType": "t", "observations": ["via gateway"]}]})
        graph = await s.call_tool("mem__read_graph", {})
        assert "vs-test" in graph.content[0].text and "via gateway" in graph.content[0].text
        # Policy still decides, under the backend's name.
        with pytest.raises(MCPError) as denied:
            await s.call_tool("demo__delete_branch", {"repo": "r", "branch": "b"})
        assert denied.value.error.code == -32030
    raw = Raw(vurl(env["a"]), env["tokens"]["carl"])
    raw.initialize()
    m = message(raw.post("tools/call", {"name": "demo__delete_branch", "arguments": {"repo": "r", "branch": "b"}}))
    assert m["error"]["code"] == -32030, m
    m = message(raw.post("tools/call", {"name": "nobody__x", "arguments": {}}))
    assert m["error"]["code"] == -32602 and "nobody" in m["error"]["message"], m


async def test_sampling_round_trip_crosses_the_gateway(env):
    seen = []

    async def sample(ctx, params: types.CreateMessageRequestParams):
        seen.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="sampled!"), model="test-model")

    async with session(vurl(env["a"]), env["tokens"]["dana"], sampling_callback=sample) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "every__trigger-sampling-request" in names
        r = await s.call_tool("every__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
    assert seen and "hi" in seen[0]
    assert "sampled!" in json.dumps([c.model_dump() for c in r.content])


def test_a_session_resumes_on_another_replica_and_only_for_its_principal(env):
    a = Raw(vurl(env["a"]), env["tokens"]["dana"])
    init = a.initialize()
    assert init["result"]["serverInfo"]["name"] == "tools"
    assert a.sid.startswith("m1.k1.")
    # Replica b (rotated keys) opens replica a's session: no shared state.
    b = Raw(vurl(env["b"]), env["tokens"]["dana"])
    m = message(b.post("tools/call", {"name": "demo__echo", "arguments": {"text": "via b"}}, sid=a.sid))
    assert m["result"]["content"][0]["text"] == "via b", m
    # A session b seals uses its new key.
    b2 = Raw(vurl(env["b"]), env["tokens"]["dana"])
    b2.initialize()
    assert b2.sid.startswith("m1.k2.")
    # Another principal presenting dana's session id is refused.
    c = Raw(vurl(env["a"]), env["tokens"]["carl"])
    r = c.post("tools/list", {}, sid=a.sid)
    assert r.status_code == 403 and "another principal" in r.json()["error"]["message"], r.text
    # A forged or unknown id: 404, initialize again (MCP).
    r = c.post("tools/list", {}, sid="m1.k1.AAAA")
    assert r.status_code == 404, r.text
    # GET has no stream on a virtual server: the spec's 405.
    r = httpx.get(vurl(env["a"]), headers={"Authorization": f"Bearer {env['tokens']['dana']}", "Mcp-Session-Id": a.sid,
                                           "Accept": "text/event-stream"}, timeout=TIMEOUT)
    assert r.status_code == 405
    # ping is answered by the gateway.
    m = message(a.post("ping"))
    assert m["result"] == {}, m
    # The cluster header is the module's: a client sending one is refused, on any route.
    for url in (vurl(env["a"]), env["a"].url(path="/demo/mcp")):
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 9, "method": "ping"},
                       headers={"Authorization": f"Bearer {env['tokens']['dana']}", "x-mcp-backend-cluster": "demo",
                                "Accept": "application/json, text/event-stream", "Mcp-Session-Id": a.sid}, timeout=TIMEOUT)
        assert r.status_code == 400 and "set by the gateway only" in r.text, r.text
    # DELETE ends the session on every backend.
    r = httpx.delete(vurl(env["a"]), headers={"Authorization": f"Bearer {env['tokens']['dana']}", "Mcp-Session-Id": a.sid},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    m = a.post("tools/call", {"name": "demo__echo", "arguments": {"text": "after delete"}})
    assert m.status_code == 404, m.text


def test_a_dead_backend_fails_open_or_closed_as_configured(env, tmp_path):
    """A fresh pair of backends, so killing one does not disturb the other tests."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Procs(log_dir)
    try:
        demo = procs.add(McpServer(log_dir, name="demo2"))
        everything = procs.add(EverythingServer(log_dir, name="everything2"))
        issuer = Issuer()
        gw = procs.envoy(bootstrap(issuer, {"demo": demo.port, "everything": everything.port},
                                   [{"id": "k1", "key": KEY1}], log_dir, "dead"), name="envoy-dead")
        token = issuer.token("dana", groups=["dev"])
        raw = Raw(vurl(gw), token)
        raw.initialize()
        before = message(raw.post("tools/list", {}))["result"]["tools"]
        assert any(t["name"].startswith("every__") for t in before)
        # everything (fail_open) dies mid-session: lists answer with demo and say who is missing.
        everything.stop()
        r = raw.post("tools/list", {})
        assert r.status_code == 200
        m = message(r)
        names = {t["name"] for t in m["result"]["tools"]}
        assert names and all(n.startswith("demo__") for n in names), names
        assert m["result"]["_meta"]["io.github.mcp-policy/missing"] == ["everything"]
        # A call dispatched to it: a JSON-RPC error naming it, HTTP 200, not a 5xx.
        r = raw.post("tools/call", {"name": "every__echo", "arguments": {"message": "x"}})
        assert r.status_code == 200, r.text
        m = message(r)
        assert m["error"]["code"] == -32031 and "everything" in m["error"]["message"], m
        # demo (fail_closed) dies too: the list is refused, naming it.
        demo.stop()
        r = raw.post("tools/list", {})
        assert r.status_code == 200
        m = message(r)
        assert m["error"]["code"] == -32031 and "demo" in m["error"]["message"], m
        c = gw.counters("mcp_policy.backend_failures_total")
        assert sum(c.values()) >= 2, c
        def logged():
            lines = [json.loads(l) for l in (log_dir / "dead.access.log").read_text().splitlines() if l.strip()]
            return (any(l.get("mcp_missing_backends") == "everything" and l["mcp_virtual_server"] == "tools" for l in lines)
                    and any(l.get("mcp_backend") == "everything" and l["mcp_method"] == "tools/call" for l in lines))

        # Envoy flushes access-log files about once a second.
        wait_until("the access log names the missing backend and the dispatch target", logged, timeout=10)
    finally:
        procs.stop_all()


def test_the_typescript_sdk_client_sees_one_server(env):
    """The official TypeScript SDK client (its own session handling, its own SSE reader)."""
    plan = [
        {"op": "tools"}, {"op": "prompts"}, {"op": "resources"},
        {"op": "call", "name": "demo__echo", "args": {"text": "from ts"}},
        {"op": "call", "name": "every__echo", "args": {"message": "hello ts"}},
        {"op": "read", "uri": "demo+docs://readme"},
        {"op": "prompt", "name": "demo__review", "args": {"code": "y = 2"}},
    ]
    p = subprocess.run(
        [node_binary(), str(NODE_DIR / "everything_client.mjs"), vurl(env["a"]), json.dumps(plan),
         "--header", f"Authorization: Bearer {env['tokens']['dana']}"],
        capture_output=True, text=True, timeout=90,
    )
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and lines, f"TypeScript client exited {p.returncode}:\n{p.stdout}\n{p.stderr[-2000:]}"
    r = json.loads(lines[-1])["results"]
    assert all(x["ok"] for x in r), r
    tools, prompts, resources, call_demo, call_every, read, prompt = (x["value"] for x in r)
    assert {"demo__echo", "every__echo", "every__get-sum"} <= set(tools) and "demo__delete_branch" not in tools
    assert set(prompts) == {"demo__review", "every__simple-prompt"}
    assert resources == ["demo+docs://readme"]
    assert call_demo["text"] == "from ts"
    assert "hello ts" in call_every["text"]
    assert read[0]["text"] == "hello from the demo server"
    assert "y = 2" in prompt[0]


async def test_a_2026_07_28_stateless_client_is_served_too(procs):
    """The Python SDK's modern client (MCP 2026-07-28: no session, `Mcp-Method`/`Mcp-Name`
    headers, caching hints in list results) against a virtual server over a Python SDK server."""
    from mcp import Client

    issuer = Issuer()
    py = procs.mcp_server("py", json_response=False)
    config = {"server": "direct", "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
              "policy": {"servers": {"py": {}}, "rules": [
                  {"id": "some", "effect": "allow", "servers": ["py"], "principals": [{}], "tools": ["add", "echo"]}]},
              "virtual_servers": {"vs": {"backends": [{"name": "py", "cluster": "py", "authority": "127.0.0.1"}],
                                         "session_keys": [{"id": "k", "key": KEY1}]}}}
    boot = gateway_bootstrap({"py": py.port}, config, access_log=procs.log_dir / "access.log")
    envoy = procs.envoy(add_virtual_server_routes(boot, "vs", "/vs/mcp", "py"))
    token = issuer.token("alice", groups=["x"])
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(envoy.url(path="/vs/mcp"), http_client=http), mode="2026-07-28") as c:
            with anyio.fail_after(TIMEOUT):
                tools = await c.list_tools()
                assert {t.name for t in tools.tools} == {"py__add", "py__echo"}
                r = await c.call_tool("py__add", {"a": 20, "b": 22})
                assert r.content[0].text == "42"
                with pytest.raises(MCPError) as denied:
                    await c.call_tool("py__delete_branch", {"repo": "r", "branch": "b"})
                assert denied.value.error.code == -32030
