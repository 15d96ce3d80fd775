//! Per-worker recycling of the lean path's working memory: a client
//! connection's read buffer and its scratch buffer (where the upstream
//! request head, the answer head and a generated request id are written)
//! go back to a small per-thread stock when the connection turns idle and
//! come out of it when the next request arrives, as do the header lists of
//! parsed heads. An idle connection holds no buffer, and a busy worker
//! allocates none of these per request.
//!
//! Each stock is bounded ([`KEEP`] entries per thread); what does not fit,
//! or is still shared (a mirror task holding a body slice), is freed.

use std::cell::RefCell;
use std::ops::Range;

use bytes::BytesMut;

/// Most entries each per-thread stock keeps.
pub(crate) const KEEP: usize = 64;

/// Size of a client connection's read buffer.
pub(crate) const READ_BUFFER: usize = 16 * 1024;

/// Size of a client connection's scratch buffer (heads are written there;
/// a larger head grows it).
pub(crate) const SCRATCH_BUFFER: usize = 2 * 1024;

/// Where each header of a parsed head sits: `(name, value)` ranges.
pub(crate) type HeaderSpans = Vec<(Range<usize>, Range<usize>)>;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static SCRATCH: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static SPANS: RefCell<Vec<HeaderSpans>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer with at least [`READ_BUFFER`] bytes of room.
pub(crate) fn read_buffer() -> BytesMut {
    READ.with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| BytesMut::with_capacity(READ_BUFFER))
}

/// A scratch buffer with at least [`SCRATCH_BUFFER`] bytes of room.
pub(crate) fn scratch_buffer() -> BytesMut {
    SCRATCH
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| BytesMut::with_capacity(SCRATCH_BUFFER))
}

/// Gives back an emptied read buffer (see [`keep`]).
pub(crate) fn return_read_buffer(buf: BytesMut) {
    keep(&READ, buf, READ_BUFFER);
}

/// Gives back a scratch buffer whose heads are no longer in use.
pub(crate) fn return_scratch_buffer(buf: BytesMut) {
    keep(&SCRATCH, buf, SCRATCH_BUFFER);
}

/// Stocks `buf` when it is empty, its memory is no longer shared with
/// `Bytes` split off it, it has `room` bytes (and not four times more: a
/// buffer grown for one large head is freed), and the stock has space.
fn keep(
    stock: &'static std::thread::LocalKey<RefCell<Vec<BytesMut>>>,
    mut buf: BytesMut,
    room: usize,
) {
    if !buf.is_empty() || !buf.try_reclaim(room) || buf.capacity() > 4 * room {
        return;
    }
    stock.with_borrow_mut(|s| {
        if s.len() < KEEP {
            s.push(buf);
        }
    });
}

/// An empty header list.
pub(crate) fn header_spans() -> HeaderSpans {
    SPANS.with_borrow_mut(Vec::pop).unwrap_or_default()
}

/// Gives back a header list.
pub(crate) fn return_header_spans(mut spans: HeaderSpans) {
    if spans.capacity() == 0 {
        return;
    }
    spans.clear();
    SPANS.with_borrow_mut(|s| {
        if s.len() < KEEP {
            s.push(spans);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_once_its_slices_are_gone() {
        let mut buf = read_buffer();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buf.split_to(buf.len()).freeze();
        let ptr = head.as_ptr();
        // Still shared with `head`: not stocked.
        return_read_buffer(std::mem::take(&mut buf));
        let mut other = read_buffer();
        other.extend_from_slice(b"x");
        assert_ne!(other.as_ptr(), ptr);
        drop(other);

        let mut buf = read_buffer();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buf.split_to(buf.len()).freeze();
        let ptr = head.as_ptr();
        drop(head);
        return_read_buffer(buf);
        let again = read_buffer();
        assert_eq!(again.as_ptr(), ptr, "the same memory comes back");
        assert!(again.capacity() >= READ_BUFFER);
        assert!(again.is_empty());
    }

    #[test]
    fn a_buffer_with_bytes_left_is_not_stocked() {
        let mut buf = scratch_buffer();
        buf.extend_from_slice(b"pipelined");
        return_scratch_buffer(buf);
        assert_eq!(SCRATCH.with_borrow(Vec::len), 0);
        return_scratch_buffer(scratch_buffer());
        assert_eq!(SCRATCH.with_borrow(Vec::len), 1);
    }

    #[test]
    fn the_stock_is_bounded() {
        let bufs: Vec<_> = (0..KEEP + 10)
            .map(|_| BytesMut::with_capacity(SCRATCH_BUFFER))
            .collect();
        for b in bufs {
            return_scratch_buffer(b);
        }
        assert_eq!(SCRATCH.with_borrow(Vec::len), KEEP);
        let spans: Vec<HeaderSpans> = (0..KEEP + 3).map(|_| Vec::with_capacity(4)).collect();
        for s in spans {
            return_header_spans(s);
        }
        assert_eq!(SPANS.with_borrow(Vec::len), KEEP);
    }
}
