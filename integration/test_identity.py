"""Who is calling: identity established at the gateway, end to end through a real Envoy.

Every test starts its own Envoy (with our module) in front of a real upstream: the header-echo
peer (it answers with the headers it received, so we can see exactly what the gateway forwards)
or the demo MCP server (official Python SDK). Tokens are real JWTs signed by a test issuer
(`issuer.py`); mTLS uses a throwaway CA (`certs.py`). No mocks.
"""

from __future__ import annotations

import copy
import json
import re
import time

import anyio
import httpx
import pytest

from certs import TestCa, downstream_tls
from harness import gateway_bootstrap
from issuer import Issuer
from mcp_client import session

AUDIENCE = "http://localhost:10000/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
METADATA_URL = "http://localhost:10000" + METADATA_PATH
UNAUTHENTICATED = "mcp_policy.rejected_total.server.echo.reason.unauthenticated"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    iss = Issuer(audience=AUDIENCE)
    iss.rsa_key, iss.ec_key, iss.other_rsa_key  # noqa: B018 - generate the keys once per module
    return iss


def filter_config(issuer: Issuer, provider: dict | None = None, **identity) -> dict:
    """The module config for the header-echo upstream `echo`, bearer tokens from `issuer`."""
    ident = {"providers": [provider or issuer.provider()], "resource": issuer.audience, "required_scopes": ["mcp"]}
    ident.update(identity)
    return {"server": "echo", "identity": ident}


@pytest.fixture
def echo(procs):
    return procs.header_echo()


@pytest.fixture
def gateway(procs, echo, issuer):
    """The default gateway: bearer JWTs from `issuer`, scope `mcp` required."""
    return procs.gateway({"echo": echo}, filter_config(issuer))


def call_body(rid: int | str = 1, method: str = "tools/call") -> str:
    params = {"name": "whoami", "arguments": {}} if method == "tools/call" else {}
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})


def post(
    url: str,
    token: str | None = None,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    method: str = "tools/call",
    client: httpx.Client | None = None,
) -> httpx.Response:
    """A raw JSON-RPC POST (a `tools/call` by default), with `Authorization: Bearer <token>`."""
    hs: list[tuple[str, str]] = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
    if token is not None:
        hs.append(("authorization", f"Bearer {token}"))
    if isinstance(headers, dict):
        hs.extend(headers.items())
    elif headers:
        hs.extend(headers)
    c = client or httpx
    return c.post(url, content=call_body(method=method), headers=hs, timeout=10)


def upstream_headers(r: httpx.Response) -> dict[str, str]:
    """The headers the header-echo upstream received (fails loudly if the request never got there)."""
    assert r.status_code == 200, f"{r.status_code} {r.headers} {r.text}"
    return r.json()["result"]["headers"]


def challenge(r: httpx.Response) -> dict[str, str]:
    """The parameters of the response's Bearer `WWW-Authenticate` challenge."""
    value = r.headers.get("www-authenticate")
    assert value is not None, f"no WWW-Authenticate on {r.status_code}: {r.headers}"
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', value))


def assert_jsonrpc_error(r: httpx.Response) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["jsonrpc"] == "2.0"
    assert isinstance(body["error"]["code"], int)
    assert body["error"]["message"]
    assert "result" not in body
    return body["error"]


# ---------------------------------------------------------------------------------------------
# Valid tokens: the upstream learns who is calling, and never sees the token
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_passes_and_the_upstream_sees_the_subject_but_not_the_token(gateway, issuer, alg):
    r = post(gateway.url(), issuer.token("alice", alg=alg))

    seen = upstream_headers(r)
    assert seen["x-mcp-subject"] == "alice"
    assert "authorization" not in seen
    assert "x-mcp-groups" not in seen  # the token has no groups
    assert "x-mcp-tenant" not in seen  # the provider maps no tenant


def test_groups_and_a_mapped_tenant_claim_reach_the_upstream_as_identity_headers(procs, echo, issuer):
    envoy = procs.gateway({"echo": echo}, filter_config(issuer, issuer.provider(claims={"tenant": "tid"})))

    r = post(envoy.url(), issuer.token("bob", alg="ES256", groups=["eng", "oncall"], tid="acme"))

    seen = upstream_headers(r)
    assert seen["x-mcp-subject"] == "bob"
    assert seen["x-mcp-groups"] == "eng,oncall"
    assert seen["x-mcp-tenant"] == "acme"
    assert "authorization" not in seen


