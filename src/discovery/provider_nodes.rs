//! The children of a Dubbo `providers` node turned into endpoints, each
//! node parsed once: when a fleet registers one by one, every list read
//! costs a parse of the nodes that are new, not of all of them.

use std::collections::HashMap;

use metaproxy_core::discovery::DiscoveredEndpoint;
use tracing::debug;

use super::dubbo_url::parse_provider;

/// What one node is to the source.
enum Node {
    /// A serving provider of the interface.
    Serving(DiscoveredEndpoint),
    /// Not one to route to: disabled, not a provider, another scheme or
    /// interface, or this proxy's own registration.
    Ignored,
    /// A node that does not decode.
    Malformed,
}

/// The nodes one source has read, by node name.
#[derive(Default)]
pub(super) struct ProviderNodes {
    interface: String,
    protocols: Vec<String>,
    known: HashMap<String, Node>,
}

/// What one list of children gave.
pub(super) struct ProviderList {
    /// The serving providers, in the order listed.
    pub endpoints: Vec<DiscoveredEndpoint>,
    /// Nodes skipped because they do not decode.
    pub malformed: usize,
}

impl ProviderNodes {
    /// No nodes read yet, for providers of `interface` over `protocols`.
    pub fn new(interface: &str, protocols: &[String]) -> Self {
        Self {
            interface: interface.to_string(),
            protocols: protocols.to_vec(),
            known: HashMap::new(),
        }
    }

    /// How many of `children` have not been read before.
    #[cfg(test)]
    fn unread(&self, children: &[String]) -> usize {
        children
            .iter()
            .filter(|c| !self.known.contains_key(*c))
            .count()
    }

    /// The providers among `children`; nodes no longer listed are
    /// forgotten.
    pub fn read(&mut self, children: Vec<String>) -> ProviderList {
        let mut known = HashMap::with_capacity(children.len());
        let mut endpoints = Vec::with_capacity(children.len());
        let mut malformed = 0;
        for child in children {
            let node = match self.known.remove(&child) {
                Some(node) => node,
                None => self.parse(&child),
            };
            match &node {
                Node::Serving(endpoint) => endpoints.push(endpoint.clone()),
                Node::Ignored => {}
                Node::Malformed => malformed += 1,
            }
            known.insert(child, node);
        }
        self.known = known;
        ProviderList {
            endpoints,
            malformed,
        }
    }

    fn parse(&self, child: &str) -> Node {
        match parse_provider(child) {
            Ok(p)
                if p.endpoint.labels.get("metaproxy").map(String::as_str)
                    == Some(super::instance_id()) =>
            {
                Node::Ignored
            }
            Ok(p)
                if p.serving
                    && self.protocols.contains(&p.protocol)
                    && (p.interface.is_empty() || p.interface == self.interface) =>
            {
                Node::Serving(p.endpoint)
            }
            Ok(_) => Node::Ignored,
            Err(e) => {
                debug!(error = %e, "skipping a provider node");
                Node::Malformed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16, extra: &str) -> String {
        let url = format!("dubbo://10.0.0.1:{port}/org.example.Demo?side=provider{extra}");
        url.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('&', "%26")
            .replace('=', "%3D")
    }

    #[test]
    fn only_new_nodes_are_read_and_gone_ones_are_forgotten() {
        let mut nodes = ProviderNodes::new("org.example.Demo", &["dubbo".to_string()]);
        let (a, b, off) = (node(1, ""), node(2, "&weight=7"), node(3, "&enabled=false"));
        let first = vec![a.clone(), b.clone(), off.clone(), "garbage%ZZ".to_string()];
        assert_eq!(nodes.unread(&first), 4);
        let list = nodes.read(first);
        let ports: Vec<u16> = list.endpoints.iter().map(|e| e.address.port()).collect();
        assert_eq!(ports, [1, 2]);
        assert_eq!(list.endpoints[1].weight, 7);
        assert_eq!(list.malformed, 1);

        let c = node(4, "");
        let second = vec![b.clone(), c.clone(), off.clone()];
        assert_eq!(nodes.unread(&second), 1, "only the new node is parsed");
        let list = nodes.read(second);
        let ports: Vec<u16> = list.endpoints.iter().map(|e| e.address.port()).collect();
        assert_eq!(ports, [2, 4]);
        assert_eq!(list.malformed, 0);
        // `a` left: listed again, it is read again.
        assert_eq!(nodes.unread(&[a, b, c]), 1);
    }
}
