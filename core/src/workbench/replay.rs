//! `replay`: re-decide recorded traffic (the module's access-log lines) under a candidate
//! policy, and report every decision that would change, grouped by principal, server and
//! target: the step between "audit" and "enforce".
//!
//! A line carries what the module decided on: server, method, target, the caller's subject,
//! tenant and groups (`mcp_principal`, `mcp_tenant`, `mcp_groups`: the shipped access-log
//! formats write them), and the decision, rule and mode. It does not carry roles, scopes,
//! issuer, identity source, other claims or tool arguments. A candidate decision that depends
//! on one of those is *undetermined* (reported as such, never guessed) unless a principals file
//! supplies the caller's fields. Each line is one HTTP request; a batch is one line (its last
//! message's metadata), so batches are counted, not replayed.

use super::explain::decision_label;
use super::who::WhoSpec;
use crate::mcp::Method;
use crate::policy::trace::{self, ArgumentsTrace, Facts, Tri, Unknown};
use crate::policy::{Decision, Mode, Policy, PolicySpec, Request, Verdict};
use crate::principal::{Principal, Source};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One access-log line that holds a policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the log.
    pub line: usize,
    pub server: String,
    pub method: String,
    pub target: Option<String>,
    /// `None`: the anonymous caller.
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub groups: Vec<String>,
    /// `allow`, `deny` or `audit_deny`.
    pub decision: String,
    pub rule: Option<String>,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Decision(Record),
    /// A batch: one line for several messages.
    Batch,
    /// Not a policy decision: refused before policy (malformed, unauthenticated), not MCP, or
    /// logged without policy.
    Other,
}

/// Reasons the module records when policy decided.
const POLICY_REASONS: [&str; 6] = [
    "allow_rule",
    "deny_rule",
    "baseline",
    "arguments_rejected",
    "no_rule",
    "missing_subject",
];

/// Read one access-log line (a JSON object). Envoy writes `null` or `"-"` for what a request
/// did not have.
pub fn parse_line(n: usize, text: &str) -> Result<Line, String> {
    let v: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("line {n}: not a JSON access-log line: {e}"))?;
    let field = |k: &str| -> Option<String> {
        match v.get(k) {
            Some(Value::String(s)) if !s.is_empty() && s != "-" => Some(s.clone()),
            Some(Value::Number(x)) => Some(x.to_string()),
            _ => None,
        }
    };
    let Some(method) = field("mcp_method") else {
        return Ok(Line::Other);
    };
    if method == "batch" {
        return Ok(Line::Batch);
    }
    let (Some(decision), Some(reason)) = (field("mcp_decision"), field("mcp_reason")) else {
        return Ok(Line::Other);
    };
    if !matches!(decision.as_str(), "allow" | "deny" | "audit_deny") || !POLICY_REASONS.contains(&reason.as_str()) {
        return Ok(Line::Other);
    }
    if !v.contains_key("mcp_groups") {
        return Err(format!(
            "line {n}: no `mcp_groups` field: this log format does not record the caller's groups, so no decision \
             can be replayed; add \"mcp_groups\": \"%REQ(X-MCP-GROUPS)%\" to the access-log format (the shipped \
             configs have it)"
        ));
    }
    let server = field("mcp_server").ok_or_else(|| format!("line {n}: a decision without `mcp_server`"))?;
    Ok(Line::Decision(Record {
        line: n,
        server,
        method,
        target: field("mcp_target"),
        subject: field("mcp_principal"),
        tenant: field("mcp_tenant"),
        groups: field("mcp_groups").map(|g| split_groups(&g)).unwrap_or_default(),
        decision,
        rule: field("mcp_rule"),
    }))
}

/// `x-mcp-groups` as the module writes it: comma-separated, `%` and `,` percent-encoded.
pub fn split_groups(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter(|g| !g.is_empty())
        .map(|g| g.replace("%2C", ",").replace("%2c", ",").replace("%25", "%"))
        .collect()
}

/// One recorded decision that comes out differently.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    recorded: String,
    recorded_rule: Option<String>,
    candidate: String,
    candidate_rule: Option<String>,
}

/// (caller, server): the groups a report is printed in.
type Who = (String, String);
/// Per group, per request (`tools/call delete_branch`): each distinct change and its lines.
type Changes = BTreeMap<Who, BTreeMap<String, BTreeMap<Change, Vec<usize>>>>;
/// Per group, per request: what the undetermined decisions need, and their lines.
type Undetermined = BTreeMap<Who, BTreeMap<String, (String, Vec<usize>)>>;

/// Counts and groups of one replay.
#[derive(Debug, Default)]
pub struct Report {
    pub replayed: usize,
    pub unchanged: usize,
    pub changed: usize,
    pub undetermined: usize,
    pub batches: usize,
    pub other: usize,
    /// (caller, server) → (request) → (change) → lines.
    changes: Changes,
    unknown: Undetermined,
}

impl Report {
    /// Whether anything would change or could not be decided.
    pub fn differs(&self) -> bool {
        self.changed + self.undetermined > 0
    }
}

