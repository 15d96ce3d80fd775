//! Header handling when proxying: hop-by-hop headers, forwarding headers,
//! request ids and mutations.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use metaproxy_core::mutation::{Mutation, MutationOp};

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-for`.
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
pub const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-metaproxy-reason`: on local replies, why the proxy answered itself.
pub const REASON: HeaderName = HeaderName::from_static("x-metaproxy-reason");

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers: `connection` and every header it names,
/// `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, and
/// `te` unless it is exactly `trailers` (gRPC needs that one).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests carry none: one pass over the names instead of a hash
    // lookup per hop-by-hop name.
    if !headers
        .iter()
        .any(|(name, value)| needs_stripping(name, value))
    {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        if n != header::TE {
            headers.remove(n);
        }
    }
    for n in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(n);
    }
    let te_trailers = headers
        .get_all(header::TE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    headers.remove(header::TE);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The header is hop-by-hop, or a `te` other than exactly `trailers`.
fn needs_stripping(name: &HeaderName, value: &HeaderValue) -> bool {
    if name == header::TE {
        return value.as_bytes() != b"trailers";
    }
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHENTICATE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// A fresh random request id shaped like a UUID (version 4 bits set).
pub fn new_request_id() -> String {
    let id = request_id_bytes();
    String::from_utf8_lossy(&id).into_owned()
}

/// A UUID-shaped random id, formatted without allocating.
pub(crate) fn request_id_bytes() -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Where each byte's two hex digits go (dashes at 8, 13, 18, 23).
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut v = fastrand::u128(..);
    v = (v & !(0xf << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    let mut out = [b'-'; 36];
    for (byte, at) in v.to_be_bytes().into_iter().zip(AT) {
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

/// Sets `x-request-id` when absent; returns its value.
pub fn ensure_request_id(headers: &mut HeaderMap) -> String {
    if let Some(v) = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok())
        && !v.is_empty()
    {
        return v.to_string();
    }
    let id = request_id_bytes();
    if let Ok(v) = HeaderValue::from_bytes(&id) {
        headers.insert(REQUEST_ID, v);
    }
    String::from_utf8_lossy(&id).into_owned()
}

/// Sets `x-request-id` when absent (or empty), without returning it.
///
/// A generated id is marked never-indexed for HPACK: unique per request,
/// it would only evict the entries that repeat from an HTTP/2 upstream
/// connection's header table (and cost the insertion).
pub fn ensure_request_id_header(headers: &mut HeaderMap) {
    if headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.is_empty())
    {
        return;
    }
    if let Ok(mut v) = HeaderValue::from_bytes(&request_id_bytes()) {
        v.set_sensitive(true);
        headers.insert(REQUEST_ID, v);
    }
}

/// Appends the client's address to `x-forwarded-for` and sets
/// `x-forwarded-proto` when the client did not send one.
pub fn add_forwarded(headers: &mut HeaderMap, client_ip: &str, scheme: &str) {
    let existing: Vec<&str> = headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let value = if existing.is_empty() {
        client_ip.to_string()
    } else {
        format!("{}, {client_ip}", existing.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(FORWARDED_FOR, v);
    }
    if !headers.contains_key(&FORWARDED_PROTO)
        && let Ok(v) = HeaderValue::from_str(scheme)
    {
        headers.insert(FORWARDED_PROTO, v);
    }
}

/// What a mutation asked for that is not a plain header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PseudoChanges {
    /// A new `:path` (path and query).
    pub path: Option<String>,
    /// A new `:authority`.
    pub authority: Option<String>,
}

/// Applies a mutation to headers: `Set` replaces every value of the header,
/// `Remove` removes it. `:path` and `:authority` are returned for the
/// caller to apply; other pseudo-headers and invalid names or values are
/// skipped (and reported in the returned list of problems).
pub fn apply_mutation(
    headers: &mut HeaderMap,
    mutation: &Mutation,
) -> (PseudoChanges, Vec<String>) {
    let mut pseudo = PseudoChanges::default();
    let mut problems = Vec::new();
    for op in mutation.ops() {
        match op {
            MutationOp::Set(k, v) => match &**k {
                ":path" => pseudo.path = Some(v.to_string()),
                ":authority" => pseudo.authority = Some(v.to_string()),
                key => match (
                    HeaderName::from_bytes(key.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    (Ok(name), Ok(value)) => {
                        headers.insert(name, value);
                    }
                    _ => problems.push(format!("cannot set header `{key}`")),
                },
            },
            MutationOp::Remove(k) => match HeaderName::from_bytes(k.as_bytes()) {
                Ok(name) => {
                    headers.remove(name);
                }
                Err(_) => problems.push(format!("cannot remove header `{k}`")),
            },
        }
    }
    (pseudo, problems)
}

/// The `Set-Cookie` value of an affinity cookie the proxy made up:
/// `name=value; Path=path; HttpOnly`, and `Max-Age` when it has one.
pub fn set_cookie_value(cookie: &metaproxy_core::cluster::AffinityCookie) -> String {
    let mut v = format!(
        "{}={}; Path={}; HttpOnly",
        cookie.name, cookie.value, cookie.path
    );
    if let Some(ttl) = cookie.max_age {
        v.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    v
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::{REQUEST_ID, ensure_request_id_header, request_id_bytes, set_cookie_value};
    use metaproxy_core::cluster::AffinityCookie;

    #[test]
    fn an_affinity_cookie_is_http_only_with_its_max_age() {
        let mut c = AffinityCookie {
            name: "sid".into(),
            value: "00ff".into(),
            path: "/cart".into(),
            max_age: Some(std::time::Duration::from_secs(3600)),
        };
        assert_eq!(
            set_cookie_value(&c),
            "sid=00ff; Path=/cart; HttpOnly; Max-Age=3600"
        );
        c.max_age = None;
        assert_eq!(set_cookie_value(&c), "sid=00ff; Path=/cart; HttpOnly");
    }

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let a = request_id_bytes();
        let b = request_id_bytes();
        assert_ne!(a, b);
        for id in [a, b] {
            let text = std::str::from_utf8(&id).unwrap();
            let groups: Vec<usize> = text.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{text}");
            assert!(text.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
            assert_eq!(id[14], b'4', "{text}");
            assert!(b"89ab".contains(&id[19]), "{text}");
        }
    }

    #[test]
    fn a_generated_request_id_is_never_indexed_and_a_clients_is_kept() {
        let mut headers = HeaderMap::new();
        ensure_request_id_header(&mut headers);
        assert!(headers[&REQUEST_ID].is_sensitive());
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("rid-1"));
        ensure_request_id_header(&mut headers);
        assert_eq!(headers[&REQUEST_ID], "rid-1");
        assert!(!headers[&REQUEST_ID].is_sensitive());
    }
}
