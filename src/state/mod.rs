//! Per-customer state: what we remember about each customer, in a `DashMap` keyed by customer id.
//!
//! Everything here is event-time and bounded: rings of recent items, fixed-size baselines, and a
//! small set of recent event ids for de-duplication. Detectors read a customer's state *before*
//! the event is applied (so an event is compared with the past, not with itself); the engine
//! then calls [`CustomerState::apply`].
//!
//! Invariants:
//! - an event never moves "latest" facts backwards: a late event is merged by its timestamp
//!   (the profile, last activity and per-card places keep the newest by event time);
//! - memory per customer is bounded whatever the stream does (rings, capped vectors);
//! - nothing here does I/O or reads the wall clock.

pub mod baseline;
pub mod codec;
pub mod dedup;
pub mod flows;
pub mod ring;
pub mod sparse;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::event::{
    CardChannel, ComplaintSeverity, Event, EventBody, EventKind, ProductAction, Profile, Segment,
    TravelNotice,
};
use crate::geo::{Country, Point};
use crate::incident::CustomerIncidents;
use crate::money::{Currency, Money};
use crate::time::{Timestamp, HOUR};

pub use baseline::{ActivityBaseline, SpendBaseline, SpendPeaks, SpendStats};
pub use flows::{Flow, FlowKind, Flows};
pub use ring::Ring;
pub use sparse::{HeapSize, Sparse, SparseList, SparsePart, SparseRing, Text};

/// How many recent command ids each customer remembers for de-duplication (events are
/// remembered over the whole horizon by [`dedup::SeenEvents`]).
pub const DEDUP_IDS: usize = 16;
/// Physical card uses kept per card beyond the allowed lateness (every use within it is kept,
/// up to [`MAX_PHYSICAL_USES`]); older than [`PHYSICAL_HORIZON`] before the newest are dropped.
pub const PHYSICAL_USES: usize = 3;
/// The most physical uses a card keeps, however many fall within the allowed lateness.
pub const MAX_PHYSICAL_USES: usize = 16;
/// No flight takes longer than this, so older physical uses cannot make an impossible pair.
pub const PHYSICAL_HORIZON: i64 = 26 * HOUR;
/// Cards tracked per customer (the most recently used are kept).
pub const MAX_CARDS: usize = 4;
/// Card-not-present attempts remembered per card (for card testing).
pub const CNP_ATTEMPTS: usize = 8;
/// Known login devices per customer.
pub const MAX_DEVICES: usize = 8;
/// Countries a customer confirmed, kept per customer (the oldest forgotten first).
pub const MAX_TRUSTED_COUNTRIES: usize = 16;
/// Active travel notices per customer.
pub const MAX_NOTICES: usize = 4;

/// A stable 64-bit hash of text (event ids, reasons, devices): xxh3, the same on every machine.
pub fn hash_text(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The hasher of our maps: foldhash, one-shot on short keys (customer ids, interned names), about
/// a tenth of the instructions of the streaming xxh3 hasher it replaced (which was 15% of the
/// engine's instructions); a fixed seed keeps iteration orders the same from run to run. Keys
/// come from our own producers' ids, and per-key work is bounded, so hash flooding is not a
/// concern worth SipHash's cost here.
pub type FastHash = foldhash::fast::FixedState;

/// Shares one copy of repeated text (city and merchant names) among all customers.
#[derive(Debug, Default)]
pub struct Interner {
    strings: DashMap<Text, (), FastHash>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn intern(&self, text: &str) -> Text {
        if let Some(hit) = self.strings.get(text) {
            return hit.key().clone();
        }
        self.strings.entry(Text::new(text)).or_insert(()).key().clone()
    }

    /// Bytes of memory the interner holds: its table and one copy of each string.
    pub fn memory_bytes(&self) -> usize {
        let table = self.strings.capacity() * (size_of::<Text>() + 1);
        table + self.strings.iter().map(|s| s.key().copy_bytes()).sum::<usize>()
    }

    /// Number of distinct strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// The customer's latest profile, compact: what rules and detectors read on every event
/// (segment, language, home country, e-mail consent) at hand, the whole profile encoded (its
/// names and contacts are read only when a task is written). Stored as the [`Profile`] it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactProfile {
    /// The whole profile, in the checkpoint's encoding.
    encoded: Box<[u8]>,
    /// Shared among customers (two letters).
    language: Text,
    segment: Segment,
    home_country: Option<Country>,
    email_consent: bool,
}

impl CompactProfile {
    /// The compact form of `profile`, its language shared through `interner`.
    pub fn new(profile: &Profile, interner: &Interner) -> CompactProfile {
        let encoded = postcard::to_allocvec(profile).expect("a profile serializes to memory");
        CompactProfile {
            encoded: encoded.into_boxed_slice(),
            language: interner.intern(&profile.language),
            segment: profile.segment,
            home_country: profile.home.as_ref().map(|h| h.country),
            email_consent: profile.email_consent,
        }
    }

    /// The whole profile.
    pub fn profile(&self) -> Profile {
        postcard::from_bytes(&self.encoded).expect("a profile encoded by `CompactProfile::new` decodes")
    }

    /// ISO 639-1 language code (`en` when the profile did not say).
    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn segment(&self) -> Segment {
        self.segment
    }

    /// The home's country, if the profile has a home.
    pub fn home_country(&self) -> Option<&Country> {
        self.home_country.as_ref()
    }

    pub fn email_consent(&self) -> bool {
        self.email_consent
    }

    /// The name, if the profile has one (decodes the profile).
    pub fn name(&self) -> Option<String> {
        self.profile().name
    }

    /// Takes the language's shared copy from `interner`.
    pub fn share_language(&mut self, interner: &Interner) {
        self.language = interner.intern(&self.language);
    }

    /// Heap bytes it owns (the language is the interner's).
    pub fn heap_bytes(&self) -> usize {
        self.encoded.len()
    }
}

/// Stored as the whole [`Profile`] (the checkpoint layout is unchanged).
impl Serialize for CompactProfile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.profile().serialize(serializer)
    }
}

/// Its language unshared until re-interned (see `codec`).
impl<'de> Deserialize<'de> for CompactProfile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let profile = Profile::deserialize(d)?;
        Ok(CompactProfile::new(&profile, &Interner::default()))
    }
}

/// Where and when a card was physically used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicalUse {
    pub at: Timestamp,
    pub lat: f32,
    pub lon: f32,
    pub country: Country,
    pub channel: CardChannel,
    pub city: Text,
    pub merchant: Text,
    pub money: Money,
    pub event_id: u64,
}

impl PhysicalUse {
    /// The coordinates.
    pub fn point(&self) -> Point {
        Point { lat: f64::from(self.lat), lon: f64::from(self.lon) }
    }
}

/// A card-not-present attempt that looks like card testing (small or declined).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CnpAttempt {
    pub at: Timestamp,
    pub amount_eur: f32,
    pub declined: bool,
}

