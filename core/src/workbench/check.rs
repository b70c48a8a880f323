//! `check`: every problem of a filter config or policy document in one run, each with its path,
//! line and column, and a hint where one helps (YAML, a byte-order mark, JSON syntax habits,
//! did-you-mean for field, variant, method and server names).
//!
//! The verdict is never ours: a document is accepted exactly when the module's own
//! [`FilterConfig::from_json`] (or [`Policy::from_json`]) accepts it. What this adds is the
//! report. serde stops at the first structural problem, so when there is one the document is
//! repaired and parsed again (the offending member or element removed, array indices mapped
//! back to the document as written) until it parses; the semantic checks then run on the
//! repaired document, and problems that only the repair caused are left out.

use crate::config::{ConfigError, FilterConfig, FilterConfigSpec};
use crate::locate::locate;
use crate::policy::{Policy, PolicySpec, RULE_METHOD_NAMES};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;

/// What kind of document a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// The module's `filter_config` (identity, policy, limits, …).
    FilterConfig,
    /// A bare policy document (`{"servers": …, "rules": […]}`), as in `policy` of a filter config.
    Policy,
}

impl DocKind {
    pub fn label(self) -> &'static str {
        match self {
            DocKind::FilterConfig => "filter config",
            DocKind::Policy => "policy",
        }
    }
}

/// Which kind a document is: a JSON object whose members are only policy members (`rules`,
/// `servers`, `mode`) and that has `rules` is a policy; anything else is read as a filter config.
pub fn detect(bytes: &[u8]) -> DocKind {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o))
            if o.contains_key("rules") && o.keys().all(|k| matches!(k.as_str(), "rules" | "servers" | "mode")) =>
        {
            DocKind::Policy
        }
        _ => DocKind::FilterConfig,
    }
}

/// One problem (or warning), positioned in the document as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path (`policy.rules[2].tools[0]`); empty for the whole document.
    pub path: String,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub hint: Option<String>,
}

/// The outcome of checking one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: DocKind,
    /// Empty exactly when the module accepts the document.
    pub errors: Vec<Problem>,
    /// Problems that do not stop it from loading (rules no request can reach).
    pub warnings: Vec<Problem>,
    /// The policy's content version and rule count, when it compiled.
    pub policy: Option<(String, usize)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Check a document of the given kind.
pub fn check(bytes: &[u8], kind: DocKind) -> Report {
    match kind {
        DocKind::FilterConfig => check_filter_config(bytes),
        DocKind::Policy => check_policy(bytes),
    }
}

/// Check a filter config: accepted exactly when [`FilterConfig::from_json`] accepts it.
pub fn check_filter_config(bytes: &[u8]) -> Report {
    let mut report = Report {
        kind: DocKind::FilterConfig,
        errors: Vec::new(),
        warnings: Vec::new(),
        policy: None,
    };
    match FilterConfig::from_json(bytes) {
        Ok(c) => {
            report.warnings = c.warnings().iter().map(|w| problem(w.clone())).collect();
            report.policy = c.policy.as_ref().map(|p| (p.version().to_owned(), p.rule_count()));
            return report;
        }
        Err(first) => {
            report.errors = explore(bytes, first.0, Section::Filter);
        }
    }
    finish(&mut report, bytes);
    report
}

/// Check a bare policy document: accepted exactly when [`Policy::from_json`] accepts it.
pub fn check_policy(bytes: &[u8]) -> Report {
    let mut report = Report {
        kind: DocKind::Policy,
        errors: Vec::new(),
        warnings: Vec::new(),
        policy: None,
    };
    match Policy::from_json(bytes) {
        Ok(p) => {
            report.warnings = p.warnings().iter().map(|w| placed(bytes, w.clone())).collect();
            report.policy = Some((p.version().to_owned(), p.rule_count()));
            return report;
        }
        Err(first) => {
            report.errors = explore(bytes, first, Section::Policy);
        }
    }
    finish(&mut report, bytes);
    report
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Filter,
    Policy,
}

