//! A listener's route table: virtual hosts chosen by host name, routes
//! tried in config order, the first match wins. Both are indexed when the
//! table is built ([`RouteIndex`], [`HostIndex`]), so a request costs about
//! the same with 10 000 routes as with 10; the answer is the one a scan in
//! config order gives.

use crate::metadata::MetadataView;

use super::hosts::{HostIndex, VirtualHost};
use super::index::RouteIndex;
use super::route::Route;

/// The metadata key virtual hosts are selected by.
pub const HOST_KEY: &str = ":authority";

/// A listener's routes in order, optionally grouped by virtual host.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// The routes; the first match wins (when there are no virtual hosts).
    routes: Vec<Route>,
    /// Virtual hosts: exact names first, then the longest suffix wildcard, then `*`.
    virtual_hosts: Vec<VirtualHost>,
    /// Index over `routes` (`None`: scanned).
    index: Option<RouteIndex>,
    /// Index over each virtual host's routes, by position.
    vhost_indexes: Vec<Option<RouteIndex>>,
    /// Virtual hosts by host name.
    hosts: HostIndex,
}

impl RouteTable {
    /// A table of `routes` (when there are no virtual hosts) or of
    /// `virtual_hosts`, indexed.
    pub fn new(routes: Vec<Route>, virtual_hosts: Vec<VirtualHost>) -> Self {
        RouteTable {
            index: RouteIndex::build(&routes),
            vhost_indexes: virtual_hosts
                .iter()
                .map(|v| RouteIndex::build(&v.routes))
                .collect(),
            hosts: HostIndex::build(&virtual_hosts),
            routes,
            virtual_hosts,
        }
    }

    /// The routes, in order (when there are no virtual hosts).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The virtual hosts, in order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.virtual_hosts
    }

    /// The first route whose conditions all hold (in the request's virtual host, if any).
    pub fn find(&self, view: &impl MetadataView) -> Option<&Route> {
        let (routes, index) = if self.virtual_hosts.is_empty() {
            (&self.routes, &self.index)
        } else {
            let pos = self.hosts.find(view.lookup(HOST_KEY).unwrap_or(""))?;
            (&self.virtual_hosts[pos].routes, &self.vhost_indexes[pos])
        };
        match index {
            Some(index) => index.find(routes, view),
            None => routes.iter().find(|r| r.matches(view)),
        }
    }

    /// The virtual host for `host` (a port suffix is ignored).
    pub fn virtual_host(&self, host: &str) -> Option<&VirtualHost> {
        self.hosts.find(host).map(|pos| &self.virtual_hosts[pos])
    }

    /// The key the routes are indexed by (for the routes of virtual host
    /// `vhost`, when given), if they are.
    pub fn index_key(&self, vhost: Option<usize>) -> Option<&str> {
        match vhost {
            None => self.index.as_ref(),
            Some(pos) => self.vhost_indexes.get(pos)?.as_ref(),
        }
        .map(RouteIndex::key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;
    use crate::router::HostMatch;
    use std::sync::Arc;

    fn vhost(name: &str, hosts: &[&str]) -> VirtualHost {
        VirtualHost {
            name: Arc::from(name),
            hosts: hosts.iter().map(|h| HostMatch::parse(h)).collect(),
            routes: Vec::new(),
        }
    }

    #[test]
    fn virtual_hosts_prefer_exact_then_longest_suffix_then_any() {
        let t = RouteTable::new(
            Vec::new(),
            vec![
                vhost("any", &["*"]),
                vhost("wild", &["*.example.com"]),
                vhost("deeper", &["*.api.example.com"]),
                vhost("shop", &["Shop.Example.com"]),
            ],
        );
        let name = |h: &str| t.virtual_host(h).map(|v| v.name.to_string());
        assert_eq!(name("shop.example.com:8080").as_deref(), Some("shop"));
        assert_eq!(name("x.example.com").as_deref(), Some("wild"));
        assert_eq!(name("v1.api.example.com").as_deref(), Some("deeper"));
        assert_eq!(name("example.com").as_deref(), Some("any"));
        assert_eq!(name("[::1]:80").as_deref(), Some("any"));
        let m: Metadata = [(":authority", "nothing")].into_iter().collect();
        assert!(t.find(&m).is_none(), "the catch-all host has no routes");
    }
}
