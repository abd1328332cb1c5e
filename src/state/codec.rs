//! A customer's state as compact bytes, so the service can checkpoint it to a database and
//! restore it after a crash or a partition move.
//!
//! Layout: one format-version byte ([`FORMAT_VERSION`]), then the [`CustomerState`] in
//! [`postcard`] (fields in declaration order, integers as varints, no field names). Everything
//! the state holds is kept: de-duplication ids, baselines, rings (their items oldest first, so
//! order and length survive), cards, history, cooldowns, the pending timer, the profile and the
//! incidents with their open tasks. Not kept: `partition`, which whoever restores sets.
//!
//! Text shared through the [`Interner`] (cities, merchants, history details, profile languages)
//! is re-interned on decode, so restored customers share copies with live ones.
//!
//! The in-memory layout is compact (the rarely used parts of `state::sparse`, the packed
//! `HistoryItem`, the encoded `CompactProfile`), but each of those types writes exactly what the
//! type it replaced wrote (a sparse ring as a ring, a sparse list as a `Vec`, absent parts as
//! their empty values, the profile as a `Profile`), so the stored layout did not change with
//! them: `tests::layout_is_pinned` holds the same bytes as before.
//!
//! Tasks and evidence have a JSON form that is a public contract (and leaves out empty fields,
//! which a format without field names cannot do), so they are stored through the mirror types of
//! this module (`tasks`, `task_summaries`), not through their JSON `Serialize`. Timestamps,
//! countries and currencies are text in JSON and numbers or raw bytes here (their impls look at
//! `is_human_readable`). The profile is stored through its own derive: a `skip_serializing_if`
//! added there for JSON would break this layout. A task fact whose name this build no longer
//! declares is dropped on decode (the rest of the customer is kept).
//!
//! **Changing the layout.** The bytes depend on the order and types of the fields of every type
//! reached from `CustomerState` (and on the order of enum variants). Adding, removing, moving or
//! retyping one, or reordering variants, makes older bytes unreadable or misread: bump
//! [`FORMAT_VERSION`] and decide what happens to checkpoints written before (migrate, or restore
//! those customers from empty). `tests::layout_is_pinned` fails on any such change as a reminder.
//!
//! History: version 2 added the task's `work` (the agents' workflow), the incidents' last
//! resolved task per queue and the customer's `learned` (the feedback loop). Version-1 rows are
//! refused on restore and those customers start afresh (counted in `restore_corrupt`): no
//! deployment held version-1 checkpoints worth migrating. Version 3 added the pending absences
//! (absence rules), as the last field: a version-2 row is read as version 3 with none pending
//! (postcard writes an empty list as one zero byte, which is appended). Version 4 added, after
//! them, the longer spending memory (`peaks`), the recurring flows and the resolved complaint
//! categories: an older row is read with those appended empty (`v4_tail`), so customers keep
//! everything else and learn their flows and peaks afresh. Version 5 appended the events seen
//! within the de-duplication horizon (`dedup::SeenEvents`) and the money received and last return
//! from dormancy (`Dormancy`), and keeps only command ids in the
//! ring that held event ids too (stored alike): an older row is read with no events seen in the
//! index, its ring's event ids still honoured (`CustomerState::seen_event`). Version 6 appended
//! the marks of sequence rules' links (`SequenceMark`): an older row is read with none.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CustomerState, Interner};
use crate::detect::{DetectorKind, Evidence, EVENT_FACTS};
use crate::event::{EventKind, Profile};
use crate::geo::Country;
use crate::money::Money;
use crate::task::{HistoryLine, Outcome, SignalRecord, Task, TaskContext, TaskStatus, TaskSummary, Workflow};
use crate::time::Timestamp;
use crate::vocab::{Queue, Severity};

/// The layout version written first; [`decode`] refuses any other.
pub const FORMAT_VERSION: u8 = 6;

/// Why stored bytes could not be restored into a customer's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("stored state has format version {found}; this build reads version {FORMAT_VERSION} only")]
    UnknownVersion { found: u8 },
    #[error("stored state is truncated: the bytes end before the state does")]
    Truncated,
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

/// The customer's state as bytes: the version byte, then the state.
pub fn encode(state: &CustomerState) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.push(FORMAT_VERSION);
    // Serializing to memory fails only for a sequence of unknown length, and every sequence
    // here (vectors, rings, maps) knows its length.
    postcard::to_extend(state, out).expect("customer state serializes to memory")
}

