//! "Fail closed, provably": property-based tests of the response core against an oracle that
//! reads the gateway's output like lenient MCP clients do (`oracle_support`).
//!
//! - **Safety**: for any upstream answer (JSON or SSE, any framing and chunking, batches with
//!   re-rendered, unknown, repeated or missing ids, duplicate keys, NaN tokens, garbage, any
//!   content type, coding and status), the forbidden name never reaches a client as part of a
//!   response to a list request; the only other outcome is a JSON-RPC error with the
//!   request's id. Every list request is answered.
//! - **Liveness**: for well-formed answers in any valid framing and chunking, the visible name
//!   comes through for the request's id, blocks without a message pass byte for byte, SSE ids
//!   are kept, and nothing is refused.
//!
//! `PROPTEST_CASES=N` raises the case count (default keeps the file around a few seconds in
//! debug). Failures found by fuzzing are pinned as plain tests at the end.

mod oracle_support;

use mcp_policy_core::response::Start;
use mcp_policy_core::rewrite::Kind;
use oracle_support::*;
use proptest::prelude::*;
use proptest::test_runner::Config;

const KINDS: [Kind; 4] = [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::ResourceTemplate];

fn list_key(k: Kind) -> &'static str {
    match k {
        Kind::Tool => "tools",
        Kind::Prompt => "prompts",
        Kind::Resource => "resources",
        Kind::ResourceTemplate => "resourceTemplates",
    }
}

fn item_key(k: Kind) -> &'static str {
    match k {
        Kind::Tool | Kind::Prompt => "name",
        Kind::Resource => "uri",
        Kind::ResourceTemplate => "uriTemplate",
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: what the gateway forwarded.

/// Renderings of the request ids the scenarios use, as JSON text: the client's spelling
/// first, then other spellings of the same value.
fn renderings(canonical: &str) -> &'static [&'static str] {
    match canonical {
        "7" => &["7", "7.0", "7e0", "70e-1", "0.7e1", "7E+0", "7.000"],
        "ab" => &["\"ab\"", "\"a\\u0062\"", "\"\\u0061b\"", "\"\\u0061\\u0062\""],
        "3" => &["3", "3.0", "30e-1"],
        _ => unreachable!(),
    }
}

/// Ids that answer nothing forwarded (`"7"` is a string, not 7).
const WRONG_IDS: &[&str] = &[
    "99",
    "\"7\"",
    "null",
    "\"AB\"",
    "-7",
    "7.5",
    "[7]",
    "{\"id\":7}",
    "true",
    "\"ab \"",
];

#[derive(Debug, Clone)]
struct Ctx {
    sc: Scenario,
    /// Canonical name per pending entry (lists first, then others): "7", "ab", "3".
    canon: Vec<&'static str>,
    kinds: Vec<Option<Kind>>,
}

fn scenario() -> impl Strategy<Value = Ctx> {
    (0u8..6, 0usize..4, 0usize..4, any::<bool>(), any::<bool>()).prop_map(|(shape, k1, k2, other, answer)| {
        let (k1, k2) = (KINDS[k1], KINDS[k2]);
        let mut sc = match shape {
            0 | 1 => Scenario::single("7", k1),
            2 => Scenario::single("\"ab\"", k1),
            3 => Scenario::single("\"a\\u0062\"", k1),
            _ => Scenario {
                batch: true,
                lists: vec![("7".into(), k1)],
                others: vec![],
                answers: vec![],
            },
        };
        let mut canon = vec![if shape == 2 || shape == 3 { "ab" } else { "7" }];
        if shape >= 4 {
            if shape == 5 {
                sc.lists.push(("\"a\\u0062\"".into(), k2));
                canon.push("ab");
            }
            if other {
                sc.others.push("3".into());
            }
            if answer {
                sc.answers
                    .push(r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32030,"message":"denied"}}"#.into());
            }
        }
        let mut kinds: Vec<Option<Kind>> = sc.lists.iter().map(|(_, k)| Some(*k)).collect();
        for _ in &sc.others {
            canon.push("3");
            kinds.push(None);
        }
        Ctx { sc, canon, kinds }
    })
}

// ---------------------------------------------------------------------------------------------
// Messages. A message is rendered as pieces whose boundaries are token boundaries (so a valid
// stream may split data lines there); `valid` says whether the rendering is a well-formed
// answer the gateway should deliver.

const SECRET_SPELLINGS: &[&str] = &[
    "secret_tool",
    "secr\\u0065t_tool",
    "\\u0073ecret_tool",
    "secret\\u005ftool",
    "s\\u0065cr\\u0065t_t\\u006Fol",
];
const OK_SPELLINGS: &[&str] = &["ok_tool", "ok\\u005ftool", "\\u006fk_tool"];

#[derive(Debug, Clone)]
struct MsgSpec {
    /// Who it answers: a pending entry, a wrong id, no id, or no answer at all.
    target: u8,
    id_variant: u8,
    items: Vec<u8>,
    mutation: u8,
    arg: u16,
    order: u8,
    pretty: bool,
}

