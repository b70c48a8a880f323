"""MCP-aware policy end to end: per-principal lists, refusals, audit mode, argument
constraints, 2026-07-28 header checks, batches and the decision log, through real Envoy with two
real MCP servers (Python SDK answering SSE, TypeScript SDK answering JSON) and real clients."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from mcp.shared.exceptions import MCPError as McpError

from harness import NODE_DIR, node_binary
from issuer import Issuer
from mcp_client import session

pytestmark = pytest.mark.anyio

POLICY = {
    "servers": {"py": {}, "ts": {}, "tsaudit": {"mode": "audit"}},
    "rules": [
        {"id": "admins-all", "effect": "allow", "principals": [{"groups": ["admins"]}],
         "tools": ["*"], "resources": ["*"], "prompts": ["*"], "methods": ["*"]},
        {"id": "devs-read", "effect": "allow", "principals": [{"groups": ["devs"]}],
         "tools": ["echo"], "resources": ["docs://*"], "prompts": ["review", "summarize"]},
        {"id": "devs-acme-only", "effect": "allow", "principals": [{"groups": ["devs"]}],
         "tools": ["list_issues", "search_repos"],
         "arguments": {"repo": {"patterns": ["acme/*"]}, "limit": {"type": "integer", "maximum": 100, "optional": True}}},
        {"id": "contractors-echo", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo"]},
        {"id": "nobody-destroys", "effect": "deny", "principals": [{}], "tools": ["drop_*", "delete_*"]},
    ],
}

PEOPLE = {"alice": ["admins"], "bob": ["devs"], "carol": ["contractors"]}

# What each principal may see, per server (the policy above applied to the servers' catalogues).
EXPECTED = {
    ("alice", "py"): ({"echo", "add", "search_repos"}, {"docs://readme", "secrets://prod/db-password"}, {"review", "admin_report"}),
    ("bob", "py"): ({"echo", "search_repos"}, {"docs://readme"}, {"review"}),
    ("carol", "py"): ({"echo"}, set(), set()),
    ("alice", "ts"): ({"echo", "list_issues", "create_issue"}, {"docs://handbook", "hr://payroll/2026"}, {"summarize", "incident_review"}),
    ("bob", "ts"): ({"echo", "list_issues"}, {"docs://handbook"}, {"summarize"}),
    ("carol", "ts"): ({"echo"}, set(), set()),
}


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


@pytest.fixture
def gw(procs, issuer):
    py = procs.mcp_server("py", json_response=False)
    ts = procs.ts_server("ts")
    config = {
        "server": "py",
        "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
        "policy": POLICY,
    }
    from harness import gateway_bootstrap, Envoy

    boot = gateway_bootstrap({"py": py.port, "ts": ts.port, "tsaudit": ts.port}, config, access_log=procs.log_dir / "access.log")
    envoy = procs.envoy(boot)
    envoy.tokens = {who: issuer.token(who, groups=groups) for who, groups in PEOPLE.items()}
    return envoy


def auth(gw, who):
    return {"Authorization": f"Bearer {gw.tokens[who]}"}


@pytest.mark.parametrize("server", ["py", "ts"])
@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
async def test_each_principal_sees_only_what_it_may_use_python_client(gw, who, server):
    tools, resources, prompts = EXPECTED[(who, server)]
    async with session(gw.url(path=f"/{server}/mcp"), headers=auth(gw, who)) as s:
        assert {t.name for t in (await s.list_tools()).tools} == tools
        assert {str(r.uri) for r in (await s.list_resources()).resources} == resources
        assert {p.name for p in (await s.list_prompts()).prompts} == prompts


@pytest.mark.parametrize("server", ["py", "ts"])
@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_each_principal_sees_only_what_it_may_use_typescript_client(gw, who, server):
    out = run_ts_client(gw.url(path=f"/{server}/mcp"), gw.tokens[who], "--list")
    tools, resources, prompts = EXPECTED[(who, server)]
    assert set(out["tools"]) == tools
    assert set(out["resources"]) == resources
    assert set(out["prompts"]) == prompts


def run_ts_client(url, token, *args):
    p = subprocess.run(
        [node_binary(), str(NODE_DIR / "client.mjs"), url, "--header", f"Authorization: Bearer {token}", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


async def test_forbidden_call_is_refused_with_the_documented_error_and_rule(gw):
    async with session(gw.url(path="/py/mcp"), headers=auth(gw, "carol")) as s:
        with pytest.raises(McpError) as e:
            await s.call_tool("delete_branch", {"repo": "acme/x", "branch": "main"})
        assert e.value.error.code == -32030
        assert "nobody-destroys" in e.value.error.message
        # An allowed call on the same session still works.
        assert (await s.call_tool("echo", {"text": "ok"})).content[0].text == "ok"
    async with session(gw.url(path="/py/mcp"), headers=auth(gw, "bob")) as s:
        with pytest.raises(McpError) as e:
            await s.call_tool("add", {"a": 1, "b": 2})
        assert e.value.error.code == -32030
        assert "default deny" in e.value.error.message


def test_typescript_client_gets_the_same_refusal(gw):
    out = run_ts_client(gw.url(path="/ts/mcp"), gw.tokens["bob"], "--call", "drop_database", '{"db":"prod"}', "--call", "echo", '{"text":"hi"}')
    assert out["calls"][0]["ok"] is False
    assert out["calls"][0]["error"]["code"] == -32030
    assert out["calls"][1] == {"tool": "echo", "ok": True, "text": "hi"}


async def test_argument_constraint_allows_one_call_and_blocks_another(gw):
    async with session(gw.url(path="/ts/mcp"), headers=auth(gw, "bob")) as s:
        ok = await s.call_tool("list_issues", {"repo": "acme/widgets", "limit": 5})
        assert ok.content[0].text == "5 issues in acme/widgets"
        for args in ({"repo": "evil/widgets"}, {"repo": "acme/widgets", "limit": 500}):
            with pytest.raises(McpError) as e:
                await s.call_tool("list_issues", args)
            assert e.value.error.code == -32030
            assert e.value.error.data["reason"] == "arguments_rejected"


async def test_audit_mode_lets_a_denied_call_through_and_logs_would_deny(gw, procs):
    async with session(gw.url(path="/tsaudit/mcp"), headers=auth(gw, "bob")) as s:
        r = await s.call_tool("drop_database", {"db": "staging"})
        assert r.content[0].text == "dropped staging"
        # Lists are not filtered in audit mode.
        assert "drop_database" in {t.name for t in (await s.list_tools()).tools}
    gw.stop()
    lines = [json.loads(x) for x in (procs.log_dir / "access.log").read_text().splitlines()]
    drop = [x for x in lines if x["mcp_target"] == "drop_database"]
    assert len(drop) == 1
    assert drop[0]["mcp_decision"] == "audit_deny"
    assert drop[0]["mcp_rule"] == "nobody-destroys"
    assert drop[0]["mcp_mode"] == "audit"
    assert drop[0]["mcp_principal"] == "bob"
    assert drop[0]["status"] == 200


def raw_post(gw, server, who, body, headers=None):
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream", **auth(gw, who), **(headers or {})}
    return httpx.post(gw.url(path=f"/{server}/mcp"), content=body if isinstance(body, (bytes, str)) else json.dumps(body), headers=h, timeout=10)


def call(id_, name, args):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": args}}


def test_mcp_name_header_that_disagrees_with_the_body_gets_400(gw):
    r = raw_post(gw, "ts", "bob", call(1, "drop_database", {"db": "x"}), {"mcp-method": "tools/call", "mcp-name": "echo"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32020
    # The base64 form is decoded before comparing: "echo" matches.
    r = raw_post(gw, "ts", "bob", call(2, "echo", {"text": "b64"}), {"mcp-method": "tools/call", "mcp-name": "=?base64?ZWNobw==?="})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["content"][0]["text"] == "b64"
    r = raw_post(gw, "ts", "bob", call(3, "drop_database", {"db": "x"}), {"mcp-method": "tools/call", "mcp-name": "=?base64?ZWNobw==?="})
    assert r.status_code == 400


def test_batch_mixing_allowed_and_denied_calls_gets_per_element_results(gw):
    batch = [call(1, "list_issues", {"repo": "acme/a"}), call(2, "drop_database", {"db": "prod"}), call(3, "echo", {"text": "x"})]
    r = raw_post(gw, "ts", "bob", batch)
    assert r.status_code == 200, r.text
    by_id = {m["id"]: m for m in r.json()}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1]["result"]["content"][0]["text"] == "10 issues in acme/a"
    assert by_id[2]["error"]["code"] == -32030
    assert by_id[3]["result"]["content"][0]["text"] == "x"


def test_batch_with_only_denied_calls_is_answered_by_the_gateway(gw):
    r = raw_post(gw, "ts", "carol", [call(7, "drop_database", {"db": "prod"}), call(8, "create_issue", {"repo": "a", "title": "t"})])
    assert r.status_code == 200
    assert [m["error"]["code"] for m in r.json()] == [-32030, -32030]
    assert [m["id"] for m in r.json()] == [7, 8]


@pytest.mark.parametrize("body", [
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"drop_database","arguments":{"db":"x"}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_issues","arguments":{"repo":"acme/x","repo":"evil/y"}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","na\\u006de":"drop_database","arguments":{"db":"x"}}}',
], ids=["duplicate_name", "duplicate_argument", "escaped_duplicate"])
def test_duplicate_key_tricks_are_refused(gw, body):
    r = raw_post(gw, "ts", "bob", body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600
    assert "duplicate" in r.json()["error"]["message"].lower()


def test_encoded_body_is_refused(gw):
    import gzip

    r = raw_post(gw, "ts", "alice", gzip.compress(json.dumps(call(1, "echo", {"text": "x"})).encode()), {"content-encoding": "gzip"})
    assert r.status_code == 415


async def test_access_log_has_a_decision_line_per_request_and_stats_count_decisions(gw, procs):
    async with session(gw.url(path="/ts/mcp"), headers=auth(gw, "bob")) as s:
        await s.call_tool("echo", {"text": "1"})
        with pytest.raises(McpError):
            await s.call_tool("create_issue", {"repo": "acme/a", "title": "t"})
    counters = gw.counters("mcp_policy.requests_total")
    assert counters["mcp_policy.requests_total.server.ts.method.tools_call.decision.allow"] == 1
    assert counters["mcp_policy.requests_total.server.ts.method.tools_call.decision.deny"] == 1
    version = None
    gw.stop()
    lines = [json.loads(x) for x in (procs.log_dir / "access.log").read_text().splitlines()]
    calls = [x for x in lines if x["mcp_method"] == "tools/call"]
    assert [(c["mcp_target"], c["mcp_decision"]) for c in calls] == [("echo", "allow"), ("create_issue", "deny")]
    for c in calls:
        assert c["mcp_principal"] == "bob"
        assert c["mcp_server"] == "ts"
        assert c["mcp_policy_version"] and len(c["mcp_policy_version"]) == 16
        version = version or c["mcp_policy_version"]
        assert c["mcp_policy_version"] == version
    assert calls[0]["mcp_rule"] == "devs-read"
