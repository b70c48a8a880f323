//! `virtual_servers/NAME.yaml`: one MCP endpoint over servers of `servers/` (docs/xds.md,
//! docs/virtual-server.md).
//!
//! Owns the file format and its checks, and turns a valid file into a [`VirtualServerDef`]:
//! its routes, its backends (server names: their clusters go wherever the virtual server is
//! served) and the `virtual_servers.<name>` section the module receives, checked here by the
//! module's own `VirtualServer::compile` and again, merged into each filter config that needs
//! it, by `FilterConfig::from_json` (`source.rs`). Session keys may live in `keys/NAME.json`
//! (or `.yaml`) beside the other files, so the virtual server's file holds no secret.

use mcp_policy_core::vserver::{VirtualServer, VirtualServerSpec, DEFAULT_CLUSTER_HEADER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::source::{list_or_none, parse_doc, validate_routes, Route, RouteSpec, Server, SourceError};

/// Where session key files live in the source directory.
pub const KEYS_DIR: &str = "keys/";

/// A validated virtual server.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct VirtualServerDef {
    pub name: String,
    /// The file it came from (for messages; not part of any resource).
    #[serde(skip)]
    pub file: String,
    /// Where clients reach it, on every listener that serves it.
    pub routes: Vec<Route>,
    /// Its backends' server names, in file order: each one's cluster (and endpoints) go with
    /// the virtual server onto every listener that serves it.
    pub backends: Vec<String>,
    /// The header the dispatch routes match on (the module sets it to the backend's cluster).
    pub cluster_header: String,
    /// The `virtual_servers.<name>` section of the module's config. Holds the session keys:
    /// never logged, never shown on `/status` (not serialized, not in `Debug`).
    #[serde(skip)]
    pub section: Value,
    /// `keys/NAME.json` when the keys came from a file (the module's key errors point there).
    #[serde(skip)]
    pub keys_file: Option<String>,
}

impl fmt::Debug for VirtualServerDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualServerDef")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("routes", &self.routes)
            .field("backends", &self.backends)
            .field("cluster_header", &self.cluster_header)
            .field("keys_file", &self.keys_file)
            .finish_non_exhaustive()
    }
}

impl VirtualServerDef {
    /// Where a problem the module reports at `virtual_servers.<name>.<path>` belongs: the field
    /// of this virtual server's file (or of its keys file) that the section entry came from.
    pub fn place(&self, path: &str) -> (String, String) {
        if let Some(rest) = path.strip_prefix("session_keys") {
            if let Some(keys) = &self.keys_file {
                return (keys.clone(), format!("keys{rest}"));
            }
        }
        let field = match path {
            "" => "name".to_owned(),
            _ => match path.strip_prefix("backends[").and_then(|r| r.split_once("].")) {
                // The backend's name and cluster are both its `server`.
                Some((i, "name" | "cluster")) => format!("backends[{i}].server"),
                _ => path.to_owned(),
            },
        };
        (self.file.clone(), field)
    }
}

// ---- the file format ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VirtualServerFile {
    #[serde(default)]
    name: Option<String>,
    routes: Vec<VsRouteSpec>,
    backends: Vec<BackendFile>,
    #[serde(default)]
    session_keys: Option<Vec<KeySpec>>,
    #[serde(default)]
    session_keys_file: Option<String>,
    #[serde(default)]
    session_ttl_secs: Option<u64>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    cluster_header: Option<String>,
}

