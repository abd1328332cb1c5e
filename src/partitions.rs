//! Which input partitions this instance owns, how far into each it has applied events, and which
//! customers changed since the partition's last checkpoint. Pure bookkeeping: no I/O.
//!
//! A customer's state belongs to the partition *number* its events arrive on (events are keyed
//! by customer id). With several input topics the topics must be co-partitioned (same partition
//! count, same key → same partition number), as Kafka Streams requires for joins.
//!
//! The skip rule makes restore exact: a restored partition knows the next offset its checkpoint
//! covers, per topic; any message below it was already applied to the restored state and is
//! skipped, whatever Kafka's committed offset says (it may lag the checkpoint by one commit
//! interval). A message from a partition not owned (fetched before a revoke) is dropped: the new
//! owner reads it from the checkpoint's offset.
//!
//! Each ownership has a tag, new every time a partition is owned. The batch loop tags each
//! message with its partition's tag when it is received; a message whose tag is no longer
//! current was fetched under an earlier ownership (revoked, then assigned again while the batch
//! was being filled) and is dropped too: it is read again from the restored offsets.

use std::collections::{BTreeMap, HashMap, HashSet};

/// What to do with a fetched message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// New to this partition's state: process it.
    Apply,
    /// Already in the restored state (offset below the checkpoint): skip it.
    AlreadyApplied,
    /// The partition is not (or no longer) ours: drop it.
    NotOwned,
}

/// Next offsets to read, per input topic, for one partition number.
pub type Offsets = BTreeMap<String, i64>;

/// One owned partition number.
#[derive(Debug, Default, Clone)]
pub struct Owned {
    /// This ownership's tag (see the module doc).
    pub tag: u64,
    /// The store's fencing epoch under which this instance writes the partition's checkpoints.
    pub epoch: i64,
    /// Next offset to apply, per topic.
    pub next: Offsets,
    /// Next offsets as of the last durable checkpoint.
    pub checkpointed: Offsets,
    /// Customers whose state changed since the last checkpoint.
    pub dirty: HashSet<Box<str>>,
}

impl Owned {
    /// True if something was applied since the last checkpoint.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty() || self.next != self.checkpointed
    }
}

/// The partitions this instance owns.
#[derive(Debug, Default)]
pub struct Partitions {
    owned: HashMap<i32, Owned>,
    last_tag: u64,
}

impl Partitions {
    /// Takes ownership of a partition whose state was restored up to `next` (empty: from the
    /// start, or wherever the consumer group's offset is), claimed under `epoch`.
    pub fn own(&mut self, partition: i32, next: Offsets, epoch: i64) {
        self.last_tag += 1;
        let owned =
            Owned { tag: self.last_tag, epoch, checkpointed: next.clone(), next, dirty: HashSet::new() };
        self.owned.insert(partition, owned);
    }

    /// The current ownership tag of a partition (0: not owned).
    pub fn tag(&self, partition: i32) -> u64 {
        self.owned.get(&partition).map_or(0, |o| o.tag)
    }

    /// Lets go of a partition, returning what was pending for it.
    pub fn release(&mut self, partition: i32) -> Option<Owned> {
        self.owned.remove(&partition)
    }

    /// True if the partition is owned.
    pub fn owns(&self, partition: i32) -> bool {
        self.owned.contains_key(&partition)
    }

