//! Fake-host tests of identity, policy and list rewriting in the filter: the full decision
//! path without Envoy (real tokens signed with the core's test keys).

use crate::fake::FakeHost;
use crate::filter::{BodyStatus, HeadersStatus, McpFilter, Runtime};
use crate::stats::Stats;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_policy_core::config::FilterConfig;
use serde_json::{json, Value};

const RSA_PEM: &str = include_str!("../../core/tests/keys/rsa.pem");
pub(crate) const JWKS: &str = include_str!("../../core/tests/keys/jwks.json");
pub(crate) const ISS: &str = "https://idp.example";
pub(crate) const AUD: &str = "https://gw.example/mcp";

pub(crate) fn token(sub: &str, groups: &[&str]) -> String {
    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    let kid = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kty"] == "RSA"))
        .and_then(|k| k["kid"].as_str())
        .expect("an RSA key in the test JWKS")
        .to_owned();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid);
    let claims = json!({"iss": ISS, "aud": AUD, "sub": sub, "exp": 4_102_444_800u64, "scope": "mcp", "groups": groups});
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("key"),
    )
    .expect("sign")
}

fn runtime() -> Runtime {
    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    let config = json!({
        "server": "gh",
        "identity": {"providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "jwks": jwks}], "resource": AUD,
                     "anonymous_methods": ["ping"]},
        "policy": {"rules": [
            {"id": "devs", "effect": "allow", "principals": [{"groups": ["devs"]}], "tools": ["get_*", "echo"], "prompts": ["p1"]},
            {"id": "no-delete", "effect": "deny", "principals": [{}], "tools": ["delete_*"]},
            {"id": "anon-ping", "effect": "allow", "principals": [{"anonymous": true}], "methods": ["ping"]}
        ]},
        "revoked": {"subjects": ["mallory"]},
        "security": {"allowed_hosts": ["gw.example*"], "allowed_origins": ["https://app.example"]}
    });
    Runtime {
        config: FilterConfig::from_json(config.to_string().as_bytes()).expect("test config"),
        stats: Stats::for_tests(),
    }
}

fn post(body: &str, sub_groups: Option<(&str, &[&str])>) -> FakeHost {
    let mut h = FakeHost::post(body).with_header(":authority", "gw.example");
    if let Some((sub, groups)) = sub_groups {
        h = h.with_header("authorization", &format!("Bearer {}", token(sub, groups)));
    }
    h
}

fn request(rt: &Runtime, f: &mut McpFilter, h: &mut FakeHost) -> Option<BodyStatus> {
    if f.on_request_headers(rt, h, false) == HeadersStatus::StopIteration && !h.replies.is_empty() {
        return None;
    }
    Some(f.on_request_body(rt, h, true))
}

fn reply(h: &FakeHost) -> Value {
    serde_json::from_slice(&h.replies[0].body).expect("JSON reply")
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#;
const LIST_RESULT: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"get_issue","inputSchema":{}},{"name":"delete_repo","inputSchema":{}},{"name":"echo"},{"name":"admin_only"}],"nextCursor":"c2"}}"#;

#[test]
fn missing_token_gets_401_with_a_resource_metadata_challenge() {
    let rt = runtime();
    let mut h = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
        None,
    );
    let mut f = McpFilter::new();
    assert_eq!(request(&rt, &mut f, &mut h), Some(BodyStatus::StopNoBuffer));
    let r = &h.replies[0];
    assert_eq!(r.status, 401);
    let challenge = r
        .headers
        .iter()
        .find(|(k, _)| *k == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    assert!(
        challenge
            .starts_with("Bearer resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
}

#[test]
fn anonymous_ping_is_allowed_where_configured() {
    let rt = runtime();
    let mut h = post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, None);
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), Some(BodyStatus::Continue));
    assert!(h.replies.is_empty());
}

