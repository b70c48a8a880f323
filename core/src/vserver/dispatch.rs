//! What a virtual server does with one client message, and the rewritten message a backend
//! receives.
//!
//! `ping` is answered by the gateway; `initialize`, `server/discover`, the list methods,
//! `logging/setLevel` and notifications go to every backend in the session; `tools/call`,
//! `prompts/get`, `resources/read`, `resources/(un)subscribe` and `completion/complete` go to
//! the backend that owns the name (or URI), un-prefixed; a client's answer to a server request
//! goes to the backend that asked, with that backend's id restored. Anything else is refused
//! (-32601) rather than guessed at.
//!
//! Server-to-client requests (sampling, elicitation, roots) reach the client with their id
//! *tagged*: `"mcpv:<prefix>:<the backend's id as JSON>"`. The client echoes it, so its answer
//! is routed back without any state in the gateway.

use super::names;
use super::VirtualServer;
use crate::jsonrpc::Message;
use crate::mcp::Method;
use crate::policy::Kind;
use crate::refusal::{Refusal, Why};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// What to do with a message.
#[derive(Debug)]
pub enum Plan {
    /// Answer `{}` locally.
    Ping,
    /// Send to every backend in the session.
    FanOut(FanOut),
    /// Send to one backend: `body` is the message it receives, `name` the (un-prefixed) name or
    /// URI it acts on (for `Mcp-Name`).
    Dispatch {
        backend: usize,
        body: Vec<u8>,
        name: Option<String>,
    },
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOut {
    Initialize,
    Discover,
    List(Kind),
    SetLevel,
    Notification,
}

const TAG: &str = "mcpv:";

/// The tagged id for a server-to-client request from the backend with `prefix`.
pub fn tag_id(prefix: &str, raw_id: &str) -> String {
    let tagged = format!("{TAG}{prefix}:{}", raw_id.trim());
    serde_json::to_string(&tagged).unwrap_or_default()
}

/// A tagged id taken apart: the prefix and the backend's raw id.
pub fn untag_id(raw_id: &str) -> Option<(String, String)> {
    let s: String = serde_json::from_str(raw_id).ok()?;
    let rest = s.strip_prefix(TAG)?;
    let (prefix, inner) = rest.split_once(':')?;
    // The backend's id must be a JSON string or number.
    let v: serde_json::Value = serde_json::from_str(inner).ok()?;
    if !(v.is_string() || v.is_number()) {
        return None;
    }
    Some((prefix.to_owned(), inner.to_owned()))
}

fn invalid(id: Option<&str>, msg: String) -> Plan {
    Plan::Refuse(Refusal::new(Why::InvalidParams, msg).id(id))
}

type Params = BTreeMap<String, Box<RawValue>>;

fn params_of(msg: &Message<'_>) -> Result<Params, String> {
    match msg.params() {
        None => Ok(Params::new()),
        Some(p) => serde_json::from_str(p.get()).map_err(|_| "params must be an object".to_owned()),
    }
}

fn raw_string(s: &str) -> Box<RawValue> {
    // A string always serializes to valid JSON.
    RawValue::from_string(serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()))
        .unwrap_or_else(|_| RawValue::from_string("\"\"".into()).expect("literal JSON"))
}

fn string_member(p: &Params, key: &str) -> Option<String> {
    p.get(key).and_then(|v| serde_json::from_str::<String>(v.get()).ok())
}

