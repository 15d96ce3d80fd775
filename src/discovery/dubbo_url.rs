//! Provider URLs of the Dubbo registry layout: each child of
//! `/<root>/<interface>/providers` is a URL-encoded
//! `dubbo://host:port/<interface>?k=v&...`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use metaproxy_core::discovery::DiscoveredEndpoint;
use percent_encoding::percent_decode_str;

/// Longest provider node name read (Dubbo's are a few hundred bytes).
pub const MAX_PROVIDER_URL_BYTES: usize = 16 * 1024;

/// Most query parameters kept as labels.
const MAX_PARAMETERS: usize = 128;

/// Dubbo's default provider weight.
const DEFAULT_WEIGHT: u32 = 100;

/// One provider read from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DubboProvider {
    /// The URL scheme (`dubbo`, `tri`).
    pub protocol: String,
    /// The interface in the URL's path.
    pub interface: String,
    /// The endpoint: address, every query parameter as a label, the weight.
    pub endpoint: DiscoveredEndpoint,
    /// False when the provider is disabled (`enabled=false`, `disabled=true`)
    /// or not a provider (`category` other than `providers`).
    pub serving: bool,
}

/// Why a provider node is skipped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderUrlError {
    /// Longer than [`MAX_PROVIDER_URL_BYTES`].
    #[error("provider URL longer than {MAX_PROVIDER_URL_BYTES} bytes")]
    TooLong,
    /// Not valid UTF-8 once decoded.
    #[error("provider URL is not UTF-8 once decoded")]
    NotUtf8,
    /// No `scheme://`.
    #[error("provider URL has no scheme")]
    NoScheme,
    /// The host and port are missing or not an IP address and a port.
    #[error("provider URL has no `ip:port` (`{0}`)")]
    BadAddress(String),
}

fn decode(text: &str) -> Result<String, ProviderUrlError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ProviderUrlError::NotUtf8)
}

/// Parses a provider node name (URL-encoded once, as Dubbo writes it).
pub fn parse_provider(node: &str) -> Result<DubboProvider, ProviderUrlError> {
    if node.len() > MAX_PROVIDER_URL_BYTES {
        return Err(ProviderUrlError::TooLong);
    }
    let url = decode(node)?;
    let (scheme, rest) = url.split_once("://").ok_or(ProviderUrlError::NoScheme)?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ProviderUrlError::NoScheme);
    }
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = location.split_once('/').unwrap_or((location, ""));
    // Credentials (`user:pass@`) are not part of the address.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let address = parse_address(host_port)
        .ok_or_else(|| ProviderUrlError::BadAddress(host_port.chars().take(64).collect()))?;
    let mut labels = BTreeMap::new();
    for pair in query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_PARAMETERS)
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // Values may be encoded a second time (`methods=a%2Cb`).
        let (Ok(k), Ok(v)) = (decode(k), decode(v)) else {
            continue;
        };
        if !k.is_empty() {
            labels.insert(k, v);
        }
    }
    let flag = |key: &str| labels.get(key).map(String::as_str);
    let serving = flag("enabled") != Some("false")
        && flag("disabled") != Some("true")
        && flag("category").is_none_or(|c| c == "providers");
    let weight = flag("weight")
        .and_then(|w| w.parse::<u32>().ok())
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WEIGHT);
    Ok(DubboProvider {
        protocol: scheme.to_string(),
        interface: path.trim_end_matches('/').to_string(),
        endpoint: DiscoveredEndpoint {
            address,
            labels: labels.into(),
            weight,
            priority: 0,
        },
        serving,
    })
}

/// What URL-encoding a node name leaves as it is: Java's `URLEncoder`
/// set (letters, digits, `.`, `-`, `*`, `_`), which Dubbo writes nodes with.
const NODE_NAME_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'*')
    .remove(b'_');

/// The registry node name of a provider at `address` serving `interface`
/// over `protocol`: `protocol://address/interface?k=v&…` with the
/// parameters in key order, URL-encoded once, as Dubbo registers its own.
pub fn provider_node(
    protocol: &str,
    address: SocketAddr,
    interface: &str,
    parameters: &BTreeMap<String, String>,
) -> String {
    let mut url = format!("{protocol}://{address}/{interface}");
    for (i, (k, v)) in parameters.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.push_str(v);
    }
    percent_encoding::utf8_percent_encode(&url, NODE_NAME_KEEPS).to_string()
}