/// Re-decide every line under `candidate`. `known` gives callers' fields the log lacks (by
/// subject); a caller found there is fully known.
pub fn replay(
    lines: &[Line],
    spec: &PolicySpec,
    policy: &Policy,
    known: &BTreeMap<String, WhoSpec>,
) -> Result<Report, String> {
    let mut r = Report::default();
    for l in lines {
        let rec = match l {
            Line::Decision(rec) => rec,
            Line::Batch => {
                r.batches += 1;
                continue;
            }
            Line::Other => {
                r.other += 1;
                continue;
            }
        };
        r.replayed += 1;
        let (principal, unknown) = principal_of(rec, known)?;
        let req = Request {
            method: Method::from_name(&rec.method),
            subject: rec.target.as_deref(),
            arguments: None,
        };
        let facts = Facts {
            principal: &principal,
            unknown,
            arguments_known: false,
        };
        let traces = trace::trace(spec, &facts, &rec.server, &req);
        let who = caller(rec);
        let what = match &rec.target {
            Some(t) => format!("{} {t}", rec.method),
            None => rec.method.clone(),
        };
        let Some(v) = trace::decision_from(&traces, &facts, &req) else {
            r.undetermined += 1;
            let needs: Vec<String> = traces
                .iter()
                .filter(|t| t.candidate() && t.applies == Tri::Unknown)
                .map(|t| {
                    let mut fields: Vec<String> = t
                        .matchers
                        .iter()
                        .flat_map(|m| m.fields.iter())
                        .filter(|f| f.result == Tri::Unknown)
                        .map(|f| f.field.clone())
                        .collect();
                    if t.arguments == ArgumentsTrace::Unknown {
                        fields.push("arguments".into());
                    }
                    fields.dedup();
                    format!("rule {:?} needs {}", t.id, fields.join(", "))
                })
                .collect();
            let e = r
                .unknown
                .entry((who, rec.server.clone()))
                .or_default()
                .entry(what)
                .or_insert_with(|| (needs.join("; "), Vec::new()));
            e.1.push(rec.line);
            continue;
        };
        // The same verdict through the engine, for the rule id and mode it reports.
        let mode = policy.mode(&rec.server);
        let label = match (v.verdict, mode) {
            (Verdict::Allow, _) => "allow",
            (Verdict::Deny, Mode::Audit) => "audit_deny",
            (Verdict::Deny, Mode::Enforce) => "deny",
        };
        let rule = v.rule.map(|i| spec.rules[i].id.clone());
        if fully_known(&unknown) {
            // Fully known: the traced verdict is the engine's (core::policy::trace's tests hold it).
            let d: Decision<'_> = policy.decide(&principal, &rec.server, &req);
            debug_assert_eq!(decision_label(&d), label);
        }
        if label == rec.decision {
            r.unchanged += 1;
            continue;
        }
        r.changed += 1;
        r.changes
            .entry((who, rec.server.clone()))
            .or_default()
            .entry(what)
            .or_default()
            .entry(Change {
                recorded: rec.decision.clone(),
                recorded_rule: rec.rule.clone(),
                candidate: label.to_owned(),
                candidate_rule: rule,
            })
            .or_default()
            .push(rec.line);
    }
    Ok(r)
}

fn fully_known(u: &Unknown) -> bool {
    *u == Unknown::default()
}

fn caller(rec: &Record) -> String {
    match &rec.subject {
        None => "anonymous".into(),
        Some(s) => {
            let mut c = s.clone();
            if !rec.groups.is_empty() {
                c.push_str(&format!(" (groups {})", rec.groups.join(", ")));
            }
            if let Some(t) = &rec.tenant {
                c.push_str(&format!(" tenant {t}"));
            }
            c
        }
    }
}

fn principal_of(rec: &Record, known: &BTreeMap<String, WhoSpec>) -> Result<(Principal, Unknown), String> {
    let Some(subject) = &rec.subject else {
        return Ok((Principal::anonymous(), Unknown::default()));
    };
    let (mut p, unknown) = match known.get(subject) {
        Some(w) => {
            let mut w = w.clone();
            w.subject = Some(subject.clone());
            let p = w
                .principal()
                .map_err(|e| format!("principals file, {subject:?}: {e}"))?;
            (p, Unknown::default())
        }
        None => {
            let mut p = Principal::anonymous();
            p.source = Source::Jwt;
            p.subject = subject.clone();
            (p, Unknown::ACCESS_LOG)
        }
    };
    // What the log recorded is what the module saw at the time.
    p.tenant = rec.tenant.clone();
    p.groups = rec.groups.clone();
    p.normalize();
    Ok((p, unknown))
}

fn rule(r: &Option<String>) -> String {
    r.as_ref().map(|r| format!(" (rule {r:?})")).unwrap_or_default()
}