def test_identity_headers_a_client_sends_are_replaced_by_the_verified_identity(gateway, issuer):
    spoofed = {"x-mcp-subject": "root", "x-mcp-groups": "admins", "x-mcp-tenant": "x"}

    seen = upstream_headers(post(gateway.url(), issuer.token("alice"), spoofed))

    assert seen["x-mcp-subject"] == "alice"
    assert "x-mcp-groups" not in seen  # alice's token has no groups: the spoofed value is gone, not kept
    assert "x-mcp-tenant" not in seen
    assert "root" not in json.dumps(seen) and "admins" not in json.dumps(seen)


def test_every_copy_of_a_repeated_spoofed_identity_header_is_removed(gateway, issuer):
    spoofed = [("x-mcp-subject", "root"), ("x-mcp-subject", "admin"), ("x-mcp-groups", "a"), ("x-mcp-groups", "b")]

    seen = upstream_headers(post(gateway.url(), issuer.token("alice"), spoofed))

    assert seen["x-mcp-subject"] == "alice"
    assert "x-mcp-groups" not in seen


def test_a_token_expired_by_less_than_the_leeway_still_passes(gateway, issuer):
    seen = upstream_headers(post(gateway.url(), issuer.token("alice", iat=_now() - 600, exp=_now() - 5)))

    assert seen["x-mcp-subject"] == "alice"


def test_the_bearer_scheme_is_case_insensitive(gateway, issuer):
    r = post(gateway.url(), None, {"authorization": f"bEaReR {issuer.token('alice')}"})

    assert upstream_headers(r)["x-mcp-subject"] == "alice"


def test_identity_headers_a_client_sends_never_reach_the_upstream_on_an_anonymous_call(procs, echo, issuer):
    envoy = procs.gateway({"echo": echo}, filter_config(issuer, anonymous_methods=["ping"]))
    spoofed = {"x-mcp-subject": "root", "x-mcp-groups": "admins", "x-mcp-tenant": "x"}

    seen = upstream_headers(post(envoy.url(), None, spoofed, method="ping"))

    assert not {"x-mcp-subject", "x-mcp-groups", "x-mcp-tenant"} & seen.keys(), seen


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "alice\r\nx-injected: 1"},
        {"sub": "al\x00ice"},
        {"sub": "bob", "groups": ["eng\r\nx-injected: 1"]},
        {"sub": "bob", "tid": "acme\nx-injected: 1"},
    ],
    ids=["crlf_in_sub", "nul_in_sub", "crlf_in_group", "lf_in_tenant"],
)
def test_a_signed_claim_that_cannot_be_a_header_value_is_refused_as_an_invalid_token(procs, echo, issuer, claims):
    """A verified token can still carry bytes no header may hold. The module must refuse it
    itself (401 invalid_token, JSON-RPC body), not hand Envoy an identity header its upstream
    codec then rejects with a bare 503 that looks like an upstream failure."""
    envoy = procs.gateway({"echo": echo}, filter_config(issuer, issuer.provider(claims={"tenant": "tid"})))
    claims = dict(claims)

    r = post(envoy.url(), issuer.token(claims.pop("sub"), **claims))

    assert r.status_code == 401, f"{r.status_code} {r.headers.get('content-type')} {r.text!r}"
    assert challenge(r)["error"] == "invalid_token"
    assert_jsonrpc_error(r)


def test_a_group_name_containing_a_comma_cannot_smuggle_an_extra_group_upstream(gateway, issuer):
    """`x-mcp-groups` is a comma-joined list: a single group named `eng,admins` (LDAP DNs look
    like this) must not read upstream as the two groups `eng` and `admins`. Refusing the token,
    dropping the group or encoding it are all fine; ambiguity is not."""
    r = post(gateway.url(), issuer.token("bob", groups=["eng,admins"]))

    if r.status_code == 200:
        groups = upstream_headers(r).get("x-mcp-groups", "")
        assert "admins" not in groups.split(","), f"x-mcp-groups: {groups!r}"
    else:
        assert r.status_code in (401, 403), r.text


