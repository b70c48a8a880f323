//! The subject of an MCP request: tool name and arguments, resource URI, prompt name, list
//! cursor, and the body's protocol version (`params._meta`).
//!
//! Owns: pulling those fields out of `params`, borrowing from the body, and refusing the wrong
//! types with JSON-RPC -32602. Does not own: the envelope ([`crate::jsonrpc`]), duplicate keys
//! ([`crate::strict_json`] checks the whole body first), or what the policy does with a subject.
//!
//! Lazy: [`Params::parse`] only locates the fields; a field's type is checked when a method
//! that uses it asks for it, so `ping` with an odd `params.name` is not refused here.

use crate::jsonrpc::{code, Message};
use crate::mcp::{Method, Target};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The `_meta` key carrying the body's protocol version (MCP 2026-07-28, "Request Metadata").
pub const PROTOCOL_VERSION_META_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// What a request is about, as the policy sees it.
#[derive(Debug, Clone)]
pub enum Subject<'a> {
    /// `tools/call`: the tool and its arguments (a JSON object, kept raw).
    Tool {
        name: Cow<'a, str>,
        arguments: Option<&'a RawValue>,
    },
    /// `prompts/get`.
    Prompt { name: Cow<'a, str> },
    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
    Resource { uri: Cow<'a, str> },
    /// `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`.
    List { cursor: Option<Cow<'a, str>> },
    /// Everything else has no subject beyond its method.
    None,
}

/// Equal when the same variant names the same target; raw arguments compare as text.
impl PartialEq for Subject<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Subject::Tool { name: a, arguments: x }, Subject::Tool { name: b, arguments: y }) => {
                a == b && x.map(RawValue::get) == y.map(RawValue::get)
            }
            (Subject::Prompt { name: a }, Subject::Prompt { name: b }) => a == b,
            (Subject::Resource { uri: a }, Subject::Resource { uri: b }) => a == b,
            (Subject::List { cursor: a }, Subject::List { cursor: b }) => a == b,
            (Subject::None, Subject::None) => true,
            _ => false,
        }
    }
}

impl Subject<'_> {
    /// The name or URI a policy rule matches, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            Subject::Tool { name, .. } | Subject::Prompt { name } => Some(name),
            Subject::Resource { uri } => Some(uri),
            Subject::List { .. } | Subject::None => None,
        }
    }
}

/// `params` did not have the shape the method requires (JSON-RPC -32602).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParams {
    pub message: String,
    /// The request id as raw JSON, so the error can answer it.
    pub id: Option<String>,
}

impl InvalidParams {
    pub const CODE: i32 = code::INVALID_PARAMS;

    pub fn code(&self) -> i32 {
        Self::CODE
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
struct RawParams<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    uri: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cursor: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawMeta<'a> {
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<&'a RawValue>,
}

/// The located (not yet type-checked) fields of a request's `params`.
#[derive(Clone)]
pub struct Params<'a> {
    raw: RawParams<'a>,
    /// `params` was present but not an object (a positional array).
    not_object: bool,
    id: Option<&'a str>,
}

impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("name", &self.raw.name.map(RawValue::get))
            .field("uri", &self.raw.uri.map(RawValue::get))
            .field("has_arguments", &self.raw.arguments.is_some())
            .field("cursor", &self.raw.cursor.map(RawValue::get))
            .finish()
    }
}

