"""Fixtures for the integration suite: real Envoy, real MCP servers, real MCP clients.

Every process a test starts is registered with `procs` and stopped after the test, pass or
fail; on failure the tail of each log and Envoy's module counters are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Envoy, HeaderEcho, McpServer, Proc, StdioBridge, TsMcpServer, gateway_bootstrap  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Procs:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def add(self, p: Proc) -> Proc:
        self.started.append(p)
        return p

    def mcp_server(self, name: str = "demo", json_response: bool = False, stateless: bool = False) -> McpServer:
        try:
            return self.add(McpServer(self.log_dir, name=name, json_response=json_response, stateless=stateless))
        except Exception:
            self._dump()
            raise

    def header_echo(self, name: str = "echo") -> HeaderEcho:
        return self.add(HeaderEcho(self.log_dir, name=name))

    def ts_server(self, name: str = "ts") -> TsMcpServer:
        try:
            return self.add(TsMcpServer(self.log_dir, name=name))
        except Exception:
            self._dump()
            raise

    def stdio_bridge(self, name: str = "bridge", **kw) -> StdioBridge:
        try:
            return self.add(StdioBridge(self.log_dir, name=name, **kw))
        except Exception:
            self._dump()
            raise

    def envoy(self, bootstrap: dict, name: str = "envoy", **kw) -> Envoy:
        try:
            return self.add(Envoy(bootstrap, self.log_dir, name=name, **kw))
        except Exception:
            self._dump()
            raise

    def gateway(self, upstreams: dict[str, "McpServer | TsMcpServer"], filter_config: dict | None = None, **kw) -> Envoy:
        boot = gateway_bootstrap({n: s.port for n, s in upstreams.items()}, filter_config, access_log=self.log_dir / "access.log")
        return self.envoy(boot, **kw)

    def _dump(self) -> None:
        for p in self.started:
            print(p.tail(), file=sys.stderr)
            if isinstance(p, Envoy) and p.popen.poll() is None:
                try:
                    stats = httpx.get(f"{p.admin}/stats?filter=mcp_policy", timeout=2).text
                    print(f"--- {p.name} /stats (mcp_policy) ---\n{stats}", file=sys.stderr)
                except Exception as e:  # noqa: BLE001 - best effort diagnostics
                    print(f"--- {p.name} /stats unavailable: {e}", file=sys.stderr)

    def stop_all(self) -> None:
        for p in reversed(self.started):
            p.stop()


@pytest.fixture
def procs(request, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    ps = Procs(log_dir)
    yield ps
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ps._dump()
    ps.stop_all()
