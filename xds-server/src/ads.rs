//! The ADS (State of the World) protocol state machine for one Envoy stream. No I/O.
//!
//! `server.rs` feeds it three kinds of input and sends whatever [`Step`] it returns:
//! - [`AdsStream::handle_request`]: a `DiscoveryRequest` from Envoy (subscribe, ACK, NACK);
//! - [`AdsStream::set_world`]: new snapshots were published;
//! - [`AdsStream::resync`]: the periodic safety-net re-send.
//!
//! Rules (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol):
//! - One response in flight per type: the next one is sent only after Envoy ACKs or NACKs the
//!   previous, so updates that arrive meanwhile coalesce into one.
//! - A request whose `response_nonce` is not the latest nonce we sent for its type is stale
//!   and ignored ("the management server should not send a DiscoveryResponse for any
//!   DiscoveryRequest that has a stale nonce", section "Resource updates").
//! - A NACKed version is held: it is not sent again (not by updates, not by the re-send
//!   timer) until the content for that subscription changes. Re-sending a rejected config in a
//!   loop is go-control-plane's long-standing bug; we log `error_detail` and count it instead.
//! - Versions are content hashes of exactly what is sent (see `Snapshot::select`), so a client
//!   that already has the content (for example after reconnecting) is not sent it again.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::snapshot::{self, is_wildcard_type, short_name, Snapshot, World, TYPES};

/// Something worth logging or counting; the shell decides how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// First request on the stream: who is this.
    Connected {
        node_id: String,
        cluster: String,
        group: Option<String>,
    },
    Sent {
        type_url: String,
        version: String,
        nonce: String,
        resources: usize,
    },
    Ack {
        type_url: String,
        version: String,
    },
    Nack {
        type_url: String,
        version: String,
        detail: String,
    },
    StaleNonce {
        type_url: String,
        nonce: String,
    },
    /// A type we do not serve (for example SDS): no response.
    UnknownType {
        type_url: String,
    },
}

/// What to send now, and what happened.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    pub responses: Vec<DiscoveryResponse>,
    pub events: Vec<Event>,
}

/// The client broke the protocol: the stream is closed (other streams are unaffected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the first request on a stream must carry node with a non-empty id")]
    NoNode,
    #[error("request without type_url (required on an aggregated stream)")]
    NoTypeUrl,
    #[error("node id changed on the stream from {0:?} to {1:?}")]
    NodeChanged(String, String),
}

/// A NACK as Envoy reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    pub version: String,
    pub detail: String,
}

/// Per type URL.
#[derive(Debug, Clone, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    /// Nonce of the latest response we sent for this type ("" before any).
    last_nonce: String,
    /// Version of the latest response, while it awaits ACK/NACK.
    pending: Option<String>,
    /// The version Envoy says it has (from its latest non-stale request).
    client_version: String,
    /// A version Envoy rejected: not sent again until the selection's content changes.
    held: Option<String>,
    last_nack: Option<Nack>,
    acks: u64,
    nacks: u64,
}

/// Status of one type on one stream (for the status endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeStatus {
    pub subscribed: Vec<String>,
    pub wildcard: bool,
    /// The version Envoy last ACKed (or reported on connect).
    pub acked_version: String,
    /// Sent and not yet answered.
    pub pending_version: Option<String>,
    pub held_nacked_version: Option<String>,
    pub last_nack: Option<Nack>,
    pub acks: u64,
    pub nacks: u64,
}

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
    pub group: Option<String>,
}

/// One ADS stream.
#[derive(Debug)]
pub struct AdsStream {
    node: Option<Node>,
    info: Option<NodeInfo>,
    world: Option<Arc<World>>,
    snapshot: Option<Arc<Snapshot>>,
    types: BTreeMap<String, TypeState>,
    nonce_seq: u64,
}

