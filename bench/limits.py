"""`make bench-limits`: what the policy's limits add per `tools/call`, in instructions.

Three arms, each one Envoy (--concurrency 1) under `valgrind --tool=callgrind` in front of the
Python demo server, the same JWT-authenticated `tools/call` sent over one keep-alive connection:
  nolimit: the policy, no `limits`
  local:   plus a local calls limit and a local budget (counted in the module's atomic table)
  global:  plus a global budget: Envoy's rate-limit filter after the module, a real
           `mcp-ratelimit` and a real `redis-server`
Counters are zeroed after a warm-up, dumped after N calls; Envoy's instructions per call are
the total / N. For the global arm the CPU time `mcp-ratelimit` and Redis spend per call (from
/proc, utime+stime) is reported too (not instructions: they run outside callgrind).

Writes bench/results/limits-<stamp>/summary.json and summary.md."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "integration"))

import harness  # noqa: E402
from issuer import Issuer  # noqa: E402
from test_limits_global import listening, rls_binary, with_ratelimit  # noqa: E402

POLICY = {
    "servers": {"py": {}},
    "rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}],
}
LOCAL = {"costs": [{"tools": ["echo"], "cost": 3}], "rules": [
    {"id": "calls", "calls": {"max": 1_000_000_000, "per": "day"}},
    {"id": "budget", "per": "tenant", "principals": [{"tenants": ["*"]}], "budget": {"max": 1_000_000_000, "per": "day"}}]}
GLOBAL = {"costs": [{"tools": ["echo"], "cost": 3}], "rules": [
    {"id": "fleet", "scope": "global", "per": "tenant", "principals": [{"tenants": ["*"]}],
     "budget": {"max": 1_000_000_000, "per": "day"}}]}


def cpu_seconds(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def total_ir(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def run_arm(name: str, limits: dict | None, out: Path, n: int, warm: int) -> dict:
    log_dir = out / name
    log_dir.mkdir(parents=True)
    procs: list[harness.Proc] = []
    try:
        issuer = Issuer()
        py = harness.McpServer(log_dir, name="py", json_response=True, stateless=True)
        procs.append(py)
        policy = {**POLICY, **({"limits": limits} if limits else {})}
        config = {"server": "py", "identity": {"providers": [issuer.provider(claims={"tenant": "tid"})],
                                               "resource": issuer.audience}, "policy": policy}
        boot = harness.gateway_bootstrap({"py": py.port}, config, access_log=Path("/dev/null"))
        side: list[harness.Proc] = []
        if name == "global":
            rport, rlsport = harness.free_port(), harness.free_port()
            redis = harness.Proc("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no"], log_dir)
            procs.append(redis)
            harness.wait_until("redis", lambda: listening(rport), proc=redis)
            (log_dir / "policy.json").write_text(json.dumps(policy))
            rls = harness.Proc("rls", [str(rls_binary()), "--policy", str(log_dir / "policy.json"), "--listen",
                                       f"127.0.0.1:{rlsport}", "--redis", f"127.0.0.1:{rport}"], log_dir)
            procs.append(rls)
            harness.wait_until("rls", lambda: listening(rlsport), proc=rls)
            side = [rls, redis]
            boot = with_ratelimit(boot, rlsport, fail_closed=True)
        boot["admin"]["address"]["socket_address"]["port_value"] = 0
        import yaml
        cfg = log_dir / "envoy.yaml"
        cfg.write_text(yaml.safe_dump(boot, sort_keys=False))
        admin_path = log_dir / "envoy.admin"
        prefix = log_dir / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p", "--dump-instr=no",
               "--separate-threads=no", str(harness.envoy_binary()), "-c", str(cfg), "--admin-address-path",
               str(admin_path), "--use-dynamic-base-id", "--concurrency", "1", "--log-level", "warn"]
        envoy = harness.Proc("envoy", cmd, log_dir, env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(harness.module_dir())})
        procs.append(envoy)
        addr = harness.wait_until("admin", lambda: admin_path.exists() and admin_path.read_text().strip(), timeout=600, proc=envoy)
        admin = f"http://{addr}"
        harness.wait_until("ready", lambda: httpx.get(f"{admin}/ready", timeout=5).status_code == 200, timeout=600, proc=envoy)
        data = httpx.get(f"{admin}/listeners?format=json", timeout=10).json()
        port = data["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
        url = f"http://127.0.0.1:{port}/py/mcp"
        headers = {"Authorization": f"Bearer {issuer.token('bench', tid='acme')}",
                   "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}
        with httpx.Client(timeout=60) as c:
            for _ in range(warm):
                assert c.post(url, json=body, headers=headers).status_code == 200
            subprocess.run(["callgrind_control", "-z", str(envoy.popen.pid)], check=True, capture_output=True, timeout=300)
            cpu0 = {p.name: cpu_seconds(p.popen.pid) for p in side}
            t0 = time.monotonic()
            for _ in range(n):
                r = c.post(url, json=body, headers=headers)
                assert r.status_code == 200, r.text
            wall = time.monotonic() - t0
            cpu1 = {p.name: cpu_seconds(p.popen.pid) for p in side}
        before = set(log_dir.glob("callgrind.out.*"))
        subprocess.run(["callgrind_control", "-d", str(envoy.popen.pid)], check=True, capture_output=True, timeout=300)
        dump = harness.wait_until("dump", lambda: (set(log_dir.glob("callgrind.out.*")) - before) or None, timeout=120)
        ir = total_ir(sorted(dump)[-1])
        return {"requests": n, "ir_per_request": ir / n, "wall_s": wall,
                "side_cpu_us_per_request": {k: (cpu1[k] - cpu0[k]) * 1e6 / n for k in cpu0}}
    finally:
        for p in reversed(procs):
            p.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--arms", default="nolimit,local,global")
    a = ap.parse_args()
    out = BENCH / "results" / f"limits-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    arms = {"nolimit": None, "local": LOCAL, "global": GLOBAL}
    res = {name: run_arm(name, arms[name], out, a.requests, a.warmup) for name in a.arms.split(",")}
    (out / "summary.json").write_text(json.dumps(res, indent=2))
    base = res.get("nolimit", {}).get("ir_per_request")
    lines = ["# Limits: Envoy instructions per tools/call (callgrind, --concurrency 1)", "",
             "| arm | Ir/call | added over no limits | mcp-ratelimit CPU µs/call | redis CPU µs/call |", "|---|---:|---:|---:|---:|"]
    for name, r in res.items():
        added = f"{r['ir_per_request'] - base:,.0f}" if base and name != "nolimit" else "–"
        side = r["side_cpu_us_per_request"]
        lines.append(f"| {name} | {r['ir_per_request']:,.0f} | {added} | {side.get('rls', 0):.0f} | {side.get('redis', 0):.0f} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
