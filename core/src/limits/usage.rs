//! Usage for chargeback, from the module's JSON access log (`mcp-policy usage`): per period,
//! principal, tenant, server and tool, the calls made and what became of them, the bytes both
//! ways, upstream time, budget units charged and an estimate of tokens. Pure: text in, report
//! out.
//!
//! Only `tools/call` lines count (other MCP methods are protocol, not spend). Tokens are an
//! estimate, labelled so in every output: response bytes / 4 for calls that reached the tool
//! (the module does not read tool results on the hot path).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Bytes per estimated token.
pub const BYTES_PER_TOKEN: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
    /// The period an RFC 3339 time falls in, as text (`2026-12-02T17`, `2026-12-02`, `2026-12`).
    fn of(self, time: &str) -> Option<String> {
        let n = match self {
            Period::Hour => 13,
            Period::Day => 10,
            Period::Month => 7,
        };
        let t = time.get(..n)?;
        let ok = t.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            _ => b.is_ascii_digit(),
        });
        ok.then(|| t.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub period: String,
    pub principal: String,
    pub tenant: String,
    pub server: String,
    pub tool: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Every `tools/call` the gateway saw.
    pub calls: u64,
    /// Passed to the tool (allowed, or passed in audit mode).
    pub admitted: u64,
    /// Refused by policy or identity.
    pub denied: u64,
    /// Refused by a limit (`limit`), and passed in audit over a limit (`would_limit`).
    pub limited: u64,
    pub would_limit: u64,
    /// Admitted calls whose upstream answered with a status ≥ 400 or none.
    pub errors: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub upstream_ms: u64,
    /// Budget units charged (the `cost` the module logged for admitted calls).
    pub cost: u64,
    /// Estimated: response bytes of admitted calls / 4.
    pub tokens_estimated: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub period: &'static str,
    pub tokens: &'static str,
    pub rows: Vec<Row>,
    /// Lines that were not JSON objects or had no usable time (line numbers).
    pub skipped: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub key: Key,
    #[serde(flatten)]
    pub usage: Usage,
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) if s != "-" => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn num(v: &Value, k: &str) -> u64 {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Aggregate an access log (one JSON object per line).
pub fn report(log: &str, period: Period) -> Report {
    let mut rows: BTreeMap<Key, Usage> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            skipped.push(i + 1);
            continue;
        };
        if text(&v, "mcp_method") != "tools/call" {
            continue;
        }
        let Some(p) = period.of(&text(&v, "time")) else {
            skipped.push(i + 1);
            continue;
        };
        let key = Key {
            period: p,
            principal: text(&v, "mcp_principal"),
            tenant: text(&v, "mcp_tenant"),
            server: text(&v, "mcp_server"),
            tool: text(&v, "mcp_target"),
        };
        let u = rows.entry(key).or_default();
        u.calls += 1;
        u.request_bytes += num(&v, "bytes_in");
        u.response_bytes += num(&v, "bytes_out");
        let decision = text(&v, "mcp_decision");
        let admitted = match decision.as_str() {
            "limit" => {
                u.limited += 1;
                false
            }
            "deny" | "reject" => {
                u.denied += 1;
                false
            }
            "would_limit" => {
                u.would_limit += 1;
                true
            }
            _ => true,
        };
        if admitted {
            u.admitted += 1;
            u.upstream_ms += num(&v, "upstream_ms");
            u.cost += num(&v, "mcp_cost");
            u.tokens_estimated += num(&v, "bytes_out") / BYTES_PER_TOKEN;
            let status = num(&v, "status");
            if status == 0 || status >= 400 {
                u.errors += 1;
            }
        }
    }
    Report {
        period: match period {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        },
        tokens: "estimated: response bytes / 4",
        rows: rows.into_iter().map(|(key, usage)| Row { key, usage }).collect(),
        skipped,
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// CSV with a header line; the token column is named `tokens_estimated`.
pub fn render_csv(r: &Report) -> String {
    let mut out = String::from("period,principal,tenant,server,tool,calls,admitted,denied,limited,would_limit,errors,request_bytes,response_bytes,upstream_ms,cost,tokens_estimated\n");
    for row in &r.rows {
        let (k, u) = (&row.key, &row.usage);
        let fields = [&k.period, &k.principal, &k.tenant, &k.server, &k.tool].map(|s| csv_field(s));
        out.push_str(&fields.join(","));
        for n in [
            u.calls,
            u.admitted,
            u.denied,
            u.limited,
            u.would_limit,
            u.errors,
            u.request_bytes,
            u.response_bytes,
            u.upstream_ms,
            u.cost,
            u.tokens_estimated,
        ] {
            out.push(',');
            out.push_str(&n.to_string());
        }
        out.push('\n');
    }
    out
}

pub fn render_json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"time":"2026-12-02T17:01:00.000Z","mcp_method":"tools/call","mcp_principal":"alice","mcp_tenant":"acme","mcp_server":"py","mcp_target":"echo","mcp_decision":"allow","status":200,"bytes_in":100,"bytes_out":400,"upstream_ms":3,"mcp_cost":"1"}
{"time":"2026-12-02T17:02:00.000Z","mcp_method":"tools/call","mcp_principal":"alice","mcp_tenant":"acme","mcp_server":"py","mcp_target":"echo","mcp_decision":"limit","status":429,"bytes_in":100,"bytes_out":200,"upstream_ms":null,"mcp_cost":null}
{"time":"2026-12-02T18:02:00.000Z","mcp_method":"tools/call","mcp_principal":"alice","mcp_tenant":"acme","mcp_server":"py","mcp_target":"echo","mcp_decision":"would_limit","status":503,"bytes_in":"10","bytes_out":"8","upstream_ms":"7","mcp_cost":"1"}
{"time":"2026-12-02T17:03:00.000Z","mcp_method":"tools/list","mcp_principal":"alice","status":200}
{"time":"2026-12-03T01:00:00.000Z","mcp_method":"tools/call","mcp_principal":"bob","mcp_tenant":null,"mcp_server":"py","mcp_target":"search, \"x\"","mcp_decision":"deny","status":200,"bytes_in":1,"bytes_out":1}
not json
"#;

    #[test]
    fn per_day_rows_count_what_happened() {
        let r = report(LOG, Period::Day);
        assert_eq!(r.skipped, vec![6]);
        assert_eq!(r.rows.len(), 2);
        let a = &r.rows[0];
        assert_eq!(
            (a.key.period.as_str(), a.key.principal.as_str(), a.key.tool.as_str()),
            ("2026-12-02", "alice", "echo")
        );
        let u = &a.usage;
        assert_eq!(
            (u.calls, u.admitted, u.limited, u.would_limit, u.errors),
            (3, 2, 1, 1, 1)
        );
        assert_eq!(
            (
                u.request_bytes,
                u.response_bytes,
                u.upstream_ms,
                u.cost,
                u.tokens_estimated
            ),
            (210, 608, 10, 2, 102)
        );
        assert_eq!((r.rows[1].usage.denied, r.rows[1].usage.admitted), (1, 0));
    }

    #[test]
    fn hours_split_and_csv_quotes() {
        let r = report(LOG, Period::Hour);
        assert_eq!(r.rows.len(), 3);
        let csv = render_csv(&r);
        assert!(csv.starts_with("period,principal,tenant,server,tool,calls,"));
        assert!(
            csv.contains("2026-12-03T01,bob,,py,\"search, \"\"x\"\"\",1,0,1,0,0,0,1,1,0,0,0\n"),
            "{csv}"
        );
        assert!(render_json(&r).contains("\"tokens\": \"estimated: response bytes / 4\""));
    }
}
