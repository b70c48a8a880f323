//! The supervised child: spawn, handshake, route what it writes, restart with back-off, stop.

use crate::backoff::Backoff;
use crate::bridge::{log, preview, Bridge, ChildStatus, Final, Up};
use crate::jsonrpc::{self, code, Kind, Message, Raw};
use crate::session::{known_version, LATEST, VERSIONS};
use hyper::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// How long a stopping child may take to exit after its stdin is closed before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// The longest line read from the child; a longer one is dropped (and logged).
pub const MAX_LINE: usize = 16 * 1024 * 1024;
/// How long stdout is still read after the child has exited (it may have written its last
/// answers just before).
const TRAILING_OUTPUT: Duration = Duration::from_millis(200);

/// Runs the child until shutdown, restarting it when it exits. `first` is told how the first
/// start went, so `main` can print its ready line after it.
pub async fn supervise(bridge: Arc<Bridge>, first: oneshot::Sender<Result<(), String>>) {
    let mut first = Some(first);
    let mut backoff = Backoff::default();
    let mut shutdown = bridge.shutdown.clone();
    let mut generation = 0u64;
    loop {
        if stopping(&shutdown) {
            break;
        }
        generation += 1;
        bridge.state().child = ChildStatus::Starting;
        let ended = run_child(&bridge, generation, &mut first).await;
        let uptime = ended.up_since.map(|t| t.elapsed()).unwrap_or_default();
        let stop = stopping(&shutdown);
        let delay = backoff.after(uptime);
        let retry_after = delay.as_secs().max(1);
        let (message, drained) = {
            let mut st = bridge.state();
            // Status first, then drain: no request can be registered against the dead child.
            st.child = if stop {
                ChildStatus::Stopping
            } else {
                ChildStatus::Down {
                    retry_at: Instant::now().into_std() + delay,
                    reason: ended.reason.clone(),
                }
            };
            let message = if stop {
                "mcp-stdio-bridge is shutting down: the stdio server was stopped before it answered".to_string()
            } else {
                format!(
                    "the stdio server {} before it answered this request; mcp-stdio-bridge restarts it in {} ms",
                    ended.reason,
                    delay.as_millis()
                )
            };
            (message, st.router.drain_generation(generation))
        };
        for p in drained {
            let body = jsonrpc::error(Some(&p.client_id), code::UNAVAILABLE, &message);
            let _ = p.sink.done.send(Final {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some(retry_after),
                body,
            });
        }
        if let Some(f) = first.take() {
            let _ = f.send(Err(ended.reason.clone()));
        }
        if stop {
            log(format!("child {} (shutdown)", ended.reason));
            break;
        }
        log(format!(
            "child {}; restarting in {} ms",
            ended.reason,
            delay.as_millis()
        ));
        tokio::select! {
            _ = sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    bridge.state().child = ChildStatus::Stopping;
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

struct Ended {
    reason: String,
    /// When the handshake finished, if it did.
    up_since: Option<Instant>,
}

impl Ended {
    fn early(reason: String) -> Self {
        Ended { reason, up_since: None }
    }
}

async fn run_child(
    bridge: &Arc<Bridge>,
    generation: u64,
    first: &mut Option<oneshot::Sender<Result<(), String>>>,
) -> Ended {
    let cfg = &bridge.cfg;
    let mut cmd = Command::new(&cfg.command[0]);
    cmd.args(&cfg.command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C meant for the bridge does not reach the child
        // directly; the bridge stops it in order (stdin closed, then a kill).
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ended::early(format!("could not be started ({}: {e})", cfg.command_line())),
    };
    let pid = child.id();
    let pid_text = pid.map_or("?".to_string(), |p| p.to_string());
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.start_kill();
        return Ended::early("was started without its stdio pipes".into());
    };
    log(format!(
        "child started (pid {pid_text}, generation {generation}): {}",
        cfg.command_line()
    ));
    tokio::spawn(relay_stderr(stderr, pid_text.clone()));
    let mut lines = LineReader::new(stdout);
    let mut shutdown = bridge.shutdown.clone();

    let handshake_id = bridge.state().router.fresh_id();
    let outcome = tokio::select! {
        r = timeout(cfg.request_timeout, handshake(&mut stdin, &mut lines, handshake_id)) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("did not answer initialize within {} ms (--request-timeout-ms)", cfg.request_timeout.as_millis())),
        },
        _ = shutdown.wait_for(|s| *s) => Err("was still starting".into()),
    };
    let (init_result, protocol_version) = match outcome {
        Ok(v) => v,
        Err(why) => {
            drop(stdin);
            let status = stop_child(&mut child, Duration::from_millis(500)).await;
            return Ended::early(format!("failed its MCP handshake: {why} ({})", describe(status)));
        }
    };

    let (to_child, rx) = mpsc::channel(cfg.max_queue.saturating_mul(2).saturating_add(16));
    tokio::spawn(write_lines(stdin, rx, bridge.shutdown.clone()));
    let server = init_result
        .get("serverInfo")
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s.get()).ok())
        .and_then(|s| {
            Some(format!(
                "{} {}",
                s.get("name")?.as_str()?,
                s.get("version").and_then(|v| v.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| "a server without serverInfo".into());
    {
        let mut st = bridge.state();
        if !stopping(&shutdown) {
            st.child = ChildStatus::Up(Arc::new(Up {
                generation,
                to_child: to_child.clone(),
                init_result,
                protocol_version,
            }));
        }
    }
    let up_since = Instant::now();
    log(format!(
        "child ready (pid {pid_text}): {} speaking MCP {protocol_version}",
        server.trim_end()
    ));
    if let Some(f) = first.take() {
        let _ = f.send(Ok(()));
    }

    // Read until stdout ends; after the child exits only briefly; after shutdown until the grace
    // period ends.
    let mut exited: Option<io::Result<ExitStatus>> = None;
    let mut read_until: Option<Instant> = None;
    let mut stop_deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => on_child_line(bridge, generation, &to_child, &line),
                Ok(None) => break,
                Err(e) => {
                    log(format!("reading the child's stdout failed: {e}"));
                    break;
                }
            },
            status = child.wait(), if exited.is_none() => {
                exited = Some(status);
                let soon = Instant::now() + TRAILING_OUTPUT;
                read_until = Some(read_until.map_or(soon, |t| t.min(soon)));
            }
            _ = shutdown.wait_for(|s| *s), if stop_deadline.is_none() => {
                // The writer task closes the child's stdin on the same signal.
                bridge.state().child = ChildStatus::Stopping;
                let grace = Instant::now() + STOP_GRACE;
                stop_deadline = Some(grace);
                read_until = Some(read_until.map_or(grace, |t| t.min(grace)));
            }
            _ = sleep_until(read_until.unwrap_or_else(Instant::now)), if read_until.is_some() => break,
        }
    }
    drop(to_child);
    let status = match exited {
        Some(s) => s,
        None => {
            // stdout ended (or the grace period did): wait out what is left of the grace
            // period, then kill it.
            let grace = stop_deadline.map_or(STOP_GRACE, |d| d.saturating_duration_since(Instant::now()));
            stop_child(&mut child, grace).await
        }
    };
    Ended {
        reason: describe(status),
        up_since: Some(up_since),
    }
}

