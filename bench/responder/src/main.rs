//! A canned MCP (Streamable HTTP) upstream for the load harness in `bench/`.
//!
//! Answers `initialize`, `ping`, `tools/list` and `tools/call` from bodies built once at start,
//! with JSON (`application/json`) or SSE (`text/event-stream`) responses, over HTTP/1.1 and
//! h2c on one single-threaded tokio runtime (pin it with `taskset`). It does no MCP session
//! handling and no validation beyond what it needs to echo the JSON-RPC id: it exists so the
//! upstream is never what the benchmark measures.
//!
//! Query parameters: `tools=N` (tools/list size, default 100), `sse=1` (SSE response).
//! Usage: `mcp-bench-responder [--delay-us N] [PORT]` (0 = OS-assigned); prints
//! `listening on 127.0.0.1:PORT`.
//!
//! `--delay-us N` holds every answer for N µs before sending it: a slower backend, for the
//! virtual-server arms (one fan-out waits for its slowest backend). The wait is a thread sleep
//! on tokio's blocking pool (tokio's own timer has millisecond granularity), so the runtime keeps
//! serving other requests meanwhile; Linux timer slack adds ≈50 µs to each wait.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Tool-name prefixes, so a realistic policy allows some tools and hides others in a list.
const PREFIXES: [&str; 6] = ["get", "list", "search", "create", "update", "delete"];

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: &'a str,
}

struct Canned {
    /// `tools/list` result objects (everything after `"result":`), by tool count.
    lists: HashMap<usize, String>,
    call: String,
    init: String,
    empty: String,
}

fn tools_list(n: usize) -> String {
    let mut tools = Vec::with_capacity(n);
    for i in 0..n {
        let name = if i == 0 { "echo".to_owned() } else { format!("{}_item_{i}", PREFIXES[i % PREFIXES.len()]) };
        tools.push(serde_json::json!({
            "name": name,
            "description": format!("Benchmark tool number {i}: does one canned thing and returns a fixed answer."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "free text"},
                    "repo": {"type": "string", "description": "owner/name"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100}
                },
                "required": ["text"]
            }
        }));
    }
    serde_json::json!({ "tools": tools }).to_string()
}

impl Canned {
    fn new() -> Self {
        let lists = [1usize, 10, 100, 1000].into_iter().map(|n| (n, tools_list(n))).collect();
        Canned {
            lists,
            call: r#"{"content":[{"type":"text","text":"ok"}],"isError":false}"#.into(),
            init: r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":false}},"serverInfo":{"name":"bench-responder","version":"0.1.0"}}"#.into(),
            empty: "{}".into(),
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn reply(status: StatusCode, ctype: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(ctype));
    r
}

type Answer = Result<Response<Full<Bytes>>, Infallible>;

async fn handle(canned: &'static Canned, delay: Duration, req: Request<Incoming>) -> Answer {
    let r = answer(canned, req).await;
    if !delay.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
    }
    r
}

async fn answer(canned: &'static Canned, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "text/plain", b"bad body".to_vec())),
    };
    let Ok(msg) = serde_json::from_slice::<Msg>(&body) else {
        return Ok(reply(StatusCode::BAD_REQUEST, "text/plain", b"not a JSON-RPC request".to_vec()));
    };
    let Some(id) = msg.id else {
        return Ok(reply(StatusCode::ACCEPTED, "text/plain", Vec::new())); // a notification
    };
    let result: &str = match msg.method {
        "tools/list" => {
            let n = query_param(&query, "tools").and_then(|v| v.parse().ok()).unwrap_or(100);
            match canned.lists.get(&n) {
                Some(l) => l,
                None => return Ok(reply(StatusCode::BAD_REQUEST, "text/plain", b"tools= must be 1, 10, 100 or 1000".to_vec())),
            }
        }
        "tools/call" => &canned.call,
        "initialize" => &canned.init,
        _ => &canned.empty,
    };
    let sse = query_param(&query, "sse") == Some("1");
    let mut out = Vec::with_capacity(result.len() + 64);
    if sse {
        out.extend_from_slice(b"event: message\ndata: ");
    }
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result.as_bytes());
    out.push(b'}');
    if sse {
        out.extend_from_slice(b"\n\n");
        return Ok(reply(StatusCode::OK, "text/event-stream", out));
    }
    Ok(reply(StatusCode::OK, "application/json", out))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut port: u16 = 0;
    let mut delay = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let bad = |what: &str| {
            let usage = format!("usage: mcp-bench-responder [--delay-us N] [PORT] ({what})");
            std::io::Error::new(std::io::ErrorKind::InvalidInput, usage)
        };
        if a == "--delay-us" {
            let us: u64 = args.next().and_then(|v| v.parse().ok()).ok_or_else(|| bad("--delay-us takes µs"))?;
            delay = Duration::from_micros(us);
        } else {
            port = a.parse().map_err(|_| bad("PORT must be a number"))?;
        }
    }
    let canned: &'static Canned = Box::leak(Box::new(Canned::new()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(canned, delay, req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
