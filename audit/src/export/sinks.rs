//! The three sinks: syslog (RFC 5424 over TCP with RFC 6587 octet counting), Splunk-HEC-
//! compatible JSON over HTTP, and OpenTelemetry logs over OTLP/HTTP (JSON encoding).
//! HTTP sinks count a batch delivered on a 2xx answer; syslog over TCP has no
//! application-level acknowledgement (see docs/audit.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::{Item, Sink};

const TIMEOUT: Duration = Duration::from_secs(5);

fn host_port(url: &str, scheme: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix(scheme)
        .with_context(|| format!("`{url}`: expected {scheme}host:port[/path]"))?;
    let (hp, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if !hp.contains(':') {
        bail!("`{url}`: a port is required");
    }
    Ok((hp.to_string(), path.to_string()))
}

fn connect(addr: &str) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn record_of(item: &Item) -> Value {
    serde_json::from_str(&item.line).unwrap_or(Value::Null)
}

fn severity(rec: &Value) -> (u8, &'static str) {
    // RFC 5424 severities: 4 warning for refusals, 5 notice for allowed, 6 info otherwise.
    match rec.get("decision").and_then(Value::as_str) {
        Some("deny") | Some("reject") => (4, "WARN"),
        Some("would_deny") => (4, "WARN"),
        Some("allow") => (5, "INFO"),
        _ => (6, "INFO"),
    }
}

/// Syslog over TCP, one RFC 5424 message per record, facility local0, octet-counted frames.
pub struct Syslog {
    addr: String,
    hostname: String,
    conn: Option<TcpStream>,
}

impl Syslog {
    pub fn new(url: &str) -> anyhow::Result<Syslog> {
        let (addr, _) = host_port(url, "tcp://")?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "-".into());
        Ok(Syslog {
            addr,
            hostname,
            conn: None,
        })
    }

    pub fn frame(&self, item: &Item) -> String {
        let rec = record_of(item);
        let (sev, _) = severity(&rec);
        let pri = 16 * 8 + sev as u32;
        let ts = rec.get("time").and_then(Value::as_str).unwrap_or("-");
        let hash = rec.get("hash").and_then(Value::as_str).unwrap_or("-");
        let trace = rec.get("trace_id").and_then(Value::as_str).unwrap_or("");
        // SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3); ours are hex/digits.
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
        let msg = format!(
            "<{pri}>1 {ts} {} mcp-audit {} record [mcp-audit@32473 seq=\"{}\" hash=\"{}\" trace_id=\"{}\"] {}",
            self.hostname,
            std::process::id(),
            item.seq,
            esc(hash),
            esc(trace),
            item.line
        );
        format!("{} {msg}", msg.len())
    }
}

impl Sink for Syslog {
    fn name(&self) -> &str {
        "syslog"
    }

    fn send(&mut self, batch: &[Item]) -> anyhow::Result<()> {
        let mut buf = String::new();
        for i in batch {
            buf.push_str(&self.frame(i));
        }
        if self.conn.is_none() {
            self.conn = Some(connect(&self.addr)?);
        }
        let conn = self.conn.as_mut().expect("set above");
        // A receiver that went away shows as EOF on read; check before writing so a batch is
        // not written into a dead connection's buffer.
        conn.set_nonblocking(true)?;
        let mut probe = [0u8; 1];
        let closed = matches!(conn.read(&mut probe), Ok(0));
        conn.set_nonblocking(false)?;
        if closed {
            self.conn = None;
            bail!("syslog receiver closed the connection");
        }
        if let Err(e) = conn.write_all(buf.as_bytes()).and_then(|_| conn.flush()) {
            self.conn = None;
            return Err(e).context("syslog write");
        }
        Ok(())
    }
}

