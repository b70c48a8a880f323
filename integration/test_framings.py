"""Fail closed, provably: whatever framing an upstream answers a tools/list in, a tool the caller
may not see never reaches it, and valid framings still arrive intact (filtered).

One real Envoy with the module, one raw HTTP/1.1 upstream (`peers/framing_server.py`) that
answers with the canned shape the request's `x-test-shape` names; every answer lists `ok_tool`
(allowed) and `secret_tool` (hidden from the caller). What the client receives is read the way
the most lenient client would (`lenient.py`): if it could see `secret_tool`, the test fails.
Besides a filtered answer, the only acceptable outcome is a refusal: a JSON-RPC error carrying
the request id, an HTTP 5xx, or a reset/truncated stream.

Every case first asks the upstream directly and checks that the same lenient reading DOES find
`secret_tool` there, so no case can pass because the shape carried nothing to hide.
"""

from __future__ import annotations

import json

import pytest

from conftest import Procs
from harness import FramingServer, gateway_bootstrap
from issuer import Issuer
import lenient

SECRET = "secret_tool"
POLICY = {
    "rules": [
        {"id": "devs-ok-tool", "effect": "allow", "principals": [{"groups": ["devs"]}], "tools": ["ok_tool"]},
        {"id": "nobody-secret", "effect": "deny", "principals": [{}], "tools": [SECRET]},
    ]
}
SECURITY = {"allowed_hosts": ["127.0.0.1:*", "localhost:*"], "allowed_origins": ["http://127.0.0.1:*", "http://localhost:*"]}
TOOLS_LIST = b'{"jsonrpc":"2.0","id":41,"method":"tools/list"}'
BATCH_LIST = b'[{"jsonrpc":"2.0","id":7,"method":"tools/list"}, {"jsonrpc":"2.0","id":"a\\u0062","method":"tools/list"}]'
BATCH_PLAIN = b'[{"jsonrpc":"2.0","id":7,"method":"tools/list"}, {"jsonrpc":"2.0","id":"ab","method":"tools/list"}]'


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("framings") / "logs"
    log_dir.mkdir()
    procs = Procs(log_dir)
    try:
        upstream = procs.add(FramingServer(log_dir))
        issuer = Issuer()
        config = {
            "server": "framing",
            "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
            "policy": POLICY,
            "security": SECURITY,
        }
        boot = gateway_bootstrap({"framing": upstream.port}, config, access_log=log_dir / "access.log", http1_trailers=True)
        gw = procs.envoy(boot)
        gw.port = gw.listener_port("mcp_gateway")
        gw.token = issuer.token("dana", groups=["devs"])
        yield procs, upstream, gw
    finally:
        procs.stop_all()


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request, env):
    env[1].reset()
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        env[0]._dump()


def headers(gw, shape: str, **extra: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "accept-encoding": "gzip, deflate",  # what httpx (the Python SDK's client) sends
        "authorization": f"Bearer {gw.token if gw is not None else ''}",
        "x-test-shape": shape,
        **extra,
    }


def post(port: int, shape: str, body: bytes, gw=None) -> lenient.Wire:
    """POST `body` to the gateway (with the caller's token) or, without `gw`, to the upstream directly."""
    h = headers(gw, shape)
    if gw is None:
        del h["authorization"]
    return lenient.exchange(port, "POST", "/mcp", h, body)


def tool_names(msg) -> list[str] | None:
    try:
        return [t["name"] for t in msg["result"]["tools"]]
    except (KeyError, TypeError):
        return None


def same_id(a, b) -> bool:
    """JSON-RPC ids as a lenient (JavaScript) client compares them: 7 == 7.0 == 7e0, "ab" == "a\\u0062"."""
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    return (num(a) and num(b) and a == b) or (isinstance(a, str) and a == b)


def judge(w: lenient.Wire, ids: list) -> tuple[str, str]:
    outcome, why = _judge(w, ids)
    print(f"outcome: {outcome}: {why}")  # shown with -rP: what the module did, for passing cases too
    return outcome, why