impl AdsStream {
    /// `world` is the latest published world, if any config was ever valid.
    pub fn new(world: Option<Arc<World>>) -> Self {
        Self {
            node: None,
            info: None,
            world,
            snapshot: None,
            types: BTreeMap::new(),
            nonce_seq: 0,
        }
    }

    pub fn node(&self) -> Option<&NodeInfo> {
        self.info.as_ref()
    }

    pub fn snapshot_version(&self) -> Option<&str> {
        self.snapshot.as_deref().map(|s| s.version.as_str())
    }

    pub fn handle_request(&mut self, req: DiscoveryRequest) -> Result<Step, ProtocolError> {
        let mut step = Step::default();
        self.identify(&req, &mut step)?;
        if req.type_url.is_empty() {
            return Err(ProtocolError::NoTypeUrl);
        }
        if !TYPES.contains(&req.type_url.as_str()) {
            step.events.push(Event::UnknownType { type_url: req.type_url });
            return Ok(step);
        }
        let type_url = req.type_url.clone();
        let st = self.types.entry(type_url.clone()).or_default();

        if !req.response_nonce.is_empty() && req.response_nonce != st.last_nonce {
            // Stale: Envoy answers an older response; a newer one is on its way or already
            // there. xDS protocol, "Resource updates": ignore it entirely.
            step.events.push(Event::StaleNonce {
                type_url,
                nonce: req.response_nonce,
            });
            return Ok(step);
        }

        let answers_pending = !req.response_nonce.is_empty() && st.pending.is_some();
        if req.response_nonce.is_empty() {
            // A (re)subscription: a new stream, or Envoy starting this type over.
            st.pending = None;
        }
        if answers_pending {
            let sent = st.pending.take().unwrap_or_default();
            match &req.error_detail {
                Some(status) => {
                    st.nacks += 1;
                    st.held = Some(sent.clone());
                    let nack = Nack {
                        version: sent,
                        detail: status.message.clone(),
                    };
                    st.last_nack = Some(nack.clone());
                    step.events.push(Event::Nack {
                        type_url: type_url.clone(),
                        version: nack.version,
                        detail: nack.detail,
                    });
                }
                None => {
                    st.acks += 1;
                    step.events.push(Event::Ack {
                        type_url: type_url.clone(),
                        version: req.version_info.clone(),
                    });
                }
            }
        }
        st.client_version = req.version_info;
        st.wildcard = req.resource_names.iter().any(|n| n == "*")
            || (req.resource_names.is_empty() && is_wildcard_type(&type_url));
        st.names = req.resource_names.into_iter().filter(|n| n != "*").collect();

        self.maybe_send(&type_url, false, &mut step);
        Ok(step)
    }

    /// New snapshots: push whatever changed for this node, type by type.
    pub fn set_world(&mut self, world: Option<Arc<World>>) -> Step {
        self.world = world;
        self.snapshot = match (&self.world, &self.node) {
            (Some(w), Some(n)) => Some(w.snapshot_for(n)),
            _ => None,
        };
        if let (Some(info), Some(w), Some(n)) = (&mut self.info, &self.world, &self.node) {
            info.group = w.group_of(n).map(str::to_owned);
        }
        self.send_all(false)
    }

    /// Safety net: re-send the current state of every subscribed type that is not awaiting
    /// an answer and not held by a NACK, even if Envoy already has it (idempotent for Envoy).
    pub fn resync(&mut self) -> Step {
        self.send_all(true)
    }

