//! The attachments map of a request or response body: where it and each
//! entry lie in the frame, and rewriting it with a [`Mutation`] applied.
//!
//! A rewritten map keeps the original header (`'H'`, or `'M'` with its type,
//! so later type references keep their numbering; a new map is `'H'`), the
//! original entries not touched by the mutation as their raw bytes, then
//! each key the mutation sets, as hessian strings, then `'Z'`.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use metaproxy_core::Mutation;

use super::hessian::writer::{self, END, MAP_UNTYPED};
use super::hessian::{HessianError, Reader, Scalar, span_text};

/// Most entries accepted in one attachments map.
pub const MAX_ATTACHMENTS: usize = 1024;

/// Why an attachments map could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentsError {
    /// Bad hessian inside the map.
    #[error(transparent)]
    Hessian(#[from] HessianError),
    /// More than [`MAX_ATTACHMENTS`] entries.
    #[error("more than {MAX_ATTACHMENTS} attachments")]
    TooMany,
    /// Something other than a map (or null) where the map belongs.
    #[error("expected the attachments map at byte {0}")]
    NotAMap(usize),
}

/// Why a mutation could not be applied to an attachments map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A kept entry refers (by hessian reference) to something defined in a
    /// removed or replaced entry.
    #[error("attachment refers to hessian references defined in a removed attachment")]
    DanglingReference,
}

/// One attachments entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The key, when it is a string.
    pub key: Option<ByteString>,
    /// The value as text: strings as is, ints, longs and booleans in
    /// decimal / `true` / `false`; `None` for anything else.
    pub value: Option<ByteString>,
    /// The entry's bytes (key and value) in the frame.
    pub raw: Range<usize>,
    /// Whether the entry added class definitions, types or references.
    pub defines: bool,
    /// Whether the entry referred to class definitions, types or references.
    pub uses: bool,
}

/// Where the attachments map lies in a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttachmentsLayout {
    /// The whole map value; empty (at the insertion point) when absent,
    /// the null value when the body carried a null.
    pub map: Range<usize>,
    /// The map's header (`'H'` or `'M'` and its type); empty without a map.
    pub header: Range<usize>,
    /// The entries in wire order.
    pub entries: Vec<Attachment>,
}

impl AttachmentsLayout {
    /// An absent map, to be inserted at `at`.
    pub fn absent(at: usize) -> Self {
        Self {
            map: at..at,
            header: at..at,
            entries: Vec::new(),
        }
    }

    /// The text value of the first entry with key `key`.
    pub fn get(&self, key: &str) -> Option<&ByteString> {
        self.entries
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.as_ref())
    }
}

/// Reads the attachments map at the reader's position: a map, a null, or
/// nothing when the body ends there.
pub fn parse(frame: &Bytes, r: &mut Reader<'_>) -> Result<AttachmentsLayout, AttachmentsError> {
    let start = r.pos();
    match r.peek() {
        None => return Ok(AttachmentsLayout::absent(start)),
        Some(b'N') => {
            r.skip_value()?;
            let mut layout = AttachmentsLayout::absent(start);
            layout.map = start..r.pos();
            return Ok(layout);
        }
        Some(b'H' | b'M') => {}
        Some(_) => return Err(AttachmentsError::NotAMap(start)),
    }
    r.read_map_start()?;
    let header = start..r.pos();
    let mut entries = Vec::new();
    while !r.at_map_end()? {
        if entries.len() >= MAX_ATTACHMENTS {
            return Err(AttachmentsError::TooMany);
        }
        entries.push(entry(frame, r)?);
    }
    Ok(AttachmentsLayout {
        map: start..r.pos(),
        header,
        entries,
    })
}

fn entry(frame: &Bytes, r: &mut Reader<'_>) -> Result<Attachment, HessianError> {
    let start = r.pos();
    let before = r.tables();
    r.take_used_tables();
    let key = match r.peek() {
        Some(tag) if Reader::is_string_tag(tag) => Some(span_text(frame, &r.read_string()?)?),
        _ => {
            r.skip_value()?;
            None
        }
    };
    let value = match r.read_scalar()? {
        Scalar::Str(span) => Some(span_text(frame, &span)?),
        Scalar::Int(v) => Some(ByteString::from(v.to_string())),
        Scalar::Bool(true) => Some(ByteString::from_static("true")),
        Scalar::Bool(false) => Some(ByteString::from_static("false")),
        Scalar::Null | Scalar::Other => None,
    };
    Ok(Attachment {
        key,
        value,
        raw: start..r.pos(),
        defines: r.tables() != before,
        uses: r.take_used_tables(),
    })
}

/// A planned rewrite: which original entries stay, which keys are set.
#[derive(Debug)]
pub struct Rewrite<'a> {
    layout: &'a AttachmentsLayout,
    keep: Vec<Range<usize>>,
    sets: Vec<(ByteString, ByteString)>,
}

impl<'a> Rewrite<'a> {
    /// Plans applying `mutation` to `layout`.
    pub fn plan(layout: &'a AttachmentsLayout, mutation: &Mutation) -> Result<Self, RewriteError> {
        let mut sets = Vec::new();
        mutation.apply_to_pairs(&mut sets);
        let mut keep = Vec::with_capacity(layout.entries.len());
        let mut dropped_definitions = false;
        for e in &layout.entries {
            let touched = e.key.as_deref().is_some_and(|k| mutation.touches(k));
            if touched {
                dropped_definitions |= e.defines;
            } else if dropped_definitions && e.uses {
                return Err(RewriteError::DanglingReference);
            } else {
                keep.push(e.raw.clone());
            }
        }
        Ok(Self { layout, keep, sets })
    }