fn problem(e: ConfigError) -> Problem {
    Problem {
        path: e.path,
        message: e.message,
        line: e.line,
        column: e.column,
        hint: None,
    }
}

fn placed(doc: &[u8], e: ConfigError) -> Problem {
    let mut p = problem(e);
    if p.line.is_none() {
        if let Some((l, c)) = locate(doc, &p.path) {
            p.line = Some(l);
            p.column = Some(c);
        }
    }
    p
}

/// Every problem of a document the module refused with `first`.
fn explore(bytes: &[u8], first: Vec<ConfigError>, section: Section) -> Vec<Problem> {
    let mut out = Vec::new();
    let verdict = |doc: &[u8]| match section {
        Section::Filter => FilterConfig::from_json(doc).err().map(|e| e.0).unwrap_or_default(),
        Section::Policy => Policy::from_json(doc).err().unwrap_or_default(),
    };
    let (body, first) = match bytes.strip_prefix(BOM) {
        Some(rest) => {
            out.push(Problem {
                path: String::new(),
                message: "the file starts with a UTF-8 byte-order mark (EF BB BF), which JSON does not allow".into(),
                line: Some(1),
                column: Some(1),
                hint: Some("save it as UTF-8 without a BOM (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`)".into()),
            });
            // The rest is checked as the module would check it without the mark.
            (rest, verdict(rest))
        }
        None => (bytes, first),
    };
    if first.is_empty() {
        return out;
    }
    let mut value = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            out.extend(syntax(body, first));
            return out;
        }
    };
    let mut repair = Repair::default();
    match section {
        Section::Filter => {
            repair.run::<FilterConfigSpec>(&mut value, &[]);
            if let Some(policy) = value.get_mut("policy").filter(|p| p.is_object()) {
                let mut inner = Repair::default();
                inner.run::<PolicySpec>(policy, &[Seg::Key("policy".into())]);
                repair.absorb(inner, "policy");
            }
        }
        Section::Policy => repair.run::<PolicySpec>(&mut value, &[]),
    }
    let structural = !repair.found.is_empty();
    out.extend(repair.found.iter().cloned().map(|(path, message)| {
        let (line, column) = locate(body, &path).unzip();
        Problem {
            path,
            message,
            line,
            column,
            hint: None,
        }
    }));
    // Semantic problems, from the module's own compile of the (repaired) document.
    let text = value.to_string();
    let semantic = match (structural, section) {
        (false, _) => first,
        (true, Section::Filter) => FilterConfig::from_json(text.as_bytes())
            .err()
            .map(|e| e.0)
            .unwrap_or_default(),
        (true, Section::Policy) => Policy::from_json(text.as_bytes()).err().unwrap_or_default(),
    };
    for e in semantic {
        let path = if structural {
            repair.original(&e.path)
        } else {
            e.path.clone()
        };
        if structural && repair.caused(&path) {
            continue;
        }
        let mut p = problem(ConfigError { path, ..e });
        if structural || p.line.is_none() {
            let (line, column) = locate(body, &p.path).unzip();
            p.line = line;
            p.column = column;
        }
        out.push(p);
    }
    out.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    if out.is_empty() {
        // Never report "no problem" for a document the module refused.
        out.push(Problem {
            path: String::new(),
            message: "refused by the module's config check".into(),
            line: None,
            column: None,
            hint: None,
        });
    }
    out
}

