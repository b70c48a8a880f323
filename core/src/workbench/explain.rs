//! `explain`: the decision for one principal and one request, the rule that decided, and why
//! every other rule did or did not apply.
//!
//! The decision is [`Policy::decide`]'s, the module's own; the per-rule reasons come from
//! [`crate::policy::trace`], which is held to the same verdict.

use crate::mcp::Method;
use crate::policy::trace::{self, ArgumentsTrace, Facts, RuleTrace, TargetTrace, Tri};
use crate::policy::{Decision, Policy, PolicySpec, Reason, Request};
use crate::principal::Principal;
use serde_json::value::RawValue;
use std::fmt::Write as _;

/// What is asked: a JSON-RPC method on a server, with its target and arguments.
#[derive(Debug, Clone)]
pub struct Ask {
    pub server: String,
    /// The JSON-RPC method name (`tools/call`, `resources/read`, `tools/list`, …).
    pub method: String,
    /// Tool name, resource URI or prompt name.
    pub target: Option<String>,
    /// `tools/call` arguments, as JSON.
    pub arguments: Option<Box<RawValue>>,
}

impl Ask {
    pub fn tool(server: &str, name: &str) -> Ask {
        Ask {
            server: server.into(),
            method: "tools/call".into(),
            target: Some(name.into()),
            arguments: None,
        }
    }

    /// The engine's request.
    pub fn request(&self) -> Request<'_> {
        Request {
            method: Method::from_name(&self.method),
            subject: self.target.as_deref(),
            arguments: self.arguments.as_deref(),
        }
    }

    /// `tools/call delete_branch on demo`.
    pub fn describe(&self) -> String {
        match &self.target {
            Some(t) => format!("{} {t} on {}", self.method, self.server),
            None => format!("{} on {}", self.method, self.server),
        }
    }
}

