//! Policy decision cost: `decide` against policies of 10 / 100 / 1,000 rules (a mix of exact
//! and pattern tool rules, resource and method rules, deny rules, argument constraints, five
//! servers plus `"*"`), and list filtering of 10 / 100 / 1,000 tools through a
//! `PrincipalView`. Target: `decide` well under 1 µs, no allocation.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use mcp_policy_core::mcp::Method;
use mcp_policy_core::policy::{Kind, Policy, Request};
use mcp_policy_core::principal::{Principal, Source};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const SERVERS: [&str; 5] = ["github", "jira", "slack", "drive", "db"];

/// `n` rules in a deterministic, realistic mix.
fn policy(n: usize) -> Policy {
    let mut rules = Vec::with_capacity(n);
    for i in 0..n {
        let server = if i % 5 == 0 { "*" } else { SERVERS[i % SERVERS.len()] };
        let principals = match i % 4 {
            0 => json!([{ "groups": [format!("g{}", i % 20)] }]),
            1 => {
                json!([{ "groups": [format!("g{}", i % 20), "admins"] }, { "subjects": [format!("svc-{}-*", i % 7)] }])
            }
            2 => json!([{ "roles": [format!("r{}", i % 10)], "tenants": ["acme"] }]),
            _ => json!([{ "scopes": ["mcp:write"], "claims": { "/org/tier": ["gold", "platinum"] } }]),
        };
        let mut rule = json!({
            "id": format!("rule-{i}"),
            "effect": if i % 5 == 4 { "deny" } else { "allow" },
            "servers": [server],
            "principals": principals,
        });
        let r = rule.as_object_mut().unwrap();
        match i % 10 {
            0..=4 => {
                r.insert("tools".into(), json!([format!("tool_{i}"), format!("tool_{}", i + 1)]));
            }
            5 | 6 => {
                r.insert("tools".into(), json!([format!("ns{}_*", i % 50)]));
            }
            7 => {
                r.insert("tools".into(), json!([format!("tool_{i}")]));
                r.insert(
                    "arguments".into(),
                    json!({ "repo": { "patterns": ["acme/*"] }, "limit": { "maximum": 100, "optional": true } }),
                );
            }
            8 => {
                r.insert("resources".into(), json!([format!("file:///data/{i}/*")]));
            }
            _ => {
                r.insert("methods".into(), json!(["completion/complete", "logging/setLevel"]));
                r.insert("prompts".into(), json!([format!("prompt_{i}")]));
            }
        }
        rules.push(rule);
    }
    let servers: serde_json::Map<String, Value> = SERVERS.iter().map(|s| (s.to_string(), json!({}))).collect();
    let doc = json!({ "servers": servers, "rules": rules });
    Policy::from_json(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn principal() -> Principal {
    let mut p = Principal::anonymous();
    p.source = Source::Jwt;
    p.subject = "svc-3-reporter".into();
    p.issuer = "https://idp.acme.com".into();
    p.tenant = Some("acme".into());
    p.groups = (0..5)
        .map(|g| format!("g{}", g * 3))
        .chain(["staff".to_owned()])
        .collect();
    p.roles = vec!["r2".into(), "r7".into()];
    p.scopes = vec!["mcp:read".into(), "mcp:write".into()];
    p.claims = json!({ "org": { "tier": "gold" }, "email": "x@acme.com" })
        .as_object()
        .unwrap()
        .clone();
    p.normalize();
    p
}

fn bench_decide(c: &mut Criterion) {
    let who = principal();
    let args = RawValue::from_string(r#"{"repo":"acme/web","limit":50,"query":"fn main"}"#.to_owned()).unwrap();
    let mut g = c.benchmark_group("policy_decide");
    for n in [10usize, 100, 1000] {
        let p = policy(n);
        // An exact-name tool whose allow rule carries argument constraints (rules 7, 17, … sit
        // on "slack": 7 % 5 == 2).
        let constrained = format!("tool_{}", if n >= 100 { 57 } else { 7 });
        g.bench_with_input(BenchmarkId::new("tool_call_constrained", n), &n, |b, _| {
            b.iter(|| {
                p.decide(
                    black_box(&who),
                    black_box("slack"),
                    black_box(&Request::tool_call(&constrained, Some(&args))),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("tool_call_pattern", n), &n, |b, _| {
            b.iter(|| {
                p.decide(
                    black_box(&who),
                    black_box("github"),
                    black_box(&Request::tool_call("ns5_search", None)),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("tool_call_default_deny", n), &n, |b, _| {
            b.iter(|| {
                p.decide(
                    black_box(&who),
                    black_box("github"),
                    black_box(&Request::tool_call("unknown_tool", None)),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("method", n), &n, |b, _| {
            b.iter(|| {
                p.decide(
                    black_box(&who),
                    black_box("db"),
                    black_box(&Request::method(Method::CompletionComplete)),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("baseline", n), &n, |b, _| {
            b.iter(|| {
                p.decide(
                    black_box(&who),
                    black_box("db"),
                    black_box(&Request::method(Method::ToolsList)),
                )
            })
        });
    }
    g.finish();
}

fn bench_visible(c: &mut Criterion) {
    let who = principal();
    let p = policy(1000);
    let mut g = c.benchmark_group("policy_visible_1000_rules");
    for n in [10usize, 100, 1000] {
        let tools: Vec<String> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    format!("ns{}_tool", i % 60)
                } else {
                    format!("tool_{}", i * 7)
                }
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("view_then_filter", n), &n, |b, _| {
            b.iter(|| {
                let view = p.for_principal(black_box(&who), "github");
                tools.iter().filter(|t| view.visible(Kind::Tool, t)).count()
            })
        });
        g.bench_with_input(BenchmarkId::new("visible_each", n), &n, |b, _| {
            b.iter(|| {
                tools
                    .iter()
                    .filter(|t| p.visible(black_box(&who), "github", Kind::Tool, t))
                    .count()
            })
        });
    }
    g.finish();
}

/// A policy small enough for the per-thread visibility memo (`policy::seen`): a list the same
/// view saw before, answered as a whole (`list`: the rewrite memo recognised it) or name by
/// name (`memo`), against the index searched each time (`index`).
fn bench_visible_memo(c: &mut Criterion) {
    let who = principal();
    let p = policy(40);
    let mut g = c.benchmark_group("policy_visible_40_rules");
    for n in [100usize, 1000] {
        let tools: Vec<String> = (0..n).map(|i| format!("tool_{i}")).collect();
        g.bench_with_input(BenchmarkId::new("list", n), &n, |b, _| {
            b.iter(|| {
                let view = p.for_principal(black_box(&who), "github");
                let names = tools.iter().map(|t| Some(t.as_str()));
                view.visible_list(Kind::Tool, Some(1), names)
                    .iter()
                    .filter(|v| **v)
                    .count()
            })
        });
        g.bench_with_input(BenchmarkId::new("memo", n), &n, |b, _| {
            b.iter(|| {
                let view = p.for_principal(black_box(&who), "github");
                tools.iter().filter(|t| view.visible(Kind::Tool, t)).count()
            })
        });
        g.bench_with_input(BenchmarkId::new("index", n), &n, |b, _| {
            b.iter(|| {
                let view = p.for_principal(black_box(&who), "github");
                tools.iter().filter(|t| view.visible_uncached(Kind::Tool, t)).count()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decide, bench_visible, bench_visible_memo);
criterion_main!(benches);