fn msg_spec(max_mutation: u8) -> impl Strategy<Value = MsgSpec> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..5),
        0..=max_mutation,
        any::<u16>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(target, id_variant, items, mutation, arg, order, pretty)| MsgSpec {
            target,
            id_variant,
            items,
            mutation,
            arg,
            order,
            pretty,
        })
}

struct Rendered {
    pieces: Vec<String>,
    /// A well-formed answer for `answers` (index into pending), or a message that is not an
    /// answer (`None`).
    answers: Option<usize>,
}

impl Rendered {
    fn text(&self) -> String {
        self.pieces.concat()
    }
}

fn p(s: impl Into<String>) -> String {
    s.into()
}

/// Render one item of a list of `kind`.
fn item(kind: Kind, b: u8, mutation: u8) -> Vec<String> {
    let key = item_key(kind);
    let sec = SECRET_SPELLINGS[(b as usize / 4) % SECRET_SPELLINGS.len()];
    let ok = OK_SPELLINGS[(b as usize / 4) % OK_SPELLINGS.len()];
    let name = |n: &str| vec![p("{"), format!("\"{key}\""), p(":"), format!("\"{n}\""), p("}")];
    match (b % 4, mutation) {
        (0, _) => name(ok),
        (1, 4) => {
            // The name twice: a first-wins and a last-wins reader disagree.
            let (a, c) = if b & 0x80 == 0 { (ok, sec) } else { (sec, ok) };
            vec![
                p("{"),
                format!("\"{key}\":\"{a}\""),
                p(","),
                format!("\"{key}\":\"{c}\""),
                p("}"),
            ]
        }
        (1, 11) => {
            // The key spelled with an escape.
            let esc: String = key
                .chars()
                .map(|c| {
                    if c == 'a' || c == 'u' {
                        format!("\\u{:04x}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            vec![p("{"), format!("\"{esc}\""), p(":"), format!("\"{sec}\""), p("}")]
        }
        (1, 17) => vec![
            p("{"),
            format!("\"{key}\""),
            p(":"),
            format!("\"{sec}\\ud800\""),
            p("}"),
        ],
        (1, _) => name(sec),
        (2, _) => vec![
            p("{"),
            format!("\"{key}\""),
            p(":"),
            format!("\"{ok}\""),
            p(","),
            p("\"description\""),
            p(":"),
            p("\"d\\\"q\""),
            p(","),
            p("\"x\""),
            p(":"),
            p("[1.5e2,null,{}]"),
            p("}"),
        ],
        _ => name(sec),
    }
}

fn join(out: &mut Vec<String>, parts: Vec<Vec<String>>, sep: &str) {
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(p(sep));
        }
        out.extend(part);
    }
}

/// Render one message for the scenario.
fn render(ctx: &Ctx, m: &MsgSpec) -> Rendered {
    let n = ctx.canon.len();
    // Half the messages answer a forwarded request; the rest are the odd ones.
    let t = if m.target < 128 {
        m.target as usize % n
    } else {
        n + m.target as usize % 6
    };
    let mut answers = None;
    let (id, kind): (Option<String>, Option<Kind>) = if t < n {
        let r = renderings(ctx.canon[t]);
        answers = Some(t);
        (Some(r[m.id_variant as usize % r.len()].to_owned()), ctx.kinds[t])
    } else {
        let k = ctx.kinds[0];
        match t - n {
            0 | 1 => (Some(WRONG_IDS[m.id_variant as usize % WRONG_IDS.len()].to_owned()), k),
            2 => (None, k),
            3 => {
                let note = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}"#;
                return Rendered {
                    pieces: vec![p(note)],
                    answers: None,
                };
            }
            4 => {
                let req = r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[]}}"#;
                return Rendered {
                    pieces: vec![p(req)],
                    answers: None,
                };
            }
            _ => {
                let junk = ["17", "\"x\"", "null", "[]", "{}", "{", "{\"jsonrpc\":\"2.0\"}"];
                return Rendered {
                    pieces: vec![p(junk[m.id_variant as usize % junk.len()])],
                    answers: None,
                };
            }
        }
    };
    let mutation = m.mutation;
    let Some(kind) = kind else {
        // A non-list request's answer.
        let id = id.unwrap_or_default();
        return Rendered {
            pieces: vec![
                p("{"),
                p("\"jsonrpc\":\"2.0\""),
                p(","),
                format!("\"id\":{id}"),
                p(","),
                p("\"result\""),
                p(":"),
                p("{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}"),
                p("}"),
            ],
            answers,
        };
    };
    // The list result.
    let lk = list_key(kind);
    let items: Vec<Vec<String>> = m.items.iter().map(|b| item(kind, *b, mutation)).collect();
    let mut list = vec![p("[")];
    join(&mut list, items, ",");
    list.push(p("]"));
    let mut result = vec![p("{")];
    let listed_key = if mutation == 11 && m.arg.is_multiple_of(2) {
        lk.replacen('s', "\\u0073", 1)
    } else {
        lk.to_owned()
    };
    let mut members: Vec<Vec<String>> = vec![[vec![format!("\"{listed_key}\""), p(":")], list.clone()].concat()];
    members.push(vec![p("\"nextCursor\""), p(":"), p("\"c\\/1\"")]);
    match mutation {
        3 => {
            // The list key twice (second maybe spelled with an escape), one copy holding the
            // secret.
            let other = if m.arg.is_multiple_of(2) {
                lk.to_owned()
            } else {
                lk.replacen('s', "\\u0073", 1)
            };
            members.push(vec![
                format!("\"{other}\""),
                p(":"),
                format!("[{{\"{}\":\"{SECRET}\"}}]", item_key(kind)),
            ]);
        }
        5 => {
            let tok = ["NaN", "Infinity", "-Infinity"][m.arg as usize % 3];
            members.push(vec![p("\"x\""), p(":"), p(tok)]);
        }
        12 => {
            members = vec![vec![
                format!("\"{lk}\""),
                p(":"),
                format!("{{\"0\":{{\"{}\":\"{SECRET}\"}}}}", item_key(kind)),
            ]];
        }
        13 => members.push(vec![p("\"_meta\""), p(":"), p("{\"ttl\":60}")]),
        16 => members.push(vec![p("\"x\""), p(":"), p("\"a\u{1}b\"")]),
        _ => {}
    }
    if m.order & 8 != 0 {
        members.reverse();
    }
    join(&mut result, members, ",");
    result.push(p("}"));
    if mutation == 12 && m.arg % 2 == 1 {
        result = vec![format!("[{{\"{}\":\"{SECRET}\"}}]", item_key(kind))];
    }
    // The envelope.
    let jr = vec![p("\"jsonrpc\""), p(":"), p("\"2.0\"")];
    let idk = if mutation == 10 { "\"\\u0069d\"" } else { "\"id\"" };
    let resk = if mutation == 10 {
        "\"r\\u0065sult\""
    } else {
        "\"result\""
    };
    let mut env: Vec<Vec<String>> = Vec::new();
    if let Some(id) = &id {
        env.push(vec![p(idk), p(":"), id.clone()]);
    }
    env.push([vec![p(resk), p(":")], result.clone()].concat());
    match mutation {
        1 => {
            // The id twice: one that answers, one that does not.
            let wrong = WRONG_IDS[m.arg as usize % WRONG_IDS.len()];
            env.insert(
                if m.arg & 0x100 == 0 { 0 } else { 1 },
                vec![p("\"id\""), p(":"), p(wrong)],
            );
        }
        2 => {
            // `result` twice: one filtered list, one holding the secret.
            let bad = format!("{{\"{lk}\":[{{\"{}\":\"{SECRET}\"}}]}}", item_key(kind));
            env.push(vec![p("\"result\""), p(":"), bad]);
            if m.arg.is_multiple_of(2) {
                let l = env.len();
                env.swap(l - 1, l - 2);
            }
        }
        8 => env.push(vec![p("\"error\""), p(":"), p("{\"code\":-1,\"message\":\"x\"}")]),
        9 => env.push(vec![p("\"method\""), p(":"), p("\"tools/list\"")]),
        14 => {
            // The error shape, for the list id: passes as it is.
            env.pop();
            env.push(vec![p("\"error\""), p(":"), p("{\"code\":-32601,\"message\":\"no\"}")]);
        }
        _ => {}
    }
    match m.order % 4 {
        0 => env.insert(0, jr),
        1 => env.push(jr),
        2 => {
            env.reverse();
            env.insert(0, jr);
        }
        _ => env.reverse(), // and no "jsonrpc" at all
    }
    let mut pieces = vec![p("{")];
    join(&mut pieces, env, ",");
    pieces.push(p("}"));
    if m.pretty {
        pieces = pieces
            .into_iter()
            .map(|s| match s.as_str() {
                "," => p(",\n  "),
                ":" => p(": "),
                _ => s,
            })
            .collect();
    }
    match mutation {
        6 => pieces.push(p([
            " x",
            "}",
            ",{}",
            "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}",
        ][m.arg as usize % 4])),
        7 => {
            let text: String = pieces.concat();
            let cut = m.arg as usize % text.len().max(1);
            let cut = (0..=cut).rev().find(|c| text.is_char_boundary(*c)).unwrap_or(0);
            pieces = vec![text[..cut].to_owned()];
        }
        _ => {}
    }
    let well_formed = matches!(mutation, 0 | 10 | 11 | 13 | 15) && (m.order % 4 != 3);
    Rendered {
        pieces,
        answers: if well_formed && id.is_some() { answers } else { None },
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies and streams.

#[derive(Debug, Clone)]
struct JsonSpec {
    array: bool,
    msgs: Vec<MsgSpec>,
    garbage: u8,
    bom: bool,
}

fn json_body(ctx: &Ctx, s: &JsonSpec) -> Vec<u8> {
    let texts: Vec<String> = s.msgs.iter().map(|m| render(ctx, m).text()).collect();
    let mut body = if s.array || texts.len() != 1 {
        format!(
            "[{}]",
            texts.join(if s.garbage.is_multiple_of(3) { ",\n" } else { "," })
        )
    } else {
        texts[0].clone()
    };
    match s.garbage % 16 {
        1 => body.push_str(" garbage"),
        2 => body.push_str("\n\n"),
        3 => body = format!("  {body}"),
        4 => body.push_str(",NaN"),
        _ => {}
    }
    let mut out = Vec::new();
    if s.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(body.as_bytes());
    out
}

#[derive(Debug, Clone)]
struct BlockSpec {
    kind: u8,
    msg: MsgSpec,
    fields: u8,
    splits: Vec<u16>,
}

#[derive(Debug, Clone)]
struct StreamSpec {
    blocks: Vec<BlockSpec>,
    /// Line endings, cycled (0 LF, 1 CRLF, 2 CR).
    nl: Vec<u8>,
    bom: bool,
    /// 0: terminated; 1: final block without its blank line; 2: without any final newline.
    ending: u8,
    cuts: Vec<usize>,
}

struct Stream {
    bytes: Vec<u8>,
    /// Blocks without a message, as generated (they must pass byte for byte).
    plain: Vec<Vec<u8>>,
    /// (pending index answered, the block's SSE id).
    answered: Vec<(usize, Option<String>)>,
}

/// Build an SSE stream. `valid`: split data only at token boundaries, avoid a CR line end
/// followed by an LF blank line (which reads as one CRLF), and only well-formed messages.
fn sse_stream(ctx: &Ctx, s: &StreamSpec, valid: bool) -> Stream {
    let mut out: Vec<u8> = Vec::new();
    if s.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut plain = Vec::new();
    let mut answered = Vec::new();
    let mut nl_i = 0usize;
    let mut last_cr = false;
    let nb = s.blocks.len();
    for (bi, b) in s.blocks.iter().enumerate() {
        let mut lines: Vec<String> = Vec::new();
        let mut has_msg = false;
        let mut sse_id = None;
        // A BOM that is not at the start of the stream, in front of the block's first line
        // (then its data line): to a parser it is part of the field name.
        let bom_here = b.fields & 0x20 != 0 && !valid && bi > 0;
        let fields = if bom_here { b.fields & !0x0F } else { b.fields };
        let b = &BlockSpec { fields, ..b.clone() };
        if b.fields & 1 != 0 {
            let id = format!("ev-{bi}");
            lines.push(format!("id: {id}"));
            sse_id = Some(id);
        }
        if b.fields & 2 != 0 {
            lines.push(p(if b.fields & 0x40 != 0 {
                "event:message"
            } else {
                "event: message"
            }));
        }
        if b.fields & 4 != 0 {
            lines.push(p("retry: 1000"));
        }
        if b.fields & 8 != 0 {
            lines.push(p(": keep-alive"));
        }
        match b.kind % 8 {
            0 => lines.push(p("data: ")), // priming
            1 => lines.push(p(":ping")),
            2 if !valid => lines.push(p("data")),
            2 => lines.push(p("data:")),
            7 => lines.push(p("event: endpoint")),
            _ => {
                let r = render(ctx, &b.msg);
                if valid {
                    answered.push((r.answers.expect("valid streams carry answers"), sse_id.clone()));
                }
                has_msg = true;
                // Data lines: split the text at some of its token boundaries (valid) or
                // anywhere (also inside tokens, and at the text's own newlines).
                let text = r.text();
                let mut cuts: Vec<usize> = if valid {
                    let mut acc = 0;
                    let bounds: Vec<usize> = r
                        .pieces
                        .iter()
                        .map(|x| {
                            acc += x.len();
                            acc
                        })
                        .collect();
                    b.splits.iter().map(|c| bounds[*c as usize % bounds.len()]).collect()
                } else {
                    b.splits
                        .iter()
                        .map(|c| *c as usize % (text.len() + 1))
                        .filter(|c| text.is_char_boundary(*c))
                        .collect()
                };
                cuts.sort_unstable();
                cuts.dedup();
                let mut at = 0;
                for c in cuts.into_iter().chain(std::iter::once(text.len())) {
                    let part = &text[at..c];
                    for (k, sub) in part.split('\n').enumerate() {
                        let sep = if b.fields & 0x80 != 0 && k == 0 {
                            "data:"
                        } else {
                            "data: "
                        };
                        lines.push(format!("{sep}{sub}"));
                    }
                    at = c;
                }
            }
        }
        if b.fields & 16 != 0 && !valid {
            lines.push(p(
                "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}",
            ));
        }
        let last = bi + 1 == nb;
        let mut block = Vec::new();
        if bom_here {
            block.extend_from_slice(b"\xEF\xBB\xBF");
        }
        for (li, line) in lines.iter().enumerate() {
            block.extend_from_slice(line.as_bytes());
            if last && s.ending == 2 && li + 1 == lines.len() {
                break;
            }
            let nl = s.nl.get(nl_i % s.nl.len().max(1)).copied().unwrap_or(0) % 3;
            nl_i += 1;
            block.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][nl as usize]);
            last_cr = nl == 2;
        }
        if !(last && s.ending != 0) {
            let mut nl = s.nl.get(nl_i % s.nl.len().max(1)).copied().unwrap_or(0) % 3;
            nl_i += 1;
            if valid && last_cr && nl == 0 {
                nl = 2;
            }
            block.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][nl as usize]);
            last_cr = nl == 2;
        }
        if !has_msg {
            plain.push(block.clone());
        }
        out.extend_from_slice(&block);
    }
    Stream {
        bytes: out,
        plain,
        answered,
    }
}