/// Waits up to `grace` for the child to exit, then kills it.
async fn stop_child(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    match timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            log(format!(
                "child did not exit within {} ms: killing it",
                grace.as_millis()
            ));
            let _ = child.start_kill();
            child.wait().await
        }
    }
}

fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => format!("exited ({s})"),
        Err(e) => format!("ended, its exit status unknown ({e})"),
    }
}

fn line(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(b'\n');
    bytes
}

async fn write_line(stdin: &mut ChildStdin, bytes: &[u8]) -> Result<(), String> {
    stdin
        .write_all(bytes)
        .await
        .map_err(|e| format!("writing to its stdin failed: {e}"))?;
    stdin
        .flush()
        .await
        .map_err(|e| format!("writing to its stdin failed: {e}"))
}

/// The bridge's own `initialize` with the child. Returns the InitializeResult's members and the
/// protocol version the child chose (which must be one the bridge speaks).
async fn handshake(
    stdin: &mut ChildStdin,
    lines: &mut LineReader<ChildStdout>,
    id: u64,
) -> Result<(BTreeMap<String, Raw>, &'static str), String> {
    let request = json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST,
            // Declared on behalf of the HTTP clients; a request from the child that needs one is
            // sent only to a client whose own initialize declared it (see ClientCaps::allows).
            "capabilities": {"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}},
            "clientInfo": {"name": "mcp-stdio-bridge", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    write_line(stdin, &line(request.to_string().into_bytes())).await?;
    loop {
        let bytes = lines
            .next_line()
            .await
            .map_err(|e| format!("reading its stdout failed: {e}"))?
            .ok_or("it closed its stdout before answering initialize")?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let msg = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                log(format!(
                    "child wrote a line that is not a JSON-RPC message ({e}): {}",
                    preview(&bytes, 200)
                ));
                continue;
            }
        };
        match msg.kind {
            Kind::Response if msg.id_u64() == Some(id) => {
                if let Some(err) = msg.get("error") {
                    return Err(format!("it answered initialize with an error: {}", err.get()));
                }
                let result: BTreeMap<String, Raw> = msg
                    .get("result")
                    .and_then(|r| serde_json::from_str(r.get()).ok())
                    .ok_or("its InitializeResult is not an object")?;
                let version = result
                    .get("protocolVersion")
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                    .ok_or("its InitializeResult has no protocolVersion string")?;
                let version = known_version(&version).ok_or_else(|| {
                    format!(
                        "it chose protocol version {version}; mcp-stdio-bridge speaks {}",
                        VERSIONS.join(", ")
                    )
                })?;
                let initialized = jsonrpc::notification("notifications/initialized", &json!({}));
                write_line(stdin, &line(initialized)).await?;
                return Ok((result, version));
            }
            Kind::Request => {
                let reply = if msg.method.as_deref() == Some("ping") {
                    jsonrpc::result(msg.id().unwrap_or(&jsonrpc::null()), &jsonrpc::to_raw(&json!({})))
                } else {
                    jsonrpc::error(
                        msg.id(),
                        code::INVALID_REQUEST,
                        "mcp-stdio-bridge: initialize has not been answered yet",
                    )
                };
                write_line(stdin, &line(reply)).await?;
            }
            _ => log(format!(
                "child wrote before answering initialize; dropped: {}",
                preview(&bytes, 200)
            )),
        }
    }
}

