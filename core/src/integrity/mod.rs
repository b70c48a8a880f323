//! Tool-definition integrity: scan every definition that passes the gateway for poisoning,
//! pin each one by a canonical hash, and act per server (docs/tool-integrity.md).
//!
//! - [`rules`]: the rule table (names, classes, severities).
//! - [`scan`]: the deterministic scanner (findings with JSON paths), name collisions.
//! - [`sanitize`]: what `action: sanitize` removes.
//! - [`canon`]: RFC 8785 canonical JSON and `sha256:` pins.
//! - [`cache`]: the per-worker memo of scanner findings and pins by item bytes.
//! - this module: the `integrity` config section (parse → validate → compile) and
//!   [`ServerIntegrity::judge_list`], which turns one list answer into per-item edits and
//!   reports (findings, drift, what was done) for metrics and logs.
//! - [`Withheld`]: the per-worker table of items hidden from lists, so calls to them are refused.

pub mod cache;
pub mod canon;
pub mod rules;
pub mod sanitize;
pub mod scan;

use crate::policy::Kind;
use rules::{Finding, Rule, Severity};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a server's findings (at or above `min_severity`) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Record only (metadata, access log, counters); deliver as served.
    #[default]
    Audit,
    /// Strip what the sanitizable rules find; keep the item.
    Sanitize,
    /// Drop the item from lists and refuse calls to it.
    Hide,
}

/// Whether call results (`tools/call`) are scanned too. Off by default: results are often
/// large, and a result is data the caller asked for; `audit` records what the rules find in
/// them (a second channel for poisoning) and delivers them unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultScan {
    #[default]
    Off,
    Audit,
}

/// What drift from the pins does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftAction {
    #[default]
    Audit,
    /// Hide changed and added items and refuse calls to them until re-pinned.
    Quarantine,
}

/// Pins by kind, item name (URI for resources, URI template for templates) → `sha256:<hex>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinsSpec {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_templates: BTreeMap<String, String>,
}

impl PinsSpec {
    pub fn of(&self, kind: Kind) -> &BTreeMap<String, String> {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Prompt => &self.prompts,
            Kind::Resource => &self.resources,
            Kind::ResourceTemplate => &self.resource_templates,
        }
    }
    pub fn of_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, String> {
        match kind {
            Kind::Tool => &mut self.tools,
            Kind::Prompt => &mut self.prompts,
            Kind::Resource => &mut self.resources,
            Kind::ResourceTemplate => &mut self.resource_templates,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.prompts.is_empty()
            && self.resources.is_empty()
            && self.resource_templates.is_empty()
    }
}

/// An exception: findings of these rules (or drift, `pin.changed` / `pin.added`) on this item
/// are recorded but never acted on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionSpec {
    /// `tool` (default), `prompt`, `resource` or `resource_template`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The item's name (URI for resources).
    pub name: String,
    /// Rule names, or `["*"]` for every rule.
    pub rules: Vec<String>,
    /// Why: required, and logged with every finding it excuses.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServerIntegritySpec {
    pub action: Action,
    pub min_severity: Option<Severity>,
    pub drift: DriftAction,
    pub pins: PinsSpec,
    pub exceptions: Vec<ExceptionSpec>,
    pub results: ResultScan,
}

/// The `integrity` section of the filter config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IntegritySpec {
    /// Per server name; `"*"` applies to servers not named.
    pub servers: BTreeMap<String, ServerIntegritySpec>,
}

/// The pseudo-rules drift is reported under.
pub const PIN_CHANGED: &str = "pin.changed";
pub const PIN_ADDED: &str = "pin.added";
pub const PIN_REMOVED: &str = "pin.removed";

#[derive(Debug, Clone)]
struct Exception {
    kind: Kind,
    name: String,
    /// `None`: every rule.
    rules: Option<Vec<String>>,
    reason: String,
}

