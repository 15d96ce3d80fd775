//! Hash policies: what a consistent-hash balancer hashes for one request.

use std::time::Duration;

use crate::metadata::MetadataView;

use super::hash::stable_hash;

/// One element of a cluster's hash policy; the first that yields a value is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicy {
    /// The value of a metadata key (a header, an attachment, ...).
    Key(String),
    /// A cookie (the `cookie.<name>` metadata key); when absent the proxy
    /// makes one up and the engine sets it on the answer.
    Cookie {
        /// Cookie name.
        name: String,
        /// `Max-Age`; a session cookie when `None`.
        ttl: Option<Duration>,
        /// Cookie path.
        path: String,
    },
    /// The client's IP address.
    SourceIp,
}

/// The hash for one request, and the cookie to set when the policy made one up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashDecision {
    /// The hash, when a policy element yielded a value.
    pub hash: Option<u64>,
    /// A cookie the engine sets on the answer (in its protocol's form).
    pub set_cookie: Option<AffinityCookie>,
}

/// An affinity cookie the proxy made up for a client that sent none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityCookie {
    /// Its name.
    pub name: String,
    /// Its value (the hash key).
    pub value: String,
    /// The path it applies to.
    pub path: String,
    /// How long it lives; a session cookie when `None`.
    pub max_age: Option<Duration>,
}

/// Computes the hash of a request under `policies`.
pub fn decide(policies: &[HashPolicy], view: &impl MetadataView) -> HashDecision {
    for p in policies {
        match p {
            HashPolicy::Key(k) => {
                if let Some(v) = view.lookup(k) {
                    return HashDecision {
                        hash: Some(stable_hash(v.as_bytes())),
                        set_cookie: None,
                    };
                }
            }
            HashPolicy::SourceIp => {
                if let Some(v) = view.lookup(crate::metadata::keys::SOURCE_IP) {
                    return HashDecision {
                        hash: Some(stable_hash(v.as_bytes())),
                        set_cookie: None,
                    };
                }
            }
            HashPolicy::Cookie { name, ttl, path } => {
                if let Some(v) = view.lookup(&format!("cookie.{name}")) {
                    return HashDecision {
                        hash: Some(stable_hash(v.as_bytes())),
                        set_cookie: None,
                    };
                }
                let value = format!("{:016x}", fastrand::u64(..));
                return HashDecision {
                    hash: Some(stable_hash(value.as_bytes())),
                    set_cookie: Some(AffinityCookie {
                        name: name.clone(),
                        value,
                        path: path.clone(),
                        max_age: *ttl,
                    }),
                };
            }
        }
    }
    HashDecision::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;

    #[test]
    fn first_policy_with_a_value_wins() {
        let policies = vec![HashPolicy::Key("user-id".into()), HashPolicy::SourceIp];
        let with_user: Metadata = [("user-id", "42"), ("source.ip", "10.0.0.1")]
            .into_iter()
            .collect();
        let without: Metadata = [("source.ip", "10.0.0.1")].into_iter().collect();
        assert_eq!(decide(&policies, &with_user).hash, Some(stable_hash(b"42")));
        assert_eq!(
            decide(&policies, &without).hash,
            Some(stable_hash(b"10.0.0.1"))
        );
        assert_eq!(decide(&policies, &Metadata::new()).hash, None);
    }

    #[test]
    fn cookie_is_made_up_once_then_read_back() {
        let policies = vec![HashPolicy::Cookie {
            name: "sid".into(),
            ttl: Some(Duration::from_secs(3600)),
            path: "/".into(),
        }];
        let first = decide(&policies, &Metadata::new());
        let set = first.set_cookie.clone().unwrap();
        assert_eq!(
            (&*set.name, &*set.path, set.max_age),
            ("sid", "/", Some(Duration::from_secs(3600)))
        );
        let again: Metadata = [("cookie.sid", set.value.as_str())].into_iter().collect();
        let second = decide(&policies, &again);
        assert_eq!(second.hash, first.hash);
        assert_eq!(second.set_cookie, None);
    }
}
