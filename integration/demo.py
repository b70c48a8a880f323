"""`make run`: a working demo gateway on the embedded default config.

Starts the demo MCP server (official Python SDK) and Envoy with envoy-configs/demo.yaml and
the mcp_policy module, prints what to try next, and stops everything on Ctrl-C.

Ports default to the ones in demo.yaml (gateway 10000, admin 9901, upstream 8000); set
MCP_DEMO_PORT, MCP_DEMO_ADMIN_PORT or MCP_DEMO_UPSTREAM_PORT to move them.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import Envoy, HarnessError, McpServer, load_demo_bootstrap  # noqa: E402


def main() -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="mcp-policy-demo-"))
    boot = load_demo_bootstrap()
    gw_port = int(os.environ.get("MCP_DEMO_PORT", boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]))
    admin_port = int(os.environ.get("MCP_DEMO_ADMIN_PORT", boot["admin"]["address"]["socket_address"]["port_value"]))
    cluster = boot["static_resources"]["clusters"][0]
    upstream_addr = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    up_port = int(os.environ.get("MCP_DEMO_UPSTREAM_PORT", upstream_addr["port_value"]))
    boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = gw_port
    boot["admin"]["address"]["socket_address"]["port_value"] = admin_port
    upstream_addr["port_value"] = up_port
    # The demo prints access-log lines to this terminal.
    started = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        upstream = McpServer(log_dir, name="demo", fixed_port=up_port)
        started.append(upstream)
        envoy = Envoy(boot, log_dir, name="envoy")
        started.append(envoy)
        url = f"http://127.0.0.1:{gw_port}/mcp"
        print(
            f"""
MCP policy for Envoy: demo gateway ready
  gateway  {url}   (Envoy 1.40 + libmcp_policy.so)
  upstream http://127.0.0.1:{up_port}/mcp   (demo MCP server, official Python SDK)
  admin    http://127.0.0.1:{admin_port}/stats?filter=mcp_policy
  logs     {log_dir}

Try next:
  curl -s {url} -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"curl","version":"1"}}}}}}'
  curl -s {url} -H 'content-type: application/json' -d '{{"jsonrpc":"2.0","id":1,'     # refused: -32700
  curl -s http://127.0.0.1:{admin_port}/stats?filter=mcp_policy
  Point any MCP client (Streamable HTTP) at {url}

Ctrl-C stops everything.""",
            flush=True,
        )
        while not stop.wait(0.5):
            for p in started:
                if p.popen.poll() is not None:
                    print(f"{p.name} exited with {p.popen.returncode}\n{p.tail()}", file=sys.stderr)
                    return 1
        print("\nstopping demo gateway", flush=True)
        return 0
    except HarnessError as e:
        print(f"demo failed to start: {e}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(started):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
