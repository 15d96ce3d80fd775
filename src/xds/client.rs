//! The ADS stream: one gRPC stream to the control plane carrying every
//! type (state of the world, or incremental: `delta.rs`), reopened with
//! backoff when it fails; the resources already held keep serving
//! meanwhile.

use std::future::Future;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Xds;
use super::delta;
use super::settings::{Transport, XdsSettings};

/// Largest message accepted from the control plane (either transport).
pub(super) const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Keeps a stream open until `stop` is cancelled.
pub async fn run(xds: std::sync::Arc<Xds>, settings: XdsSettings, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    // What an incremental stream accepted, for the next one to resume from.
    let mut held = delta::Held::default();
    loop {
        let started = std::time::Instant::now();
        let once = async {
            match settings.transport {
                Transport::DeltaGrpc => delta::stream_once(&xds, &settings, &mut held).await,
                _ => stream_once(&xds, &settings).await,
            }
        };
        let ended = tokio::select! {
            _ = stop.cancelled() => return,
            r = once => r,
        };
        let why = match ended {
            Ok(()) => "the control plane closed the stream".to_string(),
            Err(e) => e,
        };
        xds.status.connected(false, Some(why.clone()));
        // A stream that lived a while starts the backoff over.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(100);
        }
        warn!(server = %settings.server, error = %why, retry_in = ?backoff, "xDS stream down; the resources held keep serving");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.max_backoff());
    }
}

/// An ADS client connected to the control plane.
pub(super) async fn ads_client(
    settings: &XdsSettings,
) -> Result<AggregatedDiscoveryServiceClient<tonic::transport::Channel>, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", settings.server))
        .map_err(|e| format!("bad server address `{}`: {e}", settings.server))?
        .connect_timeout(settings.connect_timeout())
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {}", settings.server, chain(&e)))?;
    Ok(AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// One stream, from connect to its end.
async fn stream_once(xds: &Xds, settings: &XdsSettings) -> Result<(), String> {
    let mut client = ads_client(settings).await?;
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(64);
    for r in xds.state.lock().await.opening_requests() {
        let _ = tx.send(r).await;
    }
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("stream refused: {}", s.message()))?
        .into_inner();
    xds.status.connected(true, None);
    info!(server = %settings.server, node = %settings.node_id, "xDS stream open");
    loop {
        let resp = match inbound.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(s) => return Err(format!("stream failed: {}", s.message())),
        };
        // Responses that arrived meanwhile are taken together (one build).
        let mut batch = vec![resp];
        let mut ended = None;
        while ended.is_none() {
            let mut next = std::pin::pin!(inbound.message());
            let waker = std::task::Waker::noop();
            match next
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
            {
                std::task::Poll::Ready(Ok(Some(r))) => batch.push(r),
                std::task::Poll::Ready(Ok(None)) => ended = Some(Ok(())),
                std::task::Poll::Ready(Err(s)) => {
                    ended = Some(Err(format!("stream failed: {}", s.message())));
                }
                std::task::Poll::Pending => break,
            }
        }
        let requests = {
            let mut state = xds.state.lock().await;
            state.handle_all(batch, xds).await
        };
        for r in requests {
            if tx.send(r).await.is_err() {
                return Err("stream closed while answering".into());
            }
        }
        if let Some(end) = ended {
            return end;
        }
    }
}

/// An error and its causes, on one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
