//! The set/remove list that filters and routes produce and codecs apply on encode.

use bytestring::ByteString;

/// One change to a message's protocol headers (HTTP headers, Dubbo attachments, THeader headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationOp {
    /// Set `key` to `value`, replacing any existing value.
    Set(ByteString, ByteString),
    /// Remove `key`.
    Remove(ByteString),
}

/// An ordered list of changes. Codecs must apply every op; ignoring one is a bug.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutation {
    ops: Vec<MutationOp>,
}

impl Mutation {
    /// An empty mutation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a set op.
    pub fn set(&mut self, key: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.ops.push(MutationOp::Set(key.into(), value.into()));
    }

    /// Adds a remove op.
    pub fn remove(&mut self, key: impl Into<ByteString>) {
        self.ops.push(MutationOp::Remove(key.into()));
    }

    /// Appends all ops of `other`.
    pub fn extend(&mut self, other: &Mutation) {
        self.ops.extend(other.ops.iter().cloned());
    }

    /// Whether there is nothing to apply (the codec can forward the original bytes).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops in order.
    pub fn ops(&self) -> &[MutationOp] {
        &self.ops
    }

    /// Applies the ops to a list of `(key, value)` pairs, as codecs with a
    /// key/value header block do: removes, replaces in place, appends new keys.
    pub fn apply_to_pairs(&self, pairs: &mut Vec<(ByteString, ByteString)>) {
        for op in &self.ops {
            match op {
                MutationOp::Set(k, v) => match pairs.iter_mut().find(|(pk, _)| pk == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => pairs.push((k.clone(), v.clone())),
                },
                MutationOp::Remove(k) => pairs.retain(|(pk, _)| pk != k),
            }
        }
    }

    /// Whether applying the ops would touch `key`.
    pub fn touches(&self, key: &str) -> bool {
        self.ops.iter().any(|op| match op {
            MutationOp::Set(k, _) | MutationOp::Remove(k) => &**k == key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_to_pairs_sets_replaces_and_removes() {
        let mut pairs: Vec<(ByteString, ByteString)> =
            vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        let mut m = Mutation::new();
        m.set("a", "10");
        m.set("c", "3");
        m.remove("b");
        m.apply_to_pairs(&mut pairs);
        assert_eq!(
            pairs,
            vec![("a".into(), "10".into()), ("c".into(), "3".into())]
        );
        assert!(m.touches("b") && !m.touches("z"));
    }
}
