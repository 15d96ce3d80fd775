//! Counting the parameters of a JVM method descriptor such as
//! `Ljava/lang/String;I[Ljava/lang/String;`.

/// A parameter-types descriptor that is not a valid JVM descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    /// An unexpected character at this byte offset.
    #[error("invalid parameter-types descriptor at byte {0}")]
    Invalid(usize),
    /// An object type `L...` without its closing `;`.
    #[error("unterminated object type in parameter-types descriptor at byte {0}")]
    Unterminated(usize),
}

/// Counts the parameters in `desc`: `L...;` objects, `[` arrays of any
/// component type, and the primitives `Z B C D F I J S`. Empty means none.
pub fn count_params(desc: &[u8]) -> Result<usize, DescriptorError> {
    let mut i = 0;
    let mut count = 0;
    while i < desc.len() {
        while desc.get(i) == Some(&b'[') {
            i += 1;
        }
        match desc.get(i) {
            Some(b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S') => i += 1,
            Some(b'L') => {
                let rest = desc.get(i + 1..).unwrap_or_default();
                match rest.iter().position(|&b| b == b';') {
                    Some(0) | None => return Err(DescriptorError::Unterminated(i)),
                    Some(end) => i += end + 2,
                }
            }
            _ => return Err(DescriptorError::Invalid(i)),
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parameters() {
        assert_eq!(count_params(b""), Ok(0));
        assert_eq!(count_params(b"I"), Ok(1));
        assert_eq!(
            count_params(b"Ljava/lang/String;I[Ljava/lang/String;"),
            Ok(3)
        );
        assert_eq!(count_params(b"ZBCDFIJS"), Ok(8));
        assert_eq!(count_params(b"[[I[[[Lcom/x/Y;J"), Ok(3));
    }

    #[test]
    fn rejects_bad_descriptors() {
        assert_eq!(
            count_params(b"Ljava/lang/String"),
            Err(DescriptorError::Unterminated(0))
        );
        assert_eq!(count_params(b"L;"), Err(DescriptorError::Unterminated(0)));
        assert_eq!(count_params(b"I["), Err(DescriptorError::Invalid(2)));
        assert_eq!(count_params(b"V"), Err(DescriptorError::Invalid(0)));
        assert_eq!(
            count_params(b"java.lang.String"),
            Err(DescriptorError::Invalid(0))
        );
    }
}
