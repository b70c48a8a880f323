//! mcp-xds-server: the control plane that keeps a fleet of Envoys on the same MCP policy.
//!
//! Layout (one job per module):
//! - [`source`]: the source-of-truth directory (gateways, servers, filter configs) → a
//!   validated [`source::Model`], or every problem with file, field and reason. The filter
//!   config is validated by `mcp_policy_core::config::FilterConfig::from_json`, the function
//!   the Envoy module itself runs.
//! - [`virtual_server`]: `virtual_servers/NAME.yaml` (and its `keys/` file) → routes, backends
//!   and the module's `virtual_servers` section, checked by the module's own code.
//!   [`position`]: where a field sits in a YAML or JSON file, for messages.
//! - [`snapshot`]: model → per-node-group snapshots of Envoy resources (LDS, RDS, CDS, EDS,
//!   and the module's config over ECDS), consistency-checked, with content-hash versions
//!   ([`version`]).
//! - [`ads`]: the I/O-free ADS state machine for one stream (subscriptions, ACK/NACK, stale
//!   nonces, NACK hold, re-send).
//! - [`server`]: the tonic shell running one [`ads::AdsStream`] per Envoy.
//! - [`watch`]: polls the directory, debounces, publishes or refuses.
//! - [`state`]: what those share; [`status`]: `/status` (JSON) and `/metrics` (Prometheus).
//! - [`cli`]: flags. [`log`]: one line per event on stderr.
#![forbid(unsafe_code)]

pub mod ads;
pub mod cli;
pub mod fleet;
pub mod log;
pub mod pins;
pub mod position;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod status;
pub mod version;
pub mod virtual_server;
pub mod watch;
