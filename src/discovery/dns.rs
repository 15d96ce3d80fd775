//! Endpoints from DNS: every A and AAAA record of a name, with one port,
//! re-resolved every `refresh` (sooner when the records' TTL is shorter).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use metaproxy_core::config::ConfigDuration;
use metaproxy_core::discovery::{
    DiscoveredEndpoint, DiscoveryContext, DiscoveryError, DiscoveryFactory, DiscoverySource,
    FeedWriter, SourceFuture,
};
use serde::Deserialize;

use super::backoff::Backoff;

/// Shortest re-resolution interval, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsSettings {
    name: String,
    port: u16,
    /// Re-resolve this often (default 5s).
    #[serde(default)]
    refresh: Option<ConfigDuration>,
    /// `ip:port` of the DNS server to ask (default: the system's resolvers).
    #[serde(default)]
    resolver: Option<SocketAddr>,
}

/// Builds [`DnsSource`]s.
pub(super) struct DnsFactory;

impl DiscoveryFactory for DnsFactory {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _context: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError> {
        let s: DnsSettings = super::settings("dns", config)?;
        if s.name.is_empty() {
            return Err(DiscoveryError::invalid("dns", "`name` is empty"));
        }
        if s.port == 0 {
            return Err(DiscoveryError::invalid("dns", "`port` must be above zero"));
        }
        let refresh = s.refresh.map_or(Duration::from_secs(5), |d| d.get());
        if refresh.is_zero() {
            return Err(DiscoveryError::invalid(
                "dns",
                "`refresh` must be above zero",
            ));
        }
        // A fully qualified name: no search domains tried.
        let name = if s.name.ends_with('.') {
            s.name.clone()
        } else {
            format!("{}.", s.name)
        };
        Ok(Arc::new(DnsSource {
            name,
            port: s.port,
            refresh,
            resolver: s.resolver,
        }))
    }
}

/// Resolves one name.
#[derive(Debug)]
struct DnsSource {
    name: String,
    port: u16,
    refresh: Duration,
    resolver: Option<SocketAddr>,
}

impl DnsSource {
    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.resolver {
            Some(at) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = at.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = at.port();
                let server = NameServerConfig::new(at.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| e.to_string())?,
        };
        let options = builder.options_mut();
        // Every refresh asks the server: the source is the cache.
        options.cache_size = 0;
        options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        // A dead server is a failure within a refresh, not a minute later.
        options.timeout = self
            .refresh
            .clamp(Duration::from_millis(200), Duration::from_secs(2));
        options.attempts = 1;
        builder.build().map_err(|e| e.to_string())
    }
}

impl DiscoverySource for DnsSource {
    fn kind(&self) -> &'static str {
        "dns"
    }

    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture {
        Box::pin(async move {
            let resolver = match self.resolver() {
                Ok(r) => r,
                Err(e) => {
                    feed.failed(format!("DNS resolver: {e}"));
                    return;
                }
            };
            let mut backoff = Backoff::new(self.refresh);
            loop {
                let wait = match resolver.lookup_ip(self.name.as_str()).await {
                    Ok(found) => {
                        let mut list: Vec<DiscoveredEndpoint> = found
                            .iter()
                            .map(|ip| DiscoveredEndpoint::at(SocketAddr::new(ip, self.port)))
                            .collect();
                        // Record order rotates between answers: keep the set stable.
                        list.sort_by_key(|e| e.address);
                        list.dedup_by_key(|e| e.address);
                        feed.publish(list);
                        backoff.reset();
                        let ttl = found
                            .valid_until()
                            .saturating_duration_since(Instant::now());
                        self.refresh.min(ttl).max(MIN_REFRESH)
                    }
                    Err(e) if e.is_no_records_found() => {
                        // The name exists with no address, or not at all: no endpoints.
                        feed.publish(Vec::new());
                        backoff.reset();
                        self.refresh
                    }
                    Err(e) => {
                        feed.failed(format!("resolving {}: {e}", self.name));
                        backoff.delay()
                    }
                };
                tokio::select! {
                    _ = feed.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}
