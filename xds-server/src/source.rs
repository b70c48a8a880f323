//! The source of truth: a directory of declarative files, read into memory and validated into
//! a [`Model`].
//!
//! Owns the file formats (see `docs/xds.md`) and every check on them: unknown fields, names,
//! addresses, references between files, route conflicts, and the filter config through
//! [`FilterConfig::from_json`], the very function the Envoy module runs. It does not know about
//! Envoy's protobufs (that is `snapshot.rs`) nor about watching (that is `watch.rs`).
//!
//! Reading ([`SourceFiles::read_dir`]) is separate from validating ([`SourceFiles::validate`]),
//! so what is validated is exactly the bytes that were fingerprinted, and tests validate
//! in-memory files.

use mcp_policy_core::config::FilterConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::pins;
use crate::position;
use crate::version::Digester;
use crate::virtual_server::{self, VirtualServerDef};

/// Accepted names of the gateways file, in lookup order.
pub const GATEWAYS_FILES: [&str; 3] = ["gateways.yaml", "gateways.yml", "gateways.json"];
/// The default filter config ("default"); `filters/NAME.json` adds named ones.
pub const DEFAULT_FILTER_FILE: &str = "filter.json";
pub const DEFAULT_FILTER: &str = "default";
pub const DEFAULT_ACCESS_LOG: &str = "/dev/stdout";
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2000;
/// The directories of the source directory that are read (one level, no deeper).
pub const SUBDIRS: [&str; 6] = ["servers", "virtual_servers", "filters", "jwks", "keys", "pins"];

