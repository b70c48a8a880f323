//! Tool-definition integrity in the stream: the [`Lists`] judge that runs the core's scanner
//! and pins over every list answer the module reads (through the per-worker scan cache: the
//! same definition bytes are scanned once per worker), the per-worker table of withheld items,
//! refusing calls to them, and what is recorded (counters, a few metadata keys, logs).
//!
//! Per worker, no lock: the withheld table is a `thread_local` (docs/tool-integrity.md says
//! what that means for a call served by another worker than its list).

use super::{McpFilter, Runtime};
use crate::envoy::{Host, Level};
use mcp_policy_core::integrity::cache::ScanCache;
use mcp_policy_core::integrity::rules::Finding;
use mcp_policy_core::integrity::ResultScan;
use mcp_policy_core::integrity::{self, Edit, Integrity, ListReport, Outcome, ServerIntegrity, TextReport, Withheld};
use mcp_policy_core::policy::{Kind, PrincipalView};
use mcp_policy_core::reply;
use mcp_policy_core::response::{Answer, Lists};
use mcp_policy_core::rewrite::{ListItem, Scan};
use mcp_policy_core::vserver::{merge, Backend, VirtualServer};
use std::cell::RefCell;

thread_local! {
    static WITHHELD: RefCell<Withheld> = RefCell::new(Withheld::default());
    static SCANS: RefCell<ScanCache> = RefCell::new(ScanCache::new());
}