fn block_spec(max_mutation: u8) -> impl Strategy<Value = BlockSpec> {
    (
        any::<u8>(),
        msg_spec(max_mutation),
        any::<u8>(),
        prop::collection::vec(any::<u16>(), 0..4),
    )
        .prop_map(|(kind, msg, fields, splits)| BlockSpec {
            kind,
            msg,
            fields,
            splits,
        })
}

fn stream_spec(max_mutation: u8) -> impl Strategy<Value = StreamSpec> {
    (
        prop::collection::vec(block_spec(max_mutation), 0..5),
        prop::collection::vec(0u8..3, 1..4),
        any::<bool>(),
        0u8..3,
        prop::collection::vec(any::<usize>(), 0..6),
    )
        .prop_map(|(blocks, nl, bom, ending, cuts)| StreamSpec {
            blocks,
            nl,
            bom,
            ending,
            cuts,
        })
}

// ---------------------------------------------------------------------------------------------
// Headers.

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("Application/JSON"),
    Some("application/json; charset=utf-8"),
    Some("text/event-stream"),
    Some("TEXT/Event-Stream;charset=UTF-8"),
    None,
    Some("application/json-seq"),
    Some("application/x-ndjson"),
    Some("text/plain"),
    Some("application/jsonx"),
    Some("text/event-streams"),
    Some("application/json, text/event-stream"),
    Some("text/plain; profile=application/json"),
    Some("application/json; x=text/event-stream"),
    Some(" text/event-stream "),
    Some(""),
];
const ENCODINGS: &[Option<&str>] = &[
    None,
    None,
    Some("identity"),
    Some("gzip"),
    Some("br"),
    Some("GZIP"),
    Some(" Identity "),
    Some(""),
];
const STATUSES: &[u16] = &[200, 200, 200, 201, 204, 202, 404, 500];

