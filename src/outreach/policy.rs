//! Whether an e-mail may go now: consent, quiet hours in the customer's own time zone, the
//! contact-fatigue cap across all rules and both queues, and a recent answer to the same
//! question. Pure: the sender gathers the facts (and the wall-clock time) and records the
//! decision, with its reason, on the task.
//!
//! Decisions (documented in `docs/outreach.md`):
//! - a fraud confirmation is a service message: it ignores marketing consent and the fatigue
//!   cap (it still counts towards the cap), and a rule may let it go at any hour;
//! - a care e-mail needs `consent.email` and no unsubscribe, and respects the cap;
//! - quiet hours defer (never drop) until they end, local time;
//! - an answer to the same template within `answer_quiet_days` suppresses asking again.

use jiff::tz::TimeZone;

use crate::time::{Timestamp, DAY};
use crate::vocab::Queue;

/// A local time of day: (hour, minute).
pub type TimeOfDay = (u8, u8);

/// The policy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Quiet hours, local time: from (hour, minute) until (hour, minute), wrapping midnight.
    pub quiet: (TimeOfDay, TimeOfDay),
    /// For customers whose profile has no (or an unknown) time zone.
    pub default_timezone: String,
    pub max_per_day: i64,
    pub max_per_week: i64,
    pub answer_quiet_days: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            quiet: ((21, 0), (8, 0)),
            default_timezone: "UTC".into(),
            max_per_day: 2,
            max_per_week: 5,
            answer_quiet_days: 7,
        }
    }
}

impl Policy {
    /// The policy of the configuration (validated before: a bad value falls back to the default).
    pub fn from_config(c: &crate::config::OutreachConfig) -> Policy {
        let d = Policy::default();
        Policy {
            quiet: parse_quiet(&c.quiet_hours).unwrap_or(d.quiet),
            default_timezone: c.default_timezone.clone(),
            max_per_day: c.max_per_day,
            max_per_week: c.max_per_week,
            answer_quiet_days: c.answer_quiet_days,
        }
    }
}

/// Parses `HH:MM-HH:MM`.
pub fn parse_quiet(text: &str) -> Result<(TimeOfDay, TimeOfDay), String> {
    let hm = |s: &str| -> Option<TimeOfDay> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some((h, m))
    };
    let (a, b) = text.split_once('-').ok_or("expected HH:MM-HH:MM")?;
    Ok((hm(a).ok_or("bad start time")?, hm(b).ok_or("bad end time")?))
}

/// What the sender knows about one e-mail when it looks at it.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: Timestamp,
    pub queue: Queue,
    pub any_hour: bool,
    pub task_resolved: bool,
    pub email: Option<&'a str>,
    pub consent_email: bool,
    pub opted_out: bool,
    pub timezone: Option<&'a str>,
    pub sent_last_day: i64,
    pub sent_last_week: i64,
    pub answered_recently: bool,
    /// Until when a fraud contact with the customer is in progress (an e-mail sent in the last
    /// day, or an agent holding a fraud task), if one is: care e-mails wait for it.
    pub fraud_contact_until: Option<Timestamp>,
}

/// What to do with the e-mail now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Send,
    /// Not now: look again at `until`.
    Defer {
        until: Timestamp,
        reason: String,
    },
    /// Never: why (`code` is a short label for metrics: `resolved`, `no_address`, `no_consent`,
    /// `unsubscribed`, `answered`, `cap_day`, `cap_week`).
    Suppress {
        code: &'static str,
        reason: String,
    },
}

