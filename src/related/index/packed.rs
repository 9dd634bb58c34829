//! An article's term counts, packed as varints.

/// An article's `(term, count)` pairs, sorted by term, as LEB128 varints:
/// each term as the gap from the one before, then its count. Counts are
/// whole (a title word counts [`super::TITLE_WEIGHT`] times, a body word once)
/// and mostly 1, gaps mostly under 128: a pair takes two or three bytes,
/// where `(u32, f32)` took eight, and weights computed from it are the
/// same to the bit. At a million articles the vectors took 317 MB.
#[derive(Debug, Clone)]
pub(super) struct Packed(Box<[u8]>);

impl Packed {
    /// Packs pairs sorted by term.
    pub(super) fn new(pairs: &[(u32, u32)]) -> Self {
        let mut bytes = Vec::with_capacity(pairs.len() * 3);
        let mut previous = 0;
        for (term, count) in pairs {
            debug_assert!(*term >= previous, "terms out of order");
            push_varint(&mut bytes, term - previous);
            push_varint(&mut bytes, *count);
            previous = *term;
        }
        Self(bytes.into_boxed_slice())
    }

    /// The bytes it takes.
    pub(super) fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut bytes = self.0.iter();
        let mut term = 0;
        std::iter::from_fn(move || {
            term += read_varint(&mut bytes)?;
            Some((term, read_varint(&mut bytes)?))
        })
    }
}

fn push_varint(bytes: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        bytes.push(value as u8 | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn read_varint(bytes: &mut std::slice::Iter<'_, u8>) -> Option<u32> {
    let mut value = 0;
    let mut shift = 0;
    loop {
        let byte = *bytes.next()?;
        value |= u32::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn packed_terms_read_back_as_they_were(
            pairs in proptest::collection::btree_map(any::<u32>(), 1..u32::MAX, 0..200)
        ) {
            let pairs: Vec<(u32, u32)> = pairs.into_iter().collect();
            prop_assert_eq!(Packed::new(&pairs).iter().collect::<Vec<_>>(), pairs);
        }
    }
}
