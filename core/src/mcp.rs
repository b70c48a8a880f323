//! MCP method vocabulary: which method a message names, and a bounded label for stats.
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

    /// Classify a JSON-RPC method name.
    pub fn from_name(name: &str) -> Method {
        match name {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "resources/list" => Method::ResourcesList,
            "resources/templates/list" => Method::ResourcesTemplatesList,
            "resources/read" => Method::ResourcesRead,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "prompts/list" => Method::PromptsList,
            "prompts/get" => Method::PromptsGet,
            "completion/complete" => Method::CompletionComplete,
            "logging/setLevel" => Method::LoggingSetLevel,
            "server/discover" => Method::ServerDiscover,
            "subscriptions/listen" => Method::SubscriptionsListen,
            n if n.starts_with("tasks/") => Method::TasksOther,
            n if n.starts_with("notifications/") => Method::Notification,
            _ => Method::Other,
        }
    }

    /// A fixed, low-cardinality label for stats and logs.
    pub fn label(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ToolsList => "tools_list",
            Method::ToolsCall => "tools_call",
            Method::ResourcesList => "resources_list",
            Method::ResourcesTemplatesList => "resources_templates_list",
            Method::ResourcesRead => "resources_read",
            Method::ResourcesSubscribe => "resources_subscribe",
            Method::ResourcesUnsubscribe => "resources_unsubscribe",
            Method::PromptsList => "prompts_list",
            Method::PromptsGet => "prompts_get",
            Method::CompletionComplete => "completion_complete",
            Method::LoggingSetLevel => "logging_set_level",
            Method::ServerDiscover => "server_discover",
            Method::SubscriptionsListen => "subscriptions_listen",
            Method::TasksOther => "tasks",
            Method::Notification => "notification",
            Method::ClientResponse => "client_response",
            Method::Other => "other",
        }
    }

    /// Position in [`Method::ALL`], for per-method arrays.
    pub fn index(self) -> usize {
        Method::ALL
            .iter()
            .position(|m| *m == self)
            .unwrap_or(Method::ALL.len() - 1)
    }

    /// Methods whose successful result is a list the gateway may rewrite per principal.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Method::ToolsList | Method::ResourcesList | Method::ResourcesTemplatesList | Method::PromptsList
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
