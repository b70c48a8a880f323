"""The official MCP conformance suite gives the same results through the gateway (allow-all
policy) as against the server directly: the gateway is transparent to everything it allows.

The suite runs against the demo MCP server (official Python SDK) and against the official
reference server, `@modelcontextprotocol/server-everything` (TypeScript SDK, stateful, SSE
answers opened by a priming event); most failures are fixtures a server lacks, which is why
results are compared, not required to pass.
"""

from __future__ import annotations

import re
import subprocess

import pytest

import base64

from harness import NODE_DIR, EverythingServer, add_virtual_server_routes, gateway_bootstrap, node_binary

ALLOW_ALL = {
    "rules": [
        {"id": "allow-all", "effect": "allow", "principals": [{"anonymous": True}, {}],
         "tools": ["*"], "resources": ["*"], "prompts": ["*"], "methods": ["*"]}
    ]
}

LINE = re.compile(r"^[✓✗] (?P<name>[\w.-]+): (?P<passed>\d+) passed, (?P<failed>\d+) failed$")


def run_suite(url: str, out_dir) -> dict[str, tuple[int, int]]:
    p = subprocess.run(
        [node_binary(version22=True), str(NODE_DIR / "node_modules" / ".bin" / "conformance"), "server", "--url", url, "-o", str(out_dir)],
        capture_output=True, text=True, timeout=600, cwd=NODE_DIR,
    )
    results = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            results[m["name"]] = (int(m["passed"]), int(m["failed"]))
    assert results, f"no results parsed from the conformance suite:\n{p.stdout}\n{p.stderr}"
    return results


@pytest.mark.parametrize("server", ["python-sdk-demo", "server-everything", "virtual-server"])
def test_conformance_results_through_the_gateway_match_the_server_directly(procs, tmp_path, server):
    if server == "python-sdk-demo":
        upstream = procs.mcp_server("demo", json_response=False)
    else:
        upstream = procs.add(EverythingServer(procs.log_dir))
    security = {"allowed_hosts": ["127.0.0.1:*", "localhost:*"], "allowed_origins": ["http://127.0.0.1:*", "http://localhost:*"]}
    config = {"server": "demo", "policy": ALLOW_ALL, "security": security}
    path = "/mcp"
    if server == "virtual-server":
        # One backend, as the default backend (empty prefix): names as the server has them.
        config["virtual_servers"] = {"vs": {
            "backends": [{"name": "demo", "prefix": "", "cluster": "demo", "authority": f"127.0.0.1:{upstream.port}"}],
            "session_keys": [{"id": "k1", "key": base64.b64encode(bytes(32)).decode()}],
        }}
        path = "/vs/mcp"
    boot = gateway_bootstrap({"demo": upstream.port}, config, access_log=procs.log_dir / "access.log")
    if server == "virtual-server":
        add_virtual_server_routes(boot, "vs", path, "demo")
    gw = procs.envoy(boot)

    direct = run_suite(upstream.url, tmp_path / "direct")
    through = run_suite(gw.url(path=path), tmp_path / "gateway")

    assert set(direct) == set(through)
    differ = {k: (direct[k], through[k]) for k in direct if direct[k] != through[k]}
    # DNS-rebinding protection is the one place the gateway may do better than the server (the
    # demo server runs with it off; the gateway validates Origin itself). It must never do worse.
    rebinding = differ.pop("dns-rebinding-protection", None)
    if rebinding is not None:
        (d_pass, _), (g_pass, _) = rebinding
        assert g_pass >= d_pass, rebinding
    if server == "virtual-server":
        # A virtual server answers GET with the spec's 405 (no fan-in of backend streams,
        # docs/virtual-server.md): the suite then runs fewer GET-stream checks, none failing.
        streams = differ.pop("server-sse-multiple-streams", None)
        if streams is not None:
            (_, d_fail), (_, g_fail) = streams
            assert g_fail <= d_fail, streams
    assert not differ, f"the gateway changed conformance results: {differ}"
    print(f"conformance ({server}): direct {sum(p for p, _ in direct.values())} passed / through gateway "
          f"{sum(p for p, _ in through.values())} passed, over {len(direct)} scenarios")
