//! Virtual MCP servers: one MCP endpoint over many backend MCP servers.
//!
//! Owns, as pure logic (no Envoy, no I/O): the `virtual_servers` config section and its
//! validation; the naming scheme that keeps every backend's tools, prompts and resources apart
//! under one endpoint ([`names`]); the sealed composite session id any replica can open
//! ([`session`]); merging the backends' answers to `initialize` and the list methods, with
//! composite cursors ([`merge`]); and rewriting a request for the one backend that owns it
//! ([`dispatch`]). The filter moves bytes: it sends the fan-out requests as Envoy HTTP
//! callouts and hands their answers here.
//!
//! Policy keeps naming servers: a backend's name is the server its tools are judged under,
//! inside any virtual server. docs/virtual-server.md has the whole design.

pub mod dispatch;
pub mod merge;
pub mod names;
pub mod session;

#[cfg(test)]
mod tests;

use crate::policy::glob::{self, Glob, Text};
use crate::policy::Kind;
use serde::Deserialize;

/// The request header a virtual server's route selects its cluster by (Envoy route action
/// `cluster_header`), unless the config names another. The module sets it on every request it
/// dispatches and removes any copy a client sends.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-mcp-backend-cluster";

/// Most backends one virtual server may have (each fan-out is one callout per backend).
pub const MAX_BACKENDS: usize = 32;

/// The section as written: `virtual_servers.<name>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServerSpec {
    pub backends: Vec<BackendSpec>,
    /// Keys that seal session ids: the first seals, every one opens (rotation: add the new key
    /// first, keep the old one until its sessions have ended).
    pub session_keys: Vec<SessionKeySpec>,
    /// How long a session id stays valid after `initialize`.
    #[serde(default = "default_ttl")]
    pub session_ttl_secs: u64,
    /// Text put before the backends' own instructions in the merged `initialize` answer.
    #[serde(default)]
    pub instructions: Option<String>,
    /// The header the route's `cluster_header` reads.
    #[serde(default = "default_cluster_header")]
    pub cluster_header: String,
}

fn default_ttl() -> u64 {
    24 * 3600
}

fn default_cluster_header() -> String {
    DEFAULT_CLUSTER_HEADER.to_owned()
}

fn default_path() -> String {
    "/mcp".to_owned()
}

fn default_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// The server name policy rules use for this backend's tools.
    pub name: String,
    /// The Envoy cluster that reaches it.
    pub cluster: String,
    /// Its MCP endpoint path.
    #[serde(default = "default_path")]
    pub path: String,
    /// `Host` sent to it (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// What its names are prefixed with (default: the backend name).
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub tools: SelectorSpec,
    #[serde(default)]
    pub prompts: SelectorSpec,
    /// Resources and resource templates, matched on their URI (template).
    #[serde(default)]
    pub resources: SelectorSpec,
    /// For each fan-out request to it.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub failure: FailureMode,
}

/// Which of a backend's items the virtual server offers at all (before policy).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorSpec {
    /// Patterns (`*` = any run); empty: everything.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// What a fan-out does when this backend fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// The whole answer becomes a JSON-RPC error naming the backend.
    #[default]
    FailClosed,
    /// Answer with the other backends; say which are missing (`_meta`, access log).
    FailOpen,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKeySpec {
    /// Short key id, carried in every session id it seals.
    pub id: String,
    /// 32 random bytes, base64 (standard or URL-safe, padding optional).
    pub key: String,
}

/// One compiled virtual server.
#[derive(Debug)]
pub struct VirtualServer {
    pub name: String,
    pub backends: Vec<Backend>,
    pub keys: session::Keys,
    pub ttl_secs: u64,
    pub instructions: Option<String>,
    pub cluster_header: String,
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub prefix: String,
    pub timeout_ms: u64,
    pub failure: FailureMode,
    /// tools, prompts, resources.
    select: [Selector; 3],
}

#[derive(Debug, Default)]
struct Selector {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
}

impl Selector {
    fn admits(&self, name: &str) -> bool {
        (self.include.is_empty() || glob::any_matches(&self.include, name)) && !glob::any_matches(&self.exclude, name)
    }
}

impl Backend {
    /// Whether the virtual server offers this item of the backend (before policy).
    pub fn selects(&self, kind: Kind, name: &str) -> bool {
        let i = match kind {
            Kind::Tool => 0,
            Kind::Prompt => 1,
            Kind::Resource | Kind::ResourceTemplate => 2,
        };
        self.select[i].admits(name)
    }
}

