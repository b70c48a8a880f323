//! Why each rule did or did not apply to one request: the workbench's view of a decision.
//!
//! [`Policy::decide`] answers *what*; [`trace`] answers *why*, rule by rule and field by field,
//! for `mcp-policy explain` and for `replay` over access-log records that do not carry every
//! principal field. It reuses the engine's own pieces (the same [`Glob`], principal matchers
//! compiled from one field at a time, argument constraints, method names), so an explanation
//! cannot drift from what the module matches; `decision_from` turns the traces back into a
//! verdict, and the tests hold it to [`Policy::decide`]'s.
//!
//! Principal fields may be *unknown* (an access-log record has the subject, tenant and groups,
//! not the roles, scopes, issuer or claims): a matcher that needs an unknown field, and is not
//! already refuted by a known one, is [`Tri::Unknown`], and so is every decision that depends on
//! it. Nothing here is on the request path.

use super::args::{Constraint, Outcome};
use super::glob::Glob;
use super::matcher::PrincipalMatcher;
use super::spec::{Effect, PolicySpec, PrincipalSpec, RuleSpec};
use super::{methods_named, subject_slot, Reason, Request, Verdict, BASELINE_METHODS};
use crate::principal::Principal;

/// Three-valued truth: a field the caller's record does not carry is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    /// AND: any `No` is `No`, else any `Unknown` is `Unknown`.
    pub fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::Yes,
        }
    }

    /// OR: any `Yes` is `Yes`, else any `Unknown` is `Unknown`.
    pub fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::No,
        }
    }
}

/// Principal fields a record may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unknown {
    pub source: bool,
    pub issuer: bool,
    pub tenant: bool,
    pub groups: bool,
    pub roles: bool,
    pub scopes: bool,
    pub claims: bool,
}

impl Unknown {
    /// What the module's access-log line does not carry: everything but subject, tenant and
    /// groups.
    pub const ACCESS_LOG: Unknown = Unknown {
        source: true,
        issuer: true,
        tenant: false,
        groups: false,
        roles: true,
        scopes: true,
        claims: true,
    };

    fn of(&self, field: &str) -> bool {
        match field {
            "sources" => self.source,
            "issuers" => self.issuer,
            "tenants" => self.tenant,
            "groups" => self.groups,
            "roles" => self.roles,
            "scopes" => self.scopes,
            "claims" => self.claims,
            _ => false,
        }
    }
}

/// What is known about the caller.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub principal: &'a Principal,
    pub unknown: Unknown,
    /// Whether the request's `arguments` are known (an access log does not record them).
    pub arguments_known: bool,
}

impl<'a> Facts<'a> {
    /// Everything known: the principal as identity established it, the request as sent.
    pub fn complete(principal: &'a Principal) -> Facts<'a> {
        Facts {
            principal,
            unknown: Unknown::default(),
            arguments_known: true,
        }
    }
}

/// One principal field of one matcher.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTrace {
    /// The matcher field (`groups`, `subjects`, `claims./org/tier`, …).
    pub field: String,
    /// The field's value in the policy, as JSON text.
    pub wanted: String,
    pub result: Tri,
}

/// One principal matcher (`principals[k]`) of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct MatcherTrace {
    pub index: usize,
    /// `{}`: every authenticated principal; `anonymous: true`: only the caller without identity.
    pub fields: Vec<FieldTrace>,
    /// Set for `{}` and `anonymous` matchers, which have no fields to trace.
    pub note: Option<&'static str>,
    pub result: Tri,
}

/// How a rule's target part fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTrace {
    /// The first pattern (or method name) that matched.
    Matched(String),
    /// The rule lists patterns of this kind, none matched.
    NotMatched(Vec<String>),
    /// The rule says nothing about this kind of target (e.g. a `tools` rule, asked about a
    /// prompt).
    NotTargeted(&'static str),
    /// The request names no target although its method needs one.
    MissingSubject,
}