/// Item name → pin (looked up once per item of every list).
type PinMap = HashMap<String, String, foldhash::fast::RandomState>;

/// One server's compiled settings.
#[derive(Debug, Clone)]
pub struct ServerIntegrity {
    pub action: Action,
    pub min_severity: Severity,
    pub drift: DriftAction,
    pub results: ResultScan,
    pins: [PinMap; 4],
    pinned: bool,
    exceptions: Vec<Exception>,
}

/// The compiled `integrity` section.
#[derive(Debug)]
pub struct Integrity {
    servers: HashMap<String, ServerIntegrity>,
    default: Option<ServerIntegrity>,
    /// Unique per compiled config: per-worker state made under another config is dropped.
    pub generation: u64,
}

fn kind_slot(k: Kind) -> usize {
    match k {
        Kind::Tool => 0,
        Kind::Resource => 1,
        Kind::ResourceTemplate => 2,
        Kind::Prompt => 3,
    }
}

pub fn kind_from_label(s: &str) -> Option<Kind> {
    match s {
        "tool" => Some(Kind::Tool),
        "prompt" => Some(Kind::Prompt),
        "resource" => Some(Kind::Resource),
        "resource_template" => Some(Kind::ResourceTemplate),
        _ => None,
    }
}

pub fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Tool => "tool",
        Kind::Prompt => "prompt",
        Kind::Resource => "resource",
        Kind::ResourceTemplate => "resource_template",
    }
}

/// `sha256:` and 64 lowercase hex digits: the form every pin takes.
pub fn valid_pin(p: &str) -> bool {
    p.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl Integrity {
    /// Validate and compile; every problem as (path under `integrity`, message).
    pub fn compile(spec: IntegritySpec) -> Result<Integrity, Vec<(String, String)>> {
        static GENERATION: AtomicU64 = AtomicU64::new(1);
        let mut errors = Vec::new();
        let mut servers = HashMap::new();
        let mut default = None;
        for (name, s) in spec.servers {
            let at = format!("integrity.servers.{name}");
            let mut pins: [PinMap; 4] = Default::default();
            for kind in crate::response::KINDS {
                for (item, pin) in s.pins.of(kind) {
                    if !valid_pin(pin) {
                        errors.push((
                            format!("{at}.pins.{}.{item}", kind.list_key()),
                            format!("must be \"sha256:\" and 64 lowercase hex digits, got {pin:?}"),
                        ));
                    }
                    pins[kind_slot(kind)].insert(item.clone(), pin.clone());
                }
            }
            let mut exceptions = Vec::new();
            for (i, e) in s.exceptions.into_iter().enumerate() {
                let ep = format!("{at}.exceptions[{i}]");
                let kind = match e.kind.as_deref() {
                    None => Kind::Tool,
                    Some(k) => match kind_from_label(k) {
                        Some(k) => k,
                        None => {
                            errors.push((
                                format!("{ep}.kind"),
                                format!("must be tool, prompt, resource or resource_template, got {k:?}"),
                            ));
                            continue;
                        }
                    },
                };
                if e.reason.trim().is_empty() {
                    errors.push((format!("{ep}.reason"), "an exception needs a reason".into()));
                }
                if e.rules.is_empty() {
                    errors.push((format!("{ep}.rules"), "list the rules excepted (or \"*\")".into()));
                }
                let rules = if e.rules.iter().any(|r| r == "*") {
                    None
                } else {
                    for (j, r) in e.rules.iter().enumerate() {
                        if Rule::from_name(r).is_none() && ![PIN_CHANGED, PIN_ADDED].contains(&r.as_str()) {
                            errors.push((
                                format!("{ep}.rules[{j}]"),
                                format!("unknown rule {r:?} (docs/tool-integrity.md lists them)"),
                            ));
                        }
                    }
                    Some(e.rules)
                };
                exceptions.push(Exception {
                    kind,
                    name: e.name,
                    rules,
                    reason: e.reason,
                });
            }
            let pinned = pins.iter().any(|p| !p.is_empty());
            let compiled = ServerIntegrity {
                action: s.action,
                min_severity: s.min_severity.unwrap_or(Severity::Warn),
                drift: s.drift,
                results: s.results,
                pins,
                pinned,
                exceptions,
            };
            if name == "*" {
                default = Some(compiled);
            } else {
                servers.insert(name, compiled);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Integrity {
            servers,
            default,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The settings for `server`, if integrity applies to it.
    pub fn for_server(&self, server: &str) -> Option<&ServerIntegrity> {
        self.servers.get(server).or(self.default.as_ref())
    }
}

/// How an item differs from its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Pinned, and the definition served now hashes differently.
    Changed { pinned: String, now: String },
    /// Not pinned, on a server that has pins.
    Added { now: String },
}

impl Drift {
    pub fn rule(&self) -> &'static str {
        match self {
            Drift::Changed { .. } => PIN_CHANGED,
            Drift::Added { .. } => PIN_ADDED,
        }
    }
}

/// What was done to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered as served (clean, audit mode, or excepted).
    Kept,
    /// Delivered sanitized.
    Sanitized,
    /// Dropped from the list (findings, action hide).
    Hidden,
    /// Dropped from the list (drift, quarantine).
    Quarantined,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Sanitized => "sanitized",
            Outcome::Hidden => "hidden",
            Outcome::Quarantined => "quarantined",
        }
    }
    pub fn withheld(self) -> bool {
        matches!(self, Outcome::Hidden | Outcome::Quarantined)
    }
}