/// Problems of a document that is not a JSON object at all: the module's message, with a hint.
fn syntax(body: &[u8], errors: Vec<ConfigError>) -> Vec<Problem> {
    let mut out: Vec<Problem> = errors.into_iter().map(problem).collect();
    let text = String::from_utf8_lossy(body);
    let looks_yaml = {
        let t = text.trim_start();
        !t.starts_with('{')
            && !t.starts_with('[')
            && (t.starts_with("---")
                || t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .take(3)
                    .any(|l| {
                        l.split_once(':')
                            .is_some_and(|(k, _)| is_yaml_key(k.trim_start_matches("- ")))
                    }))
    };
    for p in &mut out {
        let at = p.line.zip(p.column).and_then(|(l, c)| {
            text.lines()
                .nth(l - 1)
                .and_then(|line| line.chars().nth(c.saturating_sub(1)))
        });
        p.hint = if looks_yaml {
            Some(
                "this looks like YAML: the module reads JSON (Envoy passes filter_config as a JSON string); convert it, \
                 e.g. `python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin), indent=2))' < FILE`"
                    .into(),
            )
        } else if p.message.contains("trailing comma") {
            Some("JSON allows no comma after the last member of an object or element of an array".into())
        } else if matches!(at, Some('/') | Some('#')) {
            Some("JSON has no comments: remove them (a `description` field on a rule is kept)".into())
        } else if matches!(at, Some('\'')) || p.message.contains("key must be a string") {
            Some("JSON strings and keys use double quotes".into())
        } else if p.message.contains("control character") {
            Some("write a newline or tab inside a string as \\n or \\t".into())
        } else {
            None
        };
    }
    out
}

fn is_yaml_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Hints (did-you-mean) for every problem, from the document's own vocabulary.
fn finish(report: &mut Report, bytes: &[u8]) {
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let doc: Option<Value> = serde_json::from_slice(body).ok();
    let servers: Vec<String> = doc
        .as_ref()
        .and_then(|d| match report.kind {
            DocKind::FilterConfig => d.get("policy").and_then(|p| p.get("servers")),
            DocKind::Policy => d.get("servers"),
        })
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for p in &mut report.errors {
        if p.hint.is_none() {
            p.hint = did_you_mean(&p.message, &servers);
        }
    }
}

/// A suggestion for a misspelt name, from the names the message (or the document) offers.
fn did_you_mean(message: &str, servers: &[String]) -> Option<String> {
    let quoted = |open: char, close: char, s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find(open) {
            let after = &rest[i + open.len_utf8()..];
            let Some(j) = after.find(close) else { break };
            out.push(after[..j].to_owned());
            rest = &after[j + close.len_utf8()..];
        }
        out
    };
    let (got, candidates): (String, Vec<String>) =
        if message.starts_with("unknown field") || message.starts_with("unknown variant") {
            let names = quoted('`', '`', message);
            let (got, expected) = names.split_first()?;
            (got.clone(), expected.to_vec())
        } else if message.starts_with("unknown server") {
            (quoted('"', '"', message).first()?.clone(), servers.to_vec())
        } else if message.starts_with("unknown method") {
            (
                quoted('"', '"', message).first()?.clone(),
                RULE_METHOD_NAMES.iter().map(|s| s.to_string()).collect(),
            )
        } else {
            return None;
        };
    let best = closest(&got, &candidates)?;
    Some(format!("did you mean `{best}`?"))
}

