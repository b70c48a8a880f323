//! The gRPC shell around [`AdsStream`]: one task per Envoy stream, a `select!` over Envoy's
//! requests, newly published worlds and the re-send timer. Protocol decisions live in
//! `ads.rs`; this file only moves messages, logs and counts.

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::{MetricsService, MetricsServiceServer};
use envoy_types::pb::envoy::service::metrics::v3::{StreamMetricsMessage, StreamMetricsResponse};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ads::{type_name, AdsStream, Event};
use crate::log;
use crate::state::{Shared, StreamStatus};

pub struct Ads {
    shared: Arc<Shared>,
    resend: Duration,
}

impl Ads {
    pub fn new(shared: Arc<Shared>, resend: Duration) -> Self {
        Self { shared, resend }
    }

    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        // Filter configs with inlined keys can be large; Envoy's own limit is the real one.
        AggregatedDiscoveryServiceServer::new(self).max_encoding_message_size(64 << 20)
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request.remote_addr();
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let id = self.shared.new_stream_id();
        tokio::spawn(run_stream(id, peer, inbound, tx, self.shared.clone(), self.resend));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "delta xDS is not served; configure api_type GRPC (State of the World) for ADS",
        ))
    }
}

async fn run_stream(
    id: u64,
    peer: Option<SocketAddr>,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    shared: Arc<Shared>,
    resend: Duration,
) {
    let mut world_rx = shared.subscribe();
    let mut stream = AdsStream::new(world_rx.borrow_and_update().clone());
    let connected_since = log::rfc3339(SystemTime::now());
    let peer_s = peer.map(|p| p.to_string());
    let who = |s: &AdsStream| match s.node() {
        Some(n) => format!("stream {id} node {:?} (cluster {:?})", n.id, n.cluster),
        None => format!("stream {id} from {}", peer_s.as_deref().unwrap_or("?")),
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + resend, resend);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let step = tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => match stream.handle_request(req) {
                    Ok(step) => step,
                    Err(e) => {
                        shared.metrics.streams_dropped_total.fetch_add(1, Relaxed);
                        log::warn(&format!("{}: dropped: {e}", who(&stream)));
                        let _ = tx.send(Err(Status::invalid_argument(e.to_string()))).await;
                        break;
                    }
                },
                Ok(None) => break,
                Err(status) => {
                    // Undecodable message or transport error: this stream only.
                    shared.metrics.streams_dropped_total.fetch_add(1, Relaxed);
                    log::warn(&format!("{}: closed: {}", who(&stream), status.message()));
                    break;
                }
            },
            changed = world_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let world = world_rx.borrow_and_update().clone();
                stream.set_world(world)
            },
            _ = tick.tick() => {
                shared.metrics.resyncs_total.fetch_add(1, Relaxed);
                stream.resync()
            },
            _ = tx.closed() => break,
        };
        shared.count(&step.events);
        for e in &step.events {
            log_event(&who(&stream), e);
        }
        if let Some(n) = stream.node() {
            shared.update_stream(StreamStatus {
                stream: id,
                node_id: n.id.clone(),
                cluster: n.cluster.clone(),
                group: n.group.clone(),
                peer: peer_s.clone(),
                connected_since: connected_since.clone(),
                snapshot_version: stream.snapshot_version().map(str::to_owned),
                types: stream.status(),
            });
        }
        let mut closed = false;
        for r in step.responses {
            if tx.send(Ok(r)).await.is_err() {
                closed = true;
                break;
            }
        }
        if closed {
            break;
        }
    }
    shared.remove_stream(id);
    log::info(&format!("{}: disconnected", who(&stream)));
}

