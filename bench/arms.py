"""What each benchmark arm runs: one policy, expressed for every gateway under test.

Arms (all in front of the same canned responder, `bench/responder`):
  upstream  the responder directly (no proxy)
  envoy     Envoy 1.40 as a plain HTTP proxy (router only)
  native    Envoy + jwt_authn (RS256, JWKS inline, verified-token cache) + envoy.filters.http.mcp +
            RBAC (a DENY and an ALLOW filter) doing the closest equivalent of POLICY; tools/list is
            not filtered (the native filters cannot rewrite responses)
  module    Envoy + our module: JWT identity + POLICY in enforce mode + per-principal list rewriting
  litellm   LiteLLM proxy's MCP gateway (see python_gateways.py)
  contextforge  MCP ContextForge gateway (see python_gateways.py)

Virtual-server arms, in front of three more responder processes (VS_BACKENDS; the last one can
be made slower with `--delay-us`), each reachable on its own single-server route `/<name>/mcp`:
  vs_envoy  Envoy alone over the three backends (the "one backend alone" baseline)
  vserver   Envoy + our module: the same single-server routes (JWT + POLICY, as `module`) plus
            the virtual server VS_NAME on `/vs/mcp` over the three backends and its dispatch route

Every Envoy arm has the same listener, route, cluster and no access log, so the differences
between arms are the HTTP filters alone (the virtual-server arms: the same listener and
clusters, and the routes a virtual server needs).
"""

from __future__ import annotations

import base64
import copy
import json
import os
from typing import Any

# The policy under test: a realistic shape (groups, a glob deny, an argument constraint), the
# same as integration/test_policy.py but over the responder's catalogue (`echo` plus
# get_/list_/search_/create_/update_/delete_item_N).
POLICY: dict[str, Any] = {
    "mode": "enforce",
    "servers": {"bench": {}},
    "rules": [
        {"id": "admins-all", "effect": "allow", "principals": [{"groups": ["admins"]}],
         "tools": ["*"], "resources": ["*"], "prompts": ["*"], "methods": ["*"]},
        {"id": "devs-read", "effect": "allow", "principals": [{"groups": ["devs"]}],
         "tools": ["echo", "get_*", "list_*", "search_*"]},
        {"id": "devs-acme-write", "effect": "allow", "principals": [{"groups": ["devs"]}],
         "tools": ["create_*", "update_*"],
         "arguments": {"repo": {"patterns": ["acme/*"]}, "limit": {"type": "integer", "maximum": 100, "optional": True}}},
        {"id": "contractors-echo", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo"]},
        {"id": "nobody-deletes", "effect": "deny", "principals": [{}], "tools": ["delete_*"]},
    ],
}

PEOPLE = {"alice": ["admins"], "bob": ["devs"], "carol": ["contractors"], "dave": ["devs"]}

SERVER = "bench"


def module_filter_config(issuer) -> dict[str, Any]:
    return {
        "server": SERVER,
        "identity": {"providers": [issuer.provider()], "resource": issuer.audience},
        "policy": POLICY,
    }


# ------------------------------------------------------------------------------------------
# Envoy bootstraps
# ------------------------------------------------------------------------------------------


def envoy_bootstrap(upstream_port: int, http_filters: list[dict[str, Any]]) -> dict[str, Any]:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "mcp_gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "bench",
                        "codec_type": "AUTO",
                        "route_config": {"name": "bench", "virtual_hosts": [{
                            "name": "bench", "domains": ["*"],
                            "routes": [{
                                "match": {"prefix": "/"},
                                "metadata": {"filter_metadata": {"mcp_policy": {"server": SERVER}}},
                                "route": {"cluster": "upstream", "timeout": "0s"},
                            }],
                        }]},
                        "http_filters": [*http_filters, router],
                    },
                }]}],
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "2s",
                # The responder is fast; allow enough pooled connections for every client one.
                "circuit_breakers": {"thresholds": [{"max_connections": 4096, "max_pending_requests": 4096, "max_requests": 4096}]},
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
            }],
        },
    }


def module_filters(issuer, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    config = module_filter_config(issuer) if config is None else config
    return [{
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "mcp_policy", "do_not_close": True, "metrics_namespace": "mcp_policy"},
            "filter_name": "mcp_policy",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
        },
    }]


# envoy.filters.http.mcp (1.40) writes method, id and params.name to dynamic metadata under its own
# filter name (checked with an access log on the real binary; older docs say `mcp_proxy`).
MCP_NS = "envoy.filters.http.mcp"


def _mcp(path: list[str], value: dict[str, Any]) -> dict[str, Any]:
    return {"sourced_metadata": {"metadata_matcher": {"filter": MCP_NS, "path": [{"key": k} for k in path], "value": value}}}


def _exact(s: str) -> dict[str, Any]:
    return {"string_match": {"exact": s}}


def _prefix(s: str) -> dict[str, Any]:
    return {"string_match": {"prefix": s}}


def _any_of(*matchers: dict[str, Any]) -> dict[str, Any]:
    return matchers[0] if len(matchers) == 1 else {"or_match": {"value_matchers": list(matchers)}}