/// One item that had something to report.
#[derive(Debug, Clone)]
pub struct ItemReport {
    pub kind: Kind,
    pub name: String,
    /// Findings not excepted.
    pub findings: Vec<Finding>,
    /// Findings an exception excused, with its reason.
    pub excused: Vec<(Finding, String)>,
    pub drift: Option<Drift>,
    pub outcome: Outcome,
    /// The rule that decided the outcome (a rule name or `pin.changed` / `pin.added`).
    pub rule: Option<&'static str>,
}

/// The edit to apply to one list item (in list order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

impl Edit {
    /// `Keep` or `Drop`, as a visibility answer says.
    pub fn keep_if(keep: bool) -> Edit {
        if keep {
            Edit::Keep
        } else {
            Edit::Drop
        }
    }
}

/// One list answer judged.
#[derive(Debug, Default)]
pub struct ListReport {
    pub edits: Vec<Edit>,
    /// Items with findings or drift (clean items are not reported).
    pub items: Vec<ItemReport>,
    /// Pinned names absent from a complete (unpaginated) list.
    pub removed: Vec<String>,
}

impl ListReport {
    pub fn worst(&self) -> Option<Severity> {
        self.items
            .iter()
            .flat_map(|i| i.findings.iter().map(Finding::severity))
            .max()
    }
    pub fn drifted(&self) -> usize {
        self.items.iter().filter(|i| i.drift.is_some()).count() + self.removed.len()
    }
}

impl ServerIntegrity {
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    pub fn pin_of(&self, kind: Kind, name: &str) -> Option<&str> {
        self.pins[kind_slot(kind)].get(name).map(String::as_str)
    }

    fn excuse(&self, kind: Kind, name: &str, rule: &str) -> Option<&str> {
        self.exceptions
            .iter()
            .find(|e| {
                e.kind == kind && e.name == name && e.rules.as_ref().is_none_or(|rs| rs.iter().any(|r| r == rule))
            })
            .map(|e| e.reason.as_str())
    }

    /// Whether a call to `name` (never seen by this worker) is refused on the pins alone: a
    /// quarantining server with pins refuses what is not pinned (an added item).
    pub fn refuses_unpinned(&self, kind: Kind, name: &str) -> bool {
        self.drift == DriftAction::Quarantine
            && !self.pins[kind_slot(kind)].is_empty()
            && self.pin_of(kind, name).is_none()
            && self.excuse(kind, name, PIN_ADDED).is_none()
    }

