//! Sequence patterns, "after X, then Y, within T": what a sequence rule remembers of the events
//! that matched its links, how a chain through them is found, and the signal a chain gives.
//!
//! The matching itself (which events match which link) is the rule's link conditions, evaluated
//! by the engine on the state as it was before the event (a "new device" or a "payee never paid"
//! is judged against the past). Every event that matches a link is kept as a
//! [`SequenceMark`] while a chain through it can still complete; a chain is complete when some
//! mark of every link exists, in event-time order, the last within the rule's `within` of the
//! first. Whichever link arrives last (a late one included) completes it, and the chain has to
//! use the event just seen, so an old chain never fires twice. Pure: no clock, no I/O.

use super::{Evidence, Fact, Signal};
use crate::event::{Event, EventBody};
use crate::money::{Currency, Money};
use crate::state::SequenceMark;
use crate::vocab::Type;

/// Facts of a sequence signal: the chain's span, its first and last links, and the money moved.
pub const FACTS: &[(&str, Type)] = &[
    ("minutes", Type::Num),
    ("links", Type::Num),
    ("first_type", Type::Str),
    ("first_detail", Type::Str),
    ("last_type", Type::Str),
    ("last_detail", Type::Str),
    ("amount_eur", Type::Num),
];

/// What an event was about, in a word or two the agent recognises: a contact's reason, a
/// transfer's bank, a login's city, a card payment's merchant (nothing for a profile: its type
/// says it).
pub fn detail(event: &Event) -> Box<str> {
    match &event.body {
        EventBody::SupportContact(c) => c.reason.as_str().into(),
        EventBody::Transfer(t) => t.counterparty_bank.as_deref().unwrap_or("").into(),
        EventBody::Login(l) => l.geo.as_ref().map_or("".into(), |g| g.city.as_str().into()),
        EventBody::CardTransaction(t) => t.merchant_name.as_str().into(),
        EventBody::Complaint(c) => c.category.as_str().into(),
        EventBody::ProductChange(p) => p.product.as_str().into(),
        EventBody::CustomerProfile(_) | EventBody::TravelNotice(_) => "".into(),
    }
}

/// The money an event moves, in euros (0 without money or a known rate).
fn amount_eur(event: &Event) -> f32 {
    let money = match &event.body {
        EventBody::Transfer(t) => Some(t.money),
        EventBody::CardTransaction(t) => Some(t.money),
        _ => None,
    };
    money.and_then(|m| m.to_eur()).unwrap_or(0.0) as f32
}

/// The fingerprint of an event id that tells the events of one customer apart.
pub fn fingerprint(event_id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes()) as u32
}

/// The mark `event` leaves for link `link` of rule `rule`.
pub fn mark(rule: u64, link: u8, event: &Event) -> SequenceMark {
    SequenceMark {
        rule,
        at: event.ts,
        event: fingerprint(&event.event_id),
        link,
        kind: event.kind(),
        amount_eur: amount_eur(event),
        detail: detail(event),
    }
}

/// The complete chain of a rule with `links` links among `marks` (all of one rule), if one
/// exists that uses the event with fingerprint `current`: one mark per link in link order, in
/// non-decreasing event time, distinct events, the last within `within` of the first. Of
/// several, the one moving the most money, then the one starting earliest (the whole story).
/// Indexes into `marks`.
pub fn find_chain(marks: &[&SequenceMark], links: usize, within: i64, current: u32) -> Option<Vec<usize>> {
    let mut best: Option<(Vec<usize>, f32, i64)> = None;
    let mut path = Vec::with_capacity(links);
    extend(marks, links, within, current, &mut path, &mut best);
    best.map(|(chain, ..)| chain)
}

fn extend(
    marks: &[&SequenceMark],
    links: usize,
    within: i64,
    current: u32,
    path: &mut Vec<usize>,
    best: &mut Option<(Vec<usize>, f32, i64)>,
) {
    if path.len() == links {
        if !path.iter().any(|&i| marks[i].event == current) {
            return;
        }
        let money = path.iter().map(|&i| marks[i].amount_eur).fold(0.0, f32::max);
        let span = marks[path[links - 1]].at.millis_since(marks[path[0]].at);
        if best.as_ref().is_none_or(|(_, m, s)| money > *m || (money == *m && span > *s)) {
            *best = Some((path.clone(), money, span));
        }
        return;
    }
    let link = path.len() as u8;
    for (i, m) in marks.iter().enumerate() {
        if m.link != link || path.iter().any(|&j| marks[j].event == m.event) {
            continue;
        }
        if let (Some(&first), Some(&prev)) = (path.first(), path.last()) {
            if m.at < marks[prev].at || m.at.millis_since(marks[first].at) > within {
                continue;
            }
        }
        path.push(i);
        extend(marks, links, within, current, path, best);
        path.pop();
    }
}

