use super::*;
use serde_json::Value;

const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"ok_tool"},{"name":"secret_tool"}]}}"#;

fn hide_secret(_: Kind, n: &str) -> bool {
    n != "secret_tool"
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn a_single_list_answer_is_filtered_and_counted() {
    let mut e = Expect::single_list("7", Kind::Tool);
    let mut t = Tally::default();
    let out = e.rewrite_json(LIST.as_bytes(), hide_secret, &mut t).expect("rewritten");
    assert_eq!(names(&json(&out)), ["ok_tool"]);
    assert_eq!(t.removed, [1, 0, 0, 0]);
    assert_eq!(t.refused, 0);
}

#[test]
fn an_answer_with_nothing_hidden_is_delivered_unchanged() {
    let mut e = Expect::single_list("7", Kind::Tool);
    let mut t = Tally::default();
    assert_eq!(e.rewrite_json(LIST.as_bytes(), |_, _| true, &mut t), None);
}

#[test]
fn re_rendered_ids_still_match_the_request() {
    for id in ["7.0", "7e0", "0.7e1"] {
        let body = LIST.replace("\"id\":7", &format!("\"id\":{id}"));
        let mut e = Expect::single_list("7", Kind::Tool);
        let mut t = Tally::default();
        let out = e.rewrite_json(body.as_bytes(), hide_secret, &mut t).expect("rewritten");
        assert_eq!(names(&json(&out)), ["ok_tool"], "{id}");
    }
}

#[test]
fn an_answer_for_an_id_nobody_asked_for_is_dropped_and_the_request_gets_an_error() {
    let body = LIST.replace("\"id\":7", "\"id\":99");
    let mut e = Expect::single_list("7", Kind::Tool);
    let mut t = Tally::default();
    let out = e.rewrite_json(body.as_bytes(), |_, _| true, &mut t).expect("replaced");
    let v = json(&out);
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], -32603);
    assert!(!String::from_utf8_lossy(&out).contains("secret_tool"));
    assert_eq!(t.first.as_ref().map(|f| f.0), Some(reason::UNKNOWN_ID));
}

#[test]
fn a_string_id_does_not_answer_a_numeric_request() {
    let body = LIST.replace("\"id\":7", "\"id\":\"7\"");
    let mut e = Expect::single_list("7", Kind::Tool);
    let out = e
        .rewrite_json(body.as_bytes(), |_, _| true, &mut Tally::default())
        .expect("replaced");
    assert_eq!(json(&out)["error"]["code"], -32603);
}

#[test]
fn an_unfilterable_list_becomes_an_error_with_the_request_id() {
    let mut e = Expect::single_list("\"a\"", Kind::Tool);
    let mut t = Tally::default();
    let body = br#"{"jsonrpc":"2.0","id":"a","result":{"prompts":[]}}"#;
    let out = e.rewrite_json(body, |_, _| true, &mut t).expect("replaced");
    let v = json(&out);
    assert_eq!(v["id"], "a");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("tools"));
    for bad in [
        &b"not json"[..],
        b"",
        b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"tools\":[]}",
        b"7",
    ] {
        let mut e = Expect::single_list("\"a\"", Kind::Tool);
        let out = e
            .rewrite_json(bad, |_, _| true, &mut Tally::default())
            .expect("replaced");
        assert_eq!(json(&out)["id"], "a", "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn error_answers_pass_unchanged() {
    let body = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}"#;
    let mut e = Expect::single_list("7", Kind::Tool);
    assert_eq!(e.rewrite_json(body, |_, _| true, &mut Tally::default()), None);
}

fn batch() -> Expect {
    let mut e = Expect::new(true);
    e.forwarded("7", Some(Kind::Tool));
    e.forwarded("\"a\\u0062\"", Some(Kind::Tool));
    e.forwarded("3", None);
    e
}

