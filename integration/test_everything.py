"""The official MCP reference server, `@modelcontextprotocol/server-everything`, behind the gateway,
driven by the official Python SDK client and the official TypeScript SDK client: lists filtered
per principal, allowed calls answered, forbidden ones refused with -32030.

server-everything is stateful and answers every request with SSE, opening each answer with a
*priming* event (an `id:` and an empty `data:`, for resumability) before the `event: message`
that carries the JSON-RPC response. Valid traffic must pass that framing intact.

Every client call has a 10 s timeout, so a gateway that swallows an answer fails a test quickly.
What each principal may see is computed from what the server lists directly (no gateway), so
every "absent" assertion names something the server really offers.
"""

from __future__ import annotations

import contextlib
import json
import subprocess

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import Procs
from harness import NODE_DIR, EverythingServer, gateway_bootstrap, node_binary
from issuer import Issuer

pytestmark = pytest.mark.anyio

CALL_TIMEOUT = 10.0
DOCS = "demo://resource/static/document/"
POLICY = {
    "rules": [
        {"id": "ops-work", "effect": "allow", "principals": [{"groups": ["ops"]}],
         "tools": ["echo", "get-sum", "get-env"], "prompts": ["simple-prompt", "args-prompt"],
         "resources": [DOCS + "*", "demo://resource/dynamic/text/*"]},
        {"id": "guests-look", "effect": "allow", "principals": [{"groups": ["guests"]}],
         "tools": ["echo"], "prompts": ["simple-prompt"], "resources": [DOCS + "features.md"]},
    ]
}
SECURITY = {"allowed_hosts": ["127.0.0.1:*", "localhost:*"], "allowed_origins": ["http://127.0.0.1:*", "http://localhost:*"]}
PEOPLE = {"olga": ["ops"], "gus": ["guests"]}


def allowed(who: str, kind: str, name: str) -> bool:
    """The policy above, read by hand for the names this server has."""
    if who == "olga":
        return {
            "tools": name in ("echo", "get-sum", "get-env"),
            "prompts": name in ("simple-prompt", "args-prompt"),
            "resources": name.startswith(DOCS),
            "templates": name.startswith("demo://resource/dynamic/text/"),
        }[kind]
    return {
        "tools": name == "echo",
        "prompts": name == "simple-prompt",
        "resources": name == DOCS + "features.md",
        "templates": False,
    }[kind]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("everything") / "logs"
    log_dir.mkdir()
    procs = Procs(log_dir)
    try:
        upstream = procs.add(EverythingServer(log_dir))
        issuer = Issuer()
        config = {
            "server": "everything",
            "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
            "policy": POLICY,
            "security": SECURITY,
        }
        gw = procs.envoy(gateway_bootstrap({"everything": upstream.port}, config, access_log=log_dir / "access.log"))
        gw.tokens = {who: issuer.token(who, groups=groups) for who, groups in PEOPLE.items()}
        yield procs, upstream, gw
    finally:
        procs.stop_all()


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request, env):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        env[0]._dump()


