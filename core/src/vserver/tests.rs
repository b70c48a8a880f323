use super::dispatch::{self, FanOut, Plan};
use super::merge::{self, Got, Reply};
use super::names;
use super::session::{self, Member, OpenError, Session};
use super::*;
use crate::jsonrpc::{self, Body};
use serde_json::{json, Value};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn vs(spec: Value) -> VirtualServer {
    let spec: VirtualServerSpec = serde_json::from_value(spec).unwrap();
    VirtualServer::compile("tools", spec).unwrap()
}

fn two() -> VirtualServer {
    vs(json!({
        "backends": [
            {"name": "github", "cluster": "gh", "failure": "fail_closed"},
            {"name": "memory_srv", "prefix": "mem", "cluster": "mem", "failure": "fail_open",
             "tools": {"exclude": ["delete_*"]}}
        ],
        "session_keys": [{"id": "a", "key": KEY_A}]
    }))
}

fn errors(spec: Value) -> Vec<(String, String)> {
    let spec: VirtualServerSpec = serde_json::from_value(spec).unwrap();
    VirtualServer::compile("tools", spec).unwrap_err()
}

#[test]
fn config_problems_are_all_reported_with_their_paths() {
    let e = errors(json!({
        "backends": [
            {"name": "a_b", "cluster": "x"},
            {"name": "c", "prefix": "dup", "cluster": "x", "timeout_ms": 0},
            {"name": "d", "prefix": "dup", "cluster": "", "tools": {"include": ["re:.*"]}}
        ],
        "session_keys": [{"id": "k", "key": "c2hvcnQ="}]
    }));
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        "backends[0].prefix",
        "backends[1].timeout_ms",
        "backends[2].cluster",
        "backends[2].tools.include[0]",
        "backends[2].prefix",
        "session_keys[0].key",
    ] {
        assert!(paths.contains(&want), "{want} missing from {e:?}");
    }
    assert!(e.iter().any(|(_, m)| m.contains("set `prefix` explicitly")));
    let e = errors(json!({"backends": [], "session_keys": []}));
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn names_are_prefixed_stably_and_reverse_without_state() {
    assert_eq!(names::expose("github", "create_issue"), "github__create_issue");
    assert_eq!(names::split("github__create__issue"), Some(("github", "create__issue")));
    let long = "a".repeat(80);
    let e = names::expose("github", &long);
    assert_eq!(e.len(), names::MAX_NAME);
    assert!(names::may_be_shortened(&e));
    assert_eq!(e, names::expose("github", &long), "deterministic");
    assert_ne!(
        e,
        names::expose("github", &"a".repeat(81)),
        "distinct names stay distinct"
    );
    assert!(!names::may_be_shortened("github__short"));
    // Multi-byte names are cut at a character boundary.
    let e = names::expose("p", &"é".repeat(40));
    assert!(e.len() <= names::MAX_NAME && e.is_char_boundary(e.len()));
    assert_eq!(names::expose_uri("mem", "file:///a+b"), "mem+file:///a+b");
    assert_eq!(names::split_uri("mem+file:///a+b"), Some(("mem", "file:///a+b")));
}

#[test]
fn sessions_seal_open_and_bind_to_their_principal() {
    let v = two();
    let s = Session {
        server: "tools".into(),
        principal: "p1".into(),
        issued: 1000,
        version: "2025-11-25".into(),
        members: vec![Member {
            backend: "github".into(),
            session: Some("abc".into()),
            version: "2025-11-25".into(),
            caps: Some("t".into()),
        }],
    };
    let token = v.keys.seal(&s).unwrap();
    assert!(token.bytes().all(|b| b.is_ascii_graphic()));
    assert_ne!(token, v.keys.seal(&s).unwrap(), "a fresh nonce every time");
    assert_eq!(v.keys.open(&token, "tools", "p1", 1010, 60).unwrap(), s);
    assert_eq!(
        v.keys.open(&token, "tools", "p2", 1010, 60),
        Err(OpenError::OtherPrincipal)
    );
    assert_eq!(v.keys.open(&token, "other", "p1", 1010, 60), Err(OpenError::Forged));
    assert_eq!(v.keys.open(&token, "tools", "p1", 2000, 60), Err(OpenError::Expired));
    let mut bad = token.clone().into_bytes();
    let n = bad.len() - 3;
    bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(v.keys.open(&bad, "tools", "p1", 1010, 60), Err(OpenError::Forged));
    assert_eq!(
        v.keys.open("m1.zz.AAAA", "tools", "p1", 1010, 60),
        Err(OpenError::UnknownKey("zz".into()))
    );
    assert_eq!(
        v.keys.open("nonsense", "tools", "p1", 1010, 60),
        Err(OpenError::Malformed)
    );
    // Rotation: a ring with the new key first still opens sessions sealed by the old one.
    let rotated = session::Keys::compile(&[
        SessionKeySpec {
            id: "b".into(),
            key: KEY_B.into(),
        },
        SessionKeySpec {
            id: "a".into(),
            key: KEY_A.into(),
        },
    ])
    .unwrap();
    assert_eq!(rotated.open(&token, "tools", "p1", 1010, 60).unwrap(), s);
    assert!(rotated.seal(&s).unwrap().starts_with("m1.b."));
}

