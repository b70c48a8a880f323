//! `mcp-stdio-bridge`: runs a stdio MCP server as a supervised child and serves it over MCP
//! Streamable HTTP, so Envoy can route to it like any other HTTP MCP backend.
//! `docs/stdio-bridge.md` describes the sharing model, the back-off and the limits.

#![forbid(unsafe_code)]

mod backoff;
mod body;
mod bridge;
mod child;
mod cli;
mod http;
mod jsonrpc;
mod router;
mod session;

use bridge::{log, Bridge};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{oneshot, watch};

/// How long open HTTP connections get to finish after the child has stopped.
const CONNECTION_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cfg = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Run(cfg)) => cfg,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Version) => {
            println!("mcp-stdio-bridge {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mcp-stdio-bridge: {e}\n(see mcp-stdio-bridge --help)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-stdio-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-stdio-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: cli::Config) -> Result<(), String> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let url = format!("http://{local}{}", cfg.path);
    if cfg.allow_remote && !local.ip().is_loopback() {
        log(format!(
            "--allow-remote: listening on {local}, which is not loopback; the bridge has no authentication"
        ));
    }
    let command = cfg.command_line();

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let bridge = Arc::new(Bridge::new(cfg, shutdown_rx));
    let (first_tx, first_rx) = oneshot::channel();
    let supervisor = tokio::spawn(child::supervise(bridge.clone(), first_tx));

    // Ready once the first start has either finished its handshake or failed (then requests get
    // 503 until a restart succeeds).
    let first = tokio::select! {
        r = first_rx => r.unwrap_or_else(|_| Err("the supervisor ended".into())),
        _ = sigterm.recv() => return stop(bridge, shutdown_tx, supervisor, "SIGTERM", None).await,
        _ = sigint.recv() => return stop(bridge, shutdown_tx, supervisor, "SIGINT", None).await,
    };
    // The ready line, on stdout; a closed stdout does not stop the bridge.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "mcp-stdio-bridge listening on {url} (child: {command})");
    let _ = stdout.flush();
    if let Err(why) = first {
        log(format!(
            "the child is not up yet ({why}): requests get 503 until a restart succeeds"
        ));
    }

    let graceful = GracefulShutdown::new();
    let signal_name = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let bridge = bridge.clone();
                    let service = service_fn(move |req| http::handle(bridge.clone(), req));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            if !e.is_incomplete_message() {
                                log(format!("HTTP connection error: {e}"));
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: say so, and do not spin.
                    log(format!("accepting a connection failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        }
    };
    drop(listener);
    stop(bridge, shutdown_tx, supervisor, signal_name, Some(graceful)).await
}

/// Stop accepting (the listener is gone), close the child's stdin, wait for it (killing it after
/// the grace period), then let open connections deliver what they have.
async fn stop(
    bridge: Arc<Bridge>,
    shutdown: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
    signal_name: &str,
    connections: Option<GracefulShutdown>,
) -> Result<(), String> {
    log(format!(
        "{signal_name} received: no new connections; closing the child's stdin"
    ));
    let _ = shutdown.send(true);
    let waited = tokio::time::timeout(child::STOP_GRACE + Duration::from_secs(2), supervisor).await;
    if waited.is_err() {
        log("the child supervisor did not finish in time");
    }
    if let Some(connections) = connections {
        if tokio::time::timeout(CONNECTION_GRACE, connections.shutdown())
            .await
            .is_err()
        {
            log(format!(
                "HTTP connections still open after {} ms: closing them",
                CONNECTION_GRACE.as_millis()
            ));
        }
    }
    drop(bridge);
    log("stopped");
    Ok(())
}