/// The report as text.
pub fn render(log: &str, candidate: &str, version: &str, r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "replayed {} decision(s) from {log} against {candidate} (policy version {version}): {} unchanged, {} would change, {} undetermined",
        r.replayed, r.unchanged, r.changed, r.undetermined
    );
    if r.batches + r.other > 0 {
        let _ = writeln!(
            s,
            "skipped {} line(s): {} not policy decisions (refused before policy, not MCP), {} batches (one line per batch: not replayable)",
            r.batches + r.other,
            r.other,
            r.batches
        );
    }
    if !r.changes.is_empty() {
        let _ = writeln!(s, "\nwould change:");
        for ((who, server), reqs) in &r.changes {
            let _ = writeln!(s, "  {who} on {server}");
            for (what, changes) in reqs {
                for (c, lines) in changes {
                    let _ = writeln!(
                        s,
                        "    {what}: {}{} -> {}{}  x{} (lines {})",
                        c.recorded,
                        rule(&c.recorded_rule),
                        c.candidate,
                        rule(&c.candidate_rule),
                        lines.len(),
                        short(lines)
                    );
                }
            }
        }
    }
    if !r.unknown.is_empty() {
        let _ = writeln!(
            s,
            "\nundetermined (the log does not record what these rules need; give --principals FILE):"
        );
        for ((who, server), reqs) in &r.unknown {
            let _ = writeln!(s, "  {who} on {server}");
            for (what, (needs, lines)) in reqs {
                let _ = writeln!(s, "    {what}: {needs}  x{} (lines {})", lines.len(), short(lines));
            }
        }
    }
    s
}

fn short(lines: &[usize]) -> String {
    let shown: Vec<String> = lines.iter().take(5).map(|l| l.to_string()).collect();
    if lines.len() > 5 {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;

    fn line(sub: &str, groups: &str, tool: &str, decision: &str, reason: &str, rule: &str) -> String {
        serde_json::json!({
            "mcp_server": "demo", "mcp_method": "tools/call", "mcp_target": tool, "mcp_principal": sub,
            "mcp_tenant": null, "mcp_groups": groups, "mcp_decision": decision, "mcp_reason": reason,
            "mcp_rule": rule, "mcp_mode": "audit"
        })
        .to_string()
    }

    #[test]
    fn changes_are_grouped_and_unknown_fields_are_never_guessed() {
        let log = [
            line("bob", "contractors", "delete_branch", "audit_deny", "deny_rule", "no-delete"),
            line("bob", "contractors", "delete_branch", "audit_deny", "deny_rule", "no-delete"),
            line("bob", "contractors", "echo", "allow", "allow_rule", "con"),
            line("carol", "staff", "restart", "audit_deny", "no_rule", "-"),
            r#"{"mcp_method": "batch", "mcp_groups": null}"#.to_string(),
            r#"{"mcp_method": "tools/call", "mcp_decision": "reject", "mcp_reason": "invalid_params", "mcp_groups": null}"#.to_string(),
            r#"{"path": "/.well-known/oauth-protected-resource"}"#.to_string(),
        ];
        let lines: Vec<Line> = log
            .iter()
            .enumerate()
            .map(|(i, l)| parse_line(i + 1, l).expect("line"))
            .collect();
        let spec = policy::parse_spec(
            br#"{"servers": {"demo": {}}, "rules": [
            {"id": "con", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo"]},
            {"id": "no-delete", "effect": "deny", "principals": [{"groups": ["contractors"]}], "tools": ["delete_*"]},
            {"id": "ops", "effect": "allow", "principals": [{"roles": ["ops"]}], "tools": ["restart"]}]}"#,
        )
        .expect("spec");
        let p = Policy::compile(spec.clone()).expect("policy");
        let r = replay(&lines, &spec, &p, &BTreeMap::new()).expect("replay");
        assert_eq!(
            (r.replayed, r.unchanged, r.changed, r.undetermined, r.batches, r.other),
            (4, 1, 2, 1, 1, 2)
        );
        let text = render("access.log", "candidate.json", p.version(), &r);
        assert!(
            text.contains("  bob (groups contractors) on demo\n    tools/call delete_branch: audit_deny (rule \"no-delete\") -> deny (rule \"no-delete\")  x2 (lines 1, 2)"),
            "{text}"
        );
        assert!(
            text.contains("tools/call restart: rule \"ops\" needs roles  x1 (lines 4)"),
            "{text}"
        );
        // Told carol's roles, the decision is made.
        let known: BTreeMap<String, WhoSpec> = serde_json::from_str(r#"{"carol": {"roles": ["ops"]}}"#).expect("known");
        let r = replay(&lines, &spec, &p, &known).expect("replay");
        assert_eq!((r.changed, r.undetermined), (3, 0));
        assert!(render("a", "b", "v", &r).contains("restart: audit_deny -> allow (rule \"ops\")"));
    }

    #[test]
    fn a_log_without_groups_is_refused_with_the_fix() {
        let e = parse_line(
            3,
            r#"{"mcp_method": "tools/call", "mcp_server": "d", "mcp_decision": "allow", "mcp_reason": "allow_rule"}"#,
        )
        .unwrap_err();
        assert!(e.contains("%REQ(X-MCP-GROUPS)%"), "{e}");
        assert_eq!(split_groups("a%2Cb,c%25"), ["a,b", "c%"]);
    }
}
