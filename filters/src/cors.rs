//! `cors` (HTTP listeners only): answers CORS preflights at the proxy and
//! adds the CORS response headers to actual cross-origin requests.
//!
//! A request with an `origin` header whose value is allowed (listed in
//! `allow_origins`, `"*"` there, or fully matching one of
//! `allow_origin_regex`) is a CORS request:
//! - a preflight (`OPTIONS` with `access-control-request-method`) is
//!   answered by the proxy with 204 and the `access-control-allow-*` headers;
//! - any other request goes upstream, and its response gets
//!   `access-control-allow-origin` (plus credentials / expose headers, and
//!   `origin` added to `vary`).
//!
//! Requests without `origin`, or from an origin not allowed, pass through
//! untouched (a disallowed preflight reaches the upstream, which may answer
//! it; browsers refuse the answer either way without the allow headers).
//!
//! ```yaml
//! filters:
//!   - cors:
//!       allow_origins: [ "https://shop.example.com" ]
//!       allow_origin_regex: [ "https://[a-z0-9-]+\\.example\\.com" ]
//!       allow_methods: [ GET, POST, PUT ]
//!       allow_headers: [ content-type, x-user-id ]
//!       expose_headers: [ x-request-id ]
//!       allow_credentials: true
//!       max_age: 10m
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::config::ConfigDuration;
use metaproxy_core::filter::{
    Filter, FilterAction, FilterContext, FilterFactory, LocalResponse, RequestContext,
    ResponseContext,
};
use metaproxy_core::metadata::MetadataView;
use regex::Regex;
use serde::Deserialize;

use crate::conditions::{compile_regex, is_http};

const ORIGIN: &str = "origin";
const METHOD: &str = ":method";
const REQUEST_METHOD: &str = "access-control-request-method";
const REQUEST_HEADERS: &str = "access-control-request-headers";
const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ALLOW_METHODS: &str = "access-control-allow-methods";
const ALLOW_HEADERS: &str = "access-control-allow-headers";
const ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
const EXPOSE_HEADERS: &str = "access-control-expose-headers";
const MAX_AGE: &str = "access-control-max-age";
const VARY: &str = "vary";

/// Methods allowed when `allow_methods` is not given.
const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    allow_origins: Vec<String>,
    #[serde(default)]
    allow_origin_regex: Vec<String>,
    #[serde(default)]
    allow_methods: Vec<String>,
    #[serde(default)]
    allow_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default)]
    allow_credentials: bool,
    #[serde(default)]
    max_age: Option<ConfigDuration>,
}

/// The filter.
#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    origin_regex: Vec<Regex>,
    methods: String,
    /// `None`: echo what the preflight asks for (`allow_headers: ["*"]` or not given).
    headers: Option<String>,
    expose: Option<String>,
    credentials: bool,
    max_age: Option<String>,
}

impl Cors {
    fn allowed(&self, origin: &str) -> bool {
        self.any_origin
            || self.origins.iter().any(|o| o == origin)
            || self.origin_regex.iter().any(|r| r.is_match(origin))
    }

    /// The `access-control-allow-origin` value: `*` only when any origin is
    /// allowed without credentials; else the origin itself (and `vary: origin`).
    fn allow_origin<'a>(&self, origin: &'a str) -> (&'a str, bool) {
        if self.any_origin && !self.credentials {
            ("*", false)
        } else {
            (origin, true)
        }
    }

    fn preflight(&self, request: &RequestContext, origin: &str) -> LocalResponse {
        let (allow, vary) = self.allow_origin(origin);
        let mut headers = vec![
            (ALLOW_ORIGIN.to_string(), allow.to_string()),
            (ALLOW_METHODS.to_string(), self.methods.clone()),
        ];
        let asked = request.lookup(REQUEST_HEADERS).filter(|h| !h.is_empty());
        match (&self.headers, asked) {
            (Some(h), _) => headers.push((ALLOW_HEADERS.to_string(), h.clone())),
            (None, Some(asked)) => headers.push((ALLOW_HEADERS.to_string(), asked.to_string())),
            (None, None) => {}
        }
        if self.credentials {
            headers.push((ALLOW_CREDENTIALS.to_string(), "true".into()));
        }
        if let Some(age) = &self.max_age {
            headers.push((MAX_AGE.to_string(), age.clone()));
        }
        if vary {
            headers.push((VARY.to_string(), ORIGIN.into()));
        }
        LocalResponse {
            status: 204,
            headers,
            body: String::new(),
        }
    }
}