/// One problem in the source directory: which file, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceError {
    /// Path relative to the source directory, `/`-separated.
    pub file: String,
    /// Dotted path inside the file (`listeners[0].port`); empty for the whole file.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl SourceError {
    pub(crate) fn new(file: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            field: field.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, files in name order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the source directory", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

/// The files that make up the source of truth, as bytes, keyed by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Is this relative path one of ours? Everything else (editor swap files, READMEs) is ignored.
fn is_source_path(rel: &str) -> bool {
    let ext_ok = |name: &str, exts: &[&str]| {
        !name.starts_with('.') && exts.iter().any(|e| name.ends_with(e) && name.len() > e.len())
    };
    match rel.split_once('/') {
        None => GATEWAYS_FILES.contains(&rel) || rel == DEFAULT_FILTER_FILE,
        Some(("servers", name)) => !name.contains('/') && ext_ok(name, &[".yaml", ".yml", ".json"]),
        Some(("virtual_servers", name)) => !name.contains('/') && ext_ok(name, &[".yaml", ".yml", ".json"]),
        Some(("filters", name)) | Some(("jwks", name)) | Some(("pins", name)) => {
            !name.contains('/') && ext_ok(name, &[".json"])
        }
        Some(("keys", _)) => virtual_server::is_keys_path(rel),
        Some(_) => false,
    }
}

impl SourceFiles {
    /// Read every source file under `dir` (the top level and the directories of [`SUBDIRS`]).
    pub fn read_dir(dir: &Path) -> Result<SourceFiles, SourceErrors> {
        let mut files = BTreeMap::new();
        let mut errors = Vec::new();
        let top = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                return Err(SourceErrors(vec![SourceError::new(
                    &dir.display().to_string(),
                    "",
                    format!("cannot read the source directory: {e}"),
                )]))
            }
        };
        let mut entries: Vec<(String, std::path::PathBuf)> = Vec::new();
        for entry in top.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if SUBDIRS.contains(&name.as_str()) && path.is_dir() {
                if let Ok(sub) = std::fs::read_dir(&path) {
                    for e in sub.flatten() {
                        let n = e.file_name().to_string_lossy().into_owned();
                        entries.push((format!("{name}/{n}"), e.path()));
                    }
                }
            } else {
                entries.push((name, path));
            }
        }
        for (rel, path) in entries {
            if !is_source_path(&rel) || !path.is_file() {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    files.insert(rel, bytes);
                }
                Err(e) => errors.push(SourceError::new(&rel, "", format!("cannot read: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(SourceFiles { files })
        } else {
            Err(SourceErrors(errors))
        }
    }

    /// A digest of every file's path and bytes: equal fingerprints, equal inputs.
    pub fn fingerprint(&self) -> String {
        let mut d = Digester::new();
        for (path, bytes) in &self.files {
            d.part(path).part(bytes);
        }
        d.finish()
    }

    /// Parse and validate everything, returning every problem at once.
    pub fn validate(&self) -> Result<Model, SourceErrors> {
        let mut errors = Vec::new();

        // Filters first: listeners refer to them.
        let mut filters = BTreeMap::new();
        // Present but invalid: already reported; references to them are not reported again.
        let mut broken = BTreeSet::new();
        for (path, bytes) in &self.files {
            let name = if path == DEFAULT_FILTER_FILE {
                DEFAULT_FILTER.to_owned()
            } else if let Some(n) = path.strip_prefix("filters/").and_then(|n| n.strip_suffix(".json")) {
                n.to_owned()
            } else {
                continue;
            };
            if path != DEFAULT_FILTER_FILE && name == DEFAULT_FILTER {
                errors.push(SourceError::new(
                    path,
                    "",
                    format!("the name {DEFAULT_FILTER:?} is taken by {DEFAULT_FILTER_FILE}; rename this file"),
                ));
                continue;
            }
            match validate_filter(path, &name, bytes, &self.files, &mut errors) {
                Some(f) => {
                    filters.insert(name, f);
                }
                None => {
                    broken.insert(name);
                }
            }
        }

        // Servers.
        let mut servers: BTreeMap<String, Server> = BTreeMap::new();
        for (path, bytes) in &self.files {
            let Some(file_name) = path.strip_prefix("servers/") else {
                continue;
            };
            let stem = file_name.rsplit_once('.').map(|(s, _)| s).unwrap_or(file_name);
            let Some(spec) = parse_doc::<ServerSpec>(path, bytes, &mut errors) else {
                broken.insert(format!("server:{stem}"));
                continue;
            };
            let declared = spec.name.clone().unwrap_or_else(|| stem.to_owned());
            let Some(server) = validate_server(path, stem, spec, &mut errors) else {
                broken.insert(format!("server:{declared}"));
                continue;
            };
            {
                if let Some(other) = servers.get(&server.name) {
                    errors.push(SourceError::new(
                        path,
                        "name",
                        format!("server {:?} is already defined in {}", server.name, other.file),
                    ));
                } else {
                    servers.insert(server.name.clone(), server);
                }
            }
        }

        // Virtual servers: over the servers above.
        let mut virtual_servers: BTreeMap<String, VirtualServerDef> = BTreeMap::new();
        for (path, bytes) in &self.files {
            let Some(file_name) = path.strip_prefix("virtual_servers/") else {
                continue;
            };
            let stem = file_name.rsplit_once('.').map(|(s, _)| s).unwrap_or(file_name);
            match virtual_server::validate(path, stem, bytes, &self.files, &servers, &broken, &mut errors) {
                Some(v) => {
                    if let Some(other) = virtual_servers.get(&v.name) {
                        errors.push(SourceError::new(
                            path,
                            "name",
                            format!("virtual server {:?} is already defined in {}", v.name, other.file),
                        ));
                    } else {
                        virtual_servers.insert(v.name.clone(), v);
                    }
                }
                None => {
                    broken.insert(format!("virtual:{stem}"));
                }
            }
        }

        // Gateways: listeners and node groups.
        let gateway_files: Vec<&str> = GATEWAYS_FILES
            .iter()
            .copied()
            .filter(|f| self.files.contains_key(*f))
            .collect();
        let (groups, listeners) = match gateway_files.as_slice() {
            [] => {
                errors.push(SourceError::new(
                    GATEWAYS_FILES[0],
                    "",
                    "missing: the source directory needs a gateways file listing at least one listener",
                ));
                (Vec::new(), Vec::new())
            }
            [one] => match parse_doc::<GatewaysSpec>(one, &self.files[*one], &mut errors) {
                Some(spec) => {
                    let known = Known {
                        servers: &servers,
                        virtual_servers: &virtual_servers,
                        filters: &filters,
                        broken: &broken,
                    };
                    validate_gateways(one, spec, &known, &mut errors)
                }
                None => (Vec::new(), Vec::new()),
            },
            many => {
                errors.push(SourceError::new(
                    many[1],
                    "",
                    format!("only one gateways file may exist, found {}", many.join(", ")),
                ));
                (Vec::new(), Vec::new())
            }
        };

        // Pins: pushed inside every filter config with an integrity entry for their server.
        let pins = pins::read(&self.files, &servers, &virtual_servers, &mut errors);
        if errors.is_empty() {
            pins::merge(&pins, &listeners, &virtual_servers, &mut filters, &mut errors);
        }

        // Each filter config gets the sections of the virtual servers its listeners serve.
        if errors.is_empty() {
            merge_virtual_servers(&listeners, &virtual_servers, &mut filters, &mut errors);
        }

        // Problems found after parsing name a field: place it in the file as written.
        for e in errors
            .iter_mut()
            .chain(filters.values_mut().flat_map(|f| f.warnings.iter_mut()))
        {
            if e.line.is_none() {
                if let Some((l, c)) = self
                    .files
                    .get(&e.file)
                    .and_then(|b| position::locate(&e.file, b, &e.field))
                {
                    e.line = Some(l);
                    e.column = Some(c);
                }
            }
        }

        if errors.is_empty() {
            Ok(Model {
                groups,
                listeners,
                servers,
                virtual_servers,
                filters,
                pins,
            })
        } else {
            errors.sort_by(|a, b| a.file.cmp(&b.file));
            Err(SourceErrors(errors))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The validated model.
// ---------------------------------------------------------------------------------------------

/// Everything the snapshot builder needs, already checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    pub groups: Vec<NodeGroup>,
    pub listeners: Vec<ListenerDef>,
    pub servers: BTreeMap<String, Server>,
    pub virtual_servers: BTreeMap<String, VirtualServerDef>,
    pub filters: BTreeMap<String, Filter>,
    /// `pins/NAME.json` by server name (already merged into `filters`).
    pub pins: BTreeMap<String, crate::pins::PinSet>,
}

impl Model {
    /// Every filter config's warnings, files in name order.
    pub fn warnings(&self) -> Vec<SourceError> {
        let mut w: Vec<SourceError> = self.filters.values().flat_map(|f| f.warnings.iter().cloned()).collect();
        w.sort_by(|a, b| a.file.cmp(&b.file));
        w
    }
}

/// Nodes are put in the first group whose every criterion matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeGroup {
    pub name: String,
    /// `node.cluster` must equal this.
    pub cluster: Option<String>,
    /// Each key must be a string field of `node.metadata` with this value.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerDef {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// Only nodes of this group get the listener; `None`: every node.
    pub group: Option<String>,
    /// Servers routed on this listener, in file order.
    pub servers: Vec<String>,
    /// Virtual servers routed on this listener, in file order (their backends' clusters come
    /// with them; the backends need not be routed here themselves).
    pub virtual_servers: Vec<String>,
    /// Name of the filter config (`default` = filter.json).
    pub filter: String,
    pub access_log: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub name: String,
    /// The file it came from (for messages; not part of any resource).
    #[serde(skip)]
    pub file: String,
    pub routes: Vec<Route>,
    pub endpoints: Vec<Endpoint>,
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RouteMatch {
    /// Exact path.
    Path(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub matcher: RouteMatch,
    pub rewrite_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub name: String,
    #[serde(skip)]
    pub file: String,
    /// What the module receives: the document as written, unless JWKS files were inlined or
    /// virtual servers merged in (then re-serialized JSON).
    pub json: String,
    /// What the module's own check warns about (rules no request can reach): published
    /// anyway, shown by `check` and on `/status`.
    #[serde(skip)]
    pub warnings: Vec<SourceError>,
}

// ---------------------------------------------------------------------------------------------
// File formats (serde models). `deny_unknown_fields` everywhere: a typo is an error, not a
// silently ignored setting.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaysSpec {
    #[serde(default)]
    node_groups: Vec<NodeGroupSpec>,
    listeners: Vec<ListenerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeGroupSpec {
    name: String,
    #[serde(rename = "match")]
    matcher: MatchSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSpec {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerSpec {
    name: String,
    address: String,
    port: u16,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    servers: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<String>,
    /// Path of the JSON access log; `null` or "" disables it. Default `/dev/stdout`.
    #[serde(default = "default_access_log")]
    access_log: Option<String>,
}

fn default_access_log() -> Option<String> {
    Some(DEFAULT_ACCESS_LOG.to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    #[serde(default)]
    name: Option<String>,
    routes: Vec<RouteSpec>,
    endpoints: Vec<String>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteSpec {
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    #[serde(default)]
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) rewrite_prefix: Option<String>,
}

/// Parse YAML (or JSON for `.json` files) naming the path of the first structural problem.
pub(crate) fn parse_doc<T: for<'de> Deserialize<'de>>(
    file: &str,
    bytes: &[u8],
    errors: &mut Vec<SourceError>,
) -> Option<T> {
    let result = if file.ends_with(".json") {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            (
                path,
                strip_position(&inner.to_string()),
                Some((inner.line(), inner.column())),
            )
        })
    } else {
        let de = serde_yaml::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let pos = inner.location().map(|l| (l.line(), l.column()));
            (path, strip_position(&inner.to_string()), pos)
        })
    };
    match result {
        Ok(v) => Some(v),
        Err((path, message, pos)) => {
            let path = if path == "." { String::new() } else { path };
            // serde_yaml puts the path in front of nested messages too: it is in `field`.
            let message = match message.strip_prefix(&format!("{path}: ")) {
                Some(m) if !path.is_empty() => m.to_owned(),
                _ => message,
            };
            let mut e = SourceError::new(file, path, message);
            if let Some((l, c)) = pos {
                e.line = Some(l);
                e.column = Some(c);
            }
            errors.push(e);
            None
        }
    }
}

/// serde_json and serde_yaml append the position to messages; we report it separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Names that end up in Envoy stat names and resource names.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const NAME_RULE: &str = "must be 1-128 characters of [A-Za-z0-9_-]";

fn validate_filter(
    path: &str,
    name: &str,
    bytes: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    errors: &mut Vec<SourceError>,
) -> Option<Filter> {
    if !valid_name(name) {
        errors.push(SourceError::new(
            path,
            "",
            format!("filter name {name:?} (from the file name) {NAME_RULE}"),
        ));
        return None;
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        errors.push(SourceError::new(path, "", format!("not UTF-8: {e}")));
        return None;
    }
    let before = errors.len();
    let inlined = inline_jwks(path, bytes, files, errors);
    if errors.len() != before {
        return None;
    }
    let pushed: Vec<u8> = inlined
        .clone()
        .map(String::into_bytes)
        .unwrap_or_else(|| bytes.to_vec());
    // Exactly the module's own validation, on exactly the bytes Envoy will receive: a document
    // accepted here is accepted by the module.
    // Positions in a document we rewrote would point into text nobody wrote: find the path in
    // the file as written instead (inlining only replaces `jwks_file` values).
    let as_written = |e: mcp_policy_core::config::ConfigError| {
        let (line, column) = if inlined.is_some() {
            mcp_policy_core::locate::locate(bytes, &e.path).unzip()
        } else {
            (e.line, e.column)
        };
        SourceError {
            file: path.to_owned(),
            field: e.path,
            message: e.message,
            line,
            column,
        }
    };
    match FilterConfig::from_json(&pushed) {
        Ok(config) => Some(Filter {
            name: name.to_owned(),
            file: path.to_owned(),
            warnings: config.warnings().iter().cloned().map(as_written).collect(),
            json: String::from_utf8(pushed).unwrap_or_default(),
        }),
        Err(errs) => {
            errors.extend(errs.0.into_iter().map(as_written));
            None
        }
    }
}

/// The data plane never reads files or calls out for keys: each `identity.providers[i]
/// .jwks_file` naming `jwks/NAME.json` in the source directory is replaced by the document
/// itself (`jwks`). Returns the rewritten filter config, or `None` when nothing referred to a
/// file (the document is then pushed byte for byte). A key rotation is an edit of the JWKS
/// file, and travels to every Envoy like any other change.
fn inline_jwks(
    path: &str,
    bytes: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    errors: &mut Vec<SourceError>,
) -> Option<String> {
    // Unparseable: the module's parser reports it with its position.
    let mut doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let providers = doc.get_mut("identity")?.get_mut("providers")?.as_array_mut()?;
    let mut changed = false;
    for (i, p) in providers.iter_mut().enumerate() {
        let Some(obj) = p.as_object_mut() else { continue };
        if obj.contains_key("jwks") {
            continue; // both set: the module says "set exactly one"
        }
        let Some(file) = obj.get("jwks_file").and_then(|v| v.as_str()).map(str::to_owned) else {
            continue;
        };
        let field = format!("identity.providers[{i}].jwks_file");
        let key_path = file.strip_prefix("./").unwrap_or(&file);
        let Some(key_bytes) = files.get(key_path).filter(|_| key_path.starts_with("jwks/")) else {
            let known: Vec<&str> = files
                .keys()
                .filter(|k| k.starts_with("jwks/"))
                .map(String::as_str)
                .collect();
            errors.push(SourceError::new(
                path,
                field,
                format!(
                    "{file:?} is not a JWKS file of the source directory (jwks/NAME.json, relative to it; found: {})",
                    list_or_none(&known)
                ),
            ));
            continue;
        };
        match serde_json::from_slice::<serde_json::Value>(key_bytes) {
            Ok(jwks) => {
                obj.remove("jwks_file");
                obj.insert("jwks".to_owned(), jwks);
                changed = true;
            }
            Err(e) => {
                let mut err = SourceError::new(key_path, "", format!("not JSON: {}", strip_position(&e.to_string())));
                err.line = Some(e.line());
                err.column = Some(e.column());
                errors.push(err);
            }
        }
    }
    if changed {
        serde_json::to_string_pretty(&doc).ok()
    } else {
        None
    }
}

/// A server's or virtual server's `routes`: exactly one of `prefix`/`path`, absolute, each
/// listed once.
pub(crate) fn validate_routes(path: &str, specs: Vec<RouteSpec>, errors: &mut Vec<SourceError>) -> Vec<Route> {
    let mut routes = Vec::new();
    for (i, r) in specs.into_iter().enumerate() {
        let at = |f: &str| format!("routes[{i}]{f}");
        let matcher = match (r.prefix, r.path) {
            (Some(p), None) => RouteMatch::Prefix(p),
            (None, Some(p)) => RouteMatch::Path(p),
            (Some(_), Some(_)) => {
                errors.push(SourceError::new(
                    path,
                    at(""),
                    "set either `prefix` or `path`, not both",
                ));
                continue;
            }
            (None, None) => {
                errors.push(SourceError::new(path, at(""), "needs `prefix` or `path`"));
                continue;
            }
        };
        let (field, value) = match &matcher {
            RouteMatch::Prefix(p) => (".prefix", p),
            RouteMatch::Path(p) => (".path", p),
        };
        if !value.starts_with('/') {
            errors.push(SourceError::new(
                path,
                at(field),
                format!("must start with '/', got {value:?}"),
            ));
        }
        if let Some(rw) = &r.rewrite_prefix {
            if !rw.starts_with('/') {
                errors.push(SourceError::new(
                    path,
                    at(".rewrite_prefix"),
                    format!("must start with '/', got {rw:?}"),
                ));
            }
        }
        if routes.iter().any(|x: &Route| x.matcher == matcher) {
            errors.push(SourceError::new(path, at(field), format!("{value:?} is listed twice")));
        }
        routes.push(Route {
            matcher,
            rewrite_prefix: r.rewrite_prefix,
        });
    }
    routes
}

fn validate_server(path: &str, stem: &str, spec: ServerSpec, errors: &mut Vec<SourceError>) -> Option<Server> {
    let before = errors.len();
    let name = spec.name.unwrap_or_else(|| stem.to_owned());
    if !valid_name(&name) {
        errors.push(SourceError::new(path, "name", format!("{name:?} {NAME_RULE}")));
    }
    if spec.routes.is_empty() {
        errors.push(SourceError::new(path, "routes", "at least one route is required"));
    }
    let routes = validate_routes(path, spec.routes, errors);
    if spec.endpoints.is_empty() {
        errors.push(SourceError::new(path, "endpoints", "at least one endpoint is required"));
    }
    let mut endpoints = Vec::new();
    for (i, ep) in spec.endpoints.iter().enumerate() {
        match ep.parse::<SocketAddr>() {
            Ok(sa) if sa.port() != 0 => endpoints.push(Endpoint {
                ip: sa.ip().to_string(),
                port: sa.port(),
            }),
            Ok(_) => errors.push(SourceError::new(
                path,
                format!("endpoints[{i}]"),
                format!("port 0 in {ep:?}"),
            )),
            Err(_) => errors.push(SourceError::new(
                path,
                format!("endpoints[{i}]"),
                format!("{ep:?} is not IP:PORT (EDS endpoints are IP addresses; Envoy does not resolve names in EDS)"),
            )),
        }
    }
    let connect_timeout_ms = spec.connect_timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS);
    if connect_timeout_ms == 0 {
        errors.push(SourceError::new(path, "connect_timeout_ms", "must be greater than 0"));
    }
    if errors.len() != before {
        return None;
    }
    Some(Server {
        name,
        file: path.to_owned(),
        routes,
        endpoints,
        connect_timeout_ms,
    })
}

/// What the gateways file may refer to.
struct Known<'a> {
    servers: &'a BTreeMap<String, Server>,
    virtual_servers: &'a BTreeMap<String, VirtualServerDef>,
    filters: &'a BTreeMap<String, Filter>,
    /// Present but invalid (already reported): `server:NAME`, `virtual:NAME`, filter names.
    broken: &'a BTreeSet<String>,
}

fn validate_gateways(
    file: &str,
    spec: GatewaysSpec,
    known: &Known<'_>,
    errors: &mut Vec<SourceError>,
) -> (Vec<NodeGroup>, Vec<ListenerDef>) {
    let Known {
        servers,
        virtual_servers,
        filters,
        broken,
    } = *known;
    let mut groups: Vec<NodeGroup> = Vec::new();
    for (i, g) in spec.node_groups.into_iter().enumerate() {
        let at = |f: &str| format!("node_groups[{i}]{f}");
        if !valid_name(&g.name) {
            errors.push(SourceError::new(file, at(".name"), format!("{:?} {NAME_RULE}", g.name)));
        }
        if groups.iter().any(|x| x.name == g.name) {
            errors.push(SourceError::new(
                file,
                at(".name"),
                format!("group {:?} is defined twice", g.name),
            ));
        }
        if g.matcher.cluster.is_none() && g.matcher.metadata.is_empty() {
            errors.push(SourceError::new(
                file,
                at(".match"),
                "needs `cluster` and/or `metadata` (an empty match would take every node)",
            ));
        }
        groups.push(NodeGroup {
            name: g.name,
            cluster: g.matcher.cluster,
            metadata: g.matcher.metadata,
        });
    }

    if spec.listeners.is_empty() {
        errors.push(SourceError::new(file, "listeners", "at least one listener is required"));
    }
    let mut listeners: Vec<ListenerDef> = Vec::new();
    let mut binds: Vec<(String, u16, Option<String>, String)> = Vec::new();
    for (i, l) in spec.listeners.into_iter().enumerate() {
        let at = |f: &str| format!("listeners[{i}]{f}");
        if !valid_name(&l.name) {
            errors.push(SourceError::new(file, at(".name"), format!("{:?} {NAME_RULE}", l.name)));
        }
        if listeners.iter().any(|x| x.name == l.name) {
            errors.push(SourceError::new(
                file,
                at(".name"),
                format!("listener {:?} is defined twice", l.name),
            ));
        }
        let address = match l.address.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => {
                errors.push(SourceError::new(
                    file,
                    at(".address"),
                    format!("{:?} is not an IP address", l.address),
                ));
                l.address.clone()
            }
        };
        // Port 0 lets each Envoy pick its own port (tests); two listeners may share it. Two
        // listeners clash when some node would get both (their groups overlap).
        if l.port != 0 {
            let clash = binds.iter().find(|(a, p, g, _)| {
                *a == address && *p == l.port && (g.is_none() || l.group.is_none() || *g == l.group)
            });
            if let Some((_, _, _, other)) = clash {
                errors.push(SourceError::new(
                    file,
                    at(".port"),
                    format!("{}:{} is already used by listener {other:?}", address, l.port),
                ));
            }
            binds.push((address.clone(), l.port, l.group.clone(), l.name.clone()));
        }
        if let Some(g) = &l.group {
            if !groups.iter().any(|x| &x.name == g) {
                let known: Vec<&str> = groups.iter().map(|x| x.name.as_str()).collect();
                errors.push(SourceError::new(
                    file,
                    at(".group"),
                    format!("unknown node group {g:?} (defined: {})", list_or_none(&known)),
                ));
            }
        }
        let (server_names, vs_names) = match l.servers {
            None => (
                servers.keys().cloned().collect::<Vec<_>>(),
                virtual_servers.keys().cloned().collect::<Vec<_>>(),
            ),
            Some(list) => {
                if list.is_empty() {
                    errors.push(SourceError::new(
                        file,
                        at(".servers"),
                        "an empty list routes nothing; omit it for all servers",
                    ));
                }
                let (mut plain, mut virt) = (Vec::new(), Vec::new());
                for (j, s) in list.into_iter().enumerate() {
                    if servers.contains_key(&s) {
                        plain.push(s);
                    } else if virtual_servers.contains_key(&s) {
                        virt.push(s);
                    } else if !broken.contains(&format!("server:{s}")) && !broken.contains(&format!("virtual:{s}")) {
                        let names: Vec<&str> = servers.keys().map(String::as_str).collect();
                        let mut defined = format!("defined in servers/: {}", list_or_none(&names));
                        if !virtual_servers.is_empty() {
                            let v: Vec<&str> = virtual_servers.keys().map(String::as_str).collect();
                            defined.push_str(&format!("; in virtual_servers/: {}", v.join(", ")));
                        }
                        errors.push(SourceError::new(
                            file,
                            format!("listeners[{i}].servers[{j}]"),
                            format!("unknown server {s:?} ({defined})"),
                        ));
                    }
                }
                (plain, virt)
            }
        };
        if server_names.is_empty() && vs_names.is_empty() && servers.is_empty() {
            errors.push(SourceError::new(
                file,
                at(".servers"),
                "no servers are defined (add servers/NAME.yaml)",
            ));
        }
        // Two servers (plain or virtual) claiming the same match on one listener: Envoy would
        // silently pick the first, so refuse.
        let routed = server_names
            .iter()
            .filter_map(|n| servers.get(n))
            .map(|s| (s.name.as_str(), s.file.as_str(), s.routes.as_slice()))
            .chain(
                vs_names
                    .iter()
                    .filter_map(|n| virtual_servers.get(n))
                    .map(|v| (v.name.as_str(), v.file.as_str(), v.routes.as_slice())),
            );
        let mut claimed: BTreeMap<&RouteMatch, (&str, &str)> = BTreeMap::new();
        for (name, server_file, routes) in routed {
            for (k, r) in routes.iter().enumerate() {
                if let Some((prev, prev_file)) = claimed.get(&r.matcher) {
                    let field = match r.matcher {
                        RouteMatch::Prefix(_) => "prefix",
                        RouteMatch::Path(_) => "path",
                    };
                    errors.push(SourceError::new(
                        server_file,
                        format!("routes[{k}].{field}"),
                        format!(
                            "{:?} is also routed to server {prev:?} ({prev_file}) on listener {:?}",
                            match &r.matcher {
                                RouteMatch::Prefix(p) | RouteMatch::Path(p) => p,
                            },
                            l.name
                        ),
                    ));
                } else {
                    claimed.insert(&r.matcher, (name, server_file));
                }
            }
        }
        let filter = l.filter.unwrap_or_else(|| DEFAULT_FILTER.to_owned());
        if !filters.contains_key(&filter) && !broken.contains(&filter) {
            let hint = if filter == DEFAULT_FILTER {
                format!("create {DEFAULT_FILTER_FILE}")
            } else {
                format!("create filters/{filter}.json")
            };
            errors.push(SourceError::new(
                file,
                at(".filter"),
                format!("unknown filter config {filter:?}: {hint}"),
            ));
        }
        let access_log = l.access_log.filter(|p| !p.is_empty());
        listeners.push(ListenerDef {
            name: l.name,
            address,
            port: l.port,
            group: l.group,
            servers: server_names,
            virtual_servers: vs_names,
            filter,
            access_log,
        });
    }
    (groups, listeners)
}