/// Writes lines to the child's stdin until the channel closes or shutdown; then drops stdin,
/// which the child sees as end of input.
async fn write_lines(mut stdin: ChildStdin, mut rx: mpsc::Receiver<Vec<u8>>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let bytes = tokio::select! {
            m = rx.recv() => match m { Some(b) => b, None => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        tokio::select! {
            r = write_line(&mut stdin, &bytes) => if let Err(e) = r {
                log(format!("child: {e}"));
                return;
            },
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn relay_stderr<R: AsyncRead + Unpin>(stderr: R, pid: String) {
    let mut lines = LineReader::new(stderr);
    while let Ok(Some(l)) = lines.next_line().await {
        let _ = writeln!(
            std::io::stderr(),
            "[child {pid}] {}",
            String::from_utf8_lossy(&l).trim_end()
        );
    }
}

/// What the child wrote on stdout, after the handshake.
fn on_child_line(bridge: &Bridge, generation: u64, to_child: &mpsc::Sender<Vec<u8>>, bytes: &[u8]) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let mut msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            log(format!(
                "child wrote a line that is not a JSON-RPC message ({e}): {}",
                preview(bytes, 200)
            ));
            return;
        }
    };
    let reply_to_child = |reply: Vec<u8>| {
        if to_child.try_send(line(reply)).is_err() {
            log("the child's input queue is full: a reply to it was dropped");
        }
    };
    let method = msg.method.clone().unwrap_or_default();
    let mut st = bridge.state();
    match msg.kind {
        Kind::Response => {
            let Some(p) = msg.id_u64().and_then(|id| st.router.finish(id)) else {
                drop(st);
                let id = msg.id().map_or("none".to_string(), |i| i.get().to_string());
                log(format!(
                    "the child answered request id {id}, which is not in flight (timed out or cancelled): dropped"
                ));
                return;
            };
            drop(st);
            msg.set_id(p.client_id);
            let _ = p.sink.done.send(Final::ok(msg.to_bytes()));
        }
        Kind::Notification => {
            let target = match method.as_str() {
                // Exact: the bridge gave each request's progress token its own bridge id.
                "notifications/progress" => {
                    let mut params = msg.params().unwrap_or_default();
                    let target = params
                        .get("progressToken")
                        .and_then(|t| t.get().parse::<u64>().ok())
                        .filter(|id| st.router.get(*id).is_some_and(|p| p.progress_token.is_some()));
                    if let Some(original) = target
                        .and_then(|id| st.router.get(id))
                        .and_then(|p| p.progress_token.clone())
                    {
                        params.insert("progressToken".into(), original);
                        msg.set_params(&params);
                    }
                    target.ok_or("its progress token is not one of a request in flight")
                }
                // The child gave up on a request it made to a client: tell that client, by the
                // id the client knows.
                "notifications/cancelled" => {
                    let mut params = msg.params().unwrap_or_default();
                    let found = params
                        .get("requestId")
                        .and_then(|rid| st.router.server_request_by_child_id(generation, rid.get()))
                        .map(|(sid, r)| (sid, r.origin));
                    match found {
                        Some((sid, origin)) => {
                            st.router.forget_server_request(sid);
                            params.insert("requestId".into(), jsonrpc::number(sid));
                            msg.set_params(&params);
                            Ok(origin)
                        }
                        None => Err("it cancels no request the bridge passed on"),
                    }
                }
                _ => st.router.unattributed_target().ok_or(if st.router.in_flight() == 0 {
                    "no client request is in flight (mcp-stdio-bridge has no GET stream)"
                } else {
                    "requests of several HTTP sessions are in flight and stdio does not say whose this is"
                }),
            };
            let outcome = target.and_then(|id| {
                let p = st.router.get(id).ok_or("its request just ended")?;
                p.sink
                    .events
                    .try_send(msg.to_bytes())
                    .map_err(|_| "the client's stream is full")
            });
            drop(st);
            if let Err(why) = outcome {
                log(format!("notification {method} from the child dropped: {why}"));
            }
        }
        Kind::Request => {
            let child_id: Raw = msg.id().map_or_else(jsonrpc::null, |i| i.to_owned());
            if method == "ping" {
                drop(st);
                reply_to_child(jsonrpc::result(&child_id, &jsonrpc::to_raw(&json!({}))));
                return;
            }
            let routed = (|| {
                let origin = st.router.unattributed_target().ok_or(if st.router.in_flight() == 0 {
                    (
                        code::INTERNAL_ERROR,
                        "no client request is in flight to carry it".to_string(),
                    )
                } else {
                    (
                        code::INTERNAL_ERROR,
                        "requests of several HTTP sessions are in flight and stdio does not say which one it belongs to"
                            .to_string(),
                    )
                })?;
                let p = st
                    .router
                    .get(origin)
                    .ok_or((code::INTERNAL_ERROR, "its request just ended".to_string()))?;
                p.caps.allows(&method).map_err(|cap| {
                    (
                        code::METHOD_NOT_FOUND,
                        format!("the HTTP client did not declare the {cap} capability"),
                    )
                })?;
                let sid = st
                    .router
                    .add_server_request(origin, child_id.clone())
                    .ok_or((code::INTERNAL_ERROR, "its request just ended".to_string()))?;
                msg.set_id_u64(sid);
                let sent = st
                    .router
                    .get(origin)
                    .map(|p| p.sink.events.try_send(msg.to_bytes()).is_ok());
                if sent != Some(true) {
                    st.router.forget_server_request(sid);
                    return Err((code::INTERNAL_ERROR, "the client's stream is full".into()));
                }
                Ok(())
            })();
            drop(st);
            if let Err((c, why)) = routed {
                log(format!("request {method} from the child refused: {why}"));
                reply_to_child(jsonrpc::error(
                    Some(&child_id),
                    c,
                    &format!("mcp-stdio-bridge cannot deliver {method}: {why}"),
                ));
            }
        }
    }
}

/// Newline-delimited lines with a length limit; cancel-safe (a partial line stays buffered).
pub struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(r: R) -> Self {
        LineReader {
            inner: BufReader::new(r),
            buf: Vec::new(),
            discarding: false,
        }
    }

    /// The next line without its `\n`; `None` at end of input.
    pub async fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.buf.is_empty() || self.discarding {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let too_long = !self.discarding && self.buf.len() + i > MAX_LINE;
                    if !self.discarding && !too_long {
                        self.buf.extend_from_slice(&available[..i]);
                    }
                    self.inner.consume(i + 1);
                    if too_long {
                        log(format!("child wrote a line longer than {MAX_LINE} bytes: dropped"));
                    }
                    if self.discarding || too_long {
                        self.discarding = false;
                        self.buf = Vec::new();
                        continue;
                    }
                    return Ok(Some(std::mem::take(&mut self.buf)));
                }
                None => {
                    let n = available.len();
                    if !self.discarding {
                        self.buf.extend_from_slice(available);
                    }
                    self.inner.consume(n);
                    if self.buf.len() > MAX_LINE {
                        log(format!("child wrote a line longer than {MAX_LINE} bytes: dropped"));
                        self.buf = Vec::new();
                        self.discarding = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_split_join_and_stop_at_eof() {
        let input: &[u8] = b"{\"a\":1}\n\n{\"b\":\n2}\nlast";
        let mut r = LineReader::new(input);
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some(&b"{\"b\":"[..]));
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some(&b"2}"[..]));
        assert_eq!(
            r.next_line().await.unwrap().as_deref(),
            Some(&b"last"[..]),
            "unterminated last line"
        );
        assert_eq!(r.next_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_oversized_line_is_dropped_and_the_next_one_read() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nok\n");
        let mut r = LineReader::new(&input[..]);
        // Lengths only: a failure must not print 16 MiB.
        assert_eq!(r.next_line().await.unwrap().map(|l| l.len()), Some(2));
        assert_eq!(r.next_line().await.unwrap().map(|l| l.len()), None);
        // Exactly at the limit is still a line.
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let mut r = LineReader::new(&input[..]);
        assert_eq!(r.next_line().await.unwrap().map(|l| l.len()), Some(MAX_LINE));
    }
}