/// The candidate nearest to `got` by edit distance (case-insensitive, adjacent swaps count
/// once), if it is near enough to be a typo.
pub fn closest<'a>(got: &str, candidates: &'a [String]) -> Option<&'a str> {
    let g: Vec<char> = got.to_lowercase().chars().collect();
    let limit = (g.len() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (distance(&g, &c.to_lowercase().chars().collect::<Vec<_>>()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Optimal string alignment distance.
fn distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[n][m]
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

fn display(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

/// Repairs of one document: what was found (original paths), what was removed, and how array
/// indices moved.
#[derive(Default)]
struct Repair {
    found: Vec<(String, String)>,
    /// Original paths of removed members and elements.
    removed: Vec<String>,
    /// Original array path → original indices removed from it.
    shifted: HashMap<Vec<Seg>, Vec<usize>>,
}

/// Most repairs tried on one document: every problem costs one parse.
const MAX_REPAIRS: usize = 256;

impl Repair {
    /// Parse `value` as `T` until it parses, removing what each error names. `base` is where
    /// `value` sits in the whole document.
    fn run<T: DeserializeOwned>(&mut self, value: &mut Value, base: &[Seg]) {
        for _ in 0..MAX_REPAIRS {
            let text = value.to_string();
            let de = &mut serde_json::Deserializer::from_str(&text);
            let err = match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(_) => return,
                Err(e) => e,
            };
            let current: Vec<Seg> = err
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    _ => None,
                })
                .collect();
            let message = strip_position(&err.into_inner().to_string());
            if current.is_empty() {
                return; // the whole section is wrong: nothing left to repair
            }
            let mut full = base.to_vec();
            full.extend(current.iter().cloned());
            let original = self.to_original(&full);
            let shown = display(&original);
            // A required member we removed for being wrong is now missing: said already.
            let cascade = message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next())
                .is_some_and(|f| self.removed.contains(&format!("{shown}.{f}")));
            if !cascade {
                self.found.push((shown.clone(), message));
            }
            if !remove(value, &current) {
                return;
            }
            self.removed.push(shown);
            if let Some(Seg::Index(i)) = original.last() {
                self.shifted
                    .entry(original[..original.len() - 1].to_vec())
                    .or_default()
                    .push(*i);
            }
        }
    }

    /// Map a path in the repaired document to the document as written.
    fn to_original(&self, path: &[Seg]) -> Vec<Seg> {
        let mut out: Vec<Seg> = Vec::with_capacity(path.len());
        for seg in path {
            match seg {
                Seg::Index(j) => {
                    let gone = self.shifted.get(&out).map(Vec::as_slice).unwrap_or_default();
                    let orig = (0..).filter(|i| !gone.contains(i)).nth(*j).unwrap_or(*j);
                    out.push(Seg::Index(orig));
                }
                k => out.push(k.clone()),
            }
        }
        out
    }

    /// [`Repair::to_original`] for a displayed path (`rules[2].tools[0]`).
    fn original(&self, shown: &str) -> String {
        display(&self.to_original(&parse_path(shown)))
    }

    /// Whether a semantic problem at `path` (original) may be an effect of a repair: it is at,
    /// above or below something removed, or at the root after a section was removed.
    fn caused(&self, path: &str) -> bool {
        let related = |a: &str, b: &str| {
            a == b
                || (b.starts_with(a) && matches!(b.as_bytes().get(a.len()), Some(b'.' | b'[')))
                || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
        };
        self.removed.iter().any(|r| {
            if path.is_empty() {
                !r.contains(['.', '[']) || r.starts_with("policy.") && r.matches(['.', '[']).count() == 1
            } else {
                related(path, r)
            }
        })
    }

    fn absorb(&mut self, inner: Repair, _prefix: &str) {
        self.found.extend(inner.found);
        self.removed.extend(inner.removed);
        self.shifted.extend(inner.shifted);
    }
}

/// Segments of a displayed path. Keys may contain dots (`claims./org/tier`); those are only
/// ever the last key of a path the module reports, which is all the mapping needs.
fn parse_path(s: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let Some((n, tail)) = after.split_once(']') else { break };
            match n.parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(Seg::Key(n.to_owned())),
            }
            rest = tail.strip_prefix('.').unwrap_or(tail);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            // A key with a JSON pointer in it (`claims./org`) runs to the end.
            if rest[end..].starts_with("./") {
                out.push(Seg::Key(rest.to_owned()));
                break;
            }
            out.push(Seg::Key(key.to_owned()));
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    out
}

