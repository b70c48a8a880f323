//! `diff OLD NEW`: who gains and who loses what, between two policies.
//!
//! The principal classes are the ones the two policies distinguish: one representative caller
//! per principal matcher written in either (a member of the group, the subject, the role …),
//! plus "any authenticated caller" and the anonymous one. The targets are the tool, resource
//! and prompt names and patterns either policy mentions (a pattern stands for the names it
//! matches), plus any names the caller adds (`--names`, e.g. an upstream's real `tools/list`).
//! For each class, server and target, both policies are asked with the module's own
//! [`Policy::visible`], as if every server enforced; mode changes are reported on their own.
//!
//! Limits, said in the output: a caller matching several matchers at once (two groups) is not a
//! class of its own; argument constraints are not varied (a constrained allow still counts as
//! access, as the lists show it).

use crate::policy::{Kind, Mode, Policy, PolicySpec, PrincipalSpec};
use crate::principal::{Principal, Source};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Stands for "any text" where a pattern has `*`.
const FILL: &str = "zz";

/// One principal class and the caller that represents it.
struct Class {
    label: String,
    principal: Principal,
}

/// A target: its kind, what is shown (name or pattern), and the name asked.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    kind: u8,
    shown: String,
    asked: String,
}

const KINDS: [(Kind, &str); 3] = [
    (Kind::Tool, "tools"),
    (Kind::Resource, "resources"),
    (Kind::Prompt, "prompts"),
];

/// The differences, as text, and whether there were any.
pub fn diff(old: &PolicySpec, new: &PolicySpec, extra_names: &[String]) -> Result<(String, bool), String> {
    let enforce = |spec: &PolicySpec| -> Result<Policy, String> {
        let mut s = spec.clone();
        s.mode = Mode::Enforce;
        for v in s.servers.values_mut() {
            v.mode = None;
        }
        Policy::compile(s).map_err(|e| format!("{} problem(s), first: {}", e.len(), e[0]))
    };
    let (po, pn) = (enforce(old)?, enforce(new)?);
    let mut out = String::new();
    let mut changed = false;

    let servers: BTreeSet<&String> = old.servers.keys().chain(new.servers.keys()).collect();
    let mode_of =
        |spec: &PolicySpec, s: &str| -> Mode { spec.servers.get(s).and_then(|x| x.mode).unwrap_or(spec.mode) };
    let mut server_list: Vec<(String, String)> = servers.iter().map(|s| ((*s).clone(), (*s).clone())).collect();
    // Servers neither policy declares get "*" rules and the top-level mode.
    server_list.push((
        if servers.is_empty() {
            "every server".into()
        } else {
            "any other server".into()
        },
        "\u{1}undeclared".into(),
    ));
    for (shown, name) in &server_list {
        let (a, b) = (mode_of(old, name), mode_of(new, name));
        if a != b {
            changed = true;
            let what = match b {
                Mode::Enforce => "what its rules deny is refused from now on",
                Mode::Audit => "nothing is refused any more; denials are only logged (audit_deny)",
            };
            let _ = writeln!(out, "mode on {shown}: {} -> {}: {what}", a.label(), b.label());
        }
    }

    let classes = classes(old, new);
    let targets = targets(old, new, extra_names);
    for (shown_server, server) in &server_list {
        for c in &classes {
            let (vo, vn) = (
                po.for_principal(&c.principal, server),
                pn.for_principal(&c.principal, server),
            );
            let mut gains: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
            let mut losses: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
            for t in &targets {
                let kind = KINDS[t.kind as usize].0;
                match (vo.visible(kind, &t.asked), vn.visible(kind, &t.asked)) {
                    (false, true) => gains.entry(t.kind).or_default().push(&t.shown),
                    (true, false) => losses.entry(t.kind).or_default().push(&t.shown),
                    _ => {}
                }
            }
            if gains.is_empty() && losses.is_empty() {
                continue;
            }
            changed = true;
            let _ = writeln!(out, "{} on {shown_server}:", c.label);
            for (k, (_, kname)) in KINDS.iter().enumerate() {
                let k = k as u8;
                if let Some(g) = gains.get(&k) {
                    let _ = writeln!(out, "  + {kname}: {}", g.join(", "));
                }
                if let Some(l) = losses.get(&k) {
                    let _ = writeln!(out, "  - {kname}: {}", l.join(", "));
                }
            }
        }
    }
    if !changed {
        let _ = writeln!(
            out,
            "no change: {} principal class(es) x {} server(s) x {} target(s) decide alike",
            classes.len(),
            server_list.len(),
            targets.len()
        );
    }
    let _ = writeln!(
        out,
        "(compared as if every server enforced; classes: {}; a pattern stands for the names it matches)",
        classes.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join("; ")
    );
    Ok((out, changed))
}

fn fill(pattern: &str) -> String {
    pattern.replace('*', FILL)
}