impl<'a> Params<'a> {
    /// Locate the fields of `message`'s params (responses and param-less messages give an
    /// empty set). Fails only if `params` is an object serde cannot walk.
    pub fn parse(message: &Message<'a>) -> Result<Self, InvalidParams> {
        let id = message.id().map(|i| i.as_json());
        let Some(params) = message.params() else {
            return Ok(Self {
                raw: RawParams::default(),
                not_object: false,
                id,
            });
        };
        if !params.get().starts_with('{') {
            return Ok(Self {
                raw: RawParams::default(),
                not_object: true,
                id,
            });
        }
        let raw: RawParams<'a> = serde_json::from_str(params.get()).map_err(|e| InvalidParams {
            message: format!("invalid params: {e}"),
            id: id.map(str::to_owned),
        })?;
        Ok(Self {
            raw,
            not_object: false,
            id,
        })
    }

    fn invalid(&self, message: impl Into<String>) -> InvalidParams {
        InvalidParams {
            message: message.into(),
            id: self.id.map(str::to_owned),
        }
    }

    fn require_object(&self, method: &str) -> Result<(), InvalidParams> {
        if self.not_object {
            return Err(self.invalid(format!("{method}: params must be an object")));
        }
        Ok(())
    }

    fn string(&self, field: &str, raw: Option<&'a RawValue>) -> Result<Option<Cow<'a, str>>, InvalidParams> {
        match raw {
            None => Ok(None),
            Some(v) => json_string(v.get())
                .map(Some)
                .ok_or_else(|| self.invalid(format!("params.{field} must be a string"))),
        }
    }

    fn required_string(
        &self,
        method: &str,
        field: &str,
        raw: Option<&'a RawValue>,
    ) -> Result<Cow<'a, str>, InvalidParams> {
        self.require_object(method)?;
        self.string(field, raw)?
            .ok_or_else(|| self.invalid(format!("{method}: params.{field} is required")))
    }

    /// `params.name` as a string, if present (no method check).
    pub fn name(&self) -> Result<Option<Cow<'a, str>>, InvalidParams> {
        self.string("name", self.raw.name)
    }

    /// `params.uri` as a string, if present (no method check).
    pub fn uri(&self) -> Result<Option<Cow<'a, str>>, InvalidParams> {
        self.string("uri", self.raw.uri)
    }

    /// `params.arguments`: an object, kept raw. `null` counts as absent.
    pub fn arguments(&self) -> Result<Option<&'a RawValue>, InvalidParams> {
        match self.raw.arguments {
            Some(a) if a.get().starts_with('{') => Ok(Some(a)),
            Some(_) => Err(self.invalid("params.arguments must be an object")),
            None => Ok(None),
        }
    }

    /// The subject for `method`.
    pub fn subject(&self, method: Method) -> Result<Subject<'a>, InvalidParams> {
        let d = method.descriptor();
        Ok(match d.target {
            Target::Name if method == Method::ToolsCall => Subject::Tool {
                name: self.required_string(d.name, "name", self.raw.name)?,
                arguments: self.arguments()?,
            },
            Target::Name => Subject::Prompt {
                name: self.required_string(d.name, "name", self.raw.name)?,
            },
            Target::Uri => Subject::Resource {
                uri: self.required_string(d.name, "uri", self.raw.uri)?,
            },
            Target::Cursor => Subject::List {
                cursor: self.string("cursor", self.raw.cursor)?,
            },
            Target::None => Subject::None,
        })
    }

    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, if present.
    pub fn protocol_version(&self) -> Result<Option<Cow<'a, str>>, InvalidParams> {
        let Some(meta) = self.raw.meta else {
            return Ok(None);
        };
        if !meta.get().starts_with('{') {
            return Err(self.invalid("params._meta must be an object"));
        }
        let meta: RawMeta<'a> =
            serde_json::from_str(meta.get()).map_err(|e| self.invalid(format!("invalid params._meta: {e}")))?;
        self.string(
            "_meta.\"io.modelcontextprotocol/protocolVersion\"",
            meta.protocol_version,
        )
    }
}

/// Decode a raw JSON value that must be exactly one string, borrowing when it has no escapes.
/// (serde's `Cow<str>` impl always allocates unless the field is `#[serde(borrow)]`.)
pub(crate) fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    let mut s = crate::strict_json::Scanner::new(raw);
    let v = s.string().ok()?;
    if !s.at_end() {
        return None;
    }
    v.decode().ok()
}

/// The subject of `message` for `method` (classify with [`Method::from_name`]).
pub fn subject<'a>(message: &Message<'a>, method: Method) -> Result<Subject<'a>, InvalidParams> {
    Params::parse(message)?.subject(method)
}

