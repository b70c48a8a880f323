//! The wire layer end to end, as the filter drives it: strict check → envelope → subject →
//! header check on the way in; list rewriting on the way out. Plus differential checks of the
//! hand-written scanner against serde_json.

use mcp_policy_core::jsonrpc::{self, Body};
use mcp_policy_core::mcp::Method;
use mcp_policy_core::mcp_headers::{self, McpHeaders, ParamRule};
use mcp_policy_core::rewrite::{rewrite_list, Kind, Rewrite};
use mcp_policy_core::strict_json::{self, StrictJsonError};
use mcp_policy_core::subject::{Params, Subject};
use serde_json::Value;

#[test]
fn a_modern_tools_call_passes_every_request_check_and_yields_its_subject() {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"execute_sql","arguments":{"region":"us-west1","query":"SELECT 1"}}}"#;
    strict_json::check(body).unwrap();
    let Body::Single(m) = jsonrpc::parse(body).unwrap() else {
        panic!()
    };
    let method = Method::from_name(m.method().unwrap());
    let params = Params::parse(&m).unwrap();
    let Subject::Tool { name, arguments } = params.subject(method).unwrap() else {
        panic!()
    };
    assert_eq!(name, "execute_sql");
    assert_eq!(arguments.unwrap().get(), r#"{"region":"us-west1","query":"SELECT 1"}"#);
    assert_eq!(params.protocol_version().unwrap().as_deref(), Some("2026-07-28"));

    let schema = serde_json::json!({"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"query":{"type":"string"}}});
    let bindings = mcp_headers::param_bindings(&schema).unwrap();
    let pairs: [(&[u8], &[u8]); 5] = [
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"execute_sql"),
        (b"mcp-param-region", b"us-west1"),
        (b"content-type", b"application/json"),
    ];
    let headers = McpHeaders::collect(pairs).unwrap();
    mcp_headers::check(&headers, &m, &params, ParamRule::Bindings(&bindings)).unwrap();

    let routed_elsewhere: [(&[u8], &[u8]); 4] = [
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"execute_sql"),
        (b"mcp-param-region", b"eu-west1"),
    ];
    let headers = McpHeaders::collect(routed_elsewhere).unwrap();
    let e = mcp_headers::check(&headers, &m, &params, ParamRule::Bindings(&bindings)).unwrap_err();
    assert_eq!(e.header, "Mcp-Param-Region");
}

fn tools_list(n: usize) -> String {
    let tools: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"name":"tool_{i}","description":"Tool number {i}","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}}}}}}}}"#))
        .collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":"l","result":{{"tools":[{}],"nextCursor":"c","_meta":{{"ttl":30}}}}}}"#,
        tools.join(",")
    )
}

#[test]
fn rewriting_matches_a_semantic_filter_for_every_hidden_subset() {
    let body = tools_list(6);
    let original: Value = serde_json::from_str(&body).unwrap();
    for mask in 0u32..64 {
        let hidden = |name: &str| {
            let i: u32 = name.trim_start_matches("tool_").parse().unwrap();
            mask & (1 << i) != 0
        };
        let r = rewrite_list(body.as_bytes(), Kind::Tool, |k, n| {
            assert_eq!(k, Kind::Tool);
            !hidden(n)
        })
        .unwrap();
        let mut expected = original.clone();
        expected["result"]["tools"]
            .as_array_mut()
            .unwrap()
            .retain(|t| !hidden(t["name"].as_str().unwrap()));
        match r {
            Rewrite::Unchanged => assert_eq!(mask, 0),
            Rewrite::Rewritten { body: out, removed } => {
                assert_eq!(removed, mask.count_ones() as usize);
                let got: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(got, expected, "mask {mask:b}");
                strict_json::check(&out).unwrap();
            }
        }
    }
}

#[test]
fn kind_follows_the_list_method() {
    assert_eq!(Kind::of_list(Method::ToolsList), Some(Kind::Tool));
    assert_eq!(
        Kind::of_list(Method::ResourcesTemplatesList),
        Some(Kind::ResourceTemplate)
    );
    assert_eq!(Kind::of_list(Method::ToolsCall), None);
    for m in Method::ALL {
        assert_eq!(Kind::of_list(m).is_some(), m.is_list(), "{m:?}");
    }
}

/// Mutate a valid document many ways; the strict scanner must agree with serde_json on
/// validity (it may only additionally refuse duplicates, depth and lone surrogates in keys).
#[test]
fn strict_scanner_agrees_with_serde_json_on_mutated_documents() {
    let seed_doc = br#"{"jsonrpc":"2.0","id":-1.5e-3,"method":"tools/call","params":{"name":"n\u00e9\n","arguments":{"a":[true,false,null,0,{"b":"\\"}],"c":""}}}"#;
    let alphabet = b"{}[]:,\"\\ u0e.-+1tfnlrsa\n";
    let mut s = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut valid = 0;
    for _ in 0..20_000 {
        let mut doc = seed_doc.to_vec();
        for _ in 0..(next() % 3 + 1) {
            let at = (next() as usize) % doc.len();
            match next() % 3 {
                0 => doc[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    doc.remove(at);
                }
                _ => doc.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let ours = strict_json::check(&doc);
        let serde = serde_json::from_slice::<Value>(&doc);
        valid += usize::from(serde.is_ok());
        match (&ours, &serde) {
            (Ok(()), Ok(_)) | (Err(StrictJsonError::Syntax { .. }), Err(_)) => {}
            (Err(StrictJsonError::DuplicateKey { .. }), Ok(_)) => {}
            (Ok(()), Err(e)) if e.to_string().contains("surrogate") => {}
            _ => panic!(
                "disagree on {:?}: ours {ours:?}, serde {serde:?}",
                String::from_utf8_lossy(&doc)
            ),
        }
    }
    assert!(
        valid > 1_000,
        "too few mutations stayed valid ({valid}) for the comparison to mean much"
    );
}