#[test]
fn valid_token_forwards_vouched_identity_and_drops_the_token_and_spoofed_headers() {
    let rt = runtime();
    let mut h = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
        Some(("bob", &["devs", "eng"])),
    )
    .with_header("x-mcp-subject", "root")
    .with_header("x-mcp-tenant", "evil");
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), Some(BodyStatus::Continue));
    assert_eq!(h.request_header_value("x-mcp-subject"), Some("bob"));
    assert_eq!(h.request_header_value("x-mcp-groups"), Some("devs,eng"));
    assert_eq!(h.request_header_value("x-mcp-tenant"), None);
    assert_eq!(h.request_header_value("authorization"), None);
    assert_eq!(h.metadata.get("principal").map(String::as_str), Some("bob"));
    assert_eq!(h.metadata.get("decision").map(String::as_str), Some("allow"));
    assert_eq!(h.metadata.get("rule").map(String::as_str), Some("devs"));
}

#[test]
fn revoked_subject_is_refused_even_with_a_valid_token() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("mallory", &["devs"])));
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), None);
    assert_eq!(h.replies[0].status, 401);
}

#[test]
fn foreign_origin_and_unknown_host_get_403() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"]))).with_header("origin", "https://evil.example");
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), None);
    assert_eq!(h.replies[0].status, 403);
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"]))).with_header(":authority", "evil.example");
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), None);
    assert_eq!(h.replies[0].status, 403);
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"]))).with_header("origin", "https://app.example");
    assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), Some(BodyStatus::Continue));
}

#[test]
fn denied_tool_call_gets_a_jsonrpc_error_with_the_request_id_and_rule() {
    let rt = runtime();
    let mut h = post(
        r#"{"jsonrpc":"2.0","id":"c-9","method":"tools/call","params":{"name":"delete_repo"}}"#,
        Some(("bob", &["devs"])),
    );
    assert_eq!(
        request(&rt, &mut McpFilter::new(), &mut h),
        Some(BodyStatus::StopNoBuffer)
    );
    let v = reply(&h);
    assert_eq!(v["id"], "c-9");
    assert_eq!(v["error"]["code"], crate::filter::POLICY_DENIED);
    assert_eq!(v["error"]["data"]["rule"], "no-delete");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("delete_repo"));
    assert_eq!(h.counter(1, &["gh", "tools_call", "deny"]), 1);
}

#[test]
fn json_tools_list_is_rewritten_per_principal_with_a_correct_content_length() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    assert_eq!(request(&rt, &mut f, &mut h), Some(BodyStatus::Continue));
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    h.response_body = LIST_RESULT.as_bytes().to_vec();
    assert_eq!(f.on_response_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
    assert_eq!(f.on_response_body(&rt, &mut h, false), BodyStatus::StopAndBuffer);
    assert_eq!(f.on_response_body(&rt, &mut h, true), BodyStatus::Continue);
    let v: Value = serde_json::from_slice(&h.response_body).expect("json");
    let names: Vec<_> = v["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("get_issue"), json!("echo")]);
    assert_eq!(v["result"]["nextCursor"], "c2");
    assert_eq!(
        h.response_header_value("content-length"),
        Some(h.response_body.len().to_string().as_str())
    );
    assert_eq!(h.counter(5, &["gh", "tool"]), 2);
}

#[test]
fn sse_tools_list_is_rewritten_the_same_however_the_stream_is_chunked() {
    let rt = runtime();
    let stream = format!(
        ": keepalive\n\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{}}}}\n\nevent: message\nid: e1\ndata: {LIST_RESULT}\n\n"
    );
    let mut outputs = Vec::new();
    for split in [1usize, 7, 40, 64, stream.len()] {
        let mut h = post(TOOLS_LIST, Some(("bob", &["devs"])));
        let mut f = McpFilter::new();
        request(&rt, &mut f, &mut h);
        h.response_headers = vec![
            (":status".into(), b"200".to_vec()),
            ("content-type".into(), b"text/event-stream".to_vec()),
        ];
        assert_eq!(f.on_response_headers(&rt, &mut h, false), HeadersStatus::Continue);
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(split).collect();
        for (i, c) in chunks.iter().enumerate() {
            h.response_body = c.to_vec();
            assert_eq!(
                f.on_response_body(&rt, &mut h, i + 1 == chunks.len()),
                BodyStatus::Continue
            );
            out.extend_from_slice(&h.response_body);
        }
        outputs.push(String::from_utf8(out).expect("utf8"));
    }
    for o in &outputs {
        assert_eq!(o, &outputs[0]);
    }
    let out = &outputs[0];
    assert!(
        out.starts_with(
            ": keepalive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\""
        ),
        "{out}"
    );
    assert!(out.contains("id: e1"));
    assert!(out.contains("get_issue") && out.contains("\"echo\""));
    assert!(!out.contains("delete_repo") && !out.contains("admin_only"));
}

#[test]
fn list_response_too_large_to_filter_fails_closed() {
    let mut rt = runtime();
    rt.config.max_response_body_bytes = 64;
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    request(&rt, &mut f, &mut h);
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    h.response_body = LIST_RESULT.as_bytes().to_vec();
    f.on_response_headers(&rt, &mut h, false);
    assert_eq!(f.on_response_body(&rt, &mut h, true), BodyStatus::StopNoBuffer);
    let reply = h.replies.last().expect("a reply");
    // The list is withheld; the request still gets an answer it can match (a JSON-RPC error
    // with its id), not an HTTP error that would end some clients' sessions.
    assert_eq!(reply.status, 200);
    let v: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(v["error"]["code"], -32603);
    assert_eq!(v["id"], serde_json::from_str::<Value>(TOOLS_LIST).expect("json")["id"]);
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("64 bytes"));
}

