//! Configuration: the YAML shape users write, parsed and validated.

/// Default largest frame a codec accepts (8 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