/// The access-log vocabulary for a decision: `allow`, `deny`, or `audit_deny` (audit mode let
/// through what enforce mode would refuse).
pub fn decision_label(d: &Decision<'_>) -> &'static str {
    if d.would_deny {
        "audit_deny"
    } else if d.allowed {
        "allow"
    } else {
        "deny"
    }
}

/// One sentence for why a decision came out as it did.
pub fn reason_text(d: &Decision<'_>) -> String {
    let rule = d.rule_id.map(|r| format!("rule {r:?}")).unwrap_or_default();
    match d.reason {
        Reason::AllowRule => format!("{rule} allows it, and no deny rule applies"),
        Reason::DenyRule => format!("{rule} denies it (deny wins)"),
        Reason::Baseline => {
            "a protocol method every authenticated caller may use (baseline), and no deny rule applies".into()
        }
        Reason::ArgumentsRejected => format!(
            "{rule} would allow it, but its constraint on argument {:?} fails, and no other rule allows it",
            d.argument.unwrap_or_default()
        ),
        Reason::NoRule => "no rule allows it (default deny)".into(),
        Reason::MissingSubject => "the request names no target, and this method needs one".into(),
    }
}

/// The full explanation as text.
pub fn explain(spec: &PolicySpec, policy: &Policy, principal: &Principal, ask: &Ask) -> String {
    let req = ask.request();
    let d = policy.decide(principal, &ask.server, &req);
    let facts = Facts::complete(principal);
    let traces = trace::trace(spec, &facts, &ask.server, &req);
    let mut s = String::new();
    let _ = writeln!(s, "request:   {}", ask.describe());
    let _ = writeln!(s, "principal: {}", super::who::describe(principal));
    let mut mode = d.mode.label().to_owned();
    if !policy.declares_server(&ask.server) && !spec.servers.is_empty() {
        mode.push_str(&format!(
            ", server {:?} is not declared: only \"*\" rules apply",
            ask.server
        ));
    }
    let _ = writeln!(
        s,
        "decision:  {} ({mode} mode){}",
        decision_label(&d),
        if d.would_deny {
            ": passes now, refused once the server enforces"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "because:   {}", reason_text(&d));
    let _ = writeln!(s, "rules:");
    if traces.is_empty() {
        let _ = writeln!(s, "  (the policy has no rules)");
    }
    for t in &traces {
        let decided = d.rule_id == Some(t.id.as_str());
        let _ = writeln!(s, "{}", rule_line(t, decided));
    }
    s
}

/// `  ✓ rules[1] "no-delete" (deny): applies — decided` and the why.
fn rule_line(t: &RuleTrace, decided: bool) -> String {
    let mark = match (decided, t.applies) {
        (true, _) => "=>",
        (_, Tri::Yes) => " +",
        (_, Tri::Unknown) => " ?",
        (_, Tri::No) => " -",
    };
    let effect = match t.effect {
        crate::policy::Effect::Allow => "allow",
        crate::policy::Effect::Deny => "deny",
    };
    let why = if !t.server {
        format!("not in force on this server (servers {:?})", t.servers)
    } else {
        match &t.target {
            TargetTrace::NotTargeted(kind) => format!("says nothing about this request (it has no {kind})"),
            TargetTrace::NotMatched(p) => format!("target does not match {p:?}"),
            TargetTrace::MissingSubject => "the request names no target".into(),
            TargetTrace::Matched(pattern) => {
                let who = principal_why(t);
                let args = match &t.arguments {
                    ArgumentsTrace::None => String::new(),
                    ArgumentsTrace::Pass => "; argument constraints hold".into(),
                    ArgumentsTrace::Fail(k) => format!("; argument constraint {k:?} fails"),
                    ArgumentsTrace::Malformed(k) => format!("; arguments unreadable for constraint {k:?}"),
                    ArgumentsTrace::Unknown => "; arguments not known".into(),
                };
                format!("target matches {pattern:?}; {who}{args}")
            }
        }
    };
    let verdict = match (decided, t.applies) {
        (true, _) => "DECIDED",
        (_, Tri::Yes) => "applies",
        (_, Tri::Unknown) => "may apply",
        (_, Tri::No) => "does not apply",
    };
    format!("  {mark} rules[{}] {:?} ({effect}): {verdict}: {why}", t.index, t.id)
}

fn principal_why(t: &RuleTrace) -> String {
    let one = |m: &trace::MatcherTrace| -> String {
        if let Some(note) = m.note {
            return format!("principals[{}] ({note}) {}", m.index, tri_word(m.result));
        }
        let parts: Vec<String> = m
            .fields
            .iter()
            .map(|f| format!("{} {} {}", f.field, f.wanted, tri_word(f.result)))
            .collect();
        format!("principals[{}]: {}", m.index, parts.join(", "))
    };
    match t.principal {
        Tri::Yes => match t.matchers.iter().find(|m| m.result == Tri::Yes) {
            Some(m) => format!("caller matches {}", one(m)),
            None => "caller matches".into(),
        },
        _ => {
            let all: Vec<String> = t.matchers.iter().map(one).collect();
            format!("caller matches no matcher: {}", all.join("; "))
        }
    }
}

fn tri_word(t: Tri) -> &'static str {
    match t {
        Tri::Yes => "matches",
        Tri::No => "does not match",
        Tri::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;

    #[test]
    fn explain_names_the_deciding_rule_and_why_the_others_did_not_apply() {
        let doc = br#"{"servers": {"demo": {}}, "rules": [
            {"id": "devs", "effect": "allow", "principals": [{"groups": ["developers"]}], "tools": ["*"]},
            {"id": "contractors-read", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo", "search_*"]},
            {"id": "no-delete", "effect": "deny", "principals": [{"groups": ["contractors"]}], "tools": ["delete_*"]}]}"#;
        let spec = policy::parse_spec(doc).expect("spec");
        let p = Policy::compile(spec.clone()).expect("policy");
        let mut bob = Principal::anonymous();
        bob.source = crate::principal::Source::Jwt;
        bob.subject = "bob".into();
        bob.groups = vec!["contractors".into()];
        let text = explain(&spec, &p, &bob, &Ask::tool("demo", "delete_branch"));
        assert!(text.contains("decision:  deny (enforce mode)"), "{text}");
        assert!(
            text.contains("because:   rule \"no-delete\" denies it (deny wins)"),
            "{text}"
        );
        assert!(
            text.contains(r#"- rules[0] "devs" (allow): does not apply: target matches "*"; caller matches no matcher: principals[0]: groups ["developers"] does not match"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"- rules[1] "contractors-read" (allow): does not apply: target does not match ["echo", "search_*"]"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"=> rules[2] "no-delete" (deny): DECIDED"#), "{text}");
    }
}
