//! Lazy, borrowing parse of JSON-RPC 2.0 messages as MCP Streamable HTTP carries them.
//!
//! Owns: the envelope (`jsonrpc`, `id`, `method`, `params`, `result`, `error`), single messages
//! and 2025-03-26 batches (JSON arrays). Does not own: what a method means (see [`crate::mcp`]).
//!
//! Only the envelope is decoded; `params`, `result` and `error` stay as borrowed raw JSON
//! slices of the request body, so the common case allocates nothing but the batch vector.
//! Duplicate envelope keys are refused (serde's derive reports them): a filter and an upstream
//! that disagree on which `method` wins would be a policy bypass.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// JSON-RPC's reserved error codes (JSON-RPC 2.0 §5.1).
pub mod code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
}

/// One JSON-RPC message, borrowing from the body it was parsed from.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// Has a method and an id: expects a response.
    Request {
        id: Id<'a>,
        method: Cow<'a, str>,
        params: Option<&'a RawValue>,
    },
    /// Has a method and no id.
    Notification {
        method: Cow<'a, str>,
        params: Option<&'a RawValue>,
    },
    /// Has an id and exactly one of `result` / `error` (a client answering a server request:
    /// sampling, elicitation, roots).
    Response {
        id: Id<'a>,
        outcome: Result<&'a RawValue, &'a RawValue>,
    },
}

impl<'a> Message<'a> {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn id(&self) -> Option<&Id<'a>> {
        match self {
            Message::Request { id, .. } | Message::Response { id, .. } => Some(id),
            Message::Notification { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&'a RawValue> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => *params,
            Message::Response { .. } => None,
        }
    }
}

/// A request id: a string or a number, kept as its raw JSON text so it is echoed back exactly.
#[derive(Debug, Clone, Copy)]
pub struct Id<'a>(&'a RawValue);

impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl<'a> Id<'a> {
    /// The id as raw JSON (`"abc"` with quotes, or `7`).
    pub fn as_json(&self) -> &'a str {
        self.0.get()
    }
}

/// A request id as a JSON *value*, for matching responses to requests: strings compare by
/// their decoded text (`"a\u0062"` is `"ab"`), numbers by exact decimal value (`7`, `7.0`,
/// `7e0` and `0.7e1` are one id; `9007199254740993` is not `9007199254740992`), and a string
/// never equals a number. This is how Python and JavaScript peers see ids after they re-render
/// them, so a response cannot slip past the gateway by spelling its id differently.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    Str(String),
    /// `value = 0.digits × 10^exp`, `digits` without leading or trailing zeros; zero is
    /// `digits == ""`, `exp == 0`, never negative.
    Num {
        negative: bool,
        digits: String,
        exp: i64,
    },
}

impl IdKey {
    /// The key of an id given as raw JSON text; `None` if it is not a JSON string or number
    /// (or a number too extreme to compare), which matches nothing.
    pub fn from_json(raw: &str) -> Option<IdKey> {
        let raw = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        match raw.as_bytes().first()? {
            b'"' => serde_json::from_str::<String>(raw).ok().map(IdKey::Str),
            b'-' | b'0'..=b'9' => number_key(raw),
            _ => None,
        }
    }
}

fn number_key(raw: &str) -> Option<IdKey> {
    let b = raw.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int = &raw[int_start..i];
    if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
        return None;
    }
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        let f = i + 1;
        i = f;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &raw[f..i];
        if frac.is_empty() {
            return None;
        }
    }
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let neg_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = raw[e..i].trim_start_matches('0');
        if i == e || digits.len() > 15 {
            // No digits, or an exponent no id needs (and that could overflow): matches nothing.
            return None;
        }
        exp = digits.parse::<i64>().unwrap_or(0);
        if neg_exp {
            exp = -exp;
        }
    }
    if i != b.len() {
        return None;
    }
    // value = int.frac × 10^exp = 0.(int frac) × 10^(len(int) + exp)
    let all: String = [int, frac].concat();
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    if digits.is_empty() {
        return Some(IdKey::Num {
            negative: false,
            digits: String::new(),
            exp: 0,
        });
    }
    Some(IdKey::Num {
        negative,
        digits: digits.to_owned(),
        exp: int.len() as i64 - lead as i64 + exp,
    })
}

