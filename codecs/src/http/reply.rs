//! Local replies (HTTP status + text, or a gRPC trailers-only answer) and redirects.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use metaproxy_core::router::Redirect;
use metaproxy_core::{ErrorKind, ProxyError};

use super::body::ProxyBody;
use super::headers::REASON;

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::RouteNotFound => StatusCode::NOT_FOUND,
        ErrorKind::ClusterNotFound
        | ErrorKind::NoHealthyUpstream
        | ErrorKind::ConnectFailure
        | ErrorKind::OverLimit => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::UpstreamReset => StatusCode::BAD_GATEWAY,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC status code of an error kind.
pub fn grpc_status_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::RouteNotFound => 12, // UNIMPLEMENTED
        ErrorKind::ClusterNotFound
        | ErrorKind::NoHealthyUpstream
        | ErrorKind::ConnectFailure
        | ErrorKind::UpstreamReset => 14, // UNAVAILABLE
        ErrorKind::OverLimit => 8,      // RESOURCE_EXHAUSTED
        ErrorKind::Timeout => 4,        // DEADLINE_EXCEEDED
        ErrorKind::BadRequest => 3,     // INVALID_ARGUMENT
        ErrorKind::PermissionDenied => 7, // PERMISSION_DENIED
        ErrorKind::Internal => 13,      // INTERNAL
    }
}

/// The stable `x-metaproxy-reason` value of an error kind.
pub fn reason_of(kind: ErrorKind) -> &'static str {
    kind.reason()
}

/// Percent-encodes a `grpc-message` (everything outside printable ASCII, and `%`).
pub fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The local reply for `err`: a gRPC trailers-only answer when `grpc`
/// (`grpc-status` from the kind, the error's reply metadata as custom
/// metadata), else the error's reply status (`ProxyError::reply_status`,
/// e.g. 429 from a rate limit) or the kind's, with a short text body and the
/// error's reply metadata as response headers (e.g. `retry-after`).
pub fn local_reply(err: &ProxyError, grpc: bool) -> Response<ProxyBody> {
    let reason = HeaderValue::from_static(reason_of(err.kind));
    if grpc {
        let mut resp = Response::new(ProxyBody::Empty);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert(
            "grpc-status",
            HeaderValue::from(u16::from(grpc_status_of(err.kind))),
        );
        if let Ok(v) = HeaderValue::from_str(&grpc_percent_encode(&err.client_message())) {
            h.insert("grpc-message", v);
        }
        h.insert(REASON, reason);
        append_metadata(h, &err.reply_metadata, true);
        return resp;
    }
    let status = err
        .reply_status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| status_of(err.kind));
    let mut resp = text_reply(status, reason, format!("{}\n", err.client_message()));
    append_metadata(resp.headers_mut(), &err.reply_metadata, false);
    resp
}

/// Appends a local reply's metadata as headers (for `grpc`, as custom
/// metadata: gRPC's reserved `grpc-*` names and `content-type` are skipped);
/// names or values that are not valid header text are skipped.
fn append_metadata(headers: &mut header::HeaderMap, metadata: &[(String, String)], grpc: bool) {
    for (name, value) in metadata {
        let lower = name.to_ascii_lowercase();
        if grpc && (lower.starts_with("grpc-") || lower == "content-type") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
}

/// A plain-text reply with `x-metaproxy-reason`.
pub fn text_reply(status: StatusCode, reason: HeaderValue, text: String) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(REASON, reason);
    resp
}

/// The `Location` of a redirect: the redirect's scheme, host, port and
/// path, each defaulting to the request's; the query is kept unless the
/// redirect's path has its own. The request's port is kept only when
/// neither the scheme nor the host changes.
pub fn redirect_location(
    r: &Redirect,
    scheme: &str,
    authority: &str,
    path_and_query: &str,
) -> String {
    let (req_host, req_port) = split_host_port(authority);
    let new_scheme = r.scheme.as_deref().unwrap_or(scheme);
    let host = r.host.as_deref().unwrap_or(req_host);
    let port = match r.port {
        Some(p) => Some(p.to_string()),
        None if r.scheme.is_none() && r.host.is_none() => req_port.map(str::to_string),
        None => None,
    };
    let default_port = matches!(
        (new_scheme, port.as_deref()),
        ("http", Some("80")) | ("https", Some("443"))
    );
    let (req_path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let path = match &r.path {
        Some(p) if p.contains('?') => p.clone(),
        Some(p) => format!("{p}{query}"),
        None => format!("{req_path}{query}"),
    };
    match port {
        Some(p) if !default_port => format!("{new_scheme}://{host}:{p}{path}"),
        _ => format!("{new_scheme}://{host}{path}"),
    }
}

/// A redirect answer.
pub fn redirect_reply(code: u16, location: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Empty);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    resp
}

/// `host:port` → (`host`, `Some(port)`); IPv6 literals keep their brackets.
pub fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => {
                let (h, rest) = authority.split_at(i + 1);
                (h, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    }
}

/// A filter's complete HTTP answer.
pub(crate) fn filter_reply(r: metaproxy_core::filter::LocalResponse) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// The answer to a request the proxy answers itself (a local error, in
/// gRPC's form for a gRPC request; a filter's answer; a redirect), and how
/// the request ended.
pub(crate) fn early_reply(
    early: super::route::Early,
    grpc: bool,
) -> (Response<ProxyBody>, metaproxy_core::pipeline::Ending) {
    use metaproxy_core::pipeline::Ending;
    match early {
        super::route::Early::Error(e) => (local_reply(&e, grpc), Ending::Failed(e.kind)),
        super::route::Early::Respond(r) => (filter_reply(r), Ending::Filter),
        super::route::Early::Redirect(code, location) => {
            (redirect_reply(code, &location), Ending::Redirect)
        }
    }
}
