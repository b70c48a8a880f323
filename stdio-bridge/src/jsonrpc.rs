//! JSON-RPC 2.0 messages as the bridge handles them: one top-level object whose member values
//! stay raw text, so whatever the bridge does not rewrite (an id, a progress token) reaches the
//! other side as it was written.

use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub type Raw = Box<RawValue>;

/// JSON-RPC's own codes, and the bridge's, in the implementation-defined server range.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The child is not running (starting, restarting, or the bridge is stopping).
    pub const UNAVAILABLE: i64 = -32000;
    /// No answer within `--request-timeout-ms` (the MCP SDKs' own code for a request timeout).
    pub const TIMEOUT: i64 = -32001;
    /// `--max-queue` requests are already in flight.
    pub const OVERLOADED: i64 = -32005;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    /// Set for requests and notifications.
    pub method: Option<String>,
    fields: BTreeMap<String, Raw>,
}

impl Message {
    /// One JSON-RPC message. Batches (arrays) are refused with their own message.
    pub fn parse(bytes: &[u8]) -> Result<Message, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            return Err("JSON-RPC batches are not supported by mcp-stdio-bridge: send one message per POST".into());
        }
        let fields: BTreeMap<String, Raw> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON-RPC message object: {e}"))?;
        match fields.get("jsonrpc").map(|v| v.get()) {
            Some("\"2.0\"") => {}
            Some(other) => return Err(format!("\"jsonrpc\" must be \"2.0\", not {other}")),
            None => return Err("\"jsonrpc\": \"2.0\" is missing".into()),
        }
        let method = match fields.get("method") {
            Some(m) => Some(
                serde_json::from_str::<String>(m.get())
                    .map_err(|_| format!("\"method\" must be a string, not {}", m.get()))?,
            ),
            None => None,
        };
        let id = fields.get("id");
        let kind = match (&method, id) {
            (Some(_), Some(id)) => {
                let first = id.get().as_bytes().first().copied().unwrap_or(b'n');
                if !(first == b'"' || first == b'-' || first.is_ascii_digit()) {
                    return Err(format!("a request id must be a string or a number, not {}", id.get()));
                }
                Kind::Request
            }
            (Some(_), None) => Kind::Notification,
            (None, Some(_)) if fields.contains_key("result") != fields.contains_key("error") => Kind::Response,
            (None, Some(_)) => return Err("a response needs exactly one of \"result\" and \"error\"".into()),
            (None, None) => return Err("neither a request (\"method\" and \"id\") nor a response (\"id\")".into()),
        };
        Ok(Message { kind, method, fields })
    }

    pub fn id(&self) -> Option<&RawValue> {
        self.fields.get("id").map(|v| &**v)
    }

    /// The id as a bridge-issued number, if it is one.
    pub fn id_u64(&self) -> Option<u64> {
        self.id().and_then(|v| v.get().parse().ok())
    }

    pub fn set_id(&mut self, id: Raw) {
        self.fields.insert("id".into(), id);
    }

    pub fn set_id_u64(&mut self, id: u64) {
        self.set_id(number(id));
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.fields.get(key).map(|v| &**v)
    }

    /// `params` as an object of raw members, if it is one.
    pub fn params(&self) -> Option<BTreeMap<String, Raw>> {
        self.fields
            .get("params")
            .and_then(|p| serde_json::from_str(p.get()).ok())
    }

    pub fn set_params(&mut self, params: &BTreeMap<String, Raw>) {
        self.fields.insert("params".into(), to_raw(params));
    }

    /// `params._meta.progressToken`, raw.
    pub fn progress_token(&self) -> Option<Raw> {
        let meta: BTreeMap<String, Raw> = serde_json::from_str(self.params()?.get("_meta")?.get()).ok()?;
        meta.get("progressToken").cloned()
    }

    /// Replaces `params._meta.progressToken` (which must be there), keeping the rest as written.
    pub fn set_progress_token(&mut self, token: Raw) {
        let Some(mut params) = self.params() else { return };
        let Some(mut meta) = params
            .get("_meta")
            .and_then(|m| serde_json::from_str::<BTreeMap<String, Raw>>(m.get()).ok())
        else {
            return;
        };
        meta.insert("progressToken".into(), token);
        params.insert("_meta".into(), to_raw(&meta));
        self.set_params(&params);
    }

    /// One line of the stdio transport: the message with no newline in it. Raw values can only
    /// hold CR/LF as whitespace between tokens (JSON strings escape them), so blanking them
    /// keeps the JSON's meaning.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = self.to_bytes();
        for b in out.iter_mut() {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
        out.push(b'\n');
        out
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A map of raw values always serializes.
        serde_json::to_vec(&self.fields).unwrap_or_default()
    }
}

