//! Gateways: one listener per server entry, its TLS and its hosts.

use serde_json::json;

use super::*;

impl Importer {
    pub(super) fn gateway(&mut self, doc: &Doc, s: GatewaySpec) {
        self.notes.unsupported(
            "spec.selector",
            !s.selector.is_empty(),
            "Kubernetes-only: which gateway pods serve it (this proxy serves it)",
        );
        self.notes.other("spec", &s.other);
        let key = format!("{}/{}", doc.namespace, doc.name);
        for (i, server) in s.servers.iter().enumerate() {
            let path = format!("spec.servers[{i}]");
            self.notes.other(&path, &server.other);
            self.notes
                .other(&format!("{path}.port"), &server.port.other);
            let protocol = server.port.protocol.to_ascii_uppercase();
            let name = format!("{}-{}", doc.name, server.port.number);
            let bind = server.bind.as_deref().unwrap_or("0.0.0.0");
            let mut listener = json!({
                "name": name,
                "address": format!("{bind}:{}", server.port.number),
            });
            let ours = match protocol.as_str() {
                "HTTP" | "HTTP2" | "GRPC" => "http",
                "HTTPS" => "http",
                "TLS" => "tls_passthrough",
                other => {
                    self.notes.add(
                        format!("{path}.port.protocol"),
                        format!("`{other}` servers are not imported"),
                    );
                    continue;
                }
            };
            listener["protocol"] = json!(ours);
            if let Some(tls) = &server.tls {
                let tpath = format!("{path}.tls");
                self.notes.other(&tpath, &tls.other);
                self.notes.unsupported(
                    &format!("{tpath}.credentialName"),
                    tls.credential_name.is_some(),
                    "Kubernetes-only: a Secret; give serverCertificate and privateKey files",
                );
                self.notes.unsupported(
                    &format!("{tpath}.httpsRedirect"),
                    tls.https_redirect,
                    "not carried: add a redirect route",
                );
                match tls.mode.as_deref().unwrap_or("SIMPLE") {
                    "PASSTHROUGH" => listener["protocol"] = json!("tls_passthrough"),
                    "SIMPLE" | "MUTUAL" if ours == "http" => {
                        if let (Some(cert), Some(key)) = (&tls.server_certificate, &tls.private_key)
                        {
                            let mut t = json!({ "certificates": [{ "cert": cert, "key": key }] });
                            if let Some(ca) = &tls.ca_certificates {
                                t["client_ca"] = json!(ca);
                                t["client_auth"] = json!("required");
                            }
                            if tls.min_protocol_version.as_deref() == Some("TLSV1_3") {
                                t["min_version"] = json!("1.3");
                            }
                            listener["tls"] = t;
                        } else if protocol == "HTTPS" {
                            self.notes.add(&tpath, "no serverCertificate/privateKey files: the listener serves plain HTTP");
                        }
                    }
                    mode => self
                        .notes
                        .add(format!("{tpath}.mode"), format!("`{mode}` is not imported")),
                }
            }
            let listener_protocol = listener["protocol"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.gateways
                .entry(key.clone())
                .or_default()
                .push((name.clone(), listener_protocol));
            self.listeners.insert(name, listener);
        }
    }
}