#[test]
fn batch_forwards_allowed_elements_and_merges_refusals_into_the_response() {
    let rt = runtime();
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_x"}}]"#;
    let mut h = post(batch, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    assert_eq!(request(&rt, &mut f, &mut h), Some(BodyStatus::Continue));
    let forwarded: Value = serde_json::from_slice(&h.request_body).expect("json");
    assert_eq!(forwarded.as_array().map(|a| a.len()), Some(1));
    assert_eq!(
        h.request_header_value("content-length"),
        Some(h.request_body.len().to_string().as_str())
    );
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    h.response_body = br#"[{"jsonrpc":"2.0","id":1,"result":{"content":[]}}]"#.to_vec();
    assert_eq!(f.on_response_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
    assert_eq!(f.on_response_body(&rt, &mut h, true), BodyStatus::Continue);
    let v: Value = serde_json::from_slice(&h.response_body).expect("json");
    assert_eq!(v[0]["id"], 1);
    assert_eq!(v[1]["id"], 2);
    assert_eq!(v[1]["error"]["code"], crate::filter::POLICY_DENIED);
}

#[test]
fn batch_refusals_are_appended_as_events_when_the_upstream_answers_with_sse() {
    let rt = runtime();
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_x"}}]"#;
    let mut h = post(batch, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    assert_eq!(request(&rt, &mut f, &mut h), Some(BodyStatus::Continue));
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), b"text/event-stream".to_vec()),
    ];
    assert_eq!(f.on_response_headers(&rt, &mut h, false), HeadersStatus::Continue);
    let upstream = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n";
    h.response_body = upstream.as_bytes().to_vec();
    assert_eq!(f.on_response_body(&rt, &mut h, true), BodyStatus::Continue);
    let out = String::from_utf8(h.response_body.clone()).expect("utf8");
    assert!(out.starts_with(upstream), "{out}");
    let added = out[upstream.len()..]
        .strip_prefix("event: message\ndata: ")
        .expect("an appended event");
    let v: Value = serde_json::from_str(added.trim_end()).expect("json");
    assert_eq!(v["id"], 2);
    assert_eq!(v["error"]["code"], crate::filter::POLICY_DENIED);
}