    pub fn status(&self) -> BTreeMap<&'static str, TypeStatus> {
        self.types
            .iter()
            .map(|(t, st)| {
                (
                    short_name(t),
                    TypeStatus {
                        subscribed: st.names.iter().cloned().collect(),
                        wildcard: st.wildcard,
                        acked_version: st.client_version.clone(),
                        pending_version: st.pending.clone(),
                        held_nacked_version: st.held.clone(),
                        last_nack: st.last_nack.clone(),
                        acks: st.acks,
                        nacks: st.nacks,
                    },
                )
            })
            .collect()
    }

    fn send_all(&mut self, force: bool) -> Step {
        let mut step = Step::default();
        for t in TYPES {
            if self.types.contains_key(t) {
                self.maybe_send(t, force, &mut step);
            }
        }
        step
    }

    fn identify(&mut self, req: &DiscoveryRequest, step: &mut Step) -> Result<(), ProtocolError> {
        match (&self.node, &req.node) {
            (None, Some(n)) if !n.id.is_empty() => {
                let group = self.world.as_ref().and_then(|w| w.group_of(n)).map(str::to_owned);
                self.snapshot = self.world.as_ref().map(|w| w.snapshot_for(n));
                self.info = Some(NodeInfo {
                    id: n.id.clone(),
                    cluster: n.cluster.clone(),
                    group: group.clone(),
                });
                step.events.push(Event::Connected {
                    node_id: n.id.clone(),
                    cluster: n.cluster.clone(),
                    group,
                });
                self.node = Some(n.clone());
                Ok(())
            }
            (None, _) => Err(ProtocolError::NoNode),
            // Envoy may repeat the node on every request; it must stay the same node.
            (Some(old), Some(n)) if !n.id.is_empty() && n.id != old.id => {
                Err(ProtocolError::NodeChanged(old.id.clone(), n.id.clone()))
            }
            (Some(_), _) => Ok(()),
        }
    }

    fn maybe_send(&mut self, type_url: &str, force: bool, step: &mut Step) {
        let Some(snapshot) = self.snapshot.clone() else { return };
        let Some(st) = self.types.get_mut(type_url) else { return };
        if st.pending.is_some() {
            return; // one in flight; the ACK/NACK brings us back here
        }
        if !st.wildcard && st.names.is_empty() {
            return; // unsubscribed from everything
        }
        let sel = snapshot.select(type_url, st.wildcard, &st.names);
        if st.held.as_deref() == Some(sel.version.as_str()) {
            return; // NACKed: wait for different content
        }
        if !force && st.client_version == sel.version {
            return; // Envoy has exactly this
        }
        if st.held.is_some() && st.held.as_deref() != Some(sel.version.as_str()) {
            st.held = None; // content changed: the hold is over
        }
        self.nonce_seq += 1;
        let nonce = self.nonce_seq.to_string();
        st.last_nonce = nonce.clone();
        st.pending = Some(sel.version.clone());
        step.events.push(Event::Sent {
            type_url: type_url.to_owned(),
            version: sel.version.clone(),
            nonce: nonce.clone(),
            resources: sel.resources.len(),
        });
        step.responses.push(DiscoveryResponse {
            version_info: sel.version,
            resources: sel.resources.iter().map(|r| r.body.clone()).collect(),
            type_url: type_url.to_owned(),
            nonce,
            ..Default::default()
        });
    }
}

