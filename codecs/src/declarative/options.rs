//! The `options:` section of a `declarative` listener or cluster, parsed
//! and checked once at config load into a [`FrameSpec`].
//!
//! ```yaml
//! options:
//!   byte_order: big                      # big (default) | little
//!   header_length: 16                    # bytes before the body
//!   magic: { hex: "cafe", offset: 0 }    # optional
//!   message_type: { offset: 2, request: 0, response: 1, oneway: 2, heartbeat: 3, heartbeat_response: 4, error: 5 }
//!   request_id: { offset: 4, width: 8 }
//!   length: { offset: 12, width: 4, includes_header: false }
//!   fields:
//!     - { name: tenant, offset: 3, width: 1 }                   # integer, as decimal text
//!     - { name: service, offset: 16, width: 2, type: string }   # u16 length, then UTF-8 bytes
//!   max_frame_bytes: 65536               # optional; the smaller of this and the limit wins
//! ```

use metaproxy_core::PluginError;
use serde::Deserialize;

/// Largest header the codec accepts (the header is buffered whole).
pub const MAX_HEADER_LENGTH: usize = 64 * 1024;

/// Keys the codec fills itself; fields may not use them.
const RESERVED_KEYS: [&str; 2] = ["protocol", "request_id"];

/// An invalid option of the `options:` section, named by its path there.
fn bad_option(option: impl std::fmt::Display, reason: impl std::fmt::Display) -> PluginError {
    PluginError::invalid_option(format!("options.{option}"), reason)
}

/// How integers are laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// The width of an integer field: 1, 2, 4 or 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Width(u8);

impl Width {
    /// `bytes` as the width of the option `what` (its path in `options:`).
    fn new(bytes: u8, what: &str) -> Result<Self, PluginError> {
        match bytes {
            1 | 2 | 4 | 8 => Ok(Self(bytes)),
            other => Err(bad_option(
                what,
                format!("width must be 1, 2, 4 or 8, not {other}"),
            )),
        }
    }

    /// The width in bytes.
    pub fn bytes(self) -> usize {
        usize::from(self.0)
    }

    /// The largest value the width holds.
    pub fn max_value(self) -> u64 {
        match self.0 {
            8 => u64::MAX,
            n => (1u64 << (u32::from(n) * 8)) - 1,
        }
    }
}

/// An unsigned integer at a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntField {
    /// Offset from the start of the frame.
    pub offset: usize,
    /// Width in bytes.
    pub width: Width,
}

impl IntField {
    /// One past the last byte.
    pub fn end(self) -> usize {
        self.offset + self.width.bytes()
    }
}

/// The message-type byte(s) and the value of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    /// Where the type lies.
    pub field: IntField,
    /// Value of a request (expects an answer).
    pub request: Option<u64>,
    /// Value of a response.
    pub response: Option<u64>,
    /// Value of a oneway request (no answer).
    pub oneway: Option<u64>,
    /// Value of a heartbeat (answered by the proxy).
    pub heartbeat: Option<u64>,
    /// Value of a heartbeat answer.
    pub heartbeat_response: Option<u64>,
    /// Value of an error response (also used for the proxy's own error replies).
    pub error: Option<u64>,
}

/// How a routable field is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// An unsigned integer of `width` bytes, stored as decimal text.
    #[default]
    Integer,
    /// A length prefix of `width` bytes, then that many UTF-8 bytes.
    String,
}

/// A routable field copied into the metadata under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The metadata key.
    pub name: String,
    /// Where the integer, or the string's length prefix, lies.
    pub at: IntField,
    /// Integer or length-prefixed string.
    pub kind: FieldType,
}

