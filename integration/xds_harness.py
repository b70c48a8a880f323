"""Harness pieces for the xDS tests: the mcp-xds-server process, a source-of-truth directory
writer, ADS-only Envoy bootstraps, and a raw HTTP/2 client for sending the server garbage.

Same rules as harness.py: OS-assigned ports (the server binds port 0 and writes the addresses to
a ready file), readiness by polling, logs per process, and every process stopped by `procs`.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness import ROOT, HarnessError, Proc, wait_until

XDS_BOOTSTRAP = ROOT / "envoy-configs" / "xds-bootstrap.yaml"


def xds_server_binary() -> Path:
    """$MCP_XDS_SERVER_BIN, else target/release/mcp-xds-server (built by `make build`)."""
    if os.environ.get("MCP_XDS_SERVER_BIN"):
        return Path(os.environ["MCP_XDS_SERVER_BIN"])
    path = ROOT / "target" / "release" / "mcp-xds-server"
    if not path.exists():
        # One build per session at most (cargo is a no-op when it is fresh).
        subprocess.run(["cargo", "build", "--release", "-p", "mcp-xds-server"], cwd=ROOT, check=True)
    if not path.exists():
        raise HarnessError(f"{path} not found: build it with `cargo build --release -p mcp-xds-server`")
    return path


class XdsServer(Proc):
    """mcp-xds-server serving `config_dir`; `xds_port` 0 picks a free port (reuse it to restart)."""

    def __init__(self, log_dir: Path, config_dir: Path, name: str = "xds-server", xds_port: int = 0, extra: list[str] | None = None):
        ready = log_dir / f"{name}.ready.json"
        ready.unlink(missing_ok=True)
        cmd = [
            str(xds_server_binary()),
            "serve",
            "--config-dir", str(config_dir),
            "--xds-addr", f"127.0.0.1:{xds_port}",
            "--status-addr", "127.0.0.1:0",
            "--ready-file", str(ready),
            "--poll-interval", "100ms",
            *(extra or []),
        ]
        super().__init__(name, cmd, log_dir)
        info = wait_until(f"{name} ready file", lambda: ready.exists() and json.loads(ready.read_text()), proc=self)
        self.xds_port = int(info["xds"].rsplit(":", 1)[1])
        self.status_url = f"http://{info['status']}"

    def status(self) -> dict:
        return httpx.get(f"{self.status_url}/status", timeout=2).json()

    def integrity(self) -> dict:
        """`/integrity`: node id → {last_seen, reporting, servers: {server: {drift, findings, withheld}}}."""
        return httpx.get(f"{self.status_url}/integrity", timeout=2).json()

    def metrics(self) -> dict[str, float]:
        """`/metrics` as {"name{labels}": value}."""
        out = {}
        for line in httpx.get(f"{self.status_url}/metrics", timeout=2).text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out


def write_atomically(path: Path, text: str) -> None:
    """Write like a deploy tool would: a temp file renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_source_dir(
    directory: Path,
    upstreams: dict[str, int],
    filter_config: dict[str, Any] | str | None = None,
    extra_listeners: list[dict] | None = None,
    node_groups: list[dict] | None = None,
    filters: dict[str, dict] | None = None,
) -> Path:
    """A source directory routing `/<name>/mcp` to each upstream (and `/mcp` to the first) on
    one listener `mcp_gateway` at port 0 (each Envoy picks its own port)."""
    gateways: dict[str, Any] = {
        "listeners": [{"name": "mcp_gateway", "address": "127.0.0.1", "port": 0}, *(extra_listeners or [])],
    }
    if node_groups:
        gateways["node_groups"] = node_groups
    write_atomically(directory / "gateways.yaml", yaml.safe_dump(gateways, sort_keys=False))
    for i, (name, port) in enumerate(upstreams.items()):
        routes = [{"path": f"/{name}/mcp", "rewrite_prefix": "/mcp"}]
        if i == 0:
            routes.append({"path": "/mcp"})
        server = {"routes": routes, "endpoints": [f"127.0.0.1:{port}"]}
        write_atomically(directory / "servers" / f"{name}.yaml", yaml.safe_dump(server, sort_keys=False))
    set_filter_config(directory, filter_config if filter_config is not None else {"pass_through": True})
    for name, doc in (filters or {}).items():
        write_atomically(directory / "filters" / f"{name}.json", json.dumps(doc, indent=2))
    return directory


def set_filter_config(directory: Path, doc: dict[str, Any] | str) -> None:
    write_atomically(directory / "filter.json", doc if isinstance(doc, str) else json.dumps(doc, indent=2))


