"""Policy and identity over xDS, end to end: a real mcp-xds-server process feeds two ADS-only
Envoys a filter config with an identity provider (its JWKS in `jwks/idp.json`, inlined by the
control plane) and a three-principal policy (integration/xds_fixtures/policy/filter.json); a real
MCP server sits behind them and a real Python MCP client calls with bearer tokens. Edits of the
source directory — rules, revocations, keys — change what each principal may do on both Envoys,
without restarts; refused edits and a dead control plane change nothing."""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from typing import Any, Awaitable, Callable

import httpx
import pytest
from mcp.shared.exceptions import MCPError as McpError

from harness import wait_until
from issuer import Issuer
from mcp_client import session
from xds_harness import (
    XdsServer,
    ads_bootstrap,
    ecds_acked,
    load_fixture,
    set_filter_config,
    wait_current,
    write_jwks,
    write_source_dir,
)

pytestmark = pytest.mark.anyio

ECDS = "extension_config_discovery.http_filter.mcp_policy/default"
NODES = {"gw-a", "gw-b"}
PEOPLE = {"alice": ["admins"], "bob": ["devs"], "carol": ["contractors"]}
# The demo server's tools are echo, add, search_repos, delete_branch; the fixture policy gives:
SEES = {"alice": {"echo", "add", "search_repos"}, "bob": {"echo", "search_repos"}, "carol": {"echo"}}
POLL = 0.05  # seconds between probes while waiting for an edit to land
BOUND = 15.0  # no propagation may take longer than this (the measured times are well under 1 s)


class RotatedIssuer(Issuer):
    """The same issuer after a key rotation: fresh keys under new kids (`rsa-2`, `ec-2`)."""

    KIDS = {"rsa-1": "rsa-2", "ec-1": "ec-2"}

    def jwks(self) -> dict[str, Any]:
        doc = super().jwks()
        for k in doc["keys"]:
            k["kid"] = self.KIDS[k["kid"]]
        return doc

    def token(self, sub: str = "alice", alg: str = "RS256", kid: str | None = None, key=None, **claims: Any) -> str:
        return super().token(sub, alg, kid or self.KIDS["rsa-1" if alg.startswith("RS") else "ec-1"], key, **claims)


class PolicyFleet:
    """One demo MCP server `py`, a source directory with the fixture filter config and the
    issuer's keys in `jwks/idp.json`, an mcp-xds-server, and Envoys `gw-a`, `gw-b` on ADS only."""

    def __init__(self, procs, tmp_path, issuer: Issuer):
        self.procs = procs
        self.issuer = issuer
        self.py = procs.mcp_server("py")
        self.config = load_fixture("policy/filter.json")
        self.dir = write_source_dir(tmp_path / "source", {"py": self.py.port}, self.config)
        write_jwks(self.dir, issuer.jwks())
        self.xds = procs.add(XdsServer(procs.log_dir, self.dir))
        self.envoys = [procs.envoy(ads_bootstrap(self.xds.xds_port, n), name=f"envoy-{n[-1]}") for n in sorted(NODES)]
        self.status = wait_current(self.xds, NODES)
        self.tokens = {who: issuer.token(who, groups=groups) for who, groups in PEOPLE.items()}

    def edit(self, change: Callable[[dict], None]) -> float:
        """Apply `change` to a copy of the filter config, write it, return the write time."""
        doc = copy.deepcopy(self.config)
        change(doc)
        self.config = doc
        t0 = time.monotonic()
        set_filter_config(self.dir, doc)
        return t0

    def rule(self, doc: dict, rule_id: str) -> dict:
        return next(r for r in doc["policy"]["rules"] if r["id"] == rule_id)


@pytest.fixture
def issuer():
    return Issuer()


@pytest.fixture
def fleet(procs, tmp_path, issuer):
    return PolicyFleet(procs, tmp_path, issuer)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def tools_of(envoy, token: str) -> set[str]:
    """What tools/list shows this token's principal through this Envoy (real MCP client)."""
    async with session(envoy.url(path="/py/mcp"), headers=bearer(token)) as s:
        return {t.name for t in (await s.list_tools()).tools}