pub fn number(n: u64) -> Raw {
    // The decimal text of an integer is valid JSON.
    RawValue::from_string(n.to_string()).unwrap_or_else(|_| null())
}

pub fn null() -> Raw {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

pub fn to_raw<T: Serialize + ?Sized>(v: &T) -> Raw {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| null())
}

/// A JSON-RPC error response. `id` is `None` when the offending message's id is unknown.
pub fn error(id: Option<&RawValue>, code: i64, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        code: i64,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Error<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: Body<'a>,
    }
    serde_json::to_vec(&Error {
        jsonrpc: "2.0",
        id,
        error: Body { code, message },
    })
    .unwrap_or_default()
}

/// A JSON-RPC success response.
pub fn result(id: &RawValue, result: &RawValue) -> Vec<u8> {
    #[derive(Serialize)]
    struct Ok<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        result: &'a RawValue,
    }
    serde_json::to_vec(&Ok {
        jsonrpc: "2.0",
        id,
        result,
    })
    .unwrap_or_default()
}

/// A JSON-RPC notification.
pub fn notification<P: Serialize>(method: &str, params: &P) -> Vec<u8> {
    #[derive(Serialize)]
    struct N<'a, P> {
        jsonrpc: &'static str,
        method: &'a str,
        params: &'a P,
    }
    serde_json::to_vec(&N {
        jsonrpc: "2.0",
        method,
        params,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn v(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn kinds() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            (m.kind, m.method.as_deref(), m.id_u64()),
            (Kind::Request, Some("tools/list"), Some(7))
        );
        let m = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(m.kind, Kind::Notification);
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(m.kind, Kind::Response);
        assert_eq!(m.id_u64(), None);
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#).unwrap();
        assert_eq!(m.kind, Kind::Response);
    }

    #[test]
    fn refusals_say_why() {
        for (body, needle) in [
            (
                &br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#[..],
                "batches are not supported",
            ),
            (br#"{"id":1,"method":"ping"}"#, "\"jsonrpc\": \"2.0\" is missing"),
            (br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, "must be \"2.0\""),
            (br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, "string or a number"),
            (br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, "string or a number"),
            (br#"{"jsonrpc":"2.0","id":1,"method":3}"#, "\"method\" must be a string"),
            (br#"{"jsonrpc":"2.0","id":1}"#, "exactly one of"),
            (br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#, "exactly one of"),
            (br#"{"jsonrpc":"2.0"}"#, "neither a request"),
            (b"{nope", "not a JSON-RPC message object"),
            (b"\xff", "not UTF-8"),
        ] {
            let e = Message::parse(body).unwrap_err();
            assert!(e.contains(needle), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn ids_are_rewritten_and_the_rest_kept_as_written() {
        let mut m = Message::parse(b"{\"jsonrpc\":\"2.0\",\"id\":\"client-1\",\"method\":\"tools/call\",\n\"params\":{\"name\":\"x\",\"arguments\":{\"big\":123456789012345678901234567890,\n\"f\":1.50}}}").unwrap();
        let original = m.id().unwrap().get().to_string();
        m.set_id_u64(42);
        let line = m.to_line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert_eq!(line.last(), Some(&b'\n'));
        let text = String::from_utf8(line).unwrap();
        // Numbers are not re-rendered through f64.
        assert!(
            text.contains("123456789012345678901234567890") && text.contains("1.50"),
            "{text}"
        );
        let back = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(back.id_u64(), Some(42));
        assert_eq!(original, "\"client-1\"");
    }

    #[test]
    fn progress_token_round_trip() {
        let mut m = Message::parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":"p-1","other":true}}}"#,
        )
        .unwrap();
        assert_eq!(m.progress_token().unwrap().get(), "\"p-1\"");
        m.set_progress_token(number(9));
        let v = v(&m.to_bytes());
        assert_eq!(
            v["params"]["_meta"],
            serde_json::json!({"progressToken": 9, "other": true})
        );
        assert_eq!(v["params"]["name"], "t");
        let none = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#).unwrap();
        assert!(none.progress_token().is_none());
    }

    #[test]
    fn builders() {
        let id = number(3);
        assert_eq!(
            v(&error(Some(&id), code::TIMEOUT, "slow")),
            serde_json::json!({"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"slow"}})
        );
        assert_eq!(v(&error(None, code::PARSE_ERROR, "x"))["id"], Value::Null);
        assert_eq!(
            v(&result(&id, &to_raw(&serde_json::json!({})))),
            serde_json::json!({"jsonrpc":"2.0","id":3,"result":{}})
        );
        assert_eq!(
            v(&notification(
                "notifications/cancelled",
                &serde_json::json!({"requestId": 3})
            )),
            serde_json::json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}})
        );
    }
}
