//! Issue 9, "Fail closed, provably": the REQUEST oracle.
//!
//! Property-based tests of the whole request path of [`McpFilter`] (fake host, real tokens,
//! the policy of `tests_policy.rs`: `devs` may call `get_*` and `echo`, nobody `delete_*`)
//! against an oracle that reads what the filter forwards the way *lenient* upstream MCP
//! servers read a POST body. Independent of the core's parsers on purpose: the readings are
//! written here, from what real servers do.
//!
//! - **Safety**: for requests a hostile or odd client can send (single messages and batches;
//!   a forbidden `tools/call` hidden by JSON escapes in keys and values, duplicate keys at any
//!   depth, key spellings that differ only in case, BOMs, UTF-16/32 bodies, `charset=`
//!   parameters, content codings, any HTTP method, end of stream at headers, body or
//!   trailers, any chunking, re-used ids, notifications, NaN/Infinity, big numbers, deep
//!   nesting, garbage after the JSON, concatenated documents, MCP routing headers), either the
//!   filter answers locally, or nothing it forwards is, under *any* reading, a `tools/call` of
//!   a forbidden tool. Readings: Python's `json.loads(bytes)` (BOM / NUL-pattern sniffing,
//!   last duplicate wins, NaN accepted); the declared charset honoured (UTF-8, UTF-16/32 with
//!   and without BOM, Latin-1, UTF-7); UTF-8 decoded lossily; each text parsed by
//!   `serde_json::Value` and by a lenient parser that accepts NaN, trailing commas, BOMs as
//!   whitespace and concatenated documents, with keys looked up first-wins or last-wins,
//!   exactly or case-folded (Go's `encoding/json`); and the `Mcp-Method`/`Mcp-Name` headers
//!   for servers that route on them. A request that is neither answered nor forwarded (a
//!   stuck stream) also fails.
//! - **Liveness**: plain valid requests for allowed tools (POST, `application/json`, UTF-8, no
//!   tricks, any chunking, end of stream at body or trailers) are forwarded byte for byte.
//!
//! `PROPTEST_CASES=N` raises the case count (the default keeps the file within a few seconds
//! in debug). Every bypass found is a `regression_*` test at the end.

use crate::fake::FakeHost;
use crate::filter::{BodyStatus, HeadersStatus, McpFilter, Runtime};
use crate::stats::Stats;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_policy_core::config::FilterConfig;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// The gateway under test.

const RSA_PEM: &str = include_str!("../../core/tests/keys/rsa.pem");
const JWKS: &str = include_str!("../../core/tests/keys/jwks.json");
const ISS: &str = "https://idp.example";
const AUD: &str = "https://gw.example/mcp";

fn bearer() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
        let kid = jwks["keys"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["kty"] == "RSA"))
            .and_then(|k| k["kid"].as_str())
            .expect("an RSA key in the test JWKS")
            .to_owned();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        let claims =
            json!({"iss": ISS, "aud": AUD, "sub": "bob", "exp": 4_102_444_800u64, "scope": "mcp", "groups": ["devs"]});
        let t = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("key"),
        )
        .expect("sign");
        format!("Bearer {t}")
    })
}

fn rt() -> &'static Runtime {
    static R: OnceLock<Runtime> = OnceLock::new();
    R.get_or_init(|| {
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
            "security": {"allowed_hosts": ["gw.example*"]}
        });
        Runtime {
            config: FilterConfig::from_json(config.to_string().as_bytes()).expect("test config"),
            stats: Stats::for_tests(),
        }
    })
}

/// A tool the policy must never let through (`no-delete`, or no rule allows it).
fn forbidden(name: &str) -> bool {
    name.starts_with("delete_") || name == "admin_only"
}

const TOOLS: [&str; 5] = ["echo", "get_issue", "delete_repo", "delete_x", "admin_only"];
const BAD: &str = "delete_repo";

// ---------------------------------------------------------------------------------------------
// Driving the filter as Envoy does.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eos {
    Headers,
    Body,
    Trailers,
}

#[derive(Debug)]
enum Outcome {
    /// The filter answered locally (the status is shown in failure messages).
    Replied(#[allow(dead_code)] u16),
    /// Headers (and whatever body) went upstream.
    Forwarded,
    /// Neither: Envoy would hold the stream until a timeout.
    Stuck(&'static str),
}

struct Delivered {
    outcome: Outcome,
    /// Request headers as they left the filter.
    headers: Vec<(String, Vec<u8>)>,
    /// Every body byte the filter let through (released by a `Continue`).
    body: Vec<u8>,
}

/// Split `body` at `cuts` (positions taken modulo the length; repeats give empty chunks).
fn pieces(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for c in at {
        out.push(body[from..c].to_vec());
        from = c;
    }
    out.push(body[from..].to_vec());
    out
}

/// Run the request path: headers, body chunks (each `on_request_body` sees what was buffered
/// plus the new chunk, as Envoy's buffered + received body), optionally trailers.
fn deliver(headers: Vec<(String, Vec<u8>)>, body: &[u8], eos: Eos, cuts: &[usize]) -> Delivered {
    let rt = rt();
    let mut h = FakeHost {
        request_headers: headers,
        ..FakeHost::default()
    };
    let mut f = McpFilter::new();
    let mut forwarded = Vec::new();
    let done = |h: FakeHost, outcome: Outcome, body: Vec<u8>| Delivered {
        outcome,
        headers: h.request_headers,
        body,
    };
    if eos == Eos::Headers {
        let hs = f.on_request_headers(rt, &mut h, true);
        if let Some(r) = h.replies.first() {
            let s = r.status;
            return done(h, Outcome::Replied(s), forwarded);
        }
        return match hs {
            HeadersStatus::Continue => done(h, Outcome::Forwarded, forwarded),
            HeadersStatus::StopIteration => done(h, Outcome::Stuck("headers held at end of stream"), forwarded),
        };
    }
    let hs = f.on_request_headers(rt, &mut h, false);
    if let Some(r) = h.replies.first() {
        let s = r.status;
        return done(h, Outcome::Replied(s), forwarded);
    }
    let mut released = hs == HeadersStatus::Continue;
    let mut buffered: Vec<u8> = Vec::new();
    let chunks = pieces(body, cuts);
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        let last = i + 1 == n && eos == Eos::Body;
        h.request_body = [buffered.as_slice(), c.as_slice()].concat();
        let bs = f.on_request_body(rt, &mut h, last);
        if let Some(r) = h.replies.first() {
            let s = r.status;
            return done(h, Outcome::Replied(s), forwarded);
        }
        match bs {
            BodyStatus::Continue => {
                forwarded.extend_from_slice(&h.request_body);
                buffered.clear();
                released = true;
            }
            BodyStatus::StopAndBuffer => buffered = h.request_body.clone(),
            BodyStatus::StopNoBuffer => return done(h, Outcome::Stuck("body dropped without an answer"), forwarded),
        }
    }
    if eos == Eos::Trailers {
        h.request_body = buffered.clone();
        let bs = f.on_request_trailers(rt, &mut h);
        if let Some(r) = h.replies.first() {
            let s = r.status;
            return done(h, Outcome::Replied(s), forwarded);
        }
        match bs {
            BodyStatus::Continue => {
                forwarded.extend_from_slice(&h.request_body);
                buffered.clear();
                released = true;
            }
            _ => return done(h, Outcome::Stuck("trailers held"), forwarded),
        }
    }
    if !buffered.is_empty() {
        return done(h, Outcome::Stuck("body still buffered at end of stream"), forwarded);
    }
    if !released {
        return done(h, Outcome::Stuck("headers never released"), forwarded);
    }
    done(h, Outcome::Forwarded, forwarded)
}

// ---------------------------------------------------------------------------------------------
// Rendering requests: a tiny JSON AST whose strings can be spelled with escapes.

#[derive(Debug, Clone)]
enum J {
    /// Verbatim token text (numbers, literals, NaN, nesting).
    Lit(String),
    /// A string, spelled by the renderer (maybe with escapes).
    Str(String),
    /// A string literal's inside, verbatim (`n\u0061me`).
    RawStr(String),
    Arr(Vec<J>),
    /// Keys are `Str` or `RawStr`; repeats allowed.
    Obj(Vec<(J, J)>),
}

fn s(v: &str) -> J {
    J::Str(v.to_owned())
}
fn raw(v: &str) -> J {
    J::RawStr(v.to_owned())
}
fn lit(v: &str) -> J {
    J::Lit(v.to_owned())
}

/// xorshift64*: the renderer's choices (escapes, whitespace) from one generated seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
}