#[test]
fn batch_answers_are_matched_by_value_and_refusals_merged() {
    let mut e = batch();
    e.answer(br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32030,"message":"denied"}}"#.to_vec());
    let body = format!(
        "[{},{},{}]",
        LIST.replace("\"id\":7", "\"id\":7.0"),
        LIST.replace("\"id\":7", "\"id\":\"ab\""),
        r#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#
    );
    let out = e
        .rewrite_json(body.as_bytes(), hide_secret, &mut Tally::default())
        .expect("rewritten");
    let v = json(&out);
    let a = v.as_array().expect("array");
    assert_eq!(a.len(), 4);
    assert_eq!(names(&a[0]), ["ok_tool"]);
    assert_eq!(names(&a[1]), ["ok_tool"]);
    assert_eq!(a[2]["id"], 3);
    assert_eq!(a[3]["error"]["code"], -32030);
}

#[test]
fn a_batch_answer_with_an_unknown_element_loses_its_lists() {
    for odd in [
        LIST.replace("\"id\":7", "\"id\":99"),
        "{\"jsonrpc\":\"2.0\",\"id\":\"ab\",\"result\":{}, \"result\":{}}".to_owned(),
        "17".to_owned(),
    ] {
        let mut e = batch();
        let body = format!("[{},{odd}]", LIST);
        let out = e
            .rewrite_json(body.as_bytes(), |_, _| true, &mut Tally::default())
            .expect("replaced");
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(!text.contains("secret_tool"), "{odd}: {text}");
        let v = json(&out);
        let ids: Vec<&Value> = v.as_array().expect("array").iter().map(|m| &m["id"]).collect();
        assert!(ids.contains(&&Value::from(7)), "{text}");
        assert!(
            ids.contains(&&Value::from("a\u{62}")),
            "the unanswered list gets an error: {text}"
        );
    }
}

#[test]
fn a_second_answer_for_the_same_id_is_dropped() {
    let mut e = Expect::single_list("7", Kind::Tool);
    let body = format!("[{},{}]", LIST.replace("secret_tool", "x"), LIST);
    let out = e
        .rewrite_json(body.as_bytes(), |_, _| true, &mut Tally::default())
        .expect("rewritten");
    assert!(!String::from_utf8_lossy(&out).contains("secret_tool"));
}

#[test]
fn headers_decide_by_allow_list() {
    let e = Expect::single_list("7", Kind::Tool);
    assert_eq!(e.start(200, Some(b"application/json"), None, false), Start::Json);
    assert_eq!(
        e.start(201, Some(b"Application/JSON; charset=utf-8"), None, false),
        Start::Json
    );
    assert_eq!(
        e.start(200, Some(b"TEXT/EVENT-STREAM"), Some(b"identity"), false),
        Start::Sse
    );
    assert_eq!(e.start(307, Some(b"text/plain"), None, false), Start::PassThrough);
    assert_eq!(e.start(500, Some(b"application/json"), None, false), Start::Json);
    match e.start(404, Some(b"text/plain"), None, false) {
        Start::Replace { status, body, .. } => {
            assert_eq!(status, 404, "an error's status is kept: a 404 still ends the session");
            assert_eq!(json(&body)["id"], 7);
        }
        other => panic!("{other:?}"),
    }
    for (ct, enc, eos) in [
        (None, None, false),
        (Some(&b"application/json-seq"[..]), None, false),
        (Some(b"application/x-ndjson"), None, false),
        (Some(b"text/plain"), None, false),
        (Some(b"application/json"), Some(&b"gzip"[..]), false),
        (Some(b"text/event-stream"), Some(b"br"), false),
        (Some(b"application/json"), None, true),
    ] {
        match e.start(200, ct, enc, eos) {
            Start::Replace { body, .. } => {
                let v = json(&body);
                assert_eq!(
                    (v["id"].clone(), v["error"]["code"].clone()),
                    (Value::from(7), Value::from(-32603))
                );
            }
            other => panic!("{ct:?} {enc:?}: {other:?}"),
        }
    }
    assert_eq!(
        Expect::new(false).start(200, None, None, false),
        Start::PassThrough,
        "nothing to read"
    );
}

#[test]
fn a_batch_of_notifications_answered_with_202_gets_the_gateway_answers() {
    let mut e = Expect::new(true);
    e.answer(br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32030,"message":"denied"}}"#.to_vec());
    match e.start(202, None, None, true) {
        Start::Answer(body) => assert_eq!(json(&body)[0]["id"], 4),
        other => panic!("{other:?}"),
    }
}