#[test]
fn batch_refusals_are_answered_when_the_upstream_returns_no_body() {
    let rt = runtime();
    let batch = r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_x"}}]"#;
    let mut h = post(batch, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    assert_eq!(request(&rt, &mut f, &mut h), Some(BodyStatus::Continue));
    h.response_headers = vec![(":status".into(), b"202".to_vec())];
    assert_eq!(f.on_response_headers(&rt, &mut h, true), HeadersStatus::StopIteration);
    let r = h.replies.last().expect("a local reply");
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v[0]["id"], 9);
    assert_eq!(v[0]["error"]["code"], crate::filter::POLICY_DENIED);
}

fn respond(rt: &Runtime, f: &mut McpFilter, h: &mut FakeHost, ct: &str, body: &str) -> Option<BodyStatus> {
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), ct.as_bytes().to_vec()),
    ];
    h.response_body = body.as_bytes().to_vec();
    if f.on_response_headers(rt, h, false) == HeadersStatus::StopIteration && !h.replies.is_empty() {
        return None;
    }
    Some(f.on_response_body(rt, h, true))
}

#[test]
fn a_list_request_asks_the_upstream_for_an_unencoded_answer() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"]))).with_header("accept-encoding", "gzip, br");
    request(&rt, &mut McpFilter::new(), &mut h);
    let enc: Vec<&[u8]> = h
        .request_headers
        .iter()
        .filter(|(k, _)| k == "accept-encoding")
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(enc, [&b"identity"[..]]);
}

#[test]
fn a_list_answer_in_a_media_type_the_gateway_does_not_read_becomes_an_error_with_the_id() {
    let rt = runtime();
    for ct in ["text/plain", "application/x-ndjson", "application/json-seq"] {
        let mut h = post(TOOLS_LIST, Some(("bob", &["devs"])));
        let mut f = McpFilter::new();
        request(&rt, &mut f, &mut h);
        assert_eq!(respond(&rt, &mut f, &mut h, ct, LIST_RESULT), None, "{ct}");
        let v = reply(&h);
        assert_eq!(
            (v["id"].clone(), v["error"]["code"].clone()),
            (json!(4), json!(-32603)),
            "{ct}"
        );
        assert!(!String::from_utf8_lossy(&h.replies[0].body).contains("delete_repo"));
    }
}

#[test]
fn a_json_list_answer_that_ends_in_trailers_is_still_filtered() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    request(&rt, &mut f, &mut h);
    h.response_headers = vec![
        (":status".into(), b"200".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    h.response_body = LIST_RESULT.as_bytes().to_vec();
    assert_eq!(f.on_response_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
    assert_eq!(f.on_response_body(&rt, &mut h, false), BodyStatus::StopAndBuffer);
    assert_eq!(f.on_response_trailers(&rt, &mut h), BodyStatus::Continue);
    let out = String::from_utf8_lossy(&h.response_body).into_owned();
    assert!(out.contains("get_issue") && !out.contains("delete_repo"), "{out}");
}

#[test]
fn a_batch_with_duplicate_request_ids_is_refused_before_forwarding() {
    let rt = runtime();
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"echo"}}]"#;
    let mut h = post(batch, Some(("bob", &["devs"])));
    assert_eq!(
        request(&rt, &mut McpFilter::new(), &mut h),
        Some(BodyStatus::StopNoBuffer)
    );
    assert_eq!(h.replies[0].status, 400);
    assert!(reply(&h)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("duplicate request id"));
}

