//! Which of a customer's events were already applied, over the whole period the state covers:
//! a producer that resends days of one customer's events must not make anything count twice.
//!
//! Each applied event leaves a 32-bit entry: the day of its own event time (8 bits, relative to
//! the index's base day) and a 24-bit fingerprint of its id (xxh3). A redelivery carries the
//! same id and the same time, so it finds its entry exactly; a *new* event is taken for a
//! duplicate only when an event of the same customer on the same day has the same 24-bit
//! fingerprint: with `n` events that day, a chance of `n / 2^24` (6e-8 per event at one event a
//! day; 1.8e-7 at three; about one wrongly dropped event a day in 5.5 million at a bank whose
//! customers average three events a day).
//!
//! The index covers [`HORIZON_DAYS`] days of event time back from the customer's newest event:
//! longer than the allowed lateness plus the longest window any built-in detector or default rule
//! counts over (complaint recurrence 60 days; churn's look-back 45; a monthly flow's cycle and
//! slack ~38). An event older than that is beyond the horizon: the engine does not apply it (it
//! could not tell a resend from a first delivery) and says so (`Processed::stale`).
//!
//! Memory: four bytes per event in the horizon, allocated in steps of 16 entries (a customer with
//! three events a day holds ~190 entries, 760 bytes; one with one event every few days, tens).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Days of event time the index covers back from the customer's newest event.
pub const HORIZON_DAYS: i64 = 62;

/// Entries are allocated this many at a time.
const STEP: usize = 16;

/// The applied events of one customer within the horizon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeenEvents {
    /// Days since the epoch that entry day 0 stands for.
    base_day: i32,
    /// The customer's newest event day (days since the epoch); entries older than
    /// `newest_day - HORIZON_DAYS` are dropped.
    newest_day: i32,
    /// `(day - base_day) << 24 | fingerprint`, sorted (so by day): a lookup is a binary search,
    /// forgetting old days cuts a prefix, and events in time order append at the end.
    entries: Vec<u32>,
}

/// What the index says of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not applied before, within the horizon: apply it.
    New,
    /// Applied before (a redelivery): drop it.
    Duplicate,
    /// Older than the horizon: whether it was applied cannot be told; not applied.
    BeyondHorizon,
}

fn fingerprint(event_id: &str) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(event_id.as_bytes()) & 0x00FF_FFFF) as u32
}

impl SeenEvents {
    /// Whether an event with this id at `at` was applied (see [`Seen`]).
    pub fn check(&self, event_id: &str, at: Timestamp) -> Seen {
        let day = at.day_number() as i32;
        if self.entries.is_empty() && self.newest_day == 0 {
            return Seen::New;
        }
        if i64::from(self.newest_day - day) > HORIZON_DAYS {
            return Seen::BeyondHorizon;
        }
        let Some(entry) = self.entry(day, event_id) else { return Seen::New };
        if self.entries.binary_search(&entry).is_ok() {
            Seen::Duplicate
        } else {
            Seen::New
        }
    }

