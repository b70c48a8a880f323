//! Rate limits, concurrency caps and cost budgets on `tools/call` (the policy's `limits`
//! section): which limits cover a call, what it costs, and whether the counters admit it.
//!
//! Owns the section's model ([`spec`]), its validation ([`Limits::compile`], every problem at
//! once), the counter table ([`table`]: process-wide atomics, lock-free) and the decision
//! ([`Limits::admit`]) including `Retry-After`. Does not own the clock (the caller passes
//! `now`), the Envoy side (the filter keeps the table in a `static` and releases concurrency
//! holds at stream end) or fleet-wide counting (`ratelimit/`, over Redis, fed by the
//! descriptor [`Admission::global`] the module puts in dynamic metadata).
//! `docs/limits.md` is the reference.

pub mod spec;
pub mod table;
pub mod usage;

pub use spec::{CostSpec, LimitRuleSpec, LimitsSpec, Per, Scope, Window, WindowSpec};
pub use table::{Charge, SlotRef, Table};

use crate::policy::glob::{any_matches, Glob};
use crate::policy::matcher::PrincipalMatcher;
use crate::policy::PolicyError;
use crate::principal::Principal;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Largest `max` of a window or concurrency limit, and the largest cost.
pub const MAX_COUNT: u64 = 1_000_000_000;
pub const MAX_COST: u64 = 1_000_000;
/// Most limit rules a policy may hold.
pub const MAX_LIMIT_RULES: usize = 1024;

/// The compiled `limits` section: immutable, shared by every worker.
#[derive(Debug, Default)]
pub struct Limits {
    rules: Box<[LimitRule]>,
    costs: Box<[Cost]>,
}

#[derive(Debug)]
struct Cost {
    servers: Option<Box<[Box<str>]>>,
    tools: Box<[Glob]>,
    cost: u64,
}

/// One compiled limit.
#[derive(Debug)]
pub struct LimitRule {
    pub id: Box<str>,
    servers: Option<Box<[Box<str>]>>,
    principals: Box<[PrincipalMatcher]>,
    tools: Box<[Glob]>,
    pub per: Per,
    pub scope: Scope,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Calls { max: u64, window: Window },
    Budget { max: u64, window: Window },
    Concurrent { max: u64 },
}

impl Kind {
    /// `calls`, `budget` or `concurrent`: the limit's kind as named in errors and logs.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Calls { .. } => "calls",
            Kind::Budget { .. } => "budget",
            Kind::Concurrent { .. } => "concurrent",
        }
    }
    pub fn max(self) -> u64 {
        match self {
            Kind::Calls { max, .. } | Kind::Budget { max, .. } | Kind::Concurrent { max } => max,
        }
    }
    pub fn window(self) -> Option<Window> {
        match self {
            Kind::Calls { window, .. } | Kind::Budget { window, .. } => Some(window),
            Kind::Concurrent { .. } => None,
        }
    }
    /// What one call adds to this limit's counter.
    pub fn units(self, cost: u64) -> u64 {
        match self {
            Kind::Budget { .. } => cost,
            _ => 1,
        }
    }
}

impl LimitRule {
    fn covers(&self, server: &str, tool: &str, p: &Principal) -> bool {
        self.servers.as_ref().is_none_or(|s| s.iter().any(|x| &**x == server))
            && any_matches(&self.tools, tool)
            && self.principals.iter().any(|m| m.matches(p))
            && (self.per != Per::Tenant || p.tenant.is_some())
    }

    /// The counter this call goes to (never 0).
    fn key(&self, server: &str, tool: &str, p: &Principal) -> u64 {
        let id = self.id.as_bytes();
        match self.per {
            Per::Subject => Table::key(&[id, b"s", p.issuer.as_bytes(), p.subject.as_bytes()]),
            Per::Tenant => Table::key(&[id, b"t", p.tenant.as_deref().unwrap_or("").as_bytes()]),
            Per::Server => Table::key(&[id, b"v", server.as_bytes()]),
            Per::Tool => Table::key(&[id, b"o", server.as_bytes(), tool.as_bytes()]),
        }
    }
}

/// A call over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited<'l> {
    /// The limit's id.
    pub id: &'l str,
    pub kind: Kind,
    /// Seconds until the call could pass (the window's end; 1 for concurrency).
    pub retry_after: u64,
    /// The counter could not be kept (the table is full): refused, fail closed.
    pub table_full: bool,
}