/// What was in the body: one message or a batch.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    Single(Message<'a>),
    /// A 2025-03-26 batch. Each element is judged on its own: one bad element does not spoil
    /// the others, so elements are kept as results.
    Batch(Vec<Result<Message<'a>, ParseError>>),
}

/// Why a body or one batch element is not a valid JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// -32700 (not JSON) or -32600 (JSON, but not a valid JSON-RPC message).
    pub code: i32,
    pub message: String,
    /// The request id when it could be recovered, as raw JSON, so the error can answer it.
    pub id: Option<String>,
}

impl ParseError {
    fn parse(message: impl Into<String>) -> Self {
        Self {
            code: code::PARSE_ERROR,
            message: message.into(),
            id: None,
        }
    }
    fn invalid(message: impl Into<String>, id: Option<&RawValue>) -> Self {
        Self {
            code: code::INVALID_REQUEST,
            message: message.into(),
            id: id.map(|v| v.get().to_owned()),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "raw_keep_null")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Keep `"id": null` visible (as raw `null`) instead of folding it into "absent", so that it
/// can be refused: MCP ids must not be null.
fn raw_keep_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parse a POST body: a single JSON-RPC message or a batch.
pub fn parse(body: &[u8]) -> Result<Body<'_>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError::parse(format!("body is not UTF-8: {e}")))?;
    match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| ParseError::parse(format!("invalid JSON: {e}")))?;
            if items.is_empty() {
                return Err(ParseError::invalid("empty batch", None));
            }
            Ok(Body::Batch(items.into_iter().map(|raw| parse_one(raw.get())).collect()))
        }
        Some(b'{') => parse_one(text).map(Body::Single),
        Some(_) => {
            // Valid JSON that is not an object or array is an invalid request; anything else
            // is a parse error.
            match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => Err(ParseError::invalid(
                    "a JSON-RPC message must be an object or an array",
                    None,
                )),
                Err(e) => Err(ParseError::parse(format!("invalid JSON: {e}"))),
            }
        }
        None => Err(ParseError::parse("empty body")),
    }
}

