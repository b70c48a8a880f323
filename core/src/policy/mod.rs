//! MCP-aware policy: who may call which tools, read which resources, get which prompts and use
//! which other methods, on which upstream MCP server. Pure: no I/O, no clock, no allocation
//! when deciding.
//!
//! Owns the policy document ([`PolicySpec`]), its validation and compilation ([`Policy::compile`],
//! every problem at once), request decisions ([`Policy::decide`]) and list filtering
//! ([`Policy::visible`], [`PrincipalView`]). Does not own how the principal is established
//! ([`crate::identity`]), how a request body is parsed ([`crate::jsonrpc`]) or how a refusal is
//! worded ([`crate::reply`]). The reference for authors is `docs/policy.md`.
//!
//! Layout:
//! - `spec`: the serde/JSON Schema model of the document.
//! - `glob`: name patterns (`*` only).
//! - `matcher`: compiled principal matchers.
//! - `pointer`: claim and argument paths, walked without allocating.
//! - `args`: tool-call argument constraints.
//! - `decimal`: exact comparison of JSON numbers by their text.
//! - `version`: FNV-1a content hash of the canonical spec.
//! - [`trace`]: why each rule did or did not apply (the workbench's `explain` and `replay`).
//!
//! Semantics in one breath: a rule applies when its server, principal matcher, target and
//! argument constraints all match; any applying deny rule denies (deny wins); otherwise any
//! applying allow rule allows; otherwise the protocol baseline ([`BASELINE_METHODS`]) is allowed
//! for authenticated callers; otherwise the request is denied (default deny). In audit mode the
//! request passes anyway and the decision says it would have been denied.

mod args;
mod decimal;
pub(crate) mod glob;
pub(crate) mod matcher;
mod pointer;
pub mod seen;
mod spec;
pub mod trace;
pub(crate) mod version;

pub use spec::{ArgumentSpec, Effect, IdentitySource, JsonType, Mode, PolicySpec, PrincipalSpec, RuleSpec, ServerSpec};

use crate::mcp::Method;
use crate::principal::Principal;
use args::{Constraint, Outcome};
use glob::{any_matches, Glob};
use matcher::PrincipalMatcher;
use serde_json::value::RawValue;
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use version::FnvBuild;

/// Methods allowed to every authenticated principal unless a deny rule says otherwise: the
/// session handshake, liveness, notifications, answers to server requests and the list methods
/// (safe because the gateway filters list results through [`Policy::visible`]). The anonymous
/// caller gets none of them by default.
pub const BASELINE_METHODS: [Method; 9] = [
    Method::Initialize,
    Method::Ping,
    Method::ServerDiscover,
    Method::Notification,
    Method::ClientResponse,
    Method::ToolsList,
    Method::ResourcesList,
    Method::ResourcesTemplatesList,
    Method::PromptsList,
];