/// How strings and whitespace are spelled: 0 plain, 1 some escapes and whitespace, 2 every
/// character escaped.
struct Style {
    level: u8,
    rng: Rng,
}

impl Style {
    fn new(level: u8, seed: u64) -> Style {
        Style {
            level,
            rng: Rng(seed | 1),
        }
    }
    fn ws(&mut self, out: &mut String) {
        if self.level == 1 && self.rng.chance(1, 4) {
            let w = [" ", "\n", "\t", "\r\n", "  "];
            out.push_str(w[(self.rng.next() % w.len() as u64) as usize]);
        }
    }
    fn string(&mut self, v: &str, out: &mut String) {
        out.push('"');
        for c in v.chars() {
            let escape = match self.level {
                0 => false,
                1 => self.rng.chance(1, 3),
                _ => true,
            };
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                '/' if escape && self.rng.chance(1, 2) => out.push_str("\\/"),
                c if escape => {
                    let upper = self.rng.chance(1, 2);
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        if upper {
                            out.push_str(&format!("\\u{:04X}", u));
                        } else {
                            out.push_str(&format!("\\u{:04x}", u));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn render(&mut self, j: &J, out: &mut String) {
        match j {
            J::Lit(t) => out.push_str(t),
            J::Str(v) => self.string(v, out),
            J::RawStr(r) => {
                out.push('"');
                out.push_str(r);
                out.push('"');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.ws(out);
                    self.render(it, out);
                    self.ws(out);
                }
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.ws(out);
                    self.render(k, out);
                    self.ws(out);
                    out.push(':');
                    self.ws(out);
                    self.render(v, out);
                    self.ws(out);
                }
                out.push('}');
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What hostile clients send.

#[derive(Debug, Clone, Copy)]
enum Kind {
    Call(usize),
    List,
    Ping,
    Notification,
    PromptGet,
    ClientResponse,
    Initialize,
}

#[derive(Debug, Clone)]
enum IdC {
    Num(u8),
    Float(u8),
    Str(u8),
    /// The same id as a number, spelled as a string with escapes (`"\u0031"`).
    EscStr(u8),
    Big,
    Absent,
    Null,
}

#[derive(Debug, Clone)]
enum Trick {
    None,
    /// `params` has `name` twice: the forbidden tool and `echo`, in either order.
    DupName {
        bad_first: bool,
    },
    /// `method` twice (`tools/call` and `ping`), forbidden tool in params.
    DupMethod {
        call_first: bool,
    },
    /// `params` twice.
    DupParams {
        bad_first: bool,
    },
    /// A duplicate key deep inside `arguments`.
    DupDeep(u8),
    /// `jsonrpc` or `id` twice.
    DupEnvelope(u8),
    /// Another spelling of `name` / `params` / `method` next to the real one: case, Unicode
    /// case folding (`ſ` folds to `s`), spaces, NUL.
    KeyVariant {
        field: u8,
        variant: u8,
        bad_first: bool,
    },
    /// `method` spelled with escapes.
    MethodSpelling(u8),
    /// `name` key and value spelled with escapes.
    NameSpelling(u8),
    /// NaN / Infinity / other non-JSON numbers in arguments.
    OddNumber(u8),
    /// Nesting in arguments.
    Deep(u16),
    /// A string that, read as UTF-7, closes itself and adds `"name":"delete_repo"`.
    Utf7Smuggle,
    /// Positional params.
    ParamsArray,
    /// NUL, lone surrogates, odd characters in the tool name.
    NameChars(u8),
}

#[derive(Debug, Clone)]
struct MsgSpec {
    kind: Kind,
    id: IdC,
    trick: Trick,
}

const KEY_VARIANTS: [&[&str]; 3] = [
    &["Name", "NAME", "nAme", "name ", " name", "name\\u0000", "n\\u0041me"],
    &[
        "Params",
        "PARAMS",
        "param\u{17f}",
        "param\\u017f",
        "params ",
        "PARAM\\u017F",
    ],
    &["Method", "METHOD", "mEthod", "method ", "Method\\u0000"],
];
const METHOD_SPELLINGS: [&str; 6] = [
    "tools\\/call",
    "tools\\u002fcall",
    "tools\\u002Fcall",
    "\\u0074ools/call",
    "tools/c\\u0061ll",
    "\\u0074\\u006f\\u006f\\u006c\\u0073\\u002f\\u0063\\u0061\\u006c\\u006c",
];
const NAME_KEYS: [&str; 4] = ["name", "n\\u0061me", "\\u006eame", "nam\\u0065"];
const NAME_VALUES: [&str; 5] = [
    "d\\u0065lete_repo",
    "\\u0064elete_repo",
    "delete\\u005frepo",
    "delete_repo",
    "\\u0064\\u0065\\u006c\\u0065\\u0074\\u0065\\u005f\\u0072\\u0065\\u0070\\u006f",
];
const ODD_NUMBERS: [&str; 12] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "+1",
    "01",
    ".5",
    "1.",
    "1e400",
    "-1e400",
    "123456789012345678901234567890123456789",
    "1.00000000000000000000000000001e-400",
];
const NAME_CHARS: [&str; 6] = [
    "delete_repo\\u0000",
    "delete_repo\\ud800",
    "delete_\\udc00repo",
    "delete_repo\\u200b",
    "delete_repo\u{0}",
    "delete_repo\\uDBFF\\uDFFF",
];
/// Read as UTF-7, `+ACI-` is `"`: this string ends itself and smuggles a `name` member.
const UTF7_SMUGGLE: &str = "+ACI-,+ACI-name+ACI-:+ACI-delete_repo+ACI-,+ACI-y+ACI-:+ACI-";

fn id_json(id: &IdC) -> Option<J> {
    Some(match id {
        IdC::Num(n) => lit(&n.to_string()),
        IdC::Float(n) => lit(&format!("{n}.0")),
        IdC::Str(n) => s(&format!("r{n}")),
        IdC::EscStr(n) => raw(&format!("\\u00{:02x}", b'0' + n % 10)),
        IdC::Big => lit("123456789012345678901234567890"),
        IdC::Absent => return None,
        IdC::Null => lit("null"),
    })
}

fn call_params(name: J) -> J {
    J::Obj(vec![
        (s("name"), name),
        (s("arguments"), J::Obj(vec![(s("q"), s("x"))])),
    ])
}

fn ordered<T>(a: T, b: T, a_first: bool) -> [T; 2] {
    if a_first {
        [a, b]
    } else {
        [b, a]
    }
}

fn build(m: &MsgSpec) -> J {
    let mut env: Vec<(J, J)> = vec![(s("jsonrpc"), s("2.0"))];
    if let Some(id) = id_json(&m.id) {
        env.push((s("id"), id));
    }
    let (method, params): (&str, Option<J>) = match m.kind {
        Kind::Call(t) => ("tools/call", Some(call_params(s(TOOLS[t % TOOLS.len()])))),
        Kind::List => ("tools/list", None),
        Kind::Ping => ("ping", None),
        Kind::Notification => {
            env.retain(|(k, _)| !matches!(k, J::Str(k) if k == "id"));
            ("notifications/initialized", None)
        }
        Kind::PromptGet => ("prompts/get", Some(J::Obj(vec![(s("name"), s("p1"))]))),
        Kind::ClientResponse => {
            env.push((s("result"), J::Obj(vec![(s("name"), s(BAD))])));
            return J::Obj(env);
        }
        Kind::Initialize => (
            "initialize",
            Some(J::Obj(vec![
                (s("protocolVersion"), s("2025-06-18")),
                (s("capabilities"), J::Obj(vec![])),
                (
                    s("clientInfo"),
                    J::Obj(vec![(s("name"), s("c")), (s("version"), s("1"))]),
                ),
            ])),
        ),
    };
    let bad_call = || call_params(s(BAD));
    match &m.trick {
        Trick::None => {
            env.push((s("method"), s(method)));
            env.extend(params.map(|p| (s("params"), p)));
        }
        Trick::DupName { bad_first } => {
            env.push((s("method"), s("tools/call")));
            let [a, b] = ordered(s(BAD), s("echo"), *bad_first);
            env.push((s("params"), J::Obj(vec![(s("name"), a), (s("name"), b)])));
        }
        Trick::DupMethod { call_first } => {
            let [a, b] = ordered(s("tools/call"), s("ping"), *call_first);
            env.push((s("method"), a));
            env.push((s("params"), bad_call()));
            env.push((s("method"), b));
        }
        Trick::DupParams { bad_first } => {
            env.push((s("method"), s("tools/call")));
            let [a, b] = ordered(bad_call(), call_params(s("echo")), *bad_first);
            env.push((s("params"), a));
            env.push((s("params"), b));
        }
        Trick::DupDeep(d) => {
            env.push((s("method"), s("tools/call")));
            let mut inner = J::Obj(vec![(s("k"), lit("1")), (raw("\\u006b"), lit("2"))]);
            for _ in 0..(*d % 6) {
                inner = J::Arr(vec![J::Obj(vec![(s("a"), inner)])]);
            }
            env.push((
                s("params"),
                J::Obj(vec![
                    (s("name"), s("echo")),
                    (s("arguments"), J::Obj(vec![(s("x"), inner)])),
                ]),
            ));
        }
        Trick::DupEnvelope(v) => {
            env.push((s("method"), s(method)));
            env.extend(params.map(|p| (s("params"), p)));
            match v % 3 {
                0 => env.push((s("jsonrpc"), s("2.0"))),
                1 => env.push((s("id"), lit("77"))),
                _ => env.insert(0, (raw("json\\u0072pc"), s("1.0"))),
            }
        }
        Trick::KeyVariant {
            field,
            variant,
            bad_first,
        } => {
            let field = (*field % 3) as usize;
            let list = KEY_VARIANTS[field];
            let key = raw(list[*variant as usize % list.len()]);
            match field {
                0 => {
                    env.push((s("method"), s("tools/call")));
                    let [a, b] = ordered((key, s(BAD)), (s("name"), s("echo")), *bad_first);
                    env.push((s("params"), J::Obj(vec![a, b])));
                }
                1 => {
                    env.push((s("method"), s("tools/call")));
                    let [a, b] = ordered((key, bad_call()), (s("params"), call_params(s("echo"))), *bad_first);
                    env.push(a);
                    env.push(b);
                }
                _ => {
                    let [a, b] = ordered((key, s("tools/call")), (s("method"), s("ping")), *bad_first);
                    env.push(a);
                    env.push(b);
                    env.push((s("params"), bad_call()));
                }
            }
        }
        Trick::MethodSpelling(i) => {
            env.push((s("method"), raw(METHOD_SPELLINGS[*i as usize % METHOD_SPELLINGS.len()])));
            env.push((s("params"), params.unwrap_or_else(bad_call)));
        }
        Trick::NameSpelling(i) => {
            env.push((s("method"), s("tools/call")));
            let k = NAME_KEYS[*i as usize % NAME_KEYS.len()];
            let v = NAME_VALUES[*i as usize / NAME_KEYS.len() % NAME_VALUES.len()];
            env.push((s("params"), J::Obj(vec![(raw(k), raw(v))])));
        }
        Trick::OddNumber(i) => {
            env.push((s("method"), s("tools/call")));
            let n = lit(ODD_NUMBERS[*i as usize % ODD_NUMBERS.len()]);
            let name = match m.kind {
                Kind::Call(t) => TOOLS[t % TOOLS.len()],
                _ => "echo",
            };
            env.push((
                s("params"),
                J::Obj(vec![(s("name"), s(name)), (s("arguments"), J::Obj(vec![(s("n"), n)]))]),
            ));
        }
        Trick::Deep(d) => {
            env.push((s("method"), s("tools/call")));
            let d = *d as usize;
            let nest = format!("{}{}", "[".repeat(d), "]".repeat(d));
            env.push((
                s("params"),
                J::Obj(vec![
                    (s("name"), s("echo")),
                    (s("arguments"), J::Obj(vec![(s("n"), lit(&nest))])),
                ]),
            ));
        }
        Trick::Utf7Smuggle => {
            env.push((s("method"), s("tools/call")));
            env.push((
                s("params"),
                J::Obj(vec![(s("name"), s("echo")), (s("x"), raw(UTF7_SMUGGLE))]),
            ));
        }
        Trick::ParamsArray => {
            env.push((s("method"), s("tools/call")));
            env.push((s("params"), J::Arr(vec![s(BAD)])));
        }
        Trick::NameChars(i) => {
            env.push((s("method"), s("tools/call")));
            env.push((
                s("params"),
                J::Obj(vec![(s("name"), raw(NAME_CHARS[*i as usize % NAME_CHARS.len()]))]),
            ));
        }
    }
    J::Obj(env)
}

#[derive(Debug, Clone)]
enum Top {
    Single(MsgSpec),
    Batch(Vec<MsgSpec>),
    /// Verbatim bodies: empty, scalars, nested batches...
    Verbatim(u8),
}

const VERBATIM: [&str; 8] = [
    "",
    "[]",
    "null",
    "{}",
    "\"tools/call\"",
    r#"[[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}]]"#,
    r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repo"}}]]"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repo"}}"#,
];
const PREFIXES: [&str; 7] = ["", " ", "\n\t", "\u{feff}", "\u{feff}\u{feff}", "\u{a0}", "\u{c}"];
const SUFFIXES: [&str; 12] = [
    "",
    " ",
    "\r\n",
    "x",
    "}",
    ",{}",
    "\n{\"jsonrpc\":\"2.0\",\"id\":50,\"method\":\"tools/call\",\"params\":{\"name\":\"delete_repo\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":51,\"method\":\"tools/call\",\"params\":{\"name\":\"delete_repo\"}}",
    "\u{0}",
    " NaN",
    "\u{feff}",
    "\n\n",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Utf8,
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
    /// Latin-1 (characters above U+00FF fall back to UTF-8 bytes).
    Latin1,
}

fn encode(text: &str, enc: Enc) -> Vec<u8> {
    match enc {
        Enc::Utf8 => text.as_bytes().to_vec(),
        Enc::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Enc::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        Enc::Utf32Le => text.chars().flat_map(|c| (c as u32).to_le_bytes()).collect(),
        Enc::Utf32Be => text.chars().flat_map(|c| (c as u32).to_be_bytes()).collect(),
        Enc::Latin1 => {
            let mut out = Vec::new();
            for c in text.chars() {
                if (c as u32) < 0x100 {
                    out.push(c as u32 as u8);
                } else {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
            out
        }
    }
}

#[derive(Debug, Clone)]
struct BodySpec {
    top: Top,
    prefix: u8,
    suffix: u8,
    enc: Enc,
    style: u8,
    seed: u64,
}

fn body_text(b: &BodySpec) -> String {
    let mut st = Style::new(b.style, b.seed);
    let mut out = String::from(PREFIXES[b.prefix as usize % PREFIXES.len()]);
    match &b.top {
        Top::Single(m) => st.render(&build(m), &mut out),
        Top::Batch(ms) => st.render(&J::Arr(ms.iter().map(build).collect()), &mut out),
        Top::Verbatim(i) => out.push_str(VERBATIM[*i as usize % VERBATIM.len()]),
    }
    out.push_str(SUFFIXES[b.suffix as usize % SUFFIXES.len()]);
    out
}

const METHODS: [&str; 14] = [
    "POST", "POST", "POST", "POST", "POST", "POST", "GET", "DELETE", "HEAD", "OPTIONS", "PUT", "PATCH", "post",
    "CONNECT",
];
const CONTENT_TYPES: [Option<&str>; 22] = [
    Some("application/json"),
    Some("application/json"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/JSON"),
    Some("Application/Json ; Charset=UTF-16"),
    Some("application/json; charset=utf-16"),
    Some("application/json; charset=utf-16le"),
    Some("application/json; charset=UTF-16BE"),
    Some("application/json; charset=utf-32"),
    Some("application/json;charset=latin1"),
    Some("application/json; charset=iso-8859-1"),
    Some("application/json; charset=\"utf-7\""),
    Some("application/json; charset=utf-7"),
    Some("application/json; charset=UTF-7; x=1"),
    Some("text/plain"),
    Some("application/json-rpc"),
    Some("application/jsonx"),
    Some(" application/json "),
    Some("application/json, text/plain"),
    Some(""),
    None,
];
const CONTENT_ENCODINGS: [Option<&str>; 10] = [
    None,
    None,
    None,
    Some("identity"),
    Some("IDENTITY"),
    Some(" identity "),
    Some("gzip"),
    Some("identity, gzip"),
    Some("br"),
    Some(""),
];

#[derive(Debug, Clone)]
struct HeadSpec {
    method: u8,
    content_type: u8,
    /// A second `content-type` header.
    content_type2: Option<u8>,
    content_encoding: u8,
    /// A second `content-encoding` header.
    content_encoding2: Option<u8>,
    token: bool,
    /// 0 none; 1 `Mcp-Method: tools/call` + `Mcp-Name: delete_repo`; 2 the same for `echo`;
    /// 3 `Mcp-Name: delete_repo` alone.
    mcp: u8,
    /// A `content-length` header with the client's length.
    content_length: bool,
}

fn headers_of(hs: &HeadSpec, body_len: usize) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), METHODS[hs.method as usize % METHODS.len()].into()),
        (":path".into(), b"/mcp".to_vec()),
        (":authority".into(), b"gw.example".to_vec()),
    ];
    let ct = |i: u8| CONTENT_TYPES[i as usize % CONTENT_TYPES.len()];
    let ce = |i: u8| CONTENT_ENCODINGS[i as usize % CONTENT_ENCODINGS.len()];
    for v in [Some(hs.content_type), hs.content_type2]
        .into_iter()
        .flatten()
        .filter_map(ct)
    {
        out.push(("content-type".into(), v.into()));
    }
    for v in [Some(hs.content_encoding), hs.content_encoding2]
        .into_iter()
        .flatten()
        .filter_map(ce)
    {
        out.push(("content-encoding".into(), v.into()));
    }
    if hs.token {
        out.push(("authorization".into(), bearer().into()));
    }
    match hs.mcp % 4 {
        1 => {
            out.push(("mcp-method".into(), b"tools/call".to_vec()));
            out.push(("mcp-name".into(), BAD.into()));
        }
        2 => {
            out.push(("mcp-method".into(), b"tools/call".to_vec()));
            out.push(("mcp-name".into(), b"echo".to_vec()));
        }
        3 => out.push(("mcp-name".into(), BAD.into())),
        _ => {}
    }
    if hs.content_length {
        out.push(("content-length".into(), body_len.to_string().into()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The lenient upstream: decodings of the forwarded bytes.

fn utf16(b: &[u8], le: bool) -> Option<String> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = b
        .chunks(2)
        .map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    String::from_utf16(&units).ok()
}

fn utf32(b: &[u8], le: bool) -> Option<String> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    b.chunks(4)
        .map(|c| {
            let a = [c[0], c[1], c[2], c[3]];
            char::from_u32(if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            })
        })
        .collect()
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&x| x as char).collect()
}

/// RFC 2152 UTF-7, as Python's `utf-7` codec reads it (lenient about direct characters).
fn utf7(b: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c >= 0x80 {
            return None;
        }
        if c != b'+' {
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut bits, mut n, mut units) = (0u64, 0u32, Vec::new());
        while let Some(&x) = b.get(i) {
            let v = match x {
                b'A'..=b'Z' => x - b'A',
                b'a'..=b'z' => x - b'a' + 26,
                b'0'..=b'9' => x - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => break,
            };
            bits = (bits << 6) | v as u64;
            n += 6;
            if n >= 16 {
                n -= 16;
                units.push((bits >> n) as u16);
                bits &= (1 << n) - 1;
            }
            i += 1;
        }
        out.push_str(&String::from_utf16_lossy(&units));
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    Some(out)
}

/// Python's `json.loads(bytes)`: `json.detect_encoding`, then a strict decode.
fn python_text(b: &[u8]) -> Option<String> {
    if b.starts_with(&[0, 0, 0xfe, 0xff]) {
        return utf32(&b[4..], false);
    }
    if b.starts_with(&[0xff, 0xfe, 0, 0]) {
        return utf32(&b[4..], true);
    }
    if b.starts_with(&[0xfe, 0xff]) {
        return utf16(&b[2..], false);
    }
    if b.starts_with(&[0xff, 0xfe]) {
        return utf16(&b[2..], true);
    }
    if let Some(rest) = b.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return String::from_utf8(rest.to_vec()).ok();
    }
    if b.len() >= 4 {
        if b[0] == 0 {
            return if b[1] != 0 { utf16(b, false) } else { utf32(b, false) };
        }
        if b[1] == 0 {
            return if b[2] != 0 || b[3] != 0 {
                utf16(b, true)
            } else {
                utf32(b, true)
            };
        }
    } else if b.len() == 2 {
        if b[0] == 0 {
            return utf16(b, false);
        }
        if b[1] == 0 {
            return utf16(b, true);
        }
    }
    String::from_utf8(b.to_vec()).ok()
}

fn charset_of(ct: &[u8]) -> Option<String> {
    let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "charset").then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The body as a server honouring `charset` decodes it.
fn charset_texts(cs: &str, b: &[u8]) -> Vec<String> {
    let bom16 = |b: &[u8]| -> Vec<String> {
        if let Some(r) = b.strip_prefix(&[0xff, 0xfe]) {
            utf16(r, true).into_iter().collect()
        } else if let Some(r) = b.strip_prefix(&[0xfe, 0xff]) {
            utf16(r, false).into_iter().collect()
        } else {
            // No BOM: Python assumes the machine's order (little-endian), Java big-endian.
            [utf16(b, true), utf16(b, false)].into_iter().flatten().collect()
        }
    };
    match cs {
        "utf-8" | "utf8" => String::from_utf8(b.to_vec()).ok().into_iter().collect(),
        "utf-16" | "utf16" => bom16(b),
        "utf-16le" => utf16(b, true).into_iter().collect(),
        "utf-16be" => utf16(b, false).into_iter().collect(),
        "utf-32" | "utf32" => {
            if let Some(r) = b.strip_prefix(&[0xff, 0xfe, 0, 0]) {
                utf32(r, true).into_iter().collect()
            } else if let Some(r) = b.strip_prefix(&[0, 0, 0xfe, 0xff]) {
                utf32(r, false).into_iter().collect()
            } else {
                [utf32(b, true), utf32(b, false)].into_iter().flatten().collect()
            }
        }
        "utf-32le" => utf32(b, true).into_iter().collect(),
        "utf-32be" => utf32(b, false).into_iter().collect(),
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" | "us-ascii" | "ascii" | "windows-1252" => {
            vec![latin1(b)]
        }
        "utf-7" | "utf7" | "unicode-1-1-utf-7" => utf7(b).into_iter().collect(),
        _ => vec![],
    }
}

/// Every text a lenient server could make of the forwarded body, with how it got there.
fn texts(headers: &[(String, Vec<u8>)], b: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |label: String, t: String| {
        let stripped = t.trim_start_matches('\u{feff}').to_owned();
        for t in [t, stripped] {
            if !out.iter().any(|(_, x)| *x == t) {
                out.push((label.clone(), t));
            }
        }
    };
    if let Some(t) = python_text(b) {
        add("python json.loads(bytes)".into(), t);
    }
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-type") {
            if let Some(cs) = charset_of(v) {
                for t in charset_texts(&cs, b) {
                    add(format!("charset={cs}"), t);
                }
            }
        }
    }
    add("utf-8, lossy".into(), String::from_utf8_lossy(b).into_owned());
    out
}

