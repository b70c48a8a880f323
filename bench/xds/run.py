"""`make bench-xds`: what the control plane costs and how fast an edit reaches the fleet.

Two parts, each against a real mcp-xds-server process and real ADS-only Envoys (the
integration harness starts and stops every process):

  propagation  for N Envoys (default 2, 4, 8): several policy edits of the integration
               fixture (integration/xds_fixtures/policy/filter.json); per edit, the time from
               the file write to the snapshot being applied (`config.applied_at` on /status)
               and to every Envoy having ACKed it (/status polled every 10 ms).
  scale        a generated world of 1,000 MCP servers and 10,000 policy rules: `check`
               (read + validate + build, offline), the server's own phase timings (its "config
               applied … validated in X ms, built in Y ms" log line), memory (VmHWM/VmRSS) and
               CPU seconds at load, idle (polling 1,000 files), for the first sync of two
               Envoys, and per policy push / per endpoint push with both connected.

Not a test: nothing is asserted beyond "it converged". Writes bench/xds/results/<stamp>/
results.json and results.md, and copies them to bench/xds/results/latest.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "integration"))

import yaml  # noqa: E402

from harness import Envoy, HarnessError, Proc  # noqa: E402
from issuer import Issuer  # noqa: E402
from xds_harness import (  # noqa: E402
    XdsServer,
    ads_bootstrap,
    current_nodes,
    ecds_acked,
    load_fixture,
    set_filter_config,
    wait_current,
    write_atomically,
    write_jwks,
    write_source_dir,
    xds_server_binary,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
STATUS_POLL = 0.010  # seconds between /status probes while timing an edit
BOUND = 60.0  # an edit that has not reached every Envoy by then is a failure of the run


# ------------------------------------------------------------------------------------------
# /proc readings
# ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def applied_timings(log_path: Path) -> list[dict[str, int]]:
    """Every "config applied … validated in X ms, built in Y ms" line of the server's log."""
    pat = re.compile(r"config applied: snapshot (\w+) .*validated in (\d+) ms, built in (\d+) ms")
    return [
        {"snapshot": m.group(1), "validate_ms": int(m.group(2)), "build_ms": int(m.group(3))}
        for m in pat.finditer(log_path.read_text(errors="replace"))
    ]


def parse_rfc3339(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------------------------
# Timing one edit: file write -> applied -> every node ACKed
# ------------------------------------------------------------------------------------------


def timed_edit(xds: XdsServer, nodes: set[str], write) -> dict[str, Any]:
    """Run `write()` (one file write) and poll /status until every node has ACKed a new ECDS
    version on the new snapshot. Returns seconds from the write to: the snapshot being applied,
    each node's ACK being visible, the last one."""
    before_status = xds.status()
    before = ecds_acked(before_status)
    applied_before = before_status["config"]["applied_at"]
    wall0, t0 = time.time(), time.monotonic()
    write()
    per_node: dict[str, float] = {}
    while True:
        if time.monotonic() - t0 > BOUND:
            raise HarnessError(f"edit not ACKed by {sorted(nodes - set(per_node))} after {BOUND}s\n{xds.tail(20)}")
        st = xds.status()
        now = time.monotonic()  # after the answer: an upper bound on when the ACK arrived
        for n in st["nodes"]:
            nid = n["node_id"]
            if nid in nodes and nid not in per_node and current_nodes(st, {nid}, changed_from=before):
                per_node[nid] = now - t0
        if len(per_node) == len(nodes):
            break
        time.sleep(STATUS_POLL)
    applied_at = st["config"]["applied_at"]
    applied = parse_rfc3339(applied_at) - wall0 if applied_at != applied_before else None
    return {"applied_s": applied, "all_acked_s": max(per_node.values()), "per_node_s": per_node}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was measured, never interpolated."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-len(s) * q // 100) - 1))] if s else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "min": min(values),
        "n": len(values),
    }


# ------------------------------------------------------------------------------------------
# Part 1: propagation to N Envoys
# ------------------------------------------------------------------------------------------