fn headers() -> impl Strategy<Value = (u16, Option<&'static str>, Option<&'static str>, bool)> {
    (
        prop::sample::select(STATUSES),
        prop::sample::select(CONTENT_TYPES),
        prop::sample::select(ENCODINGS),
        prop::bool::weighted(0.05),
    )
}

fn upstream(body: Vec<u8>, h: (u16, Option<&str>, Option<&str>, bool), cuts: Vec<usize>) -> Upstream {
    let (status, ct, ce, eos) = h;
    let gz = ce.is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"));
    Upstream {
        status,
        content_type: ct.map(|c| c.as_bytes().to_vec()),
        content_encoding: ce.map(|c| c.as_bytes().to_vec()),
        eos,
        body: if gz { gzip_stored(&body) } else { body },
        cuts,
    }
}

fn judge(ctx: &Ctx, up: &Upstream) -> Result<Delivered, TestCaseError> {
    let d = run(&ctx.sc, up, 1 << 20);
    check_safety(&ctx.sc, &d).map_err(TestCaseError::fail)?;
    check_answered(&ctx.sc, &d).map_err(TestCaseError::fail)?;
    check_refusal_events(up, &d).map_err(TestCaseError::fail)?;
    if let Start::Replace { .. } = &d.start {
        prop_assert!(
            is_refusal(&ctx.sc, &d),
            "a Replace that is not a refusal: {:?}",
            String::from_utf8_lossy(&d.body)
        );
    }
    let coded = up
        .content_encoding
        .as_deref()
        .is_some_and(|c| !c.trim_ascii().is_empty() && !c.trim_ascii().eq_ignore_ascii_case(b"identity"));
    if coded && (200..300).contains(&up.status) && !up.eos {
        prop_assert!(
            matches!(d.start, Start::Replace { .. }),
            "an encoded body must be refused: {:?}",
            d.start
        );
    }
    Ok(d)
}