/// Every filter config used by a listener that serves virtual servers gets their sections
/// under `virtual_servers`, and the merged document is checked again by the module's parser
/// (a virtual server named like the config's `server`, say). Problems in a merged section are
/// placed in the virtual server's file; the rest in the filter file as written.
fn merge_virtual_servers(
    listeners: &[ListenerDef],
    virtual_servers: &BTreeMap<String, VirtualServerDef>,
    filters: &mut BTreeMap<String, Filter>,
    errors: &mut Vec<SourceError>,
) {
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in listeners {
        for v in &l.virtual_servers {
            wanted.entry(l.filter.as_str()).or_default().insert(v.as_str());
        }
    }
    for (filter_name, names) in wanted {
        let Some(f) = filters.get_mut(filter_name) else {
            continue;
        };
        // The module accepted this document: a JSON object whose `virtual_servers`, if any,
        // is an object.
        let mut doc: serde_json::Value = match serde_json::from_str(&f.json) {
            Ok(d) => d,
            Err(e) => {
                errors.push(SourceError::new(
                    &f.file,
                    "",
                    format!("cannot merge virtual servers: {e}"),
                ));
                continue;
            }
        };
        let Some(section) = doc.as_object_mut().and_then(|o| {
            o.entry("virtual_servers")
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()))
                .as_object_mut()
        }) else {
            errors.push(SourceError::new(
                &f.file,
                "virtual_servers",
                "must be an object to take the virtual servers of virtual_servers/",
            ));
            continue;
        };
        let mut clash = false;
        for name in &names {
            let Some(v) = virtual_servers.get(*name) else { continue };
            if section.contains_key(*name) {
                errors.push(SourceError::new(
                    &v.file,
                    "name",
                    format!(
                        "virtual server {name:?} is also declared in {} (virtual_servers.{name}), the filter config of a listener serving it: declare it in one place",
                        f.file
                    ),
                ));
                clash = true;
            } else {
                section.insert((*name).to_owned(), v.section.clone());
            }
        }
        if clash {
            continue;
        }
        let place = |e: mcp_policy_core::config::ConfigError| -> SourceError {
            let from_dir = names.iter().filter_map(|n| virtual_servers.get(*n)).find_map(|v| {
                let rest = e.path.strip_prefix("virtual_servers.")?.strip_prefix(v.name.as_str())?;
                match rest.strip_prefix('.') {
                    Some(inner) => Some((v, inner)),
                    None if rest.is_empty() => Some((v, "")),
                    None => None,
                }
            });
            match from_dir {
                Some((v, inner)) => {
                    let (file, field) = v.place(inner);
                    SourceError::new(&file, field, e.message)
                }
                // Positions in the merged text would point at nothing anyone wrote: placed in
                // the file as written afterwards.
                None => SourceError::new(&f.file, e.path, e.message),
            }
        };
        let json = match serde_json::to_string_pretty(&doc) {
            Ok(j) => j,
            Err(e) => {
                errors.push(SourceError::new(
                    &f.file,
                    "",
                    format!("cannot merge virtual servers: {e}"),
                ));
                continue;
            }
        };
        match FilterConfig::from_json(json.as_bytes()) {
            Ok(config) => {
                f.warnings = config.warnings().iter().cloned().map(place).collect();
                f.json = json;
            }
            Err(es) => errors.extend(es.0.into_iter().map(place)),
        }
    }
}