/// POST a body; Ok on 2xx.
fn post(addr: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> anyhow::Result<()> {
    let mut s = connect(addr)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut status = String::new();
    BufReader::new(&mut s).read_line(&mut status)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !(200..300).contains(&code) {
        bail!("{addr}{path} answered `{}`", status.trim());
    }
    Ok(())
}

/// Splunk HTTP Event Collector (`/services/collector/event`): one event object per record,
/// concatenated, `Authorization: Splunk <token>`.
pub struct Hec {
    addr: String,
    path: String,
    token: String,
}

impl Hec {
    pub fn new(url: &str, token: String) -> anyhow::Result<Hec> {
        let (addr, path) = host_port(url, "http://")?;
        Ok(Hec { addr, path, token })
    }
}

impl Sink for Hec {
    fn name(&self) -> &str {
        "hec"
    }

    fn send(&mut self, batch: &[Item]) -> anyhow::Result<()> {
        let mut body = Vec::new();
        for i in batch {
            let ev = json!({"source": "mcp-audit", "sourcetype": "mcp:audit", "event": record_of(i)});
            serde_json::to_writer(&mut body, &ev)?;
            body.push(b'\n');
        }
        post(
            &self.addr,
            &self.path,
            &[
                ("authorization", format!("Splunk {}", self.token)),
                ("content-type", "application/json".into()),
            ],
            &body,
        )
    }
}

/// OTLP/HTTP logs, JSON encoding (`/v1/logs`): one LogRecord per record, body = the record,
/// `traceId` = the record's W3C trace id when it has one.
pub struct Otlp {
    addr: String,
    path: String,
}

impl Otlp {
    pub fn new(url: &str) -> anyhow::Result<Otlp> {
        let (addr, path) = host_port(url, "http://")?;
        let path = if path == "/" { "/v1/logs".to_string() } else { path };
        Ok(Otlp { addr, path })
    }

    pub fn body(batch: &[Item]) -> Value {
        let records: Vec<Value> = batch
            .iter()
            .map(|i| {
                let rec = record_of(i);
                let (sev, text) = severity(&rec);
                let nanos = rec
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(time_nanos)
                    .unwrap_or(0);
                let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let mut attrs = vec![json!({"key": "mcp.audit.seq", "value": {"intValue": i.seq.to_string()}})];
                for k in ["hash", "server", "method", "target", "decision", "rule"] {
                    if !s(k).is_empty() {
                        attrs.push(json!({"key": format!("mcp.audit.{k}"), "value": {"stringValue": s(k)}}));
                    }
                }
                if let Some(p) = rec.pointer("/principal/subject").and_then(Value::as_str) {
                    attrs.push(json!({"key": "enduser.id", "value": {"stringValue": p}}));
                }
                let mut lr = json!({
                    "timeUnixNano": nanos.to_string(),
                    "severityNumber": if sev == 4 { 13 } else { 9 },
                    "severityText": text,
                    "body": {"stringValue": i.line},
                    "attributes": attrs,
                });
                let trace = s("trace_id");
                if trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) {
                    lr["traceId"] = json!(trace);
                }
                lr
            })
            .collect();
        json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mcp-audit"}}]},
            "scopeLogs": [{"scope": {"name": "mcp-audit"}, "logRecords": records}]
        }]})
    }
}

/// Nanoseconds since the epoch of one of our fixed-format times.
fn time_nanos(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 27 {
        return None;
    }
    let n = |a: usize, z: usize| t.get(a..z)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss, us) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 26)?);
    // days from civil (inverse of crate::time).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some((secs as u64) * 1_000_000_000 + (us as u64) * 1000)
}

impl Sink for Otlp {
    fn name(&self) -> &str {
        "otlp"
    }

    fn send(&mut self, batch: &[Item]) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&Self::body(batch))?;
        post(
            &self.addr,
            &self.path,
            &[("content-type", "application/json".into())],
            &body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        let t = crate::time::rfc3339(1_798_848_123, 456_789_000);
        assert_eq!(time_nanos(&t), Some(1_798_848_123_456_789_000));
    }

    #[test]
    fn syslog_frame_is_octet_counted_5424() {
        let s = Syslog {
            addr: String::new(),
            hostname: "h".into(),
            conn: None,
        };
        let line =
            r#"{"v":1,"seq":3,"time":"2026-12-01T10:00:00.000000Z","trace_id":"ab","decision":"deny","hash":"ff"}"#;
        let f = s.frame(&Item {
            seq: 3,
            line: line.into(),
        });
        let (len, msg) = f.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(
            msg.starts_with("<132>1 2026-12-01T10:00:00.000000Z h mcp-audit "),
            "{msg}"
        );
        assert!(msg.contains(r#"[mcp-audit@32473 seq="3" hash="ff" trace_id="ab"]"#));
    }
}
