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
    let seen = |r: Result<rewrite::Scan<'_>, rewrite::RewriteError>| format!("{r:?}");
    let walked = memo::without(|| seen(rewrite::scan(body)));
    let warm = seen(rewrite::scan(body));
    let again = seen(rewrite::scan(body));
    assert_eq!(warm, walked, "memo (warm) differs from the walk");
    assert_eq!(again, walked, "memo (this input) differs from the walk");
}