@contextlib.asynccontextmanager
async def session(url: str, token: str | None = None):
    """A Python SDK session where initialize and every request time out after 10 s."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT) as s:
                    with anyio.fail_after(CALL_TIMEOUT):
                        await s.initialize()
                    yield s
    except BaseExceptionGroup as group:  # the transport's task group wraps what the test raised
        leaf = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        raise leaf from group


async def within(coro):
    with anyio.fail_after(CALL_TIMEOUT):
        return await coro


async def catalogue(s: ClientSession) -> dict[str, set[str]]:
    return {
        "tools": {t.name for t in (await within(s.list_tools())).tools},
        "prompts": {p.name for p in (await within(s.list_prompts())).prompts},
        "resources": {str(r.uri) for r in (await within(s.list_resources())).resources},
        "templates": {t.uri_template for t in (await within(s.list_resource_templates())).resource_templates},
    }


@pytest.fixture(scope="module")
def direct(env):
    """What server-everything offers when asked directly (the Python SDK client, no gateway)."""

    async def ask():
        async with session(env[1].url) as s:
            return await catalogue(s)

    return anyio.run(ask)


def expected(direct: dict[str, set[str]], who: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    shown = {k: {n for n in names if allowed(who, k, n)} for k, names in direct.items()}
    hidden = {k: direct[k] - shown[k] for k in direct}
    return shown, hidden


def test_the_server_offers_something_to_hide_from_each_principal(direct):
    for who in PEOPLE:
        shown, hidden = expected(direct, who)
        assert shown["tools"] and shown["prompts"] and shown["resources"], (who, shown)
        assert hidden["tools"] and hidden["prompts"] and hidden["templates"], (who, hidden)
    assert expected(direct, "olga")[0]["templates"], "olga should see the text template"
    assert expected(direct, "gus")[1]["resources"], "gus should miss some documents"


@pytest.mark.parametrize("who", list(PEOPLE))
async def test_python_client_lists_only_what_the_principal_may_use(env, direct, who):
    shown, hidden = expected(direct, who)
    async with session(env[2].url(), env[2].tokens[who]) as s:
        got = await catalogue(s)
    for kind in direct:
        assert got[kind] == shown[kind], (kind, got[kind])
        assert not (got[kind] & hidden[kind]), (kind, got[kind] & hidden[kind])


async def test_python_client_allowed_call_read_and_prompt_are_answered(env):
    # Note: the SDK's call_tool lists tools first (to validate structured output), so a gateway
    # that breaks tools/list breaks every tool call from this client too.
    async with session(env[2].url(), env[2].tokens["gus"]) as s:
        r = await within(s.call_tool("echo", {"message": "through the gateway"}))
        assert r.content[0].text == "Echo: through the gateway"
        doc = await within(s.read_resource(DOCS + "features.md"))
        assert doc.contents[0].uri == DOCS + "features.md" and doc.contents[0].text
        p = await within(s.get_prompt("simple-prompt"))
        assert p.messages[0].content.text == "This is a simple prompt without arguments."


@pytest.mark.parametrize("what", ["call", "read", "prompt"])
async def test_python_client_forbidden_call_read_and_prompt_are_refused_with_32030(env, what):
    async with session(env[2].url(), env[2].tokens["gus"]) as s:
        with pytest.raises(MCPError) as e:
            if what == "call":
                await within(s.call_tool("get-env", {}))
            elif what == "read":
                await within(s.read_resource(DOCS + "architecture.md"))
            else:
                await within(s.get_prompt("args-prompt", {"city": "Paris"}))
        assert e.value.error.code == -32030, e.value.error
        # The session still works after a refusal.
        assert (await within(s.call_tool("echo", {"message": "still here"}))).content[0].text == "Echo: still here"


def run_ts(url: str, token: str | None, plan: list[dict]) -> list[dict]:
    hdr = ["--header", f"Authorization: Bearer {token}"] if token else []
    p = subprocess.run(
        [node_binary(), str(NODE_DIR / "everything_client.mjs"), url, json.dumps(plan), *hdr],
        capture_output=True, text=True, timeout=90,
    )
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and lines, f"TypeScript client exited {p.returncode}:\n{p.stdout}\n{p.stderr[-2000:]}"
    return json.loads(lines[-1])["results"]


LISTS = [{"op": "tools"}, {"op": "prompts"}, {"op": "resources"}, {"op": "templates"}]


@pytest.mark.parametrize("who", list(PEOPLE))
def test_typescript_client_lists_only_what_the_principal_may_use(env, direct, who):
    shown, hidden = expected(direct, who)
    results = run_ts(env[2].url(), env[2].tokens[who], LISTS)
    for op, r in zip(LISTS, results):
        kind = op["op"]
        assert r["ok"], (kind, r)
        assert set(r["value"]) == shown[kind], (kind, r["value"])
        assert not (set(r["value"]) & hidden[kind])


def test_typescript_client_allowed_ops_are_answered_and_forbidden_ones_refused_with_32030(env):
    plan = [
        {"op": "call", "name": "echo", "args": {"message": "ts"}},
        {"op": "read", "uri": DOCS + "features.md"},
        {"op": "prompt", "name": "simple-prompt"},
        {"op": "call", "name": "get-env", "args": {}},
        {"op": "read", "uri": DOCS + "architecture.md"},
        {"op": "prompt", "name": "args-prompt", "args": {"city": "Paris"}},
        {"op": "call", "name": "echo", "args": {"message": "after"}},
    ]
    r = run_ts(env[2].url(), env[2].tokens["gus"], plan)
    assert r[0] == {"op": "call", "ok": True, "value": {"isError": False, "text": "Echo: ts"}}
    assert r[1]["ok"] and r[1]["value"][0]["uri"] == DOCS + "features.md" and r[1]["value"][0]["text"], r[1]
    assert r[2] == {"op": "prompt", "ok": True, "value": ["This is a simple prompt without arguments."]}
    for refused in r[3:6]:
        assert not refused["ok"] and refused["error"]["code"] == -32030, refused
    assert r[6] == {"op": "call", "ok": True, "value": {"isError": False, "text": "Echo: after"}}


# ---------------------------------------------------------------------------------------------
# Resumability (2025-11-25): server-everything stores every event it sends and replays the ones
# after `Last-Event-ID` on a GET stream. Its store is per session but not per stream, so the id
# of ANY event the caller saw (the priming event of its own initialize answer) replays every
# answer sent since, list results included, on a GET response the gateway did not ask for.
# ---------------------------------------------------------------------------------------------

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "resumer", "version": "1"}}}


def open_session_and_list(url: str, token: str | None) -> tuple[dict[str, str], str | None]:
    """initialize + initialized + tools/list over raw HTTP; returns the session headers and the
    first SSE event id seen in the initialize answer (None if the caller saw none)."""
    import httpx

    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if token:
        h["authorization"] = f"Bearer {token}"
    r = httpx.post(url, headers=h, json=INIT, timeout=CALL_TIMEOUT)
    assert r.status_code == 200, r.text
    ids = [line[3:].strip() for line in r.text.splitlines() if line.startswith("id:")]
    h = {**h, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    httpx.post(url, headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=CALL_TIMEOUT)
    try:  # whatever the gateway does with this answer: the server has stored the full list by now
        with httpx.stream("POST", url, headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, timeout=CALL_TIMEOUT) as s:
            for _ in s.iter_raw():
                pass
    except httpx.HTTPError:
        pass
    return h, (ids[0] if ids else None)


def replay(url: str, h: dict[str, str], last_event_id: str, secret: bytes) -> bytes:
    """GET with Last-Event-ID; everything received within 5 s (or until `secret` shows up)."""
    import httpx

    got = b""
    try:
        with httpx.stream("GET", url, headers={**h, "accept": "text/event-stream", "last-event-id": last_event_id},
                          timeout=httpx.Timeout(5.0)) as s:
            for chunk in s.iter_raw():
                got += chunk
                if secret in got:
                    break
    except httpx.HTTPError:
        pass
    return got


def test_resuming_with_last_event_id_never_replays_a_list_the_caller_may_not_see(env, direct):
    _, upstream, gw = env
    hidden_tool = "get-env"
    assert hidden_tool in direct["tools"] and not allowed("gus", "tools", hidden_tool)
    secret = f'"name":"{hidden_tool}"'.encode()
    # Directly, the replay does carry the full list (so this test can fail).
    h, first = open_session_and_list(upstream.url, None)
    assert first is not None
    assert secret in replay(upstream.url, h, first, secret)
    # Through the gateway, gus must never get it, whether or not it saw an event id to resume from.
    h, first = open_session_and_list(gw.url(), gw.tokens["gus"])
    if first is None:
        return  # no event id reached the caller: nothing to resume from (ids are random UUIDs)
    got = replay(gw.url(), h, first, secret)
    assert secret not in got, f"a GET resumption replayed the unfiltered tools/list: {got[:600]!r}"
