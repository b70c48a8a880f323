"""`mcp-stdio-bridge` in front of real stdio MCP servers: npm `@modelcontextprotocol/server-memory`
(and `server-everything` in its stdio mode, for progress and sampling), driven by the official
Python MCP SDK client, and by raw HTTP where a test needs exact ids, headers or statuses."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import anyio
import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CreateMessageResult, TextContent

from harness import NODE_DIR, node_binary
from mcp_client import session

pytestmark = pytest.mark.anyio

CALL = 15  # seconds any one call may take
MEMORY = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
EVERYTHING = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


async def eventually(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def entity(name: str, note: str) -> dict:
    return {"name": name, "entityType": "test", "observations": [note]}


def nodes(result) -> dict[str, list[str]]:
    """open_nodes/read_graph answer → {entity name: observations}."""
    assert not result.is_error, result
    graph = json.loads(result.content[0].text)
    return {e["name"]: e["observations"] for e in graph["entities"]}


async def raw_session(c: httpx.AsyncClient, url: str, version: str = "2025-06-18") -> str:
    r = await c.post(url, headers=HEADERS, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    })
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    assert r.json()["result"]["protocolVersion"] == version
    sid = r.headers["mcp-session-id"]
    n = await c.post(url, headers={**HEADERS, "mcp-session-id": sid}, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert n.status_code == 202
    return sid


async def test_sdk_client_initializes_lists_and_calls_tools(procs):
    b = procs.stdio_bridge()
    async with session(b.url) as s:
        init = await s.initialize()  # the session's cached InitializeResult
        assert init.server_info.name == "memory-server", init
        assert init.capabilities.tools is not None
        with anyio.fail_after(CALL):
            tools = {t.name for t in (await s.list_tools()).tools}
            assert {"create_entities", "read_graph", "open_nodes", "add_observations"} <= tools, tools
            created = await s.call_tool("create_entities", {"entities": [entity("bridge-alpha", "made through the bridge")]})
            assert not created.is_error, created
            await s.call_tool("add_observations", {"observations": [{"entityName": "bridge-alpha", "contents": ["second"]}]})
            got = nodes(await s.call_tool("open_nodes", {"names": ["bridge-alpha"]}))
    assert got == {"bridge-alpha": ["made through the bridge", "second"]}
    # The real child wrote it to its own file.
    assert "bridge-alpha" in (b.log_path.parent / "bridge-memory.jsonl").read_text()


async def test_two_sdk_sessions_using_the_same_request_ids_get_their_own_answers(procs):
    b = procs.stdio_bridge()
    answers: dict[str, list[dict]] = {}
    # server-memory rewrites its whole file on each change (read, modify, write), so two writes at
    # once can lose one: the writes take turns, the reads below do not.
    writes = anyio.Lock()

    async def client(tag: str):
        async with session(b.url) as s:
            with anyio.fail_after(CALL):
                async with writes:
                    await s.call_tool("create_entities", {"entities": [entity(tag, f"owned by {tag}")]})
                got: list[dict] = []

                async def ask():
                    got.append(nodes(await s.call_tool("open_nodes", {"names": [tag]})))

                # Both sessions number their requests from the same start, and each keeps several
                # in flight at once: the child sees them all on one stdin.
                async with anyio.create_task_group() as tg:
                    for _ in range(8):
                        tg.start_soon(ask)
                answers[tag] = got

    async with anyio.create_task_group() as tg:
        tg.start_soon(client, "session-one")
        tg.start_soon(client, "session-two")
    for tag in ("session-one", "session-two"):
        assert answers[tag] == [{tag: [f"owned by {tag}"]}] * 8, answers[tag]


async def test_raw_http_same_ids_in_two_sessions_and_the_protocol_edges(procs):
    b = procs.stdio_bridge()
    async with httpx.AsyncClient(timeout=CALL) as c:
        a = await raw_session(c, b.url, "2025-06-18")
        z = await raw_session(c, b.url, "2025-03-26")
        assert a != z and len(a) == 32

        async def call(sid: str, rid, name: str):
            r = await c.post(b.url, headers={**HEADERS, "mcp-session-id": sid}, json={
                "jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": "search_nodes", "arguments": {"query": name}},
            })
            assert r.status_code == 200, r.text
            return r.json()

        results = {}

        async def both(rid):
            results[("a", rid)] = await call(a, rid, f"query-a-{rid}")
            results[("z", rid)] = await call(z, rid, f"query-z-{rid}")

        async with anyio.create_task_group() as tg:
            for rid in [1, "same", 3.5]:
                tg.start_soon(both, rid)
        for (who, rid), r in results.items():
            assert r["id"] == rid, r  # the client's own id comes back, not the bridge's

        # A protocol version header that the session did not negotiate, or that nobody speaks.
        r = await c.post(b.url, headers={**HEADERS, "mcp-session-id": a, "mcp-protocol-version": "2025-03-26"},
                         json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
        assert r.status_code == 400 and "2025-06-18" in r.json()["error"]["message"]
        r = await c.post(b.url, headers={**HEADERS, "mcp-protocol-version": "2099-01-01"}, json={})
        assert r.status_code == 400 and "unsupported MCP-Protocol-Version" in r.json()["error"]["message"]
        # Origin: loopback passes, anything else is refused.
        r = await c.post(b.url, headers={**HEADERS, "mcp-session-id": a, "origin": "http://localhost:6274"},
                         json={"jsonrpc": "2.0", "id": 10, "method": "ping"})
        assert r.status_code == 200 and r.json() == {"jsonrpc": "2.0", "id": 10, "result": {}}
        r = await c.post(b.url, headers={**HEADERS, "origin": "http://evil.example"}, json={})
        assert r.status_code == 403
        # No GET stream; unknown session 404; DELETE ends one.
        r = await c.get(b.url, headers={"accept": "text/event-stream", "mcp-session-id": a})
        assert r.status_code == 405 and r.headers["allow"] == "POST, DELETE"
        r = await c.post(b.url, headers={**HEADERS, "mcp-session-id": "f" * 32}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 404 and r.json()["id"] == 1
        assert (await c.delete(b.url, headers={"mcp-session-id": z})).status_code == 204
        r = await c.post(b.url, headers={**HEADERS, "mcp-session-id": z}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 404
        r = await c.post(b.url, headers=HEADERS, json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
        assert r.status_code == 400 and "batches are not supported" in r.json()["error"]["message"]


async def test_a_killed_child_gives_json_rpc_errors_while_down_then_is_restarted(procs, tmp_path):
    hold = tmp_path / "hold"
    # The real server behind a gate: while `hold` exists, each start fails at once, so the test
    # sees the bridge's answer while the child is down without racing the restart.
    gate = 'if [ -e "$HOLD" ]; then echo "held by the test" >&2; exit 3; fi; exec "$@"'
    b = procs.stdio_bridge(child=["sh", "-c", gate, "sh", node_binary(), str(MEMORY)], env={"HOLD": str(hold)})
    async with session(b.url) as s:
        with anyio.fail_after(CALL):
            await s.call_tool("create_entities", {"entities": [entity("survivor", "written before the crash")]})
        first_pid = b.child_pids()[-1]
        hold.touch()
        os.kill(first_pid, signal.SIGKILL)
        await eventually("the bridge to see the child die", lambda: "restarting in" in b.log())

        with anyio.fail_after(CALL), pytest.raises(MCPError) as e:
            await s.call_tool("read_graph", {})
        assert e.value.error.code == -32000, e.value.error
        assert "not running" in e.value.error.message and "restarts it in" in e.value.error.message, e.value.error

        # The same, seen on the wire: 503 with Retry-After and a JSON-RPC error body.
        async with httpx.AsyncClient(timeout=CALL) as c:
            raw = await raw_initialize(c, b.url)
            assert raw.status_code == 503 and int(raw.headers["retry-after"]) >= 1, raw.text
            assert raw.json()["error"]["code"] == -32000 and raw.json()["id"] == 1

        hold.unlink()
        await eventually("a restarted child", lambda: b.ready_count() >= 2, timeout=20)
        assert b.child_pids()[-1] != first_pid
        with anyio.fail_after(CALL):
            # The same HTTP session goes on; the restarted child read its graph back from disk.
            got = nodes(await s.call_tool("open_nodes", {"names": ["survivor"]}))
    assert got == {"survivor": ["written before the crash"]}
    assert "held by the test" in b.log()  # the child's stderr reaches the bridge's, prefixed
    assert "[child " in b.log()


async def raw_initialize(c: httpx.AsyncClient, url: str) -> httpx.Response:
    return await c.post(url, headers=HEADERS, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    })


async def test_a_stuck_child_times_out_and_the_queue_is_bounded(procs):
    b = procs.stdio_bridge(args=["--request-timeout-ms", "1500", "--max-queue", "2"])
    async with httpx.AsyncClient(timeout=CALL) as c:
        sid = await raw_session(c, b.url)
        h = {**HEADERS, "mcp-session-id": sid}
        pid = b.child_pids()[-1]
        os.kill(pid, signal.SIGSTOP)  # alive, reading nothing
        try:
            out = []

            async def ask(rid):
                r = await c.post(b.url, headers=h, json={"jsonrpc": "2.0", "id": rid, "method": "tools/list"})
                out.append((r.status_code, r.json(), time.monotonic()))

            t0 = time.monotonic()
            async with anyio.create_task_group() as tg:
                for rid in (1, 2, 3):
                    tg.start_soon(ask, rid)
        finally:
            os.kill(pid, signal.SIGCONT)
        statuses = sorted(s for s, _, _ in out)
        assert statuses == [429, 504, 504], out
        for status, body, at in out:
            if status == 429:
                assert body["error"]["code"] == -32005 and "--max-queue" in body["error"]["message"], body
                assert at - t0 < 1.0, "refused at once, not after the timeout"
            else:
                assert body["error"]["code"] == -32001, body
                assert "1500 ms" in body["error"]["message"] and "--request-timeout-ms" in body["error"]["message"]
        # The child runs again: new requests are answered.
        r = await c.post(b.url, headers=h, json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
        assert r.status_code == 200 and r.json()["result"]["tools"], r.text
    assert b.child_pids() == [pid], "a slow child is not restarted"


async def test_progress_and_sampling_reach_the_client_on_the_posts_sse_stream(procs):
    b = procs.stdio_bridge(name="everything", child=[node_binary(), str(EVERYTHING), "stdio"])
    asked = []

    async def sampling(context, params):
        asked.append(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="sampled by the test"), model="test-model")

    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total))

    async with create_mcp_http_client() as http:
        async with streamable_http_client(b.url, http_client=http) as (read, write):
            async with ClientSession(read, write, sampling_callback=sampling) as s:
                await s.initialize()
                with anyio.fail_after(CALL):
                    r = await s.call_tool("trigger-long-running-operation", {"duration": 0.6, "steps": 3},
                                          progress_callback=on_progress)
                    assert "Long running operation completed" in r.content[0].text, r
                    r = await s.call_tool("trigger-sampling-request", {"prompt": "through the bridge"})
    assert progress == [(1, 3), (2, 3), (3, 3)], progress
    assert asked and "through the bridge" in asked[0], asked
    assert "sampled by the test" in r.content[0].text, r


def test_sigterm_stops_the_bridge_and_its_child_cleanly(procs):
    b = procs.stdio_bridge()
    child = b.child_pids()[-1]
    t0 = time.monotonic()
    os.kill(b.popen.pid, signal.SIGTERM)
    assert b.popen.wait(10) == 0, b.tail()
    assert time.monotonic() - t0 < 5
    log = b.log()
    assert "SIGTERM received" in log and "closing the child's stdin" in log, log
    # server-memory exits by itself once its stdin closes: no kill was needed.
    assert "(exit status: 0) (shutdown)" in log and "killing it" not in log, log
    assert log.rstrip().endswith("mcp-stdio-bridge: stopped"), log
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", b.port), timeout=1).close()