// ---------------------------------------------------------------------------------------------
// The lenient upstream: a JSON reader that keeps every member, in order.

#[derive(Debug, Clone, PartialEq)]
enum L {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<L>),
    Obj(Vec<(String, L)>),
}

struct Lenient<'a> {
    c: &'a [char],
    i: usize,
    depth: usize,
}

impl Lenient<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r' | '\u{feff}')) {
            self.i += 1;
        }
    }
    fn word(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        if self.c.len() >= self.i + n && self.c[self.i..self.i + n].iter().copied().eq(w.chars()) {
            self.i += n;
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Option<L> {
        self.ws();
        if self.depth > 4000 {
            return None;
        }
        match self.peek()? {
            '{' => {
                self.i += 1;
                self.depth += 1;
                let mut m = Vec::new();
                loop {
                    self.ws();
                    match self.peek()? {
                        '}' => {
                            self.i += 1;
                            break;
                        }
                        ',' => self.i += 1,
                        '"' => {
                            let k = self.string()?;
                            self.ws();
                            if self.peek()? != ':' {
                                return None;
                            }
                            self.i += 1;
                            let v = self.value()?;
                            m.push((k, v));
                        }
                        _ => return None,
                    }
                }
                self.depth -= 1;
                Some(L::Obj(m))
            }
            '[' => {
                self.i += 1;
                self.depth += 1;
                let mut a = Vec::new();
                loop {
                    self.ws();
                    match self.peek()? {
                        ']' => {
                            self.i += 1;
                            break;
                        }
                        ',' => self.i += 1,
                        _ => a.push(self.value()?),
                    }
                }
                self.depth -= 1;
                Some(L::Arr(a))
            }
            '"' => self.string().map(L::Str),
            _ => {
                for (w, v) in [
                    ("true", L::Bool(true)),
                    ("false", L::Bool(false)),
                    ("null", L::Null),
                    ("NaN", L::Num("NaN".into())),
                    ("Infinity", L::Num("Infinity".into())),
                    ("-Infinity", L::Num("-Infinity".into())),
                ] {
                    if self.word(w) {
                        return Some(v);
                    }
                }
                let start = self.i;
                while matches!(self.peek(), Some('0'..='9' | '-' | '+' | '.' | 'e' | 'E')) {
                    self.i += 1;
                }
                (self.i > start).then(|| L::Num(self.c[start..self.i].iter().collect()))
            }
        }
    }
    fn hex4(&mut self) -> Option<u32> {
        let h: String = self.c.get(self.i..self.i + 4)?.iter().collect();
        let v = u32::from_str_radix(&h, 16).ok()?;
        self.i += 4;
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                '"' => return Some(out),
                '\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) && self.c.get(self.i) == Some(&'\\') {
                                let save = self.i;
                                self.i += 1;
                                if self.peek() == Some('u') {
                                    self.i += 1;
                                    if let Some(lo) = self.hex4().filter(|lo| (0xdc00..0xe000).contains(lo)) {
                                        let cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                        out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                        continue;
                                    }
                                }
                                self.i = save;
                            }
                            // Python keeps lone surrogates; U+FFFD stands in for them here.
                            out.push(char::from_u32(u).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Every top-level value, one after the other (concatenated documents, NDJSON), until the
/// text ends or stops being JSON.
fn lenient_values(text: &str) -> Vec<L> {
    let c: Vec<char> = text.chars().collect();
    let mut p = Lenient { c: &c, i: 0, depth: 0 };
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.peek().is_none() {
            break;
        }
        match p.value() {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

fn from_serde(v: &Value) -> L {
    match v {
        Value::Null => L::Null,
        Value::Bool(b) => L::Bool(*b),
        Value::Number(n) => L::Num(n.to_string()),
        Value::String(s) => L::Str(s.clone()),
        Value::Array(a) => L::Arr(a.iter().map(from_serde).collect()),
        Value::Object(o) => L::Obj(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect()),
    }
}

#[derive(Debug, Clone, Copy)]
struct Lookup {
    /// Keys compared case-insensitively with Unicode simple folding (Go's `encoding/json`).
    fold: bool,
    /// The first matching member wins (else the last, as Python, JavaScript, serde, Go).
    first: bool,
}

fn fold(k: &str) -> String {
    k.chars()
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn member<'a>(o: &'a [(String, L)], key: &str, how: Lookup) -> Option<&'a L> {
    let hit = |k: &String| if how.fold { fold(k) == key } else { k == key };
    if how.first {
        o.iter().find(|(k, _)| hit(k)).map(|(_, v)| v)
    } else {
        o.iter().rev().find(|(k, _)| hit(k)).map(|(_, v)| v)
    }
}

/// The tools a server reading `tops` this way would call.
fn tool_calls(tops: &[L], how: Lookup) -> Vec<String> {
    let mut out = Vec::new();
    let mut one = |m: &L| {
        let L::Obj(o) = m else { return };
        let Some(L::Str(method)) = member(o, "method", how) else {
            return;
        };
        if method != "tools/call" {
            return;
        }
        let Some(L::Obj(p)) = member(o, "params", how) else {
            return;
        };
        if let Some(L::Str(name)) = member(p, "name", how) {
            out.push(name.clone());
        }
    };
    for t in tops {
        match t {
            L::Arr(items) => items.iter().for_each(&mut one),
            m => one(m),
        }
    }
    out
}

const LOOKUPS: [(Lookup, &str); 4] = [
    (
        Lookup {
            fold: false,
            first: false,
        },
        "last duplicate wins",
    ),
    (
        Lookup {
            fold: false,
            first: true,
        },
        "first duplicate wins",
    ),
    (
        Lookup {
            fold: true,
            first: false,
        },
        "case-folded keys, last wins (Go encoding/json)",
    ),
    (
        Lookup {
            fold: true,
            first: true,
        },
        "case-folded keys, first wins",
    ),
];

/// Every reading under which the forwarded request calls a forbidden tool.
fn violations(headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (label, text) in texts(headers, body) {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            for name in tool_calls(&[from_serde(&v)], LOOKUPS[0].0) {
                if forbidden(&name) {
                    found.push(format!("{label} / serde_json::Value: tools/call {name:?}"));
                }
            }
        }
        let tops = lenient_values(&text);
        for (how, what) in LOOKUPS {
            for name in tool_calls(&tops, how) {
                if forbidden(&name) {
                    found.push(format!("{label} / lenient, {what}: tools/call {name:?}"));
                }
            }
        }
    }
    let header = |n: &str| {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
    };
    // Servers that route on the MCP 2026-07-28 headers do so for POSTed messages (a GET opens
    // the server's stream and names no tool).
    let names = header("mcp-name");
    let post = header(":method").iter().any(|m| m == "POST");
    if post && header("mcp-method").iter().any(|m| m == "tools/call") && names.iter().any(|n| forbidden(n)) {
        found.push(format!("Mcp-Method/Mcp-Name routing headers: tools/call {names:?}"));
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (0..TOOLS.len()).prop_map(Kind::Call),
        1 => Just(Kind::List),
        1 => Just(Kind::Ping),
        1 => Just(Kind::Notification),
        1 => Just(Kind::PromptGet),
        1 => Just(Kind::ClientResponse),
        1 => Just(Kind::Initialize),
    ]
}

fn id() -> impl Strategy<Value = IdC> {
    prop_oneof![
        6 => (0u8..4).prop_map(IdC::Num),
        1 => (0u8..4).prop_map(IdC::Float),
        2 => (0u8..4).prop_map(IdC::Str),
        1 => (0u8..4).prop_map(IdC::EscStr),
        1 => Just(IdC::Big),
        1 => Just(IdC::Absent),
        1 => Just(IdC::Null),
    ]
}

fn trick() -> impl Strategy<Value = Trick> {
    prop_oneof![
        16 => Just(Trick::None),
        2 => any::<bool>().prop_map(|bad_first| Trick::DupName { bad_first }),
        1 => any::<bool>().prop_map(|call_first| Trick::DupMethod { call_first }),
        1 => any::<bool>().prop_map(|bad_first| Trick::DupParams { bad_first }),
        1 => any::<u8>().prop_map(Trick::DupDeep),
        1 => any::<u8>().prop_map(Trick::DupEnvelope),
        3 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(field, variant, bad_first)| Trick::KeyVariant { field, variant, bad_first }),
        2 => any::<u8>().prop_map(Trick::MethodSpelling),
        2 => any::<u8>().prop_map(Trick::NameSpelling),
        2 => any::<u8>().prop_map(Trick::OddNumber),
        1 => prop_oneof![1u16..20, 120u16..140, 250u16..400].prop_map(Trick::Deep),
        2 => Just(Trick::Utf7Smuggle),
        1 => Just(Trick::ParamsArray),
        1 => any::<u8>().prop_map(Trick::NameChars),
    ]
}

fn msg() -> impl Strategy<Value = MsgSpec> {
    (kind(), id(), trick()).prop_map(|(kind, id, trick)| MsgSpec { kind, id, trick })
}

fn top() -> impl Strategy<Value = Top> {
    prop_oneof![
        6 => msg().prop_map(Top::Single),
        4 => prop::collection::vec(msg(), 1..5).prop_map(Top::Batch),
        1 => any::<u8>().prop_map(Top::Verbatim),
    ]
}

fn enc() -> impl Strategy<Value = Enc> {
    prop_oneof![
        20 => Just(Enc::Utf8),
        1 => Just(Enc::Utf16Le),
        1 => Just(Enc::Utf16Be),
        1 => Just(Enc::Utf32Le),
        1 => Just(Enc::Utf32Be),
        1 => Just(Enc::Latin1),
    ]
}

fn small_index(common: u8) -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 1 => Just(common), 2 => any::<u8>()]
}

