"""Turn one run's results into results.json, results.md (tables + goal ratios) and latency.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARM_ORDER = ["upstream", "envoy", "native", "module", "litellm", "contextforge", "vs_envoy", "vserver"]
ARM_LABEL = {
    "upstream": "upstream direct",
    "envoy": "Envoy alone",
    "native": "Envoy + jwt_authn + mcp + RBAC",
    "module": "Envoy + mcp_policy module",
    "litellm": "LiteLLM proxy (MCP gateway)",
    "contextforge": "ContextForge gateway",
    "vs_envoy": "Envoy alone, 3 backends",
    "vserver": "Envoy + module, virtual server",
}


SHORT_LABEL = {"upstream": "upstream", "envoy": "Envoy", "native": "Envoy+MCP+RBAC", "module": "Envoy+module",
               "litellm": "LiteLLM", "contextforge": "ContextForge", "vs_envoy": "Envoy (3 backends)",
               "vserver": "Envoy+module (vserver)"}


def _get(results: dict[str, Any], arm: str, wl: str) -> dict[str, Any] | None:
    a = results["arms"].get(arm, {})
    return a.get("workloads", {}).get(wl)


def _cpu10k(w: dict[str, Any] | None, who: str = "gateway") -> float | None:
    if not w:
        return None
    return w["throughput"]["cpu_s_per_10k"].get(who)


def _fmt(v: float | None, spec: str = ".0f") -> str:
    return "–" if v is None else format(v, spec)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, computed from this run (None where an arm is missing)."""
    out: dict[str, Any] = {}
    workloads = sorted({wl for a in results["arms"].values() for wl in a.get("workloads", {})})
    for wl in workloads:
        env, mod, nat = (_get(results, a, wl) for a in ("envoy", "module", "native"))
        if not (env and mod):
            continue
        r: dict[str, Any] = {
            "module_rps_over_envoy": mod["throughput"]["rps"] / env["throughput"]["rps"],
            "module_added_p50_us": mod["latency"]["latency_us"]["p50"] - env["latency"]["latency_us"]["p50"],
            "module_added_p99_us": mod["latency"]["latency_us"]["p99"] - env["latency"]["latency_us"]["p99"],
        }
        ce, cm = _cpu10k(env), _cpu10k(mod)
        if ce and cm:
            r["module_cpu_per_req_over_envoy"] = cm / ce
            r["module_added_cpu_us_per_req"] = (cm - ce) / 1e4 * 1e6
        if nat:
            cn = _cpu10k(nat)
            r["native_added_p50_us"] = nat["latency"]["latency_us"]["p50"] - env["latency"]["latency_us"]["p50"]
            if ce and cm and cn:
                r["native_added_cpu_us_per_req"] = (cn - ce) / 1e4 * 1e6
                if cn - ce > 0:
                    r["module_added_cpu_over_native_added_cpu"] = (cm - ce) / (cn - ce)
        # Throughput per gateway CPU-second, module vs Python gateways.
        if cm:
            for py in ("litellm", "contextforge"):
                p = _get(results, py, wl)
                cp = _cpu10k(p)
                if cp:
                    r[f"module_rps_per_cpu_over_{py}"] = cp / cm
        out[wl] = r
    vs = vs_ratios(results)
    if vs:
        out["virtual_server"] = vs
    return out