/// A checked frame layout: everything the codec needs at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Byte order of every integer.
    pub byte_order: ByteOrder,
    /// Bytes before the body.
    pub header_length: usize,
    /// Magic bytes and their offset.
    pub magic: Option<(usize, Vec<u8>)>,
    /// The length field.
    pub length: IntField,
    /// Whether the length counts the header too.
    pub length_includes_header: bool,
    /// The request id.
    pub request_id: IntField,
    /// The message type, if the format has one.
    pub message_type: Option<TypeSpec>,
    /// Routable fields.
    pub fields: Vec<FieldSpec>,
    /// The format's own frame limit (the listener's or cluster's limit also applies).
    pub max_frame_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    #[serde(default)]
    byte_order: ByteOrder,
    header_length: usize,
    #[serde(default)]
    magic: Option<RawMagic>,
    length: RawLength,
    request_id: RawInt,
    #[serde(default)]
    message_type: Option<RawType>,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    max_frame_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMagic {
    hex: String,
    #[serde(default)]
    offset: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLength {
    offset: usize,
    width: u8,
    #[serde(default)]
    includes_header: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInt {
    offset: usize,
    width: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    offset: usize,
    #[serde(default = "one")]
    width: u8,
    #[serde(default)]
    request: Option<u64>,
    #[serde(default)]
    response: Option<u64>,
    #[serde(default)]
    oneway: Option<u64>,
    #[serde(default)]
    heartbeat: Option<u64>,
    #[serde(default)]
    heartbeat_response: Option<u64>,
    #[serde(default)]
    error: Option<u64>,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    offset: usize,
    width: u8,
    #[serde(default, rename = "type")]
    kind: FieldType,
}

fn parse_hex(text: &str) -> Result<Vec<u8>, PluginError> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'_')
        .collect();
    let digits = digits
        .strip_prefix(b"0x")
        .or_else(|| digits.strip_prefix(b"0X"))
        .unwrap_or(&digits);
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(bad_option(
            "magic.hex",
            format!("`{text}`: give an even number of hex digits, e.g. \"cafe\""),
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad_option("magic.hex", format!("`{text}`: not hexadecimal")))
        })
        .collect()
}

impl FrameSpec {
    /// Parses and checks the `options:` section.
    pub fn parse(extra: &serde_json::Value) -> Result<Self, PluginError> {
        if extra.is_null() {
            return Err(PluginError::Invalid(
                "protocol `declarative` needs an `options:` section describing the frame \
                 (header_length, length, request_id; see docs/protocols/declarative.md)"
                    .to_string(),
            ));
        }
        let raw: RawOptions = serde_json::from_value(extra.clone()).map_err(|e| {
            PluginError::Invalid(format!("bad `options` for protocol `declarative`: {e}"))
        })?;
        Self::check(raw)
    }

