//! State shared by the HTTP side and the child's supervisor, behind one lock that is never held
//! across an `.await`.

use crate::cli::Config;
use crate::jsonrpc::Raw;
use crate::router::Router;
use crate::session::Sessions;
use hyper::StatusCode;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};

/// Messages from the child a pending request's stream may carry before its answer.
pub const EVENT_BUFFER: usize = 64;

/// The end of one client request: the answer (or the bridge's error) and its HTTP status if it
/// is still possible to choose one.
#[derive(Debug)]
pub struct Final {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

impl Final {
    pub fn ok(body: Vec<u8>) -> Self {
        Final {
            status: StatusCode::OK,
            retry_after: None,
            body,
        }
    }
}

/// What the HTTP side waits on for one forwarded request.
pub struct Sink {
    pub events: mpsc::Sender<Vec<u8>>,
    pub done: oneshot::Sender<Final>,
}

/// The child the bridge talks to now.
pub struct Up {
    pub generation: u64,
    /// Lines to the child's stdin.
    pub to_child: mpsc::Sender<Vec<u8>>,
    /// The child's InitializeResult, raw members.
    pub init_result: BTreeMap<String, Raw>,
    /// The protocol version the child agreed to.
    pub protocol_version: &'static str,
}

pub enum ChildStatus {
    /// Spawning or doing the handshake.
    Starting,
    Up(Arc<Up>),
    /// Waiting to restart.
    Down {
        retry_at: Instant,
        reason: String,
    },
    Stopping,
}

pub struct State {
    pub sessions: Sessions,
    pub router: Router<Sink>,
    pub child: ChildStatus,
}

pub struct Bridge {
    pub cfg: Config,
    state: Mutex<State>,
    pub shutdown: watch::Receiver<bool>,
}

impl Bridge {
    pub fn new(cfg: Config, shutdown: watch::Receiver<bool>) -> Self {
        let state = State {
            sessions: Sessions::new(cfg.max_sessions),
            router: Router::new(cfg.max_queue),
            child: ChildStatus::Starting,
        };
        Bridge {
            cfg,
            state: Mutex::new(state),
            shutdown,
        }
    }

    /// The shared state. A panic elsewhere while holding the lock leaves the tables consistent
    /// (every update is a single map operation), so a poisoned lock is still used.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One line on stderr. A closed or full stderr loses the line; it never stops the bridge.
pub fn log(msg: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "mcp-stdio-bridge: {msg}");
}

/// At most `max` characters of a line from the child, for a log message.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
