"""Bad input and module failures: precise refusals, and Envoy keeps serving."""

from __future__ import annotations

import httpx
import pytest

from mcp_client import session

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
PING = '{"jsonrpc":"2.0","id":7,"method":"ping"}'


@pytest.fixture
def gateway(procs):
    upstream = procs.mcp_server("demo", json_response=True, stateless=True)
    return procs.gateway(
        {"demo": upstream},
        {"server": "demo", "pass_through": True, "limits": {"max_request_body_bytes": 4096}, "fault_injection": {"panic_header": "x-test-panic"}},
    )


def post(envoy, body: str | bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(envoy.url(), content=body, headers={**ACCEPT, **(headers or {})}, timeout=10)


def test_invalid_json_is_answered_with_400_and_jsonrpc_parse_error(gateway):
    r = post(gateway, '{"jsonrpc":"2.0","id":1,')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32700
    assert r.json()["id"] is None
    assert gateway.counters()["mcp_policy.rejected_total.server.demo.reason.parse_error"] == 1


def test_invalid_request_keeps_the_request_id(gateway):
    r = post(gateway, '{"jsonrpc":"2.0","id":"q1","method":"ping","method":"tools/call"}')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600
    assert "duplicate" in r.json()["error"]["message"]


def test_body_over_the_limit_gets_413_not_a_hang(gateway):
    big = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"' + "x" * 10_000 + '"}}}'
    r = post(gateway, big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == -32600
    assert "4096 bytes" in r.json()["error"]["message"]


def test_compressed_body_is_refused_rather_than_forwarded_unjudged(gateway):
    import gzip

    r = post(gateway, gzip.compress(PING.encode()), {"content-encoding": "gzip"})
    assert r.status_code == 415
    assert "content-encoding" in r.json()["error"]["message"]


def test_a_method_mcp_does_not_use_is_refused_with_405(gateway):
    r = httpx.put(gateway.url(), content=PING, headers=ACCEPT, timeout=10)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST, DELETE"
    assert r.json()["error"]["code"] == -32600


def test_valid_request_still_reaches_the_upstream(gateway):
    r = post(gateway, PING)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == 7


@pytest.mark.parametrize("hook,status", [("request_headers", 500), ("request_body", 500), ("response_headers", 502), ("response_body", None)])
async def test_a_panic_in_any_hook_fails_that_request_closed_and_envoy_keeps_serving(gateway, hook, status):
    if status is None:
        # The response headers already went downstream: the only honest answer left is to
        # cut the stream, never to deliver an unjudged body.
        with pytest.raises(httpx.RemoteProtocolError):
            post(gateway, PING, {"x-test-panic": hook})
    else:
        r = post(gateway, PING, {"x-test-panic": hook})
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == -32603
    assert gateway.popen.poll() is None, "Envoy died"
    assert gateway.counters()[f"mcp_policy.panics_total.hook.{hook}"] == 1

    # Envoy and the module keep serving other requests, over the same and new connections.
    assert post(gateway, PING).status_code == 200
    async with session(gateway.url()) as s:
        assert (await s.call_tool("echo", {"text": "still here"})).content[0].text == "still here"


def test_invalid_module_config_is_rejected_by_envoy_with_the_reason(procs):
    from harness import Envoy, HarnessError, gateway_bootstrap

    boot = gateway_bootstrap({"demo": 9}, {"limits": {"max_request_bytes": 1}})
    with pytest.raises(HarnessError) as e:
        procs.add(Envoy(boot, procs.log_dir, name="bad-config"))
    log = (procs.log_dir / "bad-config.log").read_text()
    assert "limits.max_request_bytes: unknown field `max_request_bytes`" in log, e.value
