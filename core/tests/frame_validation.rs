//! Malformed-input regressions for the wire layer: every one of these must be refused (or
//! parsed identically however it is chunked), never accepted half-way and never panic.

use mcp_policy_core::jsonrpc;
use mcp_policy_core::mcp_headers::{self, McpHeaders, ParamRule};
use mcp_policy_core::rewrite::{rewrite_list, Kind, Rewrite};
use mcp_policy_core::sse::{Event, Parser};
use mcp_policy_core::strict_json::{self, StrictJsonError};
use mcp_policy_core::subject::Params;

const CALL: &str = r#"{"jsonrpc":"2.0","id":"req-1","method":"tools/call","params":{"name":"get_weather","arguments":{"location":"Seattle, WA","units":["c","f"],"n":1.5e2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a","inputSchema":{"type":"object","properties":{"x":{"type":"string"}}}},{"name":"b","description":"d\"q"},{"name":"c"}],"nextCursor":"abc"}}"#;

#[test]
fn every_truncation_of_a_request_is_refused_by_the_strict_check() {
    for cut in 0..CALL.len() {
        let prefix = &CALL.as_bytes()[..cut];
        let e = strict_json::check(prefix);
        assert!(matches!(e, Err(StrictJsonError::Syntax { .. })), "cut at {cut}: {e:?}");
        assert!(
            jsonrpc::parse(prefix).is_err(),
            "jsonrpc accepted a truncation at {cut}"
        );
    }
    assert_eq!(strict_json::check(CALL.as_bytes()), Ok(()));
}

#[test]
fn every_truncation_of_a_list_response_is_refused_by_the_rewriter() {
    for cut in 0..LIST.len() {
        let r = rewrite_list(&LIST.as_bytes()[..cut], Kind::Tool, |_, n| n != "b");
        assert!(r.is_err(), "cut at {cut}: {r:?}");
    }
}

#[test]
fn duplicate_keys_smuggled_through_escapes_are_refused_at_any_depth() {
    let cases = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","n\u0061me":"rm_rf"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"path":"/tmp","p\u0061th":"/etc"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[{"k":1,"\u006b":2}]}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","\u006eame":"y"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","\ud83d\ude00":1,"😀":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"meth\u006fd":"tools/call","method":"ping"}"#,
    ];
    for body in cases {
        let e = strict_json::check(body.as_bytes());
        assert!(matches!(e, Err(StrictJsonError::DuplicateKey { .. })), "{body}: {e:?}");
        assert_eq!(e.unwrap_err().code(), -32600);
    }
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    for depth in [129usize, 10_000, 1_000_000] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(matches!(
            strict_json::check(body.as_bytes()),
            Err(StrictJsonError::TooDeep { .. })
        ));
        let obj = format!(r#"{}1{}"#, r#"{"a":"#.repeat(depth), "}".repeat(depth));
        assert!(matches!(
            strict_json::check(obj.as_bytes()),
            Err(StrictJsonError::TooDeep { .. })
        ));
        let list = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"a","x":{}{}}}]}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(rewrite_list(list.as_bytes(), Kind::Tool, |_, _| true).is_err());
    }
}

#[test]
fn non_utf8_and_control_characters_are_refused() {
    assert!(strict_json::check(b"{\"a\":\"\xc3\x28\"}").is_err());
    assert!(strict_json::check(b"{\"a\":\"tab\there\"}").is_err());
    assert!(rewrite_list(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"\xff\"}]}}",
        Kind::Tool,
        |_, _| true
    )
    .is_err());
}

#[test]
fn malformed_mcp_name_headers_are_header_mismatches() {
    let Ok(jsonrpc::Body::Single(m)) = jsonrpc::parse(CALL.as_bytes()) else {
        panic!()
    };
    let params = Params::parse(&m).unwrap();
    for bad in [
        "=?base64?***?=",
        "=?base64?SGVsbG8=x?=",
        "=?base64?/w==?=",
        "caf\u{e9}",
        "a\u{0}b",
    ] {
        let pairs = [
            (&b"MCP-Protocol-Version"[..], &b"2026-07-28"[..]),
            (&b"Mcp-Method"[..], &b"tools/call"[..]),
            (&b"Mcp-Name"[..], bad.as_bytes()),
        ];
        let headers = McpHeaders::collect(pairs).unwrap();
        let e = mcp_headers::check(&headers, &m, &params, ParamRule::SameNameArgument).unwrap_err();
        assert_eq!(
            (e.code(), e.http_status(), e.header.as_str()),
            (-32020, 400, "Mcp-Name"),
            "{bad:?}"
        );
    }
}