def propagation(work: Path, counts: list[int], edits: int, poll: str) -> list[dict[str, Any]]:
    out = []
    for n in counts:
        d = work / f"prop-{n}"
        logs = d / "logs"
        logs.mkdir(parents=True)
        config = load_fixture("policy/filter.json")
        # Envoy needs no live upstream to take config; the endpoint is never dialled.
        src = write_source_dir(d / "source", {"py": 9}, config)
        write_jwks(src, Issuer().jwks())
        started: list[Proc] = []
        try:
            xds = XdsServer(logs, src, extra=["--poll-interval", poll])
            started.append(xds)
            nodes = {f"gw-{i:02d}" for i in range(n)}
            for nid in sorted(nodes):
                started.append(Envoy(ads_bootstrap(xds.xds_port, nid), logs, name=f"envoy-{nid}", concurrency=1))
            wait_current(xds, nodes, timeout=BOUND)
            runs = []
            rule = next(r for r in config["policy"]["rules"] if r["id"] == "devs-read")
            for k in range(edits):
                rule["tools"] = ["echo", f"tool_{k}"]
                runs.append(timed_edit(xds, nodes, lambda: set_filter_config(src, config)))
            cpu = cpu_seconds(xds.popen.pid)
            mem = memory_kib(xds.popen.pid)
        finally:
            for p in reversed(started):
                p.stop()
        applied = [r["applied_s"] for r in runs if r["applied_s"] is not None]
        res = {
            "envoys": n,
            "edits": edits,
            "poll_interval": poll,
            "write_to_applied_s": summary(applied),
            "write_to_all_acked_s": summary([r["all_acked_s"] for r in runs]),
            "applied_to_all_acked_s": summary([r["all_acked_s"] - r["applied_s"] for r in runs if r["applied_s"] is not None]),
            "xds_server_cpu_s_total": cpu,
            "xds_server_memory_kib": mem,
            "runs": runs,
        }
        print(
            f"propagation N={n}: write->all ACKed p50 {res['write_to_all_acked_s']['p50']*1000:.0f} ms, "
            f"p99 {res['write_to_all_acked_s']['p99']*1000:.0f} ms, "
            f"max {res['write_to_all_acked_s']['max']*1000:.0f} ms; applied->all ACKed median "
            f"{res['applied_to_all_acked_s']['median']*1000:.0f} ms",
            flush=True,
        )
        out.append(res)
    return out


# ------------------------------------------------------------------------------------------
# Part 2: a world of 1,000 servers and 10,000 rules
# ------------------------------------------------------------------------------------------


def generate_world(d: Path, servers: int, rules: int, groups: int = 50) -> dict[str, Any]:
    """servers/sNNNN.yaml (one route, one endpoint each), one listener carrying all of them,
    and a filter.json with an identity provider (jwks_file) and `rules` rules spread over the
    servers: allow rules per team with tool globs, every 5th with an argument constraint,
    every 10th a deny."""
    d.mkdir(parents=True)
    write_atomically(d / "gateways.yaml", yaml.safe_dump({"listeners": [{"name": "mcp_gateway", "address": "127.0.0.1", "port": 0, "access_log": None}]}))
    names = [f"s{i:04d}" for i in range(servers)]
    for i, name in enumerate(names):
        server = {"routes": [{"prefix": f"/{name}/", "rewrite_prefix": "/"}], "endpoints": [f"127.0.0.1:{20000 + i % 40000}"]}
        (d / "servers").mkdir(exist_ok=True)
        (d / "servers" / f"{name}.yaml").write_text(yaml.safe_dump(server))
    rule_list = []
    for i in range(rules):
        r: dict[str, Any] = {
            "id": f"r{i:05d}",
            "effect": "deny" if i % 10 == 9 else "allow",
            "servers": [names[i % servers]],
            "principals": [{"groups": [f"team-{i % groups}"]}],
            "tools": [f"tool_{i}_*", "get_*"] if i % 10 != 9 else [f"delete_{i}_*"],
        }
        if i % 5 == 0:
            r["arguments"] = {"repo": {"patterns": [f"org{i % 100}/*"]}}
        rule_list.append(r)
    issuer = Issuer()
    config = {
        "identity": {
            "providers": [{"name": "idp", "issuer": issuer.issuer, "audiences": [issuer.audience], "jwks_file": "jwks/idp.json"}],
            "resource": issuer.audience,
        },
        "policy": {"servers": {n: {} for n in names}, "rules": rule_list},
    }
    set_filter_config(d, config)
    write_jwks(d, issuer.jwks())
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    return {"config": config, "files": sum(1 for p in d.rglob("*") if p.is_file()), "bytes": size,
            "filter_json_bytes": (d / "filter.json").stat().st_size}