fn cases(default: u32) -> Config {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(cases(1500))]

    #[test]
    fn json_answers_never_leak(ctx in scenario(), spec in (any::<bool>(), prop::collection::vec(msg_spec(17), 1..5), any::<u8>(), prop::bool::weighted(0.05)), h in headers()) {
        let spec = JsonSpec { array: spec.0, msgs: spec.1, garbage: spec.2, bom: spec.3 };
        let body = json_body(&ctx, &spec);
        judge(&ctx, &upstream(body, h, vec![]))?;
    }

    #[test]
    fn sse_answers_never_leak(ctx in scenario(), spec in stream_spec(17), h in headers()) {
        let s = sse_stream(&ctx, &spec, false);
        let d = judge(&ctx, &upstream(s.bytes.clone(), h, spec.cuts.clone()))?;
        if d.start == Start::Sse {
            // However the stream is chunked, the output is the same.
            let whole = run(&ctx.sc, &upstream(s.bytes.clone(), h, vec![]), 1 << 20);
            prop_assert_eq!(String::from_utf8_lossy(&whole.body), String::from_utf8_lossy(&d.body));
        }
    }

    #[test]
    fn sse_answers_to_json_content_types_never_leak(ctx in scenario(), spec in stream_spec(17)) {
        // An SSE body labelled as JSON (and the reverse is covered above): refused, not read.
        let s = sse_stream(&ctx, &spec, false);
        judge(&ctx, &upstream(s.bytes, (200, Some("application/json"), None, false), vec![]))?;
    }

    #[test]
    fn valid_json_answers_come_through(ctx in scenario(), msgs in prop::collection::vec(msg_spec(0), 0..3), variants in prop::collection::vec(any::<u8>(), 4), pretty in any::<bool>(), ct in 0usize..3, order in any::<u64>()) {
        // One well-formed answer per forwarded request, ids re-rendered, in any order.
        let mut specs: Vec<MsgSpec> = (0..ctx.canon.len()).map(|t| MsgSpec {
            target: t as u8,
            id_variant: variants[t % 4],
            items: msgs.first().map(|m| m.items.clone()).unwrap_or_default().into_iter().chain([0]).collect(),
            mutation: [0, 10, 11, 13][variants[(t + 1) % 4] as usize % 4],
            arg: variants[(t + 2) % 4] as u16,
            order: variants[(t + 3) % 4] & !3,
            pretty,
        }).collect();
        let rot = (order % specs.len() as u64) as usize;
        specs.rotate_left(rot);
        let body = json_body(&ctx, &JsonSpec { array: ctx.sc.batch, msgs: specs, garbage: 0, bom: false });
        let d = judge(&ctx, &upstream(body, (200, Some(["application/json", "Application/Json; charset=utf-8", "application/json;charset=UTF-8"][ct]), None, false), vec![]))?;
        prop_assert_eq!(d.tally.refused, 0, "{:?}", d.tally.first);
        live(&ctx, &d, &[])?;
    }

    #[test]
    fn valid_sse_answers_come_through(ctx in scenario(), spec in stream_spec(0), variants in prop::collection::vec(any::<u8>(), 4)) {
        // Keep every block kind, then add one well-formed message block per forwarded request.
        let mut spec = spec;
        for b in &mut spec.blocks {
            if b.kind % 8 >= 3 {
                b.kind = 0;
            }
        }
        for t in 0..ctx.canon.len() {
            let at = variants[t % 4] as usize % (spec.blocks.len() + 1);
            spec.blocks.insert(at, BlockSpec {
                kind: 3,
                msg: MsgSpec { target: t as u8, id_variant: variants[(t + 1) % 4], items: vec![1, 0, variants[(t + 2) % 4] & 0xFC], mutation: [0, 10, 11, 13][variants[(t + 3) % 4] as usize % 4], arg: variants[t % 4] as u16, order: variants[(t + 2) % 4] & !3, pretty: variants[t % 4] & 1 == 1 },
                fields: variants[(t + 3) % 4] & !16,
                splits: vec![variants[0] as u16, variants[1] as u16],
            });
        }
        let s = sse_stream(&ctx, &spec, true);
        let d = judge(&ctx, &upstream(s.bytes.clone(), (200, Some("text/event-stream"), None, false), spec.cuts.clone()))?;
        prop_assert_eq!(d.start.clone(), Start::Sse);
        prop_assert_eq!(d.tally.refused, 0, "{:?}\n{:?}", d.tally.first, String::from_utf8_lossy(&s.bytes));
        for block in &s.plain {
            let out = &d.body;
            prop_assert!(out.windows(block.len().max(1)).any(|w| w == &block[..]) || block.is_empty(),
                "a block without a message was changed: {:?} not in {:?}", String::from_utf8_lossy(block), String::from_utf8_lossy(out));
        }
        live(&ctx, &d, &s.answered)?;
    }
}

