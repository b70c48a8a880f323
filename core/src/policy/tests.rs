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
