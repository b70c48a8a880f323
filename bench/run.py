"""`make bench` load harness: what the gateway costs, side by side, in one run.

Starts the canned responder (bench/responder), then for each arm the gateway in front of it
(integration/harness.py starts and stops every process), checks each workload once for the
expected answer, then drives it with `oha` (bounded duration, loopback only) in two phases:

  throughput  `--concurrency` connections, closed loop: requests/s, CPU per request
  latency     one connection, one request at a time: p50/p99/p99.9 without queueing

and samples CPU time (/proc/<pid>/task/*/schedstat, ns) of the gateway and the responder
around each phase, and the gateway's peak RSS (VmHWM). Writes bench/results/<stamp>/ with
results.json, results.md and latency.png, and copies them to bench/results/latest*.

Pinning on a 2-core machine: the gateway (Envoy --concurrency 1, or one Python worker) on CPU 1;
the responder and oha on CPU 0.

Virtual-server arms (`vs_envoy`, `vserver`) run only the `vs_*` workloads, the other arms only
the others. They add three responder processes (the backends b1, b2, b3; b3 answers
`--vs-slow-us` later), and compare `tools/list` through the virtual server with the same request
to the slowest backend alone, and `tools/call` dispatched by the virtual server with the same
call on the single-server route.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "integration"))
sys.path.insert(0, str(BENCH))

import arms  # noqa: E402
import harness  # noqa: E402
import report  # noqa: E402
from issuer import Issuer  # noqa: E402

RESPONDER = BENCH / "responder" / "target" / "release" / "mcp-bench-responder"
GATEWAY_CPU = "1"
CLIENT_CPU = "0"


def oha_binary() -> str:
    local = BENCH / ".tools" / "bin" / "oha"
    if local.exists():
        return str(local)
    found = shutil.which("oha")
    if not found:
        raise SystemExit("oha not found: `make bench` installs it into bench/.tools (cargo install oha)")
    return found


# ------------------------------------------------------------------------------------------
# Workloads
# ------------------------------------------------------------------------------------------

def rpc(method: str, params: dict[str, Any] | None = None, id_: int = 1) -> str:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg, separators=(",", ":"))


# What current clients send on every request after initialize (MCP-Protocol-Version) and the
# session id; see Target.headers.
PROTOCOL_VERSION = "2025-06-18"
STATIC_SESSION = "5f0c9d2e-4b7a-41c3-a8e6-d1f0b2c4e6a8"

ECHO = rpc("tools/call", {"name": "echo", "arguments": {"text": "hello"}})
DELETE = rpc("tools/call", {"name": "delete_item_5", "arguments": {"text": "x"}})
CREATE_ACME = rpc("tools/call", {"name": "create_item_3", "arguments": {"text": "x", "repo": "acme/web"}})
LIST = rpc("tools/list", {})
# Through the virtual server: the name it exposes for backend b1's `echo`.
VS_ECHO = rpc("tools/call", {"name": f"{arms.VS_BACKENDS[0]}__echo", "arguments": {"text": "hello"}})


def visible_tools(who: str, n: int) -> int:
    """How many of the responder's first n tools POLICY lets `who` see (mirrors its rules)."""
    groups = arms.PEOPLE[who]
    names = ["echo"] + [f"{['get', 'list', 'search', 'create', 'update', 'delete'][i % 6]}_item_{i}" for i in range(1, n)]
    count = 0
    for name in names:
        if name.startswith("delete_"):
            continue
        if "admins" in groups:
            count += 1
        elif "devs" in groups and (name == "echo" or name.split("_")[0] in ("get", "list", "search", "create", "update")):
            count += 1  # create_/update_ are shown: their argument constraint is checked at call time
        elif "contractors" in groups and name == "echo":
            count += 1
    return count


