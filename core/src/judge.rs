//! Request judgement: one JSON-RPC message, the caller and the config → a [`Verdict`].
//!
//! Owns the order of the checks every message goes through: params shape, MCP 2026-07-28
//! headers against the body, who is calling (or whether this method may be called
//! anonymously), then policy. Does not own: reading the body (strict JSON, JSON-RPC parse),
//! identity itself, or anything Envoy; the filter turns a verdict into metadata, counters and
//! a forward or a reply.

use crate::config::FilterConfig;
use crate::identity::AuthError;
use crate::jsonrpc::{code, Message};
use crate::mcp::Method;
use crate::mcp_headers::{self, McpHeaders, ParamRule};
use crate::policy::{self, Decision, Kind, Mode};
use crate::principal::Principal;
use crate::refusal::{Refusal, Why};
use crate::subject::{Params, Subject};

/// Who is calling.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The established principal; `None` without identity, or when none was presented.
    pub principal: Option<&'a Principal>,
    /// No credentials were presented, but the config lets some methods be called
    /// anonymously: decided per message.
    pub anonymous_pending: bool,
}

/// The policy's decision, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'p> {
    /// `allow`, `deny` or `audit_deny`.
    pub decision: &'static str,
    pub reason: &'static str,
    pub mode: Mode,
    pub version: &'p str,
    pub rule: Option<&'p str>,
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Forward it; `Some(kind)` for a list request whose answer must be filtered.
    Forward(Option<Kind>),
    Refuse(Refusal),
}

/// The judgement of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'a, 'p> {
    pub method: Method,
    /// The `requests_total` decision label: `allow`, `deny`, `audit_deny`, `reject` (refused
    /// before policy), `unchecked` (no policy configured).
    pub decision: &'static str,
    /// Tool name, resource URI or prompt name, when the method has one and it was readable.
    pub subject: Option<Subject<'a>>,
    /// Set when policy ran.
    pub record: Option<Record<'p>>,
    /// The caller, for the log (`None` for anonymous).
    pub principal: Option<&'p Principal>,
    pub outcome: Outcome,
}

impl Verdict<'_, '_> {
    /// The subject's target (tool name, URI, prompt name), if any.
    pub fn target(&self) -> Option<&str> {
        self.subject.as_ref().and_then(|s| s.target())
    }
}