fn ok(id: &str, result: Value) -> Got {
    Got::Result(
        serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": serde_json::from_str::<Value>(id).unwrap(), "result": result}),
        )
        .unwrap(),
    )
}

/// The names of a merged `tools` result, in order.
fn tool_names(result: &Value) -> Vec<&str> {
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn lists_merge_prefixed_selected_and_filtered_with_every_field_kept() {
    let v = two();
    let gh = ok(
        "1",
        json!({"tools": [
        {"name": "create_issue", "title": "Create", "outputSchema": {"type": "object"}, "_meta": {"x": 1}},
        {"name": "secret"}
    ], "nextCursor": "gh-2"}),
    );
    let mem = ok("1", json!({"tools": [{"name": "read_graph"}, {"name": "delete_all"}]}));
    let mut keep = |b: &Backend, _k: Kind, n: &str| !(b.name == "github" && n == "secret");
    let l = merge::list(&v, Kind::Tool, vec![(0, gh), (1, mem)], &mut keep).unwrap();
    let r: Value = serde_json::from_slice(&l.result).unwrap();
    let names = tool_names(&r);
    assert_eq!(names, ["github__create_issue", "mem__read_graph"]);
    assert_eq!(r["tools"][0]["outputSchema"], json!({"type": "object"}));
    assert_eq!(r["tools"][0]["_meta"], json!({"x": 1}));
    assert_eq!(r["tools"][0]["title"], "Create");
    assert_eq!(l.hidden, 1);
    let parts = merge::decode_cursor(Kind::Tool, r["nextCursor"].as_str().unwrap()).unwrap();
    assert_eq!(parts, vec![("github".to_owned(), "gh-2".to_owned())]);
    assert!(merge::decode_cursor(Kind::Prompt, r["nextCursor"].as_str().unwrap()).is_err());
}

#[test]
fn a_failed_backend_fails_open_or_closed_as_configured() {
    let v = two();
    let mut keep = |_: &Backend, _: Kind, _: &str| true;
    let gh = ok("1", json!({"tools": [{"name": "a"}]}));
    let l = merge::list(
        &v,
        Kind::Tool,
        vec![(0, gh.clone()), (1, Got::Failed("HTTP 503".into()))],
        &mut keep,
    )
    .unwrap();
    let r: Value = serde_json::from_slice(&l.result).unwrap();
    assert_eq!(r["_meta"][merge::META_MISSING], json!(["memory_srv"]));
    let f = merge::list(
        &v,
        Kind::Tool,
        vec![(0, Got::Failed("reset".into())), (1, gh.clone())],
        &mut keep,
    )
    .unwrap_err();
    assert_eq!(f.backend, "github");
    assert!(f.message().contains("github") && f.message().contains("reset"));
    let f = merge::list(&v, Kind::Tool, vec![(0, Got::Expired), (1, gh)], &mut keep).unwrap_err();
    assert!(f.expired);
    // "Method not found" from a backend without prompts is an empty list, not a failure.
    let none = Got::Error {
        code: -32601,
        message: "no".into(),
    };
    let l = merge::list(&v, Kind::Prompt, vec![(0, none)], &mut keep).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&l.result).unwrap(),
        json!({"prompts": []})
    );
}

#[test]
fn initialize_merges_capabilities_versions_and_instructions() {
    let v = two();
    let a = ok(
        "0",
        json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": true}, "logging": {}},
        "serverInfo": {"name": "gh", "version": "1"}, "instructions": "Use issues."}),
    );
    let b = ok(
        "0",
        json!({"protocolVersion": "2025-06-18", "capabilities": {"prompts": {}, "resources": {"subscribe": true}},
        "serverInfo": {"name": "mem", "version": "2"}}),
    );
    let i = merge::initialize(&v, vec![(0, a, Some("s1".into())), (1, b, None)], &mut |_, _| None).unwrap();
    let r: Value = serde_json::from_slice(&i.result).unwrap();
    assert_eq!(r["protocolVersion"], "2025-06-18");
    assert_eq!(
        r["capabilities"],
        json!({"tools": {}, "logging": {}, "prompts": {}, "resources": {}})
    );
    assert_eq!(r["serverInfo"]["name"], "tools");
    assert!(r["instructions"].as_str().unwrap().contains("Use issues."));
    assert_eq!(r["_meta"][merge::META_BACKENDS]["github"]["serverInfo"]["name"], "gh");
    assert_eq!(i.members.len(), 2);
    assert_eq!(i.members[0].session.as_deref(), Some("s1"));
    assert_eq!(i.members[0].caps.as_deref(), Some("tl"));
}

