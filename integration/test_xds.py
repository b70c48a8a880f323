"""The control plane against real Envoys: two Envoys bootstrapped only with ADS
(envoy-configs/xds-bootstrap.yaml) get listeners, routes, clusters, endpoints and the module's
config from a real mcp-xds-server process, serve a real MCP client through the module to real
MCP servers, and follow edits of the source directory without restarts."""

from __future__ import annotations

import time

import httpx
import yaml
import pytest

from harness import ROOT, wait_until
from mcp_client import session
from xds_harness import (
    XdsServer,
    ads_bootstrap,
    discovery_request_without_node,
    raw_ads_stream,
    set_filter_config,
    write_source_dir,
)

pytestmark = pytest.mark.anyio

ECDS = "extension_config_discovery.http_filter.mcp_policy/default"
TYPES = {"lds", "rds", "cds", "eds", "ecds"}
BIG_BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "x" * 300}}


def post_status(envoy, path: str = "/mcp", listener: str = "mcp_gateway") -> int:
    """Status of a 300-byte JSON-RPC POST: 413 once the module's body limit is below that."""
    r = httpx.post(
        envoy.url(listener, path),
        json=BIG_BODY,
        headers={"accept": "application/json, text/event-stream"},
        timeout=5,
    )
    return r.status_code


def ecds_version(envoy) -> str:
    return envoy.counters(ECDS).get(f"{ECDS}.version_text", "")


class Fleet:
    """Two MCP servers, a source directory, one mcp-xds-server and two ADS-only Envoys."""

    def __init__(self, procs, tmp_path, filter_config=None, **source_kw):
        self.procs = procs
        self.alpha = procs.mcp_server("alpha", json_response=True)
        self.beta = procs.mcp_server("beta")
        self.dir = write_source_dir(
            tmp_path / "source", {"alpha": self.alpha.port, "beta": self.beta.port}, filter_config, **source_kw
        )
        self.xds = procs.add(XdsServer(procs.log_dir, self.dir))
        self.envoys = [
            procs.envoy(ads_bootstrap(self.xds.xds_port, "gw-a"), name="envoy-a"),
            procs.envoy(ads_bootstrap(self.xds.xds_port, "gw-b"), name="envoy-b"),
        ]

    def wait_converged(self, xds: XdsServer | None = None, timeout: float = 15.0) -> dict:
        """Until both Envoys are connected and have ACKed every type with nothing in flight."""
        xds = xds or self.xds

        def converged():
            st = xds.status()
            nodes = {n["node_id"]: n for n in st["nodes"]}
            if set(nodes) != {"gw-a", "gw-b"}:
                return None
            for n in nodes.values():
                if set(n["types"]) != TYPES:
                    return None
                if any(t["pending_version"] or not t["acked_version"] for t in n["types"].values()):
                    return None
            return st

        return wait_until("both Envoys to ACK every type", converged, timeout=timeout, proc=xds)