/// What we remember about one card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardState {
    pub card_id: Box<str>,
    /// Recent physical uses, sorted by time, oldest first.
    pub uses: Vec<PhysicalUse>,
    /// Recent small or declined card-not-present attempts.
    pub cnp: Ring<CnpAttempt, CNP_ATTEMPTS>,
    pub last_seen: Timestamp,
}

/// A support contact, remembered by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactMark {
    pub at: Timestamp,
    pub reason: u64,
    pub resolved: bool,
}

/// A complaint, remembered by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplaintMark {
    pub at: Timestamp,
    pub high: bool,
    pub category: u64,
}

/// Logins: recent failures, known devices and the last risky success.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginState {
    /// Failed logins (allocated on the first).
    pub failures: SparseRing<Timestamp, 8>,
    /// Hashes of devices that logged in successfully before (or that the customer confirmed).
    pub devices: Vec<u64>,
    /// Recent successful logins from a device not seen before (when the customer already had
    /// one): the middle step of an account takeover.
    pub new_devices: SparseRing<(Timestamp, u64), 4>,
}

impl LoginState {
    /// Remembers a device (the oldest forgotten past [`MAX_DEVICES`]), growing one slot at a
    /// time: most customers have one or two.
    fn add_device(&mut self, device: u64) {
        if self.devices.len() >= MAX_DEVICES {
            self.devices.remove(0);
        }
        if self.devices.len() == self.devices.capacity() {
            self.devices.reserve_exact(1);
        }
        self.devices.push(device);
    }
}

/// Money leaving the account (outgoing transfer or card-not-present payment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MoneyOut {
    pub at: Timestamp,
    pub money_eur: f32,
}

/// Signals that a customer may be leaving, by when they last happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChurnMarks {
    /// Money moved to the customer's own account at another bank.
    pub own_transfer_out: Option<(Timestamp, f32)>,
    /// A product closed and not replaced (no open of the same product around it).
    pub product_closed: Option<(Timestamp, u64)>,
    /// Recent product opens, to tell a replacement from a loss.
    pub product_opens: SparseRing<(Timestamp, u64), 4>,
}

/// What a customer without any sign of leaving reads.
static NO_CHURN_MARKS: ChurnMarks =
    ChurnMarks { own_transfer_out: None, product_closed: None, product_opens: SparseRing::new() };

impl SparsePart for ChurnMarks {
    fn empty() -> &'static Self {
        &NO_CHURN_MARKS
    }

    fn is_empty(&self) -> bool {
        self.own_transfer_out.is_none() && self.product_closed.is_none() && self.product_opens.is_empty()
    }
}

impl HeapSize for ChurnMarks {
    fn heap_bytes(&self) -> usize {
        self.product_opens.heap_bytes()
    }
}

/// A summary of one recent event, for the agent's view of the customer's history. Compact (32
/// bytes): the money, country and detail are read through methods.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub at: Timestamp,
    /// The money's amount (0 without money).
    amount: f64,
    /// City, merchant, reason, product or category: the one word that says what it was.
    detail: Option<Text>,
    /// The money's currency (meaningful with [`HISTORY_HAS_MONEY`]).
    currency: Currency,
    /// The country (meaningful with [`HISTORY_HAS_COUNTRY`]).
    country: Country,
    pub kind: EventKind,
    /// Which of money and country the item has.
    flags: u8,
}

const HISTORY_HAS_MONEY: u8 = 1;
const HISTORY_HAS_COUNTRY: u8 = 2;

impl HistoryItem {
    /// An item of this kind at `at`, with nothing else yet.
    pub fn new(at: Timestamp, kind: EventKind) -> HistoryItem {
        HistoryItem {
            at,
            amount: 0.0,
            detail: None,
            currency: Currency(*b"EUR"),
            country: Country(*b"ZZ"),
            kind,
            flags: 0,
        }
    }

    /// The item with `money`, `country` and `detail` set.
    pub fn with(mut self, money: Option<Money>, country: Option<Country>, detail: Option<Text>) -> Self {
        self.set_money(money);
        self.set_country(country);
        self.detail = detail;
        self
    }

    /// The money it moved, if any.
    pub fn money(&self) -> Option<Money> {
        (self.flags & HISTORY_HAS_MONEY != 0)
            .then_some(Money { amount: self.amount, currency: self.currency })
    }

    /// The country it happened in, if known.
    pub fn country(&self) -> Option<Country> {
        (self.flags & HISTORY_HAS_COUNTRY != 0).then_some(self.country)
    }

    /// City, merchant, reason, product or category: the one word that says what it was.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The detail's shared copy.
    pub fn detail_text(&self) -> Option<&Text> {
        self.detail.as_ref()
    }

    /// The detail's shared copy, to re-intern it.
    pub fn detail_mut(&mut self) -> Option<&mut Text> {
        self.detail.as_mut()
    }

    fn set_money(&mut self, money: Option<Money>) {
        match money {
            Some(m) => {
                (self.amount, self.currency) = (m.amount, m.currency);
                self.flags |= HISTORY_HAS_MONEY;
            }
            None => self.flags &= !HISTORY_HAS_MONEY,
        }
    }

    fn set_country(&mut self, country: Option<Country>) {
        match country {
            Some(c) => {
                self.country = c;
                self.flags |= HISTORY_HAS_COUNTRY;
            }
            None => self.flags &= !HISTORY_HAS_COUNTRY,
        }
    }
}

impl Default for HistoryItem {
    fn default() -> Self {
        HistoryItem::new(Timestamp(0), EventKind::Login)
    }
}

/// A history item as stored: its fields as the uncompacted item had them, in that order (the
/// checkpoint layout is unchanged).
#[derive(Serialize, Deserialize)]
struct StoredHistoryItem<Detail> {
    at: Timestamp,
    kind: EventKind,
    money: Option<Money>,
    country: Option<Country>,
    detail: Option<Detail>,
}

impl Serialize for HistoryItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredHistoryItem {
            at: self.at,
            kind: self.kind,
            money: self.money(),
            country: self.country(),
            detail: self.detail(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HistoryItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredHistoryItem::<Text>::deserialize(d)?;
        Ok(HistoryItem::new(stored.at, stored.kind).with(stored.money, stored.country, stored.detail))
    }
}

/// Places trusted per card, kept per customer (the oldest forgotten first).
pub const MAX_TRUSTED_PLACES: usize = 8;

/// A place where a card's use was confirmed legitimate: a trip between trusted places is not
/// impossible travel for that card until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrustedPlace {
    /// [`hash_text`] of the card id.
    pub card: u64,
    pub lat: f32,
    pub lon: f32,
    pub until: Timestamp,
}

/// What outcomes taught about a customer (the feedback loop).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Places confirmed per card (impossible travel resolved `legitimate`).
    pub places: Vec<TrustedPlace>,
    /// The largest payment the customer confirmed as theirs (amount anomaly resolved
    /// `legitimate`), in euros: payments up to it are part of their normal.
    pub confirmed_spend_eur: f32,
    /// The last care outcome and when.
    pub care_outcome: Option<(Timestamp, crate::task::Outcome)>,
}

