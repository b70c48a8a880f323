//! Validated model → per-node-group snapshots of Envoy resources (LDS, RDS, CDS, EDS, ECDS).
//!
//! Owns the shape of what Envoy receives (it mirrors `envoy-configs/demo.yaml`, with RDS, EDS
//! and the module's config over ECDS instead of inline), the content-hash versions, and the
//! consistency check go-control-plane runs before publishing (every name a resource refers to
//! is in the same snapshot). Pure: no I/O, no async.
//!
//! Each resource is built from one small serializable "inputs" value, and its hash is taken
//! over those inputs plus [`BUILDER_REVISION`], never over the protobuf bytes (see
//! `version.rs`).

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, substitution_format_string, Address, AggregatedConfigSource, ApiVersion,
    ConfigSource, ExtensionConfigSource, Metadata, Node, SocketAddress, SubstitutionFormatString, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher, route, route_action, route_match, HeaderMatcher, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{file_access_log, FileAccessLog};
use envoy_types::pb::envoy::extensions::dynamic_modules::v3::DynamicModuleConfig;
use envoy_types::pb::envoy::extensions::filters::http::dynamic_modules::v3::DynamicModuleFilter;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use envoy_types::pb::google::protobuf::{value, Any, Duration, StringValue, Struct, Value};
use prost::{Message, Name};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::source::{self, ListenerDef, Model, NodeGroup};
use crate::version::{digest, Digester, BUILDER_REVISION};

pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const EXTENSION: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

/// The types we serve, in the order updates are pushed: clusters and their endpoints before
/// the listeners and routes that use them, and the filter config last (xDS "make before
/// break", https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations).
pub const TYPES: [&str; 5] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, EXTENSION];

/// The module's name (`libmcp_policy.so`), filter name and stats namespace.
pub const MODULE_NAME: &str = "mcp_policy";
/// The route metadata namespace the module reads the server name from.
pub const METADATA_NAMESPACE: &str = "mcp_policy";
/// The type Envoy must find inside an ECDS TypedExtensionConfig for our filter.
pub const DYNAMIC_MODULE_FILTER: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";

/// Short lowercase name of a type URL for logs, status and metrics (`lds`, `rds`…).
pub fn short_name(type_url: &str) -> &'static str {
    match type_url {
        LISTENER => "lds",
        ROUTE => "rds",
        CLUSTER => "cds",
        ENDPOINT => "eds",
        EXTENSION => "ecds",
        _ => "unknown",
    }
}

/// Types that Envoy subscribes to with "wildcard" (every resource) in State of the World.
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

/// The ECDS resource (and HTTP filter) name for a filter config.
pub fn extension_name(filter: &str) -> String {
    format!("{MODULE_NAME}/{filter}")
}

/// One resource, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    /// Content hash of the builder's inputs.
    pub hash: String,
    pub body: Any,
}

/// Everything one node group receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Node group name; `None` for nodes that match no group.
    pub group: Option<String>,
    /// Digest over every type's version.
    pub version: String,
    pub resources: BTreeMap<&'static str, BTreeMap<String, Resource>>,
}

/// What one subscription receives: a version and the resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'a> {
    pub version: String,
    pub resources: Vec<&'a Resource>,
}

impl Snapshot {
    /// The resources of `type_url` a subscription receives: all (wildcard) or the named ones
    /// that exist. The version is a hash of exactly what is selected, so it changes when the
    /// content or the subscription does.
    pub fn select<'a>(&'a self, type_url: &str, wildcard: bool, names: &BTreeSet<String>) -> Selection<'a> {
        let all = self.resources.get(type_url);
        let resources: Vec<&Resource> = match all {
            None => Vec::new(),
            Some(all) if wildcard => all.values().collect(),
            Some(all) => names.iter().filter_map(|n| all.get(n)).collect(),
        };
        let mut d = Digester::new();
        d.part(type_url);
        for r in &resources {
            d.part(&r.name).part(&r.hash);
        }
        Selection {
            version: d.finish(),
            resources,
        }
    }

    pub fn names(&self, type_url: &str) -> Vec<&str> {
        self.resources
            .get(type_url)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// All snapshots built from one model: one per node group plus one for ungrouped nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// Digest over every snapshot (what the status page calls "the snapshot version").
    pub version: String,
    groups: Vec<NodeGroup>,
    ungrouped: Arc<Snapshot>,
    by_group: BTreeMap<String, Arc<Snapshot>>,
    /// The filter configs' warnings (published anyway; shown on `/status`).
    pub warnings: Vec<crate::source::SourceError>,
    /// `pins/` by server (item counts per kind; shown on `/status`).
    pub pins: BTreeMap<String, crate::pins::PinSet>,
}