fn body() -> impl Strategy<Value = BodySpec> {
    (top(), small_index(3), small_index(1), enc(), 0u8..3, any::<u64>()).prop_map(
        |(top, prefix, suffix, enc, style, seed)| BodySpec {
            top,
            prefix,
            suffix,
            enc,
            style,
            seed,
        },
    )
}

fn heads() -> impl Strategy<Value = HeadSpec> {
    // Mostly what a server would accept, so that most cases reach the body judgement.
    let mostly_first = |n: u32| prop_oneof![n => Just(0u8), 1 => any::<u8>()];
    (
        mostly_first(3),
        mostly_first(2),
        prop::option::weighted(0.1, any::<u8>()),
        mostly_first(4),
        prop::option::weighted(0.1, any::<u8>()),
        prop::bool::weighted(0.9),
        prop_oneof![6 => Just(0u8), 1 => 1u8..4],
        any::<bool>(),
    )
        .prop_map(
            |(method, content_type, content_type2, content_encoding, content_encoding2, token, mcp, content_length)| {
                HeadSpec {
                    method,
                    content_type,
                    content_type2,
                    content_encoding,
                    content_encoding2,
                    token,
                    mcp,
                    content_length,
                }
            },
        )
}

fn eos() -> impl Strategy<Value = Eos> {
    prop_oneof![1 => Just(Eos::Headers), 6 => Just(Eos::Body), 2 => Just(Eos::Trailers)]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..4)
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

