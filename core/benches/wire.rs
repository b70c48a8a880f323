//! Wire-layer costs on the request and response paths.
//!
//! - `request/tools_call`: what the filter does per `tools/call` body before a decision:
//!   strict duplicate/depth check, envelope parse, subject and `_meta` version.
//! - `rewrite/tools_list/N`: per-principal `tools/list` rewrite with realistic tools (a
//!   description and an `inputSchema` with a few typed properties), half of them hidden.
//! - `scan/tools_list/N` (the list memo answering: a list this thread walked before) against
//!   `scan_cold/tools_list/N` (the strict walk, memo bypassed).
//! - `args_digest/{canonical,reordered}`: the audit digest of a call's arguments as a client
//!   sends them (hashed as sent) and with members out of order (through `serde_json`), and
//!   `args_digest/reference` (the reference path on the first).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mcp_policy_core::audit;
use mcp_policy_core::jsonrpc::{self, Body};
use mcp_policy_core::mcp::Method;
use mcp_policy_core::rewrite::{memo, rewrite_list, Kind, Rewrite};
use mcp_policy_core::sse::Parser;
use mcp_policy_core::strict_json;
use mcp_policy_core::subject::{Params, Subject};
use serde_json::value::RawValue;

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"repo":"acme/widgets","query":"is:open label:bug","limit":20,"filters":{"assignee":"alice","labels":["bug","p1"]}},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"t-1"}}}"#;

fn tool(i: usize) -> String {
    format!(
        r#"{{"name":"tool_{i}","title":"Tool {i}","description":"Searches the issue tracker for items matching a query and returns up to `limit` results, newest first. Use filters to narrow by assignee and labels.","inputSchema":{{"type":"object","properties":{{"repo":{{"type":"string","description":"owner/name"}},"query":{{"type":"string","description":"search query"}},"limit":{{"type":"integer","minimum":1,"maximum":100,"default":20}},"filters":{{"type":"object","properties":{{"assignee":{{"type":"string"}},"labels":{{"type":"array","items":{{"type":"string"}}}}}}}}}},"required":["repo","query"]}},"annotations":{{"readOnlyHint":true}}}}"#
    )
}

fn tools_list(n: usize) -> Vec<u8> {
    let tools: Vec<String> = (0..n).map(tool).collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"tools":[{}],"nextCursor":"page-2","_meta":{{"ttl":300}}}}}}"#,
        tools.join(",")
    )
    .into_bytes()
}

fn request(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(CALL.len() as u64));
    g.bench_function("tools_call", |b| {
        b.iter(|| {
            let body = black_box(CALL);
            strict_json::check(body).unwrap();
            let Ok(Body::Single(m)) = jsonrpc::parse(body) else {
                unreachable!()
            };
            let method = Method::from_name(m.method().unwrap_or(""));
            let params = Params::parse(&m).unwrap();
            let subject = params.subject(method).unwrap();
            let version = params.protocol_version().unwrap();
            assert!(matches!(subject, Subject::Tool { .. }));
            black_box((subject, version));
        })
    });
    g.bench_function("strict_check_only", |b| {
        b.iter(|| strict_json::check(black_box(CALL)).unwrap())
    });
    g.finish();

    // The scan of a list answer alone, without the policy or the rewritten copy: `scan` as the
    // filter meets a list it met before (the memo recalls the `result` value by its bytes),
    // `scan_cold` as it meets a list the first time (envelope, names decoded, every other
    // value crossed by the fast validating skip).
    let mut g = c.benchmark_group("scan/tools_list");
    for n in [100usize, 1000] {
        let body = tools_list(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| black_box(mcp_policy_core::rewrite::scan(black_box(body)).unwrap().id()))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("scan_cold/tools_list");
    for n in [100usize, 1000] {
        let body = tools_list(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| {
                memo::without(|| {
                    black_box(mcp_policy_core::rewrite::scan(black_box(body)).unwrap());
                })
            })
        });
    }
    g.finish();

    // The arguments of `CALL`, members in the canonical order (as most clients' serialisers
    // happen to send them) and not.
    let canonical = r#"{"name":"search_issues","arguments":{"filters":{"assignee":"alice","labels":["bug","p1"]},"limit":20,"query":"is:open label:bug","repo":"acme/widgets"}}"#;
    let reordered = r#"{"name":"search_issues","arguments":{"repo":"acme/widgets","query":"is:open label:bug","limit":20,"filters":{"assignee":"alice","labels":["bug","p1"]}}}"#;
    let mut g = c.benchmark_group("args_digest");
    for (name, text) in [("canonical", canonical), ("reordered", reordered)] {
        let raw = RawValue::from_string(text.to_owned()).unwrap();
        assert_eq!(audit::args_digest(&raw), audit::digest_slow(&raw));
        g.bench_function(name, |b| b.iter(|| black_box(audit::args_digest(black_box(&raw)))));
    }
    let raw = RawValue::from_string(canonical.to_owned()).unwrap();
    g.bench_function("reference", |b| {
        b.iter(|| black_box(audit::digest_slow(black_box(&raw))))
    });
    g.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite/tools_list");
    for n in [10usize, 100, 1000] {
        let body = tools_list(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| {
                let r = rewrite_list(black_box(body), Kind::Tool, |_, name| {
                    name.as_bytes().last().is_some_and(|d| d % 2 == 0)
                })
                .unwrap();
                assert!(matches!(r, Rewrite::Rewritten { .. }));
                black_box(r)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sse");
    let body = tools_list(100);
    let mut stream = b"event: message\ndata: ".to_vec();
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b"\n\n");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("parse_100_tool_event_in_16k_chunks", |b| {
        b.iter(|| {
            let mut p = Parser::new();
            let mut n = 0;
            for chunk in black_box(&stream).chunks(16 * 1024) {
                n += p.push(chunk).unwrap().len();
            }
            assert_eq!(n, 1);
        })
    });
    g.finish();
}

criterion_group!(benches, request, rewrite);
criterion_main!(benches);
