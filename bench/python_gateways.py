"""The Python MCP gateways, each from its own venv under bench/.venvs/ (made by `make bench`),
configured for the closest job to POLICY that each can do without a database server.

LiteLLM proxy (`litellm[proxy]`): one MCP server entry pointing at the responder, the master key
as the only credential (per-key/per-team tool permissions need LiteLLM's Postgres database, which
is out of scope here), and server-level `disallowed_tools` for the delete_* tools. Tools appear
as `bench-<name>`. Stateless Streamable HTTP on `/mcp/`.

ContextForge (`mcp-contextforge-gateway`): SQLite database, its own HS256 JWT (minted by its CLI)
as the credential, the responder registered as a gateway, and a virtual server holding the tools
a developer may use (everything but delete_*): its per-server tool scoping is the closest to a
per-principal list. Tools appear as `bench-<name-with-dashes>`. Clients use `/servers/<id>/mcp`.

Both are started with one worker process, pinned like Envoy to the gateway CPU.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx

import harness

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"

# What each Python arm can run: the upstream URL is fixed in its config (?tools=100, JSON).
SUPPORTED = {"call_json", "list_100", "denied"}


def _venv_bin(name: str, exe: str) -> Path:
    return VENVS / name / "bin" / exe


def _responder_tools(n: int = 100) -> list[str]:
    return ["echo"] + [f"{['get', 'list', 'search', 'create', 'update', 'delete'][i % 6]}_item_{i}" for i in range(1, n)]


def start(arm: str, port: int, issuer, log_dir: Path, pin, responder_pid: int, target_cls) -> tuple[Any, str | None]:
    if arm == "litellm":
        return _litellm(port, log_dir, pin, responder_pid, target_cls)
    if arm == "contextforge":
        return _contextforge(port, log_dir, pin, responder_pid, target_cls)
    return None, f"unknown arm {arm!r}"


def _litellm(port: int, log_dir: Path, pin, responder_pid: int, target_cls):
    exe = _venv_bin("litellm", "litellm")
    if not exe.exists():
        return None, f"{exe} missing (make bench-venvs)"
    lp = harness.free_port()
    denied = [t for t in _responder_tools() if t.startswith("delete_")]
    cfg = log_dir / "litellm.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "model_list": [],
        "general_settings": {"master_key": "sk-bench-master"},
        "mcp_servers": {"bench": {"url": f"http://127.0.0.1:{port}/mcp?tools=100", "transport": "http", "disallowed_tools": denied}},
    }))
    proc = harness.Proc("litellm", [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(lp), "--num_workers", "1"],
                        log_dir, env={"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True"})
    base = f"http://127.0.0.1:{lp}/mcp/"
    try:
        harness.wait_until("litellm /health/liveliness",
                           lambda: httpx.get(f"http://127.0.0.1:{lp}/health/liveliness", timeout=2).status_code == 200,
                           timeout=180, proc=proc)
    except harness.HarnessError as e:
        proc.stop()
        return None, f"did not start: {str(e)[:300]}"
    pin(proc.popen.pid)
    t = target_cls("litellm", base, {"gateway": proc.popen.pid, "responder": responder_pid}, [proc], proc.popen.pid)
    t.auth = {"x-litellm-api-key": "sk-bench-master"}
    t.tool_name = lambda name: f"bench-{name}"
    t.supported = SUPPORTED
    t.use_query = False
    return t, None


def _contextforge(port: int, log_dir: Path, pin, responder_pid: int, target_cls):
    exe = _venv_bin("contextforge", "mcpgateway")
    if not exe.exists():
        return None, f"{exe} missing (make bench-venvs)"
    cp = harness.free_port()
    db = log_dir / "contextforge.db"
    secret = "bench-secret-key-that-is-long-enough-0123456789"
    env = {
        "HOST": "127.0.0.1", "PORT": str(cp), "DATABASE_URL": f"sqlite:///{db}",
        "JWT_SECRET_KEY": secret, "AUTH_ENCRYPTION_SECRET": "bench-encryption-secret-0123456789abcdef",
        "BASIC_AUTH_PASSWORD": "bench-password-123456", "PLATFORM_ADMIN_EMAIL": "admin@example.com",
        "PLATFORM_ADMIN_PASSWORD": "bench-Password-123456!", "MCPGATEWAY_UI_ENABLED": "false",
        "MCPGATEWAY_ADMIN_API_ENABLED": "true", "CACHE_TYPE": "memory", "LOG_LEVEL": "ERROR",
        "PLUGINS_ENABLED": "false", "OBSERVABILITY_ENABLED": "false", "SSRF_PROTECTION_ENABLED": "false",
        "SSRF_ALLOW_LOCALHOST": "true", "SSRF_ALLOW_PRIVATE_NETWORKS": "true", "ENVIRONMENT": "development",
        "SECURE_COOKIES": "false",
        # Its defaults rate-limit MCP to 100 requests/min per user and then lock the account: a
        # load test would measure the limiter. Off, as for every other arm.
        "RATE_LIMITING_ENABLED": "false", "TOOL_RATE_LIMIT": "1000000", "RATE_LIMIT_MEDIUM_RPM": "100000000",
    }
    proc = harness.Proc("contextforge", [str(exe), "--host", "127.0.0.1", "--port", str(cp)], log_dir, env=env)
    base = f"http://127.0.0.1:{cp}"
    try:
        harness.wait_until("contextforge /health", lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200,
                           timeout=180, proc=proc)
        tok = subprocess.run(
            [str(_venv_bin("contextforge", "python")), "-m", "mcpgateway.utils.create_jwt_token", "--username", "admin@example.com",
             "--exp", "600", "--secret", secret],
            capture_output=True, text=True, check=True, env={**os.environ, **env},
        ).stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {tok}"}
        r = httpx.post(f"{base}/gateways", headers=auth, timeout=60,
                       json={"name": "bench", "url": f"http://127.0.0.1:{port}/mcp?tools=100", "transport": "STREAMABLEHTTP"})
        r.raise_for_status()
        tools = httpx.get(f"{base}/tools", params={"limit": 0, "include_pagination": "false"}, headers=auth, timeout=60).json()
        tools = tools if isinstance(tools, list) else tools.get("tools", tools.get("items", []))
        ids = [t["id"] for t in tools if not t.get("originalName", t["name"]).startswith("delete_")]
        r = httpx.post(f"{base}/servers", headers=auth, timeout=60, json={"server": {"name": "bench-dev", "associated_tools": ids}})
        r.raise_for_status()
        server_id = r.json()["id"]
    except (harness.HarnessError, httpx.HTTPError, subprocess.CalledProcessError, KeyError, ValueError) as e:
        proc.stop()
        return None, f"setup failed: {str(e)[:300]}"
    pin(proc.popen.pid)
    t = target_cls("contextforge", f"{base}/servers/{server_id}/mcp", {"gateway": proc.popen.pid, "responder": responder_pid},
                   [proc], proc.popen.pid)
    t.auth = auth
    t.tool_name = lambda name: "bench-" + re.sub(r"_", "-", name)
    t.supported = SUPPORTED
    t.use_query = False
    return t, None