/// The list judge for one response: policy visibility, then integrity.
pub(super) struct ListJudge<'a, 'p> {
    pub view: Option<&'a PrincipalView<'p, 'a>>,
    pub integrity: Option<(&'a ServerIntegrity, u64)>,
    pub server: &'a str,
    pub reports: Vec<(Kind, ListReport)>,
    /// What was found in the server's `instructions` (an `initialize` answer) or in a call's
    /// result: (what, report).
    pub texts: Vec<(&'static str, TextReport)>,
}

impl Lists for ListJudge<'_, '_> {
    fn keep(&mut self, kind: Kind, name: &str) -> bool {
        self.view.is_none_or(|v| v.visible(kind, name))
    }

    /// Visibility per list (remembered whole when the list memo numbered it,
    /// `PrincipalView::visible_list`), then integrity's edit for each item kept.
    fn edits(&mut self, kind: Kind, scan: &Scan<'_>) -> Option<Vec<Edit>> {
        let visible = match self.view {
            Some(v) => Some(v.visible_list(kind, scan.result_id(), scan.names(kind)?)),
            None => None,
        };
        let Some((si, generation)) = self.integrity else {
            return Some(visible?.into_iter().map(Edit::keep_if).collect());
        };
        let shown = |i: usize| visible.as_ref().is_none_or(|v| v.get(i).copied().unwrap_or(false));
        let items = scan.items(kind)?;
        let report = judge_and_record(si, generation, self.server, kind, scan, &items, &[]);
        let edits = report
            .edits
            .iter()
            .zip(&items)
            .enumerate()
            .map(|(i, (e, item))| {
                if item.name.is_some() && shown(i) {
                    e.clone()
                } else {
                    Edit::Drop
                }
            })
            .collect();
        self.reports.push((kind, report));
        Some(edits)
    }

    fn instructions(&mut self, scan: &Scan<'_>) -> Option<Vec<u8>> {
        let (si, _) = self.integrity?;
        let raw = scan.instructions()?;
        let report = SCANS.with(|s| si.judge_instructions(raw, &mut s.borrow_mut()))?;
        let out = report.replacement.as_deref().and_then(|r| scan.with_instructions(r));
        self.texts.push(("instructions", report));
        out
    }

    fn result(&mut self, scan: &Scan<'_>) -> Option<Vec<u8>> {
        let (si, _) = self.integrity?;
        let report = SCANS.with(|s| si.judge_result(scan.text(), &mut s.borrow_mut()))?;
        self.texts.push(("result", report));
        // Audit only: delivered as served.
        None
    }
}

/// Judge one list of `server` (through this worker's scan memo) and record what it withheld.
fn judge_and_record(
    si: &ServerIntegrity,
    generation: u64,
    server: &str,
    kind: Kind,
    scan: &Scan<'_>,
    items: &[ListItem<'_>],
    others: &[&str],
) -> ListReport {
    let refs: Vec<(Option<&str>, &[u8])> = items.iter().map(|i| (i.name, i.text)).collect();
    // A list with a cursor is one page: what is missing from it is not removed.
    let complete = !scan.has_next_cursor();
    let report = SCANS.with(|s| si.judge_list(kind, &refs, complete, others, &mut s.borrow_mut()));
    let names: Vec<Option<&str>> = items.iter().map(|i| i.name).collect();
    WITHHELD.with(|w| w.borrow_mut().record(generation, server, &report, kind, &names));
    report
}

/// One finding: counted (`integrity_findings_total{server, rule, outcome}`) and logged; `what`
/// says where (`tool "x"`, `instructions`, `result`).
fn record_finding(
    rt: &Runtime,
    h: &mut impl Host,
    server: &str,
    what: std::fmt::Arguments<'_>,
    f: &Finding,
    outcome: Outcome,
) {
    // Stat label values must not hold dots (Envoy's tag extraction splits on them).
    let label = f.rule.name().replace('.', "_");
    h.increment_counter(rt.stats.integrity_findings_total, &[server, &label, outcome.label()], 1);
    crate::envoy::log(
        Level::Warn,
        format_args!(
            "mcp_policy: integrity: server {server:?} {what}: {} ({}) at {}: {:?} -> {}",
            f.rule.name(),
            f.severity().label(),
            f.path,
            f.excerpt,
            outcome.label()
        ),
    );
}

/// The judge of a virtual server's merged list: each backend's policy view, then integrity
/// under the backend's name (collisions checked against the backends merged before it).
pub(super) struct BackendJudge<'a, 'p> {
    pub vs: &'a VirtualServer,
    pub views: &'a [Option<PrincipalView<'p, 'a>>],
    pub integrity: Option<&'a Integrity>,
    /// (backend name, kind, report) per backend list judged.
    pub reports: Vec<(String, Kind, ListReport)>,
}

impl merge::Judge for BackendJudge<'_, '_> {
    fn keep(&mut self, b: &Backend, kind: Kind, name: &str) -> bool {
        let i = self.vs.by_name(&b.name).unwrap_or(usize::MAX);
        match self.views.get(i) {
            Some(Some(v)) => v.visible(kind, name),
            _ => true,
        }
    }

    fn edits(&mut self, b: &Backend, kind: Kind, scan: &Scan<'_>, earlier: &[&str]) -> Option<Vec<Edit>> {
        let integ = self.integrity?;
        let si = integ.for_server(&b.name)?;
        let items = scan.items(kind)?;
        let report = judge_and_record(si, integ.generation, &b.name, kind, scan, &items, earlier);
        let edits = report.edits.clone();
        self.reports.push((b.name.clone(), kind, report));
        Some(edits)
    }
}

/// Judge one virtual-server backend's `instructions` (for `merge::initialize`): the text to
/// merge instead, when not as served; the report is pushed to `reports` under the backend.
pub(super) fn backend_instructions(
    integrity: Option<&Integrity>,
    b: &Backend,
    text: &str,
    reports: &mut Vec<(String, TextReport)>,
) -> Option<String> {
    let si = integrity?.for_server(&b.name)?;
    let raw = serde_json::to_vec(text).ok()?;
    let report = SCANS.with(|s| si.judge_instructions(&raw, &mut s.borrow_mut()))?;
    let out = report
        .replacement
        .as_deref()
        .map(|r| serde_json::from_str::<String>(r).unwrap_or_default());
    reports.push((b.name.clone(), report));
    out
}

/// Whether the answer to this (non-list) request is read for integrity: an `initialize` to a
/// server integrity applies to (its `instructions` are scanned), a `tools/call` to one with
/// `results: audit`.
pub(super) fn reads_answer(rt: &Runtime, server: &str, method: Option<&str>) -> Option<Answer> {
    let si = rt.config.integrity.as_ref()?.for_server(server)?;
    match method? {
        "initialize" => Some(Answer::Instructions),
        "tools/call" if si.results != ResultScan::Off => Some(Answer::Result),
        _ => None,
    }
}

/// The kind a call method targets.
pub(super) fn call_kind(method: &str) -> Option<Kind> {
    match method {
        "tools/call" => Some(Kind::Tool),
        "prompts/get" => Some(Kind::Prompt),
        "resources/read" | "resources/subscribe" => Some(Kind::Resource),
        _ => None,
    }
}

/// Why a call to `name` is refused, if it is: withheld from this worker's lists, or not pinned
/// on a quarantining server.
pub(super) fn withheld_call(
    rt: &Runtime,
    server: &str,
    kind: Kind,
    name: &str,
) -> Option<(&'static str, &'static str)> {
    let integ = rt.config.integrity.as_ref()?;
    let si = integ.for_server(server)?;
    let seen = WITHHELD.with(|w| {
        w.borrow_mut()
            .get(integ.generation, server, kind, name)
            .map(|x| (x.rule, x.outcome.label()))
    });
    seen.or_else(|| {
        si.refuses_unpinned(kind, name)
            .then_some((integrity::PIN_ADDED, "quarantined"))
    })
}

/// The JSON-RPC error for a refused call.
pub(super) fn refusal_body(
    id: Option<&str>,
    server: &str,
    kind: Kind,
    name: &str,
    rule: &str,
    outcome: &str,
) -> Vec<u8> {
    let message = format!(
        "{} {name:?} on server {server:?} is {outcome} by the gateway's tool-integrity check (rule {rule:?}); \
         an operator must review it (docs/tool-integrity.md)",
        integrity::kind_label(kind)
    );
    let data = serde_json::json!({"rule": rule, "reason": "integrity_withheld", "server": server, "outcome": outcome});
    reply::jsonrpc_error_body(id, mcp_policy_core::refusal::POLICY_DENIED, &message, Some(data))
}

impl McpFilter {
    /// Count, log and put in metadata what integrity found in `server`'s free text (`what`:
    /// `instructions` or `result`).
    pub(super) fn record_text(&self, rt: &Runtime, h: &mut impl Host, server: &str, what: &str, r: &TextReport) {
        for f in &r.findings {
            record_finding(rt, h, server, format_args!("{what}"), f, r.outcome);
        }
        if let Some(rule) = r.rule {
            let action = if r.outcome == Outcome::Kept {
                "audit"
            } else {
                r.outcome.label()
            };
            h.set_metadata("integrity_action", action);
            h.set_metadata("integrity_rule", rule);
        }
    }

    /// Count, log and put in metadata what integrity found in the lists of one answer: (server
    /// the list came from, kind, report); one server, or a virtual server's backends.
    pub(super) fn record_integrity<'r>(
        &self,
        rt: &Runtime,
        h: &mut impl Host,
        reports: impl IntoIterator<Item = (&'r str, Kind, &'r ListReport)>,
    ) {
        let mut action: Option<Outcome> = None;
        let mut rule: Option<&str> = None;
        let mut drift: Vec<String> = Vec::new();
        for (server, kind, r) in reports {
            let kind = &kind;
            for item in &r.items {
                for f in &item.findings {
                    let what = format_args!("{} {:?}", integrity::kind_label(*kind), item.name);
                    record_finding(rt, h, server, what, f, item.outcome);
                }
                for (f, reason) in &item.excused {
                    crate::envoy::log(
                        Level::Info,
                        format_args!(
                            "mcp_policy: integrity: server {server:?} {:?}: {} excused ({reason})",
                            item.name,
                            f.rule.name()
                        ),
                    );
                }
                if let Some(d) = &item.drift {
                    let change = if d.rule() == integrity::PIN_CHANGED {
                        "changed"
                    } else {
                        "added"
                    };
                    h.increment_counter(rt.stats.integrity_drift_total, &[server, change], 1);
                    drift.push(format!("{change}:{}:{}", integrity::kind_label(*kind), item.name));
                    crate::envoy::log(
                        Level::Warn,
                        format_args!(
                            "mcp_policy: integrity: server {server:?} {} {:?} drifted from its pin ({change}: {d:?}) -> {}",
                            integrity::kind_label(*kind),
                            item.name,
                            item.outcome.label()
                        ),
                    );
                }
                let rank = |o: Outcome| match o {
                    Outcome::Kept => 0,
                    Outcome::Sanitized => 1,
                    Outcome::Hidden => 2,
                    Outcome::Quarantined => 3,
                };
                if action.is_none_or(|a| rank(item.outcome) >= rank(a)) && (item.rule.is_some()) {
                    action = Some(item.outcome);
                    rule = item.rule;
                }
            }
            for name in &r.removed {
                h.increment_counter(rt.stats.integrity_drift_total, &[server, "removed"], 1);
                drift.push(format!("removed:{}:{name}", integrity::kind_label(*kind)));
            }
        }
        if let Some(a) = action {
            h.set_metadata("integrity_action", if a == Outcome::Kept { "audit" } else { a.label() });
        }
        if let Some(r) = rule {
            h.set_metadata("integrity_rule", r);
        }
        if !drift.is_empty() {
            let mut s = drift.join(",");
            if s.len() > 512 {
                let mut cut = 509;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push_str("...");
            }
            h.set_metadata("integrity_drift", &s);
        }
    }
}

impl McpFilter {
    /// A forwarded message under integrity: list requests get their answer read (whatever the
    /// policy mode); calls to withheld items are refused.
    pub(super) fn integrity_forward(
        &self,
        rt: &Runtime,
        h: &mut impl Host,
        server: &str,
        msg: &mcp_policy_core::jsonrpc::Message<'_>,
        target: Option<&str>,
        list: Option<Kind>,
    ) -> Result<Option<Kind>, mcp_policy_core::reply::Reply> {
        let Some(integ) = rt.config.integrity.as_ref() else {
            return Ok(list);
        };
        if integ.for_server(server).is_none() {
            return Ok(list);
        }
        let Some(method) = msg.method() else {
            return Ok(list);
        };
        if let Some(kind) = Kind::of_list(mcp_policy_core::mcp::Method::from_name(method)) {
            return Ok(Some(kind));
        }
        let (Some(kind), Some(name)) = (call_kind(method), target) else {
            return Ok(list);
        };
        let Some((rule, outcome)) = withheld_call(rt, server, kind, name) else {
            return Ok(list);
        };
        let id = msg.id().map(|i| i.as_json().to_owned());
        h.increment_counter(rt.stats.rejected_total, &[server, "integrity_withheld"], 1);
        h.set_metadata("decision", "deny");
        h.set_metadata("reason", "integrity_withheld");
        h.set_metadata("integrity_rule", rule);
        let body = refusal_body(id.as_deref(), server, kind, name, rule, outcome);
        Err(super::json_reply(body, "mcp_policy_integrity_withheld"))
    }
}
