//! Fake-host tests of the policy's `limits` in the filter: the (N+1)th call, budgets, audit,
//! batches and concurrency holds given back when the stream ends. The counter table is the
//! process-wide one, so every test uses its own subjects.

use crate::fake::FakeHost;
use crate::filter::{HeadersStatus, McpFilter, Runtime};
use crate::stats::Stats;
use crate::tests_policy::{token, AUD, ISS, JWKS};
use mcp_policy_core::config::FilterConfig;
use serde_json::{json, Value};

fn runtime(mode: &str) -> Runtime {
    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    let config = json!({
        "server": "gh",
        "identity": {"providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "jwks": jwks}], "resource": AUD},
        "policy": {
            "servers": {"gh": {"mode": mode}},
            "rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}],
            "limits": {
                "costs": [{"tools": ["search"], "cost": 10}],
                "rules": [
                    {"id": "per-user", "tools": ["echo"], "calls": {"max": 2, "per": "hour"}},
                    {"id": "budget", "tools": ["search", "list"], "budget": {"max": 21, "per": "day"}},
                    {"id": "inflight", "tools": ["slow"], "concurrent": 1},
                    {"id": "fleet", "tools": ["fleet"], "scope": "global", "calls": {"max": 5, "per": "minute"}}
                ]
            }
        }
    });
    Runtime {
        config: FilterConfig::from_json(config.to_string().as_bytes()).expect("test config"),
        stats: Stats::for_tests(),
    }
}

fn call(rt: &Runtime, f: &mut McpFilter, who: &str, body: &str) -> FakeHost {
    let mut h = FakeHost::post(body)
        .with_header(":authority", "gw.example")
        .with_header("authorization", &format!("Bearer {}", token(who, &[])));
    if f.on_request_headers(rt, &mut h, false) == HeadersStatus::StopIteration && !h.replies.is_empty() {
        return h;
    }
    let _ = f.on_request_body(rt, &mut h, true);
    h
}

fn tool(name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}}).to_string()
}

fn once(rt: &Runtime, who: &str, name: &str) -> FakeHost {
    call(rt, &mut McpFilter::new(), who, &tool(name))
}

#[test]
fn the_third_call_is_refused_with_429_retry_after_and_the_limit_named() {
    let rt = runtime("enforce");
    for _ in 0..2 {
        let h = once(&rt, "lim-a", "echo");
        assert!(h.replies.is_empty());
        assert_eq!(h.metadata.get("cost").map(String::as_str), Some("1"));
    }
    let h = once(&rt, "lim-a", "echo");
    let r = &h.replies[0];
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .headers
        .iter()
        .find(|(k, _)| *k == "retry-after")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32029);
    assert_eq!(body["error"]["data"]["limit"], "per-user");
    assert_eq!(body["error"]["data"]["retry_after"], retry);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 2 calls per hour"));
    assert_eq!(h.metadata["decision"], "limit");
    assert_eq!(h.metadata["limit"], "per-user");
    assert_eq!(
        h.counter(Stats::for_tests().requests_total, &["gh", "tools_call", "limit"]),
        1
    );
    assert_eq!(h.counter(Stats::for_tests().rejected_total, &["gh", "rate_limited"]), 1);
    // Someone else, and another tool, are not affected.
    assert!(once(&rt, "lim-b", "echo").replies.is_empty());
    assert!(once(&rt, "lim-a", "other").replies.is_empty());
}

#[test]
fn budget_charges_weights() {
    let rt = runtime("enforce");
    assert!(once(&rt, "bud-a", "search").replies.is_empty());
    assert!(once(&rt, "bud-a", "search").replies.is_empty());
    let h = once(&rt, "bud-a", "search");
    assert_eq!(h.replies[0].status, 429);
    assert_eq!(h.metadata["limit"], "budget");
    // One unit is left for a cheap call.
    assert!(once(&rt, "bud-a", "list").replies.is_empty());
    assert_eq!(once(&rt, "bud-a", "list").replies[0].status, 429);
}

#[test]
fn audit_mode_forwards_and_logs_would_limit() {
    let rt = runtime("audit");
    for _ in 0..2 {
        assert!(once(&rt, "aud-a", "echo").replies.is_empty());
    }
    let h = once(&rt, "aud-a", "echo");
    assert!(h.replies.is_empty());
    assert_eq!(h.metadata["decision"], "would_limit");
    assert_eq!(h.metadata["limit"], "per-user");
    assert_eq!(
        h.counter(Stats::for_tests().requests_total, &["gh", "tools_call", "would_limit"]),
        1
    );
}

#[test]
fn concurrency_hold_is_released_when_the_stream_ends() {
    let rt = runtime("enforce");
    let mut first = McpFilter::new();
    assert!(call(&rt, &mut first, "conc-a", &tool("slow")).replies.is_empty());
    assert_eq!(once(&rt, "conc-a", "slow").replies[0].status, 429);
    drop(first);
    assert!(once(&rt, "conc-a", "slow").replies.is_empty());
}

#[test]
fn global_limits_become_the_rl_descriptor() {
    let rt = runtime("enforce");
    let h = once(&rt, "glob-a", "fleet");
    assert!(h.replies.is_empty());
    let rl = &h.metadata["rl"];
    assert!(rl.starts_with("fleet=") && rl.len() == 6 + 16, "{rl}");
    assert!(!once(&rt, "glob-a", "echo").metadata.contains_key("rl"));
}

#[test]
fn a_limited_call_in_a_batch_is_answered_in_the_batch() {
    let rt = runtime("enforce");
    let batch = |id: u32| {
        json!([
            {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {}}},
            {"jsonrpc": "2.0", "id": id + 1, "method": "tools/call", "params": {"name": "other", "arguments": {}}}
        ])
        .to_string()
    };
    let mut h = call(&rt, &mut McpFilter::new(), "batch-a", &batch(1));
    assert!(h.replies.is_empty());
    h = call(&rt, &mut McpFilter::new(), "batch-a", &batch(3));
    assert!(h.replies.is_empty());
    let mut f = McpFilter::new();
    h = call(&rt, &mut f, "batch-a", &batch(5));
    assert!(h.replies.is_empty(), "the allowed element goes upstream");
    let forwarded: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(forwarded.as_array().unwrap().len(), 1);
    assert_eq!(forwarded[0]["id"], 6);
}

#[test]
fn a_call_policy_would_deny_in_audit_is_not_charged() {
    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    let config = json!({
        "server": "gh",
        "identity": {"providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "jwks": jwks}], "resource": AUD},
        "policy": {"servers": {"gh": {"mode": "audit"}},
                   "rules": [{"id": "echo-only", "effect": "allow", "principals": [{}], "tools": ["echo"]}],
                   "limits": {"rules": [{"id": "one", "calls": {"max": 1, "per": "day"}}]}}
    });
    let rt = Runtime {
        config: FilterConfig::from_json(config.to_string().as_bytes()).expect("test config"),
        stats: Stats::for_tests(),
    };
    for _ in 0..3 {
        let h = once(&rt, "auddeny-a", "other");
        assert_eq!(h.metadata["decision"], "audit_deny");
        assert!(!h.metadata.contains_key("limit"));
    }
    assert_eq!(once(&rt, "auddeny-a", "echo").metadata["decision"], "allow");
    assert_eq!(once(&rt, "auddeny-a", "echo").metadata["decision"], "would_limit");
}