fn classes(old: &PolicySpec, new: &PolicySpec) -> Vec<Class> {
    let mut out: Vec<Class> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |label: String, principal: Principal| {
        if seen.insert(label.clone()) {
            out.push(Class { label, principal });
        }
    };
    add("anonymous caller".into(), Principal::anonymous());
    let mut someone = Principal::anonymous();
    someone.source = Source::Jwt;
    someone.subject = "someone".into();
    add("any authenticated caller".into(), someone);
    for spec in [old, new] {
        for r in &spec.rules {
            for m in &r.principals {
                if let Some(c) = witness(m) {
                    add(c.label, c.principal);
                }
            }
        }
    }
    out
}

/// A caller the matcher matches, labelled by what it needs.
fn witness(m: &PrincipalSpec) -> Option<Class> {
    if m.anonymous || *m == PrincipalSpec::default() {
        return None;
    }
    let mut p = Principal::anonymous();
    p.source = Source::Jwt;
    p.subject = "someone".into();
    let mut label = Vec::new();
    let first = |v: &Option<Vec<String>>| v.as_ref().and_then(|v| v.first()).map(|s| fill(s));
    if let Some(s) = m.sources.as_ref().and_then(|v| v.first()) {
        p.source = match s {
            crate::policy::IdentitySource::Jwt => Source::Jwt,
            crate::policy::IdentitySource::JwtAuthn => Source::JwtAuthn,
            crate::policy::IdentitySource::Mtls => Source::Mtls,
        };
        label.push(format!("source {}", p.source.label()));
    }
    if let Some(s) = first(&m.subjects) {
        label.push(format!(
            "subject {}",
            m.subjects.as_ref().map(|v| v[0].clone()).unwrap_or_default()
        ));
        p.subject = s;
    }
    if let Some(s) = first(&m.issuers) {
        label.push(format!("issuer {s}"));
        p.issuer = s;
    }
    if let Some(s) = first(&m.tenants) {
        label.push(format!("tenant {s}"));
        p.tenant = Some(s);
    }
    for (name, field, list) in [
        ("group", &m.groups, &mut p.groups),
        ("role", &m.roles, &mut p.roles),
        ("scope", &m.scopes, &mut p.scopes),
    ] {
        if let Some(v) = field.as_ref().and_then(|v| v.first()) {
            label.push(format!("{name} {v}"));
            list.push(fill(v));
        }
    }
    if let Some(claims) = &m.claims {
        for (key, values) in claims {
            let Some(v) = values.first() else { continue };
            let v = match v {
                Value::String(s) => Value::String(fill(s)),
                other => other.clone(),
            };
            label.push(format!("claim {key}={v}"));
            put_claim(&mut p.claims, key, v);
        }
    }
    p.normalize();
    Some(Class {
        label: format!("caller with {}", label.join(", ")),
        principal: p,
    })
}

/// Set a claim by name, or by JSON pointer (`/org/tier`).
fn put_claim(claims: &mut Map<String, Value>, key: &str, v: Value) {
    let Some(pointer) = key.strip_prefix('/') else {
        claims.insert(key.to_owned(), v);
        return;
    };
    let parts: Vec<String> = pointer
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut map = claims;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            map.insert(part.clone(), v);
            return;
        }
        let entry = map.entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => map = m,
            _ => return,
        }
    }
}

fn targets(old: &PolicySpec, new: &PolicySpec, extra: &[String]) -> Vec<Target> {
    let mut set = BTreeSet::new();
    for spec in [old, new] {
        for r in &spec.rules {
            for (k, list) in [&r.tools, &r.resources, &r.prompts].into_iter().enumerate() {
                for p in list {
                    set.insert(Target {
                        kind: k as u8,
                        shown: p.clone(),
                        asked: fill(p),
                    });
                }
            }
        }
    }
    for n in extra {
        // `--names` are tool names unless they look like URIs.
        let kind = if n.contains("://") { 1 } else { 0 };
        set.insert(Target {
            kind,
            shown: n.clone(),
            asked: n.clone(),
        });
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;

    #[test]
    fn gains_losses_and_mode_changes_per_principal_class() {
        let old = policy::parse_spec(br#"{"servers": {"demo": {}, "sandbox": {"mode": "audit"}}, "rules": [
            {"id": "devs", "effect": "allow", "principals": [{"groups": ["developers"]}], "tools": ["*"]},
            {"id": "con", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo", "delete_branch"]}]}"#).expect("old");
        let new = policy::parse_spec(br#"{"servers": {"demo": {}, "sandbox": {}}, "rules": [
            {"id": "devs", "effect": "allow", "principals": [{"groups": ["developers"]}], "tools": ["*"]},
            {"id": "con", "effect": "allow", "principals": [{"groups": ["contractors"]}], "tools": ["echo", "search_*"]}]}"#).expect("new");
        let (text, changed) = diff(&old, &new, &[]).expect("diff");
        assert!(changed);
        assert!(text.contains("mode on sandbox: audit -> enforce"), "{text}");
        assert!(
            text.contains("caller with group contractors on demo:\n  + tools: search_*\n  - tools: delete_branch\n"),
            "{text}"
        );
        assert!(
            !text.contains("group developers on"),
            "developers keep everything: {text}"
        );
        let (text, changed) = diff(&new, &new, &[]).expect("diff");
        assert!(!changed, "{text}");
        assert!(text.starts_with("no change"), "{text}");
    }
}
