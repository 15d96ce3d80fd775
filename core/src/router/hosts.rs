//! Picking a virtual host by the request's host name: exact names from a
//! hash map, then the longest matching `*.suffix`, then `*`. Where several
//! virtual hosts list the same name, the first one listed wins.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::route::Route;

/// How a virtual host's name is matched against the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Equal (case-insensitive).
    Exact(String),
    /// `*.example.com`: ends with `.example.com` (stored lower-case, with the dot).
    Suffix(String),
    /// `*`: any host.
    Any,
}

impl HostMatch {
    /// Parses `shop.example.com`, `*.example.com` or `*`.
    pub fn parse(text: &str) -> Self {
        let t = text.to_ascii_lowercase();
        if t == "*" {
            HostMatch::Any
        } else if let Some(rest) = t.strip_prefix('*') {
            HostMatch::Suffix(rest.to_string())
        } else {
            HostMatch::Exact(t)
        }
    }
}

/// Routes for a set of hosts.
#[derive(Debug, Clone)]
pub struct VirtualHost {
    /// Name for logs.
    pub name: Arc<str>,
    /// Host names.
    pub hosts: Vec<HostMatch>,
    /// Routes; the first match wins.
    pub routes: Vec<Route>,
}

/// Virtual host positions by the names they are selected by.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostIndex {
    /// Exact name (lower-case) → first virtual host listing it.
    exact: HashMap<String, usize>,
    /// Suffixes starting with a dot (`*.example.com` → `.example.com`) →
    /// first virtual host listing them.
    dotted: HashMap<String, usize>,
    /// Other suffixes (`*-api.example.com`), in listing order.
    other: Vec<(String, usize)>,
    /// The first virtual host listing `*`.
    any: Option<usize>,
}

impl HostIndex {
    /// Indexes the host names of `virtual_hosts`.
    pub fn build(virtual_hosts: &[VirtualHost]) -> HostIndex {
        let mut index = HostIndex::default();
        for (pos, v) in virtual_hosts.iter().enumerate() {
            for h in &v.hosts {
                match h {
                    HostMatch::Exact(e) => {
                        index.exact.entry(e.clone()).or_insert(pos);
                    }
                    HostMatch::Suffix(s) if s.starts_with('.') => {
                        index.dotted.entry(s.clone()).or_insert(pos);
                    }
                    HostMatch::Suffix(s) => index.other.push((s.clone(), pos)),
                    HostMatch::Any => {
                        index.any.get_or_insert(pos);
                    }
                }
            }
        }
        index
    }

    /// The position of the virtual host for `host` (a port suffix is
    /// ignored, case does not matter).
    pub fn find(&self, host: &str) -> Option<usize> {
        let host = lower(strip_port(host));
        if let Some(&pos) = self.exact.get(host.as_ref()) {
            return Some(pos);
        }
        // A suffix must be shorter than the host: a dot at position 0 is
        // not one. The first dot gives the longest dotted suffix.
        let dotted = host
            .match_indices('.')
            .filter(|(i, _)| *i > 0)
            .find_map(|(i, _)| {
                self.dotted
                    .get(&host[i..])
                    .map(|&pos| (pos, host.len() - i))
            });
        let mut best = dotted;
        for (s, pos) in &self.other {
            if host.ends_with(s.as_str())
                && host.len() > s.len()
                && best.is_none_or(|(_, len)| s.len() > len)
            {
                best = Some((*pos, s.len()));
            }
        }
        best.map(|(pos, _)| pos).or(self.any)
    }
}

/// `host` in ASCII lower case, borrowed when it already is.
fn lower(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]` (an
/// unclosed `[` is left as it is).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}