// ---------------------------------------------------------------------------------------------
// The properties.

/// Readings with a reported, not yet fixed bypass (pinned by the `#[ignore]`d tests at the
/// end): left out of the safety property so `cargo test` stays green. Empty this when fixed.
const KNOWN_BYPASSES: &[&str] = &[];

fn check_safety(hs: &HeadSpec, b: &BodySpec, eos: Eos, cuts: &[usize]) -> Result<(), TestCaseError> {
    let text = body_text(b);
    let bytes = encode(&text, b.enc);
    // End of stream at the headers: no body ever comes.
    let bytes = if eos == Eos::Headers { Vec::new() } else { bytes };
    let headers = headers_of(hs, bytes.len());
    let d = deliver(headers.clone(), &bytes, eos, cuts);
    let show = || {
        format!(
            "request headers {:?}\nbody {:?}\nforwarded headers {:?}\nforwarded body {:?}",
            headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&bytes),
            d.headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&d.body)
        )
    };
    if let Outcome::Stuck(why) = d.outcome {
        return Err(TestCaseError::fail(format!(
            "neither answered nor forwarded ({why})\n{}",
            show()
        )));
    }
    // Whatever went upstream, even alongside a local answer, is read by the lenient server.
    let released = matches!(d.outcome, Outcome::Forwarded) || !d.body.is_empty();
    if released {
        let v: Vec<String> = violations(&d.headers, &d.body)
            .into_iter()
            .filter(|r| !KNOWN_BYPASSES.iter().any(|k| r.contains(k)))
            .collect();
        prop_assert!(v.is_empty(), "BYPASS under {v:#?}\n{}", show());
        // A rewritten batch carries its own length, never the client's.
        if let Some((_, cl)) = d.headers.iter().find(|(k, _)| k == "content-length") {
            if d.body != bytes {
                prop_assert_eq!(
                    String::from_utf8_lossy(cl).into_owned(),
                    d.body.len().to_string(),
                    "stale content-length\n{}",
                    show()
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(6000))]

    /// Safety: no reading of anything forwarded is a forbidden `tools/call`; otherwise the
    /// filter answered.
    #[test]
    fn nothing_forwarded_calls_a_forbidden_tool_under_any_reading(
        hs in heads(),
        b in body(),
        eos in eos(),
        cuts in cuts(),
    ) {
        check_safety(&hs, &b, eos, &cuts)?;
    }
}

// Liveness: plain, valid requests for what the caller may do go through untouched.

#[derive(Debug, Clone, Copy)]
enum Plain {
    Call(bool),
    List,
    Ping,
    Notification,
    PromptGet,
}

fn plain_message(p: Plain, id: usize, string_id: bool) -> Value {
    let id = if string_id { json!(format!("r-{id}")) } else { json!(id) };
    match p {
        Plain::Call(get) => {
            let name = if get { "get_issue" } else { "echo" };
            json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":{"q":"x","n":[1,2.5,{"k":null}]}}})
        }
        Plain::List => json!({"jsonrpc":"2.0","id":id,"method":"tools/list"}),
        Plain::Ping => json!({"jsonrpc":"2.0","id":id,"method":"ping"}),
        Plain::Notification => json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        Plain::PromptGet => json!({"jsonrpc":"2.0","id":id,"method":"prompts/get","params":{"name":"p1"}}),
    }
}

fn plain() -> impl Strategy<Value = Plain> {
    prop_oneof![
        4 => any::<bool>().prop_map(Plain::Call),
        1 => Just(Plain::List),
        1 => Just(Plain::Ping),
        1 => Just(Plain::Notification),
        1 => Just(Plain::PromptGet),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn plain_allowed_requests_are_forwarded_unchanged(
        msgs in prop::collection::vec(plain(), 1..5),
        batch in any::<bool>(),
        string_ids in any::<bool>(),
        trailers in any::<bool>(),
        cuts in cuts(),
    ) {
        let values: Vec<Value> = msgs.iter().enumerate().map(|(i, p)| plain_message(*p, i + 1, string_ids)).collect();
        let text = if batch || values.len() > 1 {
            Value::Array(values).to_string()
        } else {
            values[0].to_string()
        };
        let headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), b"POST".to_vec()),
            (":path".into(), b"/mcp".to_vec()),
            (":authority".into(), b"gw.example".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("authorization".into(), bearer().into()),
        ];
        let eos = if trailers { Eos::Trailers } else { Eos::Body };
        let d = deliver(headers, text.as_bytes(), eos, &cuts);
        prop_assert!(matches!(d.outcome, Outcome::Forwarded), "{:?} for {text}", d.outcome);
        prop_assert_eq!(String::from_utf8_lossy(&d.body), text.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle's own readings, checked on hand-made bodies (so a blind oracle cannot pass).

#[test]
fn the_oracle_sees_through_every_trick_it_generates() {
    let h = |ct: &str| vec![("content-type".to_owned(), ct.as_bytes().to_vec())];
    let json = h("application/json");
    let bad = |hs: &[(String, Vec<u8>)], body: &[u8]| !violations(hs, body).is_empty();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}"#;
    assert!(bad(&json, call.as_bytes()));
    assert!(!bad(&json, call.replace("delete_repo", "echo").as_bytes()));
    // Escapes, duplicates either way, case folding, NaN, concatenation.
    assert!(bad(
        &json,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"n\u0061me":"d\u0065lete_repo"}}"#
    ));
    assert!(bad(
        &json,
        br#"{"method":"tools/call","params":{"name":"echo","name":"delete_x"}}"#
    ));
    assert!(bad(
        &json,
        br#"{"method":"tools/call","params":{"name":"delete_x","name":"echo"}}"#
    ));
    assert!(bad(
        &json,
        br#"{"method":"tools/call","params":{"name":"echo","NAME":"delete_x"}}"#
    ));
    assert!(bad(
        &json,
        "{\"method\":\"tools/call\",\"param\u{17f}\":{\"name\":\"delete_x\"}}".as_bytes()
    ));
    assert!(bad(
        &json,
        br#"{"method":"tools/call","params":{"name":"delete_x","a":NaN}}"#
    ));
    assert!(bad(&json, format!("{{}}\n{call}").as_bytes()));
    // Encodings: sniffed, BOMs, declared charsets.
    for enc in [Enc::Utf16Le, Enc::Utf16Be, Enc::Utf32Le, Enc::Utf32Be] {
        assert!(bad(&json, &encode(call, enc)), "{enc:?}");
        assert!(bad(&json, &encode(&format!("\u{feff}{call}"), enc)), "{enc:?} BOM");
    }
    assert!(bad(&json, format!("\u{feff}{call}").as_bytes()));
    let smuggled =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","x":"{UTF7_SMUGGLE}"}}}}"#);
    assert!(!bad(&json, smuggled.as_bytes()));
    assert!(bad(&h("application/json; charset=utf-7"), smuggled.as_bytes()));
    // Routing headers.
    let mut hs = json.clone();
    hs.push((":method".into(), b"POST".to_vec()));
    hs.push(("mcp-method".into(), b"tools/call".to_vec()));
    hs.push(("mcp-name".into(), b"delete_repo".to_vec()));
    assert!(bad(&hs, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#));
}

// ---------------------------------------------------------------------------------------------
// Bypasses found by the properties above, pinned until the filter refuses them.

fn post_headers(content_type: &str, token: bool) -> Vec<(String, Vec<u8>)> {
    let mut hs: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/mcp".to_vec()),
        (":authority".into(), b"gw.example".to_vec()),
        ("content-type".into(), content_type.into()),
    ];
    if token {
        hs.push(("authorization".into(), bearer().into()));
    }
    hs
}

/// Safe: answered locally, or nothing forwarded reads (under any reading) as a forbidden call.
fn assert_refused_or_harmless(headers: Vec<(String, Vec<u8>)>, body: &str) {
    let d = deliver(headers, body.as_bytes(), Eos::Body, &[]);
    let v = match d.outcome {
        Outcome::Replied(_) => vec![],
        _ => violations(&d.headers, &d.body),
    };
    assert!(v.is_empty(), "{:?} forwarded {body}\nread as {v:#?}", d.outcome);
}

#[test]
fn regression_case_variant_keys_are_refused_since_go_upstreams_read_them() {
    // Anonymous `ping` (allowed) that a Go server decodes as `tools/call delete_repo`.
    assert_refused_or_harmless(
        post_headers("application/json", false),
        r#"{"jsonrpc":"2.0","id":0,"method":"ping","Method":"tools/call","params":{"name":"delete_repo","arguments":{"q":"x"}}}"#,
    );
    // bob calls `echo` (allowed); Go reads `Name` last.
    assert_refused_or_harmless(
        post_headers("application/json", true),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"delete_repo"}}"#,
    );
    // `paramſ` (U+017F LATIN SMALL LETTER LONG S) folds to `params` in Go.
    assert_refused_or_harmless(
        post_headers("application/json", true),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"},\"param\u{17f}\":{\"name\":\"delete_repo\"}}",
    );
}

#[test]
fn regression_a_utf7_charset_is_refused_since_it_smuggles_a_second_name() {
    assert_refused_or_harmless(
        post_headers("application/json; charset=\"utf-7\"", true),
        r#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"echo","x":"+ACI-,+ACI-name+ACI-:+ACI-delete_repo+ACI-,+ACI-y+ACI-:+ACI-"}}"#,
    );
}

#[test]
fn regression_a_second_content_type_cannot_declare_a_charset_the_module_did_not_read() {
    // Found by the safety property: the module read the first content-type, a server honouring
    // the last decodes UTF-7 and reads a second params.name.
    let mut headers = post_headers("application/json", true);
    headers.push(("content-type".into(), b"application/json; charset=\"utf-7\"".to_vec()));
    assert_refused_or_harmless(
        headers,
        r#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"echo","x":"+ACI-,+ACI-name+ACI-:+ACI-delete_repo+ACI-,+ACI-y+ACI-:+ACI-"}}"#,
    );
}