# A stream: (principal, body, query). A workload is one or more streams sharing the connections.
WORKLOADS: dict[str, dict[str, Any]] = {
    "call_json": {"streams": [("bob", ECHO, "")], "kind": "call"},
    "call_sse": {"streams": [("bob", ECHO, "sse=1")], "kind": "call"},
    "call_json_h2": {"streams": [("bob", ECHO, "")], "kind": "call", "http2": True},
    "list_10": {"streams": [("bob", LIST, "tools=10")], "kind": "list", "tools": 10},
    "list_100": {"streams": [("bob", LIST, "tools=100")], "kind": "list", "tools": 100},
    "list_1000": {"streams": [("bob", LIST, "tools=1000")], "kind": "list", "tools": 1000},
    "denied": {"streams": [("carol", DELETE, "")], "kind": "denied"},
    "mixed": {
        "streams": [("alice", LIST, "tools=100"), ("bob", ECHO, ""), ("carol", DELETE, ""), ("dave", CREATE_ACME, "sse=1")],
        "kind": "mixed",
    },
}


def vs_workloads(tools: int) -> dict[str, dict[str, Any]]:
    """The virtual-server workloads (`"vs": True`, with the URL path they go to), each backend
    listing `tools` tools. `visible`: how many tools bob gets through the `vserver` arm."""
    one, slowest = arms.VS_BACKENDS[0], arms.VS_BACKENDS[-1]
    per = visible_tools("bob", tools)
    return {
        # tools/list fanned out to the three backends, merged, filtered per principal.
        "vs_list": {"streams": [("bob", LIST, "")], "kind": "list", "vs": True, "path": arms.VS_PATH,
                    "visible": per * len(arms.VS_BACKENDS)},
        # The same list from the slowest backend alone, on its single-server route.
        "vs_list_slowest": {"streams": [("bob", LIST, f"tools={tools}")], "kind": "list", "vs": True,
                            "path": f"/{slowest}/mcp", "visible": per, "all": tools},
        # tools/call dispatched by the virtual server to backend b1.
        "vs_call": {"streams": [("bob", VS_ECHO, "")], "kind": "call", "vs": True, "path": arms.VS_PATH},
        # The same call on b1's single-server route.
        "vs_call_single": {"streams": [("bob", ECHO, "")], "kind": "call", "vs": True, "path": f"/{one}/mcp"},
    }


VS_ARMS = ("vs_envoy", "vserver")
VS_ONLY = {"vs_list", "vs_call"}  # need the virtual server: not on `vs_envoy`
WORKLOADS.update(vs_workloads(10))


# ------------------------------------------------------------------------------------------
# Measuring processes
# ------------------------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for t in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split())
    return out


