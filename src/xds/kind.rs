//! The resource types the proxy subscribes to, by their type URLs.

/// A resource type of the xDS protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    Route,
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    Endpoint,
    /// TRDS: a `thrift_proxy` listener's routes,
    /// `envoy.extensions.filters.network.thrift_proxy.v3.RouteConfiguration`.
    ThriftRoute,
    /// DRDS: a `dubbo_proxy` listener's routes,
    /// `envoy.extensions.filters.network.dubbo_proxy.v3.MultipleRouteConfiguration`.
    DubboRoute,
    /// Generic RDS: a `generic_proxy` listener's routes,
    /// `envoy.extensions.filters.network.generic_proxy.v3.RouteConfiguration`.
    GenericRoute,
}

impl Kind {
    /// Every kind, in the order a proxy subscribes (clusters first, as
    /// Envoy warms them before listeners).
    pub const ALL: [Kind; 7] = [
        Kind::Cluster,
        Kind::Endpoint,
        Kind::Listener,
        Kind::Route,
        Kind::ThriftRoute,
        Kind::DubboRoute,
        Kind::GenericRoute,
    ];

    /// The type URL.
    pub fn type_url(self) -> &'static str {
        match self {
            Kind::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            Kind::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            Kind::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Kind::Endpoint => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            Kind::ThriftRoute => {
                "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.RouteConfiguration"
            }
            Kind::DubboRoute => {
                "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.MultipleRouteConfiguration"
            }
            Kind::GenericRoute => {
                "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.v3.RouteConfiguration"
            }
        }
    }

    /// The kind of a type URL.
    pub fn of(type_url: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_url() == type_url)
    }

    /// The REST transport's path for the kind (`/v3/discovery:clusters`);
    /// TRDS, DRDS and generic RDS have none (Envoy takes them over ADS only).
    pub fn rest_path(self) -> Option<&'static str> {
        match self {
            Kind::Listener => Some("/v3/discovery:listeners"),
            Kind::Route => Some("/v3/discovery:routes"),
            Kind::Cluster => Some("/v3/discovery:clusters"),
            Kind::Endpoint => Some("/v3/discovery:endpoints"),
            Kind::ThriftRoute | Kind::DubboRoute | Kind::GenericRoute => None,
        }
    }

    /// The short name used in metrics, logs and `/config_dump` (`lds`, ...).
    pub fn short(self) -> &'static str {
        match self {
            Kind::Listener => "lds",
            Kind::Route => "rds",
            Kind::Cluster => "cds",
            Kind::Endpoint => "eds",
            Kind::ThriftRoute => "trds",
            Kind::DubboRoute => "drds",
            Kind::GenericRoute => "generic_rds",
        }
    }

    /// Whether the proxy asks for every resource of the kind (LDS, CDS)
    /// rather than for names (RDS, EDS, TRDS, DRDS).
    pub fn wildcard(self) -> bool {
        matches!(self, Kind::Listener | Kind::Cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_urls_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::of(k.type_url()), Some(k));
        }
        assert_eq!(Kind::of("type.googleapis.com/nope"), None);
    }
}
