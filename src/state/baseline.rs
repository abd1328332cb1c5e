//! A customer's own normal: the spending baseline and the activity baseline.
//!
//! "Unusual" is relative to the customer's own history, never to a global threshold: a big
//! spender's big purchase and a quiet customer's quiet week are normal. Both baselines are small
//! and fixed-size so that a million customers fit in memory.

use serde::{Deserialize, Serialize};

use crate::time::{Timestamp, DAY};

use super::ring::Ring;

/// How many recent approved card amounts the spending baseline keeps.
pub const SPEND_SAMPLES: usize = 24;

/// Recent approved card amounts in euros; robust statistics (median, MAD, quantiles) over them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpendBaseline {
    amounts: Ring<f32, SPEND_SAMPLES>,
    /// Approved card payments ever seen (saturating), to tell a new customer from a known one.
    pub count: u32,
}

/// Robust summary of a spending baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendStats {
    pub samples: usize,
    pub median: f64,
    /// Median absolute deviation, scaled by 1.4826 to estimate a standard deviation.
    pub mad: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl SpendBaseline {
    /// Records an approved amount in euros.
    pub fn record(&mut self, amount_eur: f64) {
        self.amounts.push(amount_eur as f32);
        self.count = self.count.saturating_add(1);
    }

    /// Median, scaled MAD and p90 of the recent amounts; `None` without samples.
    pub fn stats(&self) -> Option<SpendStats> {
        let n = self.amounts.len();
        if n == 0 {
            return None;
        }
        let mut buf = [0f32; SPEND_SAMPLES];
        for (slot, v) in buf.iter_mut().zip(self.amounts.iter()) {
            *slot = *v;
        }
        let values = &mut buf[..n];
        values.sort_unstable_by(f32::total_cmp);
        let median = quantile_sorted(values, 0.5);
        let p90 = quantile_sorted(values, 0.9);
        for v in values.iter_mut() {
            *v = (*v - median as f32).abs();
        }
        values.sort_unstable_by(f32::total_cmp);
        let mad = quantile_sorted(values, 0.5) * 1.4826;
        Some(SpendStats { samples: n, median, mad, p90 })
    }
}

/// Linear-interpolated quantile of sorted values.
fn quantile_sorted(sorted: &[f32], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    f64::from(sorted[lo]) * (1.0 - frac) + f64::from(sorted[hi]) * frac
}

/// Weeks of activity history the activity baseline keeps.
pub const ACTIVITY_WEEKS: usize = 12;
const WEEK: i64 = 7 * DAY;

/// Events per week over the last twelve weeks, and the first and last activity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActivityBaseline {
    /// Count per week, indexed by `week % ACTIVITY_WEEKS`.
    weeks: [u16; ACTIVITY_WEEKS],
    /// The newest week counted (weeks since the epoch); older slots are cleared as it advances.
    latest_week: i32,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl ActivityBaseline {
    /// Counts one customer-initiated event at `ts`. Events older than the window only move
    /// `first`; a late event inside the window lands in its own week.
    pub fn record(&mut self, ts: Timestamp) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        let week = week_of(ts);
        if self.weeks.iter().all(|&c| c == 0) {
            self.latest_week = week;
        }
        if week > self.latest_week {
            let gap = (week - self.latest_week) as usize;
            for w in 1..=gap.min(ACTIVITY_WEEKS) {
                self.weeks[slot(self.latest_week + w as i32)] = 0;
            }
            self.latest_week = week;
        }
        if self.latest_week - week < ACTIVITY_WEEKS as i32 {
            let s = slot(week);
            self.weeks[s] = self.weeks[s].saturating_add(1);
        }
    }

    /// Events per week for the last weeks up to the newest one counted, oldest first:
    /// (week start, count), for a person's timeline.
    pub fn weekly(&self) -> Vec<(Timestamp, u32)> {
        if self.last.is_none() {
            return Vec::new();
        }
        (0..ACTIVITY_WEEKS as i32)
            .rev()
            .map(|back| {
                let week = self.latest_week - back;
                (Timestamp(i64::from(week) * 7 * crate::time::DAY), self.count(week))
            })
            .collect()
    }

    /// Count in a given week, zero if it is outside the window.
    fn count(&self, week: i32) -> u32 {
        if week > self.latest_week || self.latest_week - week >= ACTIVITY_WEEKS as i32 {
            return 0;
        }
        u32::from(self.weeks[slot(week)])
    }

    /// The customer's typical events per week as of `now`: the mean over the completed weeks
    /// from three to twelve weeks back that the customer existed in. `None` until at least
    /// `min_weeks` such weeks exist.
    pub fn typical_weekly(&self, now: Timestamp, min_weeks: u32) -> Option<f64> {
        let first_week = week_of(self.first?);
        let now_week = week_of(now);
        let (mut weeks, mut total) = (0u32, 0u32);
        for week in (3..ACTIVITY_WEEKS as i32).map(|back| now_week - back).filter(|&w| w >= first_week) {
            weeks += 1;
            total += self.count(week);
        }
        (weeks >= min_weeks.max(1)).then(|| f64::from(total) / f64::from(weeks))
    }

    /// Mean events per week over the last two completed weeks before `now`.
    pub fn recent_weekly(&self, now: Timestamp) -> f64 {
        let now_week = week_of(now);
        f64::from(self.count(now_week - 1) + self.count(now_week - 2)) / 2.0
    }
}

