//! Account takeover: a burst of failed logins, then a success from a device the customer has
//! never used, then money out, in that order and close together.
//!
//! Fires on the money-out event; if the money-out arrived before the login (events arrive out of
//! order), it fires on the login instead, so arrival order does not hide the chain.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::rules::expr::Type;
use crate::state::hash_text;
use crate::time::{Span, HOUR, MINUTE};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Failed logins in the hour before the new-device success.
    pub min_failures: u32,
    /// Money out within this long after the new-device success.
    pub money_out_within: Span,
}

impl Default for Params {
    fn default() -> Self {
        Params { min_failures: 3, money_out_within: Span(2 * HOUR) }
    }
}

/// Facts of an account-takeover signal.
pub const FACTS: &[(&str, Type)] =
    &[("failures", Type::Num), ("minutes", Type::Num), ("amount_eur", Type::Num)];

/// Looks for failures → new-device success → money out.
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let state = input.state;
    let (login_at, failures, out_at, amount_eur) = match &event.body {
        EventBody::Transfer(t) if t.outgoing => {
            let risky = state.logins.risky_success?;
            (risky.at, risky.failures, event.ts, t.money.to_eur().unwrap_or(0.0))
        }
        EventBody::CardTransaction(t) if !t.channel.is_physical() && t.approved => {
            let risky = state.logins.risky_success?;
            (risky.at, risky.failures, event.ts, t.money.to_eur().unwrap_or(0.0))
        }
        EventBody::Login(l) if l.success => {
            // The login itself: only when money left after it but arrived before it.
            if state.logins.devices.is_empty() || state.logins.devices.contains(&hash_text(&l.device_id)) {
                return None;
            }
            let failures = state.failures_before(event.ts, HOUR);
            let out = state
                .money_out
                .iter()
                .filter(|m| m.at >= event.ts && m.at.millis_since(event.ts) <= p.money_out_within.0)
                .max_by(|a, b| a.money_eur.total_cmp(&b.money_eur))?;
            (event.ts, failures, out.at, f64::from(out.money_eur))
        }
        _ => return None,
    };
    let gap = out_at.millis_since(login_at);
    if failures < p.min_failures || gap < 0 || gap > p.money_out_within.0 {
        return None;
    }
    let mut facts = vec![
        ("failures", Fact::Num(f64::from(failures))),
        ("minutes", Fact::Num((gap / MINUTE) as f64)),
        ("amount_eur", Fact::Num(amount_eur.round())),
    ];
    super::event_facts(event, &mut facts);
    Some(Signal {
        at: event.ts,
        facts,
        evidence: vec![Evidence::from_event(event)],
        money_at_risk_eur: amount_eur,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn login(i: usize, minute: u32, ok: bool, device: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"l{i}","type":"login","customer_id":"c","ts":"2026-11-24T10:{minute:02}:00Z","channel":"web","success":{ok},"device_id":"{device}"}}"#
        ))
    }

    fn transfer_out(minute: u32) -> Event {
        event(&format!(
            r#"{{"event_id":"t","type":"transfer","customer_id":"c","ts":"2026-11-24T10:{minute:02}:00Z","direction":"out","amount":2500,"currency":"EUR"}}"#
        ))
    }

    fn history() -> Vec<Event> {
        vec![
            login(0, 0, true, "phone"),
            login(1, 10, false, "x"),
            login(2, 11, false, "x"),
            login(3, 12, false, "x"),
        ]
    }

    fn run(past: &[Event], now: &Event) -> Option<Signal> {
        let state = state_after(past);
        detect(&DetectInput { event: Some(now), state: &state, now: now.ts }, &Params::default())
    }

    #[test]
    fn failures_then_new_device_then_money_out() {
        let mut past = history();
        past.push(login(4, 13, true, "attacker-laptop"));
        let s = run(&past, &transfer_out(20)).expect("takeover");
        assert_eq!(s.num("failures"), Some(3.0));
        assert_eq!(s.num("minutes"), Some(7.0));
        assert_eq!(s.money_at_risk_eur, 2500.0);
    }

    #[test]
    fn known_device_after_typos_is_fine() {
        let mut past = history();
        past.push(login(4, 13, true, "phone"));
        assert!(run(&past, &transfer_out(20)).is_none());
    }

    #[test]
    fn money_out_arriving_before_the_login_still_found() {
        let mut past = history();
        past.push(transfer_out(20));
        let s = run(&past, &login(4, 13, true, "attacker-laptop")).expect("takeover on late login");
        assert_eq!(s.num("minutes"), Some(7.0));
    }

    #[test]
    fn new_device_without_failures_is_fine() {
        let past = vec![login(0, 0, true, "phone"), login(4, 13, true, "new-phone")];
        assert!(run(&past, &transfer_out(20)).is_none());
    }
}
