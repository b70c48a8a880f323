//! The gRPC shell around [`AdsStream`]: one task per Envoy stream, a `select!` over Envoy's
//! requests, newly published worlds and the re-send timer. Protocol decisions live in
//! `ads.rs`; this file only moves messages, logs and counts.

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
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
