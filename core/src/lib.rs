//! The pure heart of MCP policy for Envoy: everything that decides, and nothing that does I/O.
//!
//! This crate has no Envoy, no FFI, no async runtime and no `unsafe`. The Envoy module
//! (`filter/`) is a thin shell over it, and the xDS server (`xds-server/`) validates the
//! configuration it pushes with the very same code, so a config the control plane accepts is a
//! config the data plane accepts.
//!
//! Layout, one job per module:
//! - [`config`]: the filter configuration document: parse → validate → compile, every problem
//!   reported at once with its path and position.
//! - [`locate`]: where a config path sits in the JSON text, so post-parse problems carry a line.
//! - [`jsonrpc`]: lazy, borrowing parse of JSON-RPC 2.0 messages (single or batch) as MCP
//!   Streamable HTTP carries them; only the envelope and the fields a decision needs.
//! - [`mcp`]: MCP method vocabulary: which method is which, what its subject is, and a bounded
//!   label for stats.
//! - [`principal`]: who is calling, in the one shape every policy rule matches.
//! - [`judge`]: one request message, the caller and the config → a verdict (forward, maybe
//!   reading the answer, or refuse).
//! - [`refusal`]: why the gateway answered itself, mapped once to HTTP status, JSON-RPC code,
//!   Envoy details and stats label.
//! - [`response`]: answers the gateway must read: rewritten, or replaced by a JSON-RPC error
//!   carrying the request's id.
//! - [`reply`]: JSON-RPC error bodies and local replies.
//! - [`audit`]: the argument digest the audit trail records (canonical JSON, SHA-256).
//! - [`workbench`]: `mcp-policy`'s check, explain, test, diff and replay (never on the request
//!   path).
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod identity;
pub mod integrity;
pub mod jsonrpc;
pub mod judge;
pub mod limits;
pub mod locate;
pub mod mcp;
pub mod mcp_headers;
pub mod policy;
pub mod principal;
pub mod refusal;
pub mod reply;
pub mod response;
pub mod rewrite;
pub mod sse;
pub mod strict_json;
pub mod subject;
pub mod vserver;
pub mod workbench;