# ---------------------------------------------------------------------------------------------
# Bad tokens: 401 invalid_token with an RFC 9728 pointer, and a JSON-RPC body
# ---------------------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


BAD_TOKENS = {
    "expired": lambda i: i.token(iat=_now() - 600, exp=_now() - 120),
    "not_yet_valid": lambda i: i.token(nbf=_now() + 120),
    "wrong_issuer": lambda i: i.token(iss="https://evil.test"),
    "wrong_audience": lambda i: i.token(aud="http://localhost:10000/other"),
    "unknown_kid": lambda i: i.token(kid="rsa-404"),
    "bad_signature": lambda i: i.token(key=i.other_rsa_key, kid="rsa-1"),
    "alg_none": lambda i: i.unsigned_token(),
    "hs256_with_public_key": lambda i: i.hs256_with_public_key(),
    "string_exp": lambda i: i.token(exp=str(_now() + 300)),
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_an_invalid_token_gets_401_invalid_token_with_resource_metadata_and_a_jsonrpc_body(gateway, issuer, kind):
    r = post(gateway.url(), BAD_TOKENS[kind](issuer))

    assert r.status_code == 401, r.text
    c = challenge(r)
    assert c["resource_metadata"] == METADATA_URL
    assert c["error"] == "invalid_token"
    assert f'resource_metadata="{METADATA_URL}"' in r.headers["www-authenticate"]
    assert_jsonrpc_error(r)


def test_a_missing_token_gets_401_with_resource_metadata_and_no_error_code(gateway):
    r = post(gateway.url(), None)

    assert r.status_code == 401, r.text
    c = challenge(r)
    assert c["resource_metadata"] == METADATA_URL
    assert "error" not in c  # RFC 6750 §3.1: no error code when no credentials were sent
    assert_jsonrpc_error(r)


def test_a_get_stream_without_a_token_gets_401_too(gateway):
    r = httpx.get(gateway.url(), headers={"accept": "text/event-stream"}, timeout=10)

    assert r.status_code == 401, r.text
    assert challenge(r)["resource_metadata"] == METADATA_URL


def test_a_non_bearer_scheme_gets_401_with_a_plain_challenge(gateway):
    r = post(gateway.url(), None, {"authorization": "Basic YWxpY2U6c2VjcmV0"})

    assert r.status_code == 401, r.text
    c = challenge(r)
    assert c["resource_metadata"] == METADATA_URL
    assert "error" not in c


def test_a_token_without_the_required_scope_gets_403_insufficient_scope(gateway, issuer):
    r = post(gateway.url(), issuer.token("alice", scope="read write"))

    assert r.status_code == 403, r.text
    c = challenge(r)
    assert c["error"] == "insufficient_scope"
    assert c["scope"] == "mcp"
    assert c["resource_metadata"] == METADATA_URL
    assert_jsonrpc_error(r)


def test_two_authorization_headers_get_400_invalid_request(gateway, issuer):
    tok = issuer.token("alice")
    r = post(gateway.url(), None, [("authorization", f"Bearer {tok}"), ("authorization", f"Bearer {tok}")])

    assert r.status_code == 400, r.text
    assert challenge(r)["error"] == "invalid_request"
    assert_jsonrpc_error(r)


# ---------------------------------------------------------------------------------------------
# RFC 9728 protected-resource metadata
# ---------------------------------------------------------------------------------------------


def test_the_protected_resource_metadata_is_served_without_a_token(gateway, issuer):
    r = httpx.get(gateway.url(path=METADATA_PATH), timeout=10)

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["resource"] == issuer.audience
    assert issuer.issuer in doc["authorization_servers"]
    assert "header" in doc["bearer_methods_supported"]
    assert doc.get("scopes_supported") == ["mcp"]


# ---------------------------------------------------------------------------------------------
# Anonymous methods, revocation, what the upstream is told
# ---------------------------------------------------------------------------------------------


def test_an_anonymous_method_passes_without_a_token_and_other_methods_still_need_one(procs, echo, issuer):
    envoy = procs.gateway({"echo": echo}, filter_config(issuer, anonymous_methods=["ping"]))

    ping = post(envoy.url(), None, method="ping")
    assert ping.status_code == 200, ping.text
    assert "x-mcp-subject" not in upstream_headers(ping)

    r = post(envoy.url(), None, method="tools/call")
    assert r.status_code == 401, r.text
    c = challenge(r)
    assert c["resource_metadata"] == METADATA_URL
    assert "error" not in c
    assert assert_jsonrpc_error(r) and r.json()["id"] == 1  # refused per message: the id is known

    # A bad token never downgrades to anonymous, even for an anonymous method.
    bad = post(envoy.url(), issuer.token("alice", exp=_now() - 120, iat=_now() - 600), method="ping")
    assert bad.status_code == 401, bad.text
    assert challenge(bad)["error"] == "invalid_token"


def test_a_revoked_subject_gets_401_while_others_still_pass(procs, echo, issuer):
    cfg = filter_config(issuer)
    cfg["revoked"] = {"subjects": ["mallory"]}
    envoy = procs.gateway({"echo": echo}, cfg)

    r = post(envoy.url(), issuer.token("mallory"))
    assert r.status_code == 401, r.text
    assert challenge(r)["error"] == "invalid_token"
    assert_jsonrpc_error(r)

    assert upstream_headers(post(envoy.url(), issuer.token("alice")))["x-mcp-subject"] == "alice"


def test_a_revoked_token_id_gets_401_while_other_tokens_of_the_same_subject_pass(procs, echo, issuer):
    cfg = filter_config(issuer)
    cfg["revoked"] = {"token_ids": ["leaked-1"]}
    envoy = procs.gateway({"echo": echo}, cfg)

    assert post(envoy.url(), issuer.token("alice", jti="leaked-1")).status_code == 401
    assert upstream_headers(post(envoy.url(), issuer.token("alice", jti="fresh-2")))["x-mcp-subject"] == "alice"


def test_pass_authorization_forwards_the_clients_token(procs, echo, issuer):
    cfg = filter_config(issuer)
    cfg["upstream"] = {"pass_authorization": True}
    envoy = procs.gateway({"echo": echo}, cfg)
    tok = issuer.token("alice")

    seen = upstream_headers(post(envoy.url(), tok))

    assert seen["authorization"] == f"Bearer {tok}"
    assert seen["x-mcp-subject"] == "alice"


def test_a_configured_upstream_credential_replaces_the_clients_token(procs, echo, issuer):
    cfg = filter_config(issuer)
    cfg["upstream"] = {"credentials": {"echo": "Bearer static-upstream-cred"}}
    envoy = procs.gateway({"echo": echo}, cfg)

    seen = upstream_headers(post(envoy.url(), issuer.token("alice")))

    assert seen["authorization"] == "Bearer static-upstream-cred"
    assert seen["x-mcp-subject"] == "alice"


# ---------------------------------------------------------------------------------------------
# A real MCP client and server
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_real_mcp_client_with_a_bearer_token_lists_and_calls_tools_through_the_gateway(procs, issuer):
    upstream = procs.mcp_server("demo", json_response=False)
    cfg = filter_config(issuer)
    cfg["server"] = "demo"
    envoy = procs.gateway({"demo": upstream}, cfg)
    tok = issuer.token("alice")

    with anyio.fail_after(30):
        async with session(envoy.url(), headers={"Authorization": f"Bearer {tok}"}) as s:
            tools = await s.list_tools()
            assert "add" in {t.name for t in tools.tools}
            result = await s.call_tool("add", {"a": 2, "b": 40})
            assert not result.is_error
            assert result.content[0].text == "42"

    c = envoy.counters("mcp_policy.")
    assert c.get("mcp_policy.requests_total.server.demo.method.tools_call.decision.unchecked") == 1
    assert c.get("mcp_policy.rejected_total.server.demo.reason.unauthenticated", 0) == 0


@pytest.mark.anyio
async def test_a_real_mcp_client_without_a_token_cannot_connect(procs, issuer):
    upstream = procs.mcp_server("demo", json_response=False)
    cfg = filter_config(issuer)
    cfg["server"] = "demo"
    envoy = procs.gateway({"demo": upstream}, cfg)

    with anyio.fail_after(30):
        with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as whatever it likes; it must not connect
            async with session(envoy.url()) as s:
                await s.list_tools()

    assert envoy.counters().get("mcp_policy.rejected_total.server.demo.reason.unauthenticated", 0) >= 1
    assert envoy.counters().get("mcp_policy.requests_total.server.demo.method.tools_list.decision.unchecked", 0) == 0


# ---------------------------------------------------------------------------------------------
# Envoy jwt_authn as the token verifier
# ---------------------------------------------------------------------------------------------


def jwt_authn_config() -> dict:
    return {"server": "echo", "identity": {"jwt_authn": {"payload_header": "x-jwt-payload"}, "required_scopes": ["mcp"]}}


def test_a_jwt_authn_payload_header_establishes_the_subject_and_is_not_forwarded(procs, echo, issuer):
    envoy = procs.gateway({"echo": echo}, jwt_authn_config())

    seen = upstream_headers(post(envoy.url(), None, {"x-jwt-payload": issuer.forwarded_payload("carol", groups=["eng"])}))

    assert seen["x-mcp-subject"] == "carol"
    assert seen["x-mcp-groups"] == "eng"
    assert "x-jwt-payload" not in seen


def test_a_jwt_authn_payload_that_is_not_base64url_json_gets_401(procs, echo):
    envoy = procs.gateway({"echo": echo}, jwt_authn_config())

    r = post(envoy.url(), None, {"x-jwt-payload": "not*base64"})

    assert r.status_code == 401, r.text
    assert challenge(r)["error"] == "invalid_token"


def test_two_jwt_authn_payload_headers_get_400(procs, echo, issuer):
    envoy = procs.gateway({"echo": echo}, jwt_authn_config())
    payloads = [("x-jwt-payload", issuer.forwarded_payload("carol")), ("x-jwt-payload", issuer.forwarded_payload("root"))]

    r = post(envoy.url(), None, payloads)

    assert r.status_code == 400, r.text
    assert challenge(r)["error"] == "invalid_request"


def jwt_authn_bootstrap(procs, echo, issuer: Issuer, requires: dict) -> dict:
    """The gateway bootstrap with Envoy's own jwt_authn filter (inline JWKS) in front of the module."""
    b = gateway_bootstrap({"echo": echo.port}, jwt_authn_config(), access_log=procs.log_dir / "access.log")
    hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt_filter = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"test": issuer.jwt_authn_provider("x-jwt-payload")},
            "rules": [{"match": {"prefix": "/"}, "requires": requires}],
        },
    }
    at = next(i for i, f in enumerate(hcm["http_filters"]) if f["name"] == "envoy.filters.http.dynamic_modules")
    hcm["http_filters"].insert(at, jwt_filter)
    return b


