"""`make run`: the product in five minutes, on an embedded default.

Starts a local demo token issuer (in this process: a fresh key pair, two tokens), two demo MCP
servers (official Python SDK), and Envoy with envoy-configs/demo.yaml carrying the mcp_policy
module configured with that issuer and examples/demo/policy.json:

  /mcp          server "demo", enforce mode: the developer and the contractor see different
                tools/list answers; the contractor's delete_branch is refused naming its rule
  /sandbox/mcp  server "sandbox", audit mode: the same call passes, and the access log says
                what enforce mode would have done (audit_deny + the rule)

It prints the tokens and copy-paste commands to try (each stands alone: the demo servers run
without sessions), writes one JSON access-log line per request to <logs>/access.log and the
filter config as loaded to <logs>/filter.json, and stops everything on Ctrl-C.

Ports default to the ones in demo.yaml (gateway 10000, admin 9901, upstream 8000; the sandbox
upstream 8001); set MCP_DEMO_PORT, MCP_DEMO_ADMIN_PORT, MCP_DEMO_UPSTREAM_PORT or
MCP_DEMO_SANDBOX_PORT to move them. MCP_POLICY_BIN names the mcp-policy binary the printed
commands use (default target/release/mcp-policy).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import ROOT, Envoy, HarnessError, McpServer, load_demo_bootstrap  # noqa: E402
from issuer import Issuer  # noqa: E402

POLICY = ROOT / "examples" / "demo" / "policy.json"
TOKEN_LIFETIME_S = 3600


def shown(path: Path) -> str:
    """A path as the user can paste it from where they ran `make run`."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def filter_config(boot: dict, issuer: Issuer) -> dict:
    """demo.yaml's module config (server, Host/Origin checks), with the demo issuer and policy."""
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    module = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.dynamic_modules")
    base = json.loads(module["typed_config"]["filter_config"]["value"])
    base.pop("pass_through", None)
    base["identity"] = {"providers": [issuer.provider("demo")]}
    base["policy"] = json.loads(POLICY.read_text())
    return base