#[test]
fn backend_answers_are_found_in_json_and_event_streams() {
    let body = br#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
    let r = Reply {
        status: 200,
        content_type: Some(b"application/json"),
        body,
    };
    assert_eq!(merge::classify(Ok(r), "3", false), Got::Result(body.to_vec()));
    let sse = b"id: 1\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"bad\"}}\n\n";
    let r = Reply {
        status: 200,
        content_type: Some(b"text/event-stream"),
        body: sse,
    };
    assert_eq!(
        merge::classify(Ok(r), "3", false),
        Got::Error {
            code: -32602,
            message: "bad".into()
        }
    );
    let r = Reply {
        status: 200,
        content_type: Some(b"application/json"),
        body: br#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
    };
    assert!(matches!(merge::classify(Ok(r), "3", false), Got::Failed(_)));
    let r = Reply {
        status: 404,
        content_type: None,
        body: b"",
    };
    assert_eq!(merge::classify(Ok(r), "3", true), Got::Expired);
    let r = Reply {
        status: 503,
        content_type: Some(b"text/plain"),
        body: b"no healthy upstream",
    };
    assert_eq!(
        merge::classify(Ok(r), "3", true),
        Got::Failed("HTTP 503: no healthy upstream".into())
    );
}

fn one(text: &str) -> jsonrpc::Message<'_> {
    match jsonrpc::parse(text.as_bytes()).unwrap() {
        Body::Single(m) => m,
        _ => panic!("batch"),
    }
}