/// A server route without `rewrite_prefix`: a virtual server answers on the path it is
/// reached at, and its backends are reached at their own `path`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VsRouteSpec {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendFile {
    server: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    tools: Option<Selector>,
    #[serde(default)]
    prompts: Option<Selector>,
    #[serde(default)]
    resources: Option<Selector>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    failure: Option<Failure>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Selector {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Failure {
    FailOpen,
    FailClosed,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySpec {
    id: String,
    key: String,
}

/// `keys/NAME.json`: `{"keys": [{"id": …, "key": …}, …]}`, the sealing key first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<KeySpec>,
}

/// Is `rel` (`keys/NAME.json`) a keys file name?
pub fn is_keys_path(rel: &str) -> bool {
    rel.strip_prefix(KEYS_DIR).is_some_and(|name| {
        !name.contains('/')
            && !name.starts_with('.')
            && [".json", ".yaml", ".yml"]
                .iter()
                .any(|e| name.ends_with(e) && name.len() > e.len())
    })
}

/// Parse and check `virtual_servers/<stem>.yaml` against the servers already read. `None` when
/// anything was wrong (every problem is in `errors`).
#[allow(clippy::too_many_arguments)]
pub fn validate(
    path: &str,
    stem: &str,
    bytes: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    servers: &BTreeMap<String, Server>,
    broken: &BTreeSet<String>,
    errors: &mut Vec<SourceError>,
) -> Option<VirtualServerDef> {
    let spec = parse_doc::<VirtualServerFile>(path, bytes, errors)?;
    let before = errors.len();
    let name = spec.name.clone().unwrap_or_else(|| stem.to_owned());
    if let Some(s) = servers.get(&name) {
        errors.push(SourceError::new(
            path,
            "name",
            format!(
                "{name:?} is also the server of {}: a virtual server needs a name of its own (it is what route metadata and policy see)",
                s.file
            ),
        ));
    }
    if spec.routes.is_empty() {
        errors.push(SourceError::new(path, "routes", "at least one route is required"));
    }
    let routes = validate_routes(
        path,
        spec.routes
            .into_iter()
            .map(|r| RouteSpec {
                prefix: r.prefix,
                path: r.path,
                rewrite_prefix: None,
            })
            .collect(),
        errors,
    );

    let mut backends = Vec::new();
    let mut section_backends = Vec::new();
    for (i, b) in spec.backends.into_iter().enumerate() {
        if !servers.contains_key(&b.server) && !broken.contains(&format!("server:{}", b.server)) {
            let known: Vec<&str> = servers.keys().map(String::as_str).collect();
            errors.push(SourceError::new(
                path,
                format!("backends[{i}].server"),
                format!(
                    "unknown server {:?} (a backend is a server of servers/: {})",
                    b.server,
                    list_or_none(&known)
                ),
            ));
        }
        // The module's backend entry: its name is the server's (policy judges its tools under
        // it), its cluster the server's cluster. Unset fields keep the module's defaults.
        let mut e = Map::new();
        e.insert("name".into(), Value::String(b.server.clone()));
        e.insert("cluster".into(), Value::String(b.server.clone()));
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                e.insert(k.to_owned(), v);
            }
        };
        put("prefix", b.prefix.map(Value::String));
        put("path", b.path.map(Value::String));
        put("authority", b.authority.map(Value::String));
        put("tools", b.tools.and_then(|s| serde_json::to_value(s).ok()));
        put("prompts", b.prompts.and_then(|s| serde_json::to_value(s).ok()));
        put("resources", b.resources.and_then(|s| serde_json::to_value(s).ok()));
        put("timeout_ms", b.timeout_ms.map(Value::from));
        put("failure", b.failure.and_then(|f| serde_json::to_value(f).ok()));
        section_backends.push(Value::Object(e));
        backends.push(b.server);
    }

    let before_keys = errors.len();
    let (keys, keys_file) = match (spec.session_keys, spec.session_keys_file) {
        (Some(keys), None) => (keys, None),
        (None, Some(file)) => {
            let rel = file.strip_prefix("./").unwrap_or(&file).to_owned();
            match files.get(&rel).filter(|_| is_keys_path(&rel)) {
                Some(kb) => match parse_doc::<KeysFile>(&rel, kb, errors) {
                    Some(k) => (k.keys, Some(rel)),
                    None => (Vec::new(), Some(rel)),
                },
                None => {
                    let known: Vec<&str> = files
                        .keys()
                        .filter(|k| is_keys_path(k))
                        .map(String::as_str)
                        .collect();
                    errors.push(SourceError::new(
                        path,
                        "session_keys_file",
                        format!(
                            "{file:?} is not a key file of the source directory (keys/NAME.json or .yaml, relative to it; found: {})",
                            list_or_none(&known)
                        ),
                    ));
                    (Vec::new(), Some(rel))
                }
            }
        }
        (Some(_), Some(_)) => {
            errors.push(SourceError::new(
                path,
                "session_keys_file",
                "set `session_keys` or `session_keys_file`, not both",
            ));
            (Vec::new(), None)
        }
        (None, None) => {
            errors.push(SourceError::new(
                path,
                "",
                "needs `session_keys_file` (keys/NAME.json) or `session_keys`: the keys that seal session ids",
            ));
            (Vec::new(), None)
        }
    };
    let keys_ok = errors.len() == before_keys;

    let cluster_header = spec
        .cluster_header
        .clone()
        .unwrap_or_else(|| DEFAULT_CLUSTER_HEADER.to_owned());
    let mut section = Map::new();
    section.insert("backends".into(), Value::Array(section_backends));
    section.insert(
        "session_keys".into(),
        serde_json::to_value(&keys).unwrap_or(Value::Array(Vec::new())),
    );
    if let Some(ttl) = spec.session_ttl_secs {
        section.insert("session_ttl_secs".into(), Value::from(ttl));
    }
    if let Some(text) = spec.instructions {
        section.insert("instructions".into(), Value::String(text));
    }
    if let Some(h) = spec.cluster_header {
        section.insert("cluster_header".into(), Value::String(h));
    }
    let section = Value::Object(section);
    let def = VirtualServerDef {
        name: name.clone(),
        file: path.to_owned(),
        routes,
        backends,
        cluster_header,
        section,
        keys_file,
    };

    // The module's own checks of the section (names, prefixes, selectors, timeouts, keys),
    // placed in the file the entry came from. Key problems already reported (a missing or
    // unreadable keys file) are not reported again as "no keys".
    let compiled = serde_json::from_value::<VirtualServerSpec>(def.section.clone())
        .map_err(|e| vec![(String::new(), format!("cannot be read by the module: {e}"))])
        .and_then(|s| VirtualServer::compile(&name, s));
    if let Err(es) = compiled {
        for (p, message) in es {
            if !keys_ok && p.starts_with("session_keys") {
                continue;
            }
            let (file, field) = def.place(&p);
            errors.push(SourceError::new(&file, field, message));
        }
    }
    if errors.len() != before {
        return None;
    }
    Some(def)
}
