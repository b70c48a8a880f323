//! `libmcp_policy.so`: the MCP policy HTTP filter, loaded by Envoy as a dynamic module.
//!
//! Layers, bottom up (see `docs/ARCHITECTURE.md`):
//! - [`abi`]: our own `extern "C"` declarations of Envoy's dynamic-module ABI (v0.2.0). The
//!   only raw FFI; not used directly above [`envoy`].
//! - [`envoy`]: the safe layer: a `Host` trait with the real Envoy implementation; every
//!   `unsafe` call lives here or in `exports`, each with its `SAFETY:` reason.
//! - [`exports`]: the `envoy_dynamic_module_on_*` functions Envoy calls; each catches panics and
//!   fails closed.
//! - [`filter`]: per-stream logic over `Host`, unit-tested with a fake host.
//! - [`stats`]: every counter, named in one place.
//!
//! The decisions themselves (parsing, identity, policy, rewriting) live in the pure
//! `mcp-policy-core` crate, shared with the xDS server.

pub mod abi;
pub mod envoy;
pub mod exports;
pub mod filter;
pub mod limits;
pub mod stats;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod test_symbols;
#[cfg(test)]
mod tests_integrity;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_oracle;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_vserver;