    /// The size of the rewritten map.
    pub fn encoded_len(&self) -> usize {
        let header = self.layout.header.len().max(1);
        let kept: usize = self.keep.iter().map(Range::len).sum();
        let set: usize = self
            .sets
            .iter()
            .map(|(k, v)| writer::string_len(k) + writer::string_len(v))
            .sum();
        header + kept + set + 1
    }

    /// Whether every range the rewrite copies lies inside `frame`.
    pub fn fits(&self, frame: &[u8]) -> bool {
        frame.get(self.layout.header.clone()).is_some()
            && self.keep.iter().all(|r| frame.get(r.clone()).is_some())
    }

    /// Writes the rewritten map; `frame` is the frame the layout describes
    /// (check [`Rewrite::fits`] first: ranges outside it are written empty).
    pub fn write(&self, frame: &[u8], dst: &mut BytesMut) {
        let header = frame.get(self.layout.header.clone()).unwrap_or_default();
        if header.is_empty() {
            dst.put_u8(MAP_UNTYPED);
        } else {
            dst.put_slice(header);
        }
        for range in &self.keep {
            dst.put_slice(frame.get(range.clone()).unwrap_or_default());
        }
        for (k, v) in &self.sets {
            writer::write_string(dst, k);
            writer::write_string(dst, v);
        }
        dst.put_u8(END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_of(bytes: &'static [u8]) -> (Bytes, AttachmentsLayout) {
        let frame = Bytes::from_static(bytes);
        let mut r = Reader::new(&frame, 0);
        let layout = parse(&frame, &mut r).unwrap();
        assert!(r.at_end());
        (frame, layout)
    }

    #[test]
    fn parses_entries_and_values() {
        let (_, l) = layout_of(&[
            b'H', 0x01, b'a', 0x01, b'x', 0x01, b'n', 0x9f, 0x01, b'b', b'T', 0x01, b'z', b'N',
            0x01, b'l', 0x79, 0x90, b'Z',
        ]);
        assert_eq!(l.map, 0..19);
        assert_eq!(l.header, 0..1);
        assert_eq!(l.entries.len(), 5);
        assert_eq!(l.get("a").map(|v| &**v), Some("x"));
        assert_eq!(l.get("n").map(|v| &**v), Some("15"));
        assert_eq!(l.get("b").map(|v| &**v), Some("true"));
        assert_eq!(l.get("z"), None);
        assert_eq!(l.entries[4].raw, 14..18);
        assert!(l.entries[4].defines && !l.entries[4].uses);
    }

    #[test]
    fn absent_null_and_non_map() {
        let (_, l) = layout_of(&[]);
        assert_eq!(l, AttachmentsLayout::absent(0));
        let (_, l) = layout_of(b"N");
        assert_eq!(l.map, 0..1);
        assert!(l.header.is_empty());
        let frame = Bytes::from_static(&[0x91]);
        let err = parse(&frame, &mut Reader::new(&frame, 0)).unwrap_err();
        assert_eq!(err, AttachmentsError::NotAMap(0));
    }

    #[test]
    fn too_many_entries() {
        let mut bytes = vec![b'H'];
        for _ in 0..=MAX_ATTACHMENTS {
            bytes.extend_from_slice(&[0x01, b'k', b'N']);
        }
        bytes.push(b'Z');
        let frame = Bytes::from(bytes);
        let err = parse(&frame, &mut Reader::new(&frame, 0)).unwrap_err();
        assert_eq!(err, AttachmentsError::TooMany);
    }

    #[test]
    fn rewrite_removes_replaces_and_appends() {
        let (frame, l) = layout_of(&[b'H', 0x01, b'a', 0x01, b'x', 0x01, b'b', 0x01, b'y', b'Z']);
        let mut m = Mutation::new();
        m.remove("a");
        m.set("b", "2");
        m.set("c", "3");
        let plan = Rewrite::plan(&l, &m).unwrap();
        let mut dst = BytesMut::new();
        assert!(plan.fits(&frame));
        plan.write(&frame, &mut dst);
        assert_eq!(dst.len(), plan.encoded_len());
        assert_eq!(
            &dst[..],
            &[b'H', 0x01, b'b', 0x01, b'2', 0x01, b'c', 0x01, b'3', b'Z']
        );
    }

    #[test]
    fn rewrite_refuses_dangling_references() {
        // "a" => [1] (a ref-able list); "b" => Q 0 (refers to it).
        let (_, l) = layout_of(&[b'H', 0x01, b'a', 0x79, 0x91, 0x01, b'b', b'Q', 0x90, b'Z']);
        let mut m = Mutation::new();
        m.remove("a");
        assert_eq!(
            Rewrite::plan(&l, &m).unwrap_err(),
            RewriteError::DanglingReference
        );
        let mut m = Mutation::new();
        m.remove("b");
        assert!(Rewrite::plan(&l, &m).is_ok());
    }
}
