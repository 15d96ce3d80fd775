//! Configuration: the YAML shape users write, parsed with serde-saphyr and
//! validated with file, line and column in every message.
//!
//! [`model`] holds the serde types (unknown fields are errors), [`duration`]
//! the `500ms` / `2s` parser, [`load`] reading and parsing, [`validate`] the
//! cross-checks serde cannot do (unknown cluster, duplicate names, bad regex...),
//! [`locality`] the zone / priority / drain rules of a cluster's endpoints.

pub mod duration;
pub mod load;
pub mod locality;
pub mod model;
mod upstream_mode;
pub mod validate;

pub use duration::{ConfigDuration, DurationError};
pub use load::{ConfigError, ConfigErrors, LoadedConfig, load_file, parse_str, parse_with_source};
pub use model::*;
pub use upstream_mode::UpstreamMode;

/// Default largest frame a codec accepts (8 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