/// The customer's state from [`encode`]'s bytes, its shared text taken from `interner`.
/// `partition` is 0: the caller sets it.
pub fn decode(bytes: &[u8], interner: &Interner) -> Result<CustomerState, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Truncated)?;
    let migrated;
    let body = match version {
        FORMAT_VERSION => body,
        // Version 5 is version 6 without the trailing sequence marks.
        5 => {
            migrated = [body, &v6_tail()].concat();
            &migrated[..]
        }
        // Version 4 is version 5 without the trailing events seen.
        4 => {
            migrated = [body, &v5_tail(), &v6_tail()].concat();
            &migrated[..]
        }
        // Version 3 is version 4 without the trailing peaks, flows and resolved complaints.
        3 => {
            migrated = [body, &v4_tail(), &v5_tail(), &v6_tail()].concat();
            &migrated[..]
        }
        // Version 2 is version 3 without the trailing list of pending absences.
        2 => {
            migrated = [body, &[0u8], &v4_tail(), &v5_tail(), &v6_tail()].concat();
            &migrated[..]
        }
        _ => return Err(CodecError::UnknownVersion { found: version }),
    };
    let (mut state, rest): (CustomerState, &[u8]) = postcard::take_from_bytes(body).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => CodecError::Truncated,
        other => CodecError::Corrupt(other.to_string()),
    })?;
    if !rest.is_empty() {
        return Err(CodecError::Corrupt(format!("{} bytes after the end of the state", rest.len())));
    }
    intern(&mut state, interner);
    Ok(state)
}

/// What version 4 appended, empty: the bytes a version-3 row lacks (see the module doc).
fn v4_tail() -> Vec<u8> {
    let empty = CustomerState::default();
    postcard::to_allocvec(&(&empty.peaks, &empty.flows, &empty.resolved_complaints))
        .expect("empty parts serialize")
}

/// What version 5 appended, empty: the bytes a version-4 row lacks.
fn v5_tail() -> Vec<u8> {
    let empty = CustomerState::default();
    postcard::to_allocvec(&(&empty.seen, &empty.dormancy)).expect("empty parts serialize")
}

/// What version 6 appended, empty: the bytes a version-5 row lacks.
fn v6_tail() -> Vec<u8> {
    postcard::to_allocvec(&CustomerState::default().sequences).expect("empty parts serialize")
}

/// Replaces every interned string of a decoded state with the interner's shared copy.
fn intern(state: &mut CustomerState, interner: &Interner) {
    if let Some(profile) = &mut state.profile {
        profile.share_language(interner);
    }
    for card in &mut state.cards {
        for u in &mut card.uses {
            u.city = interner.intern(&u.city);
            u.merchant = interner.intern(&u.merchant);
        }
    }
    for item in state.history.iter_mut() {
        if let Some(detail) = item.detail_mut() {
            *detail = interner.intern(detail);
        }
    }
    for flow in state.flows.iter_mut() {
        flow.party = interner.intern(&flow.party);
    }
    state.seen.sort();
}

// The stored layout of tasks: the same fields as the task types, every one written (none
// skipped when empty, as their JSON form does).

#[derive(Serialize, Deserialize)]
#[serde(remote = "Task")]
struct TaskDef {
    id: String,
    version: u32,
    customer_id: String,
    queue: Queue,
    rules: Vec<String>,
    priority: u8,
    status: TaskStatus,
    outcome: Option<Outcome>,
    opened_at: Timestamp,
    updated_at: Timestamp,
    due_at: Timestamp,
    title: String,
    explanation: String,
    money_at_risk_eur: f64,
    #[serde(with = "signal_records")]
    signals: Vec<SignalRecord>,
    #[serde(with = "ContextDef")]
    context: TaskContext,
    work: Workflow,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "TaskContext")]
struct ContextDef {
    profile_known: bool,
    profile: Option<Profile>,
    language: String,
    #[serde(with = "evidence_items")]
    events: Vec<Evidence>,
    #[serde(with = "history_lines")]
    recent_history: Vec<HistoryLine>,
    #[serde(with = "task_summaries")]
    earlier_tasks: Vec<TaskSummary>,
    actions: Vec<String>,
    script: String,
    // Not stored: derived again whenever the task changes and when its customer is restored
    // (`incident::restore_context`), so the layout is unchanged.
    #[serde(skip)]
    procedure: Option<crate::task::Procedure>,
    #[serde(skip)]
    open_in_other_queue: Vec<TaskSummary>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "SignalRecord")]
struct SignalRecordDef {
    rule: String,
    detector: Option<DetectorKind>,
    severity: Severity,
    at: Timestamp,
    explanation: String,
    #[serde(with = "facts")]
    facts: BTreeMap<&'static str, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "HistoryLine")]
struct HistoryLineDef {
    at: Timestamp,
    kind: EventKind,
    summary: String,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "TaskSummary")]
struct TaskSummaryDef {
    id: String,
    queue: Queue,
    title: String,
    status: TaskStatus,
    outcome: Option<Outcome>,
    opened_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Evidence")]
struct EvidenceDef {
    at: Timestamp,
    kind: EventKind,
    event_id: Option<String>,
    summary: String,
    money: Option<Money>,
    country: Option<Country>,
    city: Option<String>,
    card_id: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    // Not stored: only read while a task is written (see `Evidence::body`).
    #[serde(skip)]
    body: Option<Box<crate::event::EventBody>>,
}

/// A `#[serde(with = ..)]` module for a vector of a type stored through its mirror `Def`.
macro_rules! vec_via {
    ($(#[$doc:meta])* $vis:vis mod $module:ident: $ty:ty => $def:ident) => {
        $(#[$doc])*
        $vis mod $module {
            use super::*;

            struct Out<'a>(&'a $ty);

            impl Serialize for Out<'_> {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    $def::serialize(self.0, s)
                }
            }

            struct In($ty);

            impl<'de> Deserialize<'de> for In {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    $def::deserialize(d).map(In)
                }
            }

            pub fn serialize<S: Serializer>(items: &[$ty], s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(items.iter().map(Out))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<$ty>, D::Error> {
                Ok(Vec::<In>::deserialize(d)?.into_iter().map(|item| item.0).collect())
            }
        }
    };
}