fn log_event(who: &str, e: &Event) {
    match e {
        Event::Connected { group, .. } => log::info(&format!(
            "{who}: connected, node group {}",
            group.as_deref().unwrap_or("(none)")
        )),
        Event::Sent {
            type_url,
            version,
            nonce,
            resources,
        } => log::info(&format!(
            "{who}: sent {} version {version} nonce {nonce} ({resources} resources)",
            type_name(type_url)
        )),
        Event::Ack { type_url, version } => log::info(&format!("{who}: ACK {} version {version}", type_name(type_url))),
        Event::Nack {
            type_url,
            version,
            detail,
        } => log::error(&format!(
            "{who}: NACK {} version {version} (held until the input changes): {detail}",
            type_name(type_url)
        )),
        Event::StaleNonce { type_url, nonce } => log::debug(&format!(
            "{who}: ignored {} request with stale nonce {nonce}",
            type_name(type_url)
        )),
        Event::UnknownType { type_url } => log::debug(&format!("{who}: not serving {type_url}")),
    }
}

/// envoy.service.metrics.v3.MetricsService: the Envoys' `metrics_service` stats sink. Each
/// stream's first message names the node; every message's integrity counters are kept for it
/// (`fleet.rs`), the rest of Envoy's stats dropped on arrival.
pub struct Metrics {
    shared: Arc<Shared>,
}

/// Envoy sends every stat each flush: a few MB at most even for a large config.
const MAX_METRICS_MESSAGE: usize = 16 << 20;

impl Metrics {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    pub fn into_service(self) -> MetricsServiceServer<Self> {
        MetricsServiceServer::new(self).max_decoding_message_size(MAX_METRICS_MESSAGE)
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let peer = request
            .remote_addr()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        let mut inbound = request.into_inner();
        let first = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(Response::new(StreamMetricsResponse {})),
            Err(status) => {
                log::warn(&format!("metrics stream from {peer}: closed: {}", status.message()));
                return Err(status);
            }
        };
        let Some(node) = first.identifier.as_ref().and_then(|i| i.node.as_ref()) else {
            log::warn(&format!(
                "metrics stream from {peer}: refused: the first message names no node"
            ));
            return Err(Status::invalid_argument(
                "the first StreamMetricsMessage must carry identifier.node",
            ));
        };
        let (node_id, cluster) = (node.id.clone(), node.cluster.clone());
        if !self.shared.fleet().open(&node_id, &cluster, SystemTime::now()) {
            log::warn(&format!(
                "metrics stream from {peer}: refused: unusable node id {node_id:?}"
            ));
            return Err(Status::invalid_argument(
                "identifier.node.id must be 1-256 characters, no control characters",
            ));
        }
        log::info(&format!("metrics stream from node {node_id:?} ({peer}): open"));
        // Closed however the stream ends, a dropped connection included (the future is dropped).
        let _open = OpenStream {
            shared: self.shared.clone(),
            node_id: node_id.clone(),
        };
        let shared = self.shared.clone();
        let mut named = false;
        let mut record = |m: &StreamMetricsMessage| {
            if !named {
                // Once per stream: how this Envoy names the module's stats (flat or tagged).
                if let Some(n) = crate::fleet::integrity_naming(&m.envoy_metrics) {
                    log::info(&format!("metrics stream from node {node_id:?}: integrity stats as {n}"));
                    named = true;
                }
            }
            let series = crate::fleet::integrity_series(&m.envoy_metrics);
            shared.fleet().record(&node_id, series, SystemTime::now());
        };
        record(&first);
        let end = loop {
            match inbound.message().await {
                Ok(Some(m)) => record(&m),
                Ok(None) => break Ok(Response::new(StreamMetricsResponse {})),
                Err(status) => {
                    log::warn(&format!(
                        "metrics stream from node {node_id:?}: closed: {}",
                        status.message()
                    ));
                    break Err(status);
                }
            }
        };
        end
    }
}

struct OpenStream {
    shared: Arc<Shared>,
    node_id: String,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.shared.fleet().close(&self.node_id);
        log::info(&format!("metrics stream from node {:?}: closed", self.node_id));
    }
}