fn remove(value: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut v = value;
    for seg in parents {
        let next = match (seg, v) {
            (Seg::Key(k), Value::Object(o)) => o.get_mut(k),
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return false,
        }
    }
    match (last, v) {
        (Seg::Key(k), Value::Object(o)) => o.remove(k).is_some(),
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The report as text, one problem per line (`FILE:LINE:COL: error: PATH: MESSAGE`, a hint
/// on the next), then a summary line. `mcp-policy check` and `mcp-xds-server check` print this.
pub fn render(file: &str, r: &Report) -> String {
    let mut s = String::new();
    let mut line = |kind: &str, p: &Problem| {
        let _ = write!(s, "{file}");
        if let (Some(l), Some(c)) = (p.line, p.column) {
            let _ = write!(s, ":{l}:{c}");
        }
        let path = if p.path.is_empty() { "(document)" } else { &p.path };
        let _ = writeln!(s, ": {kind}: {path}: {}", p.message);
        if let Some(h) = &p.hint {
            let _ = writeln!(s, "  hint: {h}");
        }
    };
    for p in &r.errors {
        line("error", p);
    }
    for p in &r.warnings {
        line("warning", p);
    }
    if r.ok() {
        let _ = write!(s, "{file}: ok ({}", r.kind.label());
        if let Some((v, n)) = &r.policy {
            let _ = write!(s, "; policy version {v}, {n} rule(s)");
        }
        let _ = writeln!(s, "{})", plural(r.warnings.len(), ", ", "warning"));
    } else {
        let _ = writeln!(
            s,
            "{file}: refused ({}): {}{}",
            r.kind.label(),
            plural(r.errors.len(), "", "problem"),
            plural(r.warnings.len(), ", ", "warning")
        );
    }
    s
}

fn plural(n: usize, sep: &str, what: &str) -> String {
    match n {
        0 if !sep.is_empty() => String::new(),
        1 => format!("{sep}1 {what}"),
        n => format!("{sep}{n} {what}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(doc: &str) -> Vec<Problem> {
        let r = check_filter_config(doc.as_bytes());
        assert!(!r.ok(), "accepted: {doc}");
        assert!(
            FilterConfig::from_json(doc.as_bytes()).is_err(),
            "the module accepts {doc}"
        );
        r.errors
    }

    fn brief(e: &[Problem]) -> Vec<(String, Option<usize>, Option<usize>)> {
        e.iter().map(|p| (p.path.clone(), p.line, p.column)).collect()
    }

    #[test]
    fn every_structural_problem_is_reported_with_its_position_inside_rules_too() {
        let doc = "{\n\
          \"limits\": {\"max_request_bytes\": 1},\n\
          \"policy\": {\"rules\": [\n\
            {\"id\": \"a\", \"efect\": \"allow\", \"principals\": [{}], \"tools\": [\"x\"], \"tols\": []},\n\
            {\"id\": \"b\", \"effect\": \"permit\", \"principals\": [{\"group\": [\"dev\"]}], \"tools\": [\"y\"]},\n\
            {\"id\": \"c\", \"effect\": \"deny\", \"principals\": [{}], \"tools\": [\"delete_?\"]}\n\
          ]}\n}";
        let e = errors(doc);
        let got = brief(&e);
        assert_eq!(
            got,
            [
                ("limits.max_request_bytes".to_string(), Some(2), Some(33)),
                ("policy.rules[0]".to_string(), Some(4), Some(1)),
                ("policy.rules[0].efect".to_string(), Some(4), Some(22)),
                ("policy.rules[0].tols".to_string(), Some(4), Some(75)),
                ("policy.rules[1].effect".to_string(), Some(5), Some(23)),
                ("policy.rules[1].principals[0].group".to_string(), Some(5), Some(58)),
                ("policy.rules[2].tools[0]".to_string(), Some(6), Some(61)),
            ],
            "{e:#?}"
        );
        // A typo gets its correction.
        assert_eq!(e[2].hint.as_deref(), Some("did you mean `effect`?"));
        assert_eq!(e[3].hint.as_deref(), Some("did you mean `tools`?"));
        assert!(e[4].message.starts_with("unknown variant `permit`"), "{}", e[4].message);
        assert_eq!(e[5].hint.as_deref(), Some("did you mean `groups`?"));
        // The missing `effect` of rules[0] is real (it was misspelt): reported once, as missing.
        assert!(e[1].message.contains("missing field `effect`"), "{}", e[1].message);
    }

    #[test]
    fn a_wrong_required_member_is_not_reported_twice() {
        let e = errors(r#"{"policy": {"rules": [{"id": "a", "effect": 3, "principals": [{}], "tools": ["x"]}]}}"#);
        assert_eq!(
            brief(&e),
            [("policy.rules[0].effect".to_string(), Some(1), Some(45))],
            "{e:#?}"
        );
    }

    #[test]
    fn semantic_problems_after_a_removed_rule_keep_their_own_index() {
        let doc = r#"{"policy": {"rules": [
            {"id": "a", "effect": "allow", "principals": [{}], "tools": ["x"], "bogus": 1},
            {"id": "b", "effect": "allow", "servers": ["githb"], "principals": [{}], "tools": ["x"]}],
            "servers": {"github": {}}}}"#;
        let e = errors(doc);
        let paths: Vec<_> = e.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["policy.rules[0].bogus", "policy.rules[1].servers[0]"], "{e:#?}");
        assert_eq!(e[1].line, Some(3));
        assert_eq!(e[1].hint.as_deref(), Some("did you mean `github`?"));
    }

    #[test]
    fn yaml_bom_and_json_habits_get_hints() {
        let e = errors("server: demo\npolicy:\n  rules: []\n");
        assert!(
            e[0].hint.as_deref().is_some_and(|h| h.contains("looks like YAML")),
            "{e:?}"
        );
        let e = errors("\u{feff}{\"pass_through\": true, \"bogus\": 1}");
        assert!(e[0].message.contains("byte-order mark"), "{e:?}");
        assert_eq!(e[1].path, "bogus", "the rest is still checked: {e:?}");
        let e = errors("{\"pass_through\": true,}");
        assert!(e[0].hint.as_deref().is_some_and(|h| h.contains("no comma")), "{e:?}");
        let e = errors("{\n  // a comment\n  \"pass_through\": true}");
        assert!(e[0].hint.as_deref().is_some_and(|h| h.contains("no comments")), "{e:?}");
        let e = errors("{'pass_through': true}");
        assert!(
            e[0].hint.as_deref().is_some_and(|h| h.contains("double quotes")),
            "{e:?}"
        );
    }

    #[test]
    fn accepted_documents_report_warnings_and_the_policy_version() {
        let r = check_filter_config(
            br#"{"policy": {"rules": [{"id": "a", "effect": "allow", "principals": [{}], "tools": ["x"]}]}}"#,
        );
        assert!(r.ok());
        assert_eq!(r.policy.as_ref().map(|p| p.1), Some(1));
        let text = render("f.json", &r);
        assert!(text.starts_with("f.json: ok (filter config; policy version "), "{text}");
    }

    #[test]
    fn bare_policies_are_detected_and_checked_alike() {
        let doc = br#"{"rules": [{"id": "a", "effect": "alow", "principals": [{}], "tools": ["x"]}, {"id": "a", "effect": "allow", "principals": [], "tools": ["x"]}]}"#;
        assert_eq!(detect(doc), DocKind::Policy);
        let r = check_policy(doc);
        let paths: Vec<_> = r.errors.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["rules[0].effect", "rules[1].principals"], "{r:#?}");
        assert_eq!(r.errors[0].hint.as_deref(), Some("did you mean `allow`?"));
        let text = render("p.json", &r);
        assert!(
            text.contains("p.json:1:34: error: rules[0].effect: unknown variant `alow`"),
            "{text}"
        );
        assert!(text.ends_with("p.json: refused (policy): 2 problems\n"), "{text}");
    }

    #[test]
    fn closest_only_suggests_near_names() {
        let c: Vec<String> = ["effect", "tools", "principals"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("efect", &c), Some("effect"));
        assert_eq!(closest("pirncipals", &c), Some("principals"));
        assert_eq!(closest("banana", &c), None);
    }
}
