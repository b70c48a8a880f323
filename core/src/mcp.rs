//! MCP method vocabulary: which method a message names, and a bounded label for stats.
//!
//! One descriptor table ([`DESCRIPTORS`]) says, per method, its name, label, policy target,
//! list kind and header rules; everything else (`subject`, `mcp_headers`, `judge`, the
//! response path) reads it.
//!
//! Method names come from the network, so stats never use them raw: every method maps to one
//! of a fixed set of labels ([`Method::label`]), with `other` for everything unknown. That keeps
//! Envoy's stat cardinality bounded whatever a client sends.

/// The MCP methods the gateway distinguishes (spec 2025-06-18 … 2026-07-28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Ping,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    CompletionComplete,
    LoggingSetLevel,
    ServerDiscover,
    SubscriptionsListen,
    TasksOther,
    /// Any `notifications/*` method.
    Notification,
    /// A JSON-RPC response sent by the client (to sampling, elicitation, roots).
    ClientResponse,
    /// Anything else.
    Other,
}

/// Which `params` member names what a method acts on (its policy subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing beyond the method.
    None,
    /// `params.name` (a tool or a prompt).
    Name,
    /// `params.uri` (a resource).
    Uri,
    /// `params.cursor` (a list page).
    Cursor,
}

/// Everything the gateway knows about one MCP method, in one row: adding a method touches
/// only [`DESCRIPTORS`].
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    pub method: Method,
    /// The JSON-RPC method name (a prefix for the families `tasks/` and `notifications/`;
    /// empty for the two that have no name).
    pub name: &'static str,
    /// Fixed, low-cardinality label for stats and logs.
    pub label: &'static str,
    /// What the method acts on (`params` member read for policy).
    pub target: Target,
    /// The kind of list the result holds (filtered per principal), for list methods.
    pub list: Option<Kind>,
    /// Whether the 2026-07-28 `Mcp-Name` header mirrors the target.
    pub name_header: bool,
}

const fn d(
    method: Method,
    name: &'static str,
    label: &'static str,
    target: Target,
    list: Option<Kind>,
    name_header: bool,
) -> Descriptor {
    Descriptor {
        method,
        name,
        label,
        target,
        list,
        name_header,
    }
}

/// One row per [`Method`], in declaration order (so `DESCRIPTORS[m as usize].method == m`).
pub const DESCRIPTORS: [Descriptor; 19] = [
    d(
        Method::Initialize,
        "initialize",
        "initialize",
        Target::None,
        None,
        false,
    ),
    d(Method::Ping, "ping", "ping", Target::None, None, false),
    d(
        Method::ToolsList,
        "tools/list",
        "tools_list",
        Target::Cursor,
        Some(Kind::Tool),
        false,
    ),
    d(Method::ToolsCall, "tools/call", "tools_call", Target::Name, None, true),
    d(
        Method::ResourcesList,
        "resources/list",
        "resources_list",
        Target::Cursor,
        Some(Kind::Resource),
        false,
    ),
    d(
        Method::ResourcesTemplatesList,
        "resources/templates/list",
        "resources_templates_list",
        Target::Cursor,
        Some(Kind::ResourceTemplate),
        false,
    ),
    d(
        Method::ResourcesRead,
        "resources/read",
        "resources_read",
        Target::Uri,
        None,
        true,
    ),
    d(
        Method::ResourcesSubscribe,
        "resources/subscribe",
        "resources_subscribe",
        Target::Uri,
        None,
        false,
    ),
    d(
        Method::ResourcesUnsubscribe,
        "resources/unsubscribe",
        "resources_unsubscribe",
        Target::Uri,
        None,
        false,
    ),
    d(
        Method::PromptsList,
        "prompts/list",
        "prompts_list",
        Target::Cursor,
        Some(Kind::Prompt),
        false,
    ),
    d(
        Method::PromptsGet,
        "prompts/get",
        "prompts_get",
        Target::Name,
        None,
        true,
    ),
    d(
        Method::CompletionComplete,
        "completion/complete",
        "completion_complete",
        Target::None,
        None,
        false,
    ),
    d(
        Method::LoggingSetLevel,
        "logging/setLevel",
        "logging_set_level",
        Target::None,
        None,
        false,
    ),
    d(
        Method::ServerDiscover,
        "server/discover",
        "server_discover",
        Target::None,
        None,
        false,
    ),
    d(
        Method::SubscriptionsListen,
        "subscriptions/listen",
        "subscriptions_listen",
        Target::None,
        None,
        false,
    ),
    d(Method::TasksOther, "tasks/", "tasks", Target::None, None, false),
    d(
        Method::Notification,
        "notifications/",
        "notification",
        Target::None,
        None,
        false,
    ),
    d(Method::ClientResponse, "", "client_response", Target::None, None, false),
    d(Method::Other, "", "other", Target::None, None, false),
];

impl Method {
    /// Every variant, in label order; [`Method::index`] is the position here.
    pub const ALL: [Method; 19] = [
        Method::Initialize,
        Method::Ping,
        Method::ToolsList,
        Method::ToolsCall,
        Method::ResourcesList,
        Method::ResourcesTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::PromptsList,
        Method::PromptsGet,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::ServerDiscover,
        Method::SubscriptionsListen,
        Method::TasksOther,
        Method::Notification,
        Method::ClientResponse,
        Method::Other,
    ];

    /// This method's row of [`DESCRIPTORS`].
    pub fn descriptor(self) -> &'static Descriptor {
        &DESCRIPTORS[self as usize]
    }

    /// Classify a JSON-RPC method name.
    pub fn from_name(name: &str) -> Method {
        for row in &DESCRIPTORS {
            if row.name.is_empty() {
                continue;
            }
            let hit = if row.name.ends_with('/') {
                name.starts_with(row.name)
            } else {
                name == row.name
            };
            if hit {
                return row.method;
            }
        }
        Method::Other
    }

    /// A fixed, low-cardinality label for stats and logs.
    pub fn label(self) -> &'static str {
        self.descriptor().label
    }

    /// Position in [`Method::ALL`], for per-method arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Methods whose successful result is a list the gateway may rewrite per principal.
    pub fn is_list(self) -> bool {
        self.descriptor().list.is_some()
    }
}

use crate::policy::Kind;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_describes_its_own_method_and_names_round_trip() {
        for (i, row) in DESCRIPTORS.iter().enumerate() {
            assert_eq!(row.method as usize, i, "{row:?}");
            assert_eq!(Method::ALL[i], row.method);
            if !row.name.is_empty() && !row.name.ends_with('/') {
                assert_eq!(Method::from_name(row.name), row.method);
            }
        }
        assert_eq!(Method::from_name("tasks/get"), Method::TasksOther);
        assert_eq!(Method::from_name("tools/lis"), Method::Other);
    }

    #[test]
    fn every_method_round_trips_through_its_index() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(Method::from_name("x/evil\u{0}label").label(), "other");
        assert_eq!(Method::from_name("notifications/cancelled").label(), "notification");
        assert_eq!(Method::from_name("tools/call").label(), "tools_call");
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<_> = Method::ALL.iter().map(|m| m.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Method::ALL.len());
    }
}
