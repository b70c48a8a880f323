//! A JSON answer (any bytes) to list requests: nothing a lenient client dispatches to a list
//! request names the secret; every list request is answered; a replacement is a refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_policy_core::response::Start;
use mcp_policy_core::rewrite::{self, memo};
use mcp_policy_core_fuzz::oracle::{self, Upstream};

fuzz_target!(|data: &[u8]| {
    let Some((&b, body)) = data.split_first() else { return };
    memo_agrees_with_the_walk(body);
    let sc = mcp_policy_core_fuzz::scenario(b);
    let up = Upstream {
        status: 200,
        content_type: Some(b"application/json".to_vec()),
        content_encoding: None,
        eos: false,
        body: body.to_vec(),
        cuts: vec![],
    };
    let d = oracle::run(&sc, &up, 1 << 20);
    assert_eq!(d.start, Start::Json);
    if let Err(e) = oracle::check_safety(&sc, &d) {
        panic!("{e}");
    }
    if let Err(e) = oracle::check_answered(&sc, &d) {
        panic!("{e}");
    }
});

/// The list memo (warm from earlier inputs, then surely holding this one) finds exactly what
/// the strict walk finds.
fn memo_agrees_with_the_walk(body: &[u8]) {
    memo::set_min_bytes(0);
    let seen = |r: Result<rewrite::Scan<'_>, rewrite::RewriteError>| format!("{:?}", r.map(|s| s.without_result_id()));
    let walked = memo::without(|| seen(rewrite::scan(body)));
    let warm = seen(rewrite::scan(body));
    let again = seen(rewrite::scan(body));
    assert_eq!(warm, walked, "memo (warm) differs from the walk");
    assert_eq!(again, walked, "memo (this input) differs from the walk");
    if let Ok(scan) = rewrite::scan(body) {
        lists_agree_with_each_name(&scan);
    }
}

/// Visibility remembered per list (by the scan's `result_id`) filters exactly as the policy's
/// index asked name by name, for principals who share a signature and for those who do not.
fn lists_agree_with_each_name(scan: &rewrite::Scan<'_>) {
    use mcp_policy_core::integrity::Edit;
    use mcp_policy_core::policy::{Kind, Policy};
    use mcp_policy_core::principal::{Principal, Source};
    use std::sync::OnceLock;
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        Policy::from_json(
            br#"{"rules":[
              {"id":"a","effect":"allow","principals":[{"subjects":["a*"]}],"tools":["*"],"resources":["file:///*"],"prompts":["p*"]},
              {"id":"d","effect":"deny","principals":[{}],"tools":["*e*"],"resources":["*x*"],"prompts":["*q*"]},
              {"id":"b","effect":"allow","principals":[{"subjects":["b*"]}],"tools":["s*","t*1"],"prompts":["*"]}]}"#,
        )
        .expect("the fuzz policy compiles")
    });
    for subject in ["ann", "amy", "bob", "zed"] {
        let mut who = Principal::anonymous();
        who.source = Source::Jwt;
        who.subject = subject.into();
        who.normalize();
        let view = policy.for_principal(&who, "any");
        for kind in [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt] {
            let Some(names) = scan.names(kind) else { continue };
            let by_list = view.visible_list(kind, scan.result_id(), names);
            let edits: Vec<Edit> = by_list.into_iter().map(Edit::keep_if).collect();
            let listed = format!("{:?}", scan.splice(kind, &edits));
            let named = format!("{:?}", scan.filter(kind, |k, n| view.visible_uncached(k, n)));
            assert_eq!(listed, named, "{subject} {kind:?}: per-list answers differ from per-name");
        }
    }
}