/// How a rule's argument constraints fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentsTrace {
    /// No constraints.
    None,
    Pass,
    /// An allow rule: this key's constraint failed. A deny rule: some constraint failed, so it
    /// does not apply.
    Fail(String),
    /// The arguments could not be read unambiguously (a deny rule then applies: fail closed).
    Malformed(String),
    /// The arguments were not recorded.
    Unknown,
}

/// One rule, against one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTrace {
    pub index: usize,
    pub id: String,
    pub effect: Effect,
    pub servers: Vec<String>,
    /// Whether the rule is in force on the request's server.
    pub server: bool,
    pub target: TargetTrace,
    pub principal: Tri,
    pub matchers: Vec<MatcherTrace>,
    pub arguments: ArgumentsTrace,
    /// Server, target, principal and arguments together.
    pub applies: Tri,
}

impl RuleTrace {
    fn target_ok(&self) -> bool {
        matches!(self.target, TargetTrace::Matched(_))
    }

    /// Whether the rule is a candidate: in force on the server and naming the target. Only
    /// candidates can decide; the rest are reported for completeness.
    pub fn candidate(&self) -> bool {
        self.server && self.target_ok()
    }
}

/// The verdict the traces imply, or `None` when it depends on something unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedVerdict {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Index of the deciding rule (as in [`super::Decision::rule_id`]).
    pub rule: Option<usize>,
}

/// Trace every rule of `spec` against `req` on `server`. `spec` must be one that compiles
/// (check with [`super::Policy::compile`] first): patterns and constraints are not re-validated.
pub fn trace(spec: &PolicySpec, facts: &Facts<'_>, server: &str, req: &Request<'_>) -> Vec<RuleTrace> {
    let declared = spec.servers.contains_key(server);
    spec.rules
        .iter()
        .enumerate()
        .map(|(i, r)| trace_rule(i, r, declared, facts, server, req))
        .collect()
}

fn trace_rule(
    index: usize,
    r: &RuleSpec,
    declared: bool,
    facts: &Facts<'_>,
    server: &str,
    req: &Request<'_>,
) -> RuleTrace {
    // The engine indexes `"*"` rules for every server, and named ones only on a declared
    // server (an undeclared one gets the fallback index).
    let server_ok = r.servers.iter().any(|s| s == "*" || (declared && s == server));
    let target = match subject_slot(req.method) {
        Some(slot) => {
            let (patterns, kind) = match slot {
                super::TOOL => (&r.tools, "tools"),
                super::RESOURCE => (&r.resources, "resources"),
                _ => (&r.prompts, "prompts"),
            };
            match req.subject {
                None => TargetTrace::MissingSubject,
                Some(_) if patterns.is_empty() => TargetTrace::NotTargeted(kind),
                Some(name) => match patterns.iter().find(|p| Glob::new(p).matches(name)) {
                    Some(p) => TargetTrace::Matched(p.clone()),
                    None => TargetTrace::NotMatched(patterns.clone()),
                },
            }
        }
        None if r.methods.is_empty() => TargetTrace::NotTargeted("methods"),
        None => match r
            .methods
            .iter()
            .find(|m| methods_named(m).unwrap_or_default().contains(&req.method))
        {
            Some(m) => TargetTrace::Matched(m.clone()),
            None => TargetTrace::NotMatched(r.methods.clone()),
        },
    };
    let matchers: Vec<MatcherTrace> = r
        .principals
        .iter()
        .enumerate()
        .map(|(k, m)| trace_matcher(k, m, facts))
        .collect();
    let principal = matchers.iter().fold(Tri::No, |acc, m| acc.or(m.result));
    let arguments = trace_arguments(r, facts, req);
    let args_tri = match (&arguments, r.effect) {
        (ArgumentsTrace::None | ArgumentsTrace::Pass, _) => Tri::Yes,
        (ArgumentsTrace::Unknown, _) => Tri::Unknown,
        (ArgumentsTrace::Fail(_), _) => Tri::No,
        (ArgumentsTrace::Malformed(_), Effect::Deny) => Tri::Yes,
        (ArgumentsTrace::Malformed(_), Effect::Allow) => Tri::No,
    };
    let candidate = server_ok && matches!(target, TargetTrace::Matched(_));
    let applies = Tri::of(candidate).and(principal).and(args_tri);
    RuleTrace {
        index,
        id: r.id.clone(),
        effect: r.effect,
        servers: r.servers.clone(),
        server: server_ok,
        target,
        principal,
        matchers,
        arguments,
        applies,
    }
}

