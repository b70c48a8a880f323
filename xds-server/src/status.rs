//! A tiny HTTP/1.1 responder for `GET /status` (JSON), `GET /integrity` (JSON: integrity
//! counters per node), `GET /metrics` (Prometheus text) and
//! `GET /healthz`. One request per connection, `Connection: close`; enough for curl, a
//! Prometheus scraper and the tests, and no HTTP framework to keep up to date.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::log;
use crate::state::Shared;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), handle(conn, shared)).await;
                });
            }
            Err(e) => {
                log::warn(&format!("status endpoint: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut conn: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = route(method, path, &shared);
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await?;
    if method != "HEAD" {
        conn.write_all(body.as_bytes()).await?;
    }
    conn.shutdown().await
}

fn route(method: &str, path: &str, shared: &Shared) -> (&'static str, &'static str, String) {
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", "text/plain", "only GET\n".into());
    }
    match path {
        "/" | "/status" => {
            let body = serde_json::to_string_pretty(&shared.status_json()).unwrap_or_default() + "\n";
            ("200 OK", "application/json", body)
        }
        "/integrity" => {
            let body = serde_json::to_string_pretty(&shared.integrity_json()).unwrap_or_default() + "\n";
            ("200 OK", "application/json", body)
        }
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", shared.metrics_text()),
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        _ => (
            "404 Not Found",
            "text/plain",
            "try /status, /integrity or /metrics\n".into(),
        ),
    }
}