/// Rebuild a request with new params.
fn request_body(id: Option<&str>, method: &str, params: &Params) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        out.extend_from_slice(br#""id":"#);
        out.extend_from_slice(id.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(br#""method":"#);
    let _ = serde_json::to_writer(&mut out, method);
    out.extend_from_slice(br#","params":"#);
    let _ = serde_json::to_writer(&mut out, params);
    out.push(b'}');
    out
}

/// How a shortened exposed name is resolved: `(backend, exposed) -> original`, from what a
/// merge recorded. `None`: take the name as natural.
pub type Resolver<'a> = &'a dyn Fn(usize, &str) -> Option<String>;

/// Plan one message for virtual server `vs`.
pub fn plan(vs: &VirtualServer, msg: &Message<'_>, resolve: Resolver<'_>) -> Plan {
    let id = msg.id().map(|i| i.as_json());
    if let Message::Response { id, outcome } = msg {
        let Some((prefix, inner)) = untag_id(id.as_json()) else {
            return Plan::Refuse(
                Refusal::new(
                    Why::InvalidRequest,
                    format!(
                        "response id {} answers no request this virtual server sent",
                        id.as_json()
                    ),
                )
                .id(Some(id.as_json())),
            );
        };
        let Some(b) = vs.by_prefix(&prefix) else {
            return Plan::Refuse(
                Refusal::new(
                    Why::InvalidRequest,
                    format!("response id names no backend ({prefix:?})"),
                )
                .id(Some(id.as_json())),
            );
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        out.extend_from_slice(inner.as_bytes());
        match outcome {
            Ok(r) => {
                out.extend_from_slice(br#","result":"#);
                out.extend_from_slice(r.get().as_bytes());
            }
            Err(e) => {
                out.extend_from_slice(br#","error":"#);
                out.extend_from_slice(e.get().as_bytes());
            }
        }
        out.push(b'}');
        return Plan::Dispatch {
            backend: b,
            body: out,
            name: None,
        };
    }
    let name = msg.method().unwrap_or_default();
    let method = Method::from_name(name);
    match method {
        Method::Ping => return Plan::Ping,
        Method::Initialize => return Plan::FanOut(FanOut::Initialize),
        Method::ServerDiscover => return Plan::FanOut(FanOut::Discover),
        Method::LoggingSetLevel => return Plan::FanOut(FanOut::SetLevel),
        Method::Notification => return Plan::FanOut(FanOut::Notification),
        Method::ToolsList => return Plan::FanOut(FanOut::List(Kind::Tool)),
        Method::PromptsList => return Plan::FanOut(FanOut::List(Kind::Prompt)),
        Method::ResourcesList => return Plan::FanOut(FanOut::List(Kind::Resource)),
        Method::ResourcesTemplatesList => return Plan::FanOut(FanOut::List(Kind::ResourceTemplate)),
        Method::ToolsCall
        | Method::PromptsGet
        | Method::ResourcesRead
        | Method::ResourcesSubscribe
        | Method::ResourcesUnsubscribe
        | Method::CompletionComplete => {}
        _ => {
            return Plan::Refuse(
                Refusal::new(
                    Why::InvalidRequest,
                    format!("method {name:?} is not offered by virtual server {:?}", vs.name),
                )
                .status_code(200, crate::jsonrpc::code::METHOD_NOT_FOUND)
                .id(id),
            )
        }
    }
    let mut params = match params_of(msg) {
        Ok(p) => p,
        Err(e) => return invalid(id, e),
    };
    let by_name = |exposed: &str| -> Result<(usize, String), String> {
        let split =
            names::split(exposed).and_then(|(p, rest)| Some((vs.by_prefix(p).filter(|_| !p.is_empty())?, rest)));
        let (b, rest) = match (split, vs.default_backend()) {
            (Some(found), _) => found,
            (None, Some(d)) => (d, exposed),
            (None, None) => {
                return Err(match names::split(exposed) {
                    Some((p, _)) => format!(
                        "{exposed:?}: no backend of virtual server {:?} has prefix {p:?}",
                        vs.name
                    ),
                    None => format!(
                        "{exposed:?} names no backend of virtual server {:?} (expected <prefix>__<name>)",
                        vs.name
                    ),
                })
            }
        };
        let original = if names::may_be_shortened(exposed) {
            resolve(b, exposed).unwrap_or_else(|| rest.to_owned())
        } else {
            rest.to_owned()
        };
        Ok((b, original))
    };
    let by_uri = |exposed: &str| -> Result<(usize, String), String> {
        let split =
            names::split_uri(exposed).and_then(|(p, uri)| Some((vs.by_prefix(p).filter(|_| !p.is_empty())?, uri)));
        match (split, vs.default_backend()) {
            (Some((b, uri)), _) => Ok((b, uri.to_owned())),
            (None, Some(d)) => Ok((d, exposed.to_owned())),
            (None, None) => Err(format!(
                "{exposed:?} names no backend of virtual server {:?} (expected <prefix>+<uri>)",
                vs.name
            )),
        }
    };
    let routed = match method {
        Method::ToolsCall | Method::PromptsGet => match string_member(&params, "name") {
            None => Err("params.name must be a string".to_owned()),
            Some(n) => by_name(&n).map(|(b, orig)| {
                params.insert("name".into(), raw_string(&orig));
                (b, orig)
            }),
        },
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
            match string_member(&params, "uri") {
                None => Err("params.uri must be a string".to_owned()),
                Some(u) => by_uri(&u).map(|(b, orig)| {
                    params.insert("uri".into(), raw_string(&orig));
                    (b, orig)
                }),
            }
        }
        Method::CompletionComplete => {
            let r: Option<Params> = params.get("ref").and_then(|v| serde_json::from_str(v.get()).ok());
            match r {
                None => Err("params.ref must be an object".to_owned()),
                Some(mut r) => {
                    let kind = string_member(&r, "type").unwrap_or_default();
                    let (key, routed) = match kind.as_str() {
                        "ref/prompt" => ("name", string_member(&r, "name").map(|n| by_name(&n))),
                        "ref/resource" => ("uri", string_member(&r, "uri").map(|u| by_uri(&u))),
                        other => (
                            "",
                            Some(Err(format!(
                                "params.ref.type {other:?} is not ref/prompt or ref/resource"
                            ))),
                        ),
                    };
                    match routed {
                        None => Err(format!("params.ref.{key} must be a string")),
                        Some(Err(e)) => Err(e),
                        Some(Ok((b, orig))) => {
                            r.insert(key.into(), raw_string(&orig));
                            match serde_json::to_string(&r)
                                .ok()
                                .and_then(|t| RawValue::from_string(t).ok())
                            {
                                Some(raw) => {
                                    params.insert("ref".into(), raw);
                                    Ok((b, orig))
                                }
                                None => Err("params.ref cannot be rewritten".to_owned()),
                            }
                        }
                    }
                }
            }
        }
        _ => Err("unreachable".to_owned()),
    };
    match routed {
        Err(e) => invalid(id, e),
        Ok((b, orig)) => Plan::Dispatch {
            backend: b,
            body: request_body(id, name, &params),
            name: Some(orig),
        },
    }
}

/// The body of a list request for one backend: the client's request with `cursor` replaced
/// (or removed, on a first page).
pub fn list_request(msg: &Message<'_>, cursor: Option<&str>) -> Vec<u8> {
    let mut params = params_of(msg).unwrap_or_default();
    match cursor {
        Some(c) => {
            params.insert("cursor".into(), raw_string(c));
        }
        None => {
            params.remove("cursor");
        }
    }
    request_body(msg.id().map(|i| i.as_json()), msg.method().unwrap_or_default(), &params)
}
