//! Compact building blocks of a customer's state: parts most customers never use cost one
//! pointer, and shared text costs one word.
//!
//! - [`Text`]: interned text behind a thin pointer (one word, where `Arc<str>` takes two);
//! - [`SparseRing`]: a [`Ring`] allocated on its first push (a care customer's complaints, a
//!   customer's failed logins): one word while empty;
//! - [`SparseList`]: a capped list allocated on its first push, growing one slot at a time and
//!   freed when emptied (travel notices, cooldowns, pending absences);
//! - [`Sparse`]: a small record allocated on its first write, reading as its empty value until
//!   then (the signs of leaving).
//!
//! Each reads like the type it replaces (`iter`, `len`, slices, fields through `Deref`) and is
//! stored exactly like it (the same serde form), so the checkpoint layout does not change.
//! [`HeapSize`] tells how many bytes of heap each one owns, for the measured `state_bytes`.

use std::borrow::Borrow;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ring::Ring;

/// Bytes of heap a value owns (not its inline size), counted from capacities. Shared text
/// ([`Text`]) is not counted: it belongs to the interner.
pub trait HeapSize {
    /// Heap bytes owned through this value.
    fn heap_bytes(&self) -> usize;
}

/// Text shared among customers through the [`super::Interner`]: one copy per distinct string,
/// behind a one-word pointer. Compares, hashes and reads as its `str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<Box<str>>);

impl Text {
    /// A new, unshared copy of `text` (the interner makes the shared ones).
    pub fn new(text: &str) -> Text {
        Text(Arc::new(text.into()))
    }

    /// True if both are the same shared copy.
    pub fn ptr_eq(a: &Text, b: &Text) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// Heap bytes of one copy (the shared allocation and the characters).
    pub fn copy_bytes(&self) -> usize {
        size_of::<usize>() * 2 + size_of::<Box<str>>() + self.0.len()
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stored as its text.
impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// An unshared copy; whoever restores re-interns it.
impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Box::<str>::deserialize(d)?;
        Ok(Text(Arc::new(text)))
    }
}

/// A [`Ring`] allocated on its first push: one word while nothing was pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRing<T: Default, const N: usize>(Option<Box<Ring<T, N>>>);

impl<T: Default, const N: usize> Default for SparseRing<T, N> {
    fn default() -> Self {
        SparseRing::new()
    }
}

impl<T: Default, const N: usize> SparseRing<T, N> {
    /// An empty ring (nothing allocated).
    pub const fn new() -> Self {
        SparseRing(None)
    }

    /// Adds an item, forgetting the oldest if full.
    pub fn push(&mut self, item: T) {
        self.0.get_or_insert_with(Default::default).push(item);
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |r| r.len())
    }

    /// True when nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items from oldest to newest (in push order).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.0.iter().flat_map(|r| r.iter())
    }

    /// Items from newest to oldest.
    pub fn iter_newest_first(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().rev()
    }

    /// Mutable access to the held items, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.0.iter_mut().flat_map(|r| r.iter_mut())
    }
}

impl<T: Default, const N: usize> HeapSize for SparseRing<T, N> {
    fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |_| size_of::<Ring<T, N>>())
    }
}

/// Stored as the ring is (its items, oldest first).
impl<T: Default + Serialize, const N: usize> Serialize for SparseRing<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(ring) => ring.serialize(serializer),
            None => serializer.serialize_seq(Some(0))?.end(),
        }
    }
}

/// Allocated only when the stored ring has items.
impl<'de, T: Default + Deserialize<'de>, const N: usize> Deserialize<'de> for SparseRing<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ring = Ring::<T, N>::deserialize(d)?;
        Ok(SparseRing(if ring.is_empty() { None } else { Some(Box::new(ring)) }))
    }
}

/// A list allocated on its first push, growing one slot at a time, freed when emptied: one
/// word while empty. Reads as a slice; the caller caps its length.
#[derive(Debug, Clone, PartialEq)]
// The box is the point: one word inline where a `Vec` takes three, for lists most customers
// never fill.
#[allow(clippy::box_collection)]
pub struct SparseList<T>(Option<Box<Vec<T>>>);

impl<T> Default for SparseList<T> {
    fn default() -> Self {
        SparseList(None)
    }
}

impl<T> SparseList<T> {
    /// Appends an item (one more slot, never spare ones).
    pub fn push(&mut self, item: T) {
        let items = self.0.get_or_insert_with(Default::default);
        if items.len() == items.capacity() {
            items.reserve_exact(1);
        }
        items.push(item);
    }