def initialize(envoy, token: str, session_id: str | None = None) -> httpx.Response:
    """One raw `initialize` POST (a client's first request); used where the answer is a 401 the
    SDK client would turn into an exception."""
    body = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
    }
    headers = {"accept": "application/json, text/event-stream", **bearer(token)}
    if session_id:
        headers["mcp-session-id"] = session_id
    return httpx.post(envoy.url(path="/py/mcp"), json=body, headers=headers, timeout=5)


async def until_each(envoys, what: str, probe: Callable[[Any], bool | Awaitable[bool]], t0: float) -> dict[str, float]:
    """Probe (sync or async) every Envoy each POLL seconds until each has passed once; returns envoy name →
    seconds from `t0` (the file write) to its first passing probe. Bounded by BOUND."""
    took: dict[str, float] = {}
    last: dict[str, Exception] = {}
    while len(took) < len(envoys):
        if time.monotonic() - t0 > BOUND:
            pending = [e for e in envoys if e.name not in took]
            tails = "\n".join(p.tail(20) for p in pending)
            raise AssertionError(f"after {BOUND}s, {[e.name for e in pending]} still not {what} (last error: {last})\n{tails}")
        for envoy in envoys:
            if envoy.name in took:
                continue
            try:
                ok = probe(envoy)
                if ok if not inspect.isawaitable(ok) else await ok:
                    took[envoy.name] = time.monotonic() - t0
            except Exception as e:  # noqa: BLE001 - retried until BOUND
                last[envoy.name] = e
        if len(took) < len(envoys):
            await asyncio.sleep(POLL)
    return took


def report(what: str, took: dict[str, float]) -> None:
    print(f"\n{what}: " + ", ".join(f"{k} {v:.3f}s" for k, v in sorted(took.items())) + f" (max {max(took.values()):.3f}s)")


async def test_policy_edit_changes_a_principals_tools_list_on_both_envoys_without_restart(fleet):
    pids = {e.name: e.popen.pid for e in fleet.envoys}
    for envoy in fleet.envoys:
        for who, tools in SEES.items():
            assert await tools_of(envoy, fleet.tokens[who]) == tools, (envoy.name, who)

    before = ecds_acked(fleet.xds.status())
    t0 = fleet.edit(lambda d: fleet.rule(d, "devs-read")["tools"].append("add"))
    bob_after = SEES["bob"] | {"add"}
    took = await until_each(fleet.envoys, "showing bob the new list", lambda e: _eq(tools_of(e, fleet.tokens["bob"]), bob_after), t0)
    report("policy edit propagation (file write -> bob's tools/list changed)", took)
    # The control plane saw both ACKs of the new filter config (and nothing is in flight).
    wait_current(fleet.xds, NODES, changed_from=before)

    for envoy in fleet.envoys:
        assert envoy.popen.pid == pids[envoy.name] and envoy.popen.poll() is None
        assert envoy.counters(ECDS)[f"{ECDS}.config_reload"] >= 2
        # Only bob's rule changed: the others see what they saw.
        assert await tools_of(envoy, fleet.tokens["alice"]) == SEES["alice"]
        assert await tools_of(envoy, fleet.tokens["carol"]) == SEES["carol"]
        # And the newly listed tool is callable, not just listed.
        async with session(envoy.url(path="/py/mcp"), headers=bearer(fleet.tokens["bob"])) as s:
            assert (await s.call_tool("add", {"a": 20, "b": 22})).content[0].text == "42"
    assert max(took.values()) < 5, took

    # Taking it away again propagates the same way.
    t0 = fleet.edit(lambda d: fleet.rule(d, "devs-read")["tools"].remove("add"))
    took = await until_each(fleet.envoys, "showing bob the old list", lambda e: _eq(tools_of(e, fleet.tokens["bob"]), SEES["bob"]), t0)
    report("policy revert propagation", took)


async def _eq(coro, expected) -> bool:
    return (await coro) == expected