def _lat(w: dict[str, Any] | None, pct: str) -> float | None:
    return None if not w else w["latency"]["latency_us"][pct]


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def vs_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Virtual server: tools/list over three backends against the slowest backend alone (Envoy
    alone, and the module's single-server route), tools/call dispatched against the same call
    on the single-server route (same Envoy) and through Envoy alone."""
    vl, vc = _get(results, "vserver", "vs_list"), _get(results, "vserver", "vs_call")
    slow_env, slow_mod = _get(results, "vs_envoy", "vs_list_slowest"), _get(results, "vserver", "vs_list_slowest")
    one_env, one_mod = _get(results, "vs_envoy", "vs_call_single"), _get(results, "vserver", "vs_call_single")
    r: dict[str, Any] = {}
    for pct in ("p50", "p99"):
        r[f"list_added_{pct}_us_over_envoy_slowest"] = _minus(_lat(vl, pct), _lat(slow_env, pct))
        r[f"list_added_{pct}_us_over_module_slowest"] = _minus(_lat(vl, pct), _lat(slow_mod, pct))
        r[f"call_added_{pct}_us_over_single_route"] = _minus(_lat(vc, pct), _lat(one_mod, pct))
    us = lambda w: None if _cpu10k(w) is None else _cpu10k(w) / 1e4 * 1e6  # noqa: E731
    r["call_added_cpu_us_over_single_route"] = _minus(us(vc), us(one_mod))
    r["call_added_cpu_us_over_envoy"] = _minus(us(vc), us(one_env))
    r["list_added_cpu_us_over_module_slowest"] = _minus(us(vl), us(slow_mod))
    return {k: v for k, v in r.items() if v is not None}


GOALS = [
    ("call_json", "module_rps_over_envoy", ">=", 0.95, "module RPS ≥ 95% of Envoy alone (tools/call)"),
    ("call_json", "module_cpu_per_req_over_envoy", "<=", 1.10, "module CPU/request ≤ 1.10× Envoy alone"),
    ("call_json", "module_added_p50_us", "<=", 50, "added p50 ≤ 50 µs (1 worker)"),
    ("call_json", "module_added_p99_us", "<=", 200, "added p99 ≤ 200 µs (1 worker)"),
    ("call_json", "module_added_cpu_over_native_added_cpu", "<=", 0.5, "module added CPU ≤ 0.5× native MCP+RBAC added CPU"),
    ("list_100", "module_added_p50_us", "<=", 150, "tools/list of 100 tools rewritten: added p50 ≤ 150 µs"),
    ("call_json", "module_rps_per_cpu_over_litellm", ">=", 30, "≥ 30× throughput per CPU of LiteLLM"),
    ("call_json", "module_rps_per_cpu_over_contextforge", ">=", 30, "≥ 30× throughput per CPU of ContextForge"),
]


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    lines = [
        f"# Gateway cost, run {results['started']}",
        "",
        f"Machine: {m['cpus']} cores ({m['cpu_model']}), {m['platform']}. Load average at start "
        f"{'/'.join(f'{x:.2f}' for x in m['loadavg_at_start'])}, at end {'/'.join(f'{x:.2f}' for x in m.get('loadavg_at_end', []))} "
        "(the machine was shared with other work). All figures come from this one run.",
        "",
        f"Settings: throughput phase {s['duration_s']} s at {s['concurrency']} connections (closed loop); latency phase "
        f"{s['latency_duration_s']} s at 1 connection per stream (no queueing). Envoy `--concurrency {s['envoy_concurrency']}` and "
        f"Python gateways pinned to CPU {s['gateway_cpu']}; responder and load generator ({s['oha']}) on CPU "
        f"{s['client_and_responder_cpu']}. CPU = the gateway's (or, for `upstream`, the responder's) CPU time over the "
        "throughput phase ÷ requests completed.",
        "",
        "| arm | workload | check | RPS @conc | p50 µs | p99 µs | p99.9 µs | gateway CPU s/10k req | responder CPU s/10k | non-2xx / errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for arm in ARM_ORDER:
        a = results["arms"].get(arm)
        if a is None:
            continue
        if "skipped" in a:
            lines.append(f"| {ARM_LABEL[arm]} | – | skipped: {a['skipped']} | | | | | | | |")
            continue
        for wl, w in a["workloads"].items():
            t, l = w["throughput"], w["latency"]
            non2xx = {k: v for k, v in t["statuses"].items() if not k.startswith("2")}
            # oha -z counts the requests in flight at the deadline as "aborted due to deadline": not an error.
            errs = {k: v for k, v in t["errors"].items() if "deadline" not in k}
            bad = ", ".join(f"{k}×{v}" for k, v in {**non2xx, **errs}.items()) or "–"
            gw = t["cpu_s_per_10k"].get("gateway")
            lines.append(
                f"| {ARM_LABEL[arm]} | {wl} | {'ok' if w['check']['ok'] else 'FAIL'} | {t['rps']:.0f} | "
                f"{_fmt(l['latency_us']['p50'])} | {_fmt(l['latency_us']['p99'])} | {_fmt(l['latency_us']['p99.9'])} | "
                f"{_fmt(gw, '.3f')} | {_fmt(t['cpu_s_per_10k'].get('responder'), '.3f')} | {bad} |"
            )
    lines += ["", "Peak RSS of the gateway process (VmHWM, whole run):", ""]
    for arm in ARM_ORDER:
        a = results["arms"].get(arm)
        if a and "peak_rss_kib" in a:
            lines.append(f"- {ARM_LABEL[arm]}: {a['peak_rss_kib'] / 1024:.1f} MiB")
    r = results.get("ratios", {})
    lines += ["", "## Goals (from this run)", "", "| goal | workload | value | met |", "|---|---|---:|---|"]
    for wl, key, op, bound, label in GOALS:
        v = r.get(wl, {}).get(key)
        met = None if v is None else (v >= bound if op == ">=" else v <= bound)
        lines.append(f"| {label} | {wl} | {_fmt(v, '.2f')} | {'–' if met is None else ('yes' if met else 'no')} |")
    lines += ["", "## Ratios per workload", "", "| workload | " + " | ".join(RATIO_COLS) + " |", "|---|" + "---:|" * len(RATIO_COLS)]
    for wl, rr in r.items():
        if wl != "virtual_server":
            lines.append(f"| {wl} | " + " | ".join(_fmt(rr.get(c), ".2f") for c in RATIO_COLS) + " |")
    if r.get("virtual_server"):
        lines += ["", "## Virtual server (three backends; b3 answers "
                  f"{s.get('vs_slow_us', '?')} µs later; {s.get('vs_tools_per_backend', '?')} tools each)", "",
                  "| measure | µs |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v, '.1f')} |" for k, v in r["virtual_server"].items()]
    return "\n".join(lines) + "\n"


RATIO_COLS = [
    "module_rps_over_envoy", "module_added_p50_us", "module_added_p99_us", "module_cpu_per_req_over_envoy",
    "module_added_cpu_us_per_req", "native_added_cpu_us_per_req", "module_added_cpu_over_native_added_cpu",
    "module_rps_per_cpu_over_litellm", "module_rps_per_cpu_over_contextforge",
]


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    arms_present = [a for a in ARM_ORDER if results["arms"].get(a, {}).get("workloads")]
    workloads = [wl for wl in ["call_json", "call_sse", "call_json_h2", "list_10", "list_100", "list_1000", "denied", "mixed",
                               "vs_list", "vs_list_slowest", "vs_call", "vs_call_single"]
                 if any(wl in results["arms"][a]["workloads"] for a in arms_present)]
    fig, axes = plt.subplots(len(workloads), 1, figsize=(10, 2.4 * len(workloads)), squeeze=False)
    for ax, wl in zip(axes[:, 0], workloads):
        xs = [a for a in arms_present if wl in results["arms"][a]["workloads"]]
        for i, pct in enumerate(["p50", "p99", "p99.9"]):
            vals = [results["arms"][a]["workloads"][wl]["latency"]["latency_us"][pct] or 0 for a in xs]
            ax.bar([j + (i - 1) * 0.27 for j in range(len(xs))], vals, width=0.27, label=pct)
        ax.set_xticks(range(len(xs)), [SHORT_LABEL[a] for a in xs], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("µs (log)")
        ax.set_title(f"{wl}: latency, one connection per stream, one request at a time", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"MCP gateway latency percentiles, run {results['started']} (2 cores, one run)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    return True


def write(results: dict[str, Any], out_dir: Path) -> None:
    results["ratios"] = ratios(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "results.md").write_text(markdown(results))
    plot(results, out_dir / "latency.png")


if __name__ == "__main__":  # re-render a results.json: python report.py DIR
    import sys

    d = Path(sys.argv[1])
    write(json.loads((d / "results.json").read_text()), d)
