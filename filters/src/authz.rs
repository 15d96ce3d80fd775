//! `authz`: allow or deny requests by metadata and by the client's address.
//!
//! Rules are tried in order; the first rule whose `match` conditions all
//! hold and whose `source` list (if any) contains the client's `source.ip`
//! decides. No rule matching means `default`. A denied request is answered
//! with `PermissionDenied` (HTTP 403, Dubbo/Thrift/gRPC errors by the codec).
//!
//! ```yaml
//! filters:
//!   - authz:
//!       default: deny
//!       rules:
//!         - { name: no-admin, action: deny, match: [ { key: method, prefix: admin } ] }
//!         - { name: internal, action: allow, source: [ 10.0.0.0/8, "fd00::/8", 127.0.0.1 ] }
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};
use metaproxy_core::metadata::{MetadataView, keys};
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use serde::Deserialize;

use crate::cidr::Cidr;
use crate::conditions::Conditions;
use metaproxy_core::config::MatchConfig;

/// What a rule (or the default) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    default: Action,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    #[serde(default)]
    name: Option<String>,
    action: Action,
    #[serde(default, rename = "match")]
    conditions: Vec<MatchConfig>,
    #[serde(default)]
    source: Vec<String>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    action: Action,
    conditions: Conditions,
    source: Vec<Cidr>,
}

impl Rule {
    fn matches(&self, request: &RequestContext) -> bool {
        if !self.source.is_empty() {
            let ip = request
                .lookup(keys::SOURCE_IP)
                .and_then(|s| s.parse::<IpAddr>().ok());
            match ip {
                Some(ip) if self.source.iter().any(|c| c.contains(ip)) => {}
                _ => return false,
            }
        }
        self.conditions.matches(request)
    }
}

/// The filter.
#[derive(Debug)]
pub struct Authz {
    rules: Vec<Rule>,
    default: Action,
}

impl Authz {
    /// The deciding action and the rule's name (`None` for the default).
    fn decide(&self, request: &RequestContext) -> (Action, Option<&str>) {
        match self.rules.iter().find(|r| r.matches(request)) {
            Some(r) => (r.action, Some(r.name.as_str())),
            None => (self.default, None),
        }
    }
}

#[async_trait]
impl Filter for Authz {
    fn name(&self) -> &'static str {
        "authz"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        match self.decide(request) {
            (Action::Allow, _) => FilterAction::Continue,
            (Action::Deny, rule) => {
                let why = match rule {
                    Some(name) => format!("denied by rule `{name}`"),
                    None => "denied by default".to_string(),
                };
                FilterAction::Reply(ProxyError::new(
                    ErrorKind::PermissionDenied,
                    Origin::Internal,
                    why,
                ))
            }
        }
    }
}

/// Builds [`Authz`] from config.
#[derive(Debug)]
pub struct AuthzFactory;

impl FilterFactory for AuthzFactory {
    fn name(&self) -> &'static str {
        "authz"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = Config::deserialize(config)?;
        let mut rules = Vec::new();
        for (i, r) in config.rules.into_iter().enumerate() {
            let name = r.name.unwrap_or_else(|| format!("rule-{i}"));
            let conditions = Conditions::compile(&r.conditions, context)
                .map_err(|e| PluginError::invalid_option(&name, e))?;
            let source = r
                .source
                .iter()
                .map(|s| Cidr::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PluginError::invalid_option(&name, e))?;
            rules.push(Rule {
                name,
                action: r.action,
                conditions,
                source,
            });
        }
        Ok(Arc::new(Authz {
            rules,
            default: config.default,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;
    use metaproxy_core::message::MessageKind;

    const CTX: FilterContext<'static> = FilterContext {
        listener: "test",
        protocol: "dubbo",
        route: None,
    };

    fn request(ip: &str, pairs: &[(&str, &str)]) -> RequestContext {
        let md: Metadata = pairs.iter().copied().collect();
        let conn: Metadata = [("source.ip", ip)].into_iter().collect();
        RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(conn))
    }

    async fn verdict(f: &Arc<dyn Filter>, ip: &str, pairs: &[(&str, &str)]) -> Result<(), String> {
        match f.on_request(&mut request(ip, pairs)).await {
            FilterAction::Continue => Ok(()),
            FilterAction::Reply(e) => {
                assert_eq!(e.kind, ErrorKind::PermissionDenied);
                Err(e.message)
            }
            FilterAction::Respond(r) => panic!("unexpected {r:?}"),
        }
    }

    #[tokio::test]
    async fn first_match_wins_then_default() {
        let f = AuthzFactory
            .build(
                &serde_json::json!({
                    "default": "deny",
                    "rules": [
                        {"name": "no-admin", "action": "deny", "match": [{"key": "method", "prefix": "admin"}]},
                        {"name": "internal", "action": "allow", "source": ["10.0.0.0/8", "fd00::/8"]},
                        {"name": "guests", "action": "allow", "match": [{"key": "role", "exact": "guest"}],
                         "source": ["192.0.2.0/24"]}
                    ]
                }),
                &CTX,
            )
            .unwrap();
        assert_eq!(
            verdict(&f, "10.1.2.3", &[("method", "sayHello")]).await,
            Ok(())
        );
        assert_eq!(verdict(&f, "fd00::7", &[]).await, Ok(()));
        assert_eq!(verdict(&f, "::ffff:10.9.9.9", &[]).await, Ok(()));
        assert_eq!(
            verdict(&f, "10.1.2.3", &[("method", "adminReset")]).await,
            Err("denied by rule `no-admin`".into())
        );
        assert_eq!(
            verdict(&f, "192.0.2.9", &[]).await,
            Err("denied by default".into()),
            "source alone is not enough when conditions fail"
        );
        assert_eq!(verdict(&f, "192.0.2.9", &[("role", "guest")]).await, Ok(()));
        assert_eq!(
            verdict(&f, "198.51.100.1", &[("role", "guest")]).await,
            Err("denied by default".into())
        );
    }

    #[tokio::test]
    async fn default_allow_with_a_deny_list() {
        let f = AuthzFactory
            .build(
                &serde_json::json!({
                    "default": "allow",
                    "rules": [{"action": "deny", "source": ["203.0.113.0/24", "2001:db8::/32"]}]
                }),
                &CTX,
            )
            .unwrap();
        assert_eq!(verdict(&f, "127.0.0.1", &[]).await, Ok(()));
        assert_eq!(verdict(&f, "::1", &[]).await, Ok(()));
        assert_eq!(
            verdict(&f, "2001:db8::5", &[]).await,
            Err("denied by rule `rule-0`".into())
        );
        assert!(verdict(&f, "203.0.113.77", &[]).await.is_err());
    }

    #[test]
    fn config_errors() {
        for (config, want) in [
            (serde_json::json!({"rules": []}), "missing field `default`"),
            (serde_json::json!({"default": "maybe"}), "unknown variant"),
            (
                serde_json::json!({"default": "deny", "rules": [{"action": "allow", "source": ["10.0.0.0/40"]}]}),
                "`rule-0`: bad prefix length",
            ),
        ] {
            let Err(err) = AuthzFactory.build(&config, &CTX) else {
                panic!("{config} must be refused");
            };
            assert!(err.to_string().contains(want), "{config}: {err}");
        }
    }
}
