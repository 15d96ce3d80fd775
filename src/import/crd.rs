//! The Istio (networking.istio.io v1 / v1beta1 / v1alpha3) and Aeraki
//! (metaprotocol.aeraki.io v1alpha1) resources `metaproxy import istio`
//! reads, as their published CRD schemas name the fields. Every struct
//! keeps the fields its schema has that the schema lists here; anything
//! else lands in `other` and is reported, never dropped quietly.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Fields of a resource not in the schema this importer knows.
pub(crate) type Other = BTreeMap<String, Value>;

/// `{ exact | prefix | regex }` (Istio's `StringMatch`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct StringMatch {
    pub(crate) exact: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) regex: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `{ number }` of a destination or a server.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PortSelector {
    pub(crate) number: Option<u32>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A destination: a host, a subset, a port.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Destination {
    pub(crate) host: String,
    pub(crate) subset: Option<String>,
    pub(crate) port: Option<PortSelector>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `{ value }` percentages.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Percent {
    pub(crate) value: Option<f64>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

// ---- Gateway ----

/// `Gateway.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct GatewaySpec {
    pub(crate) selector: BTreeMap<String, String>,
    pub(crate) servers: Vec<Server>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One server of a gateway.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Server {
    pub(crate) port: ServerPort,
    pub(crate) bind: Option<String>,
    pub(crate) hosts: Vec<String>,
    pub(crate) tls: Option<ServerTls>,
    pub(crate) name: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A server's port.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ServerPort {
    pub(crate) number: u32,
    pub(crate) protocol: String,
    pub(crate) name: Option<String>,
    pub(crate) target_port: Option<u32>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A server's TLS settings.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ServerTls {
    pub(crate) https_redirect: bool,
    pub(crate) mode: Option<String>,
    pub(crate) server_certificate: Option<String>,
    pub(crate) private_key: Option<String>,
    pub(crate) ca_certificates: Option<String>,
    pub(crate) credential_name: Option<String>,
    pub(crate) min_protocol_version: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

// ---- VirtualService ----

/// `VirtualService.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct VirtualServiceSpec {
    pub(crate) hosts: Vec<String>,
    pub(crate) gateways: Vec<String>,
    pub(crate) http: Vec<HttpRoute>,
    pub(crate) tls: Vec<TlsRoute>,
    pub(crate) tcp: Vec<Value>,
    pub(crate) export_to: Vec<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One HTTP route.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpRoute {
    pub(crate) name: Option<String>,
    #[serde(rename = "match")]
    pub(crate) matches: Vec<HttpMatch>,
    pub(crate) route: Vec<HttpRouteDestination>,
    pub(crate) redirect: Option<HttpRedirect>,
    pub(crate) rewrite: Option<HttpRewrite>,
    pub(crate) timeout: Option<String>,
    pub(crate) retries: Option<HttpRetry>,
    pub(crate) fault: Option<HttpFault>,
    pub(crate) mirror: Option<Destination>,
    pub(crate) mirror_percentage: Option<Percent>,
    pub(crate) headers: Option<Headers>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One alternative of a route's `match` (its conditions all hold).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpMatch {
    pub(crate) name: Option<String>,
    pub(crate) uri: Option<StringMatch>,
    pub(crate) scheme: Option<StringMatch>,
    pub(crate) method: Option<StringMatch>,
    pub(crate) authority: Option<StringMatch>,
    pub(crate) headers: BTreeMap<String, StringMatch>,
    pub(crate) query_params: BTreeMap<String, StringMatch>,
    pub(crate) without_headers: BTreeMap<String, StringMatch>,
    pub(crate) port: Option<u32>,
    pub(crate) gateways: Vec<String>,
    pub(crate) ignore_uri_case: bool,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A weighted destination of an HTTP route.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpRouteDestination {
    pub(crate) destination: Destination,
    pub(crate) weight: Option<u32>,
    pub(crate) headers: Option<Headers>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// Header changes of a route or destination.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Headers {
    pub(crate) request: Option<HeaderOperations>,
    pub(crate) response: Option<HeaderOperations>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `set`, `add`, `remove`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HeaderOperations {
    pub(crate) set: BTreeMap<String, String>,
    pub(crate) add: BTreeMap<String, String>,
    pub(crate) remove: Vec<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// An HTTP redirect.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpRedirect {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) scheme: Option<String>,
    pub(crate) redirect_code: Option<u16>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// An HTTP rewrite.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpRewrite {
    pub(crate) uri: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) uri_regex_rewrite: Option<RegexRewrite>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `uriRegexRewrite`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RegexRewrite {
    #[serde(rename = "match")]
    pub(crate) pattern: String,
    pub(crate) rewrite: String,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A retry policy.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpRetry {
    pub(crate) attempts: Option<u32>,
    pub(crate) per_try_timeout: Option<String>,
    pub(crate) retry_on: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// Fault injection.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpFault {
    pub(crate) delay: Option<FaultDelay>,
    pub(crate) abort: Option<FaultAbort>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A delay.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct FaultDelay {
    pub(crate) fixed_delay: Option<String>,
    pub(crate) percentage: Option<Percent>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// An abort.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct FaultAbort {
    pub(crate) http_status: Option<u16>,
    pub(crate) percentage: Option<Percent>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One TLS (SNI) route.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TlsRoute {
    #[serde(rename = "match")]
    pub(crate) matches: Vec<TlsMatch>,
    pub(crate) route: Vec<RouteDestination>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A TLS route's match.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TlsMatch {
    pub(crate) sni_hosts: Vec<String>,
    pub(crate) port: Option<u32>,
    pub(crate) gateways: Vec<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A weighted destination.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RouteDestination {
    pub(crate) destination: Destination,
    pub(crate) weight: Option<u32>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

// ---- DestinationRule ----

/// `DestinationRule.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct DestinationRuleSpec {
    pub(crate) host: String,
    pub(crate) traffic_policy: Option<TrafficPolicy>,
    pub(crate) subsets: Vec<Subset>,
    pub(crate) export_to: Vec<String>,
    pub(crate) workload_selector: Option<Value>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A named subset.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Subset {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) traffic_policy: Option<TrafficPolicy>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// Policies toward a host.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TrafficPolicy {
    pub(crate) load_balancer: Option<LoadBalancer>,
    pub(crate) connection_pool: Option<ConnectionPool>,
    pub(crate) outlier_detection: Option<OutlierDetection>,
    pub(crate) tls: Option<ClientTls>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `loadBalancer`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct LoadBalancer {
    pub(crate) simple: Option<String>,
    pub(crate) consistent_hash: Option<ConsistentHash>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `consistentHash`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ConsistentHash {
    pub(crate) http_header_name: Option<String>,
    pub(crate) http_cookie: Option<HttpCookie>,
    pub(crate) use_source_ip: Option<bool>,
    pub(crate) http_query_parameter_name: Option<String>,
    pub(crate) ring_hash: Option<Value>,
    pub(crate) maglev: Option<Value>,
    pub(crate) minimum_ring_size: Option<u64>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A hash cookie.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpCookie {
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) ttl: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `connectionPool`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ConnectionPool {
    pub(crate) tcp: Option<TcpPool>,
    pub(crate) http: Option<HttpPool>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `connectionPool.tcp`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TcpPool {
    pub(crate) max_connections: Option<usize>,
    pub(crate) connect_timeout: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `connectionPool.http`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HttpPool {
    pub(crate) http1_max_pending_requests: Option<usize>,
    pub(crate) http2_max_requests: Option<usize>,
    pub(crate) max_requests_per_connection: Option<u64>,
    pub(crate) max_retries: Option<usize>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) h2_upgrade_policy: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `outlierDetection`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OutlierDetection {
    pub(crate) consecutive5xx_errors: Option<u32>,
    pub(crate) consecutive_errors: Option<u32>,
    pub(crate) consecutive_gateway_errors: Option<u32>,
    pub(crate) interval: Option<String>,
    pub(crate) base_ejection_time: Option<String>,
    pub(crate) max_ejection_percent: Option<u32>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// `trafficPolicy.tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ClientTls {
    pub(crate) mode: Option<String>,
    pub(crate) client_certificate: Option<String>,
    pub(crate) private_key: Option<String>,
    pub(crate) ca_certificates: Option<String>,
    pub(crate) credential_name: Option<String>,
    pub(crate) sni: Option<String>,
    pub(crate) insecure_skip_verify: Option<bool>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

// ---- ServiceEntry ----

/// `ServiceEntry.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ServiceEntrySpec {
    pub(crate) hosts: Vec<String>,
    pub(crate) addresses: Vec<String>,
    pub(crate) ports: Vec<ServicePort>,
    pub(crate) location: Option<String>,
    pub(crate) resolution: Option<String>,
    pub(crate) endpoints: Vec<WorkloadEntry>,
    pub(crate) export_to: Vec<String>,
    pub(crate) workload_selector: Option<Value>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A port of a service entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ServicePort {
    pub(crate) number: u32,
    pub(crate) protocol: Option<String>,
    pub(crate) name: String,
    pub(crate) target_port: Option<u32>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One endpoint of a service entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WorkloadEntry {
    pub(crate) address: String,
    pub(crate) ports: BTreeMap<String, u32>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) locality: Option<String>,
    pub(crate) weight: Option<u32>,
    pub(crate) network: Option<String>,
    pub(crate) service_account: Option<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

// ---- Aeraki MetaRouter ----

/// `MetaRouter.spec` (Aeraki's routes for MetaProtocol services).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct MetaRouterSpec {
    pub(crate) hosts: Vec<String>,
    pub(crate) routes: Vec<MetaRoute>,
    pub(crate) export_to: Vec<String>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// One MetaRouter route.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct MetaRoute {
    pub(crate) name: Option<String>,
    #[serde(rename = "match")]
    pub(crate) matches: Option<MetaMatch>,
    pub(crate) route: Vec<RouteDestination>,
    pub(crate) request_mutation: Vec<KeyValue>,
    pub(crate) response_mutation: Vec<KeyValue>,
    pub(crate) mirror: Option<Destination>,
    pub(crate) mirror_percentage: Option<Percent>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A MetaRouter match: metadata attributes.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct MetaMatch {
    pub(crate) attributes: BTreeMap<String, StringMatch>,
    #[serde(flatten)]
    pub(crate) other: Other,
}

/// A key and a value.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    pub(crate) value: String,
    #[serde(flatten)]
    pub(crate) other: Other,
}
