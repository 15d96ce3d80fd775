//! What an import could not carry: every such field, with where it is.

use std::fmt;

use super::crd::Other;

/// One field the importer left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `file:line` of the resource's document, its kind and name.
    pub resource: String,
    /// The field's path in the resource (`spec.http[0].fault`).
    pub path: String,
    /// Why it was left out.
    pub why: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.resource, self.path, self.why)
    }
}

/// The notes of one import, and the resource being read.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub(crate) list: Vec<Note>,
    pub(crate) resource: String,
}

impl Notes {
    /// `path` was left out because `why`.
    pub(crate) fn add(&mut self, path: impl Into<String>, why: impl Into<String>) {
        self.list.push(Note {
            resource: self.resource.clone(),
            path: path.into(),
            why: why.into(),
        });
    }

    /// Fields of `path` outside the schema the importer knows.
    pub(crate) fn other(&mut self, path: &str, other: &Other) {
        for key in other.keys() {
            self.add(format!("{path}.{key}"), "not a field this importer knows");
        }
    }

    /// `spec.exportTo`, when given: Kubernetes-only.
    pub(crate) fn export_to(&mut self, export_to: &[String]) {
        self.unsupported(
            "spec.exportTo",
            !export_to.is_empty(),
            "Kubernetes-only: visibility between namespaces",
        );
    }

    /// `path` was given but has no counterpart here.
    pub(crate) fn unsupported(&mut self, path: &str, given: bool, why: &str) {
        if given {
            self.add(path, why);
        }
    }
}