pub(crate) fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Names of all source files (for the status page).
pub fn file_names(files: &SourceFiles) -> BTreeSet<String> {
    files.files.keys().cloned().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn files(entries: &[(&str, &str)]) -> SourceFiles {
        SourceFiles {
            files: entries
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect(),
        }
    }

    pub const GATEWAYS: &str = "\
node_groups:
  - name: edge
    match: { cluster: edge }
listeners:
  - name: mcp_gateway
    address: 127.0.0.1
    port: 10000
  - name: edge_only
    address: 127.0.0.1
    port: 10001
    group: edge
    servers: [alpha]
";
    pub const DEMO: &str = "\
routes:
  - path: /mcp
  - path: /demo/mcp
    rewrite_prefix: /mcp
endpoints: [\"127.0.0.1:8000\"]
";
    pub const ALPHA: &str = "\
name: alpha
routes:
  - prefix: /alpha/
    rewrite_prefix: /
endpoints: [\"127.0.0.1:8001\", \"127.0.0.2:8001\"]
connect_timeout_ms: 500
";

    pub fn example() -> SourceFiles {
        files(&[
            ("gateways.yaml", GATEWAYS),
            ("servers/demo.yaml", DEMO),
            ("servers/alpha.yaml", ALPHA),
            (
                "filter.json",
                r#"{"pass_through": true, "limits": {"max_request_body_bytes": 65536}}"#,
            ),
        ])
    }

    fn errors_of(f: SourceFiles) -> Vec<SourceError> {
        f.validate().unwrap_err().0
    }

    #[test]
    fn example_directory_validates_into_the_model() {
        let m = example().validate().unwrap();
        assert_eq!(m.listeners.len(), 2);
        assert_eq!(m.listeners[0].servers, vec!["alpha", "demo"]);
        assert_eq!(m.listeners[0].filter, "default");
        assert_eq!(m.listeners[0].access_log.as_deref(), Some("/dev/stdout"));
        assert_eq!(m.listeners[1].group.as_deref(), Some("edge"));
        assert_eq!(m.servers["demo"].connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
        assert_eq!(m.servers["alpha"].endpoints.len(), 2);
        assert_eq!(
            m.filters["default"].json,
            r#"{"pass_through": true, "limits": {"max_request_body_bytes": 65536}}"#
        );
    }

    #[test]
    fn unknown_field_in_a_server_file_names_file_field_and_line() {
        let mut f = example();
        f.files.insert(
            "servers/demo.yaml".into(),
            b"routes:\n  - path: /mcp\n    rewrite: /x\nendpoints: []\n".to_vec(),
        );
        let e = errors_of(f);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].file, "servers/demo.yaml");
        assert_eq!(e[0].field, "routes[0].rewrite");
        assert!(e[0].message.contains("unknown field `rewrite`"), "{}", e[0].message);
        assert_eq!(e[0].line, Some(3));
        assert!(e[0].to_string().starts_with("servers/demo.yaml:3:"), "{}", e[0]);
    }

    #[test]
    fn invalid_filter_config_is_reported_with_the_modules_own_error() {
        let mut f = example();
        f.files.insert(
            "filter.json".into(),
            b"{\"pass_through\": true, \"limits\": {\"max_request_body_bytes\": 0}}".to_vec(),
        );
        let e = errors_of(f);
        // Only the cause: the listener's reference to the broken file is not reported again.
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].file.as_str(), e[0].field.as_str()),
            ("filter.json", "limits.max_request_body_bytes")
        );
        assert!(e[0].message.contains("greater than 0"), "{}", e[0]);
        // A semantic error carries its position too.
        assert_eq!((e[0].line, e[0].column), (Some(1), Some(61)));
        assert!(
            e[0].to_string()
                .starts_with("filter.json:1:61: limits.max_request_body_bytes"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn unknown_field_in_filter_config_is_refused_with_position() {
        let mut f = example();
        f.files.insert("filter.json".into(), b"{\n \"limitz\": {}\n}".to_vec());
        let e = errors_of(f);
        let fe = e.iter().find(|e| e.file == "filter.json").unwrap();
        assert_eq!(fe.field, "limitz");
        assert_eq!(fe.line, Some(2));
    }

    #[test]
    fn dangling_references_are_resolved_or_refused() {
        let mut f = example();
        f.files.insert(
            "gateways.yaml".into(),
            b"listeners:\n  - {name: a, address: 127.0.0.1, port: 1, servers: [demo, nope], group: g, filter: strict}\n".to_vec(),
        );
        let e = errors_of(f);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["listeners[0].group", "listeners[0].servers[1]", "listeners[0].filter"],
            "{e:?}"
        );
        assert!(
            e[1].message
                .contains("unknown server \"nope\" (defined in servers/: alpha, demo)"),
            "{}",
            e[1]
        );
        assert!(e[2].message.contains("filters/strict.json"), "{}", e[2]);
    }

    #[test]
    fn two_servers_claiming_one_route_on_a_listener_are_refused() {
        let mut f = example();
        f.files.insert(
            "servers/other.yaml".into(),
            b"routes: [{path: /mcp}]\nendpoints: ['127.0.0.1:9']\n".to_vec(),
        );
        let e = errors_of(f);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].file, "servers/other.yaml");
        assert_eq!(e[0].field, "routes[0].path");
        assert!(
            e[0].message
                .contains("also routed to server \"demo\" (servers/demo.yaml)"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn hostnames_and_bad_addresses_are_refused() {
        let mut f = example();
        f.files.insert(
            "servers/demo.yaml".into(),
            b"routes: [{path: /x}]\nendpoints: ['mcp.internal:80']\n".to_vec(),
        );
        f.files.insert(
            "gateways.yaml".into(),
            b"listeners: [{name: a, address: localhost, port: 1}]\n".to_vec(),
        );
        let e = errors_of(f);
        assert!(
            e.iter()
                .any(|e| e.file == "servers/demo.yaml" && e.field == "endpoints[0]"),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.file == "gateways.yaml" && e.field == "listeners[0].address"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_gateways_file_is_an_error_not_an_empty_world() {
        let mut f = example();
        f.files.remove("gateways.yaml");
        let e = errors_of(f);
        assert_eq!(e[0].file, "gateways.yaml");
        assert!(e[0].message.starts_with("missing"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = files(&[
            (
                "gateways.yaml",
                "listeners: [{name: 'bad name', address: 1.2.3.4, port: 1}]\n",
            ),
            (
                "servers/s.yaml",
                "routes: [{prefix: nope}]\nendpoints: ['1.2.3.4:0']\nconnect_timeout_ms: 0\n",
            ),
            ("filter.json", r#"{"pass_through": true}"#),
        ]);
        let e = errors_of(f);
        assert!(e.len() >= 4, "{e:?}");
    }

    const JWKS: &str = include_str!("../testdata/jwks.json");

    fn with_provider(jwks_ref: &str) -> SourceFiles {
        let mut f = example();
        let filter = format!(
            r#"{{"identity": {{"providers": [{{"name": "idp", "issuer": "https://idp.example", "audiences": ["mcp"], {jwks_ref}}}]}}}}"#
        );
        f.files.insert("filter.json".into(), filter.into_bytes());
        f.files.insert("jwks/idp.json".into(), JWKS.as_bytes().to_vec());
        f
    }

    #[test]
    fn jwks_file_is_inlined_from_the_source_directory_and_validated() {
        let m = with_provider(r#""jwks_file": "jwks/idp.json""#).validate().unwrap();
        let pushed: serde_json::Value = serde_json::from_str(&m.filters["default"].json).unwrap();
        let p = &pushed["identity"]["providers"][0];
        assert!(p.get("jwks_file").is_none());
        assert_eq!(p["jwks"]["keys"][0]["kid"], "rsa-1");
        // The module itself accepts what is pushed (no file access needed on the data plane).
        FilterConfig::from_json(m.filters["default"].json.as_bytes()).unwrap();
    }

    #[test]
    fn jwks_rotation_changes_the_pushed_config() {
        let a = with_provider(r#""jwks_file": "jwks/idp.json""#).validate().unwrap();
        let mut f = with_provider(r#""jwks_file": "jwks/idp.json""#);
        let rotated = JWKS.replace("rsa-1", "rsa-2");
        f.files.insert("jwks/idp.json".into(), rotated.into_bytes());
        let b = f.validate().unwrap();
        assert_ne!(a.filters["default"].json, b.filters["default"].json);
    }

    #[test]
    fn jwks_file_outside_the_source_directory_or_missing_is_refused() {
        for bad in ["/etc/keys.json", "../jwks/idp.json", "jwks/nope.json"] {
            let e = errors_of(with_provider(&format!(r#""jwks_file": "{bad}""#)));
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!(
                (e[0].file.as_str(), e[0].field.as_str()),
                ("filter.json", "identity.providers[0].jwks_file")
            );
            assert!(e[0].message.contains("found: jwks/idp.json"), "{}", e[0]);
        }
        let mut f = with_provider(r#""jwks_file": "jwks/idp.json""#);
        f.files.insert("jwks/idp.json".into(), b"{nope".to_vec());
        let e = errors_of(f);
        assert_eq!(e[0].file, "jwks/idp.json");
    }

    #[test]
    fn only_source_paths_are_read() {
        assert!(is_source_path("jwks/idp.json"));
        assert!(is_source_path("gateways.yaml"));
        assert!(is_source_path("filter.json"));
        assert!(is_source_path("servers/a.yml"));
        assert!(is_source_path("filters/strict.json"));
        assert!(is_source_path("pins/demo.json"));
        assert!(!is_source_path("pins/demo.yaml"));
        assert!(!is_source_path("servers/.a.yaml.swp"));
        assert!(!is_source_path("servers/a.yaml~"));
        assert!(!is_source_path("README.md"));
        assert!(!is_source_path("servers/x/a.yaml"));
    }

    #[test]
    fn fingerprint_changes_with_any_byte_and_only_then() {
        let a = example();
        let mut b = example();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.files.get_mut("filter.json").unwrap().push(b' ');
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
