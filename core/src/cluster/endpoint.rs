//! One upstream endpoint: address, labels, weight, live counters and its pool.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::health::EndpointHealth;
use crate::error::{ErrorKind, ProxyError};

/// The label holding an endpoint's zone.
pub const ZONE_LABEL: &str = "zone";

/// An upstream endpoint.
pub struct Endpoint {
    /// Where it listens.
    pub address: SocketAddr,
    /// Labels for subsets (`version: v1`), shared with the discovered
    /// entry it came from.
    pub labels: Arc<BTreeMap<String, String>>,
    /// Relative weight (≥ 1).
    pub weight: u32,
    /// Priority level (0 first).
    pub priority: u32,
    /// Active and passive health.
    pub health: EndpointHealth,
    active: AtomicUsize,
    removed: AtomicBool,
    /// The endpoint's connections, created on first use by the engine of
    /// the cluster's protocol (its own pool type: see [`Endpoint::pool_of`]).
    pool: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("labels", &self.labels)
            .field("weight", &self.weight)
            .field("priority", &self.priority)
            .field("zone", &self.zone())
            .field("active", &self.active())
            .finish()
    }
}

impl Endpoint {
    /// A new endpoint with no traffic yet.
    pub fn new(
        address: SocketAddr,
        labels: impl Into<Arc<BTreeMap<String, String>>>,
        weight: u32,
    ) -> Self {
        Self {
            address,
            labels: labels.into(),
            weight: weight.max(1),
            priority: 0,
            health: EndpointHealth::default(),
            active: AtomicUsize::new(0),
            removed: AtomicBool::new(false),
            pool: OnceLock::new(),
        }
    }

    /// Sets the priority level.
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Its zone: the `zone` label (set by the endpoint's `zone` field).
    pub fn zone(&self) -> Option<&str> {
        self.labels.get(ZONE_LABEL).map(String::as_str)
    }

    /// Requests in flight to this endpoint.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts one request in flight until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self.clone())
    }

    /// Whether discovery removed it: it drains and is never picked again.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Marks it removed by discovery.
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }

    /// The endpoint's pool, made by `make` on first use. Core does not know
    /// the protocol's pool type, so the one slot is type-erased: each call
    /// checks the type (one `TypeId` comparison) and refuses a pool made
    /// by another protocol.
    pub fn pool_of<P: Send + Sync + 'static>(
        &self,
        make: impl FnOnce() -> Result<P, ProxyError>,
    ) -> Result<&P, ProxyError> {
        let pool = match self.pool.get() {
            Some(pool) => pool,
            None => {
                let made = make()?;
                self.pool.get_or_init(|| Box::new(made))
            }
        };
        pool.downcast_ref::<P>().ok_or_else(|| {
            ProxyError::internal(
                ErrorKind::Internal,
                format!("endpoint {} is pooled for another protocol", self.address),
            )
        })
    }

    /// Whether every `(key, value)` of `selector` is among the labels.
    pub fn has_labels(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|lv| lv == v))
    }
}

/// Decrements the endpoint's active count on drop.
#[derive(Debug)]
pub struct ActiveGuard(Arc<Endpoint>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}
