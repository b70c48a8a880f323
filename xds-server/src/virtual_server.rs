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
                    let known: Vec<&str> = files.keys().filter(|k| is_keys_path(k)).map(String::as_str).collect();
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::tests::example;
    use crate::source::{RouteMatch, SourceFiles};
    use mcp_policy_core::config::FilterConfig;
    use mcp_policy_core::vserver::FailureMode;

    pub const KEY1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    pub const KEY2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    pub const TOOLS: &str = "\
routes:
  - path: /tools/mcp
backends:
  - server: demo
    prefix: d
    authority: 127.0.0.1
    tools: { include: [echo, add] }
  - server: alpha
    failure: fail_open
    timeout_ms: 5000
session_keys_file: keys/tools.json
instructions: One endpoint.
";

    pub fn keys_json(keys: &[(&str, &str)]) -> String {
        let keys: Vec<String> = keys
            .iter()
            .map(|(id, k)| format!(r#"{{"id": "{id}", "key": "{k}"}}"#))
            .collect();
        format!("{{\n  \"keys\": [\n    {}\n  ]\n}}\n", keys.join(",\n    "))
    }

    /// The example directory plus virtual server `tools` over `demo` and `alpha`.
    pub fn with_tools() -> SourceFiles {
        let mut f = example();
        f.files.insert("virtual_servers/tools.yaml".into(), TOOLS.into());
        f.files
            .insert("keys/tools.json".into(), keys_json(&[("k1", KEY1)]).into_bytes());
        f
    }

    fn set(f: &mut SourceFiles, path: &str, text: &str) {
        f.files.insert(path.into(), text.as_bytes().to_vec());
    }

    fn errors_of(f: SourceFiles) -> Vec<SourceError> {
        f.validate().unwrap_err().0
    }

    /// (file, field, line) of each problem.
    fn places(e: &[SourceError]) -> Vec<(&str, &str, Option<usize>)> {
        e.iter().map(|e| (e.file.as_str(), e.field.as_str(), e.line)).collect()
    }

    #[test]
    fn a_virtual_server_file_becomes_routes_backends_and_the_modules_section() {
        let m = with_tools().validate().unwrap();
        let v = &m.virtual_servers["tools"];
        assert_eq!(v.routes[0].matcher, RouteMatch::Path("/tools/mcp".into()));
        assert_eq!(v.backends, vec!["demo", "alpha"]);
        assert_eq!(v.cluster_header, "x-mcp-backend-cluster");
        assert_eq!(v.keys_file.as_deref(), Some("keys/tools.json"));
        // Served where servers are omitted (every server and virtual server), not on the
        // listener that lists only alpha.
        assert_eq!(m.listeners[0].virtual_servers, vec!["tools"]);
        assert!(m.listeners[1].virtual_servers.is_empty());

        // The pushed filter config: filter.json's own settings plus the section, and the module
        // itself compiles it to the backends the file describes.
        let pushed: Value = serde_json::from_str(&m.filters["default"].json).unwrap();
        assert_eq!(pushed["limits"]["max_request_body_bytes"], 65536);
        let section = &pushed["virtual_servers"]["tools"];
        assert_eq!(section["session_keys"][0]["key"], KEY1);
        assert_eq!(section["backends"][0]["cluster"], "demo");
        assert!(
            section["backends"][1].get("prefix").is_none(),
            "defaults stay the module's"
        );
        let config = FilterConfig::from_json(m.filters["default"].json.as_bytes()).unwrap();
        let vs = &config.virtual_servers["tools"];
        let b: Vec<(&str, &str, &str, &str, u64, FailureMode)> = vs
            .backends
            .iter()
            .map(|b| {
                (
                    b.name.as_str(),
                    b.cluster.as_str(),
                    b.prefix.as_str(),
                    b.authority.as_str(),
                    b.timeout_ms,
                    b.failure,
                )
            })
            .collect();
        assert_eq!(
            b,
            vec![
                ("demo", "demo", "d", "127.0.0.1", 10_000, FailureMode::FailClosed),
                ("alpha", "alpha", "alpha", "alpha", 5000, FailureMode::FailOpen),
            ]
        );
        assert!(vs.backends[0].selects(mcp_policy_core::policy::Kind::Tool, "add"));
        assert!(!vs.backends[0].selects(mcp_policy_core::policy::Kind::Tool, "sleep"));
        assert_eq!(vs.instructions.as_deref(), Some("One endpoint."));
    }

    #[test]
    fn session_keys_never_show_in_debug_output() {
        let m = with_tools().validate().unwrap();
        let text = format!("{:?}", m.virtual_servers);
        assert!(text.contains("tools") && !text.contains(KEY1), "{text}");
    }

    #[test]
    fn inline_session_keys_work_too() {
        let mut f = with_tools();
        f.files.remove("keys/tools.json");
        let inline = TOOLS.replace(
            "session_keys_file: keys/tools.json",
            &format!("session_keys:\n  - {{ id: k1, key: \"{KEY1}\" }}"),
        );
        set(&mut f, "virtual_servers/tools.yaml", &inline);
        let m = f.validate().unwrap();
        assert_eq!(m.virtual_servers["tools"].keys_file, None);
        let pushed: Value = serde_json::from_str(&m.filters["default"].json).unwrap();
        assert_eq!(pushed["virtual_servers"]["tools"]["session_keys"][0]["id"], "k1");
    }

    #[test]
    fn unknown_backend_server_is_named_with_file_field_and_line() {
        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace("server: alpha", "server: nope"),
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "backends[1].server", Some(8))],
            "{e:?}"
        );
        assert!(
            e[0].message
                .contains("unknown server \"nope\" (a backend is a server of servers/: alpha, demo)"),
            "{}",
            e[0]
        );
        assert!(
            e[0].to_string()
                .starts_with("virtual_servers/tools.yaml:8:13: backends[1].server:"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn duplicate_prefixes_and_backends_are_refused_by_the_modules_own_check() {
        let mut f = with_tools();
        let text = TOOLS.replace("  - server: alpha\n", "  - server: alpha\n    prefix: d\n");
        set(&mut f, "virtual_servers/tools.yaml", &text);
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "backends[1].prefix", Some(9))],
            "{e:?}"
        );
        assert!(e[0].message.contains("\"d\" is also backends[0]'s prefix"), "{}", e[0]);

        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace("server: alpha", "server: demo\n    prefix: d2"),
        );
        let e = errors_of(f);
        // The module's `name` (and `cluster`) of a backend is its `server`.
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "backends[1].server", Some(8))],
            "{e:?}"
        );
        assert!(e[0].message.contains("also backends[0]'s name"), "{}", e[0]);
    }

    #[test]
    fn module_checks_of_fields_point_at_the_field() {
        let mut f = with_tools();
        let text = TOOLS
            .replace("timeout_ms: 5000", "timeout_ms: 0")
            .replace("include: [echo, add]", "include: [echo, \"re:^a\"]");
        set(&mut f, "virtual_servers/tools.yaml", &text);
        let e = errors_of(f);
        let p = places(&e);
        assert!(
            p.contains(&("virtual_servers/tools.yaml", "backends[0].tools.include[1]", Some(7))),
            "{e:?}"
        );
        assert!(
            p.contains(&("virtual_servers/tools.yaml", "backends[1].timeout_ms", Some(10))),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_fields_and_a_rewrite_are_parse_errors_with_their_line() {
        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace(
                "  - path: /tools/mcp\n",
                "  - path: /tools/mcp\n    rewrite_prefix: /mcp\n",
            ),
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "routes[0].rewrite_prefix", Some(3))],
            "{e:?}"
        );

        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace("failure: fail_open", "failure: open"),
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "backends[1].failure", Some(9))],
            "{e:?}"
        );
        assert!(
            e[0].message.starts_with("unknown variant `open`, expected `fail_open`"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn missing_or_bad_session_keys_are_reported_where_they_are() {
        // No keys at all.
        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace("session_keys_file: keys/tools.json\n", ""),
        );
        let e = errors_of(f);
        assert_eq!(places(&e), vec![("virtual_servers/tools.yaml", "", None)], "{e:?}");
        assert!(e[0].message.contains("needs `session_keys_file`"), "{}", e[0]);

        // A file that is not there, or not under keys/: the ones that are are listed.
        for bad in [
            "keys/nope.json",
            "../keys/tools.json",
            "/etc/keys.json",
            "jwks/idp.json",
        ] {
            let mut f = with_tools();
            set(
                &mut f,
                "virtual_servers/tools.yaml",
                &TOOLS.replace("keys/tools.json", bad),
            );
            let e = errors_of(f);
            assert_eq!(
                places(&e),
                vec![("virtual_servers/tools.yaml", "session_keys_file", Some(11))],
                "{bad}: {e:?}"
            );
            assert!(e[0].message.contains("found: keys/tools.json"), "{}", e[0]);
        }

        // A key that is not 32 bytes: in the keys file, at the key.
        let mut f = with_tools();
        set(
            &mut f,
            "keys/tools.json",
            &keys_json(&[("k2", KEY2), ("k1", "c2hvcnQ=")]),
        );
        let e = errors_of(f);
        assert_eq!(places(&e), vec![("keys/tools.json", "keys[1].key", Some(4))], "{e:?}");
        assert!(e[0].message.contains("32 bytes, got 5"), "{}", e[0]);
        assert!(!e[0].to_string().contains("c2hvcnQ"), "a key is never echoed: {}", e[0]);

        // An empty list, an unknown field, both ways at once.
        let mut f = with_tools();
        set(&mut f, "keys/tools.json", "{\"keys\": []}");
        let e = errors_of(f);
        assert_eq!(places(&e), vec![("keys/tools.json", "keys", Some(1))], "{e:?}");
        let mut f = with_tools();
        set(&mut f, "keys/tools.json", "{\"keys\": [], \"extra\": 1}");
        assert_eq!(places(&errors_of(f)), vec![("keys/tools.json", "extra", Some(1))]);
        let mut f = with_tools();
        let both = format!("{TOOLS}session_keys: [{{id: k1, key: \"{KEY1}\"}}]\n");
        set(&mut f, "virtual_servers/tools.yaml", &both);
        assert_eq!(
            places(&errors_of(f)),
            vec![("virtual_servers/tools.yaml", "session_keys_file", Some(11))]
        );
    }

    #[test]
    fn names_may_not_collide_with_servers_or_the_filter_config() {
        // Named like a server.
        let mut f = with_tools();
        set(&mut f, "virtual_servers/tools.yaml", &format!("name: demo\n{TOOLS}"));
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![
                ("virtual_servers/tools.yaml", "name", Some(1)),
                // The module's own check: a backend may not be named like its virtual server.
                ("virtual_servers/tools.yaml", "backends[0].server", Some(5)),
            ],
            "{e:?}"
        );
        assert!(e[0].message.contains("servers/demo.yaml"), "{}", e[0]);

        // Also in filter.json's own virtual_servers.
        let mut f = with_tools();
        let static_vs = format!(
            r#"{{"pass_through": true, "virtual_servers": {{"tools": {{"backends": [{{"name": "demo", "cluster": "demo"}}], "session_keys": [{{"id": "k", "key": "{KEY1}"}}]}}}}}}"#
        );
        set(&mut f, "filter.json", &static_vs);
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "name", Some(1))],
            "{e:?}"
        );
        assert!(e[0].message.contains("also declared in filter.json"), "{}", e[0]);

        // The filter config's `server`: found by the module's parser on the merged document,
        // placed in the virtual server's file.
        let mut f = with_tools();
        set(&mut f, "filter.json", r#"{"pass_through": true, "server": "tools"}"#);
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "name", Some(1))],
            "{e:?}"
        );
        assert!(e[0].message.contains("also this config's `server`"), "{}", e[0]);

        // Two files, one name.
        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/other.yaml",
            &format!("name: tools\n{}", TOOLS.replace("/tools/mcp", "/o/mcp")),
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "name", Some(1))],
            "{e:?}"
        );
        assert!(
            e[0].message.contains("already defined in virtual_servers/other.yaml"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn a_virtual_servers_route_may_not_clash_with_a_servers() {
        let mut f = with_tools();
        set(
            &mut f,
            "virtual_servers/tools.yaml",
            &TOOLS.replace("/tools/mcp", "/demo/mcp"),
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("virtual_servers/tools.yaml", "routes[0].path", Some(2))],
            "{e:?}"
        );
        assert!(
            e[0].message
                .contains("also routed to server \"demo\" (servers/demo.yaml)"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn listeners_name_virtual_servers_like_servers_and_only_their_filter_gets_the_section() {
        let mut f = with_tools();
        set(
            &mut f,
            "gateways.yaml",
            "listeners:\n  - {name: plain, address: 127.0.0.1, port: 1, servers: [demo]}\n  - {name: virt, address: 127.0.0.1, port: 2, servers: [tools], filter: strict}\n",
        );
        set(&mut f, "filters/strict.json", r#"{"pass_through": true}"#);
        let m = f.validate().unwrap();
        assert_eq!(
            (m.listeners[1].servers.len(), m.listeners[1].virtual_servers.clone()),
            (0, vec!["tools".to_owned()])
        );
        assert!(!m.filters["default"].json.contains("virtual_servers"));
        let strict: Value = serde_json::from_str(&m.filters["strict"].json).unwrap();
        assert!(strict["virtual_servers"]["tools"].is_object());

        // Unknown names list both kinds.
        let mut f = with_tools();
        set(
            &mut f,
            "gateways.yaml",
            "listeners:\n  - name: a\n    address: 127.0.0.1\n    port: 1\n    servers: [tools, nope]\n",
        );
        let e = errors_of(f);
        assert_eq!(
            places(&e),
            vec![("gateways.yaml", "listeners[0].servers[1]", Some(5))],
            "{e:?}"
        );
        assert!(
            e[0].message
                .ends_with("(defined in servers/: alpha, demo; in virtual_servers/: tools)"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn a_broken_virtual_server_is_reported_once() {
        // The file does not parse: listeners naming it are not reported again.
        let mut f = with_tools();
        set(&mut f, "virtual_servers/tools.yaml", "routes: [\n");
        set(
            &mut f,
            "gateways.yaml",
            "listeners: [{name: a, address: 127.0.0.1, port: 1, servers: [tools]}]\n",
        );
        let e = errors_of(f);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].file, "virtual_servers/tools.yaml");
    }

    #[test]
    fn only_keys_files_under_keys_are_read() {
        assert!(is_keys_path("keys/tools.json"));
        assert!(is_keys_path("keys/tools.yaml"));
        assert!(!is_keys_path("keys/.tools.json.swp"));
        assert!(!is_keys_path("keys/a/b.json"));
        assert!(!is_keys_path("jwks/tools.json"));
        assert!(!is_keys_path("keys/tools.txt"));
    }
}