    /// Judge one list. `items`: each item's name (`None` when unusable: the response core
    /// hides those already) and its JSON text. `complete`: the list has no `nextCursor`, so a
    /// pinned item missing from it was removed. `others`: names other backends serve (for
    /// collisions across a virtual server); may be empty.
    pub fn judge_list(
        &self,
        kind: Kind,
        items: &[(Option<&str>, &[u8])],
        complete: bool,
        others: &[&str],
        cache: &mut cache::ScanCache,
    ) -> ListReport {
        let mut report = ListReport {
            edits: Vec::with_capacity(items.len()),
            ..ListReport::default()
        };
        let mut names: Vec<&str> = Vec::with_capacity(others.len() + items.len());
        names.extend_from_slice(others);
        names.extend(items.iter().map(|(n, _)| n.unwrap_or("")));
        let collide = scan::collisions(&names);
        let pins = &self.pins[kind_slot(kind)];
        for (i, (name, text)) in items.iter().enumerate() {
            let Some(name) = *name else {
                report.edits.push(Edit::Drop);
                continue;
            };
            let Some(facts) = cache.facts(text, self.pinned) else {
                report.edits.push(Edit::Drop);
                continue;
            };
            let drift = match (self.pinned, facts.pin()) {
                (true, Some(now)) => match pins.get(name) {
                    Some(p) if p == now => None,
                    Some(p) => Some(Drift::Changed {
                        pinned: p.clone(),
                        now: now.to_owned(),
                    }),
                    None => Some(Drift::Added { now: now.to_owned() }),
                },
                _ => None,
            };
            let collision = collide[others.len() + i].map(|j| Finding {
                rule: Rule::NameCollision,
                path: "$.name".into(),
                excerpt: format!("{name:?} reads as {:?}", names[j]),
            });
            if facts.findings.is_empty() && collision.is_none() && drift.is_none() {
                // The common case: clean and as pinned.
                report.edits.push(Edit::Keep);
                continue;
            }
            let found = facts.findings.iter().cloned().chain(collision);
            let mut findings = Vec::new();
            let mut excused = Vec::new();
            for f in found {
                match self.excuse(kind, name, f.rule.name()) {
                    Some(reason) => excused.push((f, reason.to_owned())),
                    None => findings.push(f),
                }
            }
            let acting: Vec<&Finding> = findings.iter().filter(|f| f.severity() >= self.min_severity).collect();
            let drift_acts = drift
                .as_ref()
                .is_some_and(|d| self.drift == DriftAction::Quarantine && self.excuse(kind, name, d.rule()).is_none());
            let decisive = self.decisive(acting.iter().copied()).map(|f| f.rule.name());
            let (edit, outcome, rule) = if drift_acts {
                (Edit::Drop, Outcome::Quarantined, drift.as_ref().map(Drift::rule))
            } else if acting.is_empty() {
                (Edit::Keep, Outcome::Kept, drift.as_ref().map(Drift::rule))
            } else {
                match self.action {
                    Action::Audit => (Edit::Keep, Outcome::Kept, decisive),
                    Action::Hide => (Edit::Drop, Outcome::Hidden, decisive),
                    Action::Sanitize => {
                        match acting.iter().any(|f| f.rule.sanitizable()).then(|| sanitized(text)) {
                            Some(Some(b)) => (Edit::Replace(b), Outcome::Sanitized, decisive),
                            // Asked to sanitize, and what was found cannot be cut out: the
                            // item goes as served (the findings are still reported).
                            Some(None) | None => (Edit::Keep, Outcome::Kept, decisive),
                        }
                    }
                }
            };
            report.edits.push(edit);
            if !findings.is_empty() || !excused.is_empty() || drift.is_some() {
                report.items.push(ItemReport {
                    kind,
                    name: name.to_owned(),
                    findings,
                    excused,
                    drift,
                    outcome,
                    rule,
                });
            }
        }
        if complete && self.pinned {
            let served: std::collections::HashSet<&str, foldhash::fast::RandomState> =
                items.iter().filter_map(|(n, _)| *n).collect();
            let mut removed: Vec<String> = pins.keys().filter(|k| !served.contains(k.as_str())).cloned().collect();
            removed.sort();
            report.removed = removed;
        }
        report
    }
}