#[async_trait]
impl Filter for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let Some(origin) = request.lookup(ORIGIN) else {
            return FilterAction::Continue;
        };
        if !self.allowed(origin) {
            return FilterAction::Continue;
        }
        let is_preflight = request
            .lookup(METHOD)
            .is_some_and(|m| m.eq_ignore_ascii_case("OPTIONS"))
            && request.lookup(REQUEST_METHOD).is_some();
        if is_preflight {
            return FilterAction::Respond(self.preflight(request, origin));
        }
        let (allow, _) = self.allow_origin(origin);
        let allow = allow.to_string();
        request.response_mutation.set(ALLOW_ORIGIN, allow);
        if self.credentials {
            request.response_mutation.set(ALLOW_CREDENTIALS, "true");
        }
        if let Some(expose) = &self.expose {
            request
                .response_mutation
                .set(EXPOSE_HEADERS, expose.as_str());
        }
        FilterAction::Continue
    }

    async fn on_response(
        &self,
        request: &mut RequestContext,
        response: &ResponseContext,
    ) -> FilterAction {
        // `vary: origin` when the answer depends on the origin, kept with what upstream varies on.
        let Some(origin) = request.lookup(ORIGIN) else {
            return FilterAction::Continue;
        };
        if !self.allowed(origin) || !self.allow_origin(origin).1 {
            return FilterAction::Continue;
        }
        let vary = match response.metadata.get(VARY) {
            None | Some("") => ORIGIN.to_string(),
            Some(v)
                if v.split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case(ORIGIN) || x.trim() == "*") =>
            {
                return FilterAction::Continue;
            }
            Some(v) => format!("{v}, {ORIGIN}"),
        };
        request.response_mutation.set(VARY, vary);
        FilterAction::Continue
    }
}

/// Builds [`Cors`] from config; refuses non-HTTP listeners.
#[derive(Debug)]
pub struct CorsFactory;