/// Parse one message (an object's text).
pub fn parse_one(text: &str) -> Result<Message<'_>, ParseError> {
    if !text.trim_start().starts_with('{') {
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(ParseError::invalid("a JSON-RPC message must be an object", None)),
            Err(e) => Err(ParseError::parse(format!("invalid JSON: {e}"))),
        };
    }
    let env: Envelope<'_> = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(ParseError::parse(format!("invalid JSON: {e}"))),
        Err(e) => return Err(ParseError::invalid(format!("invalid JSON-RPC envelope: {e}"), None)),
    };
    let id = env.id;
    if env.jsonrpc.as_deref() != Some("2.0") {
        return Err(ParseError::invalid("\"jsonrpc\" must be \"2.0\"", id));
    }
    let id = match id {
        None => None,
        Some(raw) => {
            let t = raw.get().as_bytes().first().copied();
            match t {
                Some(b'"') | Some(b'-') | Some(b'0'..=b'9') => Some(Id(raw)),
                _ => return Err(ParseError::invalid("\"id\" must be a string or a number", None)),
            }
        }
    };
    match (env.method, env.result, env.error) {
        (Some(method), None, None) => {
            let method: Cow<'_, str> = serde_json::from_str(method.get())
                .map_err(|_| ParseError::invalid("\"method\" must be a string", id.map(|i| i.0)))?;
            if let Some(p) = env.params {
                if !matches!(p.get().as_bytes().first(), Some(b'{') | Some(b'[')) {
                    return Err(ParseError::invalid(
                        "\"params\" must be an object or an array",
                        id.map(|i| i.0),
                    ));
                }
            }
            Ok(match id {
                Some(id) => Message::Request {
                    id,
                    method,
                    params: env.params,
                },
                None => Message::Notification {
                    method,
                    params: env.params,
                },
            })
        }
        (None, Some(result), None) => match id {
            Some(id) => Ok(Message::Response {
                id,
                outcome: Ok(result),
            }),
            None => Err(ParseError::invalid("a response needs an \"id\"", None)),
        },
        (None, None, Some(error)) => match id {
            Some(id) => Ok(Message::Response {
                id,
                outcome: Err(error),
            }),
            None => Err(ParseError::invalid("a response needs an \"id\"", None)),
        },
        (None, None, None) => Err(ParseError::invalid(
            "message has no \"method\", \"result\" or \"error\"",
            id.map(|i| i.0),
        )),
        _ => Err(ParseError::invalid(
            "a message must have exactly one of \"method\", \"result\" or \"error\"",
            id.map(|i| i.0),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_json_values() {
        let k = |s: &str| IdKey::from_json(s);
        for same in ["7", "7.0", "7e0", "0.7e1", "70e-1", "7.000", "7E+0"] {
            assert_eq!(k(same), k("7"), "{same}");
        }
        assert_eq!(k("1e3"), k("1000"));
        assert_eq!(k("-0"), k("0"));
        assert_eq!(k("0.0e5"), k("0"));
        assert_ne!(k("9007199254740993"), k("9007199254740992"));
        assert_ne!(k("-7"), k("7"));
        assert_ne!(k("\"7\""), k("7"));
        assert_eq!(k("\"a\\u0062\""), k("\"ab\""));
        assert_ne!(k("\"ab \""), k("\"ab\""));
        for nothing in [
            "null",
            "true",
            "{}",
            "[]",
            "01",
            "1.",
            ".5",
            "1e",
            "--1",
            "1e9999999999999999",
            "\"x",
        ] {
            assert_eq!(k(nothing), None, "{nothing}");
        }
    }

    fn single(body: &str) -> Message<'_> {
        match parse(body.as_bytes()) {
            Ok(Body::Single(m)) => m,
            other => panic!("expected a single message, got {other:?}"),
        }
    }

    #[test]
    fn request_keeps_method_id_and_raw_params() {
        let m =
            single(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}"#);
        assert_eq!(m.method(), Some("tools/call"));
        assert_eq!(m.id().map(|i| i.as_json()), Some("7"));
        assert_eq!(
            m.params().map(|p| p.get()),
            Some(r#"{"name":"echo","arguments":{"a":1}}"#)
        );
    }

    #[test]
    fn notification_has_no_id() {
        let m = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(m, Message::Notification { .. }));
    }

    #[test]
    fn response_from_client_is_recognised() {
        let m = single(r#"{"jsonrpc":"2.0","id":"s-1","result":{"action":"accept"}}"#);
        assert!(matches!(m, Message::Response { outcome: Ok(_), .. }));
        assert_eq!(m.id().map(|i| i.as_json()), Some("\"s-1\""));
    }

    #[test]
    fn escaped_method_is_decoded() {
        let m = single(r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call"}"#);
        assert_eq!(m.method(), Some("tools/call"));
    }

    #[test]
    fn duplicate_method_key_is_an_invalid_request() {
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn not_json_is_a_parse_error() {
        assert_eq!(parse(b"{nope").unwrap_err().code, code::PARSE_ERROR);
        assert_eq!(parse(b"").unwrap_err().code, code::PARSE_ERROR);
        assert_eq!(parse(b"\xff\xfe").unwrap_err().code, code::PARSE_ERROR);
    }

    #[test]
    fn wrong_version_is_invalid_and_keeps_the_id() {
        let e = parse(br#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        assert_eq!(e.id.as_deref(), Some("\"x\""));
    }

    #[test]
    fn null_or_object_ids_are_refused() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)
                .unwrap_err()
                .code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#).unwrap_err().code,
            code::INVALID_REQUEST
        );
    }

    #[test]
    fn scalar_json_is_an_invalid_request() {
        assert_eq!(parse(b"42").unwrap_err().code, code::INVALID_REQUEST);
    }

    #[test]
    fn batch_elements_are_judged_one_by_one() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 5, {"jsonrpc":"2.0","method":"x"}]"#;
        match parse(body).unwrap() {
            Body::Batch(items) => {
                assert_eq!(items.len(), 3);
                assert!(items[0].is_ok());
                assert_eq!(items[1].as_ref().unwrap_err().code, code::INVALID_REQUEST);
                assert!(matches!(items[2], Ok(Message::Notification { .. })));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(b"[]").unwrap_err().code, code::INVALID_REQUEST);
    }

    #[test]
    fn method_and_result_together_are_refused() {
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
    }

    #[test]
    fn scalar_params_are_refused() {
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":3}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
    }
}