/// An item's text with what `sanitize` removes removed; `None` when nothing was.
fn sanitized(text: &[u8]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(text).ok()?;
    if !sanitize::sanitize_item(&mut value) {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

/// What the scanner found in a server's free text, and what was done. For `instructions` (the
/// `initialize` answer): `audit` delivers them, `sanitize` delivers them sanitized, `hide`
/// delivers an empty string (the session goes on; only the text the model would read is
/// withheld). For a call's result (`results: audit`): always delivered, findings recorded.
#[derive(Debug, Clone)]
pub struct TextReport {
    pub findings: Vec<Finding>,
    pub outcome: Outcome,
    /// The rule that decided the outcome, when something was acted on.
    pub rule: Option<&'static str>,
    /// The JSON string to deliver instead, when not as served.
    pub replacement: Option<String>,
}

impl ServerIntegrity {
    /// Judge a server's `instructions` (`raw`: the JSON string as served). `None` when they
    /// are clean (or not a string, which the client ignores as instructions).
    pub fn judge_instructions(&self, raw: &[u8], cache: &mut cache::ScanCache) -> Option<TextReport> {
        let facts = cache.instructions(raw)?;
        if facts.findings.is_empty() {
            return None;
        }
        let findings = facts.findings.clone();
        let Some(decisive) = self.decisive(&findings) else {
            return Some(TextReport {
                findings,
                outcome: Outcome::Kept,
                rule: None,
                replacement: None,
            });
        };
        let rule = Some(decisive.rule.name());
        let sanitizable = findings
            .iter()
            .any(|f| f.severity() >= self.min_severity && f.rule.sanitizable());
        let (outcome, replacement) = match self.action {
            Action::Audit => (Outcome::Kept, None),
            Action::Hide => (Outcome::Hidden, Some("\"\"".to_owned())),
            Action::Sanitize if sanitizable => {
                let text: String = serde_json::from_slice(raw).unwrap_or_default();
                let clean = sanitize::sanitize_text(&text);
                let json = serde_json::to_string(&clean).unwrap_or_else(|_| "\"\"".to_owned());
                (Outcome::Sanitized, Some(json))
            }
            // Nothing the sanitizer can cut out: delivered, and reported.
            Action::Sanitize => (Outcome::Kept, None),
        };
        Some(TextReport {
            findings,
            outcome,
            rule,
            replacement,
        })
    }

    /// The finding that decides what is done: the first (walk order) of the highest severity
    /// at or above `min_severity`.
    fn decisive<'f>(&self, findings: impl IntoIterator<Item = &'f Finding>) -> Option<&'f Finding> {
        findings
            .into_iter()
            .filter(|f| f.severity() >= self.min_severity)
            .min_by_key(|f| std::cmp::Reverse(f.severity()))
    }

    /// Scan a call's answer (`msg`: the whole JSON-RPC message) when `results: audit`: every
    /// string of its `result`. `None` when off, clean, or not a result.
    pub fn judge_result(&self, msg: &[u8], cache: &mut cache::ScanCache) -> Option<TextReport> {
        if self.results == ResultScan::Off {
            return None;
        }
        let v: Value = serde_json::from_slice(msg).ok()?;
        let findings = cache.scan_value("$.result", v.get("result")?);
        if findings.is_empty() {
            return None;
        }
        let rule = self.decisive(&findings).map(|f| f.rule.name());
        Some(TextReport {
            findings,
            outcome: Outcome::Kept,
            rule,
            replacement: None,
        })
    }
}