impl World {
    /// Build and consistency-check every snapshot.
    pub fn build(model: &Model) -> Result<World, Vec<String>> {
        let ungrouped = Arc::new(build_snapshot(model, None)?);
        let mut by_group = BTreeMap::new();
        for g in &model.groups {
            by_group.insert(g.name.clone(), Arc::new(build_snapshot(model, Some(&g.name))?));
        }
        let mut d = Digester::new();
        d.part(&ungrouped.version);
        for (name, s) in &by_group {
            d.part(name).part(&s.version);
        }
        Ok(World {
            version: d.finish(),
            groups: model.groups.clone(),
            ungrouped,
            by_group,
            warnings: model.warnings(),
            pins: model.pins.clone(),
        })
    }

    /// The group a node belongs to: the first whose every criterion matches.
    pub fn group_of(&self, node: &Node) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| group_matches(g, node))
            .map(|g| g.name.as_str())
    }

    pub fn snapshot_for(&self, node: &Node) -> Arc<Snapshot> {
        match self.group_of(node).and_then(|g| self.by_group.get(g)) {
            Some(s) => s.clone(),
            None => self.ungrouped.clone(),
        }
    }

    pub fn snapshots(&self) -> impl Iterator<Item = &Arc<Snapshot>> {
        std::iter::once(&self.ungrouped).chain(self.by_group.values())
    }
}

fn group_matches(g: &NodeGroup, node: &Node) -> bool {
    if let Some(c) = &g.cluster {
        if &node.cluster != c {
            return false;
        }
    }
    g.metadata.iter().all(|(k, want)| {
        node.metadata
            .as_ref()
            .and_then(|m| m.fields.get(k))
            .and_then(|v| match &v.kind {
                Some(value::Kind::StringValue(s)) => Some(s == want),
                _ => None,
            })
            .unwrap_or(false)
    })
}

fn build_snapshot(model: &Model, group: Option<&str>) -> Result<Snapshot, Vec<String>> {
    let listeners: Vec<&ListenerDef> = model
        .listeners
        .iter()
        .filter(|l| l.group.is_none() || l.group.as_deref() == group)
        .collect();
    let mut resources: BTreeMap<&'static str, BTreeMap<String, Resource>> =
        TYPES.iter().map(|t| (*t, BTreeMap::new())).collect();
    let mut put = |type_url: &'static str, r: Resource| {
        resources.get_mut(type_url).map(|m| m.insert(r.name.clone(), r));
    };

    let mut used_servers = BTreeSet::new();
    let mut used_filters = BTreeSet::new();
    for l in &listeners {
        let inputs = ListenerInputs {
            name: &l.name,
            address: &l.address,
            port: l.port,
            route_config: &l.name,
            extension: extension_name(&l.filter),
            access_log: l.access_log.as_deref(),
        };
        put(LISTENER, resource(LISTENER, &l.name, &inputs, build_listener(&inputs)));
        let inputs = RouteConfigInputs {
            name: &l.name,
            dispatch: dispatch_inputs(model, l),
            routes: route_inputs(model, l),
        };
        put(ROUTE, resource(ROUTE, &l.name, &inputs, build_route_config(&inputs)));
        used_servers.extend(l.servers.iter().cloned());
        // A virtual server's backends are reached through their clusters, routed here or not.
        for v in l.virtual_servers.iter().filter_map(|n| model.virtual_servers.get(n)) {
            used_servers.extend(v.backends.iter().cloned());
        }
        used_filters.insert(l.filter.clone());
    }
    for name in &used_servers {
        let Some(s) = model.servers.get(name) else { continue };
        let inputs = ClusterInputs {
            name: &s.name,
            connect_timeout_ms: s.connect_timeout_ms,
        };
        put(CLUSTER, resource(CLUSTER, &s.name, &inputs, build_cluster(&inputs)));
        let inputs = EndpointInputs {
            name: &s.name,
            endpoints: &s.endpoints,
        };
        put(ENDPOINT, resource(ENDPOINT, &s.name, &inputs, build_endpoints(&inputs)));
    }
    for name in &used_filters {
        let Some(f) = model.filters.get(name) else { continue };
        let ext = extension_name(&f.name);
        let inputs = ExtensionInputs {
            name: &ext,
            json: &f.json,
        };
        put(EXTENSION, resource(EXTENSION, &ext, &inputs, build_extension(&inputs)));
    }

    let snapshot = Snapshot {
        group: group.map(str::to_owned),
        version: String::new(),
        resources,
    };
    check_consistency(&snapshot, &listeners, model)?;
    let version = digest(TYPES.iter().map(|t| snapshot.select(t, true, &BTreeSet::new()).version));
    Ok(Snapshot { version, ..snapshot })
}