impl Learned {
    /// True if `card`'s use at (`lat`, `lon`) is at a place confirmed for it (within `radius_km`)
    /// at `at`.
    pub fn trusts_place(&self, card: &str, point: Point, radius_km: f64, at: Timestamp) -> bool {
        let card = hash_text(card);
        self.places.iter().any(|p| {
            p.card == card
                && at <= p.until
                && point.distance_km(&Point { lat: f64::from(p.lat), lon: f64::from(p.lon) }) <= radius_km
        })
    }

    /// Stops trusting every place within a kilometre of `point` for `card` (a reopened
    /// resolution withdrawn).
    pub fn distrust_place(&mut self, card: &str, point: Point) {
        let card = hash_text(card);
        self.places.retain(|p| {
            !(p.card == card
                && point.distance_km(&Point { lat: f64::from(p.lat), lon: f64::from(p.lon) }) < 1.0)
        });
    }

    /// Trusts a place for a card until `until` (replacing an older entry for the same spot).
    pub fn trust_place(&mut self, card: &str, point: Point, until: Timestamp) {
        let card = hash_text(card);
        self.places.retain(|p| {
            !(p.card == card
                && point.distance_km(&Point { lat: f64::from(p.lat), lon: f64::from(p.lon) }) < 1.0)
        });
        if self.places.len() >= MAX_TRUSTED_PLACES {
            self.places.remove(0);
        }
        self.places.push(TrustedPlace { card, lat: point.lat as f32, lon: point.lon as f32, until });
    }
}

/// Resolved complaint categories remembered per customer (for a complaint's recurrence).
pub const MAX_RESOLVED_COMPLAINTS: usize = 4;

/// A silence at least this long, then activity, is a return from dormancy (see [`Dormancy`]).
pub const DORMANT_AFTER: i64 = 28 * crate::time::DAY;

/// What a dormant-account drain is judged by: the money the customer ever received, and the
/// last return from a silence of at least [`DORMANT_AFTER`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dormancy {
    /// Euros received by incoming transfers (not from the customer's own accounts), ever.
    pub received_eur: f32,
    /// When the customer last came back after a long silence, and how many days it lasted.
    pub woke: Option<(Timestamp, u32)>,
}

/// What a customer who never received money nor slept reads.
static NO_DORMANCY: Dormancy = Dormancy { received_eur: 0.0, woke: None };

impl SparsePart for Dormancy {
    fn empty() -> &'static Self {
        &NO_DORMANCY
    }

    fn is_empty(&self) -> bool {
        *self == NO_DORMANCY
    }
}

impl HeapSize for Dormancy {
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Pending absences one customer can hold (one per absence rule).
pub const MAX_PENDING_ABSENCES: usize = 8;

/// An absence rule's anchor ("after X") still waiting: if no matching "Y" arrives before
/// `deadline`, the rule fires at the deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAbsence {
    /// The rule, by [`crate::rules::Rule::id_hash`] (stable across reloads).
    pub rule: u64,
    /// The anchor event: when, its type, and what it was about (a complaint's category, a
    /// product, a contact's reason).
    pub at: Timestamp,
    pub kind: EventKind,
    pub detail: Box<str>,
    pub deadline: Timestamp,
}

/// Marks of sequence links one customer holds, for all sequence rules together.
pub const MAX_SEQUENCE_MARKS: usize = 12;

/// An event that matched a link of a sequence rule ("after X, then Y within T"), kept while a
/// chain through it can still complete: what the chain's evidence and facts need of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceMark {
    /// The rule, by [`crate::rules::Rule::id_hash`].
    pub rule: u64,
    pub at: Timestamp,
    /// A fingerprint of the event id: one event is never two links of a chain.
    pub event: u32,
    /// Which link (0 is `after`).
    pub link: u8,
    pub kind: EventKind,
    /// The money moved, in euros (0 without money).
    pub amount_eur: f32,
    /// What the event was about (a contact's reason, a payee's bank, a login's device city).
    pub detail: Box<str>,
}

/// Everything we remember about one customer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomerState {
    pub profile: Option<CompactProfile>,
    /// Event time of the profile held (a late, older profile does not replace it).
    pub profile_at: Timestamp,
    /// Hashes of the last command ids applied (allocated on the first command: most customers
    /// get none). Checkpoints written before format 5 hold event ids here too, still honoured.
    seen_ids: SparseRing<u64, DEDUP_IDS>,
    pub cards: Vec<CardState>,
    pub spend: SpendBaseline,
    pub activity: ActivityBaseline,
    pub logins: LoginState,
    pub money_out: Ring<MoneyOut, 4>,
    /// Support contacts (allocated on the first: most customers have none).
    pub contacts: SparseRing<ContactMark, 8>,
    pub complaints: SparseRing<ComplaintMark, 4>,
    pub churn: Sparse<ChurnMarks>,
    /// Travel notices: countries trusted for a period.
    pub notices: SparseList<TravelNotice>,
    /// Countries the customer confirmed ("yes, that was me").
    pub trusted_countries: SparseList<Country>,
    pub history: Ring<HistoryItem, 6>,
    /// Per rule (by id hash), when it last fired for this customer.
    pub cooldowns: SparseList<(u64, Timestamp)>,
    /// When this customer's pending event-time timer fires, if one is pending.
    pub timer_at: Option<Timestamp>,
    /// Open and earlier tasks; `None` for the many customers who never had one.
    pub incidents: Option<Box<CustomerIncidents>>,
    /// What agents' and customers' answers taught; `None` for most customers.
    pub learned: Option<Box<Learned>>,
    /// Absence rules waiting for their deadline ("after X, no Y within T"): at most
    /// [`MAX_PENDING_ABSENCES`], one per rule.
    pub absences: SparseList<PendingAbsence>,
    /// The longer normal of card spending: the largest payment per fortnight for four months.
    pub peaks: SpendPeaks,
    /// Recurring flows (income, payments, regular card payments) and candidates (see `flows`).
    pub flows: Flows,
    /// Complaints resolved (their category, when): a new complaint in one of these categories
    /// means the fix did not hold. At most [`MAX_RESOLVED_COMPLAINTS`], the newest kept. Last in
    /// the stored layout (see `codec`).
    pub resolved_complaints: SparseList<(Timestamp, u64)>,
    /// The events applied within [`dedup::HORIZON_DAYS`] of the newest (a redelivery days later
    /// never counts twice). Last in the stored layout (see `codec`).
    pub seen: dedup::SeenEvents,
    /// Money received and the last return from a long silence (allocated on the first).
    pub dormancy: Sparse<Dormancy>,
    /// Links of sequence rules matched recently (see `detect::sequence`): at most
    /// [`MAX_SEQUENCE_MARKS`]. Last in the stored layout.
    pub sequences: SparseList<SequenceMark>,
    /// The input partition that owns this customer (0 until set). Not stored with the state:
    /// whoever restores a customer sets it.
    #[serde(skip)]
    pub partition: i32,
    /// The engine's note that this customer needs no timer: a key of the week of event time and
    /// the rule set in which it found so, kept while nothing that could change that has arrived
    /// (see `engine::schedule`); 0: unknown. A cache, not stored: a restored customer asks again.
    #[serde(skip)]
    pub no_timer_week: u32,
}

