//! The crate's SSE parser on any bytes: no panic; the same blocks however the bytes are
//! chunked; and the events it yields are the ones an independent WHATWG reader dispatches
//! (strict), plus the lenient final one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_policy_core::sse::{Event, Parser};
use mcp_policy_core_fuzz::oracle;

fn parse(stream: &[u8], cuts: &[usize]) -> (Vec<Event>, mcp_policy_core::sse::End) {
    let mut p = Parser::new();
    let mut ev = Vec::new();
    for r in oracle::chunks(stream.len(), cuts) {
        ev.extend(p.push(&stream[r]).expect("no limit reached"));
    }
    (ev, p.finish().expect("finish"))
}

/// (event type as dispatched, data) of the blocks a client dispatches.
fn dispatched<'a>(ev: impl Iterator<Item = &'a Event>) -> Vec<(String, String)> {
    ev.filter_map(|e| {
        let t = e.event_type().filter(|t| !t.is_empty()).unwrap_or("message");
        e.data().map(|d| (t.to_owned(), d.to_owned()))
    })
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&c, stream)) = data.split_first() else { return };
    let (whole, end) = parse(stream, &[]);
    let (split, end2) = parse(stream, &mcp_policy_core_fuzz::cuts(c, stream.len()));
    assert_eq!(whole, split, "blocks depend on the chunking");
    assert_eq!(end, end2, "the end depends on the chunking");
    // Ranges tile the stream.
    let mut at = 0;
    for e in whole.iter().chain(end.event.iter()) {
        assert_eq!(e.range().start, at);
        at = e.range().end;
    }
    if let Some(t) = &end.tail {
        assert_eq!(t.start, at);
        at = t.end;
    }
    assert_eq!(at, stream.len() as u64);
    // Differential: the independent reader dispatches the same events.
    let ours = dispatched(whole.iter().chain(end.event.iter()));
    let theirs: Vec<(String, String)> = oracle::sse_events(stream, false)
        .into_iter()
        .map(|e| (e.event, e.data))
        .collect();
    assert_eq!(ours, theirs, "strict reading differs");
    let mut ours_lenient = ours.clone();
    ours_lenient.extend(dispatched(end.lenient.iter()));
    let theirs_lenient: Vec<(String, String)> = oracle::sse_events(stream, true)
        .into_iter()
        .map(|e| (e.event, e.data))
        .collect();
    assert_eq!(ours_lenient, theirs_lenient, "lenient reading differs");
});