fn parse_address(host_port: &str) -> Option<SocketAddr> {
    // `ip:port` or `[ipv6]:port`; host names are not resolved here.
    host_port
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.port() != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "dubbo%3A%2F%2F10.0.0.7%3A20880%2Forg.apache.dubbo.samples.DemoService%3Fanyhost%3Dtrue%26application%3Ddemo-provider%26group%3Dbatchjob%26methods%3DsayHello%2CsayHelloAsync%26release%3D3.2.0%26side%3Dprovider%26timestamp%3D1700000000000%26version%3D2.0.0%26weight%3D200";

    #[test]
    fn a_real_provider_url_becomes_an_endpoint_with_every_parameter_as_a_label() {
        let p = parse_provider(REAL).unwrap();
        assert_eq!(p.protocol, "dubbo");
        assert_eq!(p.interface, "org.apache.dubbo.samples.DemoService");
        assert_eq!(p.endpoint.address, "10.0.0.7:20880".parse().unwrap());
        assert_eq!(p.endpoint.weight, 200);
        assert_eq!(p.endpoint.labels["group"], "batchjob");
        assert_eq!(p.endpoint.labels["version"], "2.0.0");
        assert_eq!(p.endpoint.labels["methods"], "sayHello,sayHelloAsync");
        assert_eq!(p.endpoint.labels["side"], "provider");
        assert!(p.serving);
    }

    #[test]
    fn a_node_name_is_encoded_as_dubbo_encodes_its_own_and_reads_back() {
        let params: BTreeMap<String, String> = [
            ("side", "provider"),
            ("interface", "org.apache.dubbo.samples.DemoService"),
            ("methods", "sayHello,getAttachment"),
            ("application", "metaproxy"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let node = provider_node(
            "dubbo",
            "10.0.0.7:20880".parse().unwrap(),
            "org.apache.dubbo.samples.DemoService",
            &params,
        );
        assert_eq!(
            node,
            "dubbo%3A%2F%2F10.0.0.7%3A20880%2Forg.apache.dubbo.samples.DemoService%3Fapplication%3Dmetaproxy%26interface%3Dorg.apache.dubbo.samples.DemoService%26methods%3DsayHello%2CgetAttachment%26side%3Dprovider"
        );
        let p = parse_provider(&node).unwrap();
        assert_eq!(*p.endpoint.labels, params);
        assert!(p.serving);
    }

    #[test]
    fn disabled_and_non_provider_urls_do_not_serve() {
        for q in ["enabled=false", "disabled=true", "category=consumers"] {
            let p = parse_provider(&format!("dubbo://127.0.0.1:1/I?{q}")).unwrap();
            assert!(!p.serving, "{q}");
        }
        let p = parse_provider("dubbo://127.0.0.1:1/I?category=providers&enabled=true").unwrap();
        assert!(p.serving);
        assert_eq!(p.endpoint.weight, DEFAULT_WEIGHT);
    }

    #[test]
    fn ipv6_and_credentials() {
        let p = parse_provider("dubbo://u:p@[::1]:20880/I").unwrap();
        assert_eq!(p.endpoint.address, "[::1]:20880".parse().unwrap());
    }

    #[test]
    fn hostile_urls_are_refused_without_panicking() {
        let bad = [
            "",
            "%",
            "%zz",
            "%FF%FE",
            "dubbo://",
            "dubbo://10.0.0.1/I",
            "dubbo://10.0.0.1:0/I",
            "dubbo://10.0.0.1:99999/I",
            "dubbo://host.example:20880/I",
            "://1.2.3.4:5/I",
            "no scheme at all",
            "dubbo%3A%2F%2F%5B%3A%3A1%3A20880",
        ];
        for b in bad {
            assert!(parse_provider(b).is_err(), "{b:?}");
        }
        assert_eq!(
            parse_provider(&"a".repeat(MAX_PROVIDER_URL_BYTES + 1)),
            Err(ProviderUrlError::TooLong)
        );
        // Odd parameters are skipped or kept as they are, never fatal.
        let p = parse_provider("dubbo://1.2.3.4:5/I?&&=x&k&weight=-3&v=%25FF").unwrap();
        assert_eq!(p.endpoint.labels.get("k").map(String::as_str), Some(""));
        assert_eq!(p.endpoint.weight, DEFAULT_WEIGHT);
        assert!(!p.endpoint.labels.contains_key("v"));
    }
}