impl CustomerState {
    /// True if a command with this id was already applied (a redelivery), or an event with this
    /// id by a checkpoint written before format 5.
    pub fn has_seen(&self, id: &str) -> bool {
        let h = hash_text(id);
        self.seen_ids.iter().any(|&s| s == h)
    }

    /// Whether an event with this id and time was already applied (see [`dedup::Seen`]).
    pub fn seen_event(&self, event_id: &str, at: Timestamp) -> dedup::Seen {
        // Most customers never had a command nor a checkpoint from before format 5: no hash.
        if !self.seen_ids.is_empty() && self.has_seen(event_id) {
            return dedup::Seen::Duplicate;
        }
        self.seen.check(event_id, at)
    }

    /// Remembers an id (of a command) so that its redelivery is recognised by [`Self::has_seen`].
    pub fn remember_id(&mut self, id: &str) {
        self.seen_ids.push(hash_text(id));
    }

    /// The card's state, if the card was seen.
    pub fn card(&self, card_id: &str) -> Option<&CardState> {
        self.cards.iter().find(|c| &*c.card_id == card_id)
    }

    /// True if `country` is the home country, confirmed by the customer, or covered by a travel
    /// notice at `at`.
    pub fn trusts_country(&self, country: Country, at: Timestamp) -> bool {
        self.profile.as_ref().and_then(CompactProfile::home_country) == Some(&country)
            || self.trusted_countries.contains(&country)
            || self.notices.iter().any(|n| n.from <= at && at <= n.to && n.countries.contains(&country))
    }

    /// True if the device logged in successfully before or was confirmed by the customer.
    pub fn knows_device(&self, device_id: &str) -> bool {
        self.logins.devices.contains(&hash_text(device_id))
    }

    /// True if the customer paid, or was paid by, this counterparty (a bank) before, as far as
    /// the recurring flows (and their candidates) and the recent history remember.
    pub fn knows_party(&self, party: &str) -> bool {
        let key = flows::party_key(party);
        self.flows.iter().any(|f| matches!(f.kind, FlowKind::Payment | FlowKind::Income) && f.key == key)
            || self.history.iter().any(|h| h.kind == EventKind::Transfer && h.detail() == Some(party))
    }

    /// The customer's last income in euros: the latest payment of a payer (a recurring income or
    /// a candidate) received within 45 days before `now`.
    pub fn last_income_eur(&self, now: Timestamp) -> Option<f64> {
        self.flows
            .iter()
            .filter(|f| {
                f.kind == FlowKind::Income
                    && f.last_at <= now
                    && now.millis_since(f.last_at) <= 45 * crate::time::DAY
            })
            .max_by_key(|f| f.last_at)
            .map(|f| f64::from(f.amount_eur))
    }

    /// Successful-or-not logins that failed within `window` before `at`.
    pub fn failures_before(&self, at: Timestamp, window: i64) -> u32 {
        self.logins.failures.iter().filter(|&&f| f <= at && at.millis_since(f) <= window).count() as u32
    }

    /// Applies an event to the state. Call after detectors have read the state. Cards keep
    /// their last [`PHYSICAL_USES`] physical uses (see [`Self::apply_late`]).
    pub fn apply(&mut self, event: &Event, interner: &Interner) {
        self.apply_late(event, interner, 0);
    }

    /// [`Self::apply`] for an engine that accepts events up to `allowed_lateness` late
    /// (milliseconds): a card keeps every physical use within that of its newest, and the one
    /// before them, so a late use is compared with the uses around it in event time, whatever
    /// arrived in between (at most [`MAX_PHYSICAL_USES`]).
    pub fn apply_late(&mut self, event: &Event, interner: &Interner, allowed_lateness: i64) {
        self.seen.record(&event.event_id, event.ts);
        let at = event.ts;
        if event.kind() != EventKind::CustomerProfile {
            if let Some(last) = self.activity.last.filter(|&last| at.millis_since(last) >= DORMANT_AFTER) {
                let days = (at.millis_since(last) / crate::time::DAY) as u32;
                self.dormancy.get_mut().woke = Some((at, days));
            }
            self.activity.record(at);
        }
        let mut item = HistoryItem::new(at, event.kind());
        match &event.body {
            EventBody::CustomerProfile(p) => {
                if self.profile.is_none() || at >= self.profile_at {
                    self.profile = Some(CompactProfile::new(p, interner));
                    self.profile_at = at;
                }
                return; // profiles are not "history"
            }
            EventBody::CardTransaction(t) => {
                item =
                    item.with(Some(t.money), Some(t.place.country), Some(interner.intern(&t.merchant_name)));
                let eur = t.money.to_eur();
                if t.approved {
                    if let Some(eur) = eur {
                        self.spend.record(eur);
                        self.peaks.record(at, eur);
                        // Only payments well above the customer's everyday ones can be a bill
                        // worth remembering; everyday ones would push the bills out.
                        if eur >= flows::CARD_FLOW_MIN_EUR
                            && self.spend.is_above_median(eur, flows::CARD_FLOW_MEDIANS)
                        {
                            let party = flows::card_party(t);
                            flows::observe(&mut self.flows, FlowKind::Card, party, eur, at, interner);
                        }
                    }
                }
                let card = self.card_mut(&t.card_id, at);
                // A declined card-present attempt still shows where the card physically is.
                if t.channel.is_physical() {
                    if let Some(p) = t.place.point {
                        let new_use = PhysicalUse {
                            at,
                            lat: p.lat as f32,
                            lon: p.lon as f32,
                            country: t.place.country,
                            channel: t.channel,
                            city: interner.intern(&t.place.city),
                            merchant: interner.intern(&t.merchant_name),
                            money: t.money,
                            event_id: hash_text(&event.event_id),
                        };
                        insert_physical_use(&mut card.uses, new_use, allowed_lateness);
                    }
                }
                if !t.channel.is_physical() {
                    // An amount in an unknown currency is never "small" for card testing, and
                    // counts as no known money for takeover amounts.
                    let amount_eur = eur.unwrap_or(f64::MAX) as f32;
                    card.cnp.push(CnpAttempt { at, amount_eur, declined: !t.approved });
                    if t.approved {
                        self.money_out.push(MoneyOut { at, money_eur: eur.unwrap_or(0.0) as f32 });
                    }
                }
            }
            EventBody::Login(l) => {
                item = item.with(
                    None,
                    l.geo.as_ref().map(|g| g.country),
                    l.geo.as_ref().map(|g| interner.intern(&g.city)),
                );
                let device = hash_text(&l.device_id);
                if l.success {
                    if !self.logins.devices.contains(&device) {
                        if !self.logins.devices.is_empty() {
                            self.logins.new_devices.push((at, device));
                        }
                        self.logins.add_device(device);
                    }
                } else {
                    self.logins.failures.push(at);
                }
            }
            EventBody::Transfer(t) => {
                item = item.with(
                    Some(t.money),
                    None,
                    t.counterparty_bank.as_deref().map(|b| interner.intern(b)),
                );
                let eur = t.money.to_eur().unwrap_or(0.0) as f32;
                if !t.outgoing && !t.own_account && eur > 0.0 {
                    let d = self.dormancy.get_mut();
                    d.received_eur = (d.received_eur + eur).min(f32::MAX);
                }
                // Money between the customer's own accounts is neither income nor a payment.
                if let (false, Some(bank)) = (t.own_account, t.counterparty_bank.as_deref()) {
                    let kind = if t.outgoing { FlowKind::Payment } else { FlowKind::Income };
                    flows::observe(&mut self.flows, kind, bank, f64::from(eur), at, interner);
                }
                if t.outgoing {
                    self.money_out.push(MoneyOut { at, money_eur: eur });
                    if t.own_account && self.churn.own_transfer_out.is_none_or(|(prev, _)| prev <= at) {
                        self.churn.get_mut().own_transfer_out = Some((at, eur));
                    }
                }
            }
            EventBody::SupportContact(c) => {
                item = item.with(None, None, Some(interner.intern(&c.reason)));
                self.contacts.push(ContactMark { at, reason: hash_text(&c.reason), resolved: c.resolved });
                // A contact resolved about a complaint's category resolves that complaint.
                if c.resolved {
                    let reason = hash_text(&c.reason);
                    if self.complaints.iter().any(|m| m.category == reason && m.at <= at) {
                        self.resolve_complaint(reason, at);
                    }
                }
            }
            EventBody::Complaint(c) => {
                item = item.with(None, None, Some(interner.intern(&c.category)));
                self.complaints.push(ComplaintMark {
                    at,
                    high: c.severity == ComplaintSeverity::High,
                    category: hash_text(&c.category),
                });
            }
            EventBody::ProductChange(p) => {
                item = item.with(None, None, Some(interner.intern(&p.product)));
                let product = hash_text(&p.product);
                match p.action {
                    ProductAction::Open => {
                        let churn = self.churn.get_mut();
                        churn.product_opens.push((at, product));
                        // An open soon after a close of the same product is a replacement.
                        if let Some((closed_at, closed)) = churn.product_closed {
                            if closed == product && (at.millis_since(closed_at)).abs() <= REPLACEMENT_WINDOW {
                                churn.product_closed = None;
                            }
                        }
                    }
                    ProductAction::Close => {
                        let replaced = self.churn.product_opens.iter().any(|&(opened_at, opened)| {
                            opened == product && (at.millis_since(opened_at)).abs() <= REPLACEMENT_WINDOW
                        });
                        if !replaced && self.churn.product_closed.is_none_or(|(prev, _)| prev <= at) {
                            self.churn.get_mut().product_closed = Some((at, product));
                        }
                    }
                    ProductAction::Downgrade | ProductAction::Upgrade => {}
                }
            }
            EventBody::TravelNotice(n) => {
                self.notices.retain(|old| old.to >= at);
                if self.notices.len() >= MAX_NOTICES {
                    self.notices.remove(0);
                }
                self.notices.push(n.clone());
            }
        }
        self.history.push(item);
    }

