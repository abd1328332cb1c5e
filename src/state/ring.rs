//! A fixed-capacity ring of recent items: the building block of bounded per-customer memory.
//!
//! Pushing into a full ring forgets the oldest item. Capacity is a const generic so the ring
//! lives inline in the customer's state, with no heap allocation.

/// The last `N` items pushed, oldest forgotten first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ring<T: Default, const N: usize> {
    items: [T; N],
    /// Index the next push writes to.
    next: u8,
    len: u8,
}

impl<T: Default, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        assert!(N > 0 && N <= u8::MAX as usize, "ring capacity must fit in a u8");
        Ring { items: std::array::from_fn(|_| T::default()), next: 0, len: 0 }
    }
}

impl<T: Default, const N: usize> Ring<T, N> {
    /// Adds an item, forgetting the oldest if full.
    pub fn push(&mut self, item: T) {
        self.items[self.next as usize] = item;
        self.next = ((self.next as usize + 1) % N) as u8;
        self.len = (self.len as usize + 1).min(N) as u8;
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items from oldest to newest (in push order).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let start = (self.next as usize + N - self.len as usize) % N;
        (0..self.len as usize).map(move |i| &self.items[(start + i) % N])
    }

    /// Items from newest to oldest.
    pub fn iter_newest_first(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().rev()
    }

    /// Mutable access to the held items, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        // Until the ring wraps, items sit at 0..len; after, every slot is an item.
        self.items[..self.len as usize].iter_mut()
    }
}

/// A ring is stored as the sequence of its items, oldest first: order and length are kept, the
/// slots it has not filled are not written.
impl<T: Default + serde::Serialize, const N: usize> serde::Serialize for Ring<T, N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// The reverse of `Serialize`: the items pushed in order; more than `N` items are refused.
impl<'de, T: Default + serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for Ring<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(std::marker::PhantomData<T>);

        impl<'de, T: Default + serde::Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Items<T, N> {
            type Value = Ring<T, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a sequence of at most {N} items")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut ring = Ring::default();
                while let Some(item) = seq.next_element()? {
                    if ring.len() == N {
                        return Err(serde::de::Error::invalid_length(N + 1, &self));
                    }
                    ring.push(item);
                }
                Ok(ring)
            }
        }

        d.deserialize_seq(Items::<T, N>(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_in_order() {
        let mut r: Ring<u32, 3> = Ring::default();
        assert!(r.is_empty());
        for i in 1..=5 {
            r.push(i);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(r.iter_newest_first().copied().collect::<Vec<_>>(), vec![5, 4, 3]);
    }

    #[test]
    fn partially_filled() {
        let mut r: Ring<u32, 4> = Ring::default();
        r.push(7);
        r.push(8);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![7, 8]);
    }
}
