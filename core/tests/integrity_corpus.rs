//! Recall per rule class over the detection corpus (published MCP poisoning examples) and the
//! false-positive rate over the clean corpus (tool lists of the official reference servers).
//! Provenance: each sample's `source`, and `clean.json`'s `source` per server.
//! Run with `--nocapture` to see the table.

use mcp_policy_core::integrity::rules::{Finding, Severity};
use mcp_policy_core::integrity::scan::{collisions, Scanner};
use serde_json::Value;
use std::collections::BTreeMap;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("corpus file")).expect("corpus JSON")
}

fn acting(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.severity() >= Severity::Warn).collect()
}

#[test]
fn recall_per_class_and_false_positive_rate() {
    let mut scanner = Scanner::new();
    let poisoned = load("poisoned.json");
    // class -> (samples, flagged under that class, flagged at all)
    let mut per: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for s in poisoned["samples"].as_array().expect("samples") {
        let class = s["class"].as_str().expect("class").to_owned();
        let item = &s["item"];
        let mut found = scanner.item(item);
        if let Some(others) = s.get("collides_with").and_then(Value::as_array) {
            let mut names: Vec<&str> = others.iter().filter_map(Value::as_str).collect();
            names.push(item["name"].as_str().unwrap_or(""));
            if collisions(&names).last().copied().flatten().is_some() {
                found.push(Finding {
                    rule: mcp_policy_core::integrity::rules::Rule::NameCollision,
                    path: "$.name".into(),
                    excerpt: String::new(),
                });
            }
        }
        let act = acting(&found);
        let e = per.entry(class.clone()).or_default();
        e.0 += 1;
        if act.iter().any(|f| f.rule.class() == class) {
            e.1 += 1;
        } else {
            missed.push(format!(
                "{} ({class}): {:?}",
                s["id"],
                act.iter().map(|f| f.rule.name()).collect::<Vec<_>>()
            ));
        }
        if !act.is_empty() {
            e.2 += 1;
        }
    }
    let clean = load("clean.json");
    let (mut items, mut flagged) = (0usize, Vec::new());
    for server in clean["servers"].as_array().expect("servers") {
        let src = server["source"].as_str().unwrap_or("?");
        for (list, key) in [
            ("tools", "name"),
            ("prompts", "name"),
            ("resources", "uri"),
            ("resourceTemplates", "uriTemplate"),
        ] {
            let arr = server[list].as_array().cloned().unwrap_or_default();
            let names: Vec<&str> = arr.iter().map(|i| i[key].as_str().unwrap_or("")).collect();
            let coll = collisions(&names);
            for (i, item) in arr.iter().enumerate() {
                items += 1;
                let f = scanner.item(item);
                let act = acting(&f);
                if !act.is_empty() || coll[i].is_some() {
                    flagged.push(format!(
                        "{src} {list} {}: {:?}",
                        names[i],
                        act.iter()
                            .map(|f| (f.rule.name(), f.path.as_str(), f.excerpt.as_str()))
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        if let Some(ins) = server["instructions"].as_str() {
            items += 1;
            let f = scanner.text("$.instructions", ins);
            let act = acting(&f);
            if !act.is_empty() {
                flagged.push(format!(
                    "{src} instructions: {:?}",
                    act.iter().map(|f| f.rule.name()).collect::<Vec<_>>()
                ));
            }
        }
    }
    let total: (usize, usize, usize) = per.values().fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    println!("class       samples  recall(class)  recall(any rule)");
    for (c, (n, k, any)) in &per {
        println!(
            "{c:<11} {n:>7}  {:>12.1}%  {:>15.1}%",
            100.0 * *k as f64 / *n as f64,
            100.0 * *any as f64 / *n as f64
        );
    }
    let recall = total.1 as f64 / total.0 as f64;
    let fp = flagged.len() as f64 / items as f64;
    println!(
        "all         {:>7}  {:>12.1}%  {:>15.1}%",
        total.0,
        100.0 * recall,
        100.0 * total.2 as f64 / total.0 as f64
    );
    println!(
        "clean items {items}, flagged at warn or above: {} ({:.2}%)",
        flagged.len(),
        100.0 * fp
    );
    for m in &missed {
        println!("missed: {m}");
    }
    for f in &flagged {
        println!("false positive: {f}");
    }
    assert!(recall >= 0.95, "recall {recall:.3} below 0.95");
    assert!(fp <= 0.02, "false-positive rate {fp:.3} above 0.02");
    for (c, (n, k, _)) in &per {
        assert!(*k as f64 / *n as f64 >= 0.8, "class {c}: recall {k}/{n}");
    }
}