    fn card_mut(&mut self, card_id: &str, at: Timestamp) -> &mut CardState {
        let index = match self.cards.iter().position(|c| &*c.card_id == card_id) {
            Some(i) => i,
            None => {
                if self.cards.len() >= MAX_CARDS {
                    // Forget the card least recently used.
                    let oldest = (0..self.cards.len()).min_by_key(|&i| self.cards[i].last_seen).unwrap_or(0);
                    self.cards.swap_remove(oldest);
                }
                self.cards.reserve_exact(1); // most customers hold one card: no spare slots
                self.cards.push(CardState {
                    card_id: card_id.into(),
                    uses: Vec::new(),
                    cnp: Ring::default(),
                    last_seen: at,
                });
                self.cards.len() - 1
            }
        };
        let card = &mut self.cards[index];
        card.last_seen = card.last_seen.max(at);
        card
    }

    /// Remembers that complaints of `category` (a [`hash_text`] of the code) were resolved at
    /// `at` (the newest per category; the oldest category forgotten past the cap).
    pub fn resolve_complaint(&mut self, category: u64, at: Timestamp) {
        if let Some(entry) = self.resolved_complaints.iter_mut().find(|(_, c)| *c == category) {
            entry.0 = entry.0.max(at);
            return;
        }
        if self.resolved_complaints.len() >= MAX_RESOLVED_COMPLAINTS {
            let oldest = (0..self.resolved_complaints.len())
                .min_by_key(|&i| self.resolved_complaints[i].0)
                .unwrap_or(0);
            self.resolved_complaints.remove(oldest);
        }
        self.resolved_complaints.push((at, category));
    }

    /// When complaints of `category` were last resolved, if they were.
    pub fn complaint_resolved_at(&self, category: u64) -> Option<Timestamp> {
        self.resolved_complaints.iter().find(|(_, c)| *c == category).map(|(at, _)| *at)
    }

    /// When a card was last used (any card, any channel), if ever.
    pub fn last_card_use(&self) -> Option<Timestamp> {
        self.cards.iter().map(|c| c.last_seen).max()
    }