fn join(items: &[String], upper: bool) -> String {
    items
        .iter()
        .map(|s| {
            if upper {
                s.trim().to_ascii_uppercase()
            } else {
                s.trim().to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl FilterFactory for CorsFactory {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        if !is_http(context) {
            return Err(PluginError::Invalid(format!(
                "`cors` needs an HTTP listener, not `{}`",
                context.protocol
            )));
        }
        let config = Config::deserialize(config)?;
        if config.allow_origins.is_empty() && config.allow_origin_regex.is_empty() {
            return Err("needs `allow_origins` or `allow_origin_regex`".into());
        }
        let any_origin = config.allow_origins.iter().any(|o| o == "*");
        let origin_regex = config
            .allow_origin_regex
            .iter()
            .map(|r| compile_regex(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PluginError::invalid_option("allow_origin_regex", e))?;
        let methods = if config.allow_methods.is_empty() {
            DEFAULT_METHODS.join(", ")
        } else {
            join(&config.allow_methods, true)
        };
        let headers =
            if config.allow_headers.is_empty() || config.allow_headers.iter().any(|h| h == "*") {
                None
            } else {
                Some(join(&config.allow_headers, false))
            };
        let expose =
            (!config.expose_headers.is_empty()).then(|| join(&config.expose_headers, false));
        Ok(Arc::new(Cors {
            any_origin,
            origins: config
                .allow_origins
                .into_iter()
                .filter(|o| o != "*")
                .collect(),
            origin_regex,
            methods,
            headers,
            expose,
            credentials: config.allow_credentials,
            max_age: config.max_age.map(|d| d.get().as_secs().to_string()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::message::MessageKind;
    use metaproxy_core::{Metadata, MutationOp};

    const HTTP: FilterContext<'static> = FilterContext {
        listener: "web",
        protocol: "http",
        route: None,
    };

    fn build(config: serde_json::Value) -> Arc<dyn Filter> {
        CorsFactory.build(&config, &HTTP).unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> RequestContext {
        let md: Metadata = pairs.iter().copied().collect();
        RequestContext::new("http", MessageKind::Request, md, Arc::new(Metadata::new()))
    }

    fn header<'a>(r: &'a LocalResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn shop() -> Arc<dyn Filter> {
        build(serde_json::json!({
            "allow_origins": ["https://shop.example.com"],
            "allow_origin_regex": ["https://[a-z]+\\.example\\.org"],
            "allow_methods": ["get", "POST", "put"],
            "allow_headers": ["Content-Type", "x-user-id"],
            "expose_headers": ["X-Request-Id"],
            "allow_credentials": true,
            "max_age": "10m"
        }))
    }

    #[tokio::test]
    async fn preflight_is_answered_by_the_proxy() {
        let f = shop();
        let mut req = request(&[
            (":method", "OPTIONS"),
            ("origin", "https://shop.example.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-user-id"),
        ]);
        let FilterAction::Respond(r) = f.on_request(&mut req).await else {
            panic!("a preflight must be answered");
        };
        assert_eq!(r.status, 204);
        assert_eq!(header(&r, ALLOW_ORIGIN), Some("https://shop.example.com"));
        assert_eq!(header(&r, ALLOW_METHODS), Some("GET, POST, PUT"));
        assert_eq!(header(&r, ALLOW_HEADERS), Some("content-type, x-user-id"));
        assert_eq!(header(&r, ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(header(&r, MAX_AGE), Some("600"));
        assert_eq!(header(&r, VARY), Some("origin"));
        // Regex origins, anchored.
        let mut req = request(&[
            (":method", "OPTIONS"),
            ("origin", "https://admin.example.org"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(matches!(
            f.on_request(&mut req).await,
            FilterAction::Respond(_)
        ));
        let mut req = request(&[
            (":method", "OPTIONS"),
            ("origin", "https://admin.example.org.evil.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(matches!(
            f.on_request(&mut req).await,
            FilterAction::Continue
        ));
        assert!(req.response_mutation.is_empty());
    }

    #[tokio::test]
    async fn plain_options_and_requests_without_origin_pass() {
        let f = shop();
        for pairs in [
            &[
                (":method", "OPTIONS"),
                ("origin", "https://shop.example.com"),
            ][..],
            &[(":method", "GET")][..],
            &[
                (":method", "OPTIONS"),
                ("access-control-request-method", "GET"),
            ][..],
        ] {
            let mut req = request(pairs);
            assert!(matches!(
                f.on_request(&mut req).await,
                FilterAction::Continue
            ));
        }
    }

    #[tokio::test]
    async fn actual_requests_get_response_headers_and_vary() {
        let f = shop();
        let mut req = request(&[(":method", "POST"), ("origin", "https://shop.example.com")]);
        assert!(matches!(
            f.on_request(&mut req).await,
            FilterAction::Continue
        ));
        let response = ResponseContext {
            kind: MessageKind::Response,
            metadata: [("vary", "accept-encoding")].into_iter().collect(),
        };
        assert!(matches!(
            f.on_response(&mut req, &response).await,
            FilterAction::Continue
        ));
        assert_eq!(
            req.response_mutation.ops(),
            &[
                MutationOp::Set(ALLOW_ORIGIN.into(), "https://shop.example.com".into()),
                MutationOp::Set(ALLOW_CREDENTIALS.into(), "true".into()),
                MutationOp::Set(EXPOSE_HEADERS.into(), "x-request-id".into()),
                MutationOp::Set(VARY.into(), "accept-encoding, origin".into()),
            ]
        );
        // A disallowed origin gets nothing.
        let mut req = request(&[(":method", "POST"), ("origin", "https://evil.com")]);
        assert!(matches!(
            f.on_request(&mut req).await,
            FilterAction::Continue
        ));
        assert!(f.on_response(&mut req, &response).await.is_continue());
        assert!(req.response_mutation.is_empty());
    }

    #[tokio::test]
    async fn wildcard_origin_and_echoed_headers() {
        let f = build(serde_json::json!({"allow_origins": ["*"]}));
        let mut req = request(&[
            (":method", "OPTIONS"),
            ("origin", "https://any.site"),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "x-a, x-b"),
        ]);
        let FilterAction::Respond(r) = f.on_request(&mut req).await else {
            panic!("preflight");
        };
        assert_eq!(header(&r, ALLOW_ORIGIN), Some("*"));
        assert_eq!(header(&r, ALLOW_METHODS), Some("GET, HEAD, POST"));
        assert_eq!(header(&r, ALLOW_HEADERS), Some("x-a, x-b"));
        assert_eq!(header(&r, VARY), None);
        assert_eq!(header(&r, ALLOW_CREDENTIALS), None);
        // With credentials, `*` is not allowed by browsers: the origin is echoed.
        let f = build(serde_json::json!({"allow_origins": ["*"], "allow_credentials": true}));
        let mut req = request(&[(":method", "GET"), ("origin", "https://any.site")]);
        let _ = f.on_request(&mut req).await;
        assert_eq!(
            req.response_mutation.ops()[0],
            MutationOp::Set(ALLOW_ORIGIN.into(), "https://any.site".into())
        );
    }

    #[test]
    fn refuses_other_protocols_and_bad_config() {
        let dubbo = FilterContext {
            listener: "d",
            protocol: "dubbo",
            route: None,
        };
        let Err(e) = CorsFactory.build(&serde_json::json!({"allow_origins": ["*"]}), &dubbo) else {
            panic!("dubbo must be refused");
        };
        assert!(
            e.to_string()
                .contains("needs an HTTP listener, not `dubbo`"),
            "{e}"
        );
        for (config, want) in [
            (serde_json::json!({}), "needs `allow_origins`"),
            (
                serde_json::json!({"allow_origin_regex": ["("]}),
                "bad regex",
            ),
            (
                serde_json::json!({"allow_origins": ["*"], "max_age": 5}),
                "invalid type",
            ),
            (
                serde_json::json!({"allow_origins": ["*"], "allow_origin": ["x"]}),
                "unknown field",
            ),
        ] {
            let Err(err) = CorsFactory.build(&config, &HTTP) else {
                panic!("{config} must be refused");
            };
            assert!(err.to_string().contains(want), "{config}: {err}");
        }
    }

    trait IsContinue {
        fn is_continue(&self) -> bool;
    }

    impl IsContinue for FilterAction {
        fn is_continue(&self) -> bool {
            matches!(self, FilterAction::Continue)
        }
    }
}