/// Liveness: every list request gets its result, with the visible name in it (and, in SSE, the
/// event's id kept).
fn live(ctx: &Ctx, d: &Delivered, sse_ids: &[(usize, Option<String>)]) -> Result<(), TestCaseError> {
    let msgs = strict_messages(d);
    let events = if d.start == Start::Sse {
        sse_events(&d.body, false)
    } else {
        vec![]
    };
    for (i, id) in ctx.sc.list_ids().iter().enumerate() {
        let kind = ctx.kinds[i].expect("lists first");
        let got = msgs.iter().find(|m| {
            m.get("id")
                .is_some_and(|v| v == id || v.as_f64().is_some_and(|f| id.as_f64() == Some(f)))
        });
        let Some(m) = got else {
            return Err(TestCaseError::fail(format!(
                "no answer for {id}: {:?}",
                String::from_utf8_lossy(&d.body)
            )));
        };
        let names: Vec<&str> = m["result"][list_key(kind)]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t[item_key(kind)].as_str()).collect())
            .unwrap_or_default();
        prop_assert!(
            names.contains(&VISIBLE),
            "{id}: {names:?} in {:?}",
            String::from_utf8_lossy(&d.body)
        );
        prop_assert!(!names.contains(&SECRET));
        if let Some((_, Some(want))) = sse_ids.iter().find(|(t, _)| *t == i) {
            let ev = events.iter().find(|e| {
                serde_json::from_str::<serde_json::Value>(&e.data)
                    .ok()
                    .is_some_and(|v| {
                        v.get("id")
                            .is_some_and(|v| v == id || v.as_f64().is_some_and(|f| id.as_f64() == Some(f)))
                    })
            });
            prop_assert_eq!(
                ev.and_then(|e| e.id.clone()),
                Some(want.clone()),
                "the SSE id of the answer is kept"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The oracle's own parts, checked against known answers.

#[test]
fn the_oracles_sse_reader_follows_whatwg() {
    let s = b"\xEF\xBB\xBFdata: a\r\ndata:b\rid: 1\n\n: c\n\nevent: x\ndata: tail";
    let strict = sse_events(s, false);
    assert_eq!(strict.len(), 1);
    assert_eq!(strict[0].data, "a\nb");
    assert_eq!(strict[0].id.as_deref(), Some("1"));
    let lenient = sse_events(s, true);
    assert_eq!(lenient.len(), 2);
    assert_eq!((lenient[1].event.as_str(), lenient[1].data.as_str()), ("x", "tail"));
    assert_eq!(sse_events(b"data:\n\n", false)[0].data, "");
    assert!(sse_events(b"id: 3\n\n", true).is_empty());
}

#[test]
fn the_oracles_json_reader_is_lenient() {
    let v = lenient_json(b"\xEF\xBB\xBF{\"a\":NaN,\"a\":\"s\\u0065\\ud800\"} {\"b\":1} junk");
    assert_eq!(v.len(), 2);
    assert!(v[0].any_string(&|s| s == "se\u{fffd}"));
    assert_eq!(gunzip_stored(&gzip_stored(b"hello")), Some(b"hello".to_vec()));
    assert_eq!(readings(Some(b"Application/JSON; x=text/event-stream")), (true, true));
    assert_eq!(readings(Some(b"text/plain")), (false, false));
}

// ---------------------------------------------------------------------------------------------
// Regressions: each failure the fuzzers found, with its minimal input.

fn sse(body: &[u8], cuts: Vec<usize>) -> Upstream {
    upstream(body.to_vec(), (200, Some("text/event-stream"), None, false), cuts)
}

/// Found by `sse_answers_never_leak`: the first block was dropped (not a JSON-RPC message),
/// so the second became the first bytes of the output. Its leading BOM was part of a field
/// name to the gateway (`\u{FEFF}data`, no data, forwarded unjudged), but a client strips a
/// BOM at the start of a stream and then dispatched the unfiltered list.
#[test]
fn regression_a_bom_after_a_dropped_event_does_not_become_the_streams_bom() {
    let sc = Scenario::single("7", Kind::Tool);
    let stream = b"data: garbage\n\n\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}\n\n";
    for cuts in [vec![], vec![15], vec![16], vec![17], vec![3, 18]] {
        let d = run(&sc, &sse(stream, cuts.clone()), 1 << 20);
        check_safety(&sc, &d).unwrap_or_else(|e| panic!("{cuts:?}: {e}"));
        check_answered(&sc, &d).unwrap();
    }
    // The same with the BOM block as the unterminated tail, and after a dropped unknown id.
    for stream in [
        &b"data: 17\n\n\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}"[..],
        b"data: {\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}\n\n\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}\n\n",
    ] {
        let d = run(&sc, &sse(stream, vec![]), 1 << 20);
        check_safety(&sc, &d).unwrap();
    }
    // A BOM that really is the stream's first bytes is forwarded once, as it came.
    let d = run(&sc, &sse(b"\xEF\xBB\xBF: hi\n\n", vec![]), 1 << 20);
    assert!(d.body.starts_with(b"\xEF\xBB\xBF: hi\n\n") && !d.body[3..].starts_with(b"\xEF\xBB\xBF"));
}

/// Found by `sse_answers_never_leak` (with the event-type check): a stream ending in an
/// unterminated `event: endpoint` line got the gateway's error appended right after it, which
/// clients read as one event of type `endpointevent: message` and ignore: the list request
/// never got its answer.
#[test]
fn regression_the_error_for_a_missing_list_is_not_glued_onto_an_unterminated_line() {
    let sc = Scenario::single("7", Kind::Tool);
    for stream in [
        &b"event: endpoint"[..],
        b": ping",
        b"id: 5\r",
        b"retry: 10\n",
        b"data: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\nevent: x",
    ] {
        let up = sse(stream, vec![]);
        let d = run(&sc, &up, 1 << 20);
        check_refusal_events(&up, &d).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(stream)));
        let ev = sse_events(&d.body, false);
        let last = ev.last().expect("the error event");
        assert_eq!(last.event, "message", "{:?}", String::from_utf8_lossy(&d.body));
        assert!(last.data.contains(GATEWAY_REFUSAL));
        assert!(d.body.starts_with(stream), "the tail itself passes as it came");
    }
}

