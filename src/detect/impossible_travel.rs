//! Impossible travel: two consecutive *physical* uses of one card too far apart for the time
//! between them.
//!
//! Domain care: only card-present, contactless and ATM uses count (an e-commerce merchant's
//! address is where the shop is registered, not where the customer is); uses of *one card* are
//! compared (a supplementary card in another city is another person); locations are
//! city-precise, so a tolerance is taken off the distance, and flights are possible; the time
//! between uses comes from instants, so any UTC offset works; a late event is compared with both
//! its neighbours in time, so arriving late neither hides nor invents an incident.

use serde::Deserialize;

use super::{masked_card, DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::PhysicalUse;
use crate::time::{Span, HOUR, MINUTE};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Fastest plausible flight, km/h (an airliner cruises at about 900).
    pub max_speed_kmh: f64,
    /// Added to every flight: boarding, taxi, landing. Short hops are slower than cruise speed.
    pub flight_overhead: Span,
    /// Fastest plausible ground travel, km/h (high-speed rail, motorway).
    pub ground_speed_kmh: f64,
    /// Distances below this are the same place at city precision.
    pub min_distance_km: f64,
    /// Taken off every distance before computing the speed (city-precise locations).
    pub tolerance_km: f64,
}

// The pair is impossible when the time between the uses is shorter than both the fastest
// flight (distance less tolerance at `max_speed_kmh`, plus `flight_overhead`) and the fastest
// ground travel.

impl Default for Params {
    fn default() -> Self {
        Params {
            max_speed_kmh: 900.0,
            flight_overhead: Span(30 * MINUTE),
            ground_speed_kmh: 200.0,
            min_distance_km: 100.0,
            tolerance_km: 50.0,
        }
    }
}

/// Facts of an impossible-travel signal.
pub const FACTS: &[(&str, Type)] = &[
    ("card", Type::Str),
    ("from_city", Type::Str),
    ("from_country", Type::Str),
    ("from_merchant", Type::Str),
    ("to_city", Type::Str),
    ("to_country", Type::Str),
    ("to_merchant", Type::Str),
    ("distance_km", Type::Num),
    ("minutes", Type::Num),
    ("speed_kmh", Type::Num),
];