/// Short type name helper re-exported for the shell.
pub fn type_name(type_url: &str) -> &'static str {
    snapshot::short_name(type_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{CLUSTER, ENDPOINT, EXTENSION, LISTENER, ROUTE};
    use crate::source::tests::example;
    use envoy_types::pb::google::rpc::Status;

    fn world_with_filter(json: &str) -> Arc<World> {
        let mut f = example();
        f.files.insert("filter.json".into(), json.as_bytes().to_vec());
        Arc::new(World::build(&f.validate().unwrap()).unwrap())
    }

    fn world() -> Arc<World> {
        world_with_filter(r#"{"pass_through":true}"#)
    }

    fn node() -> Node {
        Node {
            id: "envoy-1".into(),
            cluster: "gw".into(),
            ..Default::default()
        }
    }

    fn req(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            node: Some(node()),
            type_url: type_url.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    fn nack(type_url: &str, names: &[&str], version: &str, nonce: &str, detail: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            error_detail: Some(Status {
                code: 3,
                message: detail.into(),
                details: vec![],
            }),
            ..req(type_url, names, version, nonce)
        }
    }

    fn one(step: &Step) -> &DiscoveryResponse {
        assert_eq!(step.responses.len(), 1, "{step:?}");
        &step.responses[0]
    }

    /// A stream that has received LDS and ACKed it.
    fn acked_lds(w: Arc<World>) -> (AdsStream, String, String) {
        let mut s = AdsStream::new(Some(w));
        let r = one(&s.handle_request(req(LISTENER, &[], "", "")).unwrap()).clone();
        let step = s.handle_request(req(LISTENER, &[], &r.version_info, &r.nonce)).unwrap();
        assert!(step.responses.is_empty());
        (s, r.version_info, r.nonce)
    }

    #[test]
    fn first_request_gets_the_full_wildcard_state() {
        let mut s = AdsStream::new(Some(world()));
        let step = s.handle_request(req(LISTENER, &[], "", "")).unwrap();
        let r = one(&step);
        assert_eq!(r.type_url, LISTENER);
        assert_eq!(r.resources.len(), 1);
        assert!(!r.version_info.is_empty() && !r.nonce.is_empty());
        assert!(matches!(&step.events[0], Event::Connected { node_id, .. } if node_id == "envoy-1"));
        let c = one(&s.handle_request(req(CLUSTER, &[], "", "")).unwrap()).clone();
        assert_eq!(c.resources.len(), 2);
        assert_ne!(c.nonce, r.nonce, "nonces are unique on the stream");
    }

    #[test]
    fn lds_ack_sends_nothing_more_and_records_the_version() {
        let (s, version, _) = acked_lds(world());
        let st = &s.status()["lds"];
        assert_eq!(st.acked_version, version);
        assert_eq!(st.acks, 1);
        assert_eq!(st.pending_version, None);
    }

    #[test]
    fn lds_nack_holds_the_version_and_is_not_resent_in_a_loop() {
        let mut s = AdsStream::new(Some(world()));
        let r = one(&s.handle_request(req(LISTENER, &[], "", "")).unwrap()).clone();
        let step = s
            .handle_request(nack(LISTENER, &[], "", &r.nonce, "bad listener"))
            .unwrap();
        assert!(step.responses.is_empty(), "a NACKed version must not be re-sent");
        assert!(step.events.contains(&Event::Nack {
            type_url: LISTENER.into(),
            version: r.version_info.clone(),
            detail: "bad listener".into()
        }));
        // Neither the same world again nor the re-send timer re-sends it.
        assert!(s.set_world(Some(world())).responses.is_empty());
        assert!(s.resync().responses.is_empty());
        let st = &s.status()["lds"];
        assert_eq!(st.nacks, 1);
        assert_eq!(st.held_nacked_version.as_deref(), Some(r.version_info.as_str()));
        assert_eq!(st.last_nack.as_ref().unwrap().detail, "bad listener");
    }

    #[test]
    fn after_a_nack_a_changed_input_is_sent() {
        let mut s = AdsStream::new(Some(world()));
        let e = one(&s
            .handle_request(req(EXTENSION, &["mcp_policy/default"], "", ""))
            .unwrap())
        .clone();
        assert!(s
            .handle_request(nack(EXTENSION, &["mcp_policy/default"], "", &e.nonce, "rejected"))
            .unwrap()
            .responses
            .is_empty());
        let step = s.set_world(Some(world_with_filter(
            r#"{"pass_through":true,"limits":{"max_request_body_bytes":7}}"#,
        )));
        let r = one(&step);
        assert_ne!(r.version_info, e.version_info);
        assert_eq!(s.status()["ecds"].held_nacked_version, None);
    }

    #[test]
    fn stale_nonce_is_ignored_even_when_it_carries_a_nack() {
        let mut s = AdsStream::new(Some(world()));
        let r1 = one(&s
            .handle_request(req(EXTENSION, &["mcp_policy/default"], "", ""))
            .unwrap())
        .clone();
        s.handle_request(req(EXTENSION, &["mcp_policy/default"], &r1.version_info, &r1.nonce))
            .unwrap();
        let r2 = one(&s.set_world(Some(world_with_filter(r#"{"pass_through":true,"server":"x"}"#)))).clone();
        // Envoy's late request carrying the first nonce (even a NACK) is stale.
        let step = s
            .handle_request(nack(EXTENSION, &["mcp_policy/default"], "", &r1.nonce, "late"))
            .unwrap();
        assert!(step.responses.is_empty());
        assert_eq!(
            step.events,
            vec![Event::StaleNonce {
                type_url: EXTENSION.into(),
                nonce: r1.nonce.clone()
            }]
        );
        let st = &s.status()["ecds"];
        assert_eq!(st.nacks, 0);
        assert_eq!(st.pending_version.as_deref(), Some(r2.version_info.as_str()));
    }

    #[test]
    fn update_while_waiting_for_ack_is_sent_after_the_ack() {
        let mut s = AdsStream::new(Some(world()));
        let r1 = one(&s
            .handle_request(req(EXTENSION, &["mcp_policy/default"], "", ""))
            .unwrap())
        .clone();
        // Two updates before Envoy answers: nothing goes out while one is in flight.
        assert!(s
            .set_world(Some(world_with_filter(r#"{"pass_through":true,"server":"a"}"#)))
            .responses
            .is_empty());
        assert!(s
            .set_world(Some(world_with_filter(r#"{"pass_through":true,"server":"b"}"#)))
            .responses
            .is_empty());
        // The ACK of the first brings the latest (coalesced) state.
        let step = s
            .handle_request(req(EXTENSION, &["mcp_policy/default"], &r1.version_info, &r1.nonce))
            .unwrap();
        let r2 = one(&step);
        assert_ne!(r2.version_info, r1.version_info);
        assert_eq!(
            r2.version_info,
            world_with_filter(r#"{"pass_through":true,"server":"b"}"#)
                .snapshot_for(&node())
                .select(EXTENSION, true, &BTreeSet::new())
                .version
        );
    }

    #[test]
    fn an_update_reaches_every_subscribed_type_that_changed_and_only_those() {
        let w = world();
        let mut s = AdsStream::new(Some(w.clone()));
        for (t, names) in [
            (CLUSTER, vec![]),
            (ENDPOINT, vec!["alpha", "demo"]),
            (LISTENER, vec![]),
            (ROUTE, vec!["mcp_gateway"]),
            (EXTENSION, vec!["mcp_policy/default"]),
        ] {
            let r = one(&s.handle_request(req(t, &names, "", "")).unwrap()).clone();
            s.handle_request(req(t, &names, &r.version_info, &r.nonce)).unwrap();
        }
        let step = s.set_world(Some(world_with_filter(
            r#"{"pass_through":true,"limits":{"max_request_body_bytes":1}}"#,
        )));
        assert_eq!(one(&step).type_url, EXTENSION);
    }

    #[test]
    fn rds_subscription_gets_only_the_named_resources_and_follows_name_changes() {
        let mut s = AdsStream::new(Some(world()));
        let r = one(&s.handle_request(req(ENDPOINT, &["demo"], "", "")).unwrap()).clone();
        assert_eq!(r.resources.len(), 1);
        // Envoy adds a name: it sends the last nonce with the new set (not stale: latest nonce).
        let step = s
            .handle_request(req(ENDPOINT, &["demo", "alpha"], &r.version_info, &r.nonce))
            .unwrap();
        let r2 = one(&step);
        assert_eq!(r2.resources.len(), 2);
        // Asking for names that do not exist yields what exists (possibly nothing).
        let mut s = AdsStream::new(Some(world()));
        let r = one(&s.handle_request(req(ROUTE, &["nope"], "", "")).unwrap()).clone();
        assert!(r.resources.is_empty());
    }

    #[test]
    fn subscription_change_after_ack_is_not_mistaken_for_stale() {
        let mut s = AdsStream::new(Some(world()));
        let r = one(&s.handle_request(req(ROUTE, &["mcp_gateway"], "", "")).unwrap()).clone();
        s.handle_request(req(ROUTE, &["mcp_gateway"], &r.version_info, &r.nonce))
            .unwrap();
        // Unsubscribing from everything sends nothing.
        assert!(s
            .handle_request(req(ROUTE, &[], &r.version_info, &r.nonce))
            .unwrap()
            .responses
            .is_empty());
        let again = s
            .handle_request(req(ROUTE, &["mcp_gateway"], &r.version_info, &r.nonce))
            .unwrap();
        assert!(again.responses.is_empty(), "Envoy already has this exact content");
    }

    #[test]
    fn reconnecting_envoy_that_has_the_current_version_is_not_sent_it_again() {
        let (_, version, _) = acked_lds(world());
        let mut s = AdsStream::new(Some(world()));
        let step = s.handle_request(req(LISTENER, &[], &version, "")).unwrap();
        assert!(step.responses.is_empty());
        assert_eq!(s.status()["lds"].acked_version, version);
        // The re-send timer still sends it (safety net).
        assert_eq!(one(&s.resync()).version_info, version);
    }

    #[test]
    fn resync_resends_the_current_state_but_not_while_a_response_is_in_flight() {
        let (mut s, version, _) = acked_lds(world());
        let r = one(&s.resync()).clone();
        assert_eq!(r.version_info, version);
        assert!(s.resync().responses.is_empty(), "one in flight per type");
    }

    #[test]
    fn nothing_is_sent_before_any_valid_config_exists() {
        let mut s = AdsStream::new(None);
        assert!(s
            .handle_request(req(LISTENER, &[], "", ""))
            .unwrap()
            .responses
            .is_empty());
        let step = s.set_world(Some(world()));
        assert_eq!(one(&step).type_url, LISTENER);
    }

    #[test]
    fn node_group_decides_the_snapshot() {
        let mut s = AdsStream::new(Some(world()));
        let mut r = req(LISTENER, &[], "", "");
        r.node.as_mut().unwrap().cluster = "edge".into();
        let step = s.handle_request(r).unwrap();
        assert_eq!(one(&step).resources.len(), 2);
        assert_eq!(s.node().unwrap().group.as_deref(), Some("edge"));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut s = AdsStream::new(Some(world()));
        let mut r = req(LISTENER, &[], "", "");
        r.node = None;
        assert_eq!(s.handle_request(r).unwrap_err(), ProtocolError::NoNode);
        let mut s = AdsStream::new(Some(world()));
        assert_eq!(
            s.handle_request(req("", &[], "", "")).unwrap_err(),
            ProtocolError::NoTypeUrl
        );
        let mut s = AdsStream::new(Some(world()));
        s.handle_request(req(LISTENER, &[], "", "")).unwrap();
        let mut r = req(CLUSTER, &[], "", "");
        r.node.as_mut().unwrap().id = "someone-else".into();
        assert!(matches!(s.handle_request(r), Err(ProtocolError::NodeChanged(..))));
    }

    #[test]
    fn node_may_be_omitted_after_the_first_request() {
        let mut s = AdsStream::new(Some(world()));
        s.handle_request(req(LISTENER, &[], "", "")).unwrap();
        let mut r = req(CLUSTER, &[], "", "");
        r.node = None;
        assert_eq!(one(&s.handle_request(r).unwrap()).type_url, CLUSTER);
    }

    #[test]
    fn unknown_types_get_no_response() {
        let mut s = AdsStream::new(Some(world()));
        let step = s
            .handle_request(req(
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                &["x"],
                "",
                "",
            ))
            .unwrap();
        assert!(step.responses.is_empty());
        assert!(matches!(step.events.last(), Some(Event::UnknownType { .. })));
    }
}