def _judge(w: lenient.Wire, ids: list) -> tuple[str, str]:
    """('leak' | 'filtered' | 'refused' | 'hang' | 'other', one-line description).

    filtered: the client can read at least one list result and every one it can read lists
    `ok_tool` alone. refused: a reset or truncated stream, an HTTP 5xx, or no list at all and a
    JSON-RPC error for every requested id."""
    said = f"HTTP {w.status} {w.media_type or '(no content-type)'}, {len(w.body)} body bytes, complete={w.complete}, reset={w.reset}"
    msgs = [m for m in lenient.messages(w) if isinstance(m, dict)]
    if SECRET.encode() in w.raw or SECRET.encode() in w.body:
        leaked = [m.get("id") for m in msgs if SECRET in (tool_names(m) or [])]
        return "leak", f"{SECRET} reached the client in the answers with ids {leaked} ({said}): {w.body[:300]!r}"
    if w.timed_out:
        return "hang", f"no complete answer within 10 s ({said}): {w.raw[:300]!r}"
    if w.reset or not w.complete or w.status is None:
        return "refused", f"stream reset or truncated ({said})"
    if w.status >= 500:
        return "refused", f"HTTP {w.status}: {w.body[:200]!r}"
    lists = [m for m in msgs if tool_names(m) is not None]
    if lists and all(tool_names(m) == ["ok_tool"] for m in lists):
        return "filtered", f"lists for ids {[m.get('id') for m in lists]} ({said})"
    errors = [m for m in msgs if "error" in m]
    if not lists and all(any(same_id(m.get("id"), i) for m in errors) for i in ids):
        return "refused", f"JSON-RPC errors {[(m.get('id'), m['error']) for m in errors]} ({said})"
    return "other", f"neither a filtered list nor a refusal for ids {ids} ({said}): {w.body[:300]!r}"


def assert_upstream_shape_carries_the_secret(upstream, shape: str, body: bytes) -> lenient.Wire:
    direct = post(upstream.port, shape, body)
    names = {n for m in lenient.messages(direct) if isinstance(m, dict) for n in (tool_names(m) or [])}
    assert SECRET in names and "ok_tool" in names, f"shape {shape} does not carry both tools directly: {direct.raw[:400]!r}"
    upstream.reset()
    return direct


# ---------------------------------------------------------------------------------------------
# Valid framings: must arrive, filtered, with everything else intact.
# ---------------------------------------------------------------------------------------------

VALID_SSE = [
    "sse_lf", "sse_crlf", "sse_cr", "sse_priming_event", "sse_comments_retry_ids", "sse_multiline_data", "sse_bom",
    "sse_uppercase_media_type", "sse_no_space_after_colon", "sse_split_across_chunks", "sse_notification_and_request_first",
]
VALID_JSON = ["json_plain", "json_mixed_case_media_type", "json_chunked_with_trailers"]


def without_secret(msg):
    msg = json.loads(json.dumps(msg))
    msg["result"]["tools"] = [t for t in msg["result"]["tools"] if t["name"] != SECRET]
    return msg


@pytest.mark.parametrize("shape", VALID_SSE)
def test_a_valid_sse_answer_arrives_filtered_with_every_event_comment_retry_and_id_intact(env, shape):
    _, upstream, gw = env
    direct = assert_upstream_shape_carries_the_secret(upstream, shape, TOOLS_LIST)
    w = post(gw.port, shape, TOOLS_LIST, gw)
    outcome, why = judge(w, [41])
    assert outcome == "filtered", why
    assert w.status == direct.status
    assert w.media_type == "text/event-stream"
    want_events, want_comments = lenient.parse_sse(direct.body.decode())
    got_events, got_comments = lenient.parse_sse(w.body.decode())
    assert [(e.type, e.id, e.retry) for e in got_events] == [(e.type, e.id, e.retry) for e in want_events], w.body
    # Comments in blocks of their own (keep-alives) pass through; one inside the rewritten event may go.
    assert [c for c, inside in got_comments if not inside] == [c for c, inside in want_comments if not inside], w.body
    for want, got in zip(want_events, got_events):
        if not want.data.strip():
            assert got.data == want.data  # the priming event's empty data stays empty
        elif tool_names(json.loads(want.data)) is not None:
            assert json.loads(got.data) == without_secret(json.loads(want.data))
        else:
            assert json.loads(got.data) == json.loads(want.data)  # other messages pass as they are