/// The body's protocol version, `params._meta["io.modelcontextprotocol/protocolVersion"]`.
pub fn protocol_version<'a>(message: &Message<'a>) -> Result<Option<Cow<'a, str>>, InvalidParams> {
    Params::parse(message)?.protocol_version()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{parse, Body};

    fn msg(body: &str) -> Message<'_> {
        match parse(body.as_bytes()) {
            Ok(Body::Single(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    fn subj(body: &str) -> Result<Subject<'_>, InvalidParams> {
        let m = msg(body);
        let method = Method::from_name(m.method().unwrap_or(""));
        subject(&m, method)
    }

    #[test]
    fn tools_call_yields_name_and_raw_arguments() {
        let s =
            subj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1]}}}"#)
                .unwrap();
        match s {
            Subject::Tool { name, arguments } => {
                assert!(matches!(name, Cow::Borrowed("echo")));
                assert_eq!(arguments.map(RawValue::get), Some(r#"{"a":[1]}"#));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tools_call_without_a_string_name_is_invalid_params_with_the_id() {
        for body in [
            r#"{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{"name":null}}"#,
            r#"{"jsonrpc":"2.0","id":"r","method":"tools/call","params":["echo"]}"#,
            r#"{"jsonrpc":"2.0","id":"r","method":"tools/call"}"#,
        ] {
            let e = subj(body).unwrap_err();
            assert_eq!(e.code(), -32602, "{body}");
            assert_eq!(e.id.as_deref(), Some("\"r\""), "{body}");
        }
    }

    #[test]
    fn tools_call_with_non_object_arguments_is_invalid_params() {
        let e = subj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#)
            .unwrap_err();
        assert!(e.message.contains("arguments"));
        let s =
            subj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":null}}"#).unwrap();
        assert_eq!(
            s,
            Subject::Tool {
                name: "x".into(),
                arguments: None
            }
        );
    }

    #[test]
    fn escaped_name_is_decoded() {
        let s = subj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ec\u0068o"}}"#).unwrap();
        assert_eq!(s.target(), Some("echo"));
    }

    #[test]
    fn prompts_and_resources_name_their_target() {
        let s = subj(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"x":"y"}}}"#)
            .unwrap();
        assert_eq!(s, Subject::Prompt { name: "p".into() });
        for m in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}","params":{{"uri":"file:///a"}}}}"#);
            assert_eq!(
                subj(&body).unwrap(),
                Subject::Resource {
                    uri: "file:///a".into()
                }
            );
        }
        assert!(subj(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#).is_err());
    }

    #[test]
    fn list_methods_carry_an_optional_cursor() {
        let s = subj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c2"}}"#).unwrap();
        assert_eq!(
            s,
            Subject::List {
                cursor: Some("c2".into())
            }
        );
        let s = subj(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#).unwrap();
        assert_eq!(s, Subject::List { cursor: None });
        assert!(subj(r#"{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"cursor":1}}"#).is_err());
    }

    #[test]
    fn other_methods_have_no_subject_and_ignore_odd_fields() {
        let s = subj(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"name":5}}"#).unwrap();
        assert_eq!(s, Subject::None);
        let s = subj(r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":[1]}"#).unwrap();
        assert_eq!(s, Subject::None);
    }

    #[test]
    fn protocol_version_comes_from_meta() {
        let m = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","x":1}}}"#,
        );
        assert_eq!(protocol_version(&m).unwrap().as_deref(), Some("2026-07-28"));
        let m = msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{}}}"#);
        assert_eq!(protocol_version(&m).unwrap(), None);
        let m = msg(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        assert_eq!(protocol_version(&m).unwrap(), None);
        let m = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}"#,
        );
        assert_eq!(protocol_version(&m).unwrap_err().code(), -32602);
        let m = msg(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":"v"}}"#);
        assert!(protocol_version(&m).is_err());
    }
}
