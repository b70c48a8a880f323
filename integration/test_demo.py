"""The README's first command (`make run` → integration/demo.py) gives a working gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import socket
from pathlib import Path

import pytest

from harness import free_port, wait_until
from mcp_client import session

pytestmark = pytest.mark.anyio

DEMO = Path(__file__).parent / "demo.py"


async def test_demo_serves_mcp_and_ctrl_c_stops_everything(tmp_path):
    ports = {"MCP_DEMO_PORT": free_port(), "MCP_DEMO_ADMIN_PORT": free_port(), "MCP_DEMO_UPSTREAM_PORT": free_port()}
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        demo = subprocess.Popen(
            [sys.executable, str(DEMO)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, **{k: str(v) for k, v in ports.items()}},
            start_new_session=True,
        )
    try:
        wait_until("demo ready banner", lambda: b"demo gateway ready" in out.read_bytes(), timeout=60)
        assert b"Try next" in out.read_bytes()
        async with session(f"http://127.0.0.1:{ports['MCP_DEMO_PORT']}/mcp") as s:
            assert (await s.call_tool("add", {"a": 1, "b": 2})).content[0].text == "3"

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0, out.read_text()
        # Nothing it started is left listening.
        for port in ports.values():
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after Ctrl-C"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