/// go-control-plane's rule: never publish a snapshot that refers to something it lacks.
fn check_consistency(s: &Snapshot, listeners: &[&ListenerDef], model: &Model) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let has = |t: &str, n: &str| s.resources.get(t).is_some_and(|m| m.contains_key(n));
    for l in listeners {
        if !has(ROUTE, &l.name) {
            problems.push(format!("listener {:?} refers to missing route config", l.name));
        }
        if !has(EXTENSION, &extension_name(&l.filter)) {
            problems.push(format!(
                "listener {:?} refers to missing filter config {:?}",
                l.name, l.filter
            ));
        }
        for srv in &l.servers {
            if !has(CLUSTER, srv) || !has(ENDPOINT, srv) || !model.servers.contains_key(srv) {
                problems.push(format!("listener {:?} routes to missing cluster {srv:?}", l.name));
            }
        }
        for name in &l.virtual_servers {
            let Some(v) = model.virtual_servers.get(name) else {
                problems.push(format!(
                    "listener {:?} routes to missing virtual server {name:?}",
                    l.name
                ));
                continue;
            };
            if v.backends.is_empty() {
                problems.push(format!("virtual server {name:?} has no backends"));
            }
            for b in &v.backends {
                if !has(CLUSTER, b) || !has(ENDPOINT, b) || !model.servers.contains_key(b) {
                    problems.push(format!(
                        "virtual server {name:?} on listener {:?} needs missing cluster {b:?}",
                        l.name
                    ));
                }
            }
            let in_filter = model
                .filters
                .get(&l.filter)
                .and_then(|f| serde_json::from_str::<serde_json::Value>(&f.json).ok())
                .is_some_and(|d| d["virtual_servers"].get(name).is_some());
            if !in_filter {
                problems.push(format!(
                    "listener {:?} routes to virtual server {name:?}, which its filter config {:?} lacks",
                    l.name, l.filter
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn resource<I: Serialize>(type_url: &str, name: &str, inputs: &I, body: Any) -> Resource {
    // serde_json of our own structs: fields in declaration order, maps are BTreeMaps.
    let canonical = serde_json::to_vec(inputs).unwrap_or_default();
    Resource {
        name: name.to_owned(),
        hash: digest([BUILDER_REVISION.as_bytes(), type_url.as_bytes(), &canonical]),
        body,
    }
}

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

fn socket(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(value::Kind::StringValue(s.to_owned())),
    }
}

// ---- LDS ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ListenerInputs<'a> {
    name: &'a str,
    address: &'a str,
    port: u16,
    route_config: &'a str,
    extension: String,
    access_log: Option<&'a str>,
}

/// The access log fields of `envoy-configs/demo.yaml`, one JSON line per request: what
/// `mcp-policy replay` needs to re-decide a request (server, method, target, the caller's
/// subject, tenant and groups, the decision and its rule) is all here.
const ACCESS_LOG_FIELDS: [(&str, &str); 33] = [
    ("time", "%START_TIME%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("http_method", "%REQ(:METHOD)%"),
    ("path", "%REQ(:PATH)%"),
    ("status", "%RESPONSE_CODE%"),
    ("details", "%RESPONSE_CODE_DETAILS%"),
    ("duration_ms", "%DURATION%"),
    ("trace", "%REQ(TRACEPARENT)%"),
    ("mcp_session", "%REQ(MCP-SESSION-ID)%"),
    ("mcp_protocol_version", "%REQ(MCP-PROTOCOL-VERSION)%"),
    ("mcp_server", "%DYNAMIC_METADATA(mcp_policy:server)%"),
    ("mcp_method", "%DYNAMIC_METADATA(mcp_policy:method)%"),
    ("mcp_id", "%DYNAMIC_METADATA(mcp_policy:jsonrpc_id)%"),
    ("mcp_target", "%DYNAMIC_METADATA(mcp_policy:target)%"),
    ("mcp_principal", "%DYNAMIC_METADATA(mcp_policy:principal)%"),
    ("mcp_tenant", "%DYNAMIC_METADATA(mcp_policy:tenant)%"),
    // The module's identity header as it went upstream (the client's copy is always removed).
    ("mcp_groups", "%REQ(X-MCP-GROUPS)%"),
    ("mcp_decision", "%DYNAMIC_METADATA(mcp_policy:decision)%"),
    ("mcp_reason", "%DYNAMIC_METADATA(mcp_policy:reason)%"),
    ("mcp_rule", "%DYNAMIC_METADATA(mcp_policy:rule)%"),
    ("mcp_mode", "%DYNAMIC_METADATA(mcp_policy:mode)%"),
    ("mcp_policy_version", "%DYNAMIC_METADATA(mcp_policy:policy_version)%"),
    ("mcp_virtual_server", "%DYNAMIC_METADATA(mcp_policy:virtual_server)%"),
    ("mcp_backend", "%DYNAMIC_METADATA(mcp_policy:backend)%"),
    (
        "mcp_missing_backends",
        "%DYNAMIC_METADATA(mcp_policy:missing_backends)%",
    ),
    // Limits and usage (docs/limits.md).
    ("mcp_limit", "%DYNAMIC_METADATA(mcp_policy:limit)%"),
    ("mcp_cost", "%DYNAMIC_METADATA(mcp_policy:cost)%"),
    ("bytes_in", "%BYTES_RECEIVED%"),
    ("bytes_out", "%BYTES_SENT%"),
    ("upstream_ms", "%RESPONSE_DURATION%"),
    (
        "mcp_integrity_action",
        "%DYNAMIC_METADATA(mcp_policy:integrity_action)%",
    ),
    ("mcp_integrity_rule", "%DYNAMIC_METADATA(mcp_policy:integrity_rule)%"),
    ("mcp_integrity_drift", "%DYNAMIC_METADATA(mcp_policy:integrity_drift)%"),
];

fn build_listener(i: &ListenerInputs<'_>) -> Any {
    let access_log = i
        .access_log
        .map(|path| {
            let fields: HashMap<String, Value> = ACCESS_LOG_FIELDS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), string_value(v)))
                .collect();
            let file = FileAccessLog {
                path: path.to_owned(),
                access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(SubstitutionFormatString {
                    format: Some(substitution_format_string::Format::JsonFormat(Struct { fields })),
                    ..Default::default()
                })),
            };
            vec![AccessLog {
                name: "envoy.access_loggers.file".to_owned(),
                config_type: Some(access_log::ConfigType::TypedConfig(any(&file))),
                ..Default::default()
            }]
        })
        .unwrap_or_default();
    let hcm = HttpConnectionManager {
        stat_prefix: i.name.to_owned(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: i.route_config.to_owned(),
        })),
        access_log,
        http_filters: vec![
            // The module's config comes by ECDS: a policy change swaps the filter config
            // without touching (or draining) the listener. No default config: the listener
            // warms until the first ECDS response, so it never serves without policy.
            HttpFilter {
                name: i.extension.clone(),
                config_type: Some(http_filter::ConfigType::ConfigDiscovery(ExtensionConfigSource {
                    config_source: Some(ads()),
                    type_urls: vec![DYNAMIC_MODULE_FILTER.to_owned()],
                    ..Default::default()
                })),
                ..Default::default()
            },
            HttpFilter {
                name: "envoy.filters.http.router".to_owned(),
                config_type: Some(http_filter::ConfigType::TypedConfig(any(&Router::default()))),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    any(&Listener {
        name: i.name.to_owned(),
        address: Some(socket(i.address, i.port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_owned(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

// ---- RDS ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct RouteConfigInputs<'a> {
    name: &'a str,
    dispatch: Vec<DispatchInputs<'a>>,
    routes: Vec<RouteInputs<'a>>,
}

/// A route only the module's dispatched requests take: the module sets `header` to the
/// backend's cluster name (and refuses any client request that carries it).
#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct DispatchInputs<'a> {
    header: &'a str,
    cluster: &'a str,
}

#[derive(Serialize)]
struct RouteInputs<'a> {
    /// What the module sees in the route metadata (a server or a virtual server).
    server: &'a str,
    cluster: &'a str,
    matcher: &'a source::RouteMatch,
    rewrite_prefix: Option<&'a str>,
}

/// One dispatch route per (cluster header, backend) of the listener's virtual servers, in a
/// stable order. Each matches the header's exact value, so a dispatched request reaches only a
/// backend of a virtual server served here, never any other cluster Envoy knows (the route
/// shape `cluster_header` would allow that, should a client's copy of the header ever get past
/// the module).
fn dispatch_inputs<'a>(model: &'a Model, l: &'a ListenerDef) -> Vec<DispatchInputs<'a>> {
    let set: BTreeSet<DispatchInputs<'a>> = l
        .virtual_servers
        .iter()
        .filter_map(|n| model.virtual_servers.get(n))
        .flat_map(|v| {
            v.backends.iter().map(move |b| DispatchInputs {
                header: &v.cluster_header,
                cluster: b,
            })
        })
        .collect();
    set.into_iter().collect()
}

/// The listener's routes in match order: exact paths first, then prefixes longest first (so a
/// catch-all `/` never shadows `/alpha/`), ties by name for a stable order.
fn route_inputs<'a>(model: &'a Model, l: &'a ListenerDef) -> Vec<RouteInputs<'a>> {
    let mut routes: Vec<RouteInputs<'a>> = l
        .servers
        .iter()
        .filter_map(|n| model.servers.get(n))
        .flat_map(|s| {
            s.routes.iter().map(move |r| RouteInputs {
                server: &s.name,
                cluster: &s.name,
                matcher: &r.matcher,
                rewrite_prefix: r.rewrite_prefix.as_deref(),
            })
        })
        .chain(
            l.virtual_servers
                .iter()
                .filter_map(|n| model.virtual_servers.get(n))
                .flat_map(|v| {
                    // The module answers or rewrites every request on this route; the cluster
                    // only has to exist (the first backend's).
                    let cluster = v.backends.first().map(String::as_str).unwrap_or_default();
                    v.routes.iter().map(move |r| RouteInputs {
                        server: &v.name,
                        cluster,
                        matcher: &r.matcher,
                        rewrite_prefix: None,
                    })
                }),
        )
        .collect();
    routes.sort_by(|a, b| {
        use source::RouteMatch::*;
        let key = |m: &source::RouteMatch| match m {
            Path(p) => (0, usize::MAX - p.len(), p.clone()),
            Prefix(p) => (1, usize::MAX - p.len(), p.clone()),
        };
        key(a.matcher).cmp(&key(b.matcher))
    });
    routes
}

fn build_route_config(i: &RouteConfigInputs<'_>) -> Any {
    let dispatch = i.dispatch.iter().map(|d| Route {
        name: format!("dispatch/{}", d.cluster),
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_owned())),
            headers: vec![HeaderMatcher {
                name: d.header.to_owned(),
                header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(d.cluster.to_owned())),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(d.cluster.to_owned())),
            timeout: Some(Duration { seconds: 0, nanos: 0 }),
            ..Default::default()
        })),
        ..Default::default()
    });
    let routes = i.routes.iter().map(|r| {
        let path_specifier = match r.matcher {
            source::RouteMatch::Path(p) => route_match::PathSpecifier::Path(p.clone()),
            source::RouteMatch::Prefix(p) => route_match::PathSpecifier::Prefix(p.clone()),
        };
        // The module reads the server name from route metadata `mcp_policy.server`.
        let server_md = Struct {
            fields: HashMap::from([("server".to_owned(), string_value(r.server))]),
        };
        Route {
            name: r.server.to_owned(),
            r#match: Some(RouteMatch {
                path_specifier: Some(path_specifier),
                ..Default::default()
            }),
            metadata: Some(Metadata {
                filter_metadata: HashMap::from([(METADATA_NAMESPACE.to_owned(), server_md)]),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(r.cluster.to_owned())),
                prefix_rewrite: r.rewrite_prefix.unwrap_or_default().to_owned(),
                // MCP streams (GET SSE, long tool calls) outlive any fixed route timeout.
                timeout: Some(Duration { seconds: 0, nanos: 0 }),
                ..Default::default()
            })),
            ..Default::default()
        }
    });
    // Dispatch routes first: a dispatched request must not match its virtual server's route
    // again.
    let routes = dispatch.chain(routes).collect();
    any(&RouteConfiguration {
        name: i.name.to_owned(),
        virtual_hosts: vec![VirtualHost {
            name: "mcp".to_owned(),
            domains: vec!["*".to_owned()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    })
}

// ---- CDS / EDS ------------------------------------------------------------------------------

#[derive(Serialize)]
struct ClusterInputs<'a> {
    name: &'a str,
    connect_timeout_ms: u64,
}

fn build_cluster(i: &ClusterInputs<'_>) -> Any {
    let ms = i.connect_timeout_ms;
    any(&Cluster {
        name: i.name.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: i.name.to_owned(),
        }),
        connect_timeout: Some(Duration {
            seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
            nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
        }),
        ..Default::default()
    })
}