impl Limited<'_> {
    /// The JSON-RPC error message.
    pub fn message(&self) -> String {
        if self.table_full {
            return format!(
                "rate limit {:?} cannot be counted right now (limit table full); retry in {} s",
                self.id, self.retry_after
            );
        }
        match self.kind {
            Kind::Calls { max, window } => format!(
                "rate limit {:?} exceeded: at most {max} calls per {}; retry in {} s",
                self.id,
                window.label(),
                self.retry_after
            ),
            Kind::Budget { max, window } => format!(
                "budget {:?} exhausted: at most {max} cost units per {}; retry in {} s",
                self.id,
                window.label(),
                self.retry_after
            ),
            Kind::Concurrent { max } => format!(
                "concurrency limit {:?} reached: at most {max} calls in flight; retry in {} s",
                self.id, self.retry_after
            ),
        }
    }

    /// The JSON-RPC error's `data`.
    pub fn data(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "limit": self.id,
            "kind": self.kind.label(),
            "max": self.kind.max(),
            "retry_after": self.retry_after,
        });
        if let Some(w) = self.kind.window() {
            d["window"] = w.label().into();
        }
        d
    }
}

/// What admitting a call took: give `held` back at stream end ([`Table::release`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Concurrency slots taken.
    pub held: Vec<SlotRef>,
    /// Global limits covering the call, for the rate-limit service: `id=key` tokens (key: 16
    /// hex digits), comma-separated; empty when none.
    pub global: String,
    /// The call's cost in budget units.
    pub cost: u64,
}