fn run_sse(e: &mut Expect, stream: &[u8], cuts: &[usize]) -> (Vec<u8>, Tally) {
    let mut rw = SseRewriter::new(1 << 20);
    let mut t = Tally::default();
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
        out.extend(rw.push(e, &stream[at..c], hide_secret, &mut t));
        at = c;
    }
    out.extend(rw.finish(e, hide_secret, &mut t));
    (out, t)
}

/// Events as a WHATWG client dispatches them (data of each), via the crate's own parser.
fn dispatched(stream: &[u8]) -> Vec<String> {
    let mut p = sse::Parser::new();
    let mut ev: Vec<String> = p
        .push(stream)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.data().map(str::to_owned))
        .collect();
    let end = p.finish().unwrap();
    ev.extend(end.event.and_then(|e| e.data().map(str::to_owned)));
    ev
}

#[test]
fn a_priming_event_before_the_answer_passes_intact() {
    // What @modelcontextprotocol/server-everything sends: an id and empty data first.
    let stream = format!("id: 1\ndata: \n\nevent: message\nid: 2\ndata: {LIST}\n\n");
    let mut e = Expect::single_list("7", Kind::Tool);
    let (out, t) = run_sse(&mut e, stream.as_bytes(), &[]);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("id: 1\ndata: \n\n"), "{text}");
    let ev = dispatched(&out);
    assert_eq!(ev.len(), 2);
    assert_eq!(names(&json(ev[1].as_bytes())), ["ok_tool"]);
    assert_eq!(t.refused, 0);
}

#[test]
fn every_line_ending_and_chunking_gives_the_same_filtered_answer() {
    for nl in ["\n", "\r\n", "\r"] {
        let stream = format!(": ping{nl}retry: 1000{nl}{nl}id: 5{nl}data: {{\"jsonrpc\":\"2.0\",{nl}data: \"id\":7,\"result\":{{\"tools\":[{{\"name\":\"ok_tool\"}},{{\"name\":\"secret_tool\"}}]}}}}{nl}{nl}");
        let whole = run_sse(&mut Expect::single_list("7", Kind::Tool), stream.as_bytes(), &[]).0;
        for i in 0..stream.len() {
            let (out, _) = run_sse(&mut Expect::single_list("7", Kind::Tool), stream.as_bytes(), &[i]);
            assert_eq!(out, whole, "{nl:?} split at {i}");
        }
        let ev = dispatched(&whole);
        assert_eq!(ev.len(), 1, "{nl:?}: {}", String::from_utf8_lossy(&whole));
        assert_eq!(names(&json(ev[0].as_bytes())), ["ok_tool"]);
    }
}

#[test]
fn a_final_event_without_its_blank_line_is_judged_and_terminated() {
    let stream = format!("event: message\ndata: {LIST}");
    let (out, _) = run_sse(&mut Expect::single_list("7", Kind::Tool), stream.as_bytes(), &[]);
    let ev = dispatched(&out);
    assert_eq!(ev.len(), 1, "{}", String::from_utf8_lossy(&out));
    assert_eq!(names(&json(ev[0].as_bytes())), ["ok_tool"]);
}

#[test]
fn a_stream_that_ends_without_the_answer_gets_an_error_event() {
    let stream = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
    let (out, t) = run_sse(&mut Expect::single_list("7", Kind::Tool), stream, &[]);
    let ev = dispatched(&out);
    assert_eq!(ev.len(), 2);
    assert_eq!(json(ev[1].as_bytes())["id"], 7);
    assert_eq!(t.first.map(|f| f.0), Some(reason::MISSING));
}

#[test]
fn unparseable_event_data_is_not_delivered() {
    let stream = format!("data: {}\n\n", LIST.replace("}}", "}},NaN"));
    let (out, _) = run_sse(&mut Expect::single_list("7", Kind::Tool), stream.as_bytes(), &[]);
    assert!(!String::from_utf8_lossy(&out).contains("secret_tool"));
}