    /// Records an applied event (call after [`Self::check`] said [`Seen::New`]).
    pub fn record(&mut self, event_id: &str, at: Timestamp) {
        let day = at.day_number() as i32;
        if self.entries.is_empty() && self.newest_day == 0 {
            self.base_day = day;
            self.newest_day = day;
        }
        if day > self.newest_day {
            self.newest_day = day;
            self.forget_old();
        }
        if day < self.base_day {
            self.rebase(day);
        }
        let entry = self.entry(day, event_id).expect("within the base's range after rebasing");
        // Events mostly come in time order: their entry goes at the end.
        if self.entries.last().is_none_or(|&last| last < entry) {
            if self.entries.len() == self.entries.capacity() {
                self.entries.reserve_exact(STEP);
            }
            self.entries.push(entry);
            return;
        }
        let at = match self.entries.binary_search(&entry) {
            Ok(_) => return, // already there (a fingerprint shared on one day: one entry is enough)
            Err(at) => at,
        };
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact(STEP);
        }
        self.entries.insert(at, entry);
    }

    /// The entry for `event_id` on `day`, if `day` is within the base's 256 days.
    fn entry(&self, day: i32, event_id: &str) -> Option<u32> {
        let offset = day - self.base_day;
        (0..256).contains(&offset).then(|| (offset as u32) << 24 | fingerprint(event_id))
    }

    /// Drops entries older than the horizon, and moves the base forward when the newest day
    /// would leave its 256-day range.
    fn forget_old(&mut self) {
        let oldest = self.newest_day - HORIZON_DAYS as i32;
        let base = self.base_day;
        let keep_from = self.entries.partition_point(|e| base + ((e >> 24) as i32) < oldest);
        self.entries.drain(..keep_from);
        if self.newest_day - self.base_day > 255 {
            self.rebase(oldest);
        }
        if self.entries.capacity() - self.entries.len() > 2 * STEP {
            self.entries.shrink_to(self.entries.len() + STEP);
        }
    }

    /// Re-expresses every entry relative to `new_base` (entries outside its range are dropped;
    /// the same shift for all keeps them sorted).
    fn rebase(&mut self, new_base: i32) {
        let old = self.base_day;
        self.entries = self
            .entries
            .iter()
            .filter_map(|&e| {
                let offset = old + (e >> 24) as i32 - new_base;
                (0..256).contains(&offset).then_some((offset as u32) << 24 | (e & 0x00FF_FFFF))
            })
            .collect();
        self.base_day = new_base;
    }

    /// Puts the entries in order (what lookups rely on), e.g. after reading stored ones.
    pub fn sort(&mut self) {
        if !self.entries.is_sorted() {
            self.entries.sort_unstable();
        }
    }

    /// Entries held (events applied within the horizon).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no event is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes owned.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;

    fn at(day: i64) -> Timestamp {
        Timestamp(1_780_000_000_000).plus(day * DAY)
    }

    #[test]
    fn a_resend_days_later_is_a_duplicate_until_the_horizon() {
        let mut s = SeenEvents::default();
        for d in 0..80 {
            for k in 0..3 {
                let id = format!("e{d}-{k}");
                assert_eq!(s.check(&id, at(d)), Seen::New);
                s.record(&id, at(d));
            }
        }
        assert_eq!(s.check("e70-1", at(70)), Seen::Duplicate, "ten days later");
        assert_eq!(s.check("e20-0", at(20)), Seen::Duplicate, "59 days back");
        assert_eq!(s.check("e10-0", at(10)), Seen::BeyondHorizon);
        assert_eq!(s.check("new", at(79)), Seen::New);
        assert_eq!(s.check("e79-0", at(78)), Seen::New, "the same id on another day is another event");
        assert!(s.len() <= 3 * (HORIZON_DAYS as usize + 1), "{}", s.len());
    }

    #[test]
    fn late_events_before_the_base_and_long_gaps_are_handled() {
        let mut s = SeenEvents::default();
        s.record("b", at(10));
        s.record("a", at(5)); // older than the first: the base moves back
        assert_eq!(s.check("a", at(5)), Seen::Duplicate);
        assert_eq!(s.check("b", at(10)), Seen::Duplicate);
        s.record("c", at(400)); // a long gap: everything before is beyond the horizon
        assert_eq!(s.check("b", at(10)), Seen::BeyondHorizon);
        assert_eq!(s.check("c", at(400)), Seen::Duplicate);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn memory_grows_in_steps_and_shrinks_when_the_horizon_moves() {
        let mut s = SeenEvents::default();
        for k in 0..100 {
            s.record(&format!("x{k}"), at(0));
        }
        assert!(s.heap_bytes() <= (100 + STEP) * 4);
        s.record("later", at(HORIZON_DAYS + 1));
        assert_eq!(s.len(), 1);
        assert!(s.heap_bytes() <= (1 + STEP) * 4, "{}", s.heap_bytes());
    }
}