def _group(g: str) -> dict[str, Any]:
    # jwt_authn's payload_in_metadata: the verified payload under envoy.filters.http.jwt_authn.
    return {"sourced_metadata": {"metadata_matcher": {
        "filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "groups"}],
        "value": {"list_match": {"one_of": _exact(g)}}}}}


def _tool_call(*name_matchers: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rules = [_mcp(["method"], _exact("tools/call")), _mcp(["params", "name"], _any_of(*name_matchers))]
    return {"and_rules": {"rules": rules + (extra or [])}}


def native_filters(issuer) -> list[dict[str, Any]]:
    """jwt_authn + mcp + RBAC(DENY) + RBAC(ALLOW): POLICY as close as Envoy's own filters get."""
    jwt_authn = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": {
                "issuer": issuer.issuer,
                "audiences": [issuer.audience],
                "local_jwks": {"inline_string": json.dumps(issuer.jwks())},
                "payload_in_metadata": "payload",
                # Like the module's per-worker token cache: verify a token once, then look it up.
                "jwt_cache_config": {"jwt_cache_size": 1024},
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }
    mcp = {"name": "envoy.filters.http.mcp", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.mcp.v3.Mcp",
        # By default only params.name is extracted; a method config replaces that default, so name both.
        "parser_config": {"methods": [{"method": "tools/call", "extraction_rules": [{"path": "params.name"}, {"path": "params.arguments.repo"}]}]},
    }}
    deny = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "DENY", "policies": {
                "nobody-deletes": {"permissions": [_tool_call(_prefix("delete_"))], "principals": [{"any": True}]},
            }},
        },
    }
    baseline_methods = ["initialize", "notifications/initialized", "ping", "tools/list"]
    allow = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {
                "baseline": {"permissions": [_mcp(["method"], _any_of(*map(_exact, baseline_methods)))], "principals": [{"any": True}]},
                "admins-all": {"permissions": [{"any": True}], "principals": [_group("admins")]},
                "devs-read": {"permissions": [_tool_call(_exact("echo"), _prefix("get_"), _prefix("list_"), _prefix("search_"))],
                              "principals": [_group("devs")]},
                "devs-acme-write": {"permissions": [_tool_call(_prefix("create_"), _prefix("update_"),
                                                               extra=[_mcp(["params", "arguments", "repo"], _prefix("acme/"))])],
                                    "principals": [_group("devs")]},
                "contractors-echo": {"permissions": [_tool_call(_exact("echo"))], "principals": [_group("contractors")]},
            }},
        },
    }
    return [jwt_authn, mcp, deny, allow]


# ------------------------------------------------------------------------------------------
# Virtual server (docs/virtual-server.md): one endpoint over three backends
# ------------------------------------------------------------------------------------------

# The backends, in order; the last is the one `--vs-slow-us` slows down. Each is its own
# responder process and its own Envoy cluster; its names are exposed as `<name>__<tool>`.
VS_BACKENDS = ["b1", "b2", "b3"]
VS_NAME = "vs"
VS_PATH = "/vs/mcp"


def vserver_filter_config(issuer, tools: int) -> dict[str, Any]:
    """The `module` arm's config (same identity, same POLICY, `bench` for the single-server
    routes) plus one virtual server over VS_BACKENDS, each listing `tools` tools. No session
    key is reused between runs: 32 random bytes, base64, as the config asks."""
    cfg = module_filter_config(issuer)
    cfg["virtual_servers"] = {VS_NAME: {
        "backends": [{"name": b, "cluster": b, "path": f"/mcp?tools={tools}"} for b in VS_BACKENDS],
        "session_keys": [{"id": "bench", "key": base64.b64encode(os.urandom(32)).decode()}],
    }}
    return cfg


def vs_bootstrap(upstream_port: int, backend_ports: dict[str, int], http_filters: list[dict[str, Any]],
                 virtual: bool) -> dict[str, Any]:
    """`envoy_bootstrap` plus a cluster and a single-server route `/<name>/mcp` per backend (route
    metadata: server `bench`, as on `/`), and with `virtual` the virtual server on VS_PATH and
    its dispatch route, shaped by the integration harness's own helper."""
    import harness  # integration/harness.py, on sys.path in run.py and profile.py

    b = envoy_bootstrap(upstream_port, http_filters)
    hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    template = b["static_resources"]["clusters"][0]
    for name, port in backend_ports.items():
        c = copy.deepcopy(template)
        c["name"] = c["load_assignment"]["cluster_name"] = name
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = port
        b["static_resources"]["clusters"].append(c)
    routes[0:0] = [{
        "match": {"path": f"/{name}/mcp"},
        "metadata": {"filter_metadata": {"mcp_policy": {"server": SERVER}}},
        "route": {"cluster": name, "timeout": "0s"},
    } for name in backend_ports]
    if virtual:
        harness.add_virtual_server_routes(b, VS_NAME, VS_PATH, VS_BACKENDS[0])
    return b