@pytest.mark.parametrize(
    "change, field, message",
    [
        (lambda d: d["policy"]["rules"][2].update(id="devs-read"), "policy.rules[2].id", 'duplicate rule id "devs-read" (first used by rules[1])'),
        (lambda d: d["policy"]["rules"][1].update(tool=["add"]), "policy.rules[1].tool", "unknown field `tool`"),
    ],
    ids=["duplicate_rule_id", "unknown_field"],
)
async def test_invalid_policy_edit_is_refused_by_file_and_field_and_both_envoys_keep_the_old_policy(fleet, change, field, message):
    st = fleet.xds.status()
    versions = {e.name: e.counters(ECDS)[f"{ECDS}.version_text"] for e in fleet.envoys}

    fleet.edit(lambda d: (change(d), fleet.rule(d, "contractors-echo")["tools"].append("add")))
    err = wait_until(
        "the status endpoint to report the refused change",
        lambda: (s := fleet.xds.status())["config"]["valid"] is False and s["config"]["last_error"],
        timeout=BOUND,
        proc=fleet.xds,
    )
    print(f"\nrefused: {err['message']}")
    assert [(e["file"], e["field"]) for e in err["errors"]] == [("filter.json", field)], err
    assert message in err["errors"][0]["message"]
    # Positioned in the file as written, although the pushed document had its JWKS inlined.
    assert err["errors"][0]["line"] and err["errors"][0]["column"], err
    assert f"filter.json:{err['errors'][0]['line']}:{err['errors'][0]['column']}: {field}: " in err["message"]
    assert fleet.xds.metrics()["mcp_xds_config_errors_total"] == 1

    # Nothing was pushed: same snapshot, same ECDS version on each Envoy, same lists.
    after = fleet.xds.status()
    assert after["snapshot"] == st["snapshot"]
    assert ecds_acked(after) == ecds_acked(st)
    for envoy in fleet.envoys:
        assert envoy.counters(ECDS)[f"{ECDS}.version_text"] == versions[envoy.name]
        assert envoy.counters(ECDS).get(f"{ECDS}.update_rejected", 0) == 0
        for who, tools in SEES.items():
            assert await tools_of(envoy, fleet.tokens[who]) == tools, (envoy.name, who)

    # The fixed file (the same intended change, carol may `add`) is applied.
    fleet.config = load_fixture("policy/filter.json")
    t0 = fleet.edit(lambda d: fleet.rule(d, "contractors-echo")["tools"].append("add"))
    await until_each(fleet.envoys, "applying the fix", lambda e: _eq(tools_of(e, fleet.tokens["carol"]), {"echo", "add"}), t0)
    assert fleet.xds.status()["config"]["valid"] is True


async def test_revoking_a_subject_blocks_its_next_request_on_both_envoys_and_not_others(fleet):
    bob = fleet.tokens["bob"]
    # An established session of bob's on each Envoy, to show revocation also cuts those off.
    sessions = {}
    for envoy in fleet.envoys:
        r = initialize(envoy, bob)
        assert r.status_code == 200, r.text
        sessions[envoy.name] = r.headers["mcp-session-id"]

    t0 = fleet.edit(lambda d: d.update(revoked={"subjects": ["bob"]}))
    took = await until_each(fleet.envoys, "refusing bob", lambda e: _status(initialize(e, bob)) == 401, t0)
    report("revocation propagation (file write -> bob gets 401)", took)
    assert max(took.values()) < 5, took

    for envoy in fleet.envoys:
        r = initialize(envoy, bob)
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert initialize(envoy, bob, session_id=sessions[envoy.name]).status_code == 401
        assert await tools_of(envoy, fleet.tokens["alice"]) == SEES["alice"]
        assert await tools_of(envoy, fleet.tokens["carol"]) == SEES["carol"]

    # Lifting the revocation lets bob back in with the very same token.
    t0 = fleet.edit(lambda d: d.pop("revoked"))
    took = await until_each(fleet.envoys, "admitting bob again", lambda e: _eq(tools_of(e, bob), SEES["bob"]), t0)
    report("un-revocation propagation", took)


def _status(r: httpx.Response) -> int:
    return r.status_code


