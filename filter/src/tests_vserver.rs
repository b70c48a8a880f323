//! Fake-host tests of a virtual server in the filter: what goes out as callouts, what the
//! client gets back once they are in, and the refusals that keep the dispatch route the
//! module's own.

use crate::fake::FakeHost;
use crate::filter::{BodyStatus, HeadersStatus, McpFilter, Runtime};
use crate::stats::Stats;
use mcp_policy_core::config::FilterConfig;
use serde_json::{json, Value};

fn runtime() -> Runtime {
    let config = json!({
        "server": "direct",
        "policy": {"rules": [
            {"id": "all", "effect": "allow", "principals": [{"anonymous": true}],
             "tools": ["*"], "methods": ["*"], "prompts": ["*"], "resources": ["*"]},
            {"id": "no-secret", "effect": "deny", "principals": [{"anonymous": true}], "servers": ["gh"], "tools": ["secret"]}
        ], "servers": {"gh": {}, "mem": {}}},
        "virtual_servers": {"vs": {
            "backends": [
                {"name": "gh", "cluster": "c_gh", "path": "/gh", "failure": "fail_closed"},
                {"name": "mem", "cluster": "c_mem", "failure": "fail_open"}
            ],
            "session_keys": [{"id": "k", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]
        }}
    });
    Runtime {
        config: FilterConfig::from_json(config.to_string().as_bytes()).expect("test config"),
        stats: Stats::for_tests(),
    }
}

fn post(body: &str) -> FakeHost {
    let mut h = FakeHost::post(body);
    h.route_metadata.insert("server".into(), b"vs".to_vec());
    h
}

fn start(rt: &Runtime, f: &mut McpFilter, h: &mut FakeHost) -> BodyStatus {
    assert_eq!(f.on_request_headers(rt, h, false), HeadersStatus::StopIteration);
    f.on_request_body(rt, h, true)
}

fn header<'a>(hs: &'a [(String, Vec<u8>)], k: &str) -> Option<&'a str> {
    hs.iter()
        .find(|(n, _)| n == k)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn json_answer(f: &mut McpFilter, rt: &Runtime, h: &mut FakeHost, callout: u64, body: Value) {
    let text = body.to_string();
    let hs: [(&[u8], &[u8]); 2] = [(b":status", b"200"), (b"content-type", b"application/json")];
    f.on_callout_done(
        rt,
        h,
        callout,
        crate::abi::callout_result::SUCCESS,
        &hs,
        text.as_bytes(),
    );
}

#[test]
fn a_list_fans_out_to_every_backend_and_answers_once_all_are_in() {
    let rt = runtime();
    let mut f = McpFilter::new();
    let mut h = post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
    assert_eq!(start(&rt, &mut f, &mut h), BodyStatus::StopNoBuffer);
    assert_eq!(h.callouts.len(), 2);
    let (cluster, hs, body) = &h.callouts[0];
    assert_eq!(cluster, "c_gh");
    assert_eq!(
        (header(hs, ":method"), header(hs, ":path"), header(hs, "host")),
        (Some("POST"), Some("/gh"), Some("c_gh"))
    );
    assert_eq!(serde_json::from_slice::<Value>(body).unwrap()["method"], "tools/list");
    assert!(h.replies.is_empty(), "nothing is answered before the callouts are in");
    json_answer(
        &mut f,
        &rt,
        &mut h,
        1,
        json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": [{"name": "a"}, {"name": "secret"}]}}),
    );
    assert!(h.replies.is_empty());
    json_answer(
        &mut f,
        &rt,
        &mut h,
        2,
        json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": [{"name": "b"}]}}),
    );
    assert_eq!(h.replies.len(), 1);
    let v: Value = serde_json::from_slice(&h.replies[0].body).unwrap();
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(v["id"], 7);
    assert_eq!(
        names,
        ["gh__a", "mem__b"],
        "policy under the backend's name hides gh's secret"
    );
    assert_eq!(h.counter(5, &["vs", "tool"]), 1);
}

#[test]
fn a_fail_closed_backend_that_cannot_be_reached_makes_the_answer_an_error_naming_it() {
    let rt = runtime();
    let mut f = McpFilter::new();
    let mut h = post(r#"{"jsonrpc":"2.0","id":"x","method":"tools/list"}"#);
    start(&rt, &mut f, &mut h);
    f.on_callout_done(&rt, &mut h, 1, crate::abi::callout_result::RESET, &[], b"");
    json_answer(
        &mut f,
        &rt,
        &mut h,
        2,
        json!({"jsonrpc": "2.0", "id": "x", "result": {"tools": []}}),
    );
    let r = &h.replies[0];
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!("x"), json!(-32031))
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("\"gh\""));
    assert_eq!(h.counter(6, &["vs", "gh"]), 1);
}

#[test]
fn initialize_seals_a_session_that_later_requests_carry_to_each_backend() {
    let rt = runtime();
    let mut f = McpFilter::new();
    let mut h = post(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    start(&rt, &mut f, &mut h);
    for (callout, sid) in [(1u64, "sid-gh"), (2, "sid-mem")] {
        let result = json!({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "x", "version": "1"}}}).to_string();
        let hs: [(&[u8], &[u8]); 3] = [
            (b":status", b"200"),
            (b"content-type", b"application/json"),
            (b"mcp-session-id", sid.as_bytes()),
        ];
        f.on_callout_done(
            &rt,
            &mut h,
            callout,
            crate::abi::callout_result::SUCCESS,
            &hs,
            result.as_bytes(),
        );
    }
    let reply = &h.replies[0];
    let sid = reply
        .headers
        .iter()
        .find(|(k, _)| *k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .expect("a session id");
    // A call with it goes to its owner, with the owner's session id, through the dispatch route.
    let mut f = McpFilter::new();
    let mut h = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mem__b","arguments":{}}}"#)
        .with_header("mcp-session-id", &sid);
    assert_eq!(start(&rt, &mut f, &mut h), BodyStatus::Continue);
    assert_eq!(h.request_header_value("x-mcp-backend-cluster"), Some("c_mem"));
    assert_eq!(h.request_header_value("mcp-session-id"), Some("sid-mem"));
    assert_eq!(h.request_header_value(":path"), Some("/mcp"));
    assert!(h.route_cache_cleared);
    let sent: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(sent["params"]["name"], "b");
}

#[test]
fn a_client_cannot_pick_the_cluster_or_bring_a_foreign_session() {
    let rt = runtime();
    let mut f = McpFilter::new();
    let mut h = post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("x-mcp-backend-cluster", "c_gh");
    assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
    assert_eq!(h.replies[0].status, 400);
    let mut f = McpFilter::new();
    let mut h = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).with_header("mcp-session-id", "m1.k.garbage");
    start(&rt, &mut f, &mut h);
    assert_eq!(h.replies[0].status, 404);
    assert!(h.callouts.is_empty());
    let mut f = McpFilter::new();
    let mut h = post(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
    start(&rt, &mut f, &mut h);
    assert_eq!(h.replies[0].status, 400, "batches are refused on a virtual server");
}

#[test]
fn nothing_but_post_and_delete_reaches_a_backend_unplanned() {
    let rt = runtime();
    for (method, status) in [("GET", 405), ("HEAD", 405), ("OPTIONS", 405), ("DELETE", 400)] {
        let mut f = McpFilter::new();
        let mut h = post("").with_header(":method", method);
        assert_eq!(
            f.on_request_headers(&rt, &mut h, false),
            HeadersStatus::StopIteration,
            "{method}"
        );
        assert_eq!(h.replies.first().map(|r| r.status), Some(status), "{method}");
    }
}