/// Found by the `response_json` fuzz target: the oracle's first version flagged every string
/// containing the name, here a kept tool's schema text. Not a listing; the oracle now judges
/// item names of the requested list (every reading), and this input is delivered as it came.
#[test]
fn regression_the_name_in_a_kept_items_text_is_not_a_listing() {
    let sc = Scenario::single("7", Kind::Tool);
    let body = br#"{"jsonrpc":"1.0","id":7,"result":{"tools":[{"name":"ok_tool","inputSchema":{"tzpe":"o....secret_tool....bject"}},{"name":"cesret_tool"}],"nextCursor":"c"}}"#;
    let d = run(
        &sc,
        &upstream(body.to_vec(), (200, Some("application/json"), None, false), vec![]),
        1 << 20,
    );
    check_safety(&sc, &d).unwrap();
    assert_eq!(d.body, body.to_vec());
}

/// Found by the `response_sse` fuzz target (event limit 64): the output depends on the
/// chunking when an event exceeds the limit, because the parser fails on the chunk that
/// crossed it and the blocks completed earlier in that same chunk (`: ping`, `retry:`) are
/// lost with it. Accepted: either way the stream ends there and the list gets its error.
#[test]
fn regression_an_oversized_event_fails_closed_however_the_stream_is_chunked() {
    let sc = Scenario::single("7", Kind::Tool);
    let stream = b": ping\r\nretry: 1000\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":7,\"result\":{\"tools\":[{\"name\":\"secret_tool\"}]}}\r\n\r\n";
    for cuts in [vec![], vec![24], vec![1, 2, 3, 30, 60]] {
        let d = run(&sc, &sse(stream, cuts.clone()), 64);
        check_safety(&sc, &d).unwrap();
        check_answered(&sc, &d).unwrap();
        assert!(is_refusal(&sc, &d), "{cuts:?}");
        assert!(String::from_utf8_lossy(&d.body).contains("exceeds 64 bytes"));
    }
}

