//! Load generator for `mcp-audit serve`: streams `--records` realistic HTTP access-log entries
//! (the module's metadata, headers, status) in batches of `--batch` over one ALS stream, as
//! fast as the service takes them, then waits until its metrics say all are written and prints
//! records per second. Used by `make bench-audit` (bench/audit_bench.py).
//!
//! cargo run --release -p mcp-audit --example als_load -- <addr> <metrics-addr> <records> <batch>

use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::{Metadata, Node};
use envoy_types::pb::envoy::data::accesslog::v3::{
    AccessLogCommon, HttpAccessLogEntry, HttpRequestProperties, HttpResponseProperties,
};
use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
use envoy_types::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    HttpAccessLogEntries, Identifier, LogEntries,
};
use envoy_types::pb::envoy::service::accesslog::v3::StreamAccessLogsMessage;
use envoy_types::pb::google::protobuf::{value::Kind, Duration, Struct, Timestamp, UInt32Value, Value};

fn entry(i: u64) -> HttpAccessLogEntry {
    let mut md = Struct::default();
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    for (k, v) in [
        ("server", "git"),
        ("method", "tools/call"),
        ("target", "delete_branch"),
        ("principal", "alice@example.com"),
        ("tenant", "acme"),
        ("identity_source", "jwt"),
        ("decision", if i.is_multiple_of(3) { "deny" } else { "allow" }),
        ("reason", "rule"),
        ("rule", "nobody-destroys"),
        ("mode", "enforce"),
        ("policy_version", "3f9a0c1d2e4b5a69"),
        ("jsonrpc_id", "17"),
        (
            "args_digest",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
    ] {
        md.fields.insert(k.into(), s(v));
    }
    let mut meta = Metadata::default();
    meta.filter_metadata.insert("mcp_policy".into(), md);
    let mut req = HttpRequestProperties {
        request_method: 3,
        path: "/git/mcp".into(),
        authority: "gw.example".into(),
        request_id: format!("6b1f3e1c-0000-4000-8000-{i:012}"),
        request_headers_bytes: 400,
        request_body_bytes: 180,
        ..Default::default()
    };
    req.request_headers
        .insert("traceparent".into(), format!("00-{:032x}-00f067aa0ba902b7-01", i + 1));
    req.request_headers.insert("x-mcp-groups".into(), "devs,oncall".into());
    HttpAccessLogEntry {
        common_properties: Some(AccessLogCommon {
            metadata: Some(meta),
            start_time: Some(Timestamp {
                seconds: 1_796_000_000 + i as i64,
                nanos: 0,
            }),
            duration: Some(Duration {
                seconds: 0,
                nanos: 2_000_000,
            }),
            upstream_cluster: "git".into(),
            ..Default::default()
        }),
        request: Some(req),
        response: Some(HttpResponseProperties {
            response_code: Some(UInt32Value { value: 200 }),
            response_code_details: "via_upstream".into(),
            response_headers_bytes: 120,
            response_body_bytes: 300,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn written(metrics: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(metrics).await else {
        return 0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf.lines()
        .find_map(|l| l.strip_prefix("mcp_audit_records_written_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, metrics, records, batch] = args.as_slice() else {
        anyhow::bail!("usage: als_load <addr> <metrics-addr> <records> <batch>");
    };
    let (records, batch): (u64, u64) = (records.parse()?, batch.parse()?);
    let before = written(metrics).await;
    let mut client = AccessLogServiceClient::connect(format!("http://{addr}")).await?;
    // Build every message first, so generation is not measured.
    let mut msgs = Vec::new();
    let mut i = 0;
    while i < records {
        let n = batch.min(records - i);
        msgs.push(StreamAccessLogsMessage {
            identifier: (i == 0).then(|| Identifier {
                node: Some(Node {
                    id: "bench".into(),
                    ..Default::default()
                }),
                log_name: "mcp_audit".into(),
            }),
            log_entries: Some(LogEntries::HttpLogs(HttpAccessLogEntries {
                log_entry: (i..i + n).map(entry).collect(),
            })),
        });
        i += n;
    }
    let start = Instant::now();
    let sent = tokio::spawn(async move { client.stream_access_logs(tokio_stream::iter(msgs)).await });
    loop {
        if written(metrics).await >= before + records {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    sent.abort();
    println!(
        "{{\"records\": {records}, \"batch\": {batch}, \"seconds\": {secs:.3}, \"records_per_s\": {:.0}}}",
        records as f64 / secs
    );
    Ok(())
}