/// The signal of a complete chain (marks in link order), with `between`: the rule's other marks
/// within the chain's span (a second credential change between the first and the money), shown
/// as evidence too. The link that is `event` itself is shown as the event, the others from
/// their marks.
pub fn signal(chain: &[&SequenceMark], between: &[&SequenceMark], event: &Event) -> Signal {
    let (first, last) = (chain[0], chain[chain.len() - 1]);
    let amount = chain.iter().map(|m| m.amount_eur).fold(0.0, f32::max);
    let current = fingerprint(&event.event_id);
    let facts = vec![
        ("minutes", Fact::Num((last.at.millis_since(first.at) / 60_000) as f64)),
        ("links", Fact::Num(chain.len() as f64)),
        ("first_type", Fact::Text(first.kind.as_str().to_string())),
        ("first_detail", Fact::Text(first.detail.to_string())),
        ("last_type", Fact::Text(last.kind.as_str().to_string())),
        ("last_detail", Fact::Text(last.detail.to_string())),
        ("amount_eur", Fact::Num(f64::from(amount).round())),
    ];
    let mut shown: Vec<&SequenceMark> = chain.to_vec();
    for m in between {
        if m.at >= first.at && m.at <= last.at && !shown.iter().any(|s| s.event == m.event) {
            shown.push(m);
        }
    }
    shown.sort_by_key(|m| m.at);
    let evidence =
        shown
            .iter()
            .map(|m| {
                if m.event == current && m.at == event.ts {
                    Evidence::from_event(event)
                } else {
                    evidence(m)
                }
            })
            .collect();
    Signal { at: last.at, facts, evidence, money_at_risk_eur: f64::from(amount) }
}

/// A link seen earlier, as evidence: when, what type, how much, and what about (as the
/// summary, which the task puts into words in its language with the type).
fn evidence(m: &SequenceMark) -> Evidence {
    Evidence {
        at: m.at,
        kind: m.kind,
        event_id: None,
        summary: m.detail.to_string(),
        money: (m.amount_eur > 0.0)
            .then(|| Money { amount: f64::from(m.amount_eur).round(), currency: Currency(*b"EUR") }),
        country: None,
        city: None,
        card_id: None,
        lat: None,
        lon: None,
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::event;
    use crate::time::{Timestamp, MINUTE};

    fn m(link: u8, event: u32, minute: i64, amount: f32) -> SequenceMark {
        SequenceMark {
            rule: 1,
            at: Timestamp(minute * MINUTE),
            event,
            link,
            kind: crate::event::EventKind::Login,
            amount_eur: amount,
            detail: "".into(),
        }
    }

    #[test]
    fn a_chain_runs_in_event_time_within_the_span_and_uses_the_event_just_seen() {
        let marks = [m(0, 1, 0, 0.0), m(1, 2, 10, 0.0), m(2, 3, 50, 900.0)];
        let refs: Vec<&SequenceMark> = marks.iter().collect();
        assert_eq!(find_chain(&refs, 3, 60 * MINUTE, 3), Some(vec![0, 1, 2]));
        assert_eq!(
            find_chain(&refs, 3, 60 * MINUTE, 1),
            Some(vec![0, 1, 2]),
            "a late first link completes it"
        );
        assert_eq!(find_chain(&refs, 3, 49 * MINUTE, 3), None, "the last link is 50 min after the first");
        assert_eq!(find_chain(&refs, 3, 60 * MINUTE, 9), None, "an old chain without this event");
        // Out of order in event time: the second link after the third.
        let marks = [m(0, 1, 0, 0.0), m(1, 2, 55, 0.0), m(2, 3, 50, 900.0)];
        let refs: Vec<&SequenceMark> = marks.iter().collect();
        assert_eq!(find_chain(&refs, 3, 60 * MINUTE, 3), None);
    }

    #[test]
    fn one_event_is_never_two_links_and_the_chain_moving_most_money_wins() {
        let marks = [m(0, 1, 0, 0.0), m(1, 1, 0, 0.0)];
        let refs: Vec<&SequenceMark> = marks.iter().collect();
        assert_eq!(find_chain(&refs, 2, 60 * MINUTE, 1), None);
        let marks = [m(0, 1, 0, 0.0), m(1, 2, 5, 100.0), m(1, 3, 20, 700.0)];
        let refs: Vec<&SequenceMark> = marks.iter().collect();
        assert_eq!(find_chain(&refs, 2, 60 * MINUTE, 1), Some(vec![0, 2]));
        // Two first links: the earlier one tells the whole story.
        let marks = [m(0, 1, 0, 0.0), m(0, 2, 10, 0.0), m(1, 3, 20, 700.0)];
        let refs: Vec<&SequenceMark> = marks.iter().collect();
        assert_eq!(find_chain(&refs, 2, 60 * MINUTE, 3), Some(vec![0, 2]));
    }

    #[test]
    fn the_signal_shows_each_link_with_its_time() {
        let reset = event(
            r#"{"event_id":"r","type":"support_contact","customer_id":"c","ts":"2026-11-01T10:00:00Z","channel":"phone","reason":"password_reset","resolved":true}"#,
        );
        let out = event(
            r#"{"event_id":"t","type":"transfer","customer_id":"c","ts":"2026-11-01T10:40:00Z","direction":"out","amount":1800,"currency":"EUR","counterparty_bank":"Far Bank"}"#,
        );
        let (a, b) = (mark(1, 0, &reset), mark(1, 1, &out));
        assert_eq!((&*a.detail, &*b.detail, b.amount_eur), ("password_reset", "Far Bank", 1800.0));
        let s = signal(&[&a, &b], &[&a, &b], &out);
        assert_eq!(s.at, out.ts);
        assert_eq!(s.num("minutes"), Some(40.0));
        assert_eq!(s.num("amount_eur"), Some(1800.0));
        assert!(matches!(s.fact("first_detail"), Some(Fact::Text(t)) if t == "password_reset"));
        assert_eq!(s.evidence.len(), 2);
        assert_eq!((s.evidence[0].at, s.evidence[0].summary.as_str()), (reset.ts, "password_reset"));
        assert_eq!(s.evidence[1].event_id.as_deref(), Some("t"), "the event just seen is shown whole");
    }
}