vec_via! {
    /// Stored layout of a customer's open tasks (`CustomerIncidents::open`).
    pub(crate) mod tasks: Task => TaskDef
}
vec_via! {
    /// Stored layout of task summaries (`CustomerIncidents::earlier`, a task's earlier tasks).
    pub(crate) mod task_summaries: TaskSummary => TaskSummaryDef
}
vec_via!(mod signal_records: SignalRecord => SignalRecordDef);
vec_via!(mod evidence_items: Evidence => EvidenceDef);
vec_via!(mod history_lines: HistoryLine => HistoryLineDef);

/// A signal's facts: pairs of name and value. Names are stored as text and mapped back to the
/// detectors' static fact names; a name this build does not declare is dropped.
mod facts {
    use super::*;

    /// A fact's JSON value. Facts are numbers, text or null; anything else is kept as JSON text.
    #[derive(Serialize, Deserialize)]
    enum Stored<'a> {
        Null,
        Float(f64),
        Int(i64),
        UInt(u64),
        Bool(bool),
        Text(Cow<'a, str>),
        Json(String),
    }

    fn stored(value: &serde_json::Value) -> Stored<'_> {
        use serde_json::Value;
        match value {
            Value::Null => Stored::Null,
            Value::Bool(b) => Stored::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Stored::UInt(u),
                (None, Some(i), _) => Stored::Int(i),
                (None, None, Some(f)) => Stored::Float(f),
                (None, None, None) => Stored::Json(n.to_string()),
            },
            Value::String(s) => Stored::Text(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Stored::Json(value.to_string()),
        }
    }

    fn restored<E: serde::de::Error>(value: Stored<'_>) -> Result<serde_json::Value, E> {
        use serde_json::Value;
        Ok(match value {
            Stored::Null => Value::Null,
            Stored::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Stored::Int(i) => Value::from(i),
            Stored::UInt(u) => Value::from(u),
            Stored::Bool(b) => Value::Bool(b),
            Stored::Text(t) => Value::String(t.into_owned()),
            Stored::Json(text) => serde_json::from_str(&text).map_err(E::custom)?,
        })
    }

    /// The static name of a fact some detector (or every event, or an absence rule) declares.
    fn static_name(name: &str) -> Option<&'static str> {
        DetectorKind::ALL
            .iter()
            .flat_map(|d| d.facts())
            .chain(EVENT_FACTS)
            .chain(crate::detect::absence::FACTS)
            .chain(crate::detect::sequence::FACTS)
            .map(|&(n, _)| n)
            .find(|&n| n == name)
    }

    pub fn serialize<S: Serializer>(
        facts: &BTreeMap<&'static str, serde_json::Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(facts.iter().map(|(&name, value)| (name, stored(value))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<&'static str, serde_json::Value>, D::Error> {
        let pairs = Vec::<(String, Stored<'static>)>::deserialize(d)?;
        let mut facts = BTreeMap::new();
        for (name, value) in pairs {
            // A fact this build no longer declares (renamed or removed since the checkpoint) is
            // dropped: it only annotates the task, and the rest of the customer is worth more.
            if let Some(name) = static_name(&name) {
                facts.insert(name, restored::<D::Error>(value)?);
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{Engine, EngineConfig, Hit};
    use crate::event::{decode as decode_event, Event};
    use crate::ingest::generator::{generate, StreamSpec};
    use crate::rules::RuleSet;
    use crate::state::{StateStore, Text, DEDUP_IDS};
    use crate::task::{ChangeKind, TaskChange};

    fn ev(json: &str) -> Event {
        decode_event(json.as_bytes()).unwrap()
    }

    /// A customer with something in every part of the state, built by applying events.
    fn rich_state(interner: &Interner) -> CustomerState {
        let mut s = CustomerState::default();
        let lines = [
            r#"{"event_id":"p1","type":"customer_profile","customer_id":"c","ts":"2026-10-01T00:00:00Z","name":"Ana Lee","email":"ana@example.com","language":"fr","segment":"private","home":{"country":"FR","city":"Paris","lat":48.85,"lon":2.35},"timezone":"Europe/Paris","consent":{"email":true}}"#,
            r#"{"event_id":"k1","type":"card_transaction","customer_id":"c","ts":"2026-11-24T10:00:00Z","card_id":"card-1","amount":20,"currency":"EUR","channel":"contactless","status":"approved","merchant":{"name":"Cafe","country":"FR","city":"Paris","lat":48.85,"lon":2.35}}"#,
            r#"{"event_id":"k2","type":"card_transaction","customer_id":"c","ts":"2026-11-24T12:00:00Z","card_id":"card-1","amount":35.5,"currency":"USD","channel":"card_present","status":"approved","merchant":{"name":"Diner","country":"US","city":"New York","lat":40.7,"lon":-74.0}}"#,
            r#"{"event_id":"k3","type":"card_transaction","customer_id":"c","ts":"2026-11-24T12:05:00Z","card_id":"card-2","amount":1,"currency":"EUR","channel":"ecommerce","status":"declined","merchant":{"name":"Shop","country":"GB","city":"London"}}"#,
            r#"{"event_id":"l1","type":"login","customer_id":"c","ts":"2026-11-24T09:00:00Z","channel":"mobile","success":true,"device_id":"phone","geo":{"country":"FR","city":"Paris"}}"#,
            r#"{"event_id":"l2","type":"login","customer_id":"c","ts":"2026-11-24T13:00:00Z","channel":"web","success":false,"device_id":"laptop"}"#,
            r#"{"event_id":"l3","type":"login","customer_id":"c","ts":"2026-11-24T13:01:00Z","channel":"web","success":true,"device_id":"laptop"}"#,
            r#"{"event_id":"t1","type":"transfer","customer_id":"c","ts":"2026-11-24T14:00:00Z","direction":"out","amount":900,"currency":"EUR","counterparty_bank":"Other Bank","own_account":true}"#,
            r#"{"event_id":"s1","type":"support_contact","customer_id":"c","ts":"2026-11-24T15:00:00Z","channel":"phone","reason":"card_blocked","resolved":false}"#,
            r#"{"event_id":"x1","type":"complaint","customer_id":"c","ts":"2026-11-24T16:00:00Z","category":"fees","severity":"high"}"#,
            r#"{"event_id":"o1","type":"product_change","customer_id":"c","ts":"2026-11-01T00:00:00Z","product":"savings","action":"open"}"#,
            r#"{"event_id":"o2","type":"product_change","customer_id":"c","ts":"2026-11-24T17:00:00Z","product":"deposit","action":"close"}"#,
            r#"{"event_id":"n1","type":"travel_notice","customer_id":"c","ts":"2026-11-20T00:00:00Z","countries":["US","CA"],"from":"2026-11-22","to":"2026-11-30"}"#,
            r#"{"event_id":"i1","type":"transfer","customer_id":"c","ts":"2026-09-25T08:00:00Z","direction":"in","amount":2500,"currency":"EUR","counterparty_bank":"Employer Bank"}"#,
            r#"{"event_id":"i2","type":"transfer","customer_id":"c","ts":"2026-10-26T08:00:00Z","direction":"in","amount":2500,"currency":"EUR","counterparty_bank":"Employer Bank"}"#,
            r#"{"event_id":"r1","type":"transfer","customer_id":"c","ts":"2026-11-01T08:00:00Z","direction":"out","amount":800,"currency":"EUR","counterparty_bank":"Landlord Bank"}"#,
            r#"{"event_id":"s2","type":"support_contact","customer_id":"c","ts":"2026-11-24T18:00:00Z","channel":"phone","reason":"Fees","resolved":true}"#,
        ];
        for line in lines {
            s.apply(&ev(line), interner);
        }
        // Wrap the de-duplication ring and the history ring.
        for i in 0..DEDUP_IDS {
            let line = format!(
                r#"{{"event_id":"w{i}","type":"login","customer_id":"c","ts":"2026-11-25T{:02}:00:00Z","channel":"mobile","success":true,"device_id":"phone"}}"#,
                i % 24
            );
            s.apply(&ev(&line), interner);
        }
        s.remember_id("cmd-1");
        s.mark_fired(42, Timestamp(1_000));
        s.mark_fired(7, Timestamp(2_000));
        s.trust(&[Country::parse("KH").unwrap()], &["tablet"]);
        s.timer_at = Some(Timestamp(1_790_000_000_000));
        s.incidents = Some(Box::new(crate::incident::CustomerIncidents {
            open: vec![sample_task()],
            opened: [3, 1],
            earlier: vec![TaskSummary { status: TaskStatus::Resolved, ..sample_task().summary() }],
            resolved: vec![Task { status: TaskStatus::Resolved, ..sample_task() }],
        }));
        let mut learned = crate::state::Learned::default();
        learned.trust_place("card-1", crate::geo::Point { lat: 11.55, lon: 104.92 }, Timestamp(9_000));
        learned.confirmed_spend_eur = 2_500.0;
        learned.care_outcome = Some((Timestamp(8_000), Outcome::Retained));
        s.learned = Some(Box::new(learned));
        s.absences.push(crate::state::PendingAbsence {
            rule: 99,
            at: Timestamp(5_000),
            kind: EventKind::Complaint,
            detail: "fees".into(),
            deadline: Timestamp(5_000 + 72 * 3_600_000),
        });
        s.sequences.push(crate::state::SequenceMark {
            rule: 77,
            at: Timestamp(6_000),
            event: 0xdead_beef,
            link: 1,
            kind: EventKind::Transfer,
            amount_eur: 1_800.0,
            detail: "Far Bank".into(),
        });
        s.partition = 5;
        s
    }

    /// A task with every optional part present.
    fn sample_task() -> Task {
        let facts = BTreeMap::from([
            ("distance_km", serde_json::json!(9_000.5)),
            ("city", serde_json::json!("New York")),
            ("amount", serde_json::Value::Null),
            ("minutes", serde_json::json!(3)),
        ]);
        let evidence = Evidence {
            at: Timestamp(1_000),
            kind: EventKind::CardTransaction,
            event_id: Some("k2".into()),
            summary: "card_present 35.50 USD at Diner, New York US".into(),
            money: Some(Money { amount: 35.5, currency: crate::money::Currency(*b"USD") }),
            country: Some(Country(*b"US")),
            city: Some("New York".into()),
            card_id: Some("card-1".into()),
            lat: Some(40.7),
            lon: Some(-74.0),
            body: None,
        };
        Task {
            id: "tsk_0000000000000001".into(),
            version: 2,
            customer_id: "c".into(),
            queue: Queue::Fraud,
            rules: vec!["impossible-travel".into()],
            priority: 1,
            status: TaskStatus::Open,
            outcome: Some(Outcome::ConfirmedFraud),
            opened_at: Timestamp(1_000),
            updated_at: Timestamp(2_000),
            due_at: Timestamp(3_000),
            title: "Card used far apart".into(),
            explanation: "9000 km in 2 h".into(),
            money_at_risk_eur: 32.66,
            signals: vec![SignalRecord {
                rule: "impossible-travel".into(),
                detector: Some(DetectorKind::ImpossibleTravel),
                severity: Severity::High,
                at: Timestamp(1_000),
                explanation: "9000 km in 2 h".into(),
                facts,
            }],
            context: TaskContext {
                profile_known: true,
                profile: None,
                language: "fr".into(),
                events: vec![evidence.clone(), Evidence { event_id: None, money: None, ..evidence }],
                recent_history: vec![HistoryLine {
                    at: Timestamp(1_000),
                    kind: EventKind::Login,
                    summary: "login · Paris · FR".into(),
                }],
                earlier_tasks: vec![],
                actions: vec!["call".into(), "block_card".into()],
                script: "Bonjour".into(),
                procedure: None,
                open_in_other_queue: vec![],
            },
            work: crate::task::Workflow {
                assignee: Some("ana".into()),
                claimed_at: Some(Timestamp(1_500)),
                last_activity_at: Some(Timestamp(1_600)),
                snoozed_until: Some(Timestamp(5_000)),
                snooze_reason: Some("customer abroad".into()),
                escalated: true,
                first_contact_at: Some(Timestamp(1_700)),
                contact_attempts: vec![crate::task::ContactAttempt {
                    at: Timestamp(1_700),
                    by: "ana".into(),
                    channel: crate::task::ContactChannel::Phone,
                    result: crate::task::ContactResult::Reached,
                    note: "spoke".into(),
                }],
                notes: vec![crate::task::Note { at: Timestamp(1_800), by: "ana".into(), text: "ok".into() }],
                resolved_by: None,
                resolved_at: None,
                resolution_note: None,
                outreach: vec![crate::task::OutreachRecord {
                    at: Timestamp(1_900),
                    job: "tsk_0000000000000001.fraud_confirmation".into(),
                    template: "fraud_confirmation".into(),
                    decision: "sent".into(),
                    reason: "to a***@example.com".into(),
                }],
                customer_answer: Some(crate::task::CustomerAnswer {
                    at: Timestamp(2_000),
                    answer: "no".into(),
                }),
            },
        }
    }

    #[test]
    fn every_part_of_the_state_round_trips() {
        let live = Interner::default();
        let mut original = rich_state(&live);
        original.incidents.as_mut().unwrap().open[0].context.profile =
            original.profile.as_ref().map(|p| p.profile());
        let bytes = encode(&original);
        assert_eq!(bytes[0], FORMAT_VERSION);

        let fresh = Interner::default();
        let restored = decode(&bytes, &fresh).unwrap();
        assert_eq!(encode(&restored), bytes, "encode → decode → encode changes nothing");

        // What the detectors and the incident code read.
        assert_eq!(restored.partition, 0, "the partition is not stored");
        assert_eq!(restored.profile, original.profile);
        assert_eq!(restored.profile_at, original.profile_at);
        let at = |t: &str| Timestamp::parse_rfc3339(t).unwrap();
        use crate::state::dedup::Seen;
        assert_eq!(restored.seen_event("w0", at("2026-11-25T00:00:00Z")), Seen::Duplicate);
        assert_eq!(
            restored.seen_event("k1", at("2026-11-24T10:00:00Z")),
            Seen::Duplicate,
            "every event within the horizon, not only the last {DEDUP_IDS}"
        );
        assert_eq!(restored.seen_event("k1", at("2026-11-23T10:00:00Z")), Seen::New, "another day");
        assert!(restored.has_seen("cmd-1"), "a command id");
        assert_eq!(original.seen, restored.seen);
        assert_eq!(
            original.seen_ids.iter().collect::<Vec<_>>(),
            restored.seen_ids.iter().collect::<Vec<_>>()
        );
        assert_eq!(restored.cards.len(), 2);
        for (a, b) in original.cards.iter().zip(&restored.cards) {
            assert_eq!(a.card_id, b.card_id);
            assert_eq!(a.uses, b.uses);
            assert_eq!(a.cnp.iter().collect::<Vec<_>>(), b.cnp.iter().collect::<Vec<_>>());
            assert_eq!(a.last_seen, b.last_seen);
        }
        assert_eq!(restored.spend.stats(), original.spend.stats());
        assert_eq!(restored.spend.count, original.spend.count);
        let now = Timestamp::parse_rfc3339("2027-01-10T00:00:00Z").unwrap();
        assert_eq!(restored.activity.typical_weekly(now, 1), original.activity.typical_weekly(now, 1));
        assert_eq!(restored.activity.recent_weekly(now), original.activity.recent_weekly(now));
        assert_eq!(
            (restored.activity.first, restored.activity.last),
            (original.activity.first, original.activity.last)
        );
        assert_eq!(restored.logins.devices, original.logins.devices);
        assert!(restored.knows_device("tablet") && restored.knows_device("laptop"));
        assert_eq!(restored.failures_before(now, i64::MAX), 1);
        let pairs = |r: &crate::state::SparseRing<(Timestamp, u64), 4>| r.iter().copied().collect::<Vec<_>>();
        assert_eq!(pairs(&restored.logins.new_devices), pairs(&original.logins.new_devices));
        assert_eq!(pairs(&restored.churn.product_opens), pairs(&original.churn.product_opens));
        assert_eq!(restored.churn.own_transfer_out, original.churn.own_transfer_out);
        assert_eq!(restored.churn.product_closed, original.churn.product_closed);
        assert!(restored.churn.product_closed.is_some());
        assert_eq!(
            restored.money_out.iter().collect::<Vec<_>>(),
            original.money_out.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            restored.contacts.iter().collect::<Vec<_>>(),
            original.contacts.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            restored.complaints.iter().collect::<Vec<_>>(),
            original.complaints.iter().collect::<Vec<_>>()
        );
        assert_eq!(restored.notices, original.notices);
        assert_eq!(restored.trusted_countries, original.trusted_countries);
        let at = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        assert!(restored.trusts_country(Country(*b"CA"), at) && restored.trusts_country(Country(*b"KH"), at));
        assert_eq!(restored.history.len(), 6);
        assert_eq!(restored.history.iter().collect::<Vec<_>>(), original.history.iter().collect::<Vec<_>>());
        assert_eq!(restored.cooldowns, original.cooldowns);
        assert!(restored.in_cooldown(42, Timestamp(1_500), 1_000));
        assert_eq!(restored.timer_at, original.timer_at);
        let (a, b) = (original.incidents.as_deref().unwrap(), restored.incidents.as_deref().unwrap());
        assert_eq!(a.open, b.open);
        assert_eq!(a.opened, b.opened);
        assert_eq!(a.earlier, b.earlier);
        assert_eq!(
            serde_json::to_string(&b.open).unwrap(),
            serde_json::to_string(&a.open).unwrap(),
            "a restored task's JSON is the same"
        );
    }

    #[test]
    fn restored_text_is_shared_through_the_interner() {
        let live = Interner::default();
        let bytes = encode(&rich_state(&live));
        let fresh = Interner::default();
        let a = decode(&bytes, &fresh).unwrap();
        let b = decode(&bytes, &fresh).unwrap();
        let mut shared = 0;
        for (x, y) in a.cards.iter().flat_map(|c| &c.uses).zip(b.cards.iter().flat_map(|c| &c.uses)) {
            assert!(Text::ptr_eq(&x.city, &y.city) && Text::ptr_eq(&x.merchant, &y.merchant));
            assert!(Text::ptr_eq(&x.city, &fresh.intern(&x.city)));
            shared += 2;
        }
        for (x, y) in a.history.iter().zip(b.history.iter()) {
            if let (Some(x), Some(y)) = (x.detail_text(), y.detail_text()) {
                assert!(Text::ptr_eq(x, y) && Text::ptr_eq(x, &fresh.intern(x)));
                shared += 1;
            }
        }
        assert!(shared >= 4, "the state has interned text to share ({shared})");
        assert_eq!(fresh.len(), {
            let mut all: Vec<&str> =
                a.cards.iter().flat_map(|c| &c.uses).flat_map(|u| [&*u.city, &*u.merchant]).collect();
            all.extend(a.history.iter().filter_map(|h| h.detail()));
            all.extend(a.profile.as_ref().map(|p| p.language()));
            all.extend(a.flows.iter().map(|f| &*f.party));
            all.sort_unstable();
            all.dedup();
            all.len()
        });
    }

    #[test]
    fn facts_this_build_does_not_declare_are_dropped() {
        let mut task = sample_task();
        task.signals[0].facts.insert("renamed_since", serde_json::json!(1.5));
        let state = CustomerState {
            incidents: Some(Box::new(crate::incident::CustomerIncidents {
                open: vec![task],
                ..Default::default()
            })),
            ..CustomerState::default()
        };
        let restored = decode(&encode(&state), &Interner::default()).unwrap();
        let facts = &restored.incidents.unwrap().open[0].signals[0].facts;
        assert!(!facts.contains_key("renamed_since"));
        assert_eq!(facts.len(), sample_task().signals[0].facts.len());
    }

    #[test]
    fn empty_state_is_small_and_round_trips() {
        let bytes = encode(&CustomerState::default());
        // 47 bytes before version 4; the spending peaks' eight fortnights add one byte each,
        // version 5's empty events index and dormancy a few more, version 6's marks one.
        assert!(bytes.len() <= 59, "{} bytes", bytes.len());
        let restored = decode(&bytes, &Interner::default()).unwrap();
        assert_eq!(encode(&restored), bytes);
    }

    /// A version-2 row (before absence rules) is the version-3 layout without its last field:
    /// it restores with no pending absence (and none of version 4's and 5's parts), everything
    /// else intact.
    #[test]
    fn version_2_rows_restore_with_no_pending_absence() {
        let mut state = rich_state(&Interner::default());
        state.absences.clear();
        state.peaks = Default::default();
        state.flows = Default::default();
        state.resolved_complaints = Default::default();
        state.seen = Default::default();
        state.dormancy = Default::default();
        state.sequences.clear();
        let v6 = encode(&state);
        let v3_len = v6.len() - v4_tail().len() - v5_tail().len() - v6_tail().len();
        assert_eq!(v6[v3_len - 1], 0, "an empty list is one zero byte, last of version 3");
        let mut v2 = v6[..v3_len - 1].to_vec();
        v2[0] = 2;
        let restored = decode(&v2, &Interner::default()).expect("a version-2 row restores");
        assert_eq!(encode(&restored), v6);
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut bytes = encode(&rich_state(&Interner::default()));
        bytes[0] = 1; // the layout before tasks had a workflow (refused: see the module doc)
        let err = decode(&bytes, &Interner::default()).unwrap_err();
        assert_eq!(err, CodecError::UnknownVersion { found: 1 });
        assert!(err.to_string().contains("version 1"), "{err}");
        bytes[0] = 0;
        assert_eq!(
            decode(&bytes, &Interner::default()).unwrap_err(),
            CodecError::UnknownVersion { found: 0 }
        );
    }

    #[test]
    fn truncated_bytes_are_refused_at_every_length() {
        let bytes = encode(&rich_state(&Interner::default()));
        let interner = Interner::default();
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len], &interner).unwrap_err(), CodecError::Truncated, "{len} bytes");
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&rich_state(&Interner::default()));
        bytes.push(0);
        assert!(matches!(decode(&bytes, &Interner::default()), Err(CodecError::Corrupt(_))));
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let bytes = encode(&rich_state(&Interner::default()));
        let interner = Interner::default();
        let mut rng = fastrand::Rng::with_seed(11);
        let mut refused = 0;
        for i in 1..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff, rng.u8(..)] {
                let mut corrupt = bytes.clone();
                corrupt[i] = value;
                // Either refused, or a state that encodes (and so is whole).
                match decode(&corrupt, &interner) {
                    Ok(state) => drop(encode(&state)),
                    Err(_) => refused += 1,
                }
            }
        }
        for _ in 0..2_000 {
            let mut garbage: Vec<u8> = (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect();
            garbage[0] = FORMAT_VERSION;
            let _ = decode(&garbage, &interner);
        }
        assert!(refused > 0);
    }

    #[test]
    fn invalid_codes_are_refused() {
        let mut state = CustomerState::default();
        state.trusted_countries.push(Country(*b"KH"));
        let mut bytes = encode(&state);
        let at = bytes.windows(2).position(|w| w == b"KH").unwrap();
        bytes[at] = b'k';
        assert!(matches!(decode(&bytes, &Interner::default()), Err(CodecError::Corrupt(_))));
    }

    /// The stored bytes of a fixed state. If this fails, the layout changed: bump
    /// `FORMAT_VERSION` (and decide what happens to older checkpoints), then update the values.
    #[test]
    fn layout_is_pinned() {
        let bytes = encode(&rich_state(&Interner::default()));
        let pin = (bytes.len(), xxhash_rust::xxh3::xxh3_64(&bytes));
        assert_eq!(
            pin,
            (2125, 4335172475230335980),
            "the stored layout of CustomerState changed: bump FORMAT_VERSION, then pin the new values"
        );
    }

    /// Version-3, 4 and 5 rows are read as version 6 with the parts added since empty, and
    /// everything else kept.
    #[test]
    fn version_3_4_and_5_rows_are_read_with_the_new_parts_empty() {
        let mut state = rich_state(&Interner::default());
        state.sequences.clear();
        let v6 = encode(&state);
        assert!(v6.ends_with(&v6_tail()), "the sequence marks are last");
        let mut v5 = v6[..v6.len() - v6_tail().len()].to_vec();
        v5[0] = 5;
        assert_eq!(encode(&decode(&v5, &Interner::default()).unwrap()), v6);
        state.seen = Default::default();
        state.dormancy = Default::default();
        let v6 = encode(&state);
        let mut v4 = v6[..v6.len() - v6_tail().len() - v5_tail().len()].to_vec();
        v4[0] = 4;
        assert_eq!(encode(&decode(&v4, &Interner::default()).unwrap()), v6);
        state.peaks = Default::default();
        state.flows = Default::default();
        state.resolved_complaints = Default::default();
        let v6 = encode(&state);
        let mut v3 = v6[..v6.len() - v6_tail().len() - v5_tail().len() - v4_tail().len()].to_vec();
        v3[0] = 3;
        let restored = decode(&v3, &Interner::default()).unwrap();
        assert_eq!(encode(&restored), v6);
        assert!(restored.flows.is_empty() && restored.history.len() == state.history.len());
    }

    /// A version-4 row's ring holds event ids: they still count as seen after the upgrade.
    #[test]
    fn event_ids_in_a_version_4_ring_are_still_duplicates() {
        let interner = Interner::default();
        let mut state = CustomerState::default();
        let e = crate::event::decode(
            br#"{"event_id":"old-1","type":"login","customer_id":"c","ts":"2026-11-25T10:00:00Z","channel":"mobile","success":true,"device_id":"p"}"#,
        )
        .unwrap();
        state.remember_id("old-1"); // what version 4 did with an applied event's id
        let v6 = encode(&state);
        let mut v4 = v6[..v6.len() - v6_tail().len() - v5_tail().len()].to_vec();
        v4[0] = 4;
        let restored = decode(&v4, &interner).unwrap();
        assert_eq!(restored.seen_event("old-1", e.ts), crate::state::dedup::Seen::Duplicate);
    }

    /// What processing one event produced, in comparable form.
    type Produced = (bool, Vec<(usize, bool)>, Vec<TaskChange>);

    fn run(engine: &Engine, rules: &RuleSet, events: &[Event]) -> Vec<Produced> {
        events
            .iter()
            .map(|e| {
                let p = engine.process(rules, e);
                (p.duplicate, p.hits.iter().map(|&Hit { rule, shadow }| (rule, shadow)).collect(), p.changes)
            })
            .collect()
    }

    /// Replaces every customer's state with its encoded and decoded copy, in a new interner:
    /// what a restart does (the engine keeps its timer queue and watermark, which are not
    /// customer state). Checks encode → decode → encode is the identity on the way.
    fn restore_all(engine: &mut Engine) -> usize {
        let restored = StateStore::default();
        let mut bytes_total = 0;
        for entry in engine.state.customers.iter() {
            let bytes = encode(entry.value());
            bytes_total += bytes.len();
            let state = decode(&bytes, &restored.interner).unwrap();
            assert_eq!(encode(&state), bytes, "customer {}", entry.key());
            restored.customers.insert(entry.key().clone(), Box::new(state));
        }
        assert_eq!(restored.len(), engine.state.len());
        engine.state = restored;
        bytes_total
    }

    /// For a realistic stream (planted incidents, redeliveries, late events), restoring every
    /// customer from bytes midway changes nothing the rest of the stream produces: the detectors
    /// and the incident code see the same state.
    #[test]
    fn restored_customers_continue_exactly_like_the_originals() {
        let rules = RuleSet::load_dir(Path::new("rules")).expect("default rules load");
        let spec = StreamSpec { customers: 60, days: 64, seed: 21, scenarios: true, noise: true };
        let events: Vec<Event> =
            generate(&spec).lines.iter().map(|l| decode_event(l.as_bytes()).unwrap()).collect();

        let original = Engine::new(EngineConfig::default());
        let expected = run(&original, &rules, &events);

        // Just after the first task opens (so a task is stored, then enriched or joined by
        // others), and twice later on, before the last change.
        let first_change = expected.iter().position(|p| !p.2.is_empty()).expect("the stream opens tasks");
        let last_change = expected.iter().rposition(|p| !p.2.is_empty()).expect("the stream opens tasks");
        let after = last_change - first_change;
        for cut in [first_change + 1, first_change + after / 3, first_change + 2 * after / 3] {
            let mut engine = Engine::new(EngineConfig::default());
            run(&engine, &rules, &events[..cut]);
            let with_tasks = engine
                .state
                .customers
                .iter()
                .filter(|c| c.incidents.as_ref().is_some_and(|i| !i.open.is_empty()))
                .count();
            assert!(with_tasks > 0, "some customers have open tasks at the cut");
            restore_all(&mut engine);
            let rest = run(&engine, &rules, &events[cut..]);
            assert_eq!(rest.len(), expected[cut..].len());
            for (i, (got, want)) in rest.iter().zip(&expected[cut..]).enumerate() {
                assert_eq!(
                    got,
                    want,
                    "event {} ({}) after restoring at {cut}",
                    cut + i,
                    events[cut + i].event_id
                );
            }
            let enriched = rest.iter().flat_map(|o| &o.2).filter(|c| c.kind == ChangeKind::Enriched).count();
            let opened = rest.iter().flat_map(|o| &o.2).filter(|c| c.kind == ChangeKind::Opened).count();
            assert!(opened + enriched > 0, "the rest of the stream changes tasks");
            // And the final states are the same.
            for entry in original.state.customers.iter() {
                let restored = engine.state.customers.get(entry.key()).unwrap();
                assert_eq!(encode(&restored), encode(entry.value()), "customer {}", entry.key());
            }
        }
    }
}