async def test_two_envoys_on_ads_only_serve_mcp_through_the_module(procs, tmp_path):
    fleet = Fleet(procs, tmp_path)
    st = fleet.wait_converged()

    for envoy in fleet.envoys:
        async with session(envoy.url(path="/alpha/mcp")) as s:
            assert {"echo", "add"} <= {t.name for t in (await s.list_tools()).tools}
            assert (await s.call_tool("add", {"a": 2, "b": 40})).content[0].text == "42"
        async with session(envoy.url(path="/beta/mcp")) as s:
            assert (await s.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
        # The module ran, and read the server name from the route metadata the control plane set.
        c = envoy.counters("mcp_policy.")
        assert c.get("mcp_policy.requests_total.server.alpha.method.tools_call.decision.unchecked") == 1, c
        assert c.get("mcp_policy.requests_total.server.beta.method.tools_call.decision.unchecked") == 1, c
        assert ecds_version(envoy) != ""

    # Status: both nodes, every type ACKed, no NACKs; both Envoys got the same world.
    for n in st["nodes"]:
        assert n["cluster"] == "mcp-gateway"
        assert all(t["nacks"] == 0 and t["last_nack"] is None for t in n["types"].values()), n
    a, b = ({t: v["acked_version"] for t, v in n["types"].items()} for n in st["nodes"])
    assert a == b
    assert st["config"]["valid"] is True
    m = fleet.xds.metrics()
    assert m["mcp_xds_connected_nodes"] == 2
    assert m['mcp_xds_nacks_total{type="ecds"}'] == 0
    assert m['mcp_xds_acks_total{type="lds"}'] >= 2


async def test_filter_config_edit_reaches_both_envoys_without_restart_or_drain(procs, tmp_path):
    fleet = Fleet(procs, tmp_path)
    fleet.wait_converged()
    for envoy in fleet.envoys:
        assert post_status(envoy) != 413
    before = {e.name: (e.popen.pid, e.counters("listener_manager.").get("listener_manager.listener_modified", 0)) for e in fleet.envoys}

    t0 = time.monotonic()
    set_filter_config(fleet.dir, {"pass_through": True, "limits": {"max_request_body_bytes": 64}})
    took = {}
    for envoy in fleet.envoys:
        wait_until(f"{envoy.name} to answer 413", lambda: post_status(envoy) == 413, timeout=10, proc=envoy)
        took[envoy.name] = time.monotonic() - t0
    print(f"\nfilter config propagation (file write -> enforced): " + ", ".join(f"{k} {v:.2f}s" for k, v in took.items()))
    assert max(took.values()) < 5, took

    for envoy in fleet.envoys:
        pid, modified = before[envoy.name]
        assert envoy.popen.pid == pid and envoy.popen.poll() is None
        # The filter config was swapped by ECDS: the listener was not modified (so not drained).
        assert envoy.counters("listener_manager.").get("listener_manager.listener_modified", 0) == modified
        assert envoy.counters(ECDS)[f"{ECDS}.config_reload"] >= 2
    # Reverting the edit restores the old behaviour the same way.
    set_filter_config(fleet.dir, {"pass_through": True, "limits": {"max_request_body_bytes": 1048576}})
    for envoy in fleet.envoys:
        wait_until(f"{envoy.name} to accept again", lambda: post_status(envoy) != 413, timeout=10, proc=envoy)
        async with session(envoy.url()) as s:
            await s.list_tools()


async def test_invalid_edit_is_refused_precisely_and_envoys_keep_the_previous_config(procs, tmp_path):
    fleet = Fleet(procs, tmp_path, filter_config={"pass_through": True, "limits": {"max_request_body_bytes": 64}})
    st = fleet.wait_converged()
    versions = {e.name: ecds_version(e) for e in fleet.envoys}

    set_filter_config(fleet.dir, '{\n  "limits": {\n    "max_request_body_bytes": 0\n  },\n  "limitz": 1\n}\n')
    err = wait_until(
        "the status endpoint to report the refused change",
        lambda: (s := fleet.xds.status())["config"]["valid"] is False and s["config"]["last_error"],
        timeout=10,
        proc=fleet.xds,
    )
    print(f"\nrefused: {err['message']}")
    assert [(e["file"], e["field"], e["line"]) for e in err["errors"]] == [("filter.json", "limitz", 5)]
    assert "unknown field `limitz`" in err["errors"][0]["message"]
    assert "filter.json:5:" in err["message"]
    assert fleet.xds.metrics()["mcp_xds_config_errors_total"] == 1
    assert "config refused" in fleet.xds.log_path.read_text()

    # Nothing was pushed: same snapshot, same ECDS version, old limit still enforced.
    assert fleet.xds.status()["snapshot"]["version"] == st["snapshot"]["version"]
    for envoy in fleet.envoys:
        assert ecds_version(envoy) == versions[envoy.name]
        assert post_status(envoy) == 413
        assert envoy.counters(ECDS).get(f"{ECDS}.update_rejected", 0) == 0

    # A semantic error (the module's own compile step) is refused the same way.
    set_filter_config(fleet.dir, {"pass_through": True, "limits": {"max_request_body_bytes": 0}})
    err = wait_until(
        "the second refusal",
        lambda: (e := fleet.xds.status()["config"]["last_error"])["errors"][0]["field"] == "limits.max_request_body_bytes" and e,
        timeout=10,
        proc=fleet.xds,
    )
    assert "greater than 0" in err["errors"][0]["message"]

    # Fixing the file is picked up.
    set_filter_config(fleet.dir, {"pass_through": True})
    for envoy in fleet.envoys:
        wait_until(f"{envoy.name} to take the fix", lambda: post_status(envoy) != 413, timeout=10, proc=envoy)
    assert fleet.xds.status()["config"]["valid"] is True


def test_the_shipped_bootstrap_caps_the_ads_reconnect_back_off_at_one_second():
    """Envoy's default ADS back-off leaves a restarted control plane waiting up to ~10 s."""
    boot = yaml.safe_load((ROOT / "envoy-configs" / "xds-bootstrap.yaml").read_text())
    backoff = boot["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]["retry_policy"]["retry_back_off"]
    assert backoff == {"base_interval": "0.1s", "max_interval": "1s"}


async def test_envoys_keep_serving_without_the_control_plane_and_converge_after_restart(procs, tmp_path):
    fleet = Fleet(procs, tmp_path)
    fleet.wait_converged()
    port = fleet.xds.xds_port
    fleet.xds.stop()

    for envoy in fleet.envoys:
        async with session(envoy.url()) as s:
            assert (await s.call_tool("add", {"a": 1, "b": 1})).content[0].text == "2"

    # Edit while the control plane is down, then bring it back on the same address.
    set_filter_config(fleet.dir, {"pass_through": True, "limits": {"max_request_body_bytes": 64}})
    t0 = time.monotonic()
    xds2 = procs.add(XdsServer(procs.log_dir, fleet.dir, name="xds-server-2", xds_port=port))
    for envoy in fleet.envoys:
        # Envoy reconnects with the bootstrap's back-off (0.1 s base, 1 s cap, jittered).
        wait_until(f"{envoy.name} to converge on the restarted server", lambda: post_status(envoy) == 413, timeout=30, proc=envoy)
    print(f"\nconverged after restart in {time.monotonic() - t0:.2f}s")
    st = fleet.wait_converged(xds2)
    # On reconnect Envoy reports the versions it has; only what changed (ECDS) was sent again.
    m = xds2.metrics()
    assert m['mcp_xds_pushes_total{type="ecds"}'] >= 2
    assert m['mcp_xds_pushes_total{type="lds"}'] == 0, m
    assert len(st["nodes"]) == 2


async def test_node_groups_get_different_worlds(procs, tmp_path):
    alpha = procs.mcp_server("alpha", json_response=True)
    d = write_source_dir(
        tmp_path / "source",
        {"alpha": alpha.port},
        node_groups=[{"name": "internal", "match": {"metadata": {"tier": "internal"}}}],
        extra_listeners=[{"name": "mcp_internal", "address": "127.0.0.1", "port": 0, "group": "internal", "filter": "strict"}],
        filters={"strict": {"pass_through": True, "limits": {"max_request_body_bytes": 64}}},
    )
    xds = procs.add(XdsServer(procs.log_dir, d))
    edge = procs.envoy(ads_bootstrap(xds.xds_port, "gw-edge"), name="envoy-edge")
    internal = procs.envoy(ads_bootstrap(xds.xds_port, "gw-internal", metadata={"tier": "internal"}), name="envoy-internal")

    with pytest.raises(Exception):
        edge.listener_port("mcp_internal")
    assert post_status(internal, listener="mcp_internal") == 413  # strict filter on its own listener
    assert post_status(internal) != 413  # default filter on the shared one
    async with session(internal.url("mcp_gateway", "/alpha/mcp")) as s:
        await s.list_tools()
    groups = {n["node_id"]: n["group"] for n in xds.status()["nodes"]}
    assert groups == {"gw-edge": None, "gw-internal": "internal"}


async def test_a_client_sending_garbage_is_dropped_without_affecting_others(procs, tmp_path):
    fleet = Fleet(procs, tmp_path)
    fleet.wait_converged()

    # Undecodable protobuf, then a well-formed request without a node, then plain junk bytes.
    raw_ads_stream(fleet.xds.xds_port, [b"\xff\xff\xff\xff"], wait=1)
    raw_ads_stream(fleet.xds.xds_port, [discovery_request_without_node("type.googleapis.com/envoy.config.listener.v3.Listener")], wait=1)
    with __import__("socket").create_connection(("127.0.0.1", fleet.xds.xds_port), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))

    wait_until("both bad streams to be counted", lambda: fleet.xds.metrics()["mcp_xds_streams_dropped_total"] >= 2, timeout=10)
    assert fleet.xds.popen.poll() is None
    assert fleet.xds.metrics()["mcp_xds_connected_nodes"] == 2
    # The real Envoys are still fed.
    set_filter_config(fleet.dir, {"pass_through": True, "limits": {"max_request_body_bytes": 64}})
    for envoy in fleet.envoys:
        wait_until(f"{envoy.name} to get the update", lambda: post_status(envoy) == 413, timeout=10, proc=envoy)