def ads_bootstrap(
    xds_port: int, node_id: str, cluster: str = "mcp-gateway", metadata: dict | None = None, stats_flush: str | None = None
) -> dict:
    """envoy-configs/xds-bootstrap.yaml with this node, admin on port 0 and the given xDS port
    (`stats_flush`: how often the stats sink streams to the control plane, e.g. "0.5s")."""
    b = copy.deepcopy(yaml.safe_load(XDS_BOOTSTRAP.read_text()))
    if stats_flush:
        b["stats_flush_interval"] = stats_flush
    b["node"] = {"id": node_id, "cluster": cluster, **({"metadata": metadata} if metadata else {})}
    b["admin"]["address"]["socket_address"]["port_value"] = 0
    xds = b["static_resources"]["clusters"][0]
    xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = xds_port
    return b


# ---------------------------------------------------------------------------------------------
# A raw HTTP/2 + gRPC client, just enough to send the server malformed ADS streams (the venv
# has no gRPC or h2 package, and a well-behaved client could not send these anyway).
# ---------------------------------------------------------------------------------------------

ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def _frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _hpack_literal(name: str, value: str) -> bytes:
    # Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2).
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def raw_ads_stream(port: int, grpc_messages: list[bytes], wait: float = 2.0) -> bytes:
    """Open one ADS stream, send each payload as a gRPC message, return what came back until
    the server closes or `wait` passes."""
    headers = b"".join(
        _hpack_literal(k, v)
        for k, v in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", ADS_PATH),
            (":authority", "xds"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 0x4, 1, headers)
    for m in grpc_messages:
        out += _frame(0, 0, 1, b"\x00" + struct.pack(">I", len(m)) + m)
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(out)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
                # RST_STREAM (type 3) or a HEADERS frame with END_STREAM (trailers) ends it.
                if b"\x03\x00\x00\x00\x00\x01" in received or b"grpc-status" in received:
                    break
        except socket.timeout:
            pass
    return received


def discovery_request_without_node(type_url: str) -> bytes:
    """A well-formed DiscoveryRequest (field 4, type_url) that omits the node."""
    t = type_url.encode()
    return b"\x22" + bytes([len(t)]) + t


# ---------------------------------------------------------------------------------------------
# Policy-over-xDS helpers (test_xds_policy.py, bench/xds/): fixtures, key files, and "has every
# Envoy ACKed the current snapshot" read from the server's /status.
# ---------------------------------------------------------------------------------------------

XDS_FIXTURES = Path(__file__).resolve().parent / "xds_fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    """A JSON document under integration/xds_fixtures/ (e.g. `policy/filter.json`)."""
    return json.loads((XDS_FIXTURES / name).read_text())


def write_jwks(directory: Path, jwks: dict[str, Any], name: str = "idp") -> None:
    """`jwks/NAME.json` in a source directory (what a provider's `jwks_file` names)."""
    write_atomically(directory / "jwks" / f"{name}.json", json.dumps(jwks, indent=2))


def node_is_current(status: dict, node: dict) -> bool:
    """The node runs the snapshot its group is served now: every type ACKed, nothing in flight,
    nothing held as NACKed."""
    group = node["group"] or "(ungrouped)"
    if node["snapshot_version"] is None or node["snapshot_version"] != status["snapshot"]["groups"].get(group):
        return False
    return bool(node["types"]) and all(
        t["acked_version"] and t["pending_version"] is None and t["held_nacked_version"] is None for t in node["types"].values()
    )


def ecds_acked(status: dict) -> dict[str, str]:
    """node id → the ECDS version it last ACKed."""
    return {n["node_id"]: n["types"].get("ecds", {}).get("acked_version", "") for n in status["nodes"]}


def current_nodes(status: dict, node_ids: set[str], changed_from: dict[str, str] | None = None) -> bool:
    """Every node in `node_ids` is connected and current; with `changed_from` (node → ECDS
    version before an edit), each has also ACKed a different ECDS version since."""
    nodes = {n["node_id"]: n for n in status["nodes"]}
    if not node_ids <= set(nodes):
        return False
    for nid in node_ids:
        n = nodes[nid]
        if not node_is_current(status, n):
            return False
        if changed_from is not None and n["types"].get("ecds", {}).get("acked_version") == changed_from.get(nid):
            return False
    return True


def wait_current(xds: XdsServer, node_ids: set[str], changed_from: dict[str, str] | None = None, timeout: float = 15.0) -> dict:
    """Poll /status until `current_nodes(...)`; returns that status."""
    return wait_until(
        f"{sorted(node_ids)} to ACK the current snapshot",
        lambda: s if current_nodes(s := xds.status(), node_ids, changed_from) else None,
        timeout=timeout,
        proc=xds,
    )