fn week_of(ts: Timestamp) -> i32 {
    ts.0.div_euclid(WEEK) as i32
}

fn slot(week: i32) -> usize {
    week.rem_euclid(ACTIVITY_WEEKS as i32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_stats_ignore_one_outlier() {
        let mut b = SpendBaseline::default();
        for v in [10.0, 12.0, 11.0, 9.0, 10.0, 5000.0, 10.5] {
            b.record(v);
        }
        let s = b.stats().unwrap();
        assert!((s.median - 10.5).abs() < 1e-6, "{s:?}");
        assert!(s.mad < 3.0, "{s:?}");
        assert_eq!(b.count, 7);
    }

    #[test]
    fn no_samples_no_stats() {
        assert!(SpendBaseline::default().stats().is_none());
    }

    #[test]
    fn keeps_only_recent_amounts() {
        let mut b = SpendBaseline::default();
        for _ in 0..SPEND_SAMPLES {
            b.record(1000.0);
        }
        for _ in 0..SPEND_SAMPLES {
            b.record(10.0);
        }
        assert_eq!(b.stats().unwrap().median, 10.0);
    }

    #[test]
    fn weekly_activity() {
        let mut a = ActivityBaseline::default();
        let start = Timestamp(100 * WEEK);
        // 5 events a week for 10 weeks.
        for w in 0..10 {
            for d in 0..5 {
                a.record(start.plus(w * WEEK + d * DAY));
            }
        }
        let now = start.plus(10 * WEEK);
        assert_eq!(a.typical_weekly(now, 4), Some(5.0));
        assert_eq!(a.recent_weekly(now), 5.0);
        // Four silent weeks later, the recent rate is zero while the typical is still known.
        let later = now.plus(4 * WEEK);
        assert_eq!(a.recent_weekly(later), 0.0);
        assert!(a.typical_weekly(later, 4).unwrap() > 2.0);
    }

    #[test]
    fn late_events_land_in_their_week() {
        let mut a = ActivityBaseline::default();
        let t = Timestamp(200 * WEEK);
        a.record(t.plus(3 * WEEK));
        a.record(t.plus(WEEK)); // late, but inside the window
        assert_eq!(a.count(201), 1);
        assert_eq!(a.count(203), 1);
        assert_eq!(a.first, Some(t.plus(WEEK)));
        assert_eq!(a.last, Some(t.plus(3 * WEEK)));
    }

    #[test]
    fn new_customer_has_no_typical_rate() {
        let mut a = ActivityBaseline::default();
        let t = Timestamp(300 * WEEK);
        a.record(t);
        assert_eq!(a.typical_weekly(t.plus(WEEK), 4), None);
    }
}
