//! Small checks shared by the snapshot builder.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_saphyr::Spanned;

use super::load::ErrorSink;

/// Parses `ip:port`, recording an error on failure.
pub fn socket_addr(
    sink: &mut ErrorSink,
    field: &Spanned<String>,
    what: &str,
) -> Option<SocketAddr> {
    match field.value.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            sink.on(
                field,
                format!("{what} `{}` is not an ip:port address", field.value),
            );
            None
        }
    }
}

/// Records an error for every name already seen.
pub fn unique_names<'a>(
    sink: &mut ErrorSink,
    names: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for n in names {
        if let Some(line) = seen.insert(n.value.as_str(), n.referenced.line()) {
            sink.on(
                n,
                format!(
                    "duplicate {what} name `{}` (first defined on line {line})",
                    n.value
                ),
            );
        }
    }
}
