"""Tool integrity across a fleet, end to end on the real Envoy binary: a real mcp-xds-server
pushes pins from `pins/rug.json` (written by `mcp-policy pin record --out`) to two ADS-only
Envoys; a real Python-SDK MCP server changes a pinned tool's schema mid-session; both Envoys
quarantine it (the SDK client's list lacks it, calls are refused with -32030), and the
control plane's `/integrity` and `/status` show the drift on BOTH node ids (streamed by Envoy's
metrics_service stats sink). An approved re-pin into the xDS directory is pushed, and the tool
is back on both Envoys without a restart."""

from __future__ import annotations

import json
import subprocess

import pytest
from mcp.shared.exceptions import MCPError as McpError

from harness import ROOT, wait_until
from mcp_client import session
from test_integrity import PoisonedServer, capture, tools_of
from xds_harness import XdsServer, ads_bootstrap, ecds_acked, wait_current, write_source_dir

pytestmark = pytest.mark.anyio

CLI = ROOT / "target" / "release" / "mcp-policy"
NODES = ("fleet-a", "fleet-b")
WITHHELD = -32030


def pin_record(list_file, out) -> None:
    subprocess.run([str(CLI), "pin", "record", str(list_file), "--out", str(out)], check=True, capture_output=True, text=True)


def drift_changed(xds: XdsServer, node: str) -> int:
    return xds.integrity().get(node, {}).get("servers", {}).get("rug", {}).get("drift", {}).get("changed", 0)


async def test_drift_is_quarantined_on_two_envoys_shown_per_node_and_a_re_pin_is_pushed(procs, tmp_path):
    up = procs.add(PoisonedServer(procs.log_dir, name="rug"))
    # The source directory: quarantine drift for `rug`, its pins recorded from the live server.
    source = write_source_dir(
        tmp_path / "source", {"rug": up.port}, {"integrity": {"servers": {"rug": {"action": "audit", "drift": "quarantine"}}}}
    )
    (tmp_path / "v1.json").write_text(json.dumps(capture(await tools_of(up.url))))
    (source / "pins").mkdir()
    pin_record(tmp_path / "v1.json", source / "pins" / "rug.json")
    xds = procs.add(XdsServer(procs.log_dir, source))
    served = len(json.loads((tmp_path / "v1.json").read_text())["tools"])
    assert served >= 6 and xds.status()["pins"]["rug"]["items"]["tools"] == served, xds.status()["pins"]
    # One worker each: the table of withheld tools is per worker (docs/tool-integrity.md).
    envoys = [procs.envoy(ads_bootstrap(xds.xds_port, n, stats_flush="0.5s"), name=f"envoy-{n}", concurrency=1) for n in NODES]
    before = ecds_acked(wait_current(xds, set(NODES)))
    urls = [e.url(path="/rug/mcp") for e in envoys]
    for url in urls:
        assert "get_forecast" in await tools_of(url)
    # Both Envoys report; nothing drifted yet.
    wait_until("both nodes streaming stats", lambda: set(NODES) <= set(xds.integrity()), timeout=15, proc=xds)
    assert all(drift_changed(xds, n) == 0 for n in NODES), xds.integrity()

    # The rug pull, in the middle of a session through the first Envoy.
    async with session(urls[0]) as s:
        assert "get_forecast" in {t.name for t in (await s.list_tools()).tools}
        await s.call_tool("rug_pull", {})
        assert "get_forecast" not in {t.name for t in (await s.list_tools()).tools}
        with pytest.raises(McpError) as e:
            await s.call_tool("get_forecast", {"city": "Oslo"})
        assert e.value.code == WITHHELD and "pin.changed" in str(e.value), e.value
    # The second Envoy sees the change on its next list, and refuses the call too.
    for url in urls:
        async with session(url) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "get_forecast" not in names and "add" in names, names
            with pytest.raises(McpError) as e:
                await s.call_tool("get_forecast", {"city": "Oslo"})
            assert e.value.code == WITHHELD, e.value

    # One request tells the operator which Envoys saw the change: both node ids.
    seen = wait_until(
        "drift for rug on both nodes",
        lambda: (v := xds.integrity()) if all(drift_changed(xds, n) >= 1 for n in NODES) else None,
        timeout=15,
        proc=xds,
    )
    status = xds.status()
    for n in NODES:
        assert seen[n]["reporting"] and seen[n]["last_seen"], seen
        assert status["integrity"][n]["servers"]["rug"]["drift"]["changed"] >= 1, status["integrity"]
        assert status["integrity"][n]["servers"]["rug"]["withheld"] >= 1, status["integrity"]
    metrics = xds.metrics()
    for n in NODES:
        key = f'mcp_xds_node_integrity_drift_total{{node="{n}",server="rug",change="changed"}}'
        assert metrics.get(key, 0) >= 1, [k for k in metrics if "node_integrity" in k]

    # The approved re-pin, from the live list into the xDS directory: pushed, no restart.
    (tmp_path / "v2.json").write_text(json.dumps(capture(await tools_of(up.url))))
    pin_record(tmp_path / "v2.json", source / "pins" / "rug.json")
    wait_current(xds, set(NODES), changed_from=before)
    for url in urls:
        async with session(url) as s:
            assert "get_forecast" in {t.name for t in (await s.list_tools()).tools}
            r = await s.call_tool("get_forecast", {"city": "Oslo", "units": "imperial"})
            assert "imperial" in r.content[0].text
    assert [e.popen.poll() for e in envoys] == [None, None], "no Envoy restarted"
