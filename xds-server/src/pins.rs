//! `pins/SERVER.json`: the approved definitions of one server's tools, prompts and resources,
//! kept in the source directory and pushed with every filter config (docs/xds.md).
//!
//! A pins file is what `mcp-policy pin record` writes (`{"pins": {...}, "definitions": {...}}`;
//! the definitions are for `pin diff` and are not pushed) or a bare pins object (`{"tools":
//! {...}}`). Its name is the server's. Each filter config that has an `integrity` entry for the
//! server gets the pins as `integrity.servers.SERVER.pins`; a config with only a `"*"` entry
//! gets `SERVER` as a copy of `"*"` plus the pins. Refused, each with its own message:
//! - a server pinned here that no source file defines;
//! - a listener serving a pinned server with a filter config that has no entry for it (nor
//!   `"*"`): its Envoys would never check the pins;
//! - pins for the same server both here and inline in a filter config.

use mcp_policy_core::config::FilterConfig;
use mcp_policy_core::integrity::{valid_pin, PinsSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::source::{list_or_none, parse_doc, Filter, ListenerDef, Server, SourceError};
use crate::virtual_server::VirtualServerDef;

pub const PINS_DIR: &str = "pins";
/// The `"*"` entry of `integrity.servers`: servers not named.
const ANY_SERVER: &str = "*";

/// What `/status` shows of one server's pins (the hashes themselves are in the filter config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinSet {
    pub file: String,
    /// Pinned items per kind (`tools`, `prompts`, `resources`, `resource_templates`).
    pub items: BTreeMap<&'static str, usize>,
    #[serde(skip)]
    pub pins: PinsSpec,
    /// Where the pins object sits in the file: `pins.` (as recorded) or `` (bare).
    #[serde(skip)]
    prefix: &'static str,
}

/// The file `mcp-policy pin record` writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recorded {
    pins: PinsSpec,
    /// For `pin diff` only: never pushed, so any JSON.
    #[serde(default)]
    #[allow(dead_code)]
    definitions: Option<serde::de::IgnoredAny>,
}

const KINDS: [&str; 4] = ["tools", "prompts", "resources", "resource_templates"];

fn kind_map<'a>(p: &'a PinsSpec, key: &str) -> &'a BTreeMap<String, String> {
    match key {
        "tools" => &p.tools,
        "prompts" => &p.prompts,
        "resources" => &p.resources,
        _ => &p.resource_templates,
    }
}

/// Parse and check every `pins/NAME.json`: format, pin values, the name a known server.
pub fn read(
    files: &BTreeMap<String, Vec<u8>>,
    servers: &BTreeMap<String, Server>,
    virtual_servers: &BTreeMap<String, VirtualServerDef>,
    errors: &mut Vec<SourceError>,
) -> BTreeMap<String, PinSet> {
    let mut out = BTreeMap::new();
    for (path, bytes) in files {
        let Some(name) = path.strip_prefix("pins/").and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if !servers.contains_key(name) && !virtual_servers.contains_key(name) {
            let known: Vec<&str> = servers
                .keys()
                .chain(virtual_servers.keys())
                .map(String::as_str)
                .collect();
            errors.push(SourceError::new(
                path,
                "",
                format!(
                    "pins for server {name:?} (from the file name), which is not defined in servers/ or virtual_servers/ (defined: {})",
                    list_or_none(&known)
                ),
            ));
            continue;
        }
        // `pin record`'s output has a `pins` key, which a bare pins object never has.
        let recorded = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .is_some_and(|v| v.get("pins").is_some());
        let (spec, prefix) = if recorded {
            match parse_doc::<Recorded>(path, bytes, errors) {
                Some(r) => (r.pins, "pins."),
                None => continue,
            }
        } else {
            match parse_doc::<PinsSpec>(path, bytes, errors) {
                Some(p) => (p, ""),
                None => continue,
            }
        };
        let before = errors.len();
        let mut items = BTreeMap::new();
        for key in KINDS {
            let m = kind_map(&spec, key);
            for (item, pin) in m {
                if !valid_pin(pin) {
                    errors.push(SourceError::new(
                        path,
                        format!("{prefix}{key}.{item}"),
                        format!("must be \"sha256:\" and 64 lowercase hex digits, got {pin:?}"),
                    ));
                }
            }
            if !m.is_empty() {
                items.insert(key, m.len());
            }
        }
        if spec.is_empty() {
            errors.push(SourceError::new(
                path,
                prefix.trim_end_matches('.'),
                "pins nothing: record pins from a list that serves items (`mcp-policy pin record --out`), or remove the file",
            ));
        }
        if errors.len() == before {
            out.insert(
                name.to_owned(),
                PinSet {
                    file: path.clone(),
                    items,
                    pins: spec,
                    prefix,
                },
            );
        }
    }
    out
}

