//! The policy workbench: the pure logic behind `mcp-policy` (`check`, `explain`, `test`,
//! `diff`, `replay`). Everything here works on bytes and values the CLI read; nothing does I/O.
//! Every decision comes from the module's own code ([`crate::config::FilterConfig`],
//! [`crate::policy::Policy`]); the workbench only explains, compares and reports.
//!
//! - [`check`]: every problem of a document at once, positioned, with hints.

pub mod check;