def cpu_ns(pid: int) -> int:
    """CPU time (ns) of a process tree: every thread's schedstat run time."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for t in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += int(Path(f"/proc/{p}/task/{t}/schedstat").read_text().split()[0])
    return total


def peak_rss_kib(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def pin(pid: int, cpus: str) -> None:
    for p in _tree(pid):
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)], check=False, capture_output=True)


# ------------------------------------------------------------------------------------------
# Load
# ------------------------------------------------------------------------------------------

def run_oha(url: str, body: str, headers: dict[str, str], concurrency: int, duration: float, http2: bool) -> subprocess.Popen:
    cmd = ["taskset", "-c", CLIENT_CPU, oha_binary(), "--no-tui", "--output-format", "json",
           "-z", f"{duration}s", "-c", str(concurrency), "-m", "POST", "-d", body]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if http2:
        cmd += ["--http2"]
    cmd.append(url)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cpu_ns_of(pids: int | list[int]) -> int:
    return sum(cpu_ns(p) for p in (pids if isinstance(pids, list) else [pids]))


def load_phase(target: "Target", wl: dict[str, Any], tokens: dict[str, str], concurrency: int, duration: float) -> dict[str, Any]:
    streams = wl["streams"]
    per = max(1, concurrency // len(streams))
    cpu0 = {name: cpu_ns_of(pid) for name, pid in target.pids.items()}
    t0 = time.monotonic()
    procs = [run_oha(target.url(q, wl.get("path")), target.body(body), target.headers(tokens[who], wl.get("path")), per, duration,
                     wl.get("http2", False))
             for who, body, q in streams]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=duration + 120)
        if p.returncode != 0:
            raise RuntimeError(f"oha failed ({p.returncode}): {err[-2000:]}")
        outs.append(json.loads(out))
    wall = time.monotonic() - t0
    cpu1 = {name: cpu_ns_of(pid) for name, pid in target.pids.items()}
    return merge_oha(outs, {k: cpu1[k] - cpu0[k] for k in cpu0}, wall)


def merge_oha(outs: list[dict[str, Any]], cpu_delta_ns: dict[str, int], wall: float) -> dict[str, Any]:
    """One result from one oha run per stream: rates add up; latency percentiles of a mixed
    workload are the request-weighted mean of the streams' (exact for one stream)."""
    reqs, rps, statuses, errors = 0, 0.0, {}, {}
    weighted = {"p50": 0.0, "p99": 0.0, "p99.9": 0.0}
    worst = {"p50": 0.0, "p99": 0.0, "p99.9": 0.0}
    for o in outs:
        n = sum(o.get("statusCodeDistribution", {}).values())
        reqs += n
        rps += o["summary"]["requestsPerSec"]
        for code, c in o.get("statusCodeDistribution", {}).items():
            statuses[code] = statuses.get(code, 0) + c
        for e, c in o.get("errorDistribution", {}).items():
            errors[e] = errors.get(e, 0) + c
        pct = o["latencyPercentiles"]
        for k in weighted:
            v = (pct.get(k) or 0.0) * 1e6
            weighted[k] += v * n
            worst[k] = max(worst[k], v)
    lat = {k: (weighted[k] / reqs if reqs else None) for k in weighted}
    res: dict[str, Any] = {
        "requests": reqs, "rps": rps, "wall_s": wall, "latency_us": lat, "statuses": statuses, "errors": errors,
        "cpu_s": {k: v / 1e9 for k, v in cpu_delta_ns.items()},
        "cpu_s_per_10k": {k: (v / 1e9) / reqs * 1e4 if reqs else None for k, v in cpu_delta_ns.items()},
    }
    if len(outs) > 1:
        res["latency_us_worst_stream"] = worst
    return res


# ------------------------------------------------------------------------------------------
# Targets (one per arm)
# ------------------------------------------------------------------------------------------

class Target:
    """A running arm: where to send requests and which processes to measure."""

    def __init__(self, name: str, base: str, pids: dict[str, int | list[int]], procs: list[harness.Proc],
                 gateway_pid: int | None):
        self.name, self.base, self.pids, self.procs, self.gateway_pid = name, base, pids, procs, gateway_pid
        self.auth: dict[str, str] | None = None  # a gateway with its own credential (Python arms)
        self.tool_name = lambda name: name  # how the gateway names the responder's tools
        self.supported: set[str] | None = None  # workloads this arm can run (None: all)
        self.use_query = True  # the responder's ?tools=/?sse= reach it through this arm
        self.sessions: dict[tuple[str, str | None], str] = {}  # (token, path) -> session id

    def url(self, query: str, path: str | None = None) -> str:
        """`path`: another route on the same listener (the virtual-server workloads)."""
        base = self.base
        if path is not None:
            scheme, _, hostport, _ = self.base.split("/", 3)
            base = f"{scheme}//{hostport}{path}"
        return f"{base}?{query}" if query and self.use_query else base

    def headers(self, token: str, path: str | None = None) -> dict[str, str]:
        """What a real client sends after initialize: its protocol version and session id
        (the module copies every `mcp-*` header of such a request, so the cost is measured)."""
        h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
             "mcp-protocol-version": PROTOCOL_VERSION}
        h.update(self.auth if self.auth is not None else {"authorization": f"Bearer {token}"})
        if self.auth is None:  # the Python gateways keep their own sessions: not sent there
            h["mcp-session-id"] = self.session(token, path)
        return h

    def session(self, token: str, path: str | None) -> str:
        """The session id to send: the virtual server's own sealed id (from an initialize on
        its route, once per principal), else a fixed one shaped like a server's (the responder
        keeps no sessions; Envoy and the module forward it)."""
        if self.name != "vserver" or path != arms.VS_PATH:
            return STATIC_SESSION
        key = (token, path)
        if key not in self.sessions:
            init = rpc("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                      "clientInfo": {"name": "bench", "version": "1"}})
            hdrs = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                    "authorization": f"Bearer {token}"}
            r = httpx.post(self.url("", path), content=init, headers=hdrs, timeout=30)
            sid = r.headers.get("mcp-session-id")
            if r.status_code != 200 or not sid:
                raise SystemExit(f"{self.name}: initialize on {path} gave no session ({r.status_code}): {r.text[:200]}")
            self.sessions[key] = sid
        return self.sessions[key]

    def body(self, body: str) -> str:
        msg = json.loads(body)
        if msg.get("method") == "tools/call":
            msg["params"]["name"] = self.tool_name(msg["params"]["name"])
        return json.dumps(msg, separators=(",", ":"))


