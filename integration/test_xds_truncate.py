"""A filter.json being rewritten in place never opens the gateway.

Editors, `echo > filter.json` and config-management tools often write a file in place: open with
truncation, then write. For a moment the file is empty (or holds a prefix of the new text). An
empty filter config once meant "all defaults, no policy", so a control plane polling at the wrong
moment could push an open config. Now an empty or partial file is a validation error: the last
good snapshot stays served, the refusal shows on /status and in /metrics.

Here a real mcp-xds-server (polling every 20 ms) feeds an ADS-only Envoy while a writer truncates
and rewrites filter.json over and over (alternating two valid policies, so real applies happen in
between) and client threads hammer a forbidden `tools/call`. The upstream counts what reaches it:
zero forbidden calls may arrive, and every forbidden call must get a JSON-RPC error."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness import wait_until
from xds_harness import XdsServer, ads_bootstrap, wait_current, write_source_dir

NODE = "gw-trunc"
CHURN_SECONDS = 3.0
CLIENT_THREADS = 4


def policy(description: str) -> dict:
    """Anonymous callers may use `echo` and nothing else (no identity section: every caller is
    anonymous). Two versions differ only in a description, so each rewrite is a real change."""
    return {
        "server": "guarded",
        "policy": {
            "servers": {"guarded": {}},
            "rules": [
                {"id": "anon-echo", "description": description, "effect": "allow", "principals": [{"anonymous": True}], "tools": ["echo"]},
            ],
        },
    }


class CountingUpstream:
    """An in-process MCP-ish upstream that answers every JSON-RPC request with a result and counts
    `tools/call`s by tool name: the ground truth of what got past the gateway."""

    def __init__(self):
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {}
                msgs = msg if isinstance(msg, list) else [msg]
                for m in msgs:
                    if isinstance(m, dict) and m.get("method") == "tools/call":
                        name = str((m.get("params") or {}).get("name"))
                        with outer.lock:
                            outer.calls[name] = outer.calls.get(name, 0) + 1
                rid = msgs[0].get("id") if msgs and isinstance(msgs[0], dict) else None
                out = json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": "ran"}]}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, name: str) -> int:
        with self.lock:
            return self.calls.get(name, 0)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    u = CountingUpstream()
    yield u
    u.stop()


def call(client: httpx.Client, url: str, rid: int, tool: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    return client.post(url, json=body, headers={"accept": "application/json, text/event-stream"}, timeout=5)


def truncate_then_write(path, text: str, pause: float) -> None:
    """Rewrite in place, the non-atomic way: truncate, pause, write."""
    with open(path, "w") as f:
        f.flush()
        time.sleep(pause)
        f.write(text)


def test_truncating_and_rewriting_filter_json_under_load_lets_no_forbidden_call_through(procs, tmp_path, upstream):
    docs = [json.dumps(policy("version A"), indent=2), json.dumps(policy("version B"), indent=2)]
    src = write_source_dir(tmp_path / "source", {"guarded": upstream.port}, json.loads(docs[0]))
    xds = procs.add(XdsServer(procs.log_dir, src, extra=["--poll-interval", "20ms"]))
    envoy = procs.envoy(ads_bootstrap(xds.xds_port, NODE), name="envoy-trunc")
    wait_current(xds, {NODE})
    url = envoy.url(path="/guarded/mcp")

    # The policy is in force: echo passes, delete_branch is refused by the gateway.
    with httpx.Client() as c:
        assert call(c, url, 1, "echo").json()["result"]["content"][0]["text"] == "ran"
        refused = call(c, url, 2, "delete_branch")
        assert refused.status_code == 200 and refused.json()["error"]["code"] == -32030
    assert upstream.count("echo") == 1 and upstream.count("delete_branch") == 0
    reloads_before = xds.metrics()["mcp_xds_config_reloads_total"]

    stop = threading.Event()
    results: list[tuple[int, int, dict | None]] = []  # (request id, HTTP status, JSON body)
    failures: list[str] = []
    lock = threading.Lock()

    def hammer(worker: int):
        rid = worker * 1_000_000
        with httpx.Client() as c:
            while not stop.is_set():
                rid += 1
                try:
                    r = call(c, url, rid, "delete_branch")
                    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                except Exception as e:  # noqa: BLE001 - every failure is reported below
                    with lock:
                        failures.append(f"{rid}: {e!r}")
                    continue
                with lock:
                    results.append((rid, r.status_code, body))

    threads = [threading.Thread(target=hammer, args=(w + 1,)) for w in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    cycles = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < CHURN_SECONDS:
            # Mostly a few ms empty; every fourth cycle long enough for several polls to agree on
            # the empty file, so the refusal path is certainly taken.
            pause = 0.15 if cycles % 4 == 3 else 0.002 + 0.003 * (cycles % 3)
            truncate_then_write(src / "filter.json", docs[cycles % 2], pause)
            cycles += 1
            time.sleep(0.03)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)

    print(f"\n{cycles} truncate-then-write cycles, {len(results)} forbidden calls, {len(failures)} transport failures")
    assert upstream.count("delete_branch") == 0, f"{upstream.count('delete_branch')} forbidden calls reached the upstream"
    assert not failures, failures[:5]
    assert len(results) >= 50, "the load was too light to mean anything"
    bad = [(rid, status, body) for rid, status, body in results if not (status == 200 and body and body.get("id") == rid and body.get("error", {}).get("code") == -32030)]
    assert not bad, bad[:5]

    # The churn was seen: empty files refused (counted, on /status), complete ones applied.
    metrics = xds.metrics()
    assert metrics["mcp_xds_config_errors_total"] >= 1
    # A complete file is applied once two reads 20 ms apart agree; the churn leaves a complete
    # file for only ~30 ms, so whether one settled during it depends on timing. End on version B
    # (the gateway started on A) and hold it: it must be applied, whatever the churn did.
    truncate_then_write(src / "filter.json", docs[1], 0)
    wait_until(
        "version B to be applied",
        lambda: xds.metrics()["mcp_xds_config_reloads_total"] > reloads_before,
        timeout=10,
        proc=xds,
    )
    last = xds.status()["config"]["last_error"]
    assert last and any(e["file"] == "filter.json" and "empty" in e["message"] for e in last["errors"]), last

    # The file ends complete; the gateway ends on it and still enforces.
    wait_until("the final file to be served", lambda: xds.status()["config"]["valid"] is True, timeout=10, proc=xds)
    with httpx.Client() as c:
        assert call(c, url, 3, "delete_branch").json()["error"]["code"] == -32030
        assert call(c, url, 4, "echo").json()["result"]["content"][0]["text"] == "ran"
    assert upstream.count("delete_branch") == 0
