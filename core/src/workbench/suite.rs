//! `test`: policy unit tests, written by operators and run in CI.
//!
//! A suite names its callers once and lists cases: a call (tool, resource, prompt or a method)
//! with the expected decision and, optionally, the deciding rule; or a list with the names the
//! upstream offers and the ones this caller must see. The CLI reads the file (YAML or JSON)
//! into [`Suite`]; [`run`] decides every case with the module's own [`Policy`]; [`render`]
//! prints a readable diff for each failure.

use super::explain::{decision_label, reason_text, Ask};
use super::who::WhoSpec;
use crate::policy::{Kind, Policy};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The policy or filter config under test, relative to the test file (the CLI's
    /// `--policy` overrides it).
    #[serde(default)]
    pub policy: Option<String>,
    /// Callers by name, used by `who` in the cases.
    #[serde(default)]
    pub principals: BTreeMap<String, WhoSpec>,
    pub tests: Vec<Case>,
}

/// A caller: a name from `principals`, or written out.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Who {
    Named(String),
    Inline(WhoSpec),
}

/// One case: exactly one of `tool`, `resource`, `prompt`, `method` (a call), or `list`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub who: Who,
    /// Default: the only server the policy declares, else `default`.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    /// A method without a target (`ping`, `completion/complete`, …).
    #[serde(default)]
    pub method: Option<String>,
    /// `tools/call` arguments.
    #[serde(default)]
    pub arguments: Option<Value>,
    /// `allow`, `deny` or `audit_deny`.
    #[serde(default)]
    pub expect: Option<String>,
    /// The rule expected to decide; `null`/absent: not checked. Use `""` to expect none.
    #[serde(default)]
    pub rule: Option<String>,
    /// `tools`, `resources`, `resource_templates` or `prompts`.
    #[serde(default)]
    pub list: Option<String>,
    /// The names (or URIs) the upstream lists.
    #[serde(default)]
    pub offered: Vec<String>,
    /// The ones this caller must see, in any order.
    #[serde(default)]
    pub visible: Option<Vec<String>>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: String,
    /// `None`: passed; else the readable diff.
    pub failure: Option<String>,
}

/// Run every case against `policy`. A case that is not well-formed fails with what is wrong.
pub fn run(suite: &Suite, policy: &Policy, declared: &[String]) -> Vec<Outcome> {
    suite
        .tests
        .iter()
        .map(|c| Outcome {
            name: c.name.clone(),
            failure: run_case(suite, c, policy, declared).err(),
        })
        .collect()
}

