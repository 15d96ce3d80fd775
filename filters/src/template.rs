//! Values with `%key%` placeholders filled from request metadata.

use metaproxy_core::metadata::MetadataView;

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// A `%` opens a placeholder that no `%` closes.
    #[error("unclosed `%` in `{0}`")]
    Unclosed(String),
}

/// A value that is either literal or has `%key%` placeholders (`%%` is a literal `%`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Template {
    Literal(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Key(String),
}

impl Template {
    /// Parses `text`; an unclosed `%` is an error.
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        if !text.contains('%') {
            return Ok(Template::Literal(text.to_string()));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 1..];
            let end = after
                .find('%')
                .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
            if end == 0 {
                parts.push(Part::Text("%".into()));
            } else {
                parts.push(Part::Key(after[..end].to_string()));
            }
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template::Parts(parts))
    }

    /// Renders with values from `view`; a missing key renders empty.
    pub(crate) fn render(&self, view: &impl MetadataView) -> String {
        match self {
            Template::Literal(s) => s.clone(),
            Template::Parts(parts) => parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.as_str(),
                    Part::Key(k) => view.lookup(k).unwrap_or(""),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;

    #[test]
    fn renders_placeholders() {
        let m: Metadata = [("source.ip", "10.0.0.1"), ("method", "sayHello")]
            .into_iter()
            .collect();
        let t = Template::parse("%method%@%source.ip% 100%% %missing%").unwrap();
        assert_eq!(t.render(&m), "sayHello@10.0.0.1 100% ");
        assert_eq!(Template::parse("plain").unwrap().render(&m), "plain");
        assert!(Template::parse("%open").is_err());
    }
}
