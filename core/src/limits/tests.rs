use super::*;
use crate::policy::Policy;
use crate::principal::{Principal, Source};
use serde_json::json;

fn person(sub: &str, tenant: Option<&str>, groups: &[&str]) -> Principal {
    let mut p = Principal::anonymous();
    p.source = Source::Jwt;
    p.subject = sub.into();
    p.issuer = "https://issuer".into();
    p.tenant = tenant.map(Into::into);
    p.groups = groups.iter().map(|g| g.to_string()).collect();
    p.normalize();
    p
}

fn policy(limits: serde_json::Value) -> Policy {
    let doc = json!({
        "servers": {"py": {}, "ts": {"mode": "audit"}},
        "rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}],
        "limits": limits,
    });
    Policy::from_json(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn errors(limits: serde_json::Value) -> Vec<String> {
    let doc = json!({"servers": {"py": {}}, "rules": [], "limits": limits});
    match Policy::from_json(doc.to_string().as_bytes()) {
        Ok(_) => vec![],
        Err(es) => es.iter().map(|e| format!("{}: {}", e.path, e.message)).collect(),
    }
}

#[test]
fn per_subject_calls_refuse_the_next_call_with_the_window_end() {
    let p = policy(json!({"rules": [{"id": "per-user", "calls": {"max": 3, "per": "minute"}}]}));
    let l = p.limits();
    let t = Table::new(256);
    let alice = person("alice", None, &[]);
    let bob = person("bob", None, &[]);
    for _ in 0..3 {
        assert!(l.admit(&t, &alice, "py", "echo", 600).is_ok());
    }
    let e = l.admit(&t, &alice, "py", "echo", 615).unwrap_err();
    assert_eq!(e.id, "per-user");
    assert_eq!(e.retry_after, 45);
    assert!(
        e.message().contains("at most 3 calls per minute; retry in 45 s"),
        "{}",
        e.message()
    );
    assert_eq!(e.data()["window"], "minute");
    // Bob has his own counter; Alice's comes back in the next window.
    assert!(l.admit(&t, &bob, "py", "echo", 615).is_ok());
    assert!(l.admit(&t, &alice, "py", "echo", 660).is_ok());
}

#[test]
fn budget_charges_tool_weights_and_tenant_counter_is_shared() {
    let p = policy(json!({
        "costs": [{"tools": ["search*"], "cost": 10}, {"tools": ["list_*"], "cost": 1}],
        "rules": [{"id": "acme-day", "principals": [{"tenants": ["acme"]}], "per": "tenant",
                   "budget": {"max": 25, "per": "day"}}]
    }));
    let l = p.limits();
    assert_eq!(l.cost("py", "search_repos"), 10);
    assert_eq!(l.cost("py", "echo"), 1);
    let t = Table::new(256);
    let a = person("a", Some("acme"), &[]);
    let b = person("b", Some("acme"), &[]);
    let other = person("c", Some("globex"), &[]);
    assert_eq!(l.admit(&t, &a, "py", "search_repos", 0).unwrap().cost, 10);
    assert!(l.admit(&t, &b, "py", "search_repos", 0).is_ok());
    // 20 used: another search (10) would pass 25, a list (1) does not.
    let e = l.admit(&t, &a, "py", "search_repos", 3600).unwrap_err();
    assert_eq!(
        (e.id, e.kind.label(), e.retry_after),
        ("acme-day", "budget", 86_400 - 3600)
    );
    assert!(l.admit(&t, &b, "py", "list_issues", 3600).is_ok());
    // Another tenant is not covered by the matcher.
    for _ in 0..5 {
        assert!(l.admit(&t, &other, "py", "search_repos", 0).is_ok());
    }
}

#[test]
fn a_refusal_by_one_limit_takes_back_the_others() {
    let p = policy(json!({"rules": [
        {"id": "wide", "calls": {"max": 100, "per": "hour"}},
        {"id": "search", "tools": ["search*"], "calls": {"max": 1, "per": "hour"}},
        {"id": "inflight", "concurrent": 5}
    ]}));
    let l = p.limits();
    let t = Table::new(256);
    let a = person("a", None, &[]);
    let first = l.admit(&t, &a, "py", "search", 0).unwrap();
    assert_eq!(first.held.len(), 1);
    for _ in 0..10 {
        assert_eq!(l.admit(&t, &a, "py", "search", 0).unwrap_err().id, "search");
    }
    // The ten refusals charged nothing to `wide` or `inflight`: 99 more calls fit, with
    // four of the five in-flight slots still free after the first call's hold.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.extend(l.admit(&t, &a, "py", "echo", 0).unwrap().held);
    }
    assert_eq!(l.admit(&t, &a, "py", "echo", 0).unwrap_err().id, "inflight");
    for s in held.drain(..).chain(first.held) {
        t.release(s);
    }
    for _ in 0..95 {
        assert!(l
            .admit(&t, &a, "py", "echo", 0)
            .map(|a| a.held.into_iter().for_each(|s| t.release(s)))
            .is_ok());
    }
    assert_eq!(l.admit(&t, &a, "py", "echo", 0).unwrap_err().id, "wide");
}

#[test]
fn global_limits_are_named_not_counted() {
    let p = policy(json!({"rules": [
        {"id": "fleet", "scope": "global", "per": "tenant", "principals": [{"tenants": ["*"]}], "budget": {"max": 1, "per": "minute"}},
        {"id": "fleet-user", "scope": "global", "calls": {"max": 1, "per": "second"}}
    ]}));
    let l = p.limits();
    let t = Table::new(256);
    let a = person("a", Some("acme"), &[]);
    for _ in 0..3 {
        let adm = l.admit(&t, &a, "py", "x", 0).unwrap();
        let tokens: Vec<&str> = adm.global.split(',').collect();
        assert_eq!(tokens.len(), 2);
        assert!(tokens[0].starts_with("fleet=") && tokens[0].len() == "fleet=".len() + 16);
        assert!(tokens[1].starts_with("fleet-user="));
    }
    // No tenant: the tenant limit does not cover the caller.
    let n = person("n", None, &[]);
    assert!(!l.admit(&t, &n, "py", "x", 0).unwrap().global.contains("fleet="));
}

#[test]
fn servers_groups_and_tools_narrow_what_a_limit_covers() {
    let p = policy(json!({"rules": [
        {"id": "devs-py", "servers": ["py"], "principals": [{"groups": ["devs"]}], "tools": ["echo"], "calls": {"max": 1, "per": "day"}}
    ]}));
    let l = p.limits();
    let t = Table::new(256);
    let dev = person("d", None, &["devs"]);
    let ops = person("o", None, &["ops"]);
    assert!(l.admit(&t, &dev, "py", "echo", 0).is_ok());
    assert!(l.admit(&t, &dev, "py", "echo", 0).is_err());
    assert!(l.admit(&t, &dev, "ts", "echo", 0).is_ok());
    assert!(l.admit(&t, &dev, "py", "add", 0).is_ok());
    assert!(l.admit(&t, &ops, "py", "echo", 0).is_ok());
    assert!(l.admit(&t, &ops, "py", "echo", 0).is_ok());
    // The anonymous caller is matched only by `anonymous: true`.
    assert!(l.admit(&t, &Principal::anonymous(), "py", "echo", 0).is_ok());
}

#[test]
fn bad_limits_are_refused_with_paths() {
    let e = errors(json!({"rules": [
        {"id": "two", "calls": {"max": 1, "per": "second"}, "concurrent": 2},
        {"id": "none"},
        {"id": "zero", "calls": {"max": 0, "per": "second"}},
        {"id": "g", "scope": "global", "concurrent": 3},
        {"id": "zero", "servers": ["nope"], "tools": [], "principals": [], "budget": {"max": 5, "per": "hour"}},
        {"id": "bad id!", "concurrent": 1}
    ], "costs": [{"tools": ["x"], "cost": 2000000}]}));
    let want = [
        "limits.rules[0]: a limit needs exactly one",
        "limits.rules[1]: a limit needs exactly one",
        "limits.rules[2].calls.max: must be 1 to",
        "limits.rules[3].scope: concurrency is counted per Envoy",
        "limits.rules[4].id: duplicate limit id",
        "limits.rules[4].servers[0]: unknown server",
        "limits.rules[4].tools: empty list",
        "limits.rules[4].principals: empty list",
        "limits.rules[5].id: limit id must be",
        "limits.costs[0].cost: at most 1000000",
    ];
    for w in want {
        assert!(e.iter().any(|x| x.starts_with(w)), "missing {w:?} in {e:#?}");
    }
    let unknown = errors(json!({"rules": [{"id": "x", "calls": {"max": 1, "per": "fortnight"}}]}));
    assert!(!unknown.is_empty());
}

#[test]
fn no_limits_section_means_nothing_to_do() {
    let doc = json!({"rules": [{"id": "all", "effect": "allow", "principals": [{}], "tools": ["*"]}]});
    let p = Policy::from_json(doc.to_string().as_bytes()).unwrap();
    assert!(p.limits().is_empty());
}