@pytest.mark.parametrize("shape", VALID_JSON)
def test_a_valid_json_answer_arrives_filtered_and_otherwise_unchanged(env, shape):
    _, upstream, gw = env
    direct = assert_upstream_shape_carries_the_secret(upstream, shape, TOOLS_LIST)
    w = post(gw.port, shape, TOOLS_LIST, gw)
    outcome, why = judge(w, [41])
    assert outcome == "filtered", why
    assert w.status == direct.status
    assert w.media_type == "application/json"
    assert json.loads(w.body) == without_secret(json.loads(direct.body))
    if shape == "json_chunked_with_trailers":
        # Envoy forwards the upstream's trailers (enabled on both codecs): the module must not eat them.
        assert ("x-upstream-checksum", "c0ffee") in w.trailers, (w.trailers, w.raw[-200:])


def test_a_valid_batch_of_two_list_requests_gets_both_lists_filtered(env):
    _, upstream, gw = env
    assert_upstream_shape_carries_the_secret(upstream, "batch_echoes_ids", BATCH_PLAIN)
    w = post(gw.port, "batch_echoes_ids", BATCH_PLAIN, gw)
    outcome, why = judge(w, [7, "ab"])
    assert outcome == "filtered", why
    assert sorted(str(m["id"]) for m in json.loads(w.body)) == ["7", "ab"], w.body


def test_a_json_rpc_error_answering_a_list_arrives_unchanged(env):
    _, upstream, gw = env
    direct = post(upstream.port, "json_error_answer", TOOLS_LIST)
    assert json.loads(direct.body)["error"]["message"] == "no list today"
    w = post(gw.port, "json_error_answer", TOOLS_LIST, gw)
    assert (w.status, w.media_type) == (200, "application/json"), w.raw[:300]
    assert json.loads(w.body) == json.loads(direct.body)


# ---------------------------------------------------------------------------------------------
# Framings the module cannot (or need not) judge: filtered or refused, never delivered as is.
# ---------------------------------------------------------------------------------------------

ODD = [
    "sse_no_final_blank_line", "sse_custom_event_type",
    "json_missing_content_type", "json_seq", "ndjson", "text_plain",
    "json_status_201", "json_status_202_with_list", "json_status_400_with_list", "json_status_500_with_list",
    "json_gzip_always", "sse_gzip_always",
    "json_id_rerendered_as_float", "json_unrequested_id",
]


@pytest.mark.parametrize("shape", ODD)
def test_an_odd_single_answer_is_filtered_or_refused_never_delivered_as_is(env, shape):
    _, upstream, gw = env
    assert_upstream_shape_carries_the_secret(upstream, shape, TOOLS_LIST)
    w = post(gw.port, shape, TOOLS_LIST, gw)
    outcome, why = judge(w, [41])
    assert outcome in ("filtered", "refused"), why


@pytest.mark.parametrize("shape", ["json_gzip_when_accepted", "sse_gzip_when_accepted"])
def test_a_gzip_answer_is_either_avoided_by_asking_for_identity_or_refused(env, shape):
    _, upstream, gw = env
    assert_upstream_shape_carries_the_secret(upstream, shape, TOOLS_LIST)
    w = post(gw.port, shape, TOOLS_LIST, gw)
    got = upstream.requests()
    assert len(got) == 1, got
    accept_encoding = dict(got[0]["headers"]).get("accept-encoding")
    outcome, why = judge(w, [41])
    upstream_gzipped = any(p.strip().split(";")[0] in ("gzip", "*") for p in (accept_encoding or "").split(","))
    if upstream_gzipped:
        assert outcome in ("filtered", "refused"), f"upstream got accept-encoding {accept_encoding!r}: {why}"
    else:
        # The module asked for identity: the answer is plain and must simply be filtered.
        assert outcome == "filtered", f"upstream got accept-encoding {accept_encoding!r}: {why}"


