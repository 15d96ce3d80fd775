//! The bootstrap: the config file's `xds:` section, which names the control
//! plane and how this proxy introduces itself to it.

use std::time::Duration;

use metaproxy_core::config::ConfigDuration;
use serde::Deserialize;

/// `xds: { server: 127.0.0.1:18000, node_id: gw-1, cluster: gateways }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsSettings {
    /// The control plane, `host:port` (plain HTTP/2 for `grpc`, HTTP/1.1
    /// for `rest`).
    pub server: String,
    /// This proxy's node id (`node.id` in every request).
    pub node_id: String,
    /// The node's cluster (`node.cluster`), e.g. the fleet it belongs to.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The transport: `grpc` (ADS, state of the world; the default),
    /// `delta_grpc` (ADS, incremental) or `rest` (polling).
    #[serde(default)]
    pub transport: Transport,
    /// `rest`: how long to wait between polls of each type (default 1s,
    /// as Envoy's `refresh_delay`).
    #[serde(default)]
    pub refresh_delay: Option<ConfigDuration>,
    /// `rest`: give up one poll after this long (default 5s).
    #[serde(default)]
    pub request_timeout: Option<ConfigDuration>,
    /// Give up one connection attempt after this long (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<ConfigDuration>,
    /// Longest wait between reconnections (default 10s; the wait starts at
    /// 100 ms and doubles).
    #[serde(default)]
    pub max_backoff: Option<ConfigDuration>,
}

/// How the proxy talks to the control plane.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Aggregated Discovery Service over one gRPC stream.
    #[default]
    Grpc,
    /// Incremental ADS over one gRPC stream: only changes are sent.
    DeltaGrpc,
    /// Envoy's REST-JSON transport: each type polled with a JSON
    /// `DiscoveryRequest` (`POST /v3/discovery:<type>`).
    Rest,
}

impl Transport {
    /// Its name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::DeltaGrpc => "delta_grpc",
            Transport::Rest => "rest",
        }
    }
}

impl XdsSettings {
    /// Reads the `xds:` section.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        let s: XdsSettings = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        if s.node_id.is_empty() {
            return Err("`node_id` must not be empty".into());
        }
        Ok(s)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .map_or(Duration::from_secs(5), |d| d.get())
    }

    /// `rest`: the wait between polls.
    pub fn refresh_delay(&self) -> Duration {
        self.refresh_delay
            .map_or(Duration::from_secs(1), |d| d.get())
    }

    /// `rest`: the bound on one poll.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
            .map_or(Duration::from_secs(5), |d| d.get())
    }

    /// The longest backoff between reconnections.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
            .map_or(Duration::from_secs(10), |d| d.get())
    }
}