    /// Keeps the items `keep` accepts, in order; frees the list when none is left.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        if let Some(items) = &mut self.0 {
            items.retain(keep);
            if items.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Removes and returns the item at `index` (panics if out of bounds, as `Vec::remove`).
    pub fn remove(&mut self, index: usize) -> T {
        let items = self.0.as_mut().expect("remove from an empty list");
        let item = items.remove(index);
        if items.is_empty() {
            self.0 = None;
        }
        item
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl<T> Deref for SparseList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<T> DerefMut for SparseList<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.0 {
            Some(items) => items.as_mut_slice(),
            None => &mut [],
        }
    }
}

impl<T> HeapSize for SparseList<T> {
    fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |items| size_of::<Vec<T>>() + items.capacity() * size_of::<T>())
    }
}

/// Stored as a `Vec` is.
impl<T: Serialize> Serialize for SparseList<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Allocated only when the stored list has items.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for SparseList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        Ok(SparseList(if items.is_empty() { None } else { Some(Box::new(items)) }))
    }
}

/// A record most customers never need: what it reads as while absent, and when it is empty.
pub trait SparsePart: Default + 'static {
    /// The value of an absent part.
    fn empty() -> &'static Self;
    /// True if the part holds nothing (and so need not be allocated).
    fn is_empty(&self) -> bool;
}

/// A record allocated on its first write ([`Sparse::get_mut`]); reads as
/// [`SparsePart::empty`] until then. One word while absent.
#[derive(Debug, Clone, Default)]
pub struct Sparse<T: SparsePart>(Option<Box<T>>);

impl<T: SparsePart> Sparse<T> {
    /// The part, allocated now if it was absent.
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }

    /// True if the part is allocated.
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: SparsePart> Deref for Sparse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(part) => part,
            None => T::empty(),
        }
    }
}

impl<T: SparsePart + HeapSize> HeapSize for Sparse<T> {
    fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |part| size_of::<T>() + part.heap_bytes())
    }
}

/// Stored as the part is (its empty value while absent).
impl<T: SparsePart + Serialize> Serialize for Sparse<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

/// Allocated only when the stored part holds something.
impl<'de, T: SparsePart + Deserialize<'de>> Deserialize<'de> for Sparse<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let part = T::deserialize(d)?;
        Ok(Sparse(if part.is_empty() { None } else { Some(Box::new(part)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_ring_allocates_on_first_push_and_stores_like_a_ring() {
        let mut sparse: SparseRing<u32, 3> = SparseRing::new();
        let mut ring: Ring<u32, 3> = Ring::default();
        assert!(sparse.is_empty() && sparse.heap_bytes() == 0);
        assert_eq!(postcard::to_allocvec(&sparse).unwrap(), postcard::to_allocvec(&ring).unwrap());
        for i in 1..=5 {
            sparse.push(i);
            ring.push(i);
        }
        assert_eq!(sparse.iter().collect::<Vec<_>>(), ring.iter().collect::<Vec<_>>());
        assert_eq!(sparse.iter_newest_first().copied().collect::<Vec<_>>(), vec![5, 4, 3]);
        let bytes = postcard::to_allocvec(&sparse).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&ring).unwrap());
        let back: SparseRing<u32, 3> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.iter().collect::<Vec<_>>(), sparse.iter().collect::<Vec<_>>());
        let empty: SparseRing<u32, 3> = postcard::from_bytes(&[0]).unwrap();
        assert_eq!(empty.heap_bytes(), 0, "an empty stored ring is not allocated");
        assert_eq!(size_of::<SparseRing<u64, 16>>(), size_of::<usize>());
    }

    #[test]
    fn a_sparse_list_grows_one_slot_at_a_time_and_frees_when_emptied() {
        let mut list: SparseList<u64> = SparseList::default();
        assert!(list.is_empty() && list.heap_bytes() == 0);
        list.push(1);
        list.push(2);
        assert_eq!(&*list, &[1, 2]);
        assert_eq!(list.heap_bytes(), size_of::<Vec<u64>>() + 2 * 8);
        assert_eq!(postcard::to_allocvec(&list).unwrap(), postcard::to_allocvec(&vec![1u64, 2]).unwrap());
        list[0] = 7;
        assert!(list.contains(&7));
        assert_eq!(list.remove(0), 7);
        list.retain(|&x| x != 2);
        assert!(list.is_empty() && list.heap_bytes() == 0, "emptied: freed");
    }

    #[test]
    fn text_reads_hashes_and_stores_as_its_str() {
        let text = Text::new("Paris");
        assert_eq!(&*text, "Paris");
        assert_eq!(text.to_string(), "Paris");
        assert_eq!(size_of::<Option<Text>>(), size_of::<usize>());
        assert_eq!(postcard::to_allocvec(&text).unwrap(), postcard::to_allocvec("Paris").unwrap());
        let map: std::collections::HashMap<Text, ()> = [(text.clone(), ())].into();
        assert!(map.contains_key("Paris"));
    }
}