def test_the_module_reads_the_payload_envoys_jwt_authn_filter_verified(procs, echo, issuer):
    envoy = procs.envoy(jwt_authn_bootstrap(procs, echo, issuer, {"provider_name": "test"}))

    seen = upstream_headers(post(envoy.url(), issuer.token("dave", alg="ES256", groups=["ops"])))
    assert seen["x-mcp-subject"] == "dave"
    assert seen["x-mcp-groups"] == "ops"
    assert "x-jwt-payload" not in seen
    assert "authorization" not in seen

    # jwt_authn refuses a bad token itself, before the module runs.
    bad = post(envoy.url(), issuer.token("dave", key=issuer.other_rsa_key, kid="rsa-1"))
    assert bad.status_code == 401


def test_envoys_jwt_authn_replaces_a_forged_payload_header_with_the_verified_one(procs, echo, issuer):
    envoy = procs.envoy(jwt_authn_bootstrap(procs, echo, issuer, {"provider_name": "test"}))
    forged = issuer.forwarded_payload("root", groups=["admins"])

    seen = upstream_headers(post(envoy.url(), issuer.token("dave"), {"x-jwt-payload": forged}))

    assert seen["x-mcp-subject"] == "dave"
    assert "x-mcp-groups" not in seen


ALLOW_MISSING = {"requires_any": {"requirements": [{"provider_name": "test"}, {"allow_missing": {}}]}}


