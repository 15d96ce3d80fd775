//! Dubbo 2 response status codes and the status each proxy error maps to.

use metaproxy_core::ErrorKind;

/// The call succeeded; the body holds a response flag and a value.
pub const OK: u8 = 20;
/// The client timed out.
pub const CLIENT_TIMEOUT: u8 = 30;
/// The server timed out.
pub const SERVER_TIMEOUT: u8 = 31;
/// The request could not be understood.
pub const BAD_REQUEST: u8 = 40;
/// The response could not be understood.
pub const BAD_RESPONSE: u8 = 50;
/// No provider for the service.
pub const SERVICE_NOT_FOUND: u8 = 60;
/// The service failed.
pub const SERVICE_ERROR: u8 = 70;
/// The server failed.
pub const SERVER_ERROR: u8 = 80;
/// The client failed.
pub const CLIENT_ERROR: u8 = 90;
/// The server's thread pool is exhausted.
pub const SERVER_THREADPOOL_EXHAUSTED_ERROR: u8 = 100;

/// The status of the local reply for a proxy error of `kind`.
pub fn for_error(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::RouteNotFound
        | ErrorKind::ClusterNotFound
        | ErrorKind::NoHealthyUpstream
        | ErrorKind::ConnectFailure => SERVICE_NOT_FOUND,
        ErrorKind::Timeout => SERVER_TIMEOUT,
        ErrorKind::OverLimit => SERVER_THREADPOOL_EXHAUSTED_ERROR,
        ErrorKind::BadRequest => BAD_REQUEST,
        ErrorKind::UpstreamReset | ErrorKind::PermissionDenied => SERVICE_ERROR,
        ErrorKind::Internal => SERVER_ERROR,
    }
}