#[test]
fn an_oversized_event_ends_the_stream_with_an_error_for_the_list() {
    let mut rw = SseRewriter::new(64);
    let mut e = Expect::single_list("7", Kind::Tool);
    let mut t = Tally::default();
    let out = rw.push(&mut e, format!("data: {LIST}\n\n").as_bytes(), hide_secret, &mut t);
    assert_eq!(json(dispatched(&out)[0].as_bytes())["error"]["code"], -32603);
    assert!(rw.push(&mut e, b"data: x\n\n", hide_secret, &mut t).is_empty());
    assert!(rw.finish(&mut e, hide_secret, &mut t).is_empty());
}

#[test]
fn sse_batch_gets_the_gateway_answers_as_events() {
    let mut e = batch();
    e.answer(br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32030,"message":"denied"}}"#.to_vec());
    let stream = format!(
        "data: {LIST}\n\ndata: {}\n\n",
        r#"{"jsonrpc":"2.0","id":3,"result":{}}"#
    );
    let (out, _) = run_sse(&mut e, stream.as_bytes(), &[]);
    let ev: Vec<Value> = dispatched(&out).iter().map(|d| json(d.as_bytes())).collect();
    let ids: Vec<&Value> = ev.iter().map(|v| &v["id"]).collect();
    assert_eq!(
        ids,
        [&Value::from(7), &Value::from(3), &Value::from("ab"), &Value::from(4)]
    );
    assert_eq!(names(&ev[0]), ["ok_tool"]);
}

#[test]
fn a_replayed_list_on_the_get_stream_is_filtered_by_its_shape() {
    // Resuming with Last-Event-ID replays answers sent on other streams, under their ids.
    let stream = format!(
        "id: 1\ndata: \n\nevent: message\nid: 2\ndata: {LIST}\n\nevent: message\ndata: {}\n\n",
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#
    );
    let mut e = Expect::stream();
    assert_eq!(e.start(200, Some(b"text/event-stream"), None, false), Start::Sse);
    let (out, t) = run_sse(&mut e, stream.as_bytes(), &[]);
    let ev = dispatched(&out);
    assert_eq!(ev.len(), 3, "{}", String::from_utf8_lossy(&out));
    assert_eq!(names(&json(ev[1].as_bytes())), ["ok_tool"]);
    assert_eq!(t.removed, [1, 0, 0, 0]);
    assert_eq!(t.refused, 0, "nothing is missing on a stream with no pending requests");
}

mod dispatched {
    use super::super::*;

    fn keep_all(_: Kind, _: &str) -> bool {
        true
    }

    #[test]
    fn server_requests_get_tagged_ids_and_the_answer_passes() {
        let mut e = Expect::dispatched(Some("5"), "mem", "memory");
        assert!(e.must_read());
        assert_eq!(e.start(200, Some(b"text/event-stream"), None, false), Start::Sse);
        let mut rw = SseRewriter::new(1 << 20);
        let mut t = Tally::default();
        let stream = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"sampling/createMessage\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[]}}\n\n";
        let out = String::from_utf8(rw.push(&mut e, stream, keep_all, &mut t)).unwrap();
        assert!(out.contains(r#""id":"mcpv:mem:0""#), "{out}");
        assert!(out.contains(r#""id":5,"result""#), "{out}");
        assert_eq!(t.refused, 0);
    }

    #[test]
    fn a_dead_backend_is_a_jsonrpc_error_naming_it_and_404_ends_the_session() {
        let e = Expect::dispatched(Some("\"a\""), "gh", "github");
        let Start::Replace { status, body, .. } = e.start(503, Some(b"text/plain"), None, false) else {
            panic!()
        };
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "a");
        assert_eq!(v["error"]["code"], -32031);
        assert!(v["error"]["message"].as_str().unwrap().contains("github"));
        let Start::Replace { status, .. } = e.start(404, None, None, true) else {
            panic!()
        };
        assert_eq!(status, 404);
        // A client's answer to a server request: nothing comes back to read.
        let e = Expect::dispatched(None, "gh", "github");
        assert_eq!(e.start(202, None, None, true), Start::PassThrough);
    }
}