const STREAM: &[u8] = b"\xEF\xBB\xBF: hello\r\n\r\nevent: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"method\":\"notifications/progress\"}\r\n\r\nretry: 10\n\nid: 2\rdata:{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[]}}\r\r:tail\ndata: partial";

fn parse_chunked(stream: &[u8], cuts: &[usize]) -> (Vec<Event>, mcp_policy_core::sse::End) {
    let mut p = Parser::new();
    let mut events = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
        events.extend(p.push(&stream[at..c]).unwrap());
        at = c;
    }
    let end = p.finish().unwrap();
    (events, end)
}

#[test]
fn sse_parse_is_the_same_whatever_the_chunking() {
    let whole = parse_chunked(STREAM, &[]);
    assert_eq!(whole.0.len(), 4, "{:?}", whole.0);
    assert_eq!(
        whole.0[1].data(),
        Some("{\"jsonrpc\":\"2.0\",\n\"method\":\"notifications/progress\"}")
    );
    assert_eq!(whole.0[3].id(), Some("2"));
    assert!(whole.1.tail.is_some());
    // Ranges tile the stream.
    let mut at = 0;
    for e in &whole.0 {
        assert_eq!(e.range().start, at);
        at = e.range().end;
    }
    assert_eq!(whole.1.tail.clone().unwrap(), at..STREAM.len() as u64);

    for i in 0..=STREAM.len() {
        assert_eq!(parse_chunked(STREAM, &[i]), whole, "split at {i}");
        for j in i..=STREAM.len() {
            assert_eq!(parse_chunked(STREAM, &[i, j]), whole, "split at {i},{j}");
        }
    }
    let every: Vec<usize> = (1..STREAM.len()).collect();
    assert_eq!(parse_chunked(STREAM, &every), whole, "byte at a time");
}

#[test]
fn sse_stream_ending_in_cr_is_the_same_whatever_the_chunking() {
    let stream = b"data: a\r\rdata: b\r\r";
    let whole = parse_chunked(stream, &[]);
    assert_eq!(whole.0.len(), 1);
    assert_eq!(whole.1.event.as_ref().and_then(|e| e.data()), Some("b"));
    for i in 0..=stream.len() {
        assert_eq!(parse_chunked(stream, &[i]), whole, "split at {i}");
    }
}

#[test]
fn rewriting_one_sse_event_leaves_every_other_byte_untouched() {
    let stream: &[u8] = b": keepalive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\nevent: message\nid: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}\n\n";
    let mut p = Parser::new();
    let events = p.push(stream).unwrap();
    let mut out = Vec::new();
    let mut removed_total = 0;
    for e in &events {
        let r = e.range();
        let original = &stream[r.start as usize..r.end as usize];
        match e
            .data()
            .map(|d| rewrite_list(d.as_bytes(), Kind::Tool, |_, n| n != "b"))
        {
            Some(Ok(Rewrite::Rewritten { body, removed })) => {
                removed_total += removed;
                out.extend(e.with_data(std::str::from_utf8(&body).unwrap()));
            }
            Some(Ok(Rewrite::Unchanged)) | None => out.extend_from_slice(original),
            Some(Err(err)) => panic!("{err}"),
        }
    }
    assert_eq!(removed_total, 1);
    let expected: &[u8] = b": keepalive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\nevent: message\nid: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n";
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(expected));
}

#[test]
fn sse_garbage_does_not_panic() {
    let mut seed = 0x9e3779b97f4a7c15u64;
    for _ in 0..2000 {
        let mut p = Parser::with_limit(256);
        let len = (next(&mut seed) % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| b"data: \r\n:idevntry\xff\xef"[(next(&mut seed) % 16) as usize])
            .collect();
        let _ = p.push(&bytes);
        let _ = p.finish();
    }
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