    fn check(raw: RawOptions) -> Result<Self, PluginError> {
        let h = raw.header_length;
        if h == 0 || h > MAX_HEADER_LENGTH {
            return Err(bad_option(
                "header_length",
                format!("must be between 1 and {MAX_HEADER_LENGTH}, not {h}"),
            ));
        }
        let in_header = |what: &str, f: IntField| -> Result<IntField, PluginError> {
            match f.offset.checked_add(f.width.bytes()) {
                Some(end) if end <= h => Ok(f),
                _ => Err(bad_option(
                    what,
                    format!(
                        "the field (offset {}, width {}) does not fit in the {h}-byte header",
                        f.offset,
                        f.width.bytes()
                    ),
                )),
            }
        };
        let length = in_header(
            "length",
            IntField {
                offset: raw.length.offset,
                width: Width::new(raw.length.width, "length")?,
            },
        )?;
        let request_id = in_header(
            "request_id",
            IntField {
                offset: raw.request_id.offset,
                width: Width::new(raw.request_id.width, "request_id")?,
            },
        )?;
        let magic = match raw.magic {
            None => None,
            Some(m) => {
                let bytes = parse_hex(&m.hex)?;
                if m.offset.saturating_add(bytes.len()) > h {
                    return Err(bad_option(
                        "magic",
                        format!(
                            "the magic (offset {}, {} bytes) does not fit in the {h}-byte header",
                            m.offset,
                            bytes.len()
                        ),
                    ));
                }
                Some((m.offset, bytes))
            }
        };
        let message_type = match raw.message_type {
            None => None,
            Some(t) => {
                let field = in_header(
                    "message_type",
                    IntField {
                        offset: t.offset,
                        width: Width::new(t.width, "message_type")?,
                    },
                )?;
                let spec = TypeSpec {
                    field,
                    request: t.request,
                    response: t.response,
                    oneway: t.oneway,
                    heartbeat: t.heartbeat,
                    heartbeat_response: t.heartbeat_response,
                    error: t.error,
                };
                let values = spec.values();
                if values.is_empty() {
                    return Err(bad_option(
                        "message_type",
                        "give at least the `request` value",
                    ));
                }
                for (i, (name, v)) in values.iter().enumerate() {
                    if *v > field.width.max_value() {
                        return Err(bad_option(
                            format_args!("message_type.{name}"),
                            format!("{v} does not fit in {} byte(s)", field.width.bytes()),
                        ));
                    }
                    if let Some((other, _)) = values[..i].iter().find(|(_, w)| w == v) {
                        return Err(bad_option(
                            "message_type",
                            format!("`{other}` and `{name}` have the same value {v}"),
                        ));
                    }
                }
                Some(spec)
            }
        };
        let mut fields: Vec<FieldSpec> = Vec::with_capacity(raw.fields.len());
        for f in raw.fields {
            if f.name.is_empty() {
                return Err(bad_option("fields", "a field needs a `name`"));
            }
            if RESERVED_KEYS.contains(&f.name.as_str()) {
                return Err(bad_option(
                    "fields",
                    format!(
                        "`{}` is filled by the codec itself; pick another name",
                        f.name
                    ),
                ));
            }
            if fields.iter().any(|g| g.name == f.name) {
                return Err(bad_option(
                    "fields",
                    format!("`{}` is defined twice", f.name),
                ));
            }
            let width = Width::new(f.width, &format!("fields.{}", f.name))?;
            if f.offset.checked_add(width.bytes()).is_none() {
                return Err(bad_option(
                    format_args!("fields.{}.offset", f.name),
                    "too large",
                ));
            }
            fields.push(FieldSpec {
                name: f.name,
                at: IntField {
                    offset: f.offset,
                    width,
                },
                kind: f.kind,
            });
        }
        if let Some(m) = raw.max_frame_bytes
            && m < h
        {
            return Err(bad_option(
                "max_frame_bytes",
                format!("{m} is smaller than header_length ({h})"),
            ));
        }
        Ok(Self {
            byte_order: raw.byte_order,
            header_length: h,
            magic,
            length,
            length_includes_header: raw.length.includes_header,
            request_id,
            message_type,
            fields,
            max_frame_bytes: raw.max_frame_bytes,
        })
    }

    /// Reads the integer `f` from `buf`, if it lies within it.
    pub fn read(&self, buf: &[u8], f: IntField) -> Option<u64> {
        let bytes = buf.get(f.offset..f.end())?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Some(match self.byte_order {
            ByteOrder::Big => bytes.iter().fold(0, fold),
            ByteOrder::Little => bytes.iter().rev().fold(0, fold),
        })
    }

    /// Writes `value` into `f` of `buf`; false when it does not fit.
    pub fn write(&self, buf: &mut [u8], f: IntField, value: u64) -> bool {
        if value > f.width.max_value() {
            return false;
        }
        let Some(slot) = buf.get_mut(f.offset..f.end()) else {
            return false;
        };
        let n = slot.len();
        for (i, b) in slot.iter_mut().enumerate() {
            let shift = match self.byte_order {
                ByteOrder::Big => (n - 1 - i) * 8,
                ByteOrder::Little => i * 8,
            };
            // Truncation intended: one byte of the value.
            *b = ((value >> shift) & 0xff) as u8;
        }
        true
    }
}

impl TypeSpec {
    /// The configured `(name, value)` pairs.
    pub fn values(&self) -> Vec<(&'static str, u64)> {
        [
            ("request", self.request),
            ("response", self.response),
            ("oneway", self.oneway),
            ("heartbeat", self.heartbeat),
            ("heartbeat_response", self.heartbeat_response),
            ("error", self.error),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }
}