async def test_jwks_file_rotation_reaches_both_envoys_new_key_accepted_old_key_refused(fleet, issuer):
    new = RotatedIssuer()
    old_rs, old_es = issuer.token("alice", groups=["admins"]), issuer.token("alice", alg="ES256", groups=["admins"])
    new_rs, new_es = new.token("alice", groups=["admins"]), new.token("alice", alg="ES256", groups=["admins"])
    for envoy in fleet.envoys:
        # The old tokens are verified (and cached by the module) before the rotation.
        assert initialize(envoy, old_rs).status_code == 200
        assert initialize(envoy, old_es).status_code == 200
        assert initialize(envoy, new_rs).status_code == 401

    # Step 1, the usual overlap: the file holds old and new keys; both are accepted.
    t0 = time.monotonic()
    write_jwks(fleet.dir, {"keys": issuer.jwks()["keys"] + new.jwks()["keys"]})
    took = await until_each(fleet.envoys, "accepting the new key", lambda e: _status(initialize(e, new_rs)) == 200, t0)
    report("JWKS overlap propagation (key file write -> new-key token accepted)", took)
    for envoy in fleet.envoys:
        assert initialize(envoy, old_rs).status_code == 200

    # Step 2: the old keys are removed; old-key tokens (cached ones included) are refused.
    t0 = time.monotonic()
    write_jwks(fleet.dir, new.jwks())
    took = await until_each(fleet.envoys, "refusing the old key", lambda e: _status(initialize(e, old_rs)) == 401, t0)
    report("JWKS rotation propagation (key file write -> old-key token refused)", took)
    for envoy in fleet.envoys:
        for token in (old_rs, old_es):
            r = initialize(envoy, token)
            assert r.status_code == 401, (envoy.name, r.text)
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert initialize(envoy, new_es).status_code == 200
        # The principal behind a new-key token is still subject to the policy.
        assert await tools_of(envoy, new_rs) == SEES["alice"]
        assert await tools_of(envoy, new.token("bob", groups=["devs"])) == SEES["bob"]
    # What was pushed is the inlined document, not the file reference.
    assert all(n["types"]["ecds"]["last_nack"] is None for n in fleet.xds.status()["nodes"])


async def test_envoys_keep_enforcing_the_policy_without_the_control_plane_and_converge_after_restart(procs, fleet):
    port = fleet.xds.xds_port
    fleet.xds.stop()
    for envoy in fleet.envoys:
        wait_until(
            f"{envoy.name} to notice the control plane is gone",
            lambda: envoy.counters("control_plane.").get("control_plane.connected_state") == 0,
            timeout=BOUND,
            proc=envoy,
        )

    for envoy in fleet.envoys:
        for who, tools in SEES.items():
            assert await tools_of(envoy, fleet.tokens[who]) == tools, (envoy.name, who)
        async with session(envoy.url(path="/py/mcp"), headers=bearer(fleet.tokens["bob"])) as s:
            for tool, args in (("add", {"a": 1, "b": 2}), ("delete_branch", {"repo": "acme/x", "branch": "main"})):
                with pytest.raises(McpError) as e:
                    await s.call_tool(tool, args)
                assert e.value.error.code == -32030
            assert (await s.call_tool("echo", {"text": "still here"})).content[0].text == "still here"
        assert initialize(envoy, "not-a-token").status_code == 401

    # Edit while the control plane is down; bring it back on the same address.
    fleet.edit(lambda d: fleet.rule(d, "devs-read")["tools"].append("add"))
    t0 = time.monotonic()
    xds2 = procs.add(XdsServer(procs.log_dir, fleet.dir, name="xds-server-2", xds_port=port))
    took = await until_each(
        fleet.envoys, "converged on the restarted server", lambda e: _eq(tools_of(e, fleet.tokens["bob"]), SEES["bob"] | {"add"}), t0
    )
    report("convergence after control-plane restart (start -> bob's new list)", took)
    st = wait_current(xds2, NODES)
    assert st["config"]["valid"] is True
    # Envoy reported what it had on reconnect: only the changed filter config was sent again.
    m = xds2.metrics()
    assert m['mcp_xds_pushes_total{type="lds"}'] == 0, m
    assert m['mcp_xds_pushes_total{type="ecds"}'] >= 2, m
