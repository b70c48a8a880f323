"""The README walk-through: a fresh clone, `make run`'s demo, and its printed try-next commands
run as printed, in a shell, with their outputs checked; then Ctrl-C stops everything.

The clone is of the committed HEAD; it reuses this checkout's built binaries (module, and
mcp-policy through MCP_POLICY_BIN) and `.venv`, because `make run`'s other steps (`build`,
`peers`) are what `make test` has just done here. That `make run` is exactly `demo.py` after
those steps is checked against the Makefile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness import ROOT, free_port, module_dir, wait_until

DEMO = "integration/demo.py"


def test_make_run_is_build_peers_then_the_demo():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^run: (.*)\n\t(.*)$", makefile, re.M)
    assert rule, "no run target"
    assert rule.group(1).split() == ["build", "$(PEERS)"]
    assert rule.group(2) == f"$(PY) {DEMO}"
    assert "-p mcp-policy-cli" in makefile, "make build builds the mcp-policy the demo prints"


def run_as_printed(lines: list[str], cwd: Path) -> list[tuple[str, str]]:
    """Run the printed lines in one bash, as a user pasting them would; each line's output."""
    script = "".join(f"echo '@@@{i}'\n{line}\n" for i, line in enumerate(lines))
    out = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    parts = out.stdout.split("@@@")[1:]
    got = {int(p.split("\n", 1)[0]): p.split("\n", 1)[1] for p in parts}
    assert len(got) == len(lines), out.stderr
    return [(lines[i], got[i]) for i in range(len(lines))]


def test_fresh_clone_make_run_and_every_printed_command_works(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    ports = {k: free_port() for k in ("MCP_DEMO_PORT", "MCP_DEMO_ADMIN_PORT", "MCP_DEMO_UPSTREAM_PORT", "MCP_DEMO_SANDBOX_PORT")}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "MCP_POLICY_MODULE_DIR": str(module_dir()),
        "MCP_POLICY_BIN": str(ROOT / "target" / "release" / "mcp-policy"),
    }
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        demo = subprocess.Popen([sys.executable, DEMO], cwd=clone, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_until("demo ready banner", lambda: b"Ctrl-C stops everything" in out.read_bytes(), timeout=90)
        banner = out.read_text()
        block = banner.split("Try next", 1)[1].split("\n", 1)[1].split("\nCtrl-C", 1)[0]
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        assert len(lines) == 10, banner
        results = run_as_printed(lines, clone)
        outputs = [o for _, o in results]

        def tool_names(text: str) -> list[str]:
            return [t["name"] for t in json.loads(text)["result"]["tools"]]

        assert tool_names(outputs[3]) == ["echo", "add", "search_repos", "delete_branch"], outputs[3]
        assert tool_names(outputs[4]) == ["echo", "add", "search_repos"], outputs[4]
        refused = json.loads(outputs[5])
        assert refused["error"]["code"] == -32030, refused
        assert "no-deletes-for-contractors" in json.dumps(refused), refused
        passed = json.loads(outputs[6])
        assert passed["result"]["content"][0]["text"] == "deleted main in demo", passed
        deny, audit = (json.loads(line) for line in outputs[7].splitlines())
        assert (deny["mcp_server"], deny["mcp_decision"], deny["mcp_rule"], deny["mcp_principal"], deny["mcp_groups"]) == (
            "demo", "deny", "no-deletes-for-contractors", "bob", "contractors")
        assert (audit["mcp_server"], audit["mcp_decision"], audit["mcp_rule"], audit["mcp_mode"]) == (
            "sandbox", "audit_deny", "no-deletes-for-contractors", "audit")
        assert "decision:  deny (enforce mode)" in outputs[8], outputs[8]
        assert '=> rules[3] "no-deletes-for-contractors" (deny): DECIDED' in outputs[8], outputs[8]
        # Replayed over the log this real Envoy just wrote: enforcing sandbox refuses bob's call.
        assert "3 unchanged, 1 would change, 0 undetermined" in outputs[9], outputs[9]
        assert (
            'bob (groups contractors) on sandbox\n    tools/call delete_branch: audit_deny (rule "no-deletes-for-contractors") '
            '-> deny (rule "no-deletes-for-contractors")' in outputs[9]
        ), outputs[9]

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0, out.read_text()
        for port in ports.values():
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after Ctrl-C"
    finally:
        if demo.poll() is None:
            # Ctrl-C first: the demo stops its servers and Envoy (each in its own process group,
            # which a kill of the demo's group would leave running).
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