#[derive(Serialize)]
struct EndpointInputs<'a> {
    name: &'a str,
    endpoints: &'a [source::Endpoint],
}

fn build_endpoints(i: &EndpointInputs<'_>) -> Any {
    let lb_endpoints = i
        .endpoints
        .iter()
        .map(|e| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(
                envoy_types::pb::envoy::config::endpoint::v3::Endpoint {
                    address: Some(socket(&e.ip, e.port)),
                    ..Default::default()
                },
            )),
            ..Default::default()
        })
        .collect();
    any(&ClusterLoadAssignment {
        cluster_name: i.name.to_owned(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    })
}

// ---- ECDS -----------------------------------------------------------------------------------

#[derive(Serialize)]
struct ExtensionInputs<'a> {
    name: &'a str,
    json: &'a str,
}

fn build_extension(i: &ExtensionInputs<'_>) -> Any {
    let module = DynamicModuleFilter {
        dynamic_module_config: Some(DynamicModuleConfig {
            name: MODULE_NAME.to_owned(),
            do_not_close: true,
            metrics_namespace: MODULE_NAME.to_owned(),
            ..Default::default()
        }),
        filter_name: MODULE_NAME.to_owned(),
        // StringValue: the module receives the JSON text byte for byte.
        filter_config: Some(any(&StringValue {
            value: i.json.to_owned(),
        })),
        ..Default::default()
    };
    any(&TypedExtensionConfig {
        name: i.name.to_owned(),
        typed_config: Some(any(&module)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::example;
    use mcp_policy_core::config::FilterConfig;

    fn world() -> World {
        World::build(&example().validate().unwrap()).unwrap()
    }

    fn node(cluster: &str) -> Node {
        Node {
            id: "n1".into(),
            cluster: cluster.into(),
            ..Default::default()
        }
    }

    fn decode<M: Message + Default>(r: &Resource) -> M {
        M::decode(r.body.value.as_slice()).unwrap()
    }

    #[test]
    fn ungrouped_nodes_get_only_ungrouped_listeners_and_what_they_use() {
        let s = world().snapshot_for(&node("whatever"));
        assert_eq!(s.group, None);
        assert_eq!(s.names(LISTENER), vec!["mcp_gateway"]);
        assert_eq!(s.names(ROUTE), vec!["mcp_gateway"]);
        assert_eq!(s.names(CLUSTER), vec!["alpha", "demo"]);
        assert_eq!(s.names(ENDPOINT), vec!["alpha", "demo"]);
        assert_eq!(s.names(EXTENSION), vec!["mcp_policy/default"]);
    }

    #[test]
    fn a_node_group_gets_its_own_world_by_node_cluster() {
        let w = world();
        let s = w.snapshot_for(&node("edge"));
        assert_eq!(s.group.as_deref(), Some("edge"));
        assert_eq!(s.names(LISTENER), vec!["edge_only", "mcp_gateway"]);
        assert_ne!(s.version, w.snapshot_for(&node("other")).version);
    }

    #[test]
    fn node_groups_match_on_metadata_strings() {
        let mut files = example();
        files.files.insert(
            "gateways.yaml".into(),
            b"node_groups: [{name: t, match: {metadata: {tier: internal}}}]\nlisteners:\n  - {name: a, address: 127.0.0.1, port: 0}\n  - {name: b, address: 127.0.0.1, port: 0, group: t}\n".to_vec(),
        );
        let w = World::build(&files.validate().unwrap()).unwrap();
        let mut n = node("x");
        assert_eq!(w.group_of(&n), None);
        n.metadata = Some(Struct {
            fields: HashMap::from([("tier".to_owned(), string_value("internal"))]),
        });
        assert_eq!(w.group_of(&n), Some("t"));
        assert_eq!(w.snapshot_for(&n).names(LISTENER), vec!["a", "b"]);
    }

    #[test]
    fn listener_uses_rds_and_the_module_over_ecds() {
        let s = world().snapshot_for(&node("x"));
        let l: Listener = decode(&s.resources[LISTENER]["mcp_gateway"]);
        assert_eq!(s.resources[LISTENER]["mcp_gateway"].body.type_url, LISTENER);
        let f = &l.filter_chains[0].filters[0];
        let Some(filter::ConfigType::TypedConfig(a)) = &f.config_type else {
            panic!()
        };
        let hcm = HttpConnectionManager::decode(a.value.as_slice()).unwrap();
        let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
            panic!()
        };
        assert_eq!(rds.route_config_name, "mcp_gateway");
        assert_eq!(hcm.http_filters[0].name, "mcp_policy/default");
        let Some(http_filter::ConfigType::ConfigDiscovery(cd)) = &hcm.http_filters[0].config_type else {
            panic!()
        };
        assert_eq!(cd.type_urls, vec![DYNAMIC_MODULE_FILTER]);
        assert_eq!(hcm.http_filters[1].name, "envoy.filters.http.router");
        assert_eq!(hcm.access_log.len(), 1);
    }

    #[test]
    fn ecds_resource_wraps_the_filter_json_in_a_dynamic_module_filter() {
        let s = world().snapshot_for(&node("x"));
        let r = &s.resources[EXTENSION]["mcp_policy/default"];
        assert_eq!(r.body.type_url, EXTENSION);
        let tec: TypedExtensionConfig = decode(r);
        assert_eq!(tec.name, "mcp_policy/default");
        let inner = tec.typed_config.unwrap();
        assert_eq!(inner.type_url, DYNAMIC_MODULE_FILTER);
        let dm = DynamicModuleFilter::decode(inner.value.as_slice()).unwrap();
        let cfg = dm.dynamic_module_config.unwrap();
        assert_eq!(
            (cfg.name.as_str(), cfg.do_not_close, cfg.metrics_namespace.as_str()),
            ("mcp_policy", true, "mcp_policy")
        );
        assert_eq!(dm.filter_name, "mcp_policy");
        let fc = dm.filter_config.unwrap();
        assert_eq!(fc.type_url, "type.googleapis.com/google.protobuf.StringValue");
        let json = StringValue::decode(fc.value.as_slice()).unwrap().value;
        assert_eq!(
            json,
            r#"{"pass_through": true, "limits": {"max_request_body_bytes": 65536}}"#
        );
    }

    #[test]
    fn routes_carry_server_metadata_no_timeout_and_exact_paths_first() {
        let s = world().snapshot_for(&node("x"));
        let rc: RouteConfiguration = decode(&s.resources[ROUTE]["mcp_gateway"]);
        let routes = &rc.virtual_hosts[0].routes;
        let matches: Vec<String> = routes
            .iter()
            .map(|r| match r.r#match.as_ref().unwrap().path_specifier.as_ref().unwrap() {
                route_match::PathSpecifier::Path(p) => format!("path {p}"),
                route_match::PathSpecifier::Prefix(p) => format!("prefix {p}"),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(matches, vec!["path /demo/mcp", "path /mcp", "prefix /alpha/"]);
        let r = &routes[0];
        let md = &r.metadata.as_ref().unwrap().filter_metadata["mcp_policy"].fields["server"];
        assert_eq!(md, &string_value("demo"));
        let Some(route::Action::Route(a)) = &r.action else {
            panic!()
        };
        assert_eq!(a.timeout, Some(Duration { seconds: 0, nanos: 0 }));
        assert_eq!(a.prefix_rewrite, "/mcp");
        assert_eq!(
            a.cluster_specifier,
            Some(route_action::ClusterSpecifier::Cluster("demo".into()))
        );
    }

    #[test]
    fn clusters_use_eds_over_ads_and_endpoints_list_every_address() {
        let s = world().snapshot_for(&node("x"));
        let c: Cluster = decode(&s.resources[CLUSTER]["alpha"]);
        assert_eq!(
            c.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32))
        );
        assert_eq!(c.eds_cluster_config.unwrap().service_name, "alpha");
        assert_eq!(
            c.connect_timeout,
            Some(Duration {
                seconds: 0,
                nanos: 500_000_000
            })
        );
        let e: ClusterLoadAssignment = decode(&s.resources[ENDPOINT]["alpha"]);
        assert_eq!(e.endpoints[0].lb_endpoints.len(), 2);
    }

    #[test]
    fn versions_are_content_hashes_stable_across_builds() {
        // Protobuf maps encode in random order, so two builds' bytes may differ; versions may not.
        let a = world();
        let b = world();
        assert_eq!(a.version, b.version);
        for (sa, sb) in a.snapshots().zip(b.snapshots()) {
            assert_eq!(sa.version, sb.version);
            for t in TYPES {
                assert_eq!(
                    sa.select(t, true, &BTreeSet::new()).version,
                    sb.select(t, true, &BTreeSet::new()).version
                );
            }
        }
    }

    #[test]
    fn a_filter_edit_changes_only_the_ecds_version() {
        let before = world().snapshot_for(&node("x"));
        let mut files = example();
        files.files.insert(
            "filter.json".into(),
            br#"{"pass_through": true, "limits": {"max_request_body_bytes": 10}}"#.to_vec(),
        );
        let after = World::build(&files.validate().unwrap())
            .unwrap()
            .snapshot_for(&node("x"));
        for t in TYPES {
            let changed =
                before.select(t, true, &BTreeSet::new()).version != after.select(t, true, &BTreeSet::new()).version;
            assert_eq!(changed, t == EXTENSION, "{t}");
        }
    }

    #[test]
    fn selection_version_depends_on_the_names_asked_for() {
        let s = world().snapshot_for(&node("x"));
        let one: BTreeSet<String> = ["alpha".to_owned()].into();
        let both: BTreeSet<String> = ["alpha".to_owned(), "demo".to_owned()].into();
        let a = s.select(ENDPOINT, false, &one);
        let b = s.select(ENDPOINT, false, &both);
        assert_eq!(a.resources.len(), 1);
        assert_eq!(b.resources.len(), 2);
        assert_ne!(a.version, b.version);
        assert_eq!(b.version, s.select(ENDPOINT, true, &BTreeSet::new()).version);
        let missing: BTreeSet<String> = ["nope".to_owned()].into();
        assert!(s.select(ENDPOINT, false, &missing).resources.is_empty());
    }

    #[test]
    fn the_access_log_fields_are_the_static_demos() {
        let demo: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../envoy-configs/demo.yaml")).expect("demo.yaml");
        let format = &demo["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["access_log"][0]["typed_config"]["log_format"]["json_format"];
        let demo_fields: BTreeMap<String, String> = serde_yaml::from_value(format.clone()).expect("json_format");
        let ours: BTreeMap<String, String> = ACCESS_LOG_FIELDS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(ours, demo_fields, "xDS listeners log what envoy-configs/demo.yaml logs");
    }

    // ---- virtual servers ------------------------------------------------------------------

    use crate::virtual_server::tests::{keys_json, with_tools, KEY1, KEY2};

    fn vs_world(f: &crate::source::SourceFiles) -> World {
        World::build(&f.validate().unwrap()).unwrap()
    }

    fn describe(r: &Route) -> String {
        let m = r.r#match.as_ref().unwrap();
        let p = match m.path_specifier.as_ref().unwrap() {
            route_match::PathSpecifier::Path(p) => format!("path {p}"),
            route_match::PathSpecifier::Prefix(p) => format!("prefix {p}"),
            _ => unreachable!(),
        };
        let h: Vec<String> = m
            .headers
            .iter()
            .map(|h| match &h.header_match_specifier {
                Some(header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(v)),
                    ignore_case: false,
                })) => format!(" {}={v}", h.name),
                other => format!(" {}?{other:?}", h.name),
            })
            .collect();
        let Some(route::Action::Route(a)) = &r.action else {
            panic!()
        };
        let Some(route_action::ClusterSpecifier::Cluster(c)) = &a.cluster_specifier else {
            panic!()
        };
        let server = r
            .metadata
            .as_ref()
            .map(|m| match &m.filter_metadata["mcp_policy"].fields["server"].kind {
                Some(value::Kind::StringValue(s)) => format!(" [{s}]"),
                _ => " [?]".into(),
            })
            .unwrap_or_default();
        assert_eq!(a.timeout, Some(Duration { seconds: 0, nanos: 0 }), "{p}");
        format!("{p}{} -> {c}{server}", h.concat())
    }

    #[test]
    fn a_virtual_server_gets_dispatch_routes_first_then_its_route_among_the_others() {
        let s = vs_world(&with_tools()).snapshot_for(&node("x"));
        let rc: RouteConfiguration = decode(&s.resources[ROUTE]["mcp_gateway"]);
        let routes: Vec<String> = rc.virtual_hosts[0].routes.iter().map(describe).collect();
        assert_eq!(
            routes,
            vec![
                // Only the module sets the header, to a backend's cluster: exact values, so no
                // other cluster is reachable this way.
                "prefix / x-mcp-backend-cluster=alpha -> alpha",
                "prefix / x-mcp-backend-cluster=demo -> demo",
                "path /tools/mcp -> demo [tools]",
                "path /demo/mcp -> demo [demo]",
                "path /mcp -> demo [demo]",
                "prefix /alpha/ -> alpha [alpha]",
            ]
        );
        // The edge listener does not serve it: no dispatch route there.
        let edge = vs_world(&with_tools()).snapshot_for(&node("edge"));
        let rc: RouteConfiguration = decode(&edge.resources[ROUTE]["edge_only"]);
        let routes: Vec<String> = rc.virtual_hosts[0].routes.iter().map(describe).collect();
        assert_eq!(routes, vec!["prefix /alpha/ -> alpha [alpha]"]);
    }

    #[test]
    fn a_listener_serving_only_the_virtual_server_gets_its_backends_clusters() {
        let mut f = with_tools();
        f.files.insert(
            "gateways.yaml".into(),
            b"listeners: [{name: v, address: 127.0.0.1, port: 0, servers: [tools]}]\n".to_vec(),
        );
        f.files.insert(
            "virtual_servers/tools.yaml".into(),
            crate::virtual_server::tests::TOOLS
                .replace("session_keys_file", "cluster_header: x-vs\nsession_keys_file")
                .into_bytes(),
        );
        let s = vs_world(&f).snapshot_for(&node("x"));
        assert_eq!(s.names(CLUSTER), vec!["alpha", "demo"]);
        assert_eq!(s.names(ENDPOINT), vec!["alpha", "demo"]);
        let rc: RouteConfiguration = decode(&s.resources[ROUTE]["v"]);
        let routes: Vec<String> = rc.virtual_hosts[0].routes.iter().map(describe).collect();
        assert_eq!(
            routes,
            vec![
                "prefix / x-vs=alpha -> alpha",
                "prefix / x-vs=demo -> demo",
                "path /tools/mcp -> demo [tools]",
            ]
        );
    }

    fn pushed_json(s: &Snapshot) -> serde_json::Value {
        let tec: TypedExtensionConfig = decode(&s.resources[EXTENSION]["mcp_policy/default"]);
        let dm = DynamicModuleFilter::decode(tec.typed_config.unwrap().value.as_slice()).unwrap();
        let json = StringValue::decode(dm.filter_config.unwrap().value.as_slice())
            .unwrap()
            .value;
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn the_ecds_filter_config_carries_the_virtual_servers_section() {
        let s = vs_world(&with_tools()).snapshot_for(&node("x"));
        let doc = pushed_json(&s);
        assert_eq!(doc["pass_through"], true);
        let vs = &doc["virtual_servers"]["tools"];
        assert_eq!(vs["backends"][1]["name"], "alpha");
        assert_eq!(vs["session_keys"][0]["id"], "k1");
        // What Envoy gets, the module accepts.
        let text = serde_json::to_string(&doc).unwrap();
        FilterConfig::from_json(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_key_rotation_is_a_keys_file_edit_that_changes_only_the_filter_config() {
        let before = vs_world(&with_tools()).snapshot_for(&node("x"));
        let mut f = with_tools();
        f.files.insert(
            "keys/tools.json".into(),
            keys_json(&[("k2", KEY2), ("k1", KEY1)]).into_bytes(),
        );
        let after = vs_world(&f).snapshot_for(&node("x"));
        for t in TYPES {
            let changed =
                before.select(t, true, &BTreeSet::new()).version != after.select(t, true, &BTreeSet::new()).version;
            assert_eq!(changed, t == EXTENSION, "{t}");
        }
        let ids: Vec<serde_json::Value> = pushed_json(&after)["virtual_servers"]["tools"]["session_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].clone())
            .collect();
        assert_eq!(ids, vec!["k2", "k1"]);
    }

    #[test]
    fn the_shipped_example_directory_validates_and_builds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/xds");
        let files = crate::source::SourceFiles::read_dir(&dir).unwrap();
        let model = files.validate().unwrap_or_else(|e| panic!("{e}"));
        let vs = &model.virtual_servers["tools"];
        assert_eq!(vs.backends.len(), 2, "{vs:?}");
        let w = World::build(&model).unwrap();
        let s = w.snapshot_for(&node("x"));
        let doc = pushed_json(&s);
        assert!(doc["virtual_servers"]["tools"]["backends"]
            .as_array()
            .is_some_and(|b| b.len() == 2));
        for b in &vs.backends {
            assert!(s.names(CLUSTER).contains(&b.as_str()), "{b}");
        }
    }
}