fn run_case(suite: &Suite, c: &Case, policy: &Policy, declared: &[String]) -> Result<(), String> {
    let who = match &c.who {
        Who::Named(n) => suite.principals.get(n).ok_or_else(|| {
            let names: Vec<String> = suite.principals.keys().cloned().collect();
            let hint = super::check::closest(n, &names)
                .map(|b| format!(" (did you mean {b:?}?)"))
                .unwrap_or_default();
            format!("who: no principal named {n:?} under `principals`{hint}")
        })?,
        Who::Inline(w) => w,
    };
    let principal = who.principal().map_err(|e| format!("who: {e}"))?;
    let server = match (&c.server, declared) {
        (Some(s), _) => s.clone(),
        (None, [one]) => one.clone(),
        (None, []) => "default".into(),
        (None, _) => {
            return Err(format!(
                "server: the policy declares several servers ({}): say which",
                declared.join(", ")
            ))
        }
    };
    let targets = [
        ("tools/call", &c.tool),
        ("resources/read", &c.resource),
        ("prompts/get", &c.prompt),
    ];
    let given: Vec<&str> = targets.iter().filter(|(_, v)| v.is_some()).map(|(m, _)| *m).collect();
    if let Some(list) = &c.list {
        if !given.is_empty() || c.method.is_some() || c.expect.is_some() {
            return Err("a `list` case takes `offered` and `visible`, not a call or `expect`".into());
        }
        let (kind, method) = match list.as_str() {
            "tools" => (Kind::Tool, "tools/list"),
            "resources" => (Kind::Resource, "resources/list"),
            "resource_templates" => (Kind::ResourceTemplate, "resources/templates/list"),
            "prompts" => (Kind::Prompt, "prompts/list"),
            other => {
                return Err(format!(
                    "list: {other:?}: expected tools, resources, resource_templates or prompts"
                ))
            }
        };
        let Some(expected) = &c.visible else {
            return Err("a `list` case needs `visible` (the names this caller must see)".into());
        };
        let view = policy.for_principal(&principal, &server);
        let seen: Vec<&String> = c.offered.iter().filter(|n| view.visible(kind, n)).collect();
        let mut lines = Vec::new();
        let mut bad = false;
        for n in &c.offered {
            let is = seen.contains(&n);
            let want = expected.contains(n);
            lines.push(match (is, want) {
                (true, true) => format!("      {n}"),
                (false, false) => continue,
                (false, true) => {
                    bad = true;
                    format!("    - {n}   (expected visible, hidden)")
                }
                (true, false) => {
                    bad = true;
                    format!("    + {n}   (visible, expected hidden)")
                }
            });
        }
        for n in expected.iter().filter(|n| !c.offered.contains(n)) {
            bad = true;
            lines.push(format!("    ? {n}   (expected visible, but not in `offered`)"));
        }
        if bad {
            return Err(format!(
                "{method} on {server} as {}: visible list differs\n{}",
                super::who::describe(&principal),
                lines.join("\n")
            ));
        }
        return Ok(());
    }
    let (method, target) = match (given.as_slice(), &c.method) {
        ([m], None) => {
            let t = targets.iter().find(|(n, _)| *n == *m).and_then(|(_, v)| (*v).clone());
            (m.to_string(), t)
        }
        ([], Some(m)) => (m.clone(), None),
        _ => return Err("give exactly one of tool, resource, prompt, method (or a list)".into()),
    };
    let Some(expect) = &c.expect else {
        return Err("a call case needs `expect` (allow, deny or audit_deny)".into());
    };
    if !matches!(expect.as_str(), "allow" | "deny" | "audit_deny") {
        return Err(format!("expect: {expect:?}: expected allow, deny or audit_deny"));
    }
    let arguments = match &c.arguments {
        None => None,
        Some(v) => Some(serde_json::value::to_raw_value(v).map_err(|e| format!("arguments: {e}"))?),
    };
    let ask = Ask {
        server,
        method,
        target,
        arguments,
    };
    let d = policy.decide(&principal, &ask.server, &ask.request());
    let got = decision_label(&d);
    let rule_ok = match c.rule.as_deref() {
        None => true,
        Some("") => d.rule_id.is_none(),
        Some(r) => d.rule_id == Some(r),
    };
    if got == expect && rule_ok {
        return Ok(());
    }
    let want_rule = match c.rule.as_deref() {
        None => String::new(),
        Some("") => " by no rule".into(),
        Some(r) => format!(" by rule {r:?}"),
    };
    let got_rule = d
        .rule_id
        .map(|r| format!(" by rule {r:?}"))
        .unwrap_or_else(|| " by no rule".into());
    Err(format!(
        "{} as {}\n    - expected: {expect}{want_rule}\n    + actual:   {got}{got_rule} ({})",
        ask.describe(),
        super::who::describe(&principal),
        reason_text(&d)
    ))
}

/// `ok`/`FAIL` per case, the diffs, and a summary line.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        match &o.failure {
            None => {
                let _ = writeln!(s, "ok   {}", o.name);
            }
            Some(diff) => {
                let _ = writeln!(s, "FAIL {}\n    {diff}", o.name);
            }
        }
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let _ = writeln!(
        s,
        "{} test(s): {} passed, {failed} failed",
        outcomes.len(),
        outcomes.len() - failed
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;

    const POLICY: &[u8] = br#"{"servers": {"demo": {}}, "rules": [
        {"id": "devs", "effect": "allow", "principals": [{"groups": ["developers"]}], "tools": ["*"]},
        {"id": "contractors-read", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo", "search_*"]}]}"#;

    fn suite(json: &str) -> Suite {
        serde_json::from_str(json).expect("suite")
    }

    #[test]
    fn passing_and_failing_cases_with_readable_diffs() {
        let spec = policy::parse_spec(POLICY).expect("spec");
        let p = Policy::compile(spec).expect("policy");
        let s = suite(
            r#"{"principals": {"dev": {"subject": "alice", "groups": ["developers"]}, "con": {"subject": "bob", "groups": ["contractors"]}},
                "tests": [
                  {"name": "devs delete", "who": "dev", "tool": "delete_branch", "expect": "allow", "rule": "devs"},
                  {"name": "contractors delete (wrong on purpose)", "who": "con", "tool": "delete_branch", "expect": "allow"},
                  {"name": "contractor list", "who": "con", "list": "tools", "offered": ["echo", "add", "search_repos"], "visible": ["echo", "add"]},
                  {"name": "typo", "who": "conn", "tool": "echo", "expect": "allow"}
                ]}"#,
        );
        let out = run(&s, &p, &["demo".into()]);
        assert_eq!(out[0].failure, None);
        let f1 = out[1].failure.as_deref().expect("fails");
        assert!(
            f1.contains("- expected: allow\n    + actual:   deny by no rule (no rule allows it (default deny))"),
            "{f1}"
        );
        let f2 = out[2].failure.as_deref().expect("fails");
        assert!(
            f2.contains(
                "      echo\n    - add   (expected visible, hidden)\n    + search_repos   (visible, expected hidden)"
            ),
            "{f2}"
        );
        assert!(out[3]
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("did you mean \"con\"")));
        let text = render(&out);
        assert!(text.ends_with("4 test(s): 1 passed, 3 failed\n"), "{text}");
    }
}