/// Method names a rule's `methods` may use, besides `"*"`. Methods with a subject are governed
/// by `tools`, `resources` and `prompts` instead.
pub const RULE_METHOD_NAMES: [&str; 12] = [
    "initialize",
    "ping",
    "server/discover",
    "notifications/*",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/*",
];

/// Most rules a policy may hold (rule indices are `u32` in the compiled index).
pub const MAX_RULES: usize = 1 << 20;

/// One problem in a policy document: the same shape as every config problem (path relative to
/// the policy document, e.g. `rules[2].tools[0]`; `under("policy")` places it in a larger one).
pub type PolicyError = crate::config::ConfigError;

impl std::error::Error for PolicyError {}

/// The effective verdict of the rules, before the server's mode is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
}

/// Why a decision came out the way it did. Bounded, for stats and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// An allow rule applied and no deny rule did.
    AllowRule,
    /// A deny rule applied (deny wins).
    DenyRule,
    /// A baseline protocol method ([`BASELINE_METHODS`]) for an authenticated principal.
    Baseline,
    /// An allow rule matched the target but an argument constraint failed (or the arguments
    /// were unreadable), and no other rule allowed.
    ArgumentsRejected,
    /// No rule applied: default deny.
    NoRule,
    /// A method that needs a subject (tool name, URI, prompt name) arrived without one.
    MissingSubject,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::AllowRule => "allow_rule",
            Reason::DenyRule => "deny_rule",
            Reason::Baseline => "baseline",
            Reason::ArgumentsRejected => "arguments_rejected",
            Reason::NoRule => "no_rule",
            Reason::MissingSubject => "missing_subject",
        }
    }
}

/// The outcome for one request. Borrows ids from the policy, so it is `Copy` and costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// Whether the request goes through: the verdict, after audit mode.
    pub allowed: bool,
    pub verdict: Verdict,
    /// The rule that decided: the deny rule, the allow rule, or for
    /// [`Reason::ArgumentsRejected`] the allow rule whose constraint failed. `None` for the
    /// baseline and for default deny.
    pub rule_id: Option<&'p str>,
    pub mode: Mode,
    /// True when audit mode let through a request enforce mode would have denied.
    pub would_deny: bool,
    pub reason: Reason,
    /// For [`Reason::ArgumentsRejected`]: the argument key (as written in the policy) whose
    /// constraint failed.
    pub argument: Option<&'p str>,
}

/// What is being asked. Build with the constructors; `arguments` is the raw `arguments` member
/// of `tools/call` params, read only if a rule with argument constraints is reached.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    /// Tool name, resource URI or prompt name, for the methods that have one.
    pub subject: Option<&'a str>,
    pub arguments: Option<&'a RawValue>,
}

impl<'a> Request<'a> {
    /// A method without a subject (`initialize`, `completion/complete`, a list, …).
    pub fn method(method: Method) -> Request<'a> {
        Request {
            method,
            subject: None,
            arguments: None,
        }
    }

    pub fn tool_call(name: &'a str, arguments: Option<&'a RawValue>) -> Request<'a> {
        Request {
            method: Method::ToolsCall,
            subject: Some(name),
            arguments,
        }
    }

    /// `resources/read`, `resources/subscribe` or `resources/unsubscribe` on `uri`.
    pub fn resource(method: Method, uri: &'a str) -> Request<'a> {
        Request {
            method,
            subject: Some(uri),
            arguments: None,
        }
    }

    pub fn prompt_get(name: &'a str) -> Request<'a> {
        Request {
            method: Method::PromptsGet,
            subject: Some(name),
            arguments: None,
        }
    }
}

/// What a list entry is, for [`Policy::visible`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Resource,
    /// A resource template, judged by matching `resources` patterns against the template
    /// text itself (`file:///repo/*` shows `file:///repo/{path}`).
    ResourceTemplate,
    Prompt,
}

impl Kind {
    /// The kind of entry a list method returns.
    pub fn of_list(method: Method) -> Option<Kind> {
        method.descriptor().list
    }

    fn slot(self) -> usize {
        match self {
            Kind::Tool => TOOL,
            Kind::Resource | Kind::ResourceTemplate => RESOURCE,
            Kind::Prompt => PROMPT,
        }
    }
}

const TOOL: usize = 0;
const RESOURCE: usize = 1;
const PROMPT: usize = 2;

/// Which target slot a method's subject is judged in, if it has one.
fn subject_slot(m: Method) -> Option<usize> {
    match m {
        Method::ToolsCall => Some(TOOL),
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => Some(RESOURCE),
        Method::PromptsGet => Some(PROMPT),
        _ => None,
    }
}

/// A compiled policy: immutable, `Send + Sync`, shared by every worker.
#[derive(Debug)]
pub struct Policy {
    /// Unique in this process (never reused, unlike an address): keys [`seen`]'s memo.
    uid: u64,
    version: String,
    rules: Box<[Rule]>,
    servers: HashMap<Box<str>, ServerIndex, FnvBuild>,
    /// For servers the policy does not declare: `"*"` rules only, top-level mode.
    fallback: ServerIndex,
    /// Problems that do not stop the policy from loading: rules no request can reach.
    warnings: Vec<PolicyError>,
    /// The `limits` section (`crate::limits`).
    limits: crate::limits::Limits,
}

#[derive(Debug)]
struct Rule {
    id: Box<str>,
    principals: Box<[PrincipalMatcher]>,
    constraints: Box<[Constraint]>,
}

impl Rule {
    /// For an allow rule: `Ok` when every constraint passes, else the failing key.
    fn allows(&self, args: Option<&RawValue>) -> Result<(), &str> {
        for c in self.constraints.iter() {
            if c.check(args) != Outcome::Pass {
                return Err(&c.key);
            }
        }
        Ok(())
    }

    /// For a deny rule: applies when every constraint passes, or when the arguments cannot be
    /// read unambiguously (fail closed).
    fn denies(&self, args: Option<&RawValue>) -> bool {
        let mut all_pass = true;
        for c in self.constraints.iter() {
            match c.check(args) {
                Outcome::Pass => {}
                Outcome::Fail => all_pass = false,
                Outcome::Malformed => return true,
            }
        }
        all_pass
    }
}

/// Everything that applies on one server, indexed for lookup.
#[derive(Debug, Default)]
struct ServerIndex {
    /// Which index of its policy this is (the fallback is `u32::MAX`): keys [`seen`]'s memo.
    id: u32,
    mode: Mode,
    /// Tool, resource and prompt rules.
    targets: [Sides<NameIndex>; 3],
    /// Subject-less method rules, by [`Method::index`].
    methods: Box<[Sides<Box<[u32]>>]>,
}

#[derive(Debug, Default)]
struct Sides<T> {
    deny: T,
    allow: T,
}

/// Rules by target name. Exact names are hashed; patterns with a literal prefix (`github_*`)
/// are grouped by that prefix, so a lookup binary-searches the name's heads of the few prefix
/// lengths in use instead of scanning every pattern; only prefix-less patterns (`*`, `*_read`)
/// are scanned. Every list holds rule indices in ascending (document) order.
#[derive(Debug, Default)]
struct NameIndex {
    exact: HashMap<Box<str>, Box<[u32]>, FnvBuild>,
    /// Sorted by prefix.
    anchored: Box<[(Box<str>, PatternRules)]>,
    /// The distinct prefix lengths in `anchored`, ascending.
    prefix_lens: Box<[usize]>,
    unanchored: PatternRules,
}

/// Rule index and that rule's patterns (of one group), ascending by rule.
type PatternRules = Box<[(u32, Box<[Glob]>)]>;

impl NameIndex {
    /// The first rule, in document order, whose patterns match `name` and for which `f` holds.
    /// `f` is called only on rules whose patterns match, in ascending order within each group,
    /// never on a rule after one already found.
    #[inline]
    fn first(&self, name: &str, mut f: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut best = u32::MAX;
        if !self.exact.is_empty() {
            if let Some(list) = self.exact.get(name) {
                if let Some(&r) = list.iter().find(|&&r| f(r)) {
                    best = r;
                }
            }
        }
        for &len in self.prefix_lens.iter() {
            let Some(head) = name.get(..len) else {
                if len > name.len() {
                    break;
                }
                continue; // not a char boundary: no prefix of this length can match
            };
            if let Ok(k) = self.anchored.binary_search_by(|(p, _)| (**p).cmp(head)) {
                scan(&self.anchored[k].1, name, &mut best, &mut f);
            }
        }
        scan(&self.unanchored, name, &mut best, &mut f);
        (best != u32::MAX).then_some(best)
    }
}

#[inline]
fn scan(list: &[(u32, Box<[Glob]>)], name: &str, best: &mut u32, f: &mut impl FnMut(u32) -> bool) {
    for (r, globs) in list {
        if *r >= *best {
            return;
        }
        if any_matches(globs, name) && f(*r) {
            *best = *r;
            return;
        }
    }
}

/// Collects one target slot's patterns, rule by rule in document order.
#[derive(Default)]
struct NameIndexBuilder {
    exact: HashMap<Box<str>, Vec<u32>, FnvBuild>,
    anchored: std::collections::BTreeMap<Box<str>, Vec<(u32, Vec<Glob>)>>,
    unanchored: Vec<(u32, Vec<Glob>)>,
}

impl NameIndexBuilder {
    fn add(&mut self, rule: u32, pattern: &str) {
        fn push(list: &mut Vec<(u32, Vec<Glob>)>, rule: u32, g: Glob) {
            match list.last_mut() {
                Some((r, gs)) if *r == rule => gs.push(g),
                _ => list.push((rule, vec![g])),
            }
        }
        match Glob::new(pattern) {
            Glob::Exact(e) => {
                let list = self.exact.entry(e).or_default();
                if list.last() != Some(&rule) {
                    list.push(rule);
                }
            }
            g => match g.literal_prefix() {
                "" => push(&mut self.unanchored, rule, g),
                p => push(self.anchored.entry(p.into()).or_default(), rule, g),
            },
        }
    }

    fn finish(self) -> NameIndex {
        let boxed = |v: Vec<(u32, Vec<Glob>)>| v.into_iter().map(|(r, g)| (r, g.into_boxed_slice())).collect();
        let mut prefix_lens: Vec<usize> = self.anchored.keys().map(|k| k.len()).collect();
        prefix_lens.sort_unstable();
        prefix_lens.dedup();
        NameIndex {
            exact: self.exact.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect(),
            anchored: self.anchored.into_iter().map(|(k, v)| (k, boxed(v))).collect(),
            prefix_lens: prefix_lens.into(),
            unanchored: boxed(self.unanchored),
        }
    }
}

/// Who is asking, as the evaluation sees it: matched live, or from a [`PrincipalView`]'s bits.
trait Who {
    fn anonymous(&self) -> bool;
    fn matches(&self, rules: &[Rule], r: u32) -> bool;
}

struct Live<'a>(&'a Principal);

impl Who for Live<'_> {
    fn anonymous(&self) -> bool {
        self.0.is_anonymous()
    }
    #[inline]
    fn matches(&self, rules: &[Rule], r: u32) -> bool {
        rules[r as usize].principals.iter().any(|m| m.matches(self.0))
    }
}

/// Matched lazily, each rule at most once: a [`PrincipalView`]'s memo.
struct Memo<'a> {
    principal: &'a Principal,
    /// Per rule: 0 not yet matched, 1 no, 2 yes.
    seen: &'a [Cell<u8>],
}

impl Who for Memo<'_> {
    fn anonymous(&self) -> bool {
        self.principal.is_anonymous()
    }
    #[inline]
    fn matches(&self, rules: &[Rule], r: u32) -> bool {
        let Some(cell) = self.seen.get(r as usize) else {
            return false;
        };
        match cell.get() {
            0 => {
                let hit = Live(self.principal).matches(rules, r);
                cell.set(if hit { 2 } else { 1 });
                hit
            }
            v => v == 2,
        }
    }
}

impl ServerIndex {
    fn decide<'p, W: Who>(&self, rules: &'p [Rule], who: &W, req: &Request<'_>) -> Decision<'p> {
        let (verdict, rule, reason, argument) = self.verdict(rules, who, req);
        let denied = verdict == Verdict::Deny;
        Decision {
            allowed: !denied || self.mode == Mode::Audit,
            verdict,
            rule_id: rule.map(|r| &*rules[r as usize].id),
            mode: self.mode,
            would_deny: denied && self.mode == Mode::Audit,
            reason,
            argument,
        }
    }

    #[inline]
    fn verdict<'p, W: Who>(
        &self,
        rules: &'p [Rule],
        who: &W,
        req: &Request<'_>,
    ) -> (Verdict, Option<u32>, Reason, Option<&'p str>) {
        let Some(slot) = subject_slot(req.method) else {
            let Some(sides) = self.methods.get(req.method.index()) else {
                return (Verdict::Deny, None, Reason::NoRule, None);
            };
            if let Some(&r) = sides.deny.iter().find(|&&r| who.matches(rules, r)) {
                return (Verdict::Deny, Some(r), Reason::DenyRule, None);
            }
            if let Some(&r) = sides.allow.iter().find(|&&r| who.matches(rules, r)) {
                return (Verdict::Allow, Some(r), Reason::AllowRule, None);
            }
            if !who.anonymous() && BASELINE_METHODS.contains(&req.method) {
                return (Verdict::Allow, None, Reason::Baseline, None);
            }
            return (Verdict::Deny, None, Reason::NoRule, None);
        };
        let Some(name) = req.subject else {
            return (Verdict::Deny, None, Reason::MissingSubject, None);
        };
        let args = req.arguments;
        let sides = &self.targets[slot];
        if let Some(r) = sides
            .deny
            .first(name, |r| who.matches(rules, r) && rules[r as usize].denies(args))
        {
            return (Verdict::Deny, Some(r), Reason::DenyRule, None);
        }
        let mut rejected: Option<(u32, &'p str)> = None;
        let allowed = sides.allow.first(name, |r| {
            if !who.matches(rules, r) {
                return false;
            }
            match rules[r as usize].allows(args) {
                Ok(()) => true,
                Err(key) => {
                    rejected.get_or_insert((r, key));
                    false
                }
            }
        });
        match (allowed, rejected) {
            (Some(r), _) => (Verdict::Allow, Some(r), Reason::AllowRule, None),
            (None, Some((r, key))) => (Verdict::Deny, Some(r), Reason::ArgumentsRejected, Some(key)),
            (None, None) => (Verdict::Deny, None, Reason::NoRule, None),
        }
    }

    fn visible<W: Who>(&self, rules: &[Rule], who: &W, kind: Kind, name: &str) -> bool {
        if self.mode == Mode::Audit {
            return true;
        }
        let sides = &self.targets[kind.slot()];
        // A deny rule with argument constraints denies only some calls: it does not hide.
        if sides
            .deny
            .first(name, |r| {
                rules[r as usize].constraints.is_empty() && who.matches(rules, r)
            })
            .is_some()
        {
            return false;
        }
        sides.allow.first(name, |r| who.matches(rules, r)).is_some()
    }
}

impl Policy {
    /// Parse a JSON policy document and compile it. Structural problems are reported per rule
    /// (the first with its line and column); semantic ones all at once.
    pub fn from_json(bytes: &[u8]) -> Result<Policy, Vec<PolicyError>> {
        Policy::compile(parse_spec(bytes)?)
    }

    /// Validate and compile. Every problem is reported, in document order.
    pub fn compile(spec: PolicySpec) -> Result<Policy, Vec<PolicyError>> {
        let mut errors = Vec::new();
        if spec.rules.len() > MAX_RULES {
            errors.push(PolicyError::at(
                "rules",
                format!("at most {MAX_RULES} rules, got {}", spec.rules.len()),
            ));
        }
        for name in spec.servers.keys() {
            if !valid_server_name(name) {
                errors.push(PolicyError::at(
                    format!("servers.{name}"),
                    "server name must be non-empty and use only [A-Za-z0-9_-] (the top-level `mode` covers undeclared servers)",
                ));
            }
        }
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (i, r) in spec.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            if let Some(rule) = compile_rule(&at, r, &spec, &mut errors) {
                rules.push(rule);
            }
            if let Some(first) = first_seen.insert(&r.id, i) {
                errors.push(PolicyError::at(
                    format!("{at}.id"),
                    format!("duplicate rule id {:?} (first used by rules[{first}])", r.id),
                ));
                first_seen.insert(&r.id, first);
            }
        }
        let limits = crate::limits::Limits::compile(spec.limits.as_ref(), &spec.servers, &mut errors);
        if !errors.is_empty() {
            errors.sort_by_key(|e| rule_position(&e.path));
            return Err(errors);
        }
        let index_for = |id: u32, server: Option<&str>, mode: Mode| build_index(&spec, id, server, mode);
        let servers = spec
            .servers
            .iter()
            .enumerate()
            .map(|(i, (name, s))| {
                (
                    Box::<str>::from(name.as_str()),
                    index_for(i as u32, Some(name), s.mode.unwrap_or(spec.mode)),
                )
            })
            .collect();
        let fallback = index_for(u32::MAX, None, spec.mode);
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Policy {
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            version: version::version_of(&spec),
            rules: rules.into(),
            servers,
            fallback,
            warnings: shadowed(&spec),
            limits,
        })
    }

    /// Problems that do not stop the policy from loading (paths relative to the policy
    /// document): parts of rules that no request can reach because a deny rule covering every
    /// principal and every target of their kind already decides.
    pub fn warnings(&self) -> &[PolicyError] {
        &self.warnings
    }

    /// Content hash of the canonical spec (16 hex digits): equal for documents that mean the
    /// same after defaults, whatever their whitespace or key order; stable across runs,
    /// machines and Rust versions.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The compiled `limits` section (empty when the policy has none).
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether `server` is declared under `servers` (an undeclared one gets only `"*"` rules).
    pub fn declares_server(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// The mode decisions on `server` are made in.
    pub fn mode(&self, server: &str) -> Mode {
        self.index(server).mode
    }

    /// Decide one request. Allocates nothing; argument constraints read `req.arguments` only
    /// when a rule carrying them is reached.
    pub fn decide<'p>(&'p self, principal: &Principal, server: &str, req: &Request<'_>) -> Decision<'p> {
        self.index(server).decide(&self.rules, &Live(principal), req)
    }

    /// Whether a list entry should be shown: true when some call to it could be allowed for
    /// this principal, ignoring argument constraints, and no unconstrained deny rule covers it.
    /// Always true in audit mode (lists are not filtered there). To filter a long list, use
    /// [`Policy::for_principal`] once and ask the view.
    pub fn visible(&self, principal: &Principal, server: &str, kind: Kind, name: &str) -> bool {
        self.index(server).visible(&self.rules, &Live(principal), kind, name)
    }

    /// A view of the policy for one principal on one server, for many decisions or a long
    /// list: each rule's principal matcher runs at most once per view, and only for rules whose
    /// target names come up. Allocates one byte per rule.
    pub fn for_principal<'p, 'a>(&'p self, principal: &'a Principal, server: &str) -> PrincipalView<'p, 'a> {
        PrincipalView {
            policy: self,
            index: self.index(server),
            principal,
            seen: std::iter::repeat_with(|| Cell::new(0)).take(self.rules.len()).collect(),
            signature: Cell::new(None),
        }
    }

    fn index(&self, server: &str) -> &ServerIndex {
        if self.servers.is_empty() {
            return &self.fallback;
        }
        self.servers.get(server).unwrap_or(&self.fallback)
    }
}

/// One principal on one server, with principal matches remembered: filtering a list of N
/// entries costs N name lookups and matches each candidate rule's principal once. Per request:
/// not `Sync`.
#[derive(Debug)]
pub struct PrincipalView<'p, 'a> {
    policy: &'p Policy,
    index: &'p ServerIndex,
    principal: &'a Principal,
    seen: Box<[Cell<u8>]>,
    /// One bit per rule (does its principal match), once computed: `Some(None)` when the
    /// policy has too many rules for one (see [`seen`]).
    signature: Cell<Option<Option<u64>>>,
}

impl<'p> PrincipalView<'p, '_> {
    pub fn mode(&self) -> Mode {
        self.index.mode
    }

    /// As [`Policy::visible`]; answers this thread gave the same view before are recalled
    /// ([`seen`]).
    pub fn visible(&self, kind: Kind, name: &str) -> bool {
        if self.index.mode == Mode::Audit {
            return true;
        }
        let decide = || self.visible_uncached(kind, name);
        match self.view_key(kind) {
            Some(key) => seen::visible(key, name, decide),
            None => decide(),
        }
    }

    /// [`PrincipalView::visible`] for every item of a list in order (`None`: an item without
    /// a name, never visible). A list with a number (`rewrite::Scan::result_id`: the same
    /// number means the same names in the same order, on this thread) is answered as a whole
    /// from [`seen`] when this view's key answered it before.
    pub fn visible_list<'n>(
        &self,
        kind: Kind,
        list: Option<u64>,
        names: impl Iterator<Item = Option<&'n str>>,
    ) -> Vec<bool> {
        let decide = || names.map(|n| n.is_some_and(|n| self.visible(kind, n))).collect();
        match (list, self.view_key(kind)) {
            (Some(list), Some(key)) => seen::visible_list(key, kind, list, decide),
            _ => decide(),
        }
    }

    /// This view's key in [`seen`], for target `kind`: `None` when the policy has too many
    /// rules for a signature.
    fn view_key(&self, kind: Kind) -> Option<seen::ViewKey> {
        Some(seen::ViewKey {
            policy: self.policy.uid,
            index: self.index.id,
            slot: kind.slot() as u8,
            signature: self.signature()?,
        })
    }

    /// [`PrincipalView::visible`] without the memo (the reference it is tested against).
    pub fn visible_uncached(&self, kind: Kind, name: &str) -> bool {
        self.index.visible(&self.policy.rules, &self.who(), kind, name)
    }

    fn signature(&self) -> Option<u64> {
        if let Some(s) = self.signature.get() {
            return s;
        }
        let rules = &self.policy.rules;
        let s = (rules.len() <= seen::MAX_RULES).then(|| {
            let who = self.who();
            (0..rules.len() as u32).fold(0u64, |bits, r| bits | (u64::from(who.matches(rules, r)) << r))
        });
        self.signature.set(Some(s));
        s
    }

    /// As [`Policy::decide`].
    pub fn decide(&self, req: &Request<'_>) -> Decision<'p> {
        self.index.decide(&self.policy.rules, &self.who(), req)
    }

    fn who(&self) -> Memo<'_> {
        Memo {
            principal: self.principal,
            seen: &self.seen,
        }
    }
}

/// The JSON Schema of the policy document (draft 2020-12), as committed in
/// `docs/policy.schema.json`: pretty-printed, with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PolicySpec);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Parse a JSON policy document into its serde model. When the document is well-formed JSON
/// but does not fit the model, every rule is checked on its own so that one bad rule does not
/// hide the next; the error the parser stopped at first carries its line and column.
pub fn parse_spec(bytes: &[u8]) -> Result<PolicySpec, Vec<PolicyError>> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize::<_, PolicySpec>(de) {
        Ok(spec) => return Ok(spec),
        Err(e) => {
            let path = display_path(&e.path().to_string());
            let inner = e.into_inner();
            PolicyError {
                path,
                message: strip_position(&inner.to_string()),
                line: Some(inner.line()),
                column: Some(inner.column()),
            }
        }
    };
    let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(vec![first]);
    };
    let mut errors = Vec::new();
    if let Some(serde_json::Value::Array(rules)) = doc.get_mut("rules") {
        for (i, rule) in std::mem::take(rules).into_iter().enumerate() {
            if let Err(e) = serde_path_to_error::deserialize::<_, RuleSpec>(rule) {
                let inner = display_path(&e.path().to_string());
                let path = if inner.is_empty() {
                    format!("rules[{i}]")
                } else {
                    format!("rules[{i}].{inner}")
                };
                errors.push(PolicyError::at(path, strip_position(&e.into_inner().to_string())));
            }
        }
    }
    if let Err(e) = serde_path_to_error::deserialize::<_, PolicySpec>(serde_json::Value::Object(doc)) {
        let path = display_path(&e.path().to_string());
        errors.insert(0, PolicyError::at(path, strip_position(&e.into_inner().to_string())));
    }
    match errors.iter_mut().find(|e| e.path == first.path) {
        Some(e) => {
            e.line = first.line;
            e.column = first.column;
        }
        None => errors.insert(0, first),
    }
    Err(errors)
}

fn display_path(p: &str) -> String {
    if p == "." {
        String::new()
    } else {
        p.to_owned()
    }
}

/// serde_json appends " at line L column C"; the position is reported in its own fields.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Sort key keeping errors in document order: root-level first, then by rule index.
fn rule_position(path: &str) -> usize {
    path.strip_prefix("rules[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(0, |n| n + 1)
}

/// Same rule as the filter config's `server`: stats and metadata carry it.
fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn valid_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The subject-less methods a `methods` entry stands for, or why it is refused.
fn methods_named(name: &str) -> Result<Vec<Method>, String> {
    if name == "*" {
        return Ok(Method::ALL
            .iter()
            .copied()
            .filter(|m| subject_slot(*m).is_none())
            .collect());
    }
    let m = Method::from_name(name);
    if let Some(slot) = subject_slot(m) {
        let field = ["tools", "resources", "prompts"][slot];
        return Err(format!(
            "{name} has a subject and is governed by `{field}`, not `methods`"
        ));
    }
    if !RULE_METHOD_NAMES.contains(&name) {
        return Err(match m {
            Method::TasksOther => {
                format!("the gateway does not tell task methods apart: use \"tasks/*\" instead of {name:?}")
            }
            Method::Notification => {
                format!("the gateway does not tell notifications apart: use \"notifications/*\" instead of {name:?}")
            }
            _ => format!(
                "unknown method {name:?}: expected \"*\" or one of {}",
                RULE_METHOD_NAMES.join(", ")
            ),
        });
    }
    Ok(vec![m])
}

fn check_patterns(at: &str, field: &str, patterns: &[String], errors: &mut Vec<PolicyError>) {
    let text = if field == "resources" {
        glob::Text::Free
    } else {
        glob::Text::Name
    };
    for (k, p) in patterns.iter().enumerate() {
        if p.is_empty() {
            errors.push(PolicyError::at(format!("{at}.{field}[{k}]"), "empty pattern"));
        } else if let Some(why) = glob::unsupported(p, text) {
            errors.push(PolicyError::at(format!("{at}.{field}[{k}]"), format!("{p:?}: {why}")));
        }
    }
}

fn compile_rule(at: &str, r: &RuleSpec, spec: &PolicySpec, errors: &mut Vec<PolicyError>) -> Option<Rule> {
    let before = errors.len();
    if !valid_rule_id(&r.id) {
        errors.push(PolicyError::at(
            format!("{at}.id"),
            format!("rule id must be 1-128 characters from [A-Za-z0-9_.:-], got {:?}", r.id),
        ));
    }
    if r.servers.is_empty() {
        errors.push(PolicyError::at(
            format!("{at}.servers"),
            "empty list matches no server: use [\"*\"] for all",
        ));
    }
    for (k, s) in r.servers.iter().enumerate() {
        if s != "*" && !spec.servers.contains_key(s) {
            errors.push(PolicyError::at(
                format!("{at}.servers[{k}]"),
                format!("unknown server {s:?}: declare it under `servers` (or use \"*\")"),
            ));
        }
    }
    let principals = compile_principals(at, &r.principals, errors);
    if r.tools.is_empty() && r.resources.is_empty() && r.prompts.is_empty() && r.methods.is_empty() {
        errors.push(PolicyError::at(
            at,
            "rule targets nothing: give tools, resources, prompts or methods",
        ));
    }
    check_patterns(at, "tools", &r.tools, errors);
    check_patterns(at, "resources", &r.resources, errors);
    check_patterns(at, "prompts", &r.prompts, errors);
    for (k, m) in r.methods.iter().enumerate() {
        if let Err(e) = methods_named(m) {
            errors.push(PolicyError::at(format!("{at}.methods[{k}]"), e));
        }
    }
    if !r.arguments.is_empty()
        && (r.tools.is_empty() || !r.resources.is_empty() || !r.prompts.is_empty() || !r.methods.is_empty())
    {
        errors.push(PolicyError::at(
            format!("{at}.arguments"),
            "argument constraints apply to tools/call only: the rule must target tools and nothing else",
        ));
    }
    let mut constraints = Vec::with_capacity(r.arguments.len());
    for (key, a) in &r.arguments {
        let mut errs = Vec::new();
        match Constraint::compile(key, a, &mut errs) {
            Some(c) => constraints.push(c),
            None => errors.extend(
                errs.into_iter()
                    .map(|(p, m)| PolicyError::at(format!("{at}.arguments.{key}{p}"), m)),
            ),
        }
    }
    if errors.len() != before {
        return None;
    }
    Some(Rule {
        id: r.id.as_str().into(),
        principals: principals.into(),
        constraints: constraints.into(),
    })
}

/// Rule parts made dead by a deny-all rule: a deny rule without argument constraints whose
/// principals cover every principal the later part names (`{}` covers every authenticated one,
/// `{"anonymous": true}` the anonymous one) and whose target list for that kind is `"*"`, on every
/// server the part applies to. Deny wins whatever the order, so such a rule kills allow rules
/// before and after it; a deny rule after it can never be the one reported. Warnings, not
/// errors: the policy still means what it says, it just says some of it twice.
fn shadowed(spec: &PolicySpec) -> Vec<PolicyError> {
    let covers = |d: &RuleSpec, r: &RuleSpec| -> bool {
        let servers = d.servers.iter().any(|s| s == "*") || r.servers.iter().all(|s| s != "*" && d.servers.contains(s));
        let everyone = PrincipalSpec::default();
        let anonymous = PrincipalSpec {
            anonymous: true,
            ..PrincipalSpec::default()
        };
        let principals = r.principals.iter().all(|p| {
            if p.anonymous {
                d.principals.contains(&anonymous)
            } else {
                d.principals.contains(&everyone)
            }
        });
        servers && principals && d.arguments.is_empty()
    };
    let mut out = Vec::new();
    for (j, r) in spec.rules.iter().enumerate() {
        for (field, of) in [
            ("tools", (|r: &RuleSpec| &r.tools) as fn(&RuleSpec) -> &Vec<String>),
            ("resources", |r: &RuleSpec| &r.resources),
            ("prompts", |r: &RuleSpec| &r.prompts),
            ("methods", |r: &RuleSpec| &r.methods),
        ] {
            if of(r).is_empty() {
                continue;
            }
            let killer = spec.rules.iter().enumerate().find(|(i, d)| {
                *i != j
                    && d.effect == Effect::Deny
                    && (r.effect == Effect::Allow || *i < j)
                    && of(d).iter().any(|p| p == "*")
                    && covers(d, r)
            });
            if let Some((i, d)) = killer {
                let what = if r.effect == Effect::Allow {
                    "can never allow anything: deny wins, whatever the order"
                } else {
                    "can never be the deciding rule: the earlier deny rule always is"
                };
                out.push(PolicyError::at(
                    format!("rules[{j}].{field}"),
                    format!(
                        "shadowed by rules[{i}] ({:?}), which denies every one of its {field} to every principal this rule names on its servers; this part of rule {:?} {what}",
                        d.id, r.id
                    ),
                ));
            }
        }
    }
    out
}

/// Index the rules that apply on `server` (`None`: an undeclared server, `"*"` rules only).
/// Only called on a spec that compiled without errors.
fn build_index(spec: &PolicySpec, id: u32, server: Option<&str>, mode: Mode) -> ServerIndex {
    let mut targets: [Sides<NameIndexBuilder>; 3] = Default::default();
    let mut methods: Vec<Sides<BTreeSet<u32>>> = (0..Method::ALL.len()).map(|_| Sides::default()).collect();
    for (i, r) in spec.rules.iter().enumerate() {
        let applies = r.servers.iter().any(|s| s == "*" || Some(s.as_str()) == server);
        if !applies {
            continue;
        }
        let i = u32::try_from(i).unwrap_or(u32::MAX - 1); // < MAX_RULES, checked in compile
        let deny = r.effect == Effect::Deny;
        for (slot, patterns) in [(TOOL, &r.tools), (RESOURCE, &r.resources), (PROMPT, &r.prompts)] {
            let side = if deny {
                &mut targets[slot].deny
            } else {
                &mut targets[slot].allow
            };
            for p in patterns {
                side.add(i, p);
            }
        }
        for name in &r.methods {
            for m in methods_named(name).unwrap_or_default() {
                let side = &mut methods[m.index()];
                if deny { &mut side.deny } else { &mut side.allow }.insert(i);
            }
        }
    }
    ServerIndex {
        id,
        mode,
        targets: targets.map(|s| Sides {
            deny: s.deny.finish(),
            allow: s.allow.finish(),
        }),
        methods: methods
            .into_iter()
            .map(|s| Sides {
                deny: s.deny.into_iter().collect(),
                allow: s.allow.into_iter().collect(),
            })
            .collect(),
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Policy>();
    fn is_send<T: Send>() {}
    is_send::<PrincipalView<'static, 'static>>();
}

/// A rule's `principals` (policy rules and limits alike): an empty list is an error, each
/// matcher's problems are reported at `<at>.principals[k]...`.
pub(crate) fn compile_principals(
    at: &str,
    specs: &[spec::PrincipalSpec],
    errors: &mut Vec<PolicyError>,
) -> Vec<PrincipalMatcher> {
    if specs.is_empty() {
        errors.push(PolicyError::at(
            format!("{at}.principals"),
            "empty list matches nobody: use [{}] for every authenticated principal",
        ));
    }
    let mut principals = Vec::with_capacity(specs.len());
    for (k, p) in specs.iter().enumerate() {
        let mut errs = Vec::new();
        match PrincipalMatcher::compile(p, &mut errs) {
            Some(m) => principals.push(m),
            None => errors.extend(
                errs.into_iter()
                    .map(|(p, m)| PolicyError::at(format!("{at}.principals[{k}]{p}"), m)),
            ),
        }
    }
    principals
}

#[cfg(test)]
mod tests;
