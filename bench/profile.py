"""`make bench-profile`: where the module's time goes, in instructions (callgrind).

Runs Envoy (--concurrency 1) under `valgrind --tool=callgrind` for the arms given (default:
envoy, native, module, vs_envoy, vserver), warms each up, zeroes the counters, sends a bounded number of requests of
one workload with oha, dumps, and repeats per workload. Instruction counts do not depend on what
else the machine is doing, so these figures are repeatable where the load figures are not.

Writes bench/results/profile-<stamp>/: the raw callgrind files, `callgrind_annotate` output per
arm and workload, and summary.json / summary.md (instructions per request per arm, the module's
hooks inclusive, and the top functions of our own crates).

The virtual-server arms (`vs_envoy`, `vserver`: bench/arms.py) run only the `vs_*` workloads
(bench/run.py), the others only the rest; e.g. `--arms module,vs_envoy,vserver --workloads
call_json,vs_call,vs_call_single` compares a tools/call dispatched by the virtual server with the
module's single-server route, in the `module` arm's Envoy and in the virtual server's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "integration"))
sys.path.insert(0, str(BENCH))

import arms  # noqa: E402
import harness  # noqa: E402
import run  # noqa: E402
from issuer import Issuer  # noqa: E402

PROFILE_WORKLOADS = ["call_json", "call_sse", "call_json_h2", "list_100", "list_1000", "denied", "vs_call", "vs_call_single", "vs_list", "vs_list_slowest"]


def start_envoy_under_callgrind(name: str, bootstrap: dict, log_dir: Path, out_prefix: Path) -> tuple[harness.Proc, str, str]:
    import yaml

    cfg = log_dir / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    admin_path = log_dir / f"{name}.admin"
    admin_path.unlink(missing_ok=True)
    cmd = ["taskset", "-c", run.GATEWAY_CPU, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}.%p",
           "--dump-instr=no", "--separate-threads=no",
           str(harness.envoy_binary()), "-c", str(cfg), "--admin-address-path", str(admin_path), "--use-dynamic-base-id",
           "--concurrency", "1", "--log-level", "warn"]
    proc = harness.Proc(name, cmd, log_dir, env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(harness.module_dir())})
    addr = harness.wait_until(f"{name} admin address", lambda: admin_path.exists() and admin_path.read_text().strip(),
                              timeout=600, proc=proc)
    admin = f"http://{addr}"
    harness.wait_until(f"{name} /ready", lambda: httpx.get(f"{admin}/ready", timeout=5).status_code == 200, timeout=600, proc=proc)
    data = httpx.get(f"{admin}/listeners?format=json", timeout=10).json()
    port = data["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
    return proc, admin, f"http://127.0.0.1:{port}/mcp"


def oha_n(url: str, body: str, headers: dict[str, str], n: int, c: int, http2: bool = False) -> dict:
    cmd = ["taskset", "-c", run.CLIENT_CPU, run.oha_binary(), "--no-tui", "--output-format", "json", "-n", str(n), "-c", str(c),
           "-m", "POST", "-d", body]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if http2:
        cmd += ["--http2"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    return json.loads(out)


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=300)


def total_ir(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def annotate(path: Path, inclusive: bool) -> str:
    cmd = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout


def parse_annotate(text: str) -> list[tuple[int, str]]:
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)$", line)
        if m and ":" in m.group(2):
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows


HOOK = re.compile(r"exports\.rs:(envoy_dynamic_module_on_http_filter_\w+) \[.*libmcp_policy")
CALLBACK = re.compile(r"\?\?\?:(envoy_dynamic_module_callback_\w+) ")
OURS = re.compile(r"^(?:/\S*?/)?((?:core|filter)/src/[\w/]+\.rs):(\S+) \[.*libmcp_policy")


def summarize(out_dir: Path) -> None:
    """Per arm and workload: instructions per request, the module's hooks (inclusive), the Envoy
    callbacks it makes (inclusive), and our own functions (inclusive), from the annotate files."""
    summary = json.loads((out_dir / "summary.json").read_text())
    base = {**summary["arms"].get("envoy", {}), **summary["arms"].get("vs_envoy", {})}
    lines = [f"# Callgrind profile ({summary['requests']} requests per workload, {summary['concurrency']} connections, "
             "Envoy --concurrency 1)", "", "Instructions (Ir) per request, whole Envoy process, after warm-up.", "",
             "| arm | workload | Ir/request | added over Envoy alone |", "|---|---|---:|---:|"]
    for arm, wls in summary["arms"].items():
        for wl, r in wls.items():
            b = base.get(wl, {}).get("ir_per_request")
            added = f"{r['ir_per_request'] - b:,.0f}" if b and arm not in ("envoy", "vs_envoy") else "–"
            lines.append(f"| {arm} | {wl} | {r['ir_per_request']:,.0f} | {added} |")
    lines += vs_lines(summary)
    hooked = [(arm, wl, r) for arm in ("module", "vserver") for wl, r in summary["arms"].get(arm, {}).items()]
    for arm, wl, r in hooked:
        n = r["requests"]
        text = (out_dir / f"annotate.{arm}.{wl}.inclusive.txt").read_text()
        hooks, cbs, ours = {}, {}, {}
        for ir, fn in parse_annotate(text):
            if m := HOOK.search(fn):
                hooks[m.group(1)] = max(hooks.get(m.group(1), 0), ir / n)
            elif m := CALLBACK.search(fn):
                cbs[m.group(1)] = max(cbs.get(m.group(1), 0), ir / n)
            elif m := OURS.search(fn):
                key = f"{m.group(1)}:{m.group(2)}"
                ours[key] = max(ours.get(key, 0), ir / n)
        r["hooks_ir_per_request"], r["callbacks_ir_per_request"] = hooks, cbs
        r["ours_inclusive_top"] = sorted(ours.items(), key=lambda kv: -kv[1])[:20]
        lines += ["", f"## {arm}, {wl}: where the hooks' instructions go (inclusive, per request)", "",
                  "| hook / callback / function | Ir/request |", "|---|---:|"]
        lines += [f"| hook `{k}` | {v:,.0f} |" for k, v in sorted(hooks.items(), key=lambda kv: -kv[1]) if v >= 50]
        lines += [f"| Envoy callback `{k}` | {v:,.0f} |" for k, v in sorted(cbs.items(), key=lambda kv: -kv[1]) if v >= 50]
        lines += [f"| `{k}` | {v:,.0f} |" for k, v in r["ours_inclusive_top"] if v >= 500]
        lines += callee_tree(out_dir / f"callgrind.{arm}.{wl}.out", n, r)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")


TREE_OF = ["McpFilter::on_request_headers", "McpFilter::on_request_body", "McpFilter::judge_message",
           "McpFilter::on_response_body", "McpFilter::rewrite_one", "rewrite::rewrite_list",
           "McpFilter::judge_virtual", "McpFilter::dispatch", "McpFilter::fan_out", "McpFilter::on_callout_done",
           "McpFilter::finish_fan_out"]


def vs_lines(summary: dict) -> list[str]:
    """The virtual server's added instructions: a dispatched tools/call against the module's
    single-server route (in the `module` arm's Envoy and in the virtual server's own), a merged
    list against the slowest backend alone."""
    a = summary["arms"]
    ir = lambda arm, wl: a.get(arm, {}).get(wl, {}).get("ir_per_request")  # noqa: E731
    rows = [
        ("tools/call through the virtual server − `module` arm `call_json`", ir("vserver", "vs_call"), ir("module", "call_json")),
        ("tools/call through the virtual server − its single-server route (`vs_call_single`)",
         ir("vserver", "vs_call"), ir("vserver", "vs_call_single")),
        ("tools/list over three backends − the slowest backend alone, module route (`vs_list_slowest`)",
         ir("vserver", "vs_list"), ir("vserver", "vs_list_slowest")),
        ("tools/list over three backends − the slowest backend alone, Envoy alone", ir("vserver", "vs_list"),
         ir("vs_envoy", "vs_list_slowest")),
    ]
    rows = [(label, x, y) for label, x, y in rows if x and y]
    if not rows:
        return []
    out = ["", "## Virtual server: added instructions per request", "", "| comparison | Ir/request | ratio |", "|---|---:|---:|"]
    out += [f"| {label} | {x - y:+,.0f} | ×{x / y:.2f} |" for label, x, y in rows]
    return out


def callee_tree(dump: Path, n: int, r: dict) -> list[str]:
    """Direct callees (inclusive Ir/request) of the module's main functions: the flat profile
    hides calls that were inlined into a differently named frame, the call tree does not."""
    if not dump.exists():
        return []
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--tree=calling", "--threshold=99.9", str(dump)],
                          capture_output=True, text=True, timeout=600).stdout
    blocks: dict[str, list[tuple[str, float]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+([*>])\s+(\S+)", line)
        if not m:
            current = None
            continue
        ir, mark, fn = int(m.group(1).replace(",", "")), m.group(2), m.group(3)
        name = fn.split(":", 1)[-1]
        if mark == "*":
            current = next((t for t in TREE_OF if name.endswith(t)), None)
            if current and current not in blocks:
                blocks[current] = [("(inclusive)", ir / n)]
            else:
                current = None if current in blocks and blocks[current][0][1] != ir / n else current
        elif current and ir / n >= 500:
            callee = re.sub(r"^.*?::(?=[a-z_]+::)", "", name)
            blocks[current].append((callee, ir / n))
    r["callees_ir_per_request"] = blocks
    out = ["", "Direct callees (call tree), Ir/request:", ""]
    for fn, rows in blocks.items():
        out.append(f"- `{fn}` {rows[0][1]:,.0f}: " + ", ".join(f"`{c}` {v:,.0f}" for c, v in rows[1:]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="envoy,native,module,vs_envoy,vserver")
    ap.add_argument("--workloads", default=",".join(PROFILE_WORKLOADS))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--summarize", type=Path, help="only re-read the annotate files of an earlier profile directory")
    ap.add_argument("--vs-tools", type=int, default=10, choices=[1, 10, 100, 1000],
                    help="tools each virtual-server backend lists")
    ap.add_argument("--vs-slow-us", type=int, default=0,
                    help="µs the slowest virtual-server backend holds each answer (instruction counts do not depend on it)")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return 0

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = BENCH / "results" / f"profile-{stamp}"
    log_dir = BENCH / "work" / f"profile-{stamp}"
    out_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    issuer = Issuer()
    exp = int(time.time()) + 6 * 3600
    tokens = {who: issuer.token(who, groups=g, exp=exp) for who, g in arms.PEOPLE.items()}

    port = harness.free_port()
    responder = harness.Proc("responder", ["taskset", "-c", run.CLIENT_CPU, str(run.RESPONDER), str(port)], log_dir)
    harness.wait_until("responder", lambda: "listening" in responder.log_path.read_text(), proc=responder)
    summary: dict = {"requests": args.requests, "concurrency": args.concurrency, "arms": {}}
    arm_names = [a for a in args.arms.split(",") if a]
    run.WORKLOADS.update(run.vs_workloads(args.vs_tools))
    backends = run.start_vs_backends(args.vs_slow_us, log_dir) if any(a in run.VS_ARMS for a in arm_names) else {}
    if backends:
        summary["vs"] = {"tools_per_backend": args.vs_tools, "slow_us": args.vs_slow_us}
    try:
        for arm in arm_names:
            if arm in run.VS_ARMS:
                ports = {n: p for n, (p, _, _) in backends.items()}
                boot = arms.vs_bootstrap(port, ports, run.vs_filters(arm, issuer, args.vs_tools), virtual=arm == "vserver")
            else:
                filters = {"envoy": [], "native": arms.native_filters(issuer), "module": arms.module_filters(issuer)}[arm]
                boot = arms.envoy_bootstrap(port, filters)
            prefix = out_dir / f"callgrind.{arm}"
            proc, admin, url = start_envoy_under_callgrind(f"envoy-{arm}", boot, log_dir, prefix)
            pid = proc.popen.pid
            # taskset execs valgrind, which execs nothing: the valgrind process is the pid.
            res = {}
            try:
                for wl_name in args.workloads.split(","):
                    wl = run.WORKLOADS[wl_name]
                    if wl.get("vs", False) != (arm in run.VS_ARMS) or (arm == "vs_envoy" and wl_name in run.VS_ONLY):
                        continue
                    who, body, q = wl["streams"][0]
                    target = run.Target(arm, url, {}, [], None)
                    target_url = target.url(q, wl.get("path"))
                    chk = run.check(target, wl_name, wl, tokens)  # the answer we mean to count
                    if not chk["ok"]:
                        raise SystemExit(f"{arm} {wl_name}: unexpected answer {json.dumps(chk['streams'])}")
                    hdrs = target.headers(tokens[who], wl.get("path"))  # as real clients send them
                    oha_n(target_url, body, hdrs, 200, args.concurrency, wl.get("http2", False))  # warm: token cache, pools, lazy init
                    callgrind_control("-z", str(pid))
                    o = oha_n(target_url, body, hdrs, args.requests, args.concurrency, wl.get("http2", False))
                    callgrind_control("-d", wl_name, str(pid))
                    dumps = sorted(out_dir.glob(f"callgrind.{arm}.{pid}.*"), key=lambda p: p.stat().st_mtime)
                    dump = dumps[-1]
                    dump = dump.rename(out_dir / f"callgrind.{arm}.{wl_name}.out")
                    n = sum(o.get("statusCodeDistribution", {}).values())
                    tot = total_ir(dump)
                    incl = annotate(dump, True)
                    (out_dir / f"annotate.{arm}.{wl_name}.inclusive.txt").write_text(incl)
                    (out_dir / f"annotate.{arm}.{wl_name}.self.txt").write_text(annotate(dump, False))
                    res[wl_name] = {"requests": n, "statuses": o.get("statusCodeDistribution"),
                                    "ir_per_request": tot / n if n else None}
                    print(f"{arm:7s} {wl_name:10s} {res[wl_name]['ir_per_request']:.0f} Ir/request", flush=True)
            finally:
                proc.stop(timeout=120)
                for leftover in out_dir.glob(f"callgrind.{arm}.{pid}*"):
                    leftover.unlink()
            summary["arms"][arm] = res
    finally:
        for _, _, p in backends.values():
            p.stop()
        responder.stop()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    summarize(out_dir)
    print(f"profile: {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