#[test]
fn calls_are_dispatched_to_their_owner_un_prefixed_with_arguments_verbatim() {
    let v = two();
    let none = |_: usize, _: &str| None;
    let m = one(
        r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"mem__read_graph","arguments":{"n":12345678901234567890.50}}}"#,
    );
    let Plan::Dispatch { backend, body, name } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!((backend, name.as_deref()), (1, Some("read_graph")));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(r#""name":"read_graph""#) && text.contains("12345678901234567890.50"),
        "{text}"
    );
    assert!(text.contains(r#""id":"x""#));
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"github+repo://a/b"}}"#);
    let Plan::Dispatch { backend, body, .. } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!(backend, 0);
    assert!(String::from_utf8(body).unwrap().contains(r#""uri":"repo://a/b""#));
    let m = one(
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"github__p"},"argument":{"name":"a","value":"b"}}}"#,
    );
    let Plan::Dispatch { backend, body, .. } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!(backend, 0);
    assert!(String::from_utf8(body).unwrap().contains(r#""name":"p""#));
    for bad in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"zzz__x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
    ] {
        assert!(matches!(dispatch::plan(&v, &one(bad), &none), Plan::Refuse(_)), "{bad}");
    }
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{}}"#);
    let Plan::Refuse(r) = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!(r.code, -32601);
    assert!(matches!(
        dispatch::plan(&v, &one(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), &none),
        Plan::Ping
    ));
    assert!(matches!(
        dispatch::plan(&v, &one(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#), &none),
        Plan::FanOut(FanOut::List(Kind::Prompt))
    ));
}

#[test]
fn server_request_ids_are_tagged_and_answers_routed_back() {
    let v = two();
    let none = |_: usize, _: &str| None;
    for inner in ["7", "\"abc\"", "\"we:ird\\\"id\""] {
        let tagged = dispatch::tag_id("mem", inner);
        assert_eq!(dispatch::untag_id(&tagged), Some(("mem".into(), inner.into())));
        let text = format!(r#"{{"jsonrpc":"2.0","id":{tagged},"result":{{"action":"accept"}}}}"#);
        let Plan::Dispatch { backend, body, .. } = dispatch::plan(&v, &one(&text), &none) else {
            panic!()
        };
        assert_eq!(backend, 1);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["id"], serde_json::from_str::<Value>(inner).unwrap());
        assert_eq!(sent["result"], json!({"action": "accept"}));
    }
    let text = r#"{"jsonrpc":"2.0","id":5,"result":{}}"#;
    assert!(matches!(dispatch::plan(&v, &one(text), &none), Plan::Refuse(_)));
}

#[test]
fn a_default_backend_keeps_its_names_and_takes_what_no_prefix_claims() {
    let v = vs(json!({
        "backends": [
            {"name": "main", "prefix": "", "cluster": "m"},
            {"name": "github", "cluster": "gh"}
        ],
        "session_keys": [{"id": "a", "key": KEY_A}]
    }));
    let none = |_: usize, _: &str| None;
    assert_eq!(names::expose("", "echo"), "echo");
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#);
    let Plan::Dispatch { backend, name, .. } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!((backend, name.as_deref()), (0, Some("echo")));
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__x"}}"#);
    let Plan::Dispatch { backend, .. } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!(backend, 1);
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://static/1"}}"#);
    let Plan::Dispatch { backend, body, .. } = dispatch::plan(&v, &m, &none) else {
        panic!()
    };
    assert_eq!(backend, 0);
    assert!(String::from_utf8(body).unwrap().contains("test://static/1"));
    let e = errors(json!({
        "backends": [{"name": "a", "prefix": "", "cluster": "a"}, {"name": "b", "prefix": "", "cluster": "b"}],
        "session_keys": [{"id": "a", "key": KEY_A}]
    }));
    assert!(e.iter().any(|(p, _)| p == "backends[1].prefix"), "{e:?}");
}

#[test]
fn caching_hints_and_unknown_result_members_are_carried_the_shortest_ttl_winning() {
    let v = two();
    let mut keep = |_: &Backend, _: Kind, _: &str| true;
    let a = ok(
        "1",
        json!({"tools": [{"name": "a"}], "ttlMs": 60000, "cacheScope": "private", "resultType": "complete"}),
    );
    let b = ok(
        "1",
        json!({"tools": [{"name": "b"}], "ttlMs": 5000, "cacheScope": "public", "resultType": "complete"}),
    );
    let l = merge::list(&v, Kind::Tool, vec![(0, a), (1, b)], &mut keep).unwrap();
    let r: Value = serde_json::from_slice(&l.result).unwrap();
    assert_eq!(
        (r["ttlMs"].clone(), r["cacheScope"].clone(), r["resultType"].clone()),
        (json!(5000), json!("private"), json!("complete"))
    );
}

/// A judge that edits by name and records the names it was told came earlier.
struct Edits {
    earlier: Vec<Vec<String>>,
    short: bool,
}

impl merge::Judge for Edits {
    fn keep(&mut self, _b: &Backend, _k: Kind, _n: &str) -> bool {
        true
    }
    fn edits(
        &mut self,
        _b: &Backend,
        kind: Kind,
        scan: &crate::rewrite::Scan<'_>,
        earlier: &[&str],
    ) -> Option<Vec<crate::integrity::Edit>> {
        use crate::integrity::Edit;
        self.earlier.push(earlier.iter().map(|s| s.to_string()).collect());
        let mut e: Vec<Edit> = scan
            .items(kind)?
            .iter()
            .map(|i| match i.name {
                Some("drop_me") => Edit::Drop,
                Some("clean_me") => Edit::Replace(br#"{"name":"clean_me","description":"cleaned"}"#.to_vec()),
                _ => Edit::Keep,
            })
            .collect();
        if self.short {
            e.pop();
        }
        Some(e)
    }
}

#[test]
fn a_judge_edits_each_backends_items_and_sees_the_names_merged_before() {
    let v = two();
    let gh = || {
        ok(
            "1",
            json!({"tools": [{"name": "a"}, {"name": "drop_me"}, {"name": "clean_me", "description": "dirty"}]}),
        )
    };
    let mem = || ok("1", json!({"tools": [{"name": "b"}, {"name": "last"}]}));
    let mut j = Edits {
        earlier: Vec::new(),
        short: false,
    };
    let l = merge::list(&v, Kind::Tool, vec![(0, gh()), (1, mem())], &mut j).unwrap();
    let r: Value = serde_json::from_slice(&l.result).unwrap();
    let tools = r["tools"].as_array().unwrap();
    let names = tool_names(&r);
    assert_eq!(names, ["github__a", "github__clean_me", "mem__b", "mem__last"]);
    assert_eq!(tools[1]["description"], "cleaned", "the replacement, renamed");
    assert_eq!(l.hidden, 1);
    assert_eq!(
        j.earlier,
        [vec![], vec!["a".to_string(), "drop_me".into(), "clean_me".into()]]
    );
    // A judge that answers for fewer items than the list holds loses the rest.
    let mut short = Edits {
        earlier: Vec::new(),
        short: true,
    };
    let l = merge::list(&v, Kind::Tool, vec![(0, gh()), (1, mem())], &mut short).unwrap();
    let r: Value = serde_json::from_slice(&l.result).unwrap();
    let names = tool_names(&r);
    assert_eq!(names, ["github__a", "mem__b"]);
}
