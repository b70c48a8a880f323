//! Tool-integrity costs: scanning and pin-checking lists of 10 / 100 / 1,000 real tools (the
//! clean corpus's tools, cycled with unique names), next to the list rewrite itself on the same
//! body for scale. `_cold` is a worker's first sight of each definition (parse, scan, pin);
//! `_warm` every later one (the per-worker cache: one hash and one compare per item).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mcp_policy_core::integrity::cache::ScanCache;
use mcp_policy_core::integrity::scan;
use mcp_policy_core::integrity::{canon, Integrity};
use mcp_policy_core::rewrite::{self, Kind};
use serde_json::Value;

fn tools(n: usize) -> Vec<Value> {
    let clean: Value = serde_json::from_str(include_str!("../tests/corpus/clean.json")).expect("corpus");
    let all: Vec<Value> = clean["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .flat_map(|s| s["tools"].as_array().cloned().unwrap_or_default())
        .collect();
    (0..n)
        .map(|i| {
            let mut t = all[i % all.len()].clone();
            t["name"] = Value::String(format!("{}_{i}", t["name"].as_str().unwrap_or("t")));
            t
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("integrity");
    for n in [10usize, 100, 1000] {
        let list = tools(n);
        let body =
            serde_json::to_vec(&serde_json::json!({"jsonrpc":"2.0","id":1,"result":{"tools":list}})).expect("body");
        let texts: Vec<(String, Vec<u8>)> = list
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or("").to_owned(),
                    serde_json::to_vec(t).expect("tool"),
                )
            })
            .collect();
        let refs: Vec<(Option<&str>, &[u8])> = texts.iter().map(|(n, t)| (Some(n.as_str()), t.as_slice())).collect();
        let pins: serde_json::Map<String, Value> = list
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or("").to_owned(),
                    Value::String(canon::pin(t)),
                )
            })
            .collect();
        let scan_only = Integrity::compile(
            serde_json::from_value(serde_json::json!({"servers":{"*":{"action":"hide"}}})).expect("spec"),
        )
        .expect("compile");
        let pinned = Integrity::compile(
            serde_json::from_value(
                serde_json::json!({"servers":{"*":{"action":"hide","drift":"quarantine","pins":{"tools":pins}}}}),
            )
            .expect("spec"),
        )
        .expect("compile");
        // Cold: a cache that keeps nothing (every item parsed, scanned and pinned, as the
        // first time a worker sees a definition). Warm: the same list again (every later time).
        let mut cold = ScanCache::with_limit(0);
        let mut warm = ScanCache::new();
        g.bench_with_input(BenchmarkId::new("list_rewrite_baseline", n), &n, |b, _| {
            b.iter(|| rewrite::rewrite_list(&body, Kind::Tool, |_, name| !name.ends_with("_3")).expect("rewrite"))
        });
        for (label, integ) in [("scan", &scan_only), ("scan_and_pin_check", &pinned)] {
            let s = integ.for_server("x").expect("server");
            g.bench_with_input(BenchmarkId::new(format!("{label}_cold"), n), &n, |b, _| {
                b.iter(|| s.judge_list(Kind::Tool, &refs, true, &[], &mut cold))
            });
            g.bench_with_input(BenchmarkId::new(format!("{label}_warm"), n), &n, |b, _| {
                b.iter(|| s.judge_list(Kind::Tool, &refs, true, &[], &mut warm))
            });
        }
        let names: Vec<&str> = texts.iter().map(|(n, _)| n.as_str()).collect();
        g.bench_with_input(BenchmarkId::new("name_collisions", n), &n, |b, _| {
            b.iter(|| scan::collisions(&names))
        });
        g.bench_with_input(BenchmarkId::new("pin_only", n), &n, |b, _| {
            b.iter(|| list.iter().map(canon::pin).count())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