/// Does this listener route requests to `server` (directly, as a virtual server, or as one's
/// backend)?
fn serves(l: &ListenerDef, server: &str, virtual_servers: &BTreeMap<String, VirtualServerDef>) -> bool {
    l.servers.iter().any(|s| s == server)
        || l.virtual_servers.iter().any(|v| {
            v == server
                || virtual_servers
                    .get(v)
                    .is_some_and(|d| d.backends.iter().any(|b| b == server))
        })
}

/// The `integrity.servers` object of a filter config, if any.
fn integrity_servers(doc: &serde_json::Value) -> Option<&serde_json::Map<String, serde_json::Value>> {
    doc.get("integrity")?.get("servers")?.as_object()
}

/// Does this entry carry pins of its own (a non-empty `pins` object)?
fn has_inline_pins(entry: &serde_json::Value) -> bool {
    match entry.get("pins") {
        None => false,
        Some(serde_json::Value::Object(o)) => o.values().any(|v| v.as_object().is_none_or(|m| !m.is_empty())),
        Some(_) => true,
    }
}

/// Merge the pins into every filter config with an entry for their server, then check each
/// changed config again with the module's own parser.
pub fn merge(
    pins: &BTreeMap<String, PinSet>,
    listeners: &[ListenerDef],
    virtual_servers: &BTreeMap<String, VirtualServerDef>,
    filters: &mut BTreeMap<String, Filter>,
    errors: &mut Vec<SourceError>,
) {
    if pins.is_empty() {
        return;
    }
    // Every Envoy serving a pinned server must check the pins: refuse a config that would not.
    for (server, set) in pins {
        for l in listeners.iter().filter(|l| serves(l, server, virtual_servers)) {
            let Some(f) = filters.get(&l.filter) else { continue };
            let doc: serde_json::Value = serde_json::from_str(&f.json).unwrap_or_default();
            let entries = integrity_servers(&doc);
            if !entries.is_some_and(|e| e.contains_key(server) || e.contains_key(ANY_SERVER)) {
                errors.push(SourceError::new(
                    &set.file,
                    "",
                    format!(
                        "server {server:?} is pinned, but listener {:?} serves it with filter config {} that has no integrity.servers.{server} (nor \"*\") entry, so its Envoys would not check the pins: add one (with drift: quarantine or audit)",
                        l.name, f.file
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return;
    }
    for f in filters.values_mut() {
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&f.json) else {
            continue;
        };
        let Some(entries) = doc
            .get_mut("integrity")
            .and_then(|i| i.get_mut("servers"))
            .and_then(|s| s.as_object_mut())
        else {
            continue;
        };
        let mut changed = false;
        for (server, set) in pins {
            let from_any = !entries.contains_key(server);
            let source_key = if from_any { ANY_SERVER } else { server.as_str() };
            let Some(entry) = entries.get(source_key) else { continue };
            if has_inline_pins(entry) {
                errors.push(SourceError::new(
                    &f.file,
                    format!("integrity.servers.{source_key}.pins"),
                    format!(
                        "server {server:?} is pinned both here and in {}: keep one (pins/ is pushed into every filter config)",
                        set.file
                    ),
                ));
                continue;
            }
            let mut entry = entry.clone();
            let Some(obj) = entry.as_object_mut() else {
                continue; // not an object: the module's parser refused it already
            };
            let Ok(pins_json) = serde_json::to_value(&set.pins) else {
                continue;
            };
            obj.insert("pins".to_owned(), pins_json);
            entries.insert(server.clone(), entry);
            changed = true;
        }
        if !changed {
            continue;
        }
        let json = match serde_json::to_string_pretty(&doc) {
            Ok(j) => j,
            Err(e) => {
                errors.push(SourceError::new(&f.file, "", format!("cannot merge pins: {e}")));
                continue;
            }
        };
        match FilterConfig::from_json(json.as_bytes()) {
            Ok(_) => f.json = json,
            Err(es) => errors.extend(es.0.into_iter().map(|e| {
                // A problem inside merged pins is the pins file's; the rest is the filter's.
                let in_pins = pins.iter().find_map(|(s, set)| {
                    e.path
                        .strip_prefix(&format!("integrity.servers.{s}.pins"))
                        .map(|rest| (set, rest.trim_start_matches('.').to_owned()))
                });
                match in_pins {
                    Some((set, rest)) => SourceError::new(
                        &set.file,
                        format!("{}{rest}", set.prefix).trim_end_matches('.').to_owned(),
                        e.message,
                    ),
                    None => SourceError::new(&f.file, e.path, e.message),
                }
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::source::tests::example;
    use crate::source::{SourceError, SourceFiles};

    const PIN_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const PIN_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn with(filter: &str, pins: &[(&str, &str)]) -> SourceFiles {
        let mut f = example();
        f.files.insert("filter.json".into(), filter.as_bytes().to_vec());
        for (p, c) in pins {
            f.files.insert((*p).into(), c.as_bytes().to_vec());
        }
        f
    }

    fn recorded(tool: &str, pin: &str) -> String {
        format!(
            r#"{{"pins": {{"tools": {{"{tool}": "{pin}"}}}}, "definitions": {{"tools": {{"{tool}": {{"name": "{tool}"}}}}}}}}"#
        )
    }

    fn pushed(f: SourceFiles) -> serde_json::Value {
        let m = f.validate().unwrap();
        serde_json::from_str(&m.filters["default"].json).unwrap()
    }

    fn errors_of(f: SourceFiles) -> Vec<SourceError> {
        f.validate().unwrap_err().0
    }

    const QUARANTINE_DEMO: &str = r#"{"integrity": {"servers": {"demo": {"action": "audit", "drift": "quarantine"}}}}"#;

    #[test]
    fn a_recorded_pins_file_is_merged_into_the_servers_entry_and_shown() {
        let f = with(QUARANTINE_DEMO, &[("pins/demo.json", &recorded("get_forecast", PIN_A))]);
        let m = f.clone().validate().unwrap();
        assert_eq!(m.pins["demo"].file, "pins/demo.json");
        assert_eq!(m.pins["demo"].items["tools"], 1);
        let doc = pushed(f);
        let demo = &doc["integrity"]["servers"]["demo"];
        assert_eq!(demo["pins"]["tools"]["get_forecast"], PIN_A);
        assert_eq!(demo["drift"], "quarantine");
        // Definitions are for `pin diff`: never pushed to the data plane.
        assert!(!doc.to_string().contains("definitions"), "{doc}");
    }

    #[test]
    fn a_bare_pins_object_is_accepted_too() {
        let bare = format!(r#"{{"tools": {{"t": "{PIN_A}"}}, "prompts": {{"p": "{PIN_B}"}}}}"#);
        let doc = pushed(with(QUARANTINE_DEMO, &[("pins/demo.json", &bare)]));
        assert_eq!(doc["integrity"]["servers"]["demo"]["pins"]["prompts"]["p"], PIN_B);
    }

    #[test]
    fn a_star_entry_gives_the_pinned_server_its_settings_and_the_pins() {
        let star = r#"{"integrity": {"servers": {"*": {"action": "hide", "drift": "quarantine"}}}}"#;
        let doc = pushed(with(star, &[("pins/alpha.json", &recorded("t", PIN_A))]));
        let servers = &doc["integrity"]["servers"];
        assert_eq!(servers["alpha"]["action"], "hide");
        assert_eq!(servers["alpha"]["pins"]["tools"]["t"], PIN_A);
        assert!(servers["*"].get("pins").is_none(), "{servers}");
    }

    #[test]
    fn re_pinning_changes_the_fingerprint_and_the_pushed_config() {
        let a = with(QUARANTINE_DEMO, &[("pins/demo.json", &recorded("t", PIN_A))]);
        let b = with(QUARANTINE_DEMO, &[("pins/demo.json", &recorded("t", PIN_B))]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(pushed(a)["integrity"], pushed(b)["integrity"]);
    }

    #[test]
    fn pins_are_read_from_the_directory() {
        let dir = std::env::temp_dir().join(format!("mcp-xds-pins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pins")).unwrap();
        std::fs::write(dir.join("pins/demo.json"), recorded("t", PIN_A)).unwrap();
        std::fs::write(dir.join("pins/.demo.json.swp"), "x").unwrap();
        let read = SourceFiles::read_dir(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read.files.keys().collect::<Vec<_>>(), vec!["pins/demo.json"]);
    }

    #[test]
    fn a_listener_serving_a_pinned_server_without_an_integrity_entry_is_refused() {
        let only_alpha = r#"{"integrity": {"servers": {"alpha": {"drift": "quarantine"}}}}"#;
        let e = errors_of(with(only_alpha, &[("pins/demo.json", &recorded("t", PIN_A))]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].file, "pins/demo.json");
        assert!(
            e[0].message
                .contains("listener \"mcp_gateway\" serves it with filter config filter.json")
                && e[0].message.contains("integrity.servers.demo"),
            "{}",
            e[0]
        );
        // No integrity section at all: the same refusal.
        let e = errors_of(with(
            r#"{"pass_through": true}"#,
            &[("pins/demo.json", &recorded("t", PIN_A))],
        ));
        assert_eq!(e[0].file, "pins/demo.json", "{e:?}");
    }

    #[test]
    fn inline_pins_and_a_pins_file_for_one_server_are_refused() {
        let inline = format!(
            r#"{{"integrity": {{"servers": {{"demo": {{"drift": "quarantine", "pins": {{"tools": {{"t": "{PIN_A}"}}}}}}}}}}}}"#
        );
        let e = errors_of(with(&inline, &[("pins/demo.json", &recorded("t", PIN_B))]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].file.as_str(), e[0].field.as_str()),
            ("filter.json", "integrity.servers.demo.pins")
        );
        assert!(e[0].message.contains("both here and in pins/demo.json"), "{}", e[0]);
        assert!(e[0].line.is_some(), "placed in the filter file as written: {:?}", e[0]);
    }

    #[test]
    fn bad_pins_files_are_refused_with_file_field_and_line() {
        let cases: [(&str, String, &str, &str); 5] = [
            (
                "pins/nope.json",
                recorded("t", PIN_A),
                "",
                "not defined in servers/ or virtual_servers/ (defined: alpha, demo)",
            ),
            (
                "pins/demo.json",
                recorded("t", "md5:abc"),
                "pins.tools.t",
                "64 lowercase hex digits, got \"md5:abc\"",
            ),
            (
                "pins/demo.json",
                format!(r#"{{"pins": {{"tool": {{"t": "{PIN_A}"}}}}}}"#),
                "pins.tool",
                "unknown field `tool`",
            ),
            (
                "pins/demo.json",
                format!(r#"{{"pins": {{}}, "definitions": {{}}, "extra": "{PIN_A}"}}"#),
                "extra",
                "unknown field `extra`",
            ),
            ("pins/demo.json", r#"{"pins": {}}"#.to_owned(), "pins", "pins nothing"),
        ];
        for (path, body, field, message) in cases {
            let e = errors_of(with(QUARANTINE_DEMO, &[(path, &body)]));
            assert_eq!(e.len(), 1, "{path} {body}: {e:?}");
            assert_eq!((e[0].file.as_str(), e[0].field.as_str()), (path, field), "{e:?}");
            assert!(e[0].message.contains(message), "{}", e[0]);
        }
        let e = errors_of(with(QUARANTINE_DEMO, &[("pins/demo.json", "{\n  \"tools\": 3\n}")]));
        assert_eq!((e[0].field.as_str(), e[0].line), ("tools", Some(2)), "{e:?}");
    }
}
