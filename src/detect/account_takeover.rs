//! Account takeover: a burst of failed logins, then a success from a device the customer has
//! never used, then money out, in that order and close together.
//!
//! Evaluated after the event is applied, on any event that can be a link (a login, money out):
//! the chain is searched in the state by event time, so whichever link arrives last completes
//! it and arrival order does not hide a takeover.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::time::{Span, HOUR, MINUTE};
use crate::vocab::Type;

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

/// Looks for failures → new-device success → money out around the event (state includes it).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let is_link = match &event.body {
        EventBody::Login(_) => true,
        EventBody::Transfer(t) => t.outgoing,
        EventBody::CardTransaction(t) => !t.channel.is_physical() && t.approved,
        _ => false,
    };
    if !is_link {
        return None;
    }
    let state = input.state;
    let mut best: Option<(u32, i64, f64)> = None; // (failures, millis login → money out, euros)
    for &(login_at, _) in state.logins.new_devices.iter() {
        let failures = state.failures_before(login_at, HOUR);
        if failures < p.min_failures {
            continue;
        }
        for out in state.money_out.iter() {
            let gap = out.at.millis_since(login_at);
            let event_in_chain = event.ts.millis_since(login_at) >= -HOUR && event.ts <= out.at;
            if (0..=p.money_out_within.0).contains(&gap)
                && event_in_chain
                && best.is_none_or(|(.., eur)| f64::from(out.money_eur) > eur)
            {
                best = Some((failures, gap, f64::from(out.money_eur)));
            }
        }
    }
    let (failures, gap, amount_eur) = best?;
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

    /// Runs the detector after applying `past` and `now` (it reads the state after the event).
    fn run(past: &[Event], now: &Event) -> Option<Signal> {
        let mut all = past.to_vec();
        all.push(now.clone());
        let state = state_after(&all);
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
    fn found_whatever_the_arrival_order() {
        let mut past = history();
        past.push(transfer_out(20));
        let s = run(&past, &login(4, 13, true, "attacker-laptop")).expect("takeover on late login");
        assert_eq!(s.num("minutes"), Some(7.0));
        // The failures arrive last.
        let mut past =
            vec![login(0, 0, true, "phone"), login(4, 13, true, "attacker-laptop"), transfer_out(20)];
        past.extend([login(1, 10, false, "x"), login(2, 11, false, "x")]);
        let s = run(&past, &login(3, 12, false, "x")).expect("takeover on late failure");
        assert_eq!(s.num("failures"), Some(3.0));
    }

    #[test]
    fn new_device_without_failures_is_fine() {
        let past = vec![login(0, 0, true, "phone"), login(4, 13, true, "new-phone")];
        assert!(run(&past, &transfer_out(20)).is_none());
    }
}
