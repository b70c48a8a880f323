//! Internal tests: the index walk. Behaviour through the public API is tested in
//! `core/tests/policy*.rs`.

use super::*;

fn index(rules: &[&[&str]]) -> NameIndex {
    let mut b = NameIndexBuilder::default();
    for (i, patterns) in rules.iter().enumerate() {
        for p in patterns.iter() {
            b.add(i as u32, p);
        }
    }
    b.finish()
}

/// Every rule whose patterns match, as the walk offers them to `f`.
fn offered(ix: &NameIndex, name: &str) -> Vec<u32> {
    let mut seen = Vec::new();
    ix.first(name, |r| {
        seen.push(r);
        false
    });
    seen.sort_unstable();
    seen
}

#[test]
fn the_index_offers_every_rule_whose_patterns_match() {
    let ix = index(&[
        &["s*"],
        &["search"],
        &["x*"],
        &["*ch"],
        &["search", "se*"],
        &["*"],
        &["sea*", "s*h"],
        &["se"],
    ]);
    // A rule is offered once per group it sits in (rule 4: exact and `se`; rule 6: `sea` and
    // `s`); offering twice only repeats a check, never changes the answer.
    assert_eq!(offered(&ix, "search"), [0, 1, 3, 4, 4, 5, 6, 6]);
    assert_eq!(offered(&ix, "other"), [5]);
    assert_eq!(offered(&ix, "s"), [0, 5]);
}

#[test]
fn the_index_returns_the_first_applying_rule_in_document_order() {
    let ix = index(&[&["s*"], &["search"], &["*ch"], &["sea*"], &["*"]]);
    assert_eq!(ix.first("search", |_| true), Some(0));
    assert_eq!(ix.first("search", |r| r > 0), Some(1));
    assert_eq!(ix.first("search", |r| r > 1), Some(2));
    assert_eq!(ix.first("search", |r| r > 2), Some(3));
    assert_eq!(ix.first("search", |r| r == 4), Some(4));
    assert_eq!(ix.first("search", |_| false), None);
}

#[test]
fn prefixes_that_split_a_character_are_skipped_safely() {
    let ix = index(&[&["é*"], &["a*"]]);
    assert_eq!(ix.first("éa", |_| true), Some(0));
    assert_eq!(ix.first("ab", |_| true), Some(1));
    assert_eq!(ix.first("\u{00e8}", |_| true), None);
}

#[test]
fn an_empty_index_finds_nothing() {
    let ix = index(&[]);
    assert_eq!(ix.first("x", |_| true), None);
}

fn warnings_of(rules: serde_json::Value) -> Vec<String> {
    let doc = serde_json::json!({"servers": {"alpha": {}, "beta": {}}, "rules": rules});
    match Policy::from_json(doc.to_string().as_bytes()) {
        Ok(p) => p.warnings().iter().map(|w| w.path.clone()).collect(),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn an_allow_rule_is_shadowed_by_a_deny_all_rule_before_or_after_it() {
    let deny_all = serde_json::json!({"id": "d", "effect": "deny", "principals": [{}], "tools": ["*"]});
    let allow = serde_json::json!({"id": "a", "effect": "allow", "principals": [{"groups": ["x"]}], "tools": ["t"], "prompts": ["p"]});
    assert_eq!(warnings_of(serde_json::json!([allow, deny_all])), ["rules[0].tools"]);
    assert_eq!(warnings_of(serde_json::json!([deny_all, allow])), ["rules[1].tools"]);
}

#[test]
fn a_later_deny_rule_is_shadowed_but_an_earlier_one_is_not() {
    let deny_all = serde_json::json!({"id": "d", "effect": "deny", "principals": [{}], "methods": ["*"]});
    let deny = serde_json::json!({"id": "e", "effect": "deny", "principals": [{}], "methods": ["ping"]});
    assert_eq!(warnings_of(serde_json::json!([deny_all, deny])), ["rules[1].methods"]);
    assert!(warnings_of(serde_json::json!([deny, deny_all])).is_empty());
}

#[test]
fn a_deny_rule_that_leaves_some_principal_server_or_call_open_shadows_nothing() {
    let allow =
        serde_json::json!({"id": "a", "effect": "allow", "servers": ["beta"], "principals": [{}], "tools": ["t"]});
    for deny in [
        serde_json::json!({"id": "d", "effect": "deny", "servers": ["alpha"], "principals": [{}], "tools": ["*"]}),
        serde_json::json!({"id": "d", "effect": "deny", "principals": [{"groups": ["x"]}], "tools": ["*"]}),
        serde_json::json!({"id": "d", "effect": "deny", "principals": [{}], "tools": ["t*"]}),
        serde_json::json!({"id": "d", "effect": "deny", "principals": [{}], "tools": ["*"], "arguments": {"x": {"type": "string"}}}),
    ] {
        assert!(warnings_of(serde_json::json!([deny, allow])).is_empty(), "{deny}");
    }
    // `{}` covers every authenticated principal, not the anonymous caller.
    let anon = serde_json::json!({"id": "a", "effect": "allow", "principals": [{"anonymous": true}], "tools": ["t"]});
    let deny = serde_json::json!({"id": "d", "effect": "deny", "principals": [{}], "tools": ["*"]});
    assert!(warnings_of(serde_json::json!([deny, anon])).is_empty());
}