impl Policy {
    /// The decision for one e-mail.
    pub fn decide(&self, f: &Facts<'_>) -> Decision {
        let suppress = |code, reason: &str| Decision::Suppress { code, reason: reason.to_string() };
        if f.task_resolved {
            return suppress("resolved", "the task is already resolved");
        }
        if f.email.is_none_or(|e| !e.contains('@')) {
            return suppress("no_address", "no e-mail address in the customer's profile");
        }
        if f.queue == Queue::Care {
            if !f.consent_email {
                return suppress("no_consent", "no consent to e-mail (consent.email is false)");
            }
            if f.opted_out {
                return suppress("unsubscribed", "the customer unsubscribed from care e-mails");
            }
        }
        if f.answered_recently {
            return Decision::Suppress {
                code: "answered",
                reason: format!(
                    "the customer answered the same question within {} days",
                    self.answer_quiet_days
                ),
            };
        }
        if f.queue == Queue::Care {
            if f.sent_last_day >= self.max_per_day {
                return Decision::Suppress {
                    code: "cap_day",
                    reason: format!("contact cap: {} e-mails in the last 24 h", f.sent_last_day),
                };
            }
            if f.sent_last_week >= self.max_per_week {
                return Decision::Suppress {
                    code: "cap_week",
                    reason: format!("contact cap: {} e-mails in the last 7 days", f.sent_last_week),
                };
            }
        }
        if f.queue == Queue::Care {
            if let Some(until) = f.fraud_contact_until.filter(|&u| u > f.now) {
                return Decision::Defer {
                    until,
                    reason: "a fraud contact with the customer is in progress: care waits (one team a day)"
                        .to_string(),
                };
            }
        }
        if !f.any_hour {
            if let Some((until, local)) = self.quiet_until(f.now, f.timezone) {
                return Decision::Defer {
                    until,
                    reason: format!("quiet hours in the customer's time zone until {local}"),
                };
            }
        }
        Decision::Send
    }

    /// The customer's time zone (the profile's if known, else the default).
    fn zone(&self, name: Option<&str>) -> TimeZone {
        name.and_then(|n| TimeZone::get(n).ok())
            .or_else(|| TimeZone::get(&self.default_timezone).ok())
            .unwrap_or(TimeZone::UTC)
    }

    /// If `now` is within the quiet hours in the customer's zone: when they end (and that time,
    /// local, as text).
    pub fn quiet_until(&self, now: Timestamp, zone: Option<&str>) -> Option<(Timestamp, String)> {
        let ((sh, sm), (eh, em)) = self.quiet;
        let at = jiff::Timestamp::from_millisecond(now.0).ok()?.to_zoned(self.zone(zone));
        let minute = |h: u8, m: u8| u32::from(h) * 60 + u32::from(m);
        let (now_m, start, end) =
            (minute(at.hour() as u8, at.minute() as u8), minute(sh, sm), minute(eh, em));
        let quiet = if start <= end { now_m >= start && now_m < end } else { now_m >= start || now_m < end };
        if !quiet {
            return None;
        }
        let mut until =
            at.with().hour(eh as i8).minute(em as i8).second(0).subsec_nanosecond(0).build().ok()?;
        if until <= at {
            until = until.checked_add(jiff::Span::new().days(1)).ok()?;
        }
        let local = format!(
            "{:02}:{:02} {}",
            until.hour(),
            until.minute(),
            until.time_zone().iana_name().unwrap_or("UTC")
        );
        Some((Timestamp(until.timestamp().as_millisecond()), local))
    }

