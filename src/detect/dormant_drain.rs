//! Dormant account drained: a customer silent for weeks whose first activity is money out, from
//! a device never seen before, to a bank the customer never paid, of a large share of all the
//! money the account ever received. An old account nobody watches is a mule's or a thief's
//! favourite; a quiet customer who comes back with ordinary spending, or pays a known payee, is
//! not paged.
//!
//! Read before the transfer is applied (the payee and the money received are the past's). The
//! return from silence is the customer's first event after at least `min_silence` without any
//! (`state::Dormancy::woke`, or the transfer itself when it is that first event); the money must
//! leave within `session` of that return, after a successful login from a new device in it.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::flows::{party_key, FlowKind};
use crate::time::{Span, DAY, HOUR};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Silence before the return (at least the state's 28 days of dormancy).
    pub min_silence: Span,
    /// How long after the return the money must leave.
    pub session: Span,
    /// The share of everything the account received that the transfer must reach.
    pub min_share: f64,
    /// Transfers below this many euros are not judged.
    pub min_amount_eur: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_silence: Span(28 * DAY),
            session: Span(48 * HOUR),
            min_share: 0.5,
            min_amount_eur: 200.0,
        }
    }
}

/// Facts of a dormant-drain signal.
pub const FACTS: &[(&str, Type)] = &[
    ("silent_days", Type::Num),
    ("amount_eur", Type::Num),
    ("received_eur", Type::Num),
    ("share_pct", Type::Num),
    ("payee", Type::Str),
    ("minutes_since_new_device", Type::Num),
];

/// Judges an outgoing transfer (state before it).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::Transfer(t) = &event.body else { return None };
    if !t.outgoing || t.own_account {
        return None;
    }
    let amount = t.money.to_eur()?;
    let state = input.state;
    let received = f64::from(state.dormancy.received_eur);
    if amount < p.min_amount_eur || received <= 0.0 || amount < p.min_share * received {
        return None;
    }
    // The return from silence: recorded at an earlier event of this session, or this transfer.
    let (woke_at, silent_days) = match state.dormancy.woke {
        Some((at, days)) if event.ts.millis_since(at) <= p.session.0 && event.ts >= at => {
            (at, i64::from(days))
        }
        _ => {
            let last = state.activity.last?;
            (event.ts, event.ts.millis_since(last) / DAY)
        }
    };
    if silent_days * DAY < p.min_silence.0 {
        return None;
    }
    let new_device = state
        .logins
        .new_devices
        .iter()
        .filter(|(at, _)| *at >= woke_at.plus(-HOUR) && *at <= event.ts)
        .map(|(at, _)| *at)
        .max()?;
    let payee = t.counterparty_bank.as_deref().unwrap_or("");
    let key = party_key(payee);
    if !payee.is_empty() && state.flows.iter().any(|f| f.kind == FlowKind::Payment && f.key == key) {
        return None; // a payee the customer paid before
    }
    let facts = vec![
        ("silent_days", Fact::Num(silent_days as f64)),
        ("amount_eur", Fact::Num(amount.round())),
        ("received_eur", Fact::Num(received.round())),
        ("share_pct", Fact::Num((100.0 * amount / received).round())),
        ("payee", Fact::Text(if payee.is_empty() { "?".to_string() } else { payee.to_string() })),
        ("minutes_since_new_device", Fact::Num((event.ts.millis_since(new_device) / 60_000) as f64)),
    ];
    Some(Signal {
        at: event.ts,
        facts,
        evidence: vec![Evidence::from_event(event)],
        money_at_risk_eur: amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn transfer(id: &str, ts: &str, out: bool, amount: f64, bank: &str) -> Event {
        let direction = if out { "out" } else { "in" };
        event(&format!(
            r#"{{"event_id":"{id}","type":"transfer","customer_id":"c","ts":"{ts}","direction":"{direction}","amount":{amount},"currency":"EUR","counterparty_bank":"{bank}"}}"#
        ))
    }

    fn login(id: &str, ts: &str, device: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"{id}","type":"login","customer_id":"c","ts":"{ts}","channel":"web","success":true,"device_id":"{device}"}}"#
        ))
    }

    fn history() -> Vec<Event> {
        vec![
            login("l1", "2026-03-01T09:00:00Z", "phone"),
            transfer("i1", "2026-03-02T09:00:00Z", false, 1_500.0, "Employer"),
            transfer("o1", "2026-03-05T09:00:00Z", true, 300.0, "Landlord Bank"),
            transfer("i2", "2026-03-09T09:00:00Z", false, 1_200.0, "Aunt Bank"),
        ]
    }

    fn run(extra: &[Event], now: &Event) -> Option<Signal> {
        let mut events = history();
        events.extend_from_slice(extra);
        let state = state_after(&events);
        detect(&DetectInput { event: Some(now), state: &state, now: now.ts }, &Params::default())
    }

    #[test]
    fn weeks_of_silence_a_new_device_and_most_of_the_money_to_a_new_bank() {
        let out = transfer("x", "2026-05-01T10:20:00Z", true, 2_000.0, "Far Away Bank");
        let s = run(&[login("l2", "2026-05-01T10:00:00Z", "laptop-new")], &out).expect("a drain");
        assert_eq!(s.num("silent_days"), Some(53.0));
        assert_eq!(s.num("share_pct"), Some(74.0));
        assert_eq!(s.num("minutes_since_new_device"), Some(20.0));
    }

    #[test]
    fn known_device_known_payee_small_share_or_no_silence_is_not_a_drain() {
        let out = transfer("x", "2026-05-01T10:20:00Z", true, 2_000.0, "Far Away Bank");
        assert!(run(&[login("l2", "2026-05-01T10:00:00Z", "phone")], &out).is_none(), "known device");
        let rent = transfer("x", "2026-05-01T10:20:00Z", true, 2_000.0, "LANDLORD BANK");
        assert!(run(&[login("l2", "2026-05-01T10:00:00Z", "laptop-new")], &rent).is_none(), "known payee");
        let small = transfer("x", "2026-05-01T10:20:00Z", true, 400.0, "Far Away Bank");
        assert!(run(&[login("l2", "2026-05-01T10:00:00Z", "laptop-new")], &small).is_none(), "a small share");
        let soon = transfer("x", "2026-03-20T10:20:00Z", true, 2_000.0, "Far Away Bank");
        assert!(run(&[login("l2", "2026-03-20T10:00:00Z", "laptop-new")], &soon).is_none(), "no silence");
    }
}
