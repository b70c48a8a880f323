"""`make bench-audit`: what the audit trail costs (docs/audit.md, numbers in docs/BENCHMARKS.md).

1. Envoy CPU per request with the gRPC access-log stream to `mcp-audit serve` on, against the
   same gateway without it: Envoy (--concurrency 1) pinned to CPU 1, the upstream (header echo),
   the client and mcp-audit on CPU 0; Envoy's CPU time read from /proc/<pid>/task/*/schedstat
   around a fixed number of `tools/call` requests. Arms alternate, `--rounds` times each; the
   median is reported.
2. Records per second `mcp-audit serve` sustains on one core (taskset CPU 1), fed by
   audit/examples/als_load.rs over one ALS stream, for each fsync policy.

Writes bench/results/audit-latest.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "integration"))

import harness  # noqa: E402

LOAD = ROOT / "target" / "release" / "examples" / "als_load"


def cpu_ns(pid: int) -> int:
    total = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((t / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass
    return total


def pin(pid: int, cpu: str) -> None:
    for t in Path(f"/proc/{pid}/task").iterdir():
        subprocess.run(["taskset", "-pc", cpu, t.name], capture_output=True)


def drive(url: str, n: int, threads: int = 4) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi", "n": 1}}}
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
         "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

    def worker(k: int):
        with httpx.Client(timeout=10) as c:
            for _ in range(k):
                r = c.post(url, json=body, headers=h)
                assert r.status_code == 200, r.status_code

    ts = [threading.Thread(target=worker, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def envoy_cpu(work: Path, n: int, rounds: int) -> dict:
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    echo = harness.HeaderEcho(logs)
    pin(echo.popen.pid, "0")
    audit = harness.AuditService(logs, work / "audit")
    pin(audit.popen.pid, "0")
    results: dict[str, list[float]] = {"als_off": [], "als_on": []}
    try:
        for _ in range(rounds):
            for arm in ("als_off", "als_on"):
                boot = harness.gateway_bootstrap({"echo": echo.port}, access_log=logs / f"{arm}.log")
                if arm == "als_on":
                    harness.add_audit_log(boot, audit.port)
                envoy = harness.Envoy(boot, logs, name=f"envoy-{arm}", concurrency=1)
                try:
                    pin(envoy.popen.pid, "1")
                    url = envoy.url(path="/echo/mcp")
                    drive(url, 200)  # warm up: connections, the ALS stream
                    before = cpu_ns(envoy.popen.pid)
                    drive(url, n)
                    time.sleep(0.5)  # the last ALS flush is Envoy's work too
                    results[arm].append((cpu_ns(envoy.popen.pid) - before) / n / 1000)
                finally:
                    envoy.stop()
    finally:
        audit.stop()
        echo.stop()
    off, on = statistics.median(results["als_off"]), statistics.median(results["als_on"])
    return {"requests_per_round": n, "rounds": rounds, "envoy_cpu_us_per_request": {"als_off": off, "als_on": on},
            "added_cpu_us_per_request": on - off, "samples": results}


def service_rate(work: Path, records: int, batch: int) -> dict:
    out = {}
    for fsync in ("batch", "interval:100", "never"):
        logs = work / f"rate-{fsync.replace(':', '-')}"
        logs.mkdir(parents=True, exist_ok=True)
        audit = harness.AuditService(logs, logs / "audit", args=["--fsync", fsync, "--checkpoint-every", "10000"])
        try:
            pin(audit.popen.pid, "1")
            before = cpu_ns(audit.popen.pid)
            r = subprocess.run(["taskset", "-c", "0", str(LOAD), f"127.0.0.1:{audit.port}", f"127.0.0.1:{audit.metrics_port}",
                                str(records), str(batch)], capture_output=True, text=True, timeout=600, check=True)
            res = json.loads(r.stdout)
            res["service_cpu_us_per_record"] = (cpu_ns(audit.popen.pid) - before) / records / 1000
        finally:
            audit.stop()
        v = audit.cli("verify")
        res["verified"] = v.returncode == 0
        out[fsync] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=25, help="entries per ALS message (Envoy's 16 KiB buffer holds ~20-30)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcp-audit-bench-") as d:
        work = Path(d)
        result = {
            "envoy": envoy_cpu(work / "envoy", args.requests, args.rounds),
            "service": service_rate(work / "service", args.records, args.batch),
            "machine": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() + " cores",
        }
    out = BENCH / "results" / "audit-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    e = result["envoy"]
    print(f"Envoy CPU/request: ALS off {e['envoy_cpu_us_per_request']['als_off']:.1f} us, on {e['envoy_cpu_us_per_request']['als_on']:.1f} us "
          f"(+{e['added_cpu_us_per_request']:.1f} us)")
    for k, v in result["service"].items():
        print(f"mcp-audit on one core, fsync={k}: {v['records_per_s']} records/s, {v['service_cpu_us_per_record']:.1f} us CPU/record, verified={v['verified']}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