fn trace_arguments(r: &RuleSpec, facts: &Facts<'_>, req: &Request<'_>) -> ArgumentsTrace {
    if r.arguments.is_empty() {
        return ArgumentsTrace::None;
    }
    if !facts.arguments_known {
        return ArgumentsTrace::Unknown;
    }
    let mut failed = None;
    for (key, a) in &r.arguments {
        let Some(c) = Constraint::compile(key, a, &mut Vec::new()) else {
            return ArgumentsTrace::Malformed(key.clone());
        };
        match c.check(req.arguments) {
            Outcome::Pass => {}
            Outcome::Fail => {
                failed.get_or_insert_with(|| key.clone());
            }
            Outcome::Malformed => return ArgumentsTrace::Malformed(key.clone()),
        }
    }
    match failed {
        Some(k) => ArgumentsTrace::Fail(k),
        None => ArgumentsTrace::Pass,
    }
}

/// One matcher, one field at a time: each field compiled alone is exactly the engine's check
/// of that field (a matcher is the AND of its fields).
fn trace_matcher(index: usize, m: &PrincipalSpec, facts: &Facts<'_>) -> MatcherTrace {
    let p = facts.principal;
    let engine = |spec: PrincipalSpec| -> bool {
        PrincipalMatcher::compile(&spec, &mut Vec::new()).is_some_and(|c| c.matches(p))
    };
    if m.anonymous {
        return MatcherTrace {
            index,
            fields: Vec::new(),
            note: Some("only the caller without identity"),
            result: Tri::of(p.is_anonymous()),
        };
    }
    let mut fields = Vec::new();
    let mut push = |field: String, wanted: String, unknown: bool, spec: PrincipalSpec| {
        let result = if p.is_anonymous() {
            Tri::No
        } else if unknown {
            Tri::Unknown
        } else {
            Tri::of(engine(spec))
        };
        fields.push(FieldTrace { field, wanted, result });
    };
    let one = PrincipalSpec::default;
    if let Some(v) = &m.sources {
        push(
            "sources".into(),
            json(v),
            facts.unknown.of("sources"),
            PrincipalSpec {
                sources: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.subjects {
        push(
            "subjects".into(),
            json(v),
            false,
            PrincipalSpec {
                subjects: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.issuers {
        push(
            "issuers".into(),
            json(v),
            facts.unknown.of("issuers"),
            PrincipalSpec {
                issuers: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.tenants {
        push(
            "tenants".into(),
            json(v),
            facts.unknown.of("tenants"),
            PrincipalSpec {
                tenants: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.groups {
        push(
            "groups".into(),
            json(v),
            facts.unknown.of("groups"),
            PrincipalSpec {
                groups: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.roles {
        push(
            "roles".into(),
            json(v),
            facts.unknown.of("roles"),
            PrincipalSpec {
                roles: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(v) = &m.scopes {
        push(
            "scopes".into(),
            json(v),
            facts.unknown.of("scopes"),
            PrincipalSpec {
                scopes: Some(v.clone()),
                ..one()
            },
        );
    }
    if let Some(map) = &m.claims {
        for (key, values) in map {
            let single = std::iter::once((key.clone(), values.clone())).collect();
            push(
                format!("claims.{key}"),
                json(values),
                facts.unknown.of("claims"),
                PrincipalSpec {
                    claims: Some(single),
                    ..one()
                },
            );
        }
    }
    let (note, result) = if fields.is_empty() {
        (Some("every authenticated principal"), Tri::of(!p.is_anonymous()))
    } else {
        (None, fields.iter().fold(Tri::Yes, |acc, f| acc.and(f.result)))
    };
    MatcherTrace {
        index,
        fields,
        note,
        result,
    }
}

/// JSON text of a policy value, for messages.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The verdict the traces imply, the engine's way: a deny rule that applies wins; else an allow
/// rule that applies; else an allow rule whose argument constraint failed; else the protocol
/// baseline for an authenticated caller; else default deny. `None` when the outcome depends on
/// a field or argument that is not known.
pub fn decision_from(traces: &[RuleTrace], facts: &Facts<'_>, req: &Request<'_>) -> Option<TracedVerdict> {
    let verdict = |verdict, reason, rule| Some(TracedVerdict { verdict, reason, rule });
    if subject_slot(req.method).is_some() && req.subject.is_none() {
        return verdict(Verdict::Deny, Reason::MissingSubject, None);
    }
    let applying = |effect: Effect| traces.iter().filter(move |t| t.effect == effect && t.candidate());
    // Deny wins, and the first applying deny rule (document order) is reported.
    for t in applying(Effect::Deny) {
        match t.applies {
            Tri::Yes => return verdict(Verdict::Deny, Reason::DenyRule, Some(t.index)),
            Tri::Unknown => return None,
            Tri::No => {}
        }
    }
    let mut rejected = None;
    for t in applying(Effect::Allow) {
        match t.applies {
            Tri::Yes => return verdict(Verdict::Allow, Reason::AllowRule, Some(t.index)),
            Tri::Unknown => return None,
            Tri::No => {
                if t.principal == Tri::Yes
                    && matches!(t.arguments, ArgumentsTrace::Fail(_) | ArgumentsTrace::Malformed(_))
                {
                    rejected.get_or_insert(t.index);
                } else if t.principal == Tri::Unknown {
                    return None;
                }
            }
        }
    }
    if let Some(i) = rejected {
        return verdict(Verdict::Deny, Reason::ArgumentsRejected, Some(i));
    }
    if subject_slot(req.method).is_none() && !facts.principal.is_anonymous() && BASELINE_METHODS.contains(&req.method) {
        return verdict(Verdict::Allow, Reason::Baseline, None);
    }
    verdict(Verdict::Deny, Reason::NoRule, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::Method;
    use crate::policy::Policy;
    use serde_json::value::RawValue;

    fn spec(doc: &str) -> PolicySpec {
        super::super::parse_spec(doc.as_bytes()).expect("spec")
    }

    fn principal(sub: &str, groups: &[&str], roles: &[&str]) -> Principal {
        let mut p = Principal::anonymous();
        p.source = crate::principal::Source::Jwt;
        p.subject = sub.into();
        p.issuer = "https://idp".into();
        p.groups = groups.iter().map(|s| s.to_string()).collect();
        p.roles = roles.iter().map(|s| s.to_string()).collect();
        p.normalize();
        p
    }

    const DOC: &str = r#"{"servers": {"gh": {}, "db": {"mode": "audit"}}, "rules": [
        {"id": "devs", "effect": "allow", "principals": [{"groups": ["dev*"]}], "tools": ["*"]},
        {"id": "ops-role", "effect": "allow", "principals": [{"roles": ["ops"], "groups": ["staff"]}], "tools": ["restart"]},
        {"id": "no-delete", "effect": "deny", "servers": ["gh"], "principals": [{"groups": ["contractors"]}], "tools": ["delete_*"]},
        {"id": "small-search", "effect": "allow", "principals": [{}], "tools": ["search"], "arguments": {"limit": {"type": "integer", "maximum": 10}}},
        {"id": "ping", "effect": "allow", "principals": [{"anonymous": true}], "methods": ["ping"]}
    ]}"#;

    /// The traced verdict equals the engine's for every principal × request of a small grid.
    #[test]
    fn traced_verdicts_agree_with_the_engine() {
        let s = spec(DOC);
        let policy = Policy::compile(s.clone()).expect("compiles");
        let people = [
            Principal::anonymous(),
            principal("a", &["developers"], &[]),
            principal("b", &["contractors"], &[]),
            principal("c", &["contractors", "developers"], &[]),
            principal("d", &["staff"], &["ops"]),
            principal("e", &["staff"], &[]),
            principal("f", &[], &[]),
        ];
        let args: Vec<Box<RawValue>> = [r#"{"limit": 5}"#, r#"{"limit": 50}"#, r#"{"limit": "x"}"#, "[1]"]
            .iter()
            .map(|a| RawValue::from_string(a.to_string()).expect("raw"))
            .collect();
        let mut reqs = vec![
            Request::method(Method::Ping),
            Request::method(Method::ToolsList),
            Request::method(Method::CompletionComplete),
            Request::prompt_get("review"),
            Request {
                method: Method::ToolsCall,
                subject: None,
                arguments: None,
            },
        ];
        for tool in ["delete_branch", "restart", "search", "echo"] {
            reqs.push(Request::tool_call(tool, None));
            for a in &args {
                reqs.push(Request::tool_call(tool, Some(a)));
            }
        }
        let mut checked = 0;
        for server in ["gh", "db", "undeclared"] {
            for p in &people {
                for req in &reqs {
                    let facts = Facts::complete(p);
                    let traced = decision_from(&trace(&s, &facts, server, req), &facts, req).expect("all known");
                    let d = policy.decide(p, server, req);
                    assert_eq!(traced.verdict, d.verdict, "{server} {p:?} {req:?}");
                    assert_eq!(traced.reason, d.reason, "{server} {p:?} {req:?}");
                    assert_eq!(
                        traced.rule.map(|i| s.rules[i].id.as_str()),
                        d.rule_id,
                        "{server} {req:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 300);
    }

    #[test]
    fn an_unknown_field_makes_the_verdict_unknown_only_when_it_matters() {
        let s = spec(DOC);
        let p = principal("e", &["staff"], &[]);
        let facts = Facts {
            principal: &p,
            unknown: Unknown::ACCESS_LOG,
            arguments_known: false,
        };
        // ops-role needs roles (unknown) and groups (known: staff): undetermined.
        let req = Request::tool_call("restart", None);
        let t = trace(&s, &facts, "gh", &req);
        assert_eq!(t[1].applies, Tri::Unknown);
        assert_eq!(decision_from(&t, &facts, &req), None);
        // Without the known group the unknown role cannot help: determined.
        let q = principal("g", &["guests"], &[]);
        let facts_q = Facts { principal: &q, ..facts };
        let t = trace(&s, &facts_q, "gh", &req);
        assert_eq!(t[1].applies, Tri::No);
        assert_eq!(
            decision_from(&t, &facts_q, &req).map(|v| v.reason),
            Some(Reason::NoRule)
        );
        // A constrained rule with unrecorded arguments: undetermined.
        let req = Request::tool_call("search", None);
        assert_eq!(decision_from(&trace(&s, &facts_q, "gh", &req), &facts_q, &req), None);
        // A developer's call is decided by a group alone.
        let dev = principal("a", &["developers"], &[]);
        let facts_d = Facts {
            principal: &dev,
            ..facts
        };
        let req = Request::tool_call("echo", None);
        assert_eq!(
            decision_from(&trace(&s, &facts_d, "gh", &req), &facts_d, &req).map(|v| v.rule),
            Some(Some(0))
        );
    }

    #[test]
    fn traces_say_which_part_failed() {
        let s = spec(DOC);
        let p = principal("b", &["contractors"], &[]);
        let facts = Facts::complete(&p);
        let t = trace(&s, &facts, "db", &Request::tool_call("delete_branch", None));
        assert_eq!(t[0].principal, Tri::No);
        assert_eq!(t[0].matchers[0].fields[0].field, "groups");
        assert_eq!(t[0].matchers[0].fields[0].wanted, r#"["dev*"]"#);
        assert!(!t[2].server, "no-delete is for gh only");
        assert_eq!(t[1].target, TargetTrace::NotMatched(vec!["restart".into()]));
        assert_eq!(t[4].target, TargetTrace::NotTargeted("tools"));
    }
}