    /// Records that a rule fired for this customer at `at`.
    pub fn mark_fired(&mut self, rule: u64, at: Timestamp) {
        match self.cooldowns.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, last)) => *last = (*last).max(at),
            None => self.cooldowns.push((rule, at)),
        }
    }

    /// True if the rule fired within `cooldown` of `at` (either side: events arrive late).
    pub fn in_cooldown(&self, rule: u64, at: Timestamp, cooldown: i64) -> bool {
        self.cooldowns.iter().any(|&(r, last)| r == rule && at.millis_since(last).abs() < cooldown)
    }

    /// When the customer's latest event happened (any type, a profile too), if any did.
    pub fn last_event_at(&self) -> Option<Timestamp> {
        let profile_at = self.profile.as_ref().map(|_| self.profile_at);
        self.activity.last.into_iter().chain(profile_at).max()
    }

    /// True if nothing keeps the customer worth remembering at `cutoff`: no event since before
    /// it, no open task, and no pending timer after `now` (a wait still running).
    pub fn is_idle_since(&self, cutoff: Timestamp, now: Timestamp) -> bool {
        self.last_event_at().is_none_or(|last| last < cutoff)
            && self.incidents.as_ref().is_none_or(|i| i.open.is_empty())
            && self.timer_at.is_none_or(|at| at <= now)
    }

    /// Bytes of memory the customer's state takes: the state itself and every allocation it
    /// owns, counted by capacity (shared text is the interner's, not counted here). Tasks are
    /// estimated from their texts and lists (see [`task_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        size_of::<CustomerState>() + self.heap_bytes()
    }

    /// Bytes of heap the state owns (the part of [`Self::memory_bytes`] outside the struct).
    pub fn heap_bytes(&self) -> usize {
        let profile = self.profile.as_ref().map_or(0, CompactProfile::heap_bytes);
        let cards = self.cards.capacity() * size_of::<CardState>()
            + self
                .cards
                .iter()
                .map(|c| c.card_id.len() + c.uses.capacity() * size_of::<PhysicalUse>())
                .sum::<usize>();
        let logins = self.logins.failures.heap_bytes()
            + self.logins.devices.capacity() * size_of::<u64>()
            + self.logins.new_devices.heap_bytes();
        let notices = self.notices.heap_bytes()
            + self.notices.iter().map(|n| n.countries.capacity() * size_of::<Country>()).sum::<usize>();
        let absences =
            self.absences.heap_bytes() + self.absences.iter().map(|a| a.detail.len()).sum::<usize>();
        let sequences =
            self.sequences.heap_bytes() + self.sequences.iter().map(|m| m.detail.len()).sum::<usize>();
        let flows = self.flows.heap_bytes() + self.resolved_complaints.heap_bytes();
        let seen = self.seen.heap_bytes() + self.seen_ids.heap_bytes() + self.dormancy.heap_bytes();
        let learned = self
            .learned
            .as_ref()
            .map_or(0, |l| size_of::<Learned>() + l.places.capacity() * size_of::<TrustedPlace>());
        let incidents = self.incidents.as_ref().map_or(0, |i| {
            size_of::<CustomerIncidents>()
                + (i.open.capacity() + i.resolved.capacity()) * size_of::<crate::task::Task>()
                + i.open.iter().chain(&i.resolved).map(task_bytes).sum::<usize>()
                + i.earlier.iter().map(summary_bytes).sum::<usize>()
                + i.earlier.capacity() * size_of::<crate::task::TaskSummary>()
        });
        profile
            + cards
            + logins
            + self.contacts.heap_bytes()
            + self.complaints.heap_bytes()
            + self.churn.heap_bytes()
            + notices
            + self.trusted_countries.heap_bytes()
            + self.cooldowns.heap_bytes()
            + absences
            + sequences
            + flows
            + seen
            + learned
            + incidents
    }

    /// Withdraws the trust in these countries (a resolution that taught it was reopened).
    pub fn untrust(&mut self, countries: &[Country]) {
        self.trusted_countries.retain(|c| !countries.contains(c));
    }

    /// Teaches the state that the customer confirmed these countries and devices as theirs.
    pub fn trust(&mut self, countries: &[Country], devices: &[&str]) {
        for c in countries {
            if !self.trusted_countries.contains(c) {
                if self.trusted_countries.len() >= MAX_TRUSTED_COUNTRIES {
                    self.trusted_countries.remove(0);
                }
                self.trusted_countries.push(*c);
            }
        }
        for d in devices {
            let h = hash_text(d);
            if !self.logins.devices.contains(&h) {
                self.logins.add_device(h);
            }
        }
    }
}

/// Heap bytes of a task outside its struct: its texts and lists (an estimate: the facts' JSON
/// values and the workflow's records count by their entries).
fn task_bytes(task: &crate::task::Task) -> usize {
    use crate::task::{HistoryLine, SignalRecord};
    let c = &task.context;
    let strings =
        |v: &Vec<String>| v.capacity() * size_of::<String>() + v.iter().map(String::capacity).sum::<usize>();
    let signals = task.signals.capacity() * size_of::<SignalRecord>()
        + task
            .signals
            .iter()
            .map(|s| s.rule.capacity() + s.explanation.capacity() + s.facts.len() * FACT_BYTES)
            .sum::<usize>();
    let evidence = c.events.capacity() * size_of::<crate::detect::Evidence>()
        + c.events
            .iter()
            .map(|e| {
                e.summary.capacity()
                    + e.event_id.as_ref().map_or(0, String::capacity)
                    + e.city.as_ref().map_or(0, String::capacity)
                    + e.card_id.as_ref().map_or(0, String::capacity)
            })
            .sum::<usize>();
    let history = c.recent_history.capacity() * size_of::<HistoryLine>()
        + c.recent_history.iter().map(|h| h.summary.capacity()).sum::<usize>();
    let work = &task.work;
    let workflow = (work.contact_attempts.len() + work.notes.len() + work.outreach.len()) * WORK_RECORD_BYTES;
    task.id.capacity()
        + task.customer_id.capacity()
        + strings(&task.rules)
        + task.title.capacity()
        + task.explanation.capacity()
        + signals
        + evidence
        + history
        + c.earlier_tasks.capacity() * size_of::<crate::task::TaskSummary>()
        + c.earlier_tasks.iter().map(summary_bytes).sum::<usize>()
        + strings(&c.actions)
        + c.script.capacity()
        + c.language.capacity()
        + c.profile.as_ref().map_or(0, |_| size_of::<Profile>() + PROFILE_TEXT_BYTES)
        + workflow
}

/// Heap bytes of a task summary's texts.
fn summary_bytes(s: &crate::task::TaskSummary) -> usize {
    s.id.capacity() + s.title.capacity()
}

/// Estimated bytes of one fact of a signal (its map entry and value).
const FACT_BYTES: usize = 64;
/// Estimated bytes of one contact attempt, note or outreach record of a task's workflow.
const WORK_RECORD_BYTES: usize = 128;
/// Estimated bytes of a profile's texts copied into a task.
const PROFILE_TEXT_BYTES: usize = 64;

/// A product opened within this long of a close of the same product replaces it (e.g. a card
/// reissued, a deposit rolled over).
pub const REPLACEMENT_WINDOW: i64 = 14 * crate::time::DAY;

/// Inserts a physical use in time order, dropping uses too old to matter (more than
/// [`PHYSICAL_HORIZON`] before the newest) and keeping the [`PHYSICAL_USES`] newest, plus every
/// use within `allowed_lateness` of the newest and the one just before those (the neighbours a
/// late use is compared with), at most [`MAX_PHYSICAL_USES`]. The allocation grows one slot at a
/// time (most cards keep one or two).
fn insert_physical_use(uses: &mut Vec<PhysicalUse>, new_use: PhysicalUse, allowed_lateness: i64) {
    let newest = uses.last().map_or(new_use.at, |u| u.at.max(new_use.at));
    uses.retain(|u| newest.millis_since(u.at) <= PHYSICAL_HORIZON);
    if newest.millis_since(new_use.at) > PHYSICAL_HORIZON {
        return; // a late use too old to matter
    }
    let window_start = newest.plus(-allowed_lateness);
    let mut pos = uses.partition_point(|u| u.at <= new_use.at);
    // Trim before inserting, so the list never holds more than it keeps, not even for a moment:
    // the oldest goes while the next one is outside the window too (then the oldest is not the
    // window's earlier neighbour), or while there are too many.
    while uses.len() + 1 > PHYSICAL_USES {
        let second = match pos {
            0 => uses[0].at,
            1 => new_use.at,
            _ => uses[1].at,
        };
        let drop = allowed_lateness == 0 || second < window_start || uses.len() + 1 > MAX_PHYSICAL_USES;
        if !drop {
            break;
        }
        if pos == 0 {
            return; // the new use is the one that would go
        }
        uses.remove(0);
        pos -= 1;
    }
    if uses.len() == uses.capacity() {
        uses.reserve_exact(1);
    }
    uses.insert(pos, new_use);
}