def start_envoy(name: str, upstream_port: int, filters: list[dict[str, Any]], log_dir: Path) -> tuple[harness.Envoy, str]:
    env = harness.Envoy(arms.envoy_bootstrap(upstream_port, filters), log_dir, name=f"envoy-{name}", concurrency=1)
    pin(env.popen.pid, GATEWAY_CPU)
    return env, env.url(path="/mcp")


def check(target: Target, wl_name: str, wl: dict[str, Any], tokens: dict[str, str]) -> dict[str, Any]:
    """One request per stream before the load: is this arm answering what it should?"""
    results = []
    for who, body, q in wl["streams"]:
        with httpx.Client(http2=False, timeout=30) as c:
            r = c.post(target.url(q, wl.get("path")), content=target.body(body), headers=target.headers(tokens[who], wl.get("path")))
        text = r.text
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
            text = data[-1] if data else ""
        info: dict[str, Any] = {"who": who, "status": r.status_code, "content_type": r.headers.get("content-type")}
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
            info["body"] = text[:200]
        if isinstance(doc, dict):
            if "error" in doc:
                err = doc["error"]
                info["jsonrpc_error"] = err.get("code") if isinstance(err, dict) else err
                info["body"] = text[:200]
            if isinstance(doc.get("result"), dict):
                if "tools" in doc["result"]:
                    info["tools"] = len(doc["result"]["tools"])
                if doc["result"].get("isError"):
                    info["tool_error"] = True
        results.append(info)
    return {"streams": results, "ok": all(expectation_met(target.name, wl, who, i) for (who, _, _), i in zip(wl["streams"], results))}


def expectation_met(arm: str, wl: dict[str, Any], who: str, info: dict[str, Any]) -> bool:
    denied = who == "carol"
    if arm == "vs_envoy" and "tools" in info:  # Envoy alone: the backend's whole list
        return info["status"] == 200 and info["tools"] == wl["all"]
    if arm == "vserver" and "tools" in info:  # merged over the backends, filtered per principal
        return info["status"] == 200 and info["tools"] == wl["visible"]
    if arm in ("upstream", "envoy", "vs_envoy"):
        return info["status"] == 200 and "jsonrpc_error" not in info
    if arm in ("litellm", "contextforge"):  # their refusals are tool results with isError
        return info["status"] == 200 and info.get("tool_error", False) == denied
    if denied:
        if arm == "native":
            return info["status"] == 403
        return info["status"] in (200, 403) and (info.get("jsonrpc_error") is not None or info["status"] == 403)
    if "tools" in info and arm == "module":
        n = wl.get("tools") or 100
        return info["status"] == 200 and info["tools"] == visible_tools(who, n)
    return info["status"] == 200 and "jsonrpc_error" not in info