/// Found by the `response_sse` fuzz target: a name with invalid UTF-8 (`s\x8a\x8a\x8aecret_tool`)
/// was judged as the gateway's lossy decoding reads it (`s\u{FFFD}\u{FFFD}\u{FFFD}ecret_tool`,
/// visible) and forwarded raw; a client whose decoder drops invalid bytes reads `secret_tool`.
/// Events (and a final tail) that are not UTF-8 are now not delivered, as JSON bodies are not.
#[test]
fn regression_an_event_that_is_not_utf8_is_not_delivered() {
    let sc = Scenario::single("7", Kind::Tool);
    let stream = b"id: 1\ndata: \n\nevent: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"ok_tool\"},{\"name\":\"s\x8a\x8a\x8aecret_tool\"}]}}\n\n";
    let d = run(&sc, &sse(stream, vec![]), 1 << 20);
    check_safety(&sc, &d).unwrap();
    check_answered(&sc, &d).unwrap();
    assert!(d.body.starts_with(b"id: 1\ndata: \n\n"), "valid blocks still pass");
    assert!(std::str::from_utf8(&d.body).is_ok());
    let d = run(&sc, &sse(b": \xff\xfe\n\nid: \x8a", vec![]), 1 << 20);
    assert!(std::str::from_utf8(&d.body).is_ok(), "{:?}", d.body);
    // The JSON path already refused it.
    let body = &stream[41..stream.len() - 2];
    assert!(body.starts_with(b"{") && body.ends_with(b"}"));
    let d = run(
        &sc,
        &upstream(body.to_vec(), (200, Some("application/json"), None, false), vec![]),
        1 << 20,
    );
    assert!(is_refusal(&sc, &d), "{:?}", String::from_utf8_lossy(&d.body));
}
