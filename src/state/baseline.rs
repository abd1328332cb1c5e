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

    /// True if `amount_eur` is at least `factor` times the median of the recent amounts (or
    /// there are none): half or more of them are below `amount_eur / factor`. One pass, no sort
    /// (it runs on every large payment).
    pub fn is_above_median(&self, amount_eur: f64, factor: f64) -> bool {
        let threshold = (amount_eur / factor) as f32;
        let below = self.amounts.iter().filter(|&&a| a < threshold).count();
        2 * below >= self.amounts.len()
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

/// Periods the long spending memory keeps ([`SpendPeaks`]).
pub const PEAK_BUCKETS: usize = 8;
/// Days per period of the long spending memory: 8 × 14 days is about four months.
pub const PEAK_BUCKET_DAYS: i64 = 14;

/// The customer's longer normal: the largest approved card payment of each of the last
/// [`PEAK_BUCKETS`] fortnights, in whole euros (saturating at 65,535). The recent amounts of
/// [`SpendBaseline`] cover a week or two of a daily spender; these cover months in 20 bytes, so a
/// large purchase the customer makes every few weeks stays part of their normal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendPeaks {
    /// Largest amount per fortnight, indexed by `fortnight % PEAK_BUCKETS`.
    maxima: [u16; PEAK_BUCKETS],
    /// The newest fortnight recorded (fortnights since the epoch).
    latest: i32,
}

impl SpendPeaks {
    /// Records an approved amount at `at`; a late one lands in its own fortnight while that is
    /// still remembered.
    pub fn record(&mut self, at: Timestamp, amount_eur: f64) {
        let bucket = fortnight_of(at);
        if self.maxima.iter().all(|&m| m == 0) {
            self.latest = bucket;
        }
        if bucket > self.latest {
            let gap = (bucket - self.latest) as usize;
            for b in 1..=gap.min(PEAK_BUCKETS) {
                self.maxima[peak_slot(self.latest + b as i32)] = 0;
            }
            self.latest = bucket;
        }
        if self.latest - bucket < PEAK_BUCKETS as i32 {
            let euros = amount_eur.round().clamp(0.0, f64::from(u16::MAX)) as u16;
            let slot = &mut self.maxima[peak_slot(bucket)];
            *slot = (*slot).max(euros);
        }
    }

    /// The fortnightly maxima still remembered at `now` (older than [`PEAK_BUCKETS`] fortnights
    /// before `now` are forgotten), newest first.
    pub fn maxima(&self, now: Timestamp) -> impl Iterator<Item = f64> + '_ {
        let now = fortnight_of(now).max(self.latest);
        (0..PEAK_BUCKETS as i32)
            .map(move |back| self.latest - back)
            .filter(move |&b| now - b < PEAK_BUCKETS as i32)
            .map(|b| f64::from(self.maxima[peak_slot(b)]))
            .filter(|&m| m > 0.0)
    }

    /// True if `amount_eur` is no larger than the customer's large payments of the last four
    /// months: at least `min_periods` remembered fortnights had a payment of at least
    /// `amount_eur / headroom`. A first-ever large payment is never usual.
    pub fn is_usual(&self, amount_eur: f64, now: Timestamp, min_periods: usize, headroom: f64) -> bool {
        min_periods > 0 && self.maxima(now).filter(|m| m * headroom >= amount_eur).count() >= min_periods
    }

    /// Forgets every fortnight whose largest payment was at least `amount_eur` (an amount an
    /// agent confirmed as fraud is not the customer's normal; the fortnight's smaller payments
    /// go with it, a small loss of memory).
    pub fn forget_at_least(&mut self, amount_eur: f64) {
        for m in &mut self.maxima {
            if f64::from(*m) >= amount_eur.floor() {
                *m = 0;
            }
        }
    }
}

fn fortnight_of(ts: Timestamp) -> i32 {
    ts.0.div_euclid(PEAK_BUCKET_DAYS * DAY) as i32
}

fn peak_slot(bucket: i32) -> usize {
    bucket.rem_euclid(PEAK_BUCKETS as i32) as usize
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
    fn above_median_agrees_with_the_median() {
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..500 {
            let mut b = SpendBaseline::default();
            for _ in 0..rng.usize(1..40) {
                b.record(f64::from(rng.u32(1..200)));
            }
            let median = b.stats().unwrap().median;
            let amount = f64::from(rng.u32(1..1000));
            if amount > 4.0 * median * 1.01 {
                assert!(b.is_above_median(amount, 4.0), "{amount} vs median {median}");
            }
            if amount < 4.0 * median * 0.99 && b.amounts.len() % 2 == 1 {
                assert!(!b.is_above_median(amount, 4.0), "{amount} vs median {median}");
            }
        }
        assert!(SpendBaseline::default().is_above_median(60.0, 4.0), "no history: large");
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
    fn peaks_remember_months_and_tell_a_pattern_from_a_first() {
        let start = Timestamp(1_780_000_000_000);
        let mut p = SpendPeaks::default();
        for i in 0..6 {
            p.record(start.plus(i * 15 * DAY), [600.0, 900.0, 750.0][i as usize % 3]);
            p.record(start.plus(i * 15 * DAY + DAY), 25.0);
        }
        let now = start.plus(90 * DAY);
        assert!(p.is_usual(880.0, now, 1, 1.1), "no larger than the earlier large ones");
        assert!(p.is_usual(800.0, now, 2, 1.1), "twice");
        assert!(!p.is_usual(1500.0, now, 1, 1.1), "far above every one");
        let mut first = SpendPeaks::default();
        first.record(start, 30.0);
        assert!(!first.is_usual(850.0, start.plus(40 * DAY), 1, 1.1), "a first-ever large payment");
        first.record(start.plus(20 * DAY), 900.0);
        assert!(first.is_usual(850.0, start.plus(40 * DAY), 1, 1.1));
        assert!(!first.is_usual(850.0, start.plus(40 * DAY), 2, 1.1), "once is not twice");
        // Four months of nothing large later, the pattern is forgotten.
        assert!(!p.is_usual(880.0, now.plus(130 * DAY), 1, 1.1));
        // An amount confirmed as fraud is forgotten with its fortnight.
        first.forget_at_least(900.0);
        assert!(!first.is_usual(850.0, start.plus(40 * DAY), 1, 1.1));
    }

    #[test]
    fn late_peaks_land_in_their_fortnight_and_amounts_saturate() {
        let start = Timestamp(1_780_000_000_000);
        let mut p = SpendPeaks::default();
        p.record(start.plus(60 * DAY), 100.0);
        p.record(start, 500.0); // late, still remembered
        p.record(start.plus(200 * DAY), 1e9);
        assert_eq!(p.maxima(start.plus(200 * DAY)).collect::<Vec<_>>(), vec![65_535.0]);
        let mut q = SpendPeaks::default();
        q.record(start.plus(60 * DAY), 100.0);
        q.record(start, 500.0);
        assert_eq!(q.maxima(start.plus(60 * DAY)).collect::<Vec<_>>(), vec![100.0, 500.0]);
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
