//! The policy workbench: the pure logic behind `mcp-policy` (`check`, `explain`, `test`,
//! `diff`, `replay`). Everything here works on bytes and values the CLI read; nothing does I/O.
//! Every decision comes from the module's own code ([`crate::config::FilterConfig`],
//! [`crate::policy::Policy`]); the workbench only explains, compares and reports.
//!
//! - [`check`]: every problem of a document at once, positioned, with hints.
//! - [`who`]: a principal written out, from a token's claims, or from a verified token.
//! - [`explain`]: one decision and why each rule did or did not apply.
//! - [`suite`]: policy unit tests (`mcp-policy test`).
//! - [`diff`]: who gains and loses what between two policies.
//! - [`replay`]: recorded access-log decisions re-decided under a candidate policy.

pub mod check;
pub mod diff;
pub mod explain;
pub mod replay;
pub mod suite;
pub mod who;