/// Judge one message for `server`. `headers` are the MCP 2026-07-28 request headers, when the
/// client sent any.
pub fn judge<'a, 'p>(
    config: &'p FilterConfig,
    server: &str,
    caller: Caller<'p>,
    msg: &Message<'a>,
    headers: Option<&McpHeaders<'_>>,
) -> Verdict<'a, 'p> {
    let method = match msg.method() {
        Some(name) => Method::from_name(name),
        None => Method::ClientResponse,
    };
    let id = msg.id().map(|i| i.as_json());
    let mut v = Verdict {
        method,
        decision: if config.policy.is_some() { "reject" } else { "unchecked" },
        subject: None,
        record: None,
        principal: None,
        outcome: Outcome::Forward(None),
    };
    let refuse = |mut v: Verdict<'a, 'p>, r: Refusal| {
        v.outcome = Outcome::Refuse(r);
        v
    };
    let params = match Params::parse(msg) {
        Ok(p) => p,
        Err(e) => {
            let r = Refusal::new(Why::InvalidParams, e.message.clone())
                .id(id)
                .status_code(400, e.code());
            return refuse(v, r);
        }
    };
    if let Some(hs) = headers {
        if let Err(e) = mcp_headers::check(hs, msg, &params, ParamRule::SameNameArgument) {
            let r = Refusal::new(Why::HeaderMismatch, e.to_string())
                .id(id)
                .status_code(e.http_status(), e.code());
            return refuse(v, r);
        }
    }
    let subject = match params.subject(method) {
        Ok(s) => s,
        Err(e) => {
            let r = Refusal::new(Why::InvalidParams, e.message.clone())
                .id(id)
                .status_code(400, e.code());
            return refuse(v, r);
        }
    };

    // Who: the principal from the headers, or anonymous where the config allows it.
    let anonymous;
    let principal: &Principal = match (caller.principal, &config.identity) {
        (Some(p), _) => p,
        (None, Some(identity)) if caller.anonymous_pending => {
            if !identity.allows_anonymous(msg.method().unwrap_or_default()) {
                let e = AuthError::MissingToken;
                let mut r = Refusal::new(Why::Unauthenticated, e.description())
                    .id(id)
                    .status_code(e.status(), code::INVALID_REQUEST);
                r.details = Some("mcp_policy_auth_missing_token");
                r.challenge = identity.www_authenticate(&e);
                return refuse(v, r);
            }
            anonymous = Principal::anonymous();
            &anonymous
        }
        (None, _) => {
            anonymous = Principal::anonymous();
            &anonymous
        }
    };
    v.principal = caller.principal;
    let Some(policy) = &config.policy else {
        v.subject = Some(subject);
        return v;
    };
    let req = match &subject {
        Subject::Tool { name, arguments } => policy::Request::tool_call(name, *arguments),
        Subject::Prompt { name } => policy::Request::prompt_get(name),
        Subject::Resource { uri } => policy::Request::resource(method, uri),
        _ => policy::Request::method(method),
    };
    let d: Decision<'p> = policy.decide(principal, server, &req);
    let decision = if d.would_deny {
        "audit_deny"
    } else if d.allowed {
        "allow"
    } else {
        "deny"
    };
    v.decision = decision;
    v.record = Some(Record {
        decision,
        reason: d.reason.label(),
        mode: d.mode,
        version: policy.version(),
        rule: d.rule_id,
    });
    if !d.allowed {
        let what = match subject.target() {
            Some(t) => format!("{} {t:?}", msg.method().unwrap_or_default()),
            None => msg.method().unwrap_or("message").to_owned(),
        };
        let rule = d
            .rule_id
            .map(|r| format!("rule {r:?}"))
            .unwrap_or_else(|| "no rule allows it (default deny)".into());
        let mut message = format!("{what} is denied by gateway policy: {rule}");
        if let Some(arg) = d.argument {
            message.push_str(&format!(" (argument {arg:?} does not satisfy the rule's constraints)"));
        }
        let data = serde_json::json!({"rule": d.rule_id, "reason": d.reason.label(), "server": server});
        v.subject = Some(subject);
        return refuse(v, Refusal::new(Why::PolicyDenied, message).id(id).data(data));
    }
    v.subject = Some(subject);
    if d.mode == Mode::Enforce {
        v.outcome = Outcome::Forward(Kind::of_list(method));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{parse, Body};

    fn config(json: &str) -> FilterConfig {
        FilterConfig::from_json(json.as_bytes()).expect("test config")
    }

    fn one(body: &str) -> Message<'_> {
        match parse(body.as_bytes()) {
            Ok(Body::Single(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    const POLICY: &str = r#"{"server":"gh","policy":{"rules":[
        {"id":"all","effect":"allow","principals":[{"anonymous":true}],"tools":["get_*"],"methods":["tools/list"]},
        {"id":"no-delete","effect":"deny","principals":[{"anonymous":true}],"tools":["delete_*"]}]}}"#;

    fn anon<'a>() -> Caller<'a> {
        Caller {
            principal: None,
            anonymous_pending: false,
        }
    }

    #[test]
    fn an_allowed_call_is_forwarded_with_its_decision_recorded() {
        let c = config(POLICY);
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue"}}"#);
        let v = judge(&c, "gh", anon(), &m, None);
        assert_eq!(v.outcome, Outcome::Forward(None));
        assert_eq!(v.decision, "allow");
        assert_eq!(v.target(), Some("get_issue"));
        assert_eq!(v.record.map(|r| r.rule), Some(Some("all")));
    }

    #[test]
    fn a_denied_call_is_refused_with_the_rule_and_the_request_id() {
        let c = config(POLICY);
        let m = one(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"delete_repo"}}"#);
        let v = judge(&c, "gh", anon(), &m, None);
        let Outcome::Refuse(r) = &v.outcome else {
            panic!("{v:?}")
        };
        assert_eq!((r.status, r.code, r.id.as_deref()), (200, -32030, Some("\"x\"")));
        assert!(r.message.contains("no-delete"));
        assert_eq!(v.decision, "deny");
    }

    #[test]
    fn an_allowed_list_must_have_its_answer_filtered() {
        let c = config(POLICY);
        let m = one(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        assert_eq!(
            judge(&c, "gh", anon(), &m, None).outcome,
            Outcome::Forward(Some(Kind::Tool))
        );
    }

    #[test]
    fn malformed_params_are_refused_before_policy() {
        let c = config(POLICY);
        let m = one(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":5}}"#);
        let v = judge(&c, "gh", anon(), &m, None);
        let Outcome::Refuse(r) = &v.outcome else {
            panic!("{v:?}")
        };
        assert_eq!((r.why, r.status, r.code), (Why::InvalidParams, 400, -32602));
        assert_eq!(v.decision, "reject");
        assert_eq!(v.record, None);
    }

    #[test]
    fn without_a_policy_everything_well_formed_is_forwarded_unchecked() {
        let c = config(r#"{"pass_through":true}"#);
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        let v = judge(&c, "default", anon(), &m, None);
        assert_eq!((v.outcome, v.decision), (Outcome::Forward(None), "unchecked"));
    }
}
