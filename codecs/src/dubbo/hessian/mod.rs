//! Hessian 2.0: a bounded reader that can skip any value and a writer for
//! the few values the Dubbo codec emits (strings, ints, null, maps).
//!
//! The reader never materialises values it does not need: it walks the
//! bytes, checking every length against what is left and against fixed
//! limits ([`MAX_DEPTH`], [`MAX_CLASS_DEFS`]), and reports where strings
//! lie so callers can slice them out of the frame without copying.

pub mod descriptor;
pub mod reader;
pub mod text;
pub mod writer;

pub use descriptor::{DescriptorError, count_params};
pub use reader::{HessianError, MAX_CLASS_DEFS, MAX_DEPTH, Reader, Scalar, StringSpan, TableMark};
pub use text::span_text;

#[cfg(test)]
mod vector_tests;
