//! The framed RPC engine's connections: an [`UpstreamConn`] per pooled
//! connection, shared (multiplex, pipeline) or exclusive as the cluster's
//! `mode` says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, Endpoint, Permit, PoolSettings};
use crate::codec::{Codec, UpstreamMode};
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::tls::ClusterTls;

use super::connection::{Matching, UpstreamConn};
use super::pool::{ConnState, Connector, Pool, PoolOptions, Sharing};

/// Opens [`UpstreamConn`]s speaking the cluster's codec.
pub struct RpcConnector<C: Codec> {
    codec: Arc<C>,
    connect_timeout: Duration,
    tls: Option<Arc<ClusterTls>>,
    matching: Matching,
}

/// One endpoint's pool of the framed RPC engine.
pub type RpcPool<C> = Pool<RpcConnector<C>>;

impl<C: Codec> RpcConnector<C> {
    /// The cluster-side codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }
}

impl<C: Codec> Connector for RpcConnector<C> {
    type Conn = UpstreamConn<C>;

    async fn connect(&self, address: SocketAddr, slot: Permit) -> Result<Self::Conn, ProxyError> {
        let stream = super::stream::connect(address, self.connect_timeout, self.tls.as_deref())
            .await
            .map_err(|why| connect_error(address, why))?;
        tracing::debug!(%address, matching = ?self.matching, "upstream connection opened");
        Ok(UpstreamConn::start(
            self.codec.clone(),
            stream,
            address,
            self.matching,
            Some(slot),
        ))
    }

    fn state(&self, conn: &Self::Conn) -> ConnState {
        if conn.is_open() {
            ConnState::Ready
        } else {
            ConnState::Closed
        }
    }

    fn in_flight(&self, conn: &Self::Conn) -> Option<usize> {
        Some(conn.in_flight())
    }

    /// Closed at once: a late answer must not wait on it.
    fn discard(&self, conn: Self::Conn) {
        conn.close();
    }
}

/// A failed connect as the shared error: the upstream's, retryable.
pub fn connect_error(address: SocketAddr, why: super::ConnectError) -> ProxyError {
    ProxyError::new(
        ErrorKind::ConnectFailure,
        Origin::Upstream,
        format!("cannot connect to {address}: {why}"),
    )
    .with_cause(why)
}

/// How the cluster's pool settings share connections: `exclusive` caps
/// the open connections at `connections_per_endpoint`, the other modes
/// share that many.
pub fn options_of(settings: &PoolSettings) -> PoolOptions {
    let n = settings.connections_per_endpoint;
    PoolOptions {
        sharing: match settings.mode {
            UpstreamMode::Exclusive => Sharing::Exclusive { most_open: n },
            UpstreamMode::Multiplex | UpstreamMode::Pipeline => Sharing::Shared { connections: n },
        },
        breaker: settings.breaker.clone(),
        idle_timeout: settings.idle_timeout,
    }
}

/// The pool of `endpoint`, created on first use with the cluster's codec.
pub fn pool_of<'a, C: Codec>(
    endpoint: &'a Endpoint,
    cluster: &Cluster,
) -> Result<&'a RpcPool<C>, ProxyError> {
    endpoint.pool_of(|| {
        let codec = cluster.parts.codec.clone().downcast::<C>().map_err(|_| {
            ProxyError::internal(
                ErrorKind::Internal,
                format!("cluster `{}` speaks another protocol", cluster.parts.name),
            )
        })?;
        let settings = &cluster.parts.pool;
        let connector = RpcConnector {
            codec,
            connect_timeout: settings.connect_timeout,
            tls: settings.tls.clone(),
            matching: matching_of(settings),
        };
        Ok(Pool::new(
            connector,
            endpoint.address,
            &options_of(settings),
        ))
    })
}

/// How a connection of the cluster matches answers: by id in `multiplex`
/// mode; in order otherwise (an exclusive lease carries one call, so a
/// server that does not echo ids still gets its answer matched), at most
/// `pipeline_depth` calls at once in `pipeline` mode.
fn matching_of(settings: &PoolSettings) -> Matching {
    match settings.mode {
        UpstreamMode::Pipeline => Matching {
            in_order: true,
            depth: settings.pipeline_depth,
        },
        UpstreamMode::Exclusive => Matching {
            in_order: true,
            depth: usize::MAX,
        },
        UpstreamMode::Multiplex => Matching {
            in_order: false,
            depth: usize::MAX,
        },
    }
}