ODD_BATCH = [
    "batch_echoes_ids",  # the request said "a\u0062", the upstream (any JSON library) says "ab"
    "batch_id_7_0", "batch_id_7e0", "batch_unrequested_id", "batch_element_without_jsonrpc", "batch_element_with_result_and_error",
]


@pytest.mark.parametrize("shape", ODD_BATCH)
def test_an_odd_batch_answer_is_filtered_or_refused_never_delivered_as_is(env, shape):
    _, upstream, gw = env
    assert_upstream_shape_carries_the_secret(upstream, shape, BATCH_LIST)
    w = post(gw.port, shape, BATCH_LIST, gw)
    outcome, why = judge(w, [7, "ab"])
    assert outcome in ("filtered", "refused"), why


def test_a_batch_with_duplicate_ids_is_refused_before_anything_reaches_the_upstream(env):
    _, upstream, gw = env
    body = (b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"},'
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok_tool","arguments":{}}}]')
    w = lenient.exchange(gw.port, "POST", "/mcp", headers(gw, "batch_echoes_ids"), body)
    print(f"outcome: HTTP {w.status}: {w.body[:200]!r}")
    assert upstream.requests() == []
    assert not w.timed_out, w.raw[:300]
    msgs = [m for m in lenient.messages(w) if isinstance(m, dict)]
    refused = (w.status is not None and w.status >= 400) or (msgs and all("error" in m for m in msgs))
    assert refused, (w.status, w.body[:300])


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS"])
def test_a_forbidden_call_in_the_body_of_a_non_post_request_never_reaches_the_upstream(env, method):
    _, upstream, gw = env
    body = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": SECRET, "arguments": {}}}).encode()
    h = headers(gw, "ack")
    if method == "OPTIONS":
        h.update({"origin": f"http://127.0.0.1:{gw.port}", "access-control-request-method": "POST"})
    direct = {k: v for k, v in h.items() if k != "authorization"}
    lenient.exchange(upstream.port, method, "/mcp", direct, body)
    assert any(SECRET in r["body"] for r in upstream.requests()), "the upstream does not record such bodies"
    upstream.reset()
    w = lenient.exchange(gw.port, method, "/mcp", h, body)
    assert not w.timed_out, w.raw[:300]
    got = upstream.requests()
    print(f"outcome: HTTP {w.status}; the upstream saw {[(r['method'], r['body']) for r in got]}")
    assert not any(SECRET in r["body"] for r in got), f"{method} body reached the upstream: {got}"


def test_every_shape_these_tests_name_exists_on_the_upstream(env):
    named = set(VALID_SSE) | set(VALID_JSON) | set(ODD) | set(ODD_BATCH) | {
        "json_gzip_when_accepted", "sse_gzip_when_accepted", "batch_echoes_ids", "ack", "json_error_answer"}
    assert named <= set(env[1].shapes()), named - set(env[1].shapes())


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_get_or_delete_without_a_body_still_reaches_the_upstream(env, method):
    _, upstream, gw = env
    h = {k: v for k, v in headers(gw, "ack").items() if k != "content-type"}
    h["accept"] = "text/event-stream" if method == "GET" else h["accept"]
    w = lenient.exchange(gw.port, method, "/mcp", h)
    got = upstream.requests()
    assert [(r["method"], r["body"]) for r in got] == [(method, "")], (w.status, w.body[:200])
    assert w.status == 200 and json.loads(w.body) == {"jsonrpc": "2.0", "id": None, "result": {}}, w.raw[:300]