/// All customers' state, keyed by customer id.
#[derive(Debug, Default)]
pub struct StateStore {
    /// Boxed: the map's tables keep empty slots (load factor), and an inline state would make
    /// every slot, used or not, as large as a customer's whole state.
    pub customers: DashMap<Box<str>, Box<CustomerState>, FastHash>,
    pub interner: Interner,
}

impl StateStore {
    /// Number of customers tracked.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// True when no customer is tracked.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// Bytes of memory all customers' state takes, measured by walking every customer: the
    /// map's table (its slots, used or not, and their control bytes), each customer's id and
    /// [`CustomerState::memory_bytes`], and the interner. Slow at millions of customers (see
    /// [`Self::memory_bytes_sampled`]).
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes_sampled(usize::MAX)
    }

    /// [`Self::memory_bytes`] from the first `sample` customers (a sample unbiased by what the
    /// customers hold: entries are spread over the map by the hash of their id), scaled to all,
    /// and the interner's from a sample of its strings likewise.
    pub fn memory_bytes_sampled(&self, sample: usize) -> usize {
        let customers = self.customers.len();
        let table = self.customers.capacity() * (size_of::<(Box<str>, Box<CustomerState>)>() + 1);
        let (mut seen, mut bytes) = (0usize, 0usize);
        for entry in self.customers.iter().take(sample) {
            seen += 1;
            bytes += entry.key().len() + entry.value().memory_bytes();
        }
        let held = if seen == 0 { 0 } else { (bytes as f64 * customers as f64 / seen as f64) as usize };
        let strings = self.interner.len();
        let interner_table = self.interner.strings.capacity() * (size_of::<Text>() + 1);
        let (mut seen, mut text) = (0usize, 0usize);
        for s in self.interner.strings.iter().take(sample) {
            seen += 1;
            text += s.key().copy_bytes();
        }
        let interned = if seen == 0 { 0 } else { (text as f64 * strings as f64 / seen as f64) as usize };
        table + held + interner_table + interned
    }
}