    /// Since when e-mails count for the daily and weekly caps.
    pub fn windows(now: Timestamp) -> (Timestamp, Timestamp) {
        (Timestamp(now.0 - DAY), Timestamp(now.0 - 7 * DAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn facts(queue: Queue) -> Facts<'static> {
        Facts {
            now: at("2026-12-01T12:00:00Z"),
            queue,
            any_hour: false,
            task_resolved: false,
            email: Some("a@example.com"),
            consent_email: true,
            opted_out: false,
            timezone: Some("Europe/Paris"),
            sent_last_day: 0,
            sent_last_week: 0,
            answered_recently: false,
            fraud_contact_until: None,
        }
    }

    /// Every suppression code is one the metrics export at zero (so a dashboard sees it).
    #[test]
    fn suppression_codes_are_the_exported_ones() {
        let p = Policy::default();
        let mut cases = Vec::new();
        let mut f = facts(Queue::Care);
        f.task_resolved = true;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.email = None;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.consent_email = false;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.opted_out = true;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.answered_recently = true;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.sent_last_day = 9;
        cases.push(f);
        let mut f = facts(Queue::Care);
        f.sent_last_week = 9;
        cases.push(f);
        let mut seen = Vec::new();
        for f in &cases {
            match p.decide(f) {
                Decision::Suppress { code, .. } => seen.push(code),
                other => panic!("{other:?}"),
            }
        }
        seen.sort_unstable();
        let mut exported = crate::metrics::EMAIL_SUPPRESSIONS.to_vec();
        exported.sort_unstable();
        assert_eq!(seen, exported);
    }

    #[test]
    fn care_waits_while_a_fraud_contact_is_in_progress() {
        let p = Policy::default();
        let mut care = facts(Queue::Care);
        care.fraud_contact_until = Some(at("2026-12-02T09:00:00Z"));
        match p.decide(&care) {
            Decision::Defer { until, reason } => {
                assert_eq!(until, at("2026-12-02T09:00:00Z"));
                assert!(reason.contains("fraud contact"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        care.fraud_contact_until = Some(at("2026-12-01T11:00:00Z"));
        assert_eq!(p.decide(&care), Decision::Send, "a fraud contact that is over does not hold it");
        let mut fraud = facts(Queue::Fraud);
        fraud.fraud_contact_until = Some(at("2026-12-02T09:00:00Z"));
        assert_eq!(p.decide(&fraud), Decision::Send, "only care waits");
        care.fraud_contact_until = Some(at("2026-12-02T09:00:00Z"));
        care.consent_email = false;
        assert!(matches!(p.decide(&care), Decision::Suppress { .. }), "suppression wins over waiting");
    }

    #[test]
    fn quiet_hours_are_the_customers_own_and_defer_until_they_end() {
        let p = Policy::default();
        let mut f = facts(Queue::Fraud);
        // 23:30 in Phnom Penh is 16:30 UTC: quiet there, not in London.
        f.now = at("2026-12-01T16:30:00Z");
        f.timezone = Some("Asia/Phnom_Penh");
        match p.decide(&f) {
            Decision::Defer { until, reason } => {
                assert_eq!(until, at("2026-12-02T01:00:00Z"), "08:00 in Phnom Penh");
                assert!(reason.contains("08:00 Asia/Phnom_Penh"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        f.timezone = Some("Europe/London");
        assert_eq!(p.decide(&f), Decision::Send);
        f.timezone = Some("Asia/Phnom_Penh");
        f.any_hour = true;
        assert_eq!(p.decide(&f), Decision::Send, "a rule may let fraud confirmations go at any hour");
        // Early morning, before the end: the same day.
        f.any_hour = false;
        f.now = at("2026-12-01T22:00:00Z"); // 05:00 next day local
        assert!(matches!(p.decide(&f), Decision::Defer { until, .. } if until == at("2026-12-02T01:00:00Z")));
        f.timezone = Some("Not/AZone");
        f.now = at("2026-12-01T12:00:00Z");
        assert_eq!(p.decide(&f), Decision::Send, "an unknown zone falls back to the default");
    }

    #[test]
    fn consent_caps_and_answers() {
        let p = Policy::default();
        let mut care = facts(Queue::Care);
        care.consent_email = false;
        assert!(matches!(p.decide(&care), Decision::Suppress { reason, .. } if reason.contains("consent")));
        let mut fraud = facts(Queue::Fraud);
        fraud.consent_email = false;
        assert_eq!(p.decide(&fraud), Decision::Send, "a fraud confirmation is a service message");
        care = facts(Queue::Care);
        care.sent_last_day = 2;
        assert!(matches!(p.decide(&care), Decision::Suppress { reason, .. } if reason.contains("24 h")));
        care.sent_last_day = 1;
        care.sent_last_week = 5;
        assert!(matches!(p.decide(&care), Decision::Suppress { reason, .. } if reason.contains("7 days")));
        fraud.sent_last_day = 9;
        assert_eq!(p.decide(&fraud), Decision::Send, "the cap never holds back a fraud confirmation");
        fraud.answered_recently = true;
        assert!(matches!(p.decide(&fraud), Decision::Suppress { reason, .. } if reason.contains("answered")));
        care = facts(Queue::Care);
        care.opted_out = true;
        assert!(
            matches!(p.decide(&care), Decision::Suppress { reason, .. } if reason.contains("unsubscribed"))
        );
        let mut none = facts(Queue::Fraud);
        none.email = None;
        assert!(matches!(p.decide(&none), Decision::Suppress { .. }));
        assert_eq!(parse_quiet("21:00-08:00"), Ok(((21, 0), (8, 0))));
        assert!(parse_quiet("25:00-08:00").is_err());
    }
}