/// Compares a physical card use with the card's previous and next uses in time.
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::CardTransaction(t) = &event.body else { return None };
    if !t.channel.is_physical() {
        return None;
    }
    let here = t.place.point?;
    let card = input.state.card(&t.card_id)?;
    // A trip the customer confirmed for this card (resolved `legitimate`) is not paged again.
    let learned = input.state.learned.as_deref();
    let trusted = |point: crate::geo::Point, at| {
        learned.is_some_and(|l| l.trusts_place(&t.card_id, point, p.min_distance_km, at))
    };
    let mut worst: Option<(f64, f64, f64, &PhysicalUse)> = None; // (speed, km, minutes, other)
    let next_index = card.uses.partition_point(|u| u.at <= event.ts);
    let neighbours = [next_index.checked_sub(1), Some(next_index)];
    for other in neighbours.into_iter().flatten().filter_map(|i| card.uses.get(i)) {
        let km = here.distance_km(&other.point());
        if km < p.min_distance_km {
            continue;
        }
        if trusted(here, event.ts) && trusted(other.point(), event.ts) {
            continue;
        }
        let millis = event.ts.millis_since(other.at).unsigned_abs() as f64;
        let hours = millis / HOUR as f64;
        let far = (km - p.tolerance_km).max(0.0);
        let by_air = far / p.max_speed_kmh + p.flight_overhead.0 as f64 / HOUR as f64;
        let by_ground = far / p.ground_speed_kmh;
        let speed = if hours > 0.0 { km / hours } else { f64::INFINITY };
        if hours < by_air.min(by_ground) && worst.is_none_or(|(s, ..)| speed > s) {
            worst = Some((speed, km, millis / 60_000.0, other));
        }
    }
    let (speed, km, minutes, other) = worst?;
    let here = (Evidence::from_event(event), &t.place.city[..], t.place.country, &t.merchant_name[..]);
    let there = (Evidence::from_use(&t.card_id, other), &other.city[..], other.country, &other.merchant[..]);
    let (first, second) = if other.at <= event.ts { (there, here) } else { (here, there) };
    let text = |s: &str| Fact::Text(s.to_string());
    let facts = vec![
        ("card", Fact::Text(masked_card(&t.card_id))),
        ("from_city", text(first.1)),
        ("from_country", text(first.2.as_str())),
        ("from_merchant", text(first.3)),
        ("to_city", text(second.1)),
        ("to_country", text(second.2.as_str())),
        ("to_merchant", text(second.3)),
        ("distance_km", Fact::Num(km.round())),
        ("minutes", Fact::Num(minutes.round())),
        ("speed_kmh", Fact::Num(if speed.is_finite() { speed.round() } else { 1e9 })),
    ];
    Some(Signal {
        at: event.ts,
        facts,
        evidence: vec![first.0, second.0],
        money_at_risk_eur: t.money.to_eur().unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{card, state_after};
    use crate::event::Event;

    fn run(history: &[Event], now: &Event) -> Option<Signal> {
        let state = state_after(history);
        detect(&DetectInput { event: Some(now), state: &state, now: now.ts }, &Params::default())
    }

    fn phnom_penh(id: &str, ts: &str, card_id: &str) -> Event {
        card(id, ts, card_id, "contactless", 4.0, "Phnom Penh", "KH", 11.5564, 104.9282)
    }

    fn paris(id: &str, ts: &str, card_id: &str, channel: &str) -> Event {
        card(id, ts, card_id, channel, 45.0, "Paris", "FR", 48.8566, 2.3522)
    }

    #[test]
    fn paris_thirty_minutes_after_phnom_penh() {
        let s = run(
            &[phnom_penh("1", "2026-11-24T09:00:00+07:00", "k")],
            &paris("2", "2026-11-24T03:30:00+01:00", "k", "card_present"),
        )
        .expect("impossible");
        assert_eq!(s.num("minutes"), Some(30.0));
        assert!((9_900.0..10_200.0).contains(&s.num("distance_km").unwrap()));
        assert!(s.num("speed_kmh").unwrap() > 19_000.0);
        assert_eq!(s.fact("from_city"), Some(&Fact::Text("Phnom Penh".into())));
        assert_eq!(s.fact("to_country"), Some(&Fact::Text("FR".into())));
        assert_eq!(s.fact("from_merchant"), Some(&Fact::Text("Shop Phnom Penh".into())));
        assert_eq!(s.evidence.len(), 2);
    }

    #[test]
    fn a_real_flight_is_possible() {
        // Phnom Penh → Paris in 14 hours.
        let s = run(
            &[phnom_penh("1", "2026-11-24T09:00:00+07:00", "k")],
            &paris("2", "2026-11-24T16:00:00+01:00", "k", "card_present"),
        );
        assert!(s.is_none());
    }

    #[test]
    fn ecommerce_is_not_a_place() {
        let s = run(
            &[phnom_penh("1", "2026-11-24T09:00:00+07:00", "k")],
            &paris("2", "2026-11-24T03:30:00+01:00", "k", "ecommerce"),
        );
        assert!(s.is_none());
    }

    #[test]
    fn two_cards_are_two_people() {
        let s = run(
            &[phnom_penh("1", "2026-11-24T09:00:00+07:00", "main")],
            &paris("2", "2026-11-24T03:30:00+01:00", "supplementary", "card_present"),
        );
        assert!(s.is_none());
    }

    #[test]
    fn neighbouring_cities_at_city_precision() {
        // Paris and Versailles (~17 km) a minute apart: same place at city precision.
        let versailles =
            card("2", "2026-11-24T10:01:00Z", "k", "card_present", 5.0, "Versailles", "FR", 48.80, 2.13);
        assert!(run(&[paris("1", "2026-11-24T10:00:00Z", "k", "card_present")], &versailles).is_none());
        // Paris and Lyon (~390 km) in 30 minutes is not.
        let lyon = card("3", "2026-11-24T10:30:00Z", "k", "atm", 5.0, "Lyon", "FR", 45.764, 4.8357);
        assert!(run(&[paris("1", "2026-11-24T10:00:00Z", "k", "card_present")], &lyon).is_some());
    }

    #[test]
    fn across_the_antimeridian() {
        // Suva (Fiji) and Apia (Samoa), ~1,150 km: a 2 h flight is fine, 20 minutes is not.
        let suva =
            card("1", "2026-11-24T10:00:00+12:00", "k", "contactless", 5.0, "Suva", "FJ", -18.1248, 178.4501);
        let apia_ok =
            card("2", "2026-11-24T13:00:00+13:00", "k", "atm", 5.0, "Apia", "WS", -13.8333, -171.7667);
        assert!(run(std::slice::from_ref(&suva), &apia_ok).is_none());
        let apia_fast =
            card("3", "2026-11-24T11:20:00+13:00", "k", "atm", 5.0, "Apia", "WS", -13.8333, -171.7667);
        assert!(run(&[suva], &apia_fast).is_some());
    }

    #[test]
    fn a_late_event_is_compared_with_the_use_after_it() {
        // Paris at 10:30 arrived first; the Phnom Penh use at 10:00 (UTC) arrives late.
        let s = run(
            &[paris("2", "2026-11-24T10:30:00Z", "k", "card_present")],
            &phnom_penh("1", "2026-11-24T17:00:00+07:00", "k"),
        )
        .expect("late event still finds the pair");
        assert_eq!(s.fact("from_city"), Some(&Fact::Text("Phnom Penh".into())));
        assert_eq!(s.fact("to_city"), Some(&Fact::Text("Paris".into())));
    }

    #[test]
    fn same_instant_far_apart() {
        let s = run(
            &[paris("1", "2026-11-24T10:00:00Z", "k", "card_present")],
            &phnom_penh("2", "2026-11-24T17:00:00+07:00", "k"),
        )
        .unwrap();
        assert_eq!(s.num("minutes"), Some(0.0));
    }
}