# ------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="upstream,envoy,native,module,litellm,contextforge,vs_envoy,vserver")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput phase")
    ap.add_argument("--latency-duration", type=float, default=None, help="seconds per latency phase (default: = duration)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="2 s phases: check the harness, not the numbers")
    ap.add_argument("--vs-tools", type=int, default=10, choices=[1, 10, 100, 1000],
                    help="tools each virtual-server backend lists (vs_* workloads)")
    ap.add_argument("--vs-slow-us", type=int, default=1000,
                    help="µs the slowest virtual-server backend (b3) holds each answer; b1 and b2 answer at once")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    args = ap.parse_args()
    if args.quick:
        args.duration = 2.0
    lat_duration = args.latency_duration or args.duration
    WORKLOADS.update(vs_workloads(args.vs_tools))

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out / stamp
    log_dir = BENCH / "work" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    issuer = Issuer()
    exp = int(time.time()) + 6 * 3600  # outlives any run
    tokens = {who: issuer.token(who, groups=groups, exp=exp) for who, groups in arms.PEOPLE.items()}

    if not RESPONDER.exists():
        raise SystemExit(f"{RESPONDER} missing: `make bench` builds it")
    port = harness.free_port()
    responder = harness.Proc("responder", ["taskset", "-c", CLIENT_CPU, str(RESPONDER), str(port)], log_dir)
    harness.wait_until("responder", lambda: "listening" in responder.log_path.read_text(), proc=responder)
    up_url = f"http://127.0.0.1:{port}/mcp"
    arm_names = [a for a in args.arms.split(",") if a]
    backends = start_vs_backends(args.vs_slow_us, log_dir) if any(a in VS_ARMS for a in arm_names) else {}

    machine = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_at_start": os.getloadavg(),
        "cpu_model": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?"),
    }
    results: dict[str, Any] = {
        "started": stamp, "machine": machine,
        "settings": {"duration_s": args.duration, "latency_duration_s": lat_duration, "concurrency": args.concurrency,
                     "envoy_concurrency": 1, "gateway_cpu": GATEWAY_CPU, "client_and_responder_cpu": CLIENT_CPU,
                     "vs_tools_per_backend": args.vs_tools, "vs_slow_us": args.vs_slow_us,
                     "vs_backends": {n: d for n, (_, d, _) in backends.items()},
                     "oha": subprocess.run([oha_binary(), "--version"], capture_output=True, text=True).stdout.strip()},
        "arms": {},
    }
    workloads = [w for w in args.workloads.split(",") if w]
    try:
        for arm in arm_names:
            print(f"== arm {arm}", flush=True)
            target, skip = start_arm(arm, port, up_url, issuer, log_dir, backends, args.vs_tools)
            if target is None:
                results["arms"][arm] = {"skipped": skip}
                print(f"   skipped: {skip}", flush=True)
                continue
            arm_res: dict[str, Any] = {"workloads": {}}
            try:
                for wl_name in workloads:
                    wl = WORKLOADS[wl_name]
                    if target.supported is not None and wl_name not in target.supported:
                        continue
                    if wl.get("vs", False) != (arm in VS_ARMS) or (arm == "vs_envoy" and wl_name in VS_ONLY):
                        continue
                    chk = check(target, wl_name, wl, tokens)
                    thr = load_phase(target, wl, tokens, args.concurrency, args.duration)
                    lat = load_phase(target, wl, tokens, len(wl["streams"]), lat_duration)
                    arm_res["workloads"][wl_name] = {"check": chk, "throughput": thr, "latency": lat}
                    print(f"   {wl_name:13s} check={'ok' if chk['ok'] else 'FAIL ' + json.dumps(chk['streams'])} "
                          f"rps={thr['rps']:.0f} p50={lat['latency_us']['p50']:.0f}us p99={lat['latency_us']['p99']:.0f}us "
                          f"cpu/10k={thr['cpu_s_per_10k'].get('gateway') or thr['cpu_s_per_10k'].get('responder'):.3f}s", flush=True)
                if target.gateway_pid:
                    arm_res["peak_rss_kib"] = peak_rss_kib(target.gateway_pid)
            finally:
                for p in reversed(target.procs):
                    p.stop()
            results["arms"][arm] = arm_res
    finally:
        for _, _, proc in backends.values():
            proc.stop()
        responder.stop()
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    report.write(results, out_dir)
    for f in out_dir.iterdir():
        shutil.copy(f, args.out / f"latest-{f.name}" if not f.name.startswith("latest") else args.out / f.name)
    print(f"results: {out_dir}", flush=True)
    return 0