def check_offline(d: Path) -> dict[str, Any]:
    """`mcp-xds-server check --config-dir`: read + validate + build in one process, timed. Peak
    RSS and CPU come from GNU time when present: rusage of a child forked from this Python
    process would count the interpreter's pages from before the exec."""
    cmd = [str(xds_server_binary()), "check", "--config-dir", str(d)]
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    t0 = time.monotonic()
    if gnu_time:
        p = subprocess.run([gnu_time, "-f", "TIME %M %U %S", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
        line = [x for x in p.stderr.splitlines() if x.startswith("TIME ")]
        if p.returncode != 0 or not line:
            raise HarnessError(f"check failed: {p.stderr[:2000]}")
        rss, user, sys_ = line[-1].split()[1:]
        return {"wall_s": wall, "cpu_s": float(user) + float(sys_), "max_rss_kib": int(rss), "measured_by": "GNU time"}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise HarnessError(f"check failed: {p.stderr.read().decode(errors='replace')[:2000]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_kib": ru.ru_maxrss, "measured_by": "wait4 (upper bound)"}


def scale(work: Path, servers: int, rules: int, pushes: int, poll: str, idle_s: float) -> dict[str, Any]:
    d = work / "scale"
    logs = d / "logs"
    logs.mkdir(parents=True)
    src = d / "source"
    t0 = time.monotonic()
    world = generate_world(src, servers, rules)
    gen_s = time.monotonic() - t0
    config = world.pop("config")
    res: dict[str, Any] = {"servers": servers, "rules": rules, "poll_interval": poll, "source": world, "generate_s": gen_s}
    print(f"scale: generated {world['files']} files, {world['bytes'] / 1e6:.1f} MB ({gen_s:.1f}s)", flush=True)

    res["check_offline"] = check_offline(src)
    print(f"scale: check --config-dir {res['check_offline']['wall_s']:.2f}s, peak RSS {res['check_offline']['max_rss_kib'] / 1024:.0f} MiB", flush=True)

    started: list[Proc] = []
    try:
        t0 = time.monotonic()
        xds = XdsServer(logs, src, extra=["--poll-interval", poll])
        started.append(xds)
        pid = xds.popen.pid
        res["startup"] = {"start_to_ready_s": time.monotonic() - t0, **applied_timings(xds.log_path)[0],
                          "cpu_s": cpu_seconds(pid), "memory_kib": memory_kib(pid)}

        # Idle: no Envoy, no change; the cost is the directory poll (servers + 3 files read).
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(idle_s)  # measuring an interval, not waiting for a condition
        res["idle"] = {"seconds": time.monotonic() - t0, "cpu_s": cpu_seconds(pid) - c0}
        idle_rate = res["idle"]["cpu_s"] / res["idle"]["seconds"]
        print(f"scale: loaded in {res['startup']['start_to_ready_s']:.2f}s "
              f"(validate {res['startup']['validate_ms']} ms, build {res['startup']['build_ms']} ms), "
              f"RSS {res['startup']['memory_kib']['VmRSS'] / 1024:.0f} MiB; idle CPU {idle_rate * 100:.1f}% of a core", flush=True)

        # Two Envoys: the first full sync (1,000 CDS + 1,000 EDS + routes + the big ECDS).
        nodes = {"gw-a", "gw-b"}
        c0, t0 = cpu_seconds(pid), time.monotonic()
        envoys = []
        for nid in sorted(nodes):
            e = Envoy(ads_bootstrap(xds.xds_port, nid), logs, name=f"envoy-{nid}", concurrency=1)
            started.append(e)
            envoys.append(e)
        wait_current(xds, nodes, timeout=BOUND * 3)
        sync_s = time.monotonic() - t0
        res["first_sync"] = {"envoys": 2, "seconds": sync_s, "cpu_s": cpu_seconds(pid) - c0,
                             "memory_kib": memory_kib(pid),
                             "envoy_memory_kib": {e.name: memory_kib(e.popen.pid) for e in envoys}}
        print(f"scale: 2 Envoys synced in {sync_s:.2f}s, xds-server CPU {res['first_sync']['cpu_s']:.2f}s, "
              f"RSS {res['first_sync']['memory_kib']['VmRSS'] / 1024:.0f} MiB", flush=True)

        # Per push: policy edits (ECDS only) and endpoint edits (EDS only).
        def metrics_pushes() -> dict[str, float]:
            return {k: v for k, v in xds.metrics().items() if k.startswith("mcp_xds_pushes_total")}

        kinds: dict[str, list[dict[str, Any]]] = {"policy": [], "endpoint": []}
        for k in range(pushes):
            for kind in kinds:
                if kind == "policy":
                    config["policy"]["rules"][k]["tools"] = [f"tool_{k}_*", f"edited_{k}"]
                    write = lambda: set_filter_config(src, config)  # noqa: E731
                else:
                    server = {"routes": [{"prefix": f"/s{k:04d}/", "rewrite_prefix": "/"}], "endpoints": [f"127.0.0.2:{30000 + k}"]}
                    write = lambda: write_atomically(src / "servers" / f"s{k:04d}.yaml", yaml.safe_dump(server))  # noqa: E731
                m0, c0, t0 = metrics_pushes(), cpu_seconds(pid), time.monotonic()
                if kind == "policy":
                    r = timed_edit(xds, nodes, write)
                else:
                    r = timed_endpoint_edit(xds, nodes, write)
                elapsed = time.monotonic() - t0
                cpu = cpu_seconds(pid) - c0
                m1 = metrics_pushes()
                r["cpu_s"] = cpu
                r["cpu_s_minus_idle"] = max(0.0, cpu - idle_rate * elapsed)
                r["memory_kib"] = memory_kib(pid)
                r["pushes"] = {k2.split('"')[1]: m1[k2] - m0.get(k2, 0) for k2 in m1 if m1[k2] != m0.get(k2, 0)}
                kinds[kind].append(r)
        timings = applied_timings(xds.log_path)[1:]
        res["pushes"] = {}
        for kind, runs in kinds.items():
            res["pushes"][kind] = {
                "write_to_all_acked_s": summary([r["all_acked_s"] for r in runs]),
                "cpu_s_per_push": summary([r["cpu_s"] for r in runs]),
                "cpu_s_per_push_minus_idle": summary([r["cpu_s_minus_idle"] for r in runs]),
                "types_pushed": runs[-1]["pushes"],
                "runs": runs,
            }
        res["pushes"]["reload_validate_ms"] = summary([t["validate_ms"] for t in timings])
        res["pushes"]["reload_build_ms"] = summary([t["build_ms"] for t in timings])
        res["final_memory_kib"] = memory_kib(pid)
        res["cpu_s_total"] = cpu_seconds(pid)
        for kind in kinds:
            p = res["pushes"][kind]
            print(f"scale: {kind} push to 2 Envoys: write->ACKed median {p['write_to_all_acked_s']['median']*1000:.0f} ms, "
                  f"CPU {p['cpu_s_per_push_minus_idle']['median']*1000:.0f} ms/push above idle; pushed {p['types_pushed']}", flush=True)
    finally:
        for p in reversed(started):
            p.stop()
    return res


def timed_endpoint_edit(xds: XdsServer, nodes: set[str], write) -> dict[str, Any]:
    """Like `timed_edit`, for an edit that changes EDS only: done when every node is current
    on a new snapshot version."""
    before = {n["node_id"]: n["snapshot_version"] for n in xds.status()["nodes"]}
    t0 = time.monotonic()
    write()
    per_node: dict[str, float] = {}
    while len(per_node) < len(nodes):
        if time.monotonic() - t0 > BOUND:
            raise HarnessError(f"endpoint edit not ACKed by {sorted(nodes - set(per_node))} after {BOUND}s")
        st = xds.status()
        now = time.monotonic()
        for n in st["nodes"]:
            nid = n["node_id"]
            if nid in nodes and nid not in per_node and n["snapshot_version"] != before.get(nid) and current_nodes(st, {nid}):
                per_node[nid] = now - t0
        time.sleep(STATUS_POLL)
    return {"all_acked_s": max(per_node.values()), "per_node_s": per_node}


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.0f}"


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# mcp-xds-server benchmark",
        "",
        f"{r['started']}, {m['cpus']} CPUs, {m['platform']}; `{r['command']}`.",
        "",
    ]
    if r.get("propagation"):
        p0 = r["propagation"][0]
        lines += [
            f"## Propagation: file write → every Envoy ACKed (poll interval {p0['poll_interval']}, {p0['edits']} edits per row)",
            "",
            "| Envoys | write → applied, median / max (ms) | applied → all ACKed, median / max (ms) | write → all ACKed, p50 / p99 / max (ms) |",
            "|---:|---:|---:|---:|",
        ]
        for p in r["propagation"]:
            a, b, c = p["write_to_applied_s"], p["applied_to_all_acked_s"], p["write_to_all_acked_s"]
            lines.append(f"| {p['envoys']} | {ms(a['median'])} / {ms(a['max'])} | {ms(b['median'])} / {ms(b['max'])} | {ms(c['p50'])} / {ms(c['p99'])} / {ms(c['max'])} |")
        lines += [
            "",
            "\"applied\" is the server's `config.applied_at` (ms resolution): a file-system event, 20 ms of quiet, a read",
            "and a confirming read 20 ms later (a change is applied once two reads agree; without events, one to two poll",
            "intervals). \"ACKed\" is seen on `/status`, polled every 10 ms. p50/p99 are nearest-rank.",
            "",
        ]
    if r.get("scale"):
        s = r["scale"]
        st, fs, pu = s["startup"], s["first_sync"], s["pushes"]
        lines += [
            f"## Scale: {s['servers']:,} MCP servers, {s['rules']:,} policy rules",
            "",
            f"Source: {s['source']['files']:,} files, {s['source']['bytes'] / 1e6:.1f} MB (filter.json {s['source']['filter_json_bytes'] / 1e6:.1f} MB); poll interval {s['poll_interval']}.",
            "",
            "| what | time | xds-server CPU | xds-server memory |",
            "|---|---:|---:|---:|",
            f"| `check --config-dir` (read + validate + build, offline) | {s['check_offline']['wall_s']:.2f} s | {s['check_offline']['cpu_s']:.2f} s | peak {mib(s['check_offline']['max_rss_kib'])} MiB |",
            f"| `serve` start → ready (validate {st['validate_ms']} ms, snapshot build {st['build_ms']} ms) | {st['start_to_ready_s']:.2f} s | {st['cpu_s']:.2f} s | RSS {mib(st['memory_kib']['VmRSS'])} MiB, HWM {mib(st['memory_kib']['VmHWM'])} MiB |",
            f"| idle, no Envoy ({s['idle']['seconds']:.0f} s of directory polling) | — | {s['idle']['cpu_s'] / s['idle']['seconds'] * 100:.1f} % of a core | — |",
            f"| first sync of 2 Envoys ({s['servers']:,} clusters + endpoints each) | {fs['seconds']:.2f} s | {fs['cpu_s']:.2f} s | RSS {mib(fs['memory_kib']['VmRSS'])} MiB, HWM {mib(fs['memory_kib']['VmHWM'])} MiB |",
        ]
        for kind, label in (("policy", "policy edit (one rule; ECDS only)"), ("endpoint", "endpoint edit (one server file; EDS only)")):
            p = pu[kind]
            lines.append(
                f"| per {label}, 2 Envoys, median of {p['write_to_all_acked_s']['n']} | write → all ACKed {ms(p['write_to_all_acked_s']['median'])} ms "
                f"(max {ms(p['write_to_all_acked_s']['max'])}) | {ms(p['cpu_s_per_push_minus_idle']['median'])} ms above idle | — |"
            )
        lines += [
            f"| after all pushes | — | {s['cpu_s_total']:.2f} s total | RSS {mib(s['final_memory_kib']['VmRSS'])} MiB, HWM {mib(s['final_memory_kib']['VmHWM'])} MiB |",
            "",
            f"Reload phases per edit (server log): validate median {pu['reload_validate_ms']['median']:.0f} ms, "
            f"snapshot build median {pu['reload_build_ms']['median']:.0f} ms. "
            f"Types pushed per edit: policy {pu['policy']['types_pushed']}, endpoint {pu['endpoint']['types_pushed']}.",
            "Envoy memory with this world: " + ", ".join(f"{k} RSS {mib(v['VmRSS'])} MiB" for k, v in fs["envoy_memory_kib"].items()) + ".",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoys", default="2,4,8", help="comma-separated fleet sizes for the propagation part (default 2,4,8)")
    ap.add_argument("--edits", type=int, default=10, help="policy edits per fleet size (default 10)")
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--pushes", type=int, default=5, help="edits of each kind in the scale part (default 5)")
    ap.add_argument("--poll-interval", default="250ms", help="the server's --poll-interval (default: its default, 250ms)")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--skip", choices=["propagation", "scale"], action="append", default=[])
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    result: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["bench/xds/run.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory(prefix="mcp-xds-bench-") as tmp:
        work = Path(tmp)
        try:
            if "propagation" not in args.skip:
                result["propagation"] = propagation(work, [int(x) for x in args.envoys.split(",")], args.edits, args.poll_interval)
            if "scale" not in args.skip:
                result["scale"] = scale(work, args.servers, args.rules, args.pushes, args.poll_interval, args.idle_seconds)
        except Exception:
            # Keep the logs of a failed run.
            kept = args.out / stamp / "logs"
            shutil.copytree(work, kept, ignore=shutil.ignore_patterns("source"), dirs_exist_ok=True)
            print(f"failed; logs kept in {kept}", file=sys.stderr)
            raise
    out = args.out / stamp
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "results.md").write_text(markdown(result))
    shutil.copy(out / "results.json", args.out / "latest.json")
    shutil.copy(out / "results.md", args.out / "latest.md")
    print(f"\n{markdown(result)}\nwritten to {out}/ and {args.out}/latest.{{json,md}}")


if __name__ == "__main__":
    main()
