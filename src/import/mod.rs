//! `metaproxy import istio FILE…`: Istio's networking resources (Gateway,
//! VirtualService, DestinationRule, ServiceEntry; v1, v1beta1, v1alpha3)
//! and Aeraki's MetaRouter as a metaproxy config file. Every field that
//! cannot be carried over (Kubernetes-only ones such as `exportTo`,
//! `workloadSelector`, `credentialName`, or features the proxy lacks) is
//! reported with the file, line and path where it stands; none is dropped
//! quietly. docs/istio-import.md has the mapping.

mod crd;
mod istio;
mod notes;

use std::path::Path;

use serde_json::Value;

pub use notes::Note;

/// The API groups read, by kind.
const KINDS: [(&str, &[&str]); 5] = [
    (
        "Gateway",
        &[
            "networking.istio.io/v1",
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        ],
    ),
    (
        "VirtualService",
        &[
            "networking.istio.io/v1",
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        ],
    ),
    (
        "DestinationRule",
        &[
            "networking.istio.io/v1",
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        ],
    ),
    (
        "ServiceEntry",
        &[
            "networking.istio.io/v1",
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        ],
    ),
    ("MetaRouter", &["metaprotocol.aeraki.io/v1alpha1"]),
];

/// A config made from Istio resources, and what it could not carry.
#[derive(Debug)]
pub struct Imported {
    /// The config file's content (as JSON; render it with [`Imported::yaml`]).
    pub config: Value,
    /// Every field left out, with where it stands.
    pub notes: Vec<Note>,
}

impl Imported {
    /// The config as YAML text.
    pub fn yaml(&self) -> String {
        serde_saphyr::to_string(&self.config).unwrap_or_else(|_| self.config.to_string())
    }
}

/// Why files cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file cannot be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not YAML.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
}

/// Imports `files` (each may hold several `---` documents). Gateways,
/// ServiceEntries and DestinationRules are read before the
/// VirtualServices and MetaRouters that refer to them, whatever the order
/// of the files.
pub fn istio(files: &[&Path]) -> Result<Imported, ImportError> {
    let mut docs = Vec::new();
    let mut importer = istio::Importer::default();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
            file: file.clone(),
            source,
        })?;
        let parsed: Vec<serde_saphyr::Spanned<Value>> = serde_saphyr::from_str_multiple(&text)
            .map_err(|e| ImportError::Parse {
                file: file.clone(),
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?;
        for d in parsed {
            let line = d.referenced.line();
            let v = d.value;
            if v.is_null() {
                continue;
            }
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            let api = v["apiVersion"].as_str().unwrap_or_default().to_string();
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let namespace = v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let resource = format!("{file}:{line}: {kind} {namespace}/{name}");
            let known = KINDS
                .iter()
                .any(|(k, apis)| *k == kind && apis.contains(&api.as_str()));
            if !known {
                importer.notes.resource = resource;
                importer.notes.add(
                    "apiVersion/kind",
                    format!("`{api}` `{kind}` is not imported"),
                );
                continue;
            }
            let order = KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
            // Gateways, DestinationRules and ServiceEntries first.
            let pass = usize::from(matches!(kind.as_str(), "VirtualService" | "MetaRouter"));
            docs.push((
                pass,
                order,
                istio::Doc {
                    resource,
                    kind,
                    name,
                    namespace,
                    spec: v.get("spec").cloned().unwrap_or(Value::Null),
                },
            ));
        }
    }
    docs.sort_by_key(|(pass, _, _)| *pass);
    for (_, _, doc) in docs {
        importer.take(doc);
    }
    let (config, notes) = importer.finish();
    Ok(Imported { config, notes })
}