def start_vs_backends(slow_us: int, log_dir: Path) -> dict[str, tuple[int, int, harness.Proc]]:
    """The virtual server's backends: one responder process each, on the client's CPU like the
    main one; the last answers `slow_us` later. {name: (port, delay µs, process)}."""
    out: dict[str, tuple[int, int, harness.Proc]] = {}
    for i, name in enumerate(arms.VS_BACKENDS):
        delay = slow_us if i == len(arms.VS_BACKENDS) - 1 else 0
        port = harness.free_port()
        proc = harness.Proc(f"responder-{name}", ["taskset", "-c", CLIENT_CPU, str(RESPONDER), "--delay-us", str(delay), str(port)],
                            log_dir)
        out[name] = (port, delay, proc)
        harness.wait_until(f"responder {name}", lambda: "listening" in proc.log_path.read_text(), proc=proc)
    return out


def vs_filters(arm: str, issuer: Issuer, tools: int) -> list[dict[str, Any]]:
    return [] if arm == "vs_envoy" else arms.module_filters(issuer, arms.vserver_filter_config(issuer, tools))


def start_arm(arm: str, port: int, up_url: str, issuer: Issuer, log_dir: Path,
              backends: dict[str, tuple[int, int, harness.Proc]], vs_tools: int) -> tuple[Target | None, str | None]:
    if arm in VS_ARMS:
        ports = {n: p for n, (p, _, _) in backends.items()}
        boot = arms.vs_bootstrap(port, ports, vs_filters(arm, issuer, vs_tools), virtual=arm == "vserver")
        env = harness.Envoy(boot, log_dir, name=f"envoy-{arm}", concurrency=1)
        pin(env.popen.pid, GATEWAY_CPU)
        pids: dict[str, int | list[int]] = {"gateway": env.popen.pid, "responder": [_responder_pid(p) for p in ports.values()]}
        return Target(arm, env.url(path="/mcp"), pids, [env], env.popen.pid), None
    if arm == "upstream":
        return Target(arm, up_url, {"responder": _responder_pid(port)}, [], None), None
    if arm in ("envoy", "native", "module"):
        filters = {"envoy": [], "native": arms.native_filters(issuer), "module": arms.module_filters(issuer)}[arm]
        env, url = start_envoy(arm, port, filters, log_dir)
        return Target(arm, url, {"gateway": env.popen.pid, "responder": _responder_pid(port)}, [env], env.popen.pid), None
    import python_gateways

    return python_gateways.start(arm, port, issuer, log_dir, pin=lambda pid: pin(pid, GATEWAY_CPU),
                                 responder_pid=_responder_pid(port), target_cls=Target)


_RESPONDER_PID: dict[int, int] = {}


def _responder_pid(port: int) -> int:
    """The responder's own pid (under the taskset wrapper, which execs it: same pid)."""
    if port not in _RESPONDER_PID:
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                with contextlib.suppress(OSError):
                    cmd = (p / "cmdline").read_bytes().split(b"\0")
                    if cmd and cmd[0].endswith(b"mcp-bench-responder") and str(port).encode() in cmd:
                        _RESPONDER_PID[port] = int(p.name)
                        break
    return _RESPONDER_PID[port]


if __name__ == "__main__":
    sys.exit(main())