/// Currency of euros, for amounts already converted.
pub const EUR: Currency = Currency(*b"EUR");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode;
    use crate::time::DAY;

    fn ev(json: &str) -> Event {
        decode(json.as_bytes()).unwrap()
    }

    fn card(id: &str, ts: &str, card: &str, city: &str, lat: f64, lon: f64, channel: &str) -> Event {
        ev(&format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"c","ts":"{ts}","card_id":"{card}",
            "amount":20,"currency":"EUR","channel":"{channel}","status":"approved",
            "merchant":{{"name":"M","country":"FR","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
        ))
    }

    #[test]
    fn redelivery_is_recognised() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        let e = card("e1", "2026-11-24T10:00:00Z", "k", "Paris", 48.85, 2.35, "contactless");
        assert_eq!(s.seen_event("e1", e.ts), dedup::Seen::New);
        s.apply(&e, &i);
        assert_eq!(s.seen_event("e1", e.ts), dedup::Seen::Duplicate);
        assert!(!s.has_seen("e1"), "events are not in the commands' ring");
        assert_eq!(s.spend.count, 1);
    }

    #[test]
    fn physical_uses_are_per_card_sorted_and_ignore_ecommerce() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        s.apply(&card("1", "2026-11-24T12:00:00Z", "k1", "Paris", 48.85, 2.35, "card_present"), &i);
        s.apply(&card("2", "2026-11-24T10:00:00Z", "k1", "Lyon", 45.76, 4.83, "contactless"), &i); // late
        s.apply(&card("3", "2026-11-24T11:00:00Z", "k2", "Nice", 43.7, 7.26, "atm"), &i);
        s.apply(&card("4", "2026-11-24T11:30:00Z", "k1", "Tokyo", 35.6, 139.7, "ecommerce"), &i);
        let k1 = s.card("k1").unwrap();
        let cities: Vec<&str> = k1.uses.iter().map(|u| &*u.city).collect();
        assert_eq!(cities, vec!["Lyon", "Paris"]);
        assert_eq!(s.card("k2").unwrap().uses.len(), 1);
        assert_eq!(k1.cnp.len(), 1);
    }

    #[test]
    fn old_physical_uses_are_dropped() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        s.apply(&card("1", "2026-11-20T12:00:00Z", "k", "Paris", 48.85, 2.35, "card_present"), &i);
        s.apply(&card("2", "2026-11-24T12:00:00Z", "k", "Paris", 48.85, 2.35, "card_present"), &i);
        assert_eq!(s.card("k").unwrap().uses.len(), 1);
    }

    #[test]
    fn late_profile_does_not_replace_newer() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        let p = |id: &str, ts: &str, seg: &str| {
            ev(&format!(
                r#"{{"event_id":"{id}","type":"customer_profile","customer_id":"c","ts":"{ts}","segment":"{seg}"}}"#
            ))
        };
        s.apply(&p("p2", "2026-11-24T12:00:00Z", "private"), &i);
        s.apply(&p("p1", "2026-11-20T12:00:00Z", "mass"), &i);
        assert_eq!(s.profile.as_ref().unwrap().segment(), crate::event::Segment::Private);
    }

    #[test]
    fn product_replacement_is_not_a_loss() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        let pc = |id: &str, ts: &str, action: &str| {
            ev(&format!(
                r#"{{"event_id":"{id}","type":"product_change","customer_id":"c","ts":"{ts}","product":"card","action":"{action}"}}"#
            ))
        };
        s.apply(&pc("1", "2026-11-01T00:00:00Z", "close"), &i);
        assert!(s.churn.product_closed.is_some());
        s.apply(&pc("2", "2026-11-03T00:00:00Z", "open"), &i);
        assert!(s.churn.product_closed.is_none());
        s.apply(&pc("3", "2026-11-05T00:00:00Z", "close"), &i);
        assert!(s.churn.product_closed.is_none(), "closed right after a reissue: replaced");
    }

    #[test]
    fn travel_notice_trusts_countries_for_its_period() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        s.apply(&ev(r#"{"event_id":"t","type":"travel_notice","customer_id":"c","ts":"2026-11-01T00:00:00Z","countries":["KH"],"from":"2026-11-10","to":"2026-11-20"}"#), &i);
        let kh = Country::parse("KH").unwrap();
        assert!(s.trusts_country(kh, Timestamp::parse_rfc3339("2026-11-15T00:00:00Z").unwrap()));
        assert!(!s.trusts_country(kh, Timestamp::parse_rfc3339("2026-12-15T00:00:00Z").unwrap()));
    }

    #[test]
    fn interner_shares_copies() {
        let i = Interner::default();
        let a = i.intern("Paris");
        let b = i.intern("Paris");
        assert!(Text::ptr_eq(&a, &b));
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn memory_grows_with_what_the_customer_holds() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        assert_eq!(s.memory_bytes(), size_of::<CustomerState>(), "an empty customer owns no heap");
        s.apply(&card("1", "2026-11-24T10:00:00Z", "k1", "Paris", 48.85, 2.35, "contactless"), &i);
        let one_card = s.memory_bytes();
        assert!(
            one_card
                >= size_of::<CustomerState>()
                    + size_of::<CardState>()
                    + "k1".len()
                    + size_of::<PhysicalUse>(),
            "{one_card}"
        );
        s.apply(&card("2", "2026-11-24T11:00:00Z", "k2", "Paris", 48.85, 2.35, "contactless"), &i);
        let two_cards = s.memory_bytes();
        assert!(two_cards >= one_card + size_of::<CardState>() + size_of::<PhysicalUse>(), "{two_cards}");
        assert_eq!(s.contacts.heap_bytes() + s.complaints.heap_bytes() + s.churn.heap_bytes(), 0);
        s.apply(&ev(r#"{"event_id":"s1","type":"support_contact","customer_id":"c","ts":"2026-11-24T12:00:00Z","channel":"phone","reason":"card_blocked","resolved":false}"#), &i);
        assert_eq!(
            s.memory_bytes(),
            two_cards + size_of::<Ring<ContactMark, 8>>(),
            "the contacts' ring, once"
        );
    }

    #[test]
    fn rarely_used_parts_are_allocated_only_when_used_and_stored_alike() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        s.apply(&card("1", "2026-11-24T10:00:00Z", "k", "Paris", 48.85, 2.35, "ecommerce"), &i);
        assert!(!s.churn.is_allocated() && s.contacts.is_empty() && s.notices.is_empty());
        assert!(s.churn.product_closed.is_none(), "an absent part reads as empty");
        let pc = |id: &str, ts: &str, action: &str| {
            ev(&format!(
                r#"{{"event_id":"{id}","type":"product_change","customer_id":"c","ts":"{ts}","product":"card","action":"{action}"}}"#
            ))
        };
        s.apply(&pc("2", "2026-11-25T00:00:00Z", "close"), &i);
        assert!(s.churn.is_allocated() && s.churn.product_closed.is_some());
        let restored = codec::decode(&codec::encode(&s), &i).unwrap();
        assert!(restored.churn.is_allocated());
        let plain = codec::decode(&codec::encode(&CustomerState::default()), &i).unwrap();
        assert_eq!(plain.memory_bytes(), size_of::<CustomerState>(), "nothing allocated on restore either");
    }

    /// The insertion as it was written before the list was kept within its cap: insert, drop
    /// what is too old, trim to the cap.
    fn insert_physical_use_reference(uses: &mut Vec<PhysicalUse>, new_use: PhysicalUse) {
        let pos = uses.partition_point(|u| u.at <= new_use.at);
        uses.insert(pos, new_use);
        let newest = uses.last().map(|u| u.at).unwrap_or_default();
        uses.retain(|u| newest.millis_since(u.at) <= PHYSICAL_HORIZON);
        while uses.len() > PHYSICAL_USES {
            uses.remove(0);
        }
    }

    #[test]
    fn physical_uses_stay_within_their_cap_and_match_the_reference() {
        let i = Interner::default();
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..2_000 {
            let (mut capped, mut reference) = (Vec::new(), Vec::new());
            for n in 0..rng.usize(1..12) {
                let at = Timestamp(rng.i64(0..4 * DAY) / HOUR * HOUR);
                let u = PhysicalUse {
                    at,
                    lat: 0.0,
                    lon: 0.0,
                    country: Country(*b"FR"),
                    channel: CardChannel::Atm,
                    city: i.intern("Paris"),
                    merchant: i.intern("M"),
                    money: Money { amount: 1.0, currency: EUR },
                    event_id: n as u64,
                };
                insert_physical_use(&mut capped, u.clone(), 0);
                insert_physical_use_reference(&mut reference, u);
                assert_eq!(capped, reference);
                assert!(capped.capacity() <= PHYSICAL_USES);
            }
        }
    }

    /// With an allowed lateness, a card keeps every use within it of its newest and the one
    /// before: a use arriving late is compared with its real neighbours in event time.
    #[test]
    fn uses_within_the_allowed_lateness_are_kept_for_late_comparisons() {
        let i = Interner::default();
        let mut s = CustomerState::default();
        for (n, hour) in [0, 1, 2, 3, 4, 5].into_iter().enumerate() {
            let ts = format!("2026-11-24T{:02}:00:00Z", 8 + hour);
            s.apply_late(
                &card(&format!("h{n}"), &ts, "k", "Paris", 48.85, 2.35, "contactless"),
                &i,
                6 * HOUR,
            );
        }
        let times: Vec<String> = s.card("k").unwrap().uses.iter().map(|u| u.at.to_string()).collect();
        assert_eq!(times.len(), 6, "all within six hours: {times:?}");
        s.apply_late(
            &card("h6", "2026-11-24T20:00:00Z", "k", "Paris", 48.85, 2.35, "contactless"),
            &i,
            6 * HOUR,
        );
        let uses = &s.card("k").unwrap().uses;
        // The window is 14:00-20:00: only 20:00 is in it; its earlier neighbour 13:00 and the
        // three newest are kept, as without lateness.
        assert_eq!(uses.len(), 3);
        assert_eq!(uses[0].at.to_string(), "2026-11-24T12:00:00.000Z");
        let mut busy = CustomerState::default();
        for n in 0..40 {
            let ts = format!("2026-11-24T10:{n:02}:00Z");
            busy.apply_late(
                &card(&format!("b{n}"), &ts, "k", "Paris", 48.85, 2.35, "contactless"),
                &i,
                6 * HOUR,
            );
        }
        assert_eq!(busy.card("k").unwrap().uses.len(), MAX_PHYSICAL_USES);
        assert!(busy.card("k").unwrap().uses.capacity() <= MAX_PHYSICAL_USES);
    }

    #[test]
    fn idle_means_no_event_since_the_cutoff_no_open_task_and_no_wait_running() {
        let mut s = CustomerState::default();
        let i = Interner::default();
        let at = Timestamp::parse_rfc3339("2026-11-24T10:00:00Z").unwrap();
        assert!(s.is_idle_since(at, at), "never seen");
        s.apply(&card("1", "2026-11-24T10:00:00Z", "k", "Paris", 48.85, 2.35, "atm"), &i);
        assert!(!s.is_idle_since(at, at.plus(DAY)));
        assert!(s.is_idle_since(at.plus(1), at.plus(DAY)));
        s.timer_at = Some(at.plus(2 * DAY));
        assert!(!s.is_idle_since(at.plus(1), at.plus(DAY)), "a wait still runs");
        assert!(s.is_idle_since(at.plus(1), at.plus(2 * DAY)));
    }
}