@pytest.mark.parametrize("rule", ["allow_missing", "no_rule_matches"])
def test_envoys_jwt_authn_strips_a_forged_payload_header_even_when_it_verifies_nothing(procs, echo, issuer, rule):
    """A token-less request that jwt_authn lets through (`allow_missing`, or no rule for the
    path) must not smuggle an identity in via the payload header: Envoy removes every
    configured `forward_payload_header` from incoming requests before matching rules, so the
    module sees no credentials at all."""
    b = jwt_authn_bootstrap(procs, echo, issuer, ALLOW_MISSING if rule == "allow_missing" else {"provider_name": "test"})
    if rule == "no_rule_matches":
        hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"][0]["typed_config"]["rules"][0]["match"] = {"prefix": "/no-such-path"}
    envoy = procs.envoy(b)
    forged = issuer.forwarded_payload("root", groups=["admins"])

    r = post(envoy.url(), None, {"x-jwt-payload": forged})

    assert r.status_code == 401, r.text
    assert "error" not in challenge(r)  # the module saw no credentials, not a forged one
    assert r.json()["error"]["message"] == "authentication required"


# ---------------------------------------------------------------------------------------------
# mTLS: SPIFFE ids from verified client certificates
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mtls_gateway(procs, echo, tmp_path):
    ca = TestCa(tmp_path / "pki")
    b = gateway_bootstrap(
        {"echo": echo.port},
        {"server": "echo", "identity": {"mtls": {"trust_domains": ["example.org"]}}},
        access_log=procs.log_dir / "access.log",
    )
    chain = b["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = downstream_tls(ca.server(), ca)
    envoy = procs.envoy(b)
    url = envoy.url().replace("http://127.0.0.1", "https://localhost")
    return envoy, ca, url


def test_an_mtls_peer_with_a_trusted_spiffe_id_is_identified_by_it(mtls_gateway):
    envoy, ca, url = mtls_gateway
    spiffe = "spiffe://example.org/ns/agents/sa/bot"

    with httpx.Client(verify=ca.client_context(ca.spiffe_client(spiffe))) as client:
        seen = upstream_headers(post(url, None, {"x-mcp-subject": "root"}, client=client))

    assert seen["x-mcp-subject"] == spiffe
    assert "authorization" not in seen


def test_an_mtls_peer_from_another_trust_domain_gets_403(mtls_gateway):
    envoy, ca, url = mtls_gateway

    with httpx.Client(verify=ca.client_context(ca.spiffe_client("spiffe://evil.org/x"))) as client:
        r = post(url, None, client=client)

    assert r.status_code == 403, r.text
    assert "www-authenticate" not in r.headers  # TLS already authenticated the peer: no token challenge
    assert_jsonrpc_error(r)
    assert envoy.counters().get("mcp_policy.rejected_total.server.echo.reason.forbidden") == 1


def test_a_tls_client_without_a_certificate_is_refused_by_the_handshake(mtls_gateway):
    envoy, ca, url = mtls_gateway

    with httpx.Client(verify=ca.client_context(None)) as client:
        with pytest.raises(httpx.TransportError):
            post(url, None, client=client)


# ---------------------------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------------------------


def test_each_401_is_counted_as_unauthenticated(gateway, issuer):
    assert gateway.counters().get(UNAUTHENTICATED, 0) == 0

    assert post(gateway.url(), None).status_code == 401
    assert post(gateway.url(), issuer.unsigned_token()).status_code == 401
    assert post(gateway.url(), issuer.token(aud="http://localhost:10000/other")).status_code == 401
    assert post(gateway.url(), issuer.token("alice")).status_code == 200
    assert post(gateway.url(), issuer.token("alice", scope="other")).status_code == 403

    c = gateway.counters("mcp_policy.")
    assert c.get(UNAUTHENTICATED) == 3, c
    assert c.get("mcp_policy.rejected_total.server.echo.reason.forbidden") == 1, c