def bootstrap(boot: dict, gw_port: int, admin_port: int, ports: dict[str, int], config: dict, access_log: Path) -> dict:
    """demo.yaml with the ports moved, `/mcp` → demo and `/sandbox/mcp` → sandbox, the module
    configured, and the access log in a file."""
    b = copy.deepcopy(boot)
    b["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = b["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = gw_port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"][0]["typed_config"]["path"] = str(access_log)
    module = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.dynamic_modules")
    module["typed_config"]["filter_config"]["value"] = json.dumps(config)
    template = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    sandbox = copy.deepcopy(template)
    sandbox["match"] = {"path": "/sandbox/mcp"}
    sandbox["metadata"] = {"filter_metadata": {"mcp_policy": {"server": "sandbox"}}}
    sandbox["route"] = {**sandbox["route"], "cluster": "sandbox", "prefix_rewrite": "/mcp"}
    hcm["route_config"]["virtual_hosts"][0]["routes"] = [sandbox, template]
    cluster = b["static_resources"]["clusters"][0]
    clusters = []
    for name, port in ports.items():
        c = copy.deepcopy(cluster)
        c["name"] = name
        c["load_assignment"]["cluster_name"] = name
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = port
        clusters.append(c)
    b["static_resources"]["clusters"] = clusters
    return b


def try_next(base: str, dev: str, con: str, log_dir: Path, mcp_policy: str) -> str:
    call = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_branch","arguments":{"repo":"demo","branch":"main"}}}'
    listing = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    log = shown(log_dir / "access.log")
    config = shown(log_dir / "filter.json")
    return f"""\
  export DEV='{dev}'
  export CON='{con}'
  mcp() {{ curl -s "{base}$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d "$3"; echo; }}
  mcp /mcp "$DEV" '{listing}'    # developer: echo, add, search_repos, delete_branch
  mcp /mcp "$CON" '{listing}'    # contractor: echo, add, search_repos
  mcp /mcp "$CON" '{call}'    # refused: -32030 naming rule no-deletes-for-contractors
  mcp /sandbox/mcp "$CON" '{call}'    # audit mode: it passes
  sleep 1; tail -n 2 {log}    # mcp_decision "deny", then "audit_deny", each with mcp_rule
  {mcp_policy} explain --policy {config} --token "$CON" --server demo --tool delete_branch
  {mcp_policy} replay --log {log} --policy {shown(ROOT / "examples" / "demo" / "policy-enforced.json")}    # what enforcing sandbox would refuse"""


def main() -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="mcp-policy-demo-"))
    boot = load_demo_bootstrap()
    gw_port = int(os.environ.get("MCP_DEMO_PORT", boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]))
    admin_port = int(os.environ.get("MCP_DEMO_ADMIN_PORT", boot["admin"]["address"]["socket_address"]["port_value"]))
    cluster = boot["static_resources"]["clusters"][0]
    upstream_addr = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    up_port = int(os.environ.get("MCP_DEMO_UPSTREAM_PORT", upstream_addr["port_value"]))
    sandbox_port = int(os.environ.get("MCP_DEMO_SANDBOX_PORT", up_port + 1))
    mcp_policy = os.environ.get("MCP_POLICY_BIN") or shown(ROOT / "target" / "release" / "mcp-policy")
    base = f"http://127.0.0.1:{gw_port}"
    issuer = Issuer(issuer="https://demo-issuer.invalid", audience=f"{base}/mcp")
    exp = int(time.time()) + TOKEN_LIFETIME_S
    dev = issuer.token("alice", groups=["developers"], exp=exp)
    con = issuer.token("bob", groups=["contractors"], exp=exp)
    config = filter_config(boot, issuer)
    (log_dir / "filter.json").write_text(json.dumps(config, indent=2) + "\n")
    access_log = log_dir / "access.log"
    access_log.touch()

    started = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        # Stateless JSON servers: every request stands alone, so each printed line works by itself.
        upstream = McpServer(log_dir, name="demo", fixed_port=up_port, json_response=True, stateless=True)
        started.append(upstream)
        sandbox = McpServer(log_dir, name="sandbox", fixed_port=sandbox_port, json_response=True, stateless=True)
        started.append(sandbox)
        # Access-log lines reach the file within 100 ms (Envoy's default flush is every 10 s).
        envoy = Envoy(
            bootstrap(boot, gw_port, admin_port, {"demo": up_port, "sandbox": sandbox_port}, config, access_log),
            log_dir,
            name="envoy",
            extra_args=["--file-flush-interval-msec", "100"],
        )
        started.append(envoy)
        print(
            f"""
MCP policy for Envoy: demo gateway ready
  gateway     {base}/mcp           server "demo", enforce mode   (Envoy 1.40 + libmcp_policy.so)
              {base}/sandbox/mcp   server "sandbox", audit mode: denials are logged, not refused
  upstreams   http://127.0.0.1:{up_port}/mcp, http://127.0.0.1:{sandbox_port}/mcp   (demo MCP servers, official Python SDK)
  policy      {shown(POLICY)}   (the module's config as loaded: {shown(log_dir / "filter.json")})
  access log  {shown(access_log)}   (one JSON line per request)
  admin       http://127.0.0.1:{admin_port}/stats?filter=mcp_policy
  other logs  {shown(log_dir)}

Tokens from the demo issuer (https://demo-issuer.invalid, a key made for this run; valid {TOKEN_LIFETIME_S // 60} min):
  developer   alice, groups [developers]    $DEV below
  contractor  bob, groups [contractors]     $CON below

Try next (paste into a shell from here; each line stands alone, the demo servers need no session):
{try_next(base, dev, con, log_dir, mcp_policy)}

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