/// Why an item is withheld from calls on this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldItem {
    pub rule: &'static str,
    pub outcome: Outcome,
}

/// Items this worker hid from lists, so calls to them are refused: per worker (a
/// `thread_local` in the filter), no lock. Bounded; emptied when the config changes.
///
/// Keyed server → kind → name so that the common case (a list whose items are all
/// delivered) looks names up borrowed, without building a key per item.
#[derive(Debug, Default)]
pub struct Withheld {
    generation: u64,
    map: HashMap<String, [HashMap<String, WithheldItem>; 4]>,
    len: usize,
}

/// Most entries one worker keeps.
pub const WITHHELD_MAX: usize = 16_384;

impl Withheld {
    fn sync(&mut self, generation: u64) {
        if self.generation != generation {
            self.map.clear();
            self.len = 0;
            self.generation = generation;
        }
    }

    /// Record a judged list: withheld items are added, items delivered are removed.
    pub fn record(&mut self, generation: u64, server: &str, report: &ListReport, kind: Kind, names: &[Option<&str>]) {
        self.sync(generation);
        let slot = kind_slot(kind);
        let withheld: HashMap<&str, &ItemReport> = report
            .items
            .iter()
            .filter(|r| r.outcome.withheld())
            .map(|r| (r.name.as_str(), r))
            .collect();
        if withheld.is_empty() && self.map.get(server).is_none_or(|m| m[slot].is_empty()) {
            // Nothing hidden now and nothing hidden before: nothing to record.
            return;
        }
        for (edit, name) in report.edits.iter().zip(names) {
            let Some(name) = name else { continue };
            let hidden = match edit {
                Edit::Drop => withheld.get(name),
                _ => None,
            };
            match hidden {
                Some(r) => {
                    let item = WithheldItem {
                        rule: r.rule.unwrap_or("integrity"),
                        outcome: r.outcome,
                    };
                    let known = self.map.get(server).is_some_and(|m| m[slot].contains_key(*name));
                    if !known && self.len >= WITHHELD_MAX {
                        // Full: start over rather than grow (each list hides its items again
                        // the next time it is served).
                        self.map.clear();
                        self.len = 0;
                    }
                    let names = &mut self.map.entry(server.to_owned()).or_default()[slot];
                    if names.insert((*name).to_owned(), item).is_none() {
                        self.len += 1;
                    }
                }
                None => {
                    if let Some(m) = self.map.get_mut(server) {
                        if m[slot].remove(*name).is_some() {
                            self.len -= 1;
                        }
                    }
                }
            }
        }
    }

    pub fn get(&mut self, generation: u64, server: &str, kind: Kind, name: &str) -> Option<&WithheldItem> {
        self.sync(generation);
        self.map.get(server)?[kind_slot(kind)].get(name)
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Pin every item of a list result (`{"tools":[…]}` or a whole JSON-RPC answer) for the CLI:
/// name → pin, and name → definition (for readable diffs later).
pub fn pin_list(result: &Value, kind: Kind) -> BTreeMap<String, (String, Value)> {
    let list = result
        .get("result")
        .unwrap_or(result)
        .get(kind.list_key())
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.into_iter()
        .filter_map(|item| {
            let name = item.get(kind.item_key())?.as_str()?.to_owned();
            Some((name, (canon::pin(&item), item)))
        })
        .collect()
}

/// A readable diff of two definitions: one line per JSON path that differs.
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("$", old, new, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        let t: String = s.chars().take(117).collect();
        format!("{t}...")
    } else {
        s
    }
}

fn diff_at(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_at(&p, x, y, out),
                    (Some(x), None) => out.push(format!("- {p}: {}", short(x))),
                    (None, Some(y)) => out.push(format!("+ {p}: {}", short(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_at(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if canon::canonical(old) != canon::canonical(new) => {
            out.push(format!("~ {path}: {} -> {}", short(old), short(new)));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