#[test]
fn a_batch_answer_with_re_rendered_ids_is_filtered_and_unknown_ids_cost_the_lists() {
    let rt = runtime();
    let batch =
        r#"[{"jsonrpc":"2.0","id":7,"method":"tools/list"},{"jsonrpc":"2.0","id":"a\u0062","method":"tools/list"}]"#;
    let list = |id: &str| LIST_RESULT.replace("\"id\":4", &format!("\"id\":{id}"));
    // Re-rendered ids are the same ids: both lists filtered.
    let mut h = post(batch, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    request(&rt, &mut f, &mut h);
    respond(
        &rt,
        &mut f,
        &mut h,
        "application/json",
        &format!("[{},{}]", list("7.0"), list("\"ab\"")),
    );
    let out: Value = serde_json::from_slice(&h.response_body).expect("json");
    assert_eq!(out.as_array().map(Vec::len), Some(2));
    assert!(!out.to_string().contains("delete_repo"));
    assert!(out.to_string().contains("get_issue"));
    // An answer for an id nobody asked for: dropped, and the lists become errors.
    let mut h = post(batch, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    request(&rt, &mut f, &mut h);
    respond(
        &rt,
        &mut f,
        &mut h,
        "application/json",
        &format!("[{},{},{}]", list("7"), list("\"ab\""), list("99")),
    );
    let out: Value = serde_json::from_slice(&h.response_body).expect("json");
    let text = out.to_string();
    assert!(!text.contains("delete_repo") && !text.contains("admin_only"), "{text}");
    assert_eq!(out.as_array().map(Vec::len), Some(2), "{text}");
    assert!(
        out.as_array()
            .into_iter()
            .flatten()
            .all(|m| m["error"]["code"] == -32603),
        "{text}"
    );
}

#[test]
fn a_get_with_a_body_is_refused_and_the_body_never_forwarded() {
    let rt = runtime();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}"#;
    for method in ["GET", "DELETE", "OPTIONS", "HEAD"] {
        let mut h = post(call, Some(("bob", &["devs"]))).with_header(":method", method);
        let mut f = McpFilter::new();
        assert_eq!(
            f.on_request_headers(&rt, &mut h, false),
            HeadersStatus::StopIteration,
            "{method}"
        );
        assert_eq!(
            f.on_request_body(&rt, &mut h, true),
            BodyStatus::StopNoBuffer,
            "{method}"
        );
        assert_eq!(h.replies[0].status, 400, "{method}");
    }
    // Without a body, GET (the server stream) goes through.
    let mut h = post("", Some(("bob", &["devs"]))).with_header(":method", "GET");
    let mut f = McpFilter::new();
    assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
    assert_eq!(f.on_request_body(&rt, &mut h, true), BodyStatus::Continue);
    assert!(h.replies.is_empty());
}

#[test]
fn routes_are_matched_again_after_identity_headers_are_rewritten() {
    let rt = runtime();
    let mut h = post(TOOLS_LIST, Some(("bob", &["devs"]))).with_header("x-mcp-tenant", "spoofed");
    h.route_metadata.insert("server".into(), b"gh".to_vec());
    request(&rt, &mut McpFilter::new(), &mut h);
    assert!(h.route_cache_cleared);
    assert!(!h.request_headers.iter().any(|(k, _)| k == "x-mcp-tenant"));
}

#[test]
fn a_failure_after_the_upstream_ran_answers_with_the_request_id() {
    let rt = runtime();
    let call = r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"echo"}}"#;
    let mut h = post(call, Some(("bob", &["devs"])));
    let mut f = McpFilter::new();
    request(&rt, &mut f, &mut h);
    let body = f.failure_body("boom").expect("an answer");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["id"], "c-1");
}

#[test]
fn audit_metadata_digests_arguments_and_names_the_identity_source() {
    let rt = runtime();
    let digest = |body: &str| {
        let mut h = post(body, Some(("bob", &["devs"])));
        assert_eq!(request(&rt, &mut McpFilter::new(), &mut h), Some(BodyStatus::Continue));
        assert_eq!(h.metadata.get("identity_source").map(String::as_str), Some("jwt"));
        h.metadata.get("args_digest").cloned()
    };
    let a = digest(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1,"y":"s"}}}"#,
    );
    let b = digest(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{"y":"s", "x":1},"name":"echo"}}"#,
    );
    let c = digest(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"x":2,"y":"s"}}}"#,
    );
    assert!(a.as_deref().is_some_and(|d| d.starts_with("sha256:")), "{a:?}");
    assert_eq!(a, b, "member order does not change the digest");
    assert_ne!(a, c, "values do");
    assert_eq!(
        digest(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo"}}"#),
        None
    );
}