impl VirtualServer {
    /// The backend whose prefix this is.
    pub fn by_prefix(&self, prefix: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.prefix == prefix)
    }

    /// The default backend (empty prefix), if there is one.
    pub fn default_backend(&self) -> Option<usize> {
        self.by_prefix("")
    }

    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }

    /// Compile `virtual_servers.<name>`. Errors are `(path relative to the section, message)`.
    pub fn compile(name: &str, spec: VirtualServerSpec) -> Result<VirtualServer, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut err = |path: String, msg: String| errors.push((path, msg));
        if !valid_server_name(name) {
            err(
                String::new(),
                format!("virtual server name must use only [A-Za-z0-9_-], got {name:?}"),
            );
        }
        if spec.backends.is_empty() {
            err("backends".into(), "a virtual server needs at least one backend".into());
        }
        if spec.backends.len() > MAX_BACKENDS {
            err(
                "backends".into(),
                format!("at most {MAX_BACKENDS} backends, got {}", spec.backends.len()),
            );
        }
        let mut backends = Vec::with_capacity(spec.backends.len());
        for (i, b) in spec.backends.into_iter().enumerate() {
            let at = |f: &str| format!("backends[{i}].{f}");
            if !valid_server_name(&b.name) {
                err(
                    at("name"),
                    format!("must be non-empty and use only [A-Za-z0-9_-], got {:?}", b.name),
                );
            }
            if b.name == name {
                err(at("name"), format!("{:?} is the virtual server's own name", b.name));
            }
            if b.cluster.is_empty() || b.cluster.bytes().any(|c| !c.is_ascii_graphic()) {
                err(
                    at("cluster"),
                    format!("must be an Envoy cluster name, got {:?}", b.cluster),
                );
            }
            if !b.path.starts_with('/') || b.path.bytes().any(|c| !c.is_ascii_graphic()) {
                err(
                    at("path"),
                    format!("must be an absolute path without spaces, got {:?}", b.path),
                );
            }
            let authority = b.authority.clone().unwrap_or_else(|| b.cluster.clone());
            if authority.is_empty() || authority.bytes().any(|c| !c.is_ascii_graphic()) {
                err(at("authority"), format!("must be a host[:port], got {authority:?}"));
            }
            let prefix = b.prefix.clone().unwrap_or_else(|| b.name.clone());
            if let Some(why) = names::invalid_prefix(&prefix) {
                let hint = if b.prefix.is_none() {
                    " (it defaults to the backend name: set `prefix` explicitly)"
                } else {
                    ""
                };
                err(at("prefix"), format!("{why}, got {prefix:?}{hint}"));
            }
            if !(1..=300_000).contains(&b.timeout_ms) {
                err(at("timeout_ms"), format!("must be 1..=300000, got {}", b.timeout_ms));
            }
            let mut select: [Selector; 3] = Default::default();
            for (k, (field, s)) in [
                ("tools", &b.tools),
                ("prompts", &b.prompts),
                ("resources", &b.resources),
            ]
            .into_iter()
            .enumerate()
            {
                let text = if k == 2 { Text::Free } else { Text::Name };
                for (list, pats) in [("include", &s.include), ("exclude", &s.exclude)] {
                    for (j, p) in pats.iter().enumerate() {
                        if let Some(why) = glob::unsupported(p, text) {
                            err(at(&format!("{field}.{list}[{j}]")), why);
                        }
                    }
                }
                select[k] = Selector {
                    include: s.include.iter().map(|p| Glob::new(p)).collect(),
                    exclude: s.exclude.iter().map(|p| Glob::new(p)).collect(),
                };
            }
            backends.push(Backend {
                name: b.name,
                cluster: b.cluster,
                path: b.path,
                authority,
                prefix,
                timeout_ms: b.timeout_ms,
                failure: b.failure,
                select,
            });
        }
        for (i, b) in backends.iter().enumerate() {
            if let Some(j) = backends[..i].iter().position(|o| o.name == b.name) {
                err(
                    format!("backends[{i}].name"),
                    format!("{:?} is also backends[{j}]'s name", b.name),
                );
            }
            if let Some(j) = backends[..i].iter().position(|o| o.prefix == b.prefix) {
                err(
                    format!("backends[{i}].prefix"),
                    format!("{:?} is also backends[{j}]'s prefix: names would collide", b.prefix),
                );
            }
        }
        if !(60..=30 * 24 * 3600).contains(&spec.session_ttl_secs) {
            err(
                "session_ttl_secs".into(),
                format!("must be 60..=2592000 (30 days), got {}", spec.session_ttl_secs),
            );
        }
        let ch = &spec.cluster_header;
        if ch.is_empty()
            || ch.starts_with(':')
            || !ch
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            err(
                "cluster_header".into(),
                format!("must be a lower-case header name, got {ch:?}"),
            );
        }
        let keys = match session::Keys::compile(&spec.session_keys) {
            Ok(k) => Some(k),
            Err(es) => {
                for (path, msg) in es {
                    err(path, msg);
                }
                None
            }
        };
        match keys {
            Some(keys) if errors.is_empty() => Ok(VirtualServer {
                name: name.to_owned(),
                backends,
                keys,
                ttl_secs: spec.session_ttl_secs,
                instructions: spec.instructions,
                cluster_header: spec.cluster_header,
            }),
            _ => Err(errors),
        }
    }
}

fn valid_server_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