    /// Owned partition numbers, ascending.
    pub fn owned(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.owned.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Whether to process a message at `offset` of `topic`/`partition`, received while the
    /// partition's tag was `tag`.
    pub fn admit(&self, topic: &str, partition: i32, offset: i64, tag: u64) -> Admit {
        match self.owned.get(&partition) {
            None => Admit::NotOwned,
            Some(o) if o.tag != tag => Admit::NotOwned,
            Some(o) => match o.next.get(topic) {
                Some(&next) if offset < next => Admit::AlreadyApplied,
                _ => Admit::Apply,
            },
        }
    }

    /// Records that the message at `offset` was applied (or dead-lettered).
    pub fn applied(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(o) = self.owned.get_mut(&partition) {
            match o.next.get_mut(topic) {
                Some(next) => *next = (*next).max(offset + 1),
                None => {
                    o.next.insert(topic.to_string(), offset + 1);
                }
            }
        }
    }

    /// Records that a customer of `partition` changed.
    pub fn touched(&mut self, partition: i32, customer_id: &str) {
        if let Some(o) = self.owned.get_mut(&partition) {
            if !o.dirty.contains(customer_id) {
                o.dirty.insert(customer_id.into());
            }
        }
    }

    /// The partition's pending changes, for a checkpoint: its dirty customers (taken), the
    /// offsets they bring it to, and the epoch to write under. `None` if nothing changed.
    pub fn take_pending(&mut self, partition: i32) -> Option<(Vec<Box<str>>, Offsets, i64)> {
        let o = self.owned.get_mut(&partition)?;
        if !o.has_changes() {
            return None;
        }
        Some((o.dirty.drain().collect(), o.next.clone(), o.epoch))
    }

    /// Records a durable checkpoint of `partition` at `offsets`.
    pub fn checkpointed(&mut self, partition: i32, offsets: Offsets) {
        if let Some(o) = self.owned.get_mut(&partition) {
            o.checkpointed = offsets;
        }
    }

    /// Puts customers back as dirty after a failed checkpoint.
    pub fn untake(&mut self, partition: i32, customers: Vec<Box<str>>) {
        if let Some(o) = self.owned.get_mut(&partition) {
            o.dirty.extend(customers);
        }
    }

    /// Next offsets per topic of every owned partition (to store in Kafka).
    pub fn next_offsets(&self) -> Vec<(String, i32, i64)> {
        let mut out: Vec<_> = self
            .owned
            .iter()
            .flat_map(|(&p, o)| o.next.iter().map(move |(t, &n)| (t.clone(), p, n)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(&str, i64)]) -> Offsets {
        pairs.iter().map(|(t, o)| (t.to_string(), *o)).collect()
    }

    #[test]
    fn messages_below_the_checkpoint_are_skipped_and_others_applied() {
        let mut p = Partitions::default();
        p.own(3, offsets(&[("events", 100)]), 1);
        let tag = p.tag(3);
        assert_eq!(p.admit("events", 3, 99, tag), Admit::AlreadyApplied);
        assert_eq!(p.admit("events", 3, 100, tag), Admit::Apply);
        assert_eq!(p.admit("other", 3, 0, tag), Admit::Apply, "a topic without a checkpoint starts fresh");
        assert_eq!(p.admit("events", 4, 100, p.tag(4)), Admit::NotOwned);
        p.applied("events", 3, 100);
        assert_eq!(p.admit("events", 3, 100, tag), Admit::AlreadyApplied, "a redelivery is skipped");
    }

    #[test]
    fn a_checkpoint_takes_the_dirty_customers_and_records_the_offsets() {
        let mut p = Partitions::default();
        p.own(0, Offsets::new(), 1);
        assert!(p.take_pending(0).is_none(), "nothing applied, nothing to checkpoint");
        p.applied("events", 0, 7);
        p.touched(0, "c1");
        p.touched(0, "c1");
        p.touched(1, "not-ours");
        let (dirty, next, _) = p.take_pending(0).unwrap();
        assert_eq!(dirty, vec![Box::<str>::from("c1")]);
        assert_eq!(next, offsets(&[("events", 8)]));
        p.checkpointed(0, next);
        assert!(p.take_pending(0).is_none());
        assert_eq!(p.next_offsets(), vec![("events".to_string(), 0, 8)]);
    }

    #[test]
    fn a_failed_checkpoint_keeps_its_customers_dirty() {
        let mut p = Partitions::default();
        p.own(0, Offsets::new(), 1);
        p.applied("events", 0, 0);
        p.touched(0, "c1");
        let (dirty, ..) = p.take_pending(0).unwrap();
        p.untake(0, dirty);
        let (dirty, ..) = p.take_pending(0).unwrap();
        assert_eq!(dirty.len(), 1);
    }

    #[test]
    fn released_partitions_are_no_longer_owned() {
        let mut p = Partitions::default();
        p.own(2, Offsets::new(), 1);
        p.applied("events", 2, 5);
        let released = p.release(2).unwrap();
        assert_eq!(released.next, offsets(&[("events", 6)]));
        assert_eq!(p.admit("events", 2, 6, released.tag), Admit::NotOwned);
        assert!(p.owned().is_empty());
    }

    #[test]
    fn messages_received_under_an_earlier_ownership_are_dropped() {
        let mut p = Partitions::default();
        p.own(1, offsets(&[("events", 10)]), 1);
        let before = p.tag(1);
        // Fetched 10..12 under the first ownership; then revoked, and assigned again with the
        // store's checkpoint still at 5 (the revoke's checkpoint failed).
        p.release(1);
        p.own(1, offsets(&[("events", 5)]), 2);
        assert_eq!(p.admit("events", 1, 10, before), Admit::NotOwned, "stale: would skip 5..9");
        assert_eq!(p.admit("events", 1, 5, p.tag(1)), Admit::Apply);
        p.applied("events", 1, 5);
        assert_eq!(p.take_pending(1).map(|(.., epoch)| epoch), Some(2), "written under the new epoch");
    }
}