impl Limits {
    /// Whether the section holds any limit (the request path skips everything when not).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, id: &str) -> Option<&LimitRule> {
        self.rules.iter().find(|r| &*r.id == id)
    }

    pub fn rules(&self) -> impl Iterator<Item = &LimitRule> {
        self.rules.iter()
    }

    /// What a call to `tool` on `server` costs: the first matching `costs` entry, else 1.
    pub fn cost(&self, server: &str, tool: &str) -> u64 {
        self.costs
            .iter()
            .find(|c| {
                c.servers.as_ref().is_none_or(|s| s.iter().any(|x| &**x == server)) && any_matches(&c.tools, tool)
            })
            .map_or(1, |c| c.cost)
    }

    /// Decide a `tools/call`: charge every local limit that covers it (all or none: a refusal
    /// takes back what was charged) and name the global ones. `now` is seconds since the epoch.
    pub fn admit<'l>(
        &'l self,
        table: &Table,
        p: &Principal,
        server: &str,
        tool: &str,
        now: u64,
    ) -> Result<Admission, Limited<'l>> {
        let cost = self.cost(server, tool);
        let mut adm = Admission {
            cost,
            ..Admission::default()
        };
        let mut charged: Vec<(SlotRef, u64, u64)> = Vec::new();
        for rule in self.rules.iter() {
            if !rule.covers(server, tool, p) {
                continue;
            }
            let key = rule.key(server, tool, p);
            if rule.scope == Scope::Global {
                if !adm.global.is_empty() {
                    adm.global.push(',');
                }
                let _ = write!(adm.global, "{}={key:016x}", rule.id);
                continue;
            }
            let (charge, slot) = match rule.kind {
                Kind::Calls { max, window } | Kind::Budget { max, window } => {
                    table.charge(key, now, window.seconds(), max, rule.kind.units(cost))
                }
                Kind::Concurrent { max } => table.acquire(key, now, max),
            };
            let refused = match (charge, slot) {
                (Charge::Admitted { window_end, .. }, Some(slot)) => {
                    match rule.kind {
                        Kind::Concurrent { .. } => adm.held.push(slot),
                        _ => charged.push((slot, window_end, rule.kind.units(cost))),
                    }
                    None
                }
                (Charge::Over { window_end, .. }, _) => Some(Limited {
                    id: &rule.id,
                    kind: rule.kind,
                    retry_after: if rule.kind.window().is_some() {
                        window_end.saturating_sub(now).max(1)
                    } else {
                        1
                    },
                    table_full: false,
                }),
                _ => Some(Limited {
                    id: &rule.id,
                    kind: rule.kind,
                    retry_after: 1,
                    table_full: true,
                }),
            };
            if let Some(l) = refused {
                for (slot, end, units) in charged {
                    table.refund(slot, end, units);
                }
                for slot in adm.held.drain(..) {
                    table.release(slot);
                }
                return Err(l);
            }
        }
        Ok(adm)
    }

    /// Validate and compile the section; problems are pushed with paths under `limits`.
    pub fn compile<T>(
        spec: Option<&LimitsSpec>,
        servers: &BTreeMap<String, T>,
        errors: &mut Vec<PolicyError>,
    ) -> Limits {
        let Some(spec) = spec else {
            return Limits::default();
        };
        let servers_of = |at: &str, v: &[String], errors: &mut Vec<PolicyError>| -> Option<Box<[Box<str>]>> {
            if v.is_empty() {
                errors.push(PolicyError::at(
                    format!("{at}.servers"),
                    "empty list matches no server: use [\"*\"] for all",
                ));
            }
            for (k, s) in v.iter().enumerate() {
                if s != "*" && !servers.contains_key(s) {
                    errors.push(PolicyError::at(
                        format!("{at}.servers[{k}]"),
                        format!("unknown server {s:?}: declare it under `servers` (or use \"*\")"),
                    ));
                }
            }
            if v.iter().any(|s| s == "*") {
                None
            } else {
                Some(v.iter().map(|s| s.as_str().into()).collect())
            }
        };
        let tools_of = |at: &str, v: &[String], errors: &mut Vec<PolicyError>| -> Box<[Glob]> {
            if v.is_empty() {
                errors.push(PolicyError::at(
                    format!("{at}.tools"),
                    "empty list matches no tool: use [\"*\"] for all",
                ));
            }
            for (k, t) in v.iter().enumerate() {
                if t.is_empty() {
                    errors.push(PolicyError::at(format!("{at}.tools[{k}]"), "empty pattern"));
                }
            }
            v.iter().map(|t| Glob::new(t)).collect()
        };
        let mut costs = Vec::new();
        for (i, c) in spec.costs.iter().enumerate() {
            let at = format!("limits.costs[{i}]");
            if c.cost > MAX_COST {
                errors.push(PolicyError::at(
                    format!("{at}.cost"),
                    format!("at most {MAX_COST}, got {}", c.cost),
                ));
            }
            costs.push(Cost {
                servers: servers_of(&at, &c.servers, errors),
                tools: tools_of(&at, &c.tools, errors),
                cost: c.cost,
            });
        }
        if spec.rules.len() > MAX_LIMIT_RULES {
            errors.push(PolicyError::at(
                "limits.rules",
                format!("at most {MAX_LIMIT_RULES} limits, got {}", spec.rules.len()),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::new();
        for (i, r) in spec.rules.iter().enumerate() {
            let at = format!("limits.rules[{i}]");
            if !crate::policy::valid_rule_id(&r.id) {
                errors.push(PolicyError::at(
                    format!("{at}.id"),
                    format!("limit id must be 1-128 characters from [A-Za-z0-9_.:-], got {:?}", r.id),
                ));
            }
            if let Some(first) = seen.get(r.id.as_str()) {
                errors.push(PolicyError::at(
                    format!("{at}.id"),
                    format!("duplicate limit id {:?} (first used by limits.rules[{first}])", r.id),
                ));
            } else {
                seen.insert(&r.id, i);
            }
            let kinds = [r.calls.is_some(), r.budget.is_some(), r.concurrent.is_some()];
            let kind = match (r.calls, r.budget, r.concurrent) {
                _ if kinds.iter().filter(|k| **k).count() != 1 => {
                    errors.push(PolicyError::at(
                        at.clone(),
                        "a limit needs exactly one of `calls`, `budget` or `concurrent` (write one limit per kind)",
                    ));
                    None
                }
                (Some(w), _, _) => Some(Kind::Calls {
                    max: w.max,
                    window: w.per,
                }),
                (_, Some(w), _) => Some(Kind::Budget {
                    max: w.max,
                    window: w.per,
                }),
                (_, _, Some(max)) => Some(Kind::Concurrent { max }),
                _ => None,
            };
            if let Some(k) = kind {
                let field = k.label();
                let field = if field == "concurrent" {
                    field.to_owned()
                } else {
                    format!("{field}.max")
                };
                if k.max() == 0 || k.max() > MAX_COUNT {
                    errors.push(PolicyError::at(
                        format!("{at}.{field}"),
                        format!(
                            "must be 1 to {MAX_COUNT}, got {} (to forbid a tool, deny it in `rules`)",
                            k.max()
                        ),
                    ));
                }
                if matches!(k, Kind::Concurrent { .. }) && r.scope == Scope::Global {
                    errors.push(PolicyError::at(
                        format!("{at}.scope"),
                        "concurrency is counted per Envoy: `concurrent` limits must be `local`",
                    ));
                }
            }
            let principals = crate::policy::compile_principals(&at, &r.principals, errors);
            let servers = servers_of(&at, &r.servers, errors);
            let tools = tools_of(&at, &r.tools, errors);
            if let Some(kind) = kind {
                rules.push(LimitRule {
                    id: r.id.as_str().into(),
                    servers,
                    principals: principals.into(),
                    tools,
                    per: r.per,
                    scope: r.scope,
                    kind,
                });
            }
        }
        Limits {
            rules: rules.into(),
            costs: costs.into(),
        }
    }
}

#[cfg(test)]
mod tests;
