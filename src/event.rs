//! Wire types of input events (BRIEF section 4) and their validation. Nothing else.
//!
//! Decoding is two steps: serde reads the JSON into a flat, borrowed [`RawEvent`] that has every
//! field of every type as optional (one pass, no buffering, unknown fields ignored); validation
//! then builds the typed [`Event`], checking each field the event's `type` needs. Every failure
//! is a [`DecodeError`] naming the field, the value and why, so a dead letter can be fixed by the
//! team that produced it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::geo::{Country, Point};
use crate::money::{Currency, Money};
use crate::time::Timestamp;

/// Largest event we accept, in bytes. Bigger messages are refused before parsing.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// A validated input event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub customer_id: String,
    pub ts: Timestamp,
    pub body: EventBody,
}

/// What happened, by event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    CustomerProfile(Profile),
    CardTransaction(CardTransaction),
    Login(Login),
    Transfer(Transfer),
    SupportContact(SupportContact),
    Complaint(Complaint),
    ProductChange(ProductChange),
    TravelNotice(TravelNotice),
}

/// The event types of the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CustomerProfile,
    CardTransaction,
    Login,
    Transfer,
    SupportContact,
    Complaint,
    ProductChange,
    TravelNotice,
}

impl EventKind {
    /// Every kind, in wire-contract order.
    pub const ALL: [EventKind; 8] = [
        EventKind::CustomerProfile,
        EventKind::CardTransaction,
        EventKind::Login,
        EventKind::Transfer,
        EventKind::SupportContact,
        EventKind::Complaint,
        EventKind::ProductChange,
        EventKind::TravelNotice,
    ];

    /// The `type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerProfile => "customer_profile",
            EventKind::CardTransaction => "card_transaction",
            EventKind::Login => "login",
            EventKind::Transfer => "transfer",
            EventKind::SupportContact => "support_contact",
            EventKind::Complaint => "complaint",
            EventKind::ProductChange => "product_change",
            EventKind::TravelNotice => "travel_notice",
        }
    }

    /// Parses a `type` string.
    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The event's type.
    pub fn kind(&self) -> EventKind {
        match &self.body {
            EventBody::CustomerProfile(_) => EventKind::CustomerProfile,
            EventBody::CardTransaction(_) => EventKind::CardTransaction,
            EventBody::Login(_) => EventKind::Login,
            EventBody::Transfer(_) => EventKind::Transfer,
            EventBody::SupportContact(_) => EventKind::SupportContact,
            EventBody::Complaint(_) => EventKind::Complaint,
            EventBody::ProductChange(_) => EventKind::ProductChange,
            EventBody::TravelNotice(_) => EventKind::TravelNotice,
        }
    }
}

/// A named place with coordinates (a merchant, a home address, a login's geo-IP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub country: Country,
    pub city: String,
    /// Coordinates, when the producer knows them.
    pub point: Option<Point>,
}

/// Customer segment: priority segments are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    #[default]
    Mass,
    Affluent,
    Private,
    Business,
}

impl Segment {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Mass => "mass",
            Segment::Affluent => "affluent",
            Segment::Private => "private",
            Segment::Business => "business",
        }
    }

    /// True for segments that get faster, special service.
    pub fn is_priority(self) -> bool {
        !matches!(self, Segment::Mass)
    }
}

/// `customer_profile`: who the customer is and how to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// ISO 639-1 language code, lower case (`en`, `ru`, …); `en` when not given.
    pub language: String,
    pub segment: Segment,
    pub home: Option<Place>,
    /// IANA time zone name, e.g. `Europe/London`.
    pub timezone: Option<String>,
    pub email_consent: bool,
}

/// How a card was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardChannel {
    CardPresent,
    Contactless,
    Atm,
    Ecommerce,
}

impl CardChannel {
    /// True where the card (and so its holder) was physically at the merchant.
    pub fn is_physical(self) -> bool {
        !matches!(self, CardChannel::Ecommerce)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardChannel::CardPresent => "card_present",
            CardChannel::Contactless => "contactless",
            CardChannel::Atm => "atm",
            CardChannel::Ecommerce => "ecommerce",
        }
    }
}

/// `card_transaction`: a payment or withdrawal with a card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardTransaction {
    pub card_id: String,
    pub money: Money,
    pub channel: CardChannel,
    pub approved: bool,
    pub merchant_name: String,
    pub mcc: Option<String>,
    pub place: Place,
}

/// `login`: a sign-in attempt to the bank's app or web site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Login {
    /// `mobile` or `web`.
    pub channel: LoginChannel,
    pub success: bool,
    pub device_id: String,
    pub ip: Option<String>,
    pub geo: Option<Place>,
}

/// Where a login came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginChannel {
    Mobile,
    Web,
}

/// `transfer`: money in or out of the customer's account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub outgoing: bool,
    pub money: Money,
    pub counterparty_bank: Option<String>,
    /// To (or from) the customer's own account at another bank.
    pub own_account: bool,
}

/// `support_contact`: the customer reached us.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupportContact {
    pub channel: String,
    /// The reason's normal form ([`crate::codes::normalize`]): what is counted and compared.
    pub reason: String,
    /// The reason as the producing system wrote it, for the agent.
    pub reason_text: String,
    pub resolved: bool,
    pub duration_s: Option<f64>,
}

/// How bad a complaint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintSeverity {
    Low,
    Medium,
    High,
}

/// `complaint`: a categorised complaint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Complaint {
    /// The category's normal form ([`crate::codes::normalize`]): what is counted and compared.
    pub category: String,
    /// The category as the producing system wrote it, for the agent.
    pub category_text: String,
    pub severity: ComplaintSeverity,
    pub text: Option<String>,
}

/// What happened to a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductAction {
    Open,
    Close,
    Downgrade,
    Upgrade,
}

/// `product_change`: a product opened, closed, down- or upgraded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductChange {
    pub product: String,
    pub action: ProductAction,
}

/// `travel_notice`: the customer told us they will travel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TravelNotice {
    pub countries: Vec<Country>,
    pub from: Timestamp,
    /// End of the trip: the end of the `to` day when a date was given.
    pub to: Timestamp,
}

/// Why an event was refused. Each variant names what, where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    Oversized { size: usize, limit: usize },
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("unknown event type `{0}` (expected one of: customer_profile, card_transaction, login, transfer, support_contact, complaint, product_change, travel_notice)")]
    UnknownType(String),
    #[error("missing field `{field}`{}", for_kind(*.kind))]
    Missing { field: &'static str, kind: Option<EventKind> },
    #[error("field `{field}` has invalid value {value}: {reason}")]
    Invalid { field: &'static str, value: String, reason: String },
    /// A card number (PAN) where a token belongs: refused whole, the value never repeated.
    #[error(
        "field `{field}` holds what looks like a card number (13 to 19 digits passing the Luhn check); \
         producers must send the card's token, never its number (the value is not repeated here)"
    )]
    CardNumber { field: &'static str },
}

fn for_kind(kind: Option<EventKind>) -> String {
    kind.map(|k| format!(" (required for {k})")).unwrap_or_default()
}

impl DecodeError {
    /// A short, stable reason code for metrics and dead-letter headers.
    pub fn reason_code(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Malformed(_) => "malformed_json",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::Missing { .. } => "missing_field",
            DecodeError::Invalid { .. } => "invalid_field",
            DecodeError::CardNumber { .. } => "card_number",
        }
    }

    /// The error as a log line may carry it: what and why, with any value taken from the input
    /// replaced by a short hash of it (so two lines about one value can be matched, and no
    /// e-mail address, name or card number reaches a log).
    pub fn redacted(&self) -> String {
        let hash = |v: &str| format!("#{:08x}", xxhash_rust::xxh3::xxh3_64(v.as_bytes()) as u32);
        match self {
            DecodeError::Malformed(why) => format!("malformed JSON (detail {})", hash(why)),
            DecodeError::UnknownType(t) => format!("unknown event type {}", hash(t)),
            DecodeError::Invalid { field, value, reason } => {
                format!("field `{field}` has invalid value {}: {reason}", hash(value))
            }
            other => other.to_string(),
        }
    }
}

/// The message with a card number in `card_id` masked to its last four digits (`************1111`),
/// as JSON (keys in order); `None` if the bytes are not a JSON object with such a `card_id`.
pub fn mask_card_number(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let card = value.get_mut("card_id")?;
    let number = card.as_str().filter(|t| looks_like_card_number(t))?;
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let masked: String = std::iter::repeat_n('*', digits.len() - 4)
        .chain(digits[digits.len() - 4..].iter().copied())
        .collect();
    *card = serde_json::Value::String(masked);
    serde_json::to_vec(&value).ok()
}

/// True if `text` looks like a payment card number: 13 to 19 digits (spaces and dashes between
/// groups allowed) whose Luhn checksum holds.
pub fn looks_like_card_number(text: &str) -> bool {
    let mut digits = 0usize;
    let mut sum = 0u32;
    for b in text.bytes().rev() {
        match b {
            b'0'..=b'9' => {
                let mut d = u32::from(b - b'0');
                if digits % 2 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                digits += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    (13..=19).contains(&digits) && sum % 10 == 0
}

/// Decodes and validates one JSON event.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::Oversized { size: bytes.len(), limit: MAX_EVENT_BYTES });
    }
    // RawEvent is large (every field of every type): it is validated in place, never moved.
    let parsed =
        if nesting_bound(bytes) <= MAX_SONIC_NESTING { sonic_rs::from_slice(bytes).ok() } else { None };
    let raw: RawEvent<'_> = match parsed {
        Some(raw) => raw,
        // serde_json is the reference for what is refused and how it is worded (the messages and
        // their field names are part of the dead-letter contract): a message sonic-rs refuses is
        // parsed again by serde_json, which gives the error (or, should they ever disagree, the
        // event). Refusals are rare, so the second parse costs nothing that matters.
        None => serde_json::from_slice(bytes).map_err(|e| describe_json_error(bytes, e))?,
    };
    raw.validate()
}

/// Deepest nesting of objects and arrays sonic-rs is given. It recurses once per level, also
/// to skip an unknown field's value, with large frames in debug builds (200 levels overflow a
/// test thread's stack there); serde_json skips unknown values without recursing. Our events
/// nest two levels deep; anything deeper is left to serde_json.
const MAX_SONIC_NESTING: usize = 32;

/// An upper bound of a message's nesting depth: its count of `{` and `[` (also those inside
/// strings, which only makes it larger). One vectorised pass over a few hundred bytes, counted in
/// byte-wide lanes per 255-byte chunk (a chunk's count fits in a byte): a plain `filter().count()`
/// widened every lane to 64 bits and was a tenth of decoding's instructions (callgrind).
fn nesting_bound(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'{' || b == b'[')) as usize)
        .sum()
}

/// serde_json's message says what was wrong and at which column, but not in which field; on this
/// (rare) error path we name the last object key before that column.
fn describe_json_error(bytes: &[u8], e: serde_json::Error) -> DecodeError {
    if e.is_data() {
        if let Some(field) = field_before(bytes, e.line(), e.column()) {
            return DecodeError::Malformed(format!("field `{field}`: {e}"));
        }
    }
    DecodeError::Malformed(e.to_string())
}

/// The last object key before a (1-based) line and column, for error messages.
fn field_before(bytes: &[u8], line: usize, column: usize) -> Option<String> {
    let line_start: usize =
        bytes.split(|&b| b == b'\n').take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
    let upto = &bytes[..(line_start + column).min(bytes.len())];
    let text = std::str::from_utf8(upto).ok()?;
    // Find the last `"key":` before the column.
    let colon = text.rfind("\":")?;
    let start = text[..colon].rfind('"')?;
    Some(text[start + 1..colon].to_string())
}

/// A money amount on the wire: a JSON number or a decimal string.
#[derive(Debug, Clone)]
struct Amount(Result<f64, String>);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount(Ok(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(Ok(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(Ok(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Ok(Amount(parse_decimal(v).ok_or_else(|| v.to_string())))
            }
        }
        d.deserialize_any(AmountVisitor)
    }
}

/// Parses a plain decimal (`12`, `12.50`, `-3.1`); no exponents, no thousands separators.
fn parse_decimal(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (frac.is_empty() != digits.contains('.'));
    if ok {
        text.parse().ok()
    } else {
        None
    }
}

/// A string field of the wire, borrowed from the message when it has no escapes (most do) and
/// owned otherwise. (`Option<Cow<'a, str>>` would always allocate: serde borrows a `Cow` only
/// when it is the field's whole type.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a str>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A code on the wire that some producers send as a string and others as a number (MCC).
#[derive(Debug, Clone)]
struct Code(String);

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = Code;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer code")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Code, E> {
                Ok(Code(format!("{v:04}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Code, E> {
                Ok(Code(v.to_string()))
            }
        }
        d.deserialize_any(CodeVisitor)
    }
}

/// Every field of every event type, all optional; validated into [`Event`].
#[derive(Deserialize, Default)]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    customer_id: Option<Text<'a>>,
    #[serde(borrow)]
    ts: Option<Text<'a>>,
    // customer_profile
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    email: Option<Text<'a>>,
    #[serde(borrow)]
    phone: Option<Text<'a>>,
    #[serde(borrow)]
    language: Option<Text<'a>>,
    #[serde(borrow)]
    segment: Option<Text<'a>>,
    #[serde(borrow)]
    home: Option<RawPlace<'a>>,
    #[serde(borrow)]
    timezone: Option<Text<'a>>,
    consent: Option<RawConsent>,
    // card_transaction
    #[serde(borrow)]
    card_id: Option<Text<'a>>,
    amount: Option<Amount>,
    #[serde(borrow)]
    currency: Option<Text<'a>>,
    #[serde(borrow)]
    channel: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
    #[serde(borrow)]
    merchant: Option<RawPlace<'a>>,
    // login
    success: Option<bool>,
    #[serde(borrow)]
    device_id: Option<Text<'a>>,
    #[serde(borrow)]
    ip: Option<Text<'a>>,
    #[serde(borrow)]
    geo: Option<RawPlace<'a>>,
    // transfer
    #[serde(borrow)]
    direction: Option<Text<'a>>,
    #[serde(borrow)]
    counterparty_bank: Option<Text<'a>>,
    own_account: Option<bool>,
    // support_contact
    #[serde(borrow)]
    reason: Option<Text<'a>>,
    resolved: Option<bool>,
    duration_s: Option<f64>,
    // complaint
    #[serde(borrow)]
    category: Option<Text<'a>>,
    #[serde(borrow)]
    severity: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    // product_change
    #[serde(borrow)]
    product: Option<Text<'a>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    // travel_notice
    #[serde(borrow)]
    countries: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    from: Option<Text<'a>>,
    #[serde(borrow)]
    to: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct RawPlace<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    mcc: Option<Code>,
    #[serde(borrow)]
    country: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(Deserialize, Default)]
struct RawConsent {
    email: Option<bool>,
}

/// Shorthand for an invalid-field error; values are quoted and cut to 64 characters.
fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> DecodeError {
    let mut shown: String = value.chars().take(64).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    DecodeError::Invalid { field, value: format!("{shown:?}"), reason: reason.into() }
}

/// A required field, or `Missing`.
fn required<T>(value: Option<T>, field: &'static str, kind: EventKind) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::Missing { field, kind: Some(kind) })
}

/// A required, non-blank text field.
fn text(value: Option<Text<'_>>, field: &'static str, kind: EventKind) -> Result<String, DecodeError> {
    let value = required(value, field, kind)?;
    if value.trim().is_empty() {
        return Err(invalid(field, &value, "must not be empty"));
    }
    // Ids become columns of the task store, and PostgreSQL text cannot hold a NUL: such an id
    // would make every write of its batch fail, again and again.
    if value.contains('\0') {
        return Err(invalid(field, &value.replace('\0', "\\0"), "must not contain a NUL character"));
    }
    Ok(value.0.into_owned())
}

/// An optional text field; blank counts as absent.
fn optional_text(value: Option<Text<'_>>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).map(|v| v.0.into_owned())
}

/// One of a fixed set of words.
fn one_of<T: Copy>(
    value: Option<Text<'_>>,
    field: &'static str,
    kind: EventKind,
    choices: &[(&str, T)],
) -> Result<T, DecodeError> {
    let value = required(value, field, kind)?;
    choices.iter().find(|(name, _)| *name == &*value).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        invalid(field, &value, format!("expected one of: {}", names.join(", ")))
    })
}

fn money(amount: Option<Amount>, currency: Option<Text<'_>>, kind: EventKind) -> Result<Money, DecodeError> {
    let amount = match required(amount, "amount", kind)?.0 {
        Ok(a) if a.is_finite() && a >= 0.0 => a,
        Ok(a) => return Err(invalid("amount", &a.to_string(), "must be a finite amount of zero or more")),
        Err(text) => return Err(invalid("amount", &text, "not a decimal number such as \"12.50\"")),
    };
    let code = required(currency, "currency", kind)?;
    let currency = Currency::parse(&code)
        .ok_or_else(|| invalid("currency", &code, "expected an ISO 4217 code of three upper-case letters"))?;
    Ok(Money { amount, currency })
}

/// Field names of the parts of a place, per enclosing field (errors name the full path).
struct PlaceFields {
    country: &'static str,
    city: &'static str,
    lat: &'static str,
    lon: &'static str,
}

const MERCHANT: PlaceFields = PlaceFields {
    country: "merchant.country",
    city: "merchant.city",
    lat: "merchant.lat",
    lon: "merchant.lon",
};
const HOME: PlaceFields =
    PlaceFields { country: "home.country", city: "home.city", lat: "home.lat", lon: "home.lon" };
const GEO: PlaceFields =
    PlaceFields { country: "geo.country", city: "geo.city", lat: "geo.lat", lon: "geo.lon" };

fn place(raw: RawPlace<'_>, fields: &PlaceFields, kind: EventKind) -> Result<Place, DecodeError> {
    let code = required(raw.country, fields.country, kind)?;
    let country = Country::parse(&code).ok_or_else(|| {
        invalid(fields.country, &code, "expected an ISO 3166-1 alpha-2 code of two upper-case letters")
    })?;
    let city = text(raw.city, fields.city, kind)?;
    let point = match (raw.lat, raw.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(invalid(fields.lat, &lat.to_string(), "latitude must be within -90..90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(invalid(fields.lon, &lon.to_string(), "longitude must be within -180..180"));
            }
            Some(Point { lat, lon })
        }
        (None, None) => None,
        (Some(_), None) => return Err(DecodeError::Missing { field: fields.lon, kind: Some(kind) }),
        (None, Some(_)) => return Err(DecodeError::Missing { field: fields.lat, kind: Some(kind) }),
    };
    Ok(Place { country, city, point })
}

impl RawEvent<'_> {
    fn validate(mut self) -> Result<Event, DecodeError> {
        let kind_text = self.kind.as_deref().ok_or(DecodeError::Missing { field: "type", kind: None })?;
        let kind = EventKind::parse(kind_text)
            .ok_or_else(|| DecodeError::UnknownType(kind_text.chars().take(64).collect()))?;
        let event_id = text(self.event_id.take(), "event_id", kind)?;
        let customer_id = text(self.customer_id.take(), "customer_id", kind)?;
        let ts_text = required(self.ts.as_deref(), "ts", kind)?;
        let ts = Timestamp::parse_rfc3339(ts_text).map_err(|why| invalid("ts", ts_text, why))?;
        let body = match kind {
            EventKind::CustomerProfile => EventBody::CustomerProfile(self.profile()?),
            EventKind::CardTransaction => EventBody::CardTransaction(self.card_transaction()?),
            EventKind::Login => EventBody::Login(self.login()?),
            EventKind::Transfer => EventBody::Transfer(self.transfer()?),
            EventKind::SupportContact => EventBody::SupportContact(self.support_contact()?),
            EventKind::Complaint => EventBody::Complaint(self.complaint()?),
            EventKind::ProductChange => EventBody::ProductChange(self.product_change()?),
            EventKind::TravelNotice => EventBody::TravelNotice(self.travel_notice()?),
        };
        Ok(Event { event_id, customer_id, ts, body })
    }

    fn profile(&mut self) -> Result<Profile, DecodeError> {
        const K: EventKind = EventKind::CustomerProfile;
        let email = optional_text(self.email.take());
        if let Some(e) = &email {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(invalid("email", e, "not an e-mail address"));
            }
        }
        let language = match optional_text(self.language.take()) {
            Some(l) if l.len() == 2 && l.bytes().all(|b| b.is_ascii_lowercase()) => l,
            Some(l) => {
                return Err(invalid("language", &l, "expected an ISO 639-1 code of two lower-case letters"))
            }
            None => "en".to_string(),
        };
        let segment = match self.segment.take() {
            None => Segment::Mass,
            some => one_of(
                some,
                "segment",
                K,
                &[
                    ("mass", Segment::Mass),
                    ("affluent", Segment::Affluent),
                    ("private", Segment::Private),
                    ("business", Segment::Business),
                ],
            )?,
        };
        let home = self.home.take().map(|h| place(h, &HOME, K)).transpose()?;
        Ok(Profile {
            name: optional_text(self.name.take()),
            email,
            phone: optional_text(self.phone.take()),
            language,
            segment,
            home,
            timezone: optional_text(self.timezone.take()),
            email_consent: self.consent.take().and_then(|c| c.email).unwrap_or(false),
        })
    }

    fn card_transaction(&mut self) -> Result<CardTransaction, DecodeError> {
        const K: EventKind = EventKind::CardTransaction;
        let card_id = text(self.card_id.take(), "card_id", K)?;
        if looks_like_card_number(&card_id) {
            return Err(DecodeError::CardNumber { field: "card_id" });
        }
        let money = money(self.amount.take(), self.currency.take(), K)?;
        let channel = one_of(
            self.channel.take(),
            "channel",
            K,
            &[
                ("card_present", CardChannel::CardPresent),
                ("contactless", CardChannel::Contactless),
                ("atm", CardChannel::Atm),
                ("ecommerce", CardChannel::Ecommerce),
            ],
        )?;
        let approved = one_of(self.status.take(), "status", K, &[("approved", true), ("declined", false)])?;
        let mut merchant = required(self.merchant.take(), "merchant", K)?;
        let merchant_name = text(merchant.name.take(), "merchant.name", K)?;
        let mcc = merchant.mcc.take().map(|c| c.0);
        if let Some(code) = &mcc {
            if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("merchant.mcc", code, "expected a four-digit merchant category code"));
            }
        }
        let place = place(merchant, &MERCHANT, K)?;
        Ok(CardTransaction { card_id, money, channel, approved, merchant_name, mcc, place })
    }

    fn login(&mut self) -> Result<Login, DecodeError> {
        const K: EventKind = EventKind::Login;
        let channel = one_of(
            self.channel.take(),
            "channel",
            K,
            &[("mobile", LoginChannel::Mobile), ("web", LoginChannel::Web)],
        )?;
        let success = required(self.success.take(), "success", K)?;
        let device_id = text(self.device_id.take(), "device_id", K)?;
        let geo = self.geo.take().map(|g| place(g, &GEO, K)).transpose()?;
        Ok(Login { channel, success, device_id, ip: optional_text(self.ip.take()), geo })
    }

    fn transfer(&mut self) -> Result<Transfer, DecodeError> {
        const K: EventKind = EventKind::Transfer;
        let outgoing = one_of(self.direction.take(), "direction", K, &[("out", true), ("in", false)])?;
        let money = money(self.amount.take(), self.currency.take(), K)?;
        Ok(Transfer {
            outgoing,
            money,
            counterparty_bank: optional_text(self.counterparty_bank.take()),
            own_account: self.own_account.take().unwrap_or(false),
        })
    }

    fn support_contact(&mut self) -> Result<SupportContact, DecodeError> {
        const K: EventKind = EventKind::SupportContact;
        let channel = text(self.channel.take(), "channel", K)?;
        if !["phone", "chat", "email", "branch"].contains(&channel.as_str()) {
            return Err(invalid("channel", &channel, "expected one of: phone, chat, email, branch"));
        }
        let reason_text = text(self.reason.take(), "reason", K)?;
        let reason = crate::codes::normalize(&reason_text);
        if reason.is_empty() {
            return Err(invalid("reason", &reason_text, "has no letters or digits"));
        }
        let resolved = required(self.resolved.take(), "resolved", K)?;
        let duration_s = self.duration_s.take();
        if let Some(d) = duration_s {
            if !(d.is_finite() && d >= 0.0) {
                return Err(invalid("duration_s", &d.to_string(), "must be zero or more seconds"));
            }
        }
        Ok(SupportContact { channel, reason, reason_text, resolved, duration_s })
    }

    fn complaint(&mut self) -> Result<Complaint, DecodeError> {
        const K: EventKind = EventKind::Complaint;
        let category_text = text(self.category.take(), "category", K)?;
        let category = crate::codes::normalize(&category_text);
        if category.is_empty() {
            return Err(invalid("category", &category_text, "has no letters or digits"));
        }
        let severity = one_of(
            self.severity.take(),
            "severity",
            K,
            &[
                ("low", ComplaintSeverity::Low),
                ("medium", ComplaintSeverity::Medium),
                ("high", ComplaintSeverity::High),
            ],
        )?;
        Ok(Complaint { category, category_text, severity, text: optional_text(self.text.take()) })
    }

    fn product_change(&mut self) -> Result<ProductChange, DecodeError> {
        const K: EventKind = EventKind::ProductChange;
        let product = text(self.product.take(), "product", K)?;
        let action = one_of(
            self.action.take(),
            "action",
            K,
            &[
                ("open", ProductAction::Open),
                ("close", ProductAction::Close),
                ("downgrade", ProductAction::Downgrade),
                ("upgrade", ProductAction::Upgrade),
            ],
        )?;
        Ok(ProductChange { product, action })
    }

    fn travel_notice(&mut self) -> Result<TravelNotice, DecodeError> {
        const K: EventKind = EventKind::TravelNotice;
        let codes = required(self.countries.take(), "countries", K)?;
        if codes.is_empty() {
            return Err(invalid("countries", "[]", "must name at least one country"));
        }
        let countries = codes
            .iter()
            .map(|c| {
                Country::parse(c).ok_or_else(|| invalid("countries", c, "expected ISO 3166-1 alpha-2 codes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let from_text = required(self.from.take(), "from", K)?;
        let from =
            Timestamp::parse_date_or_rfc3339(&from_text).map_err(|why| invalid("from", &from_text, why))?;
        let to_text = required(self.to.take(), "to", K)?;
        let mut to =
            Timestamp::parse_date_or_rfc3339(&to_text).map_err(|why| invalid("to", &to_text, why))?;
        if to_text.len() == 10 {
            // A date means "until the end of that day"; one extra day covers time zones.
            to = to.plus(2 * crate::time::DAY);
        }
        if to < from {
            return Err(invalid("to", &to_text, format!("trip ends before it starts ({})", &*from_text)));
        }
        Ok(TravelNotice { countries, from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_json(extra: &str) -> String {
        format!(
            r#"{{"event_id":"e1","type":"card_transaction","customer_id":"c1","ts":"2026-11-24T10:00:00+07:00",
            "card_id":"k1","amount":"12.50","currency":"EUR","channel":"contactless","status":"approved",
            "merchant":{{"name":"Cafe","mcc":"5812","country":"KH","city":"Phnom Penh","lat":11.55,"lon":104.92}}{extra}}}"#
        )
    }

    #[test]
    fn decodes_a_card_transaction_with_string_amount_and_unknown_fields() {
        let e = decode(card_json(r#","something_new":{"x":1}"#).as_bytes()).unwrap();
        assert_eq!(e.kind(), EventKind::CardTransaction);
        assert_eq!(e.ts.to_string(), "2026-11-24T03:00:00.000Z");
        let EventBody::CardTransaction(t) = e.body else { panic!() };
        assert_eq!(t.money.amount, 12.5);
        assert_eq!(t.place.city, "Phnom Penh");
        assert_eq!(t.mcc.as_deref(), Some("5812"));
        assert!(t.channel.is_physical());
    }

    #[test]
    fn numeric_amount_and_numeric_mcc() {
        let json = card_json("").replace(r#""12.50""#, "12.5").replace(r#""5812""#, "5812");
        let e = decode(json.as_bytes()).unwrap();
        let EventBody::CardTransaction(t) = e.body else { panic!() };
        assert_eq!(t.money.amount, 12.5);
        assert_eq!(t.mcc.as_deref(), Some("5812"));
    }

    #[test]
    fn errors_name_the_field_and_the_value() {
        let json = card_json("").replace(r#""lat":11.55"#, r#""lat":123.4"#);
        let err = decode(json.as_bytes()).unwrap_err();
        assert_eq!(err.reason_code(), "invalid_field");
        let msg = err.to_string();
        assert!(msg.contains("merchant.lat") && msg.contains("123.4") && msg.contains("-90..90"), "{msg}");

        let json = card_json("").replace(r#""amount":"12.50","#, "");
        let err = decode(json.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "missing field `amount` (required for card_transaction)");

        let json = card_json("").replace("12.50", "12,50");
        let msg = decode(json.as_bytes()).unwrap_err().to_string();
        assert!(msg.contains("decimal") && msg.contains("\"12,50\""), "{msg}");

        let json = card_json("").replace("+07:00", "");
        let msg = decode(json.as_bytes()).unwrap_err().to_string();
        assert!(msg.contains("`ts`") && msg.contains("RFC 3339"), "{msg}");
    }

    /// A card number where the token belongs is refused as `card_number`, and no message about
    /// it repeats the number.
    #[test]
    fn a_card_number_is_refused_and_never_repeated() {
        for pan in ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"] {
            let err = decode(
                card_json("").replace(r#""card_id":"k1""#, &format!(r#""card_id":"{pan}""#)).as_bytes(),
            )
            .unwrap_err();
            assert_eq!(err.reason_code(), "card_number", "{pan}");
            let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
            for text in [err.to_string(), err.redacted()] {
                assert!(!text.contains(pan) && !text.contains(&digits[digits.len() - 8..]), "{text}");
            }
        }
        // Masked for the dead-letter topic: the last four digits, the rest of the event kept.
        let json = card_json("").replace(r#""card_id":"k1""#, r#""card_id":"4111 1111 1111 1111""#);
        let masked = String::from_utf8(mask_card_number(json.as_bytes()).unwrap()).unwrap();
        assert!(
            masked.contains(r#""card_id":"************1111""#) && masked.contains("Phnom Penh"),
            "{masked}"
        );
        assert!(!masked.contains("4111 1111"), "{masked}");
        assert_eq!(mask_card_number(card_json("").as_bytes()), None, "a token is not masked");
        // Tokens, and digit strings that fail the checksum or are too short, are tokens.
        for token in ["tok_4111111111111111", "4111111111111112", "123456789012", "k1"] {
            let json = card_json("").replace(r#""card_id":"k1""#, &format!(r#""card_id":"{token}""#));
            assert!(decode(json.as_bytes()).is_ok(), "{token}");
        }
    }

    /// What a log line carries of a refusal: the field and why, never the value.
    #[test]
    fn the_redacted_form_keeps_the_reason_and_hides_the_value() {
        let json = card_json("").replace(r#""lat":11.55"#, r#""lat":123.4"#);
        let err = decode(json.as_bytes()).unwrap_err();
        let line = err.redacted();
        assert!(
            line.contains("merchant.lat") && line.contains("-90..90") && !line.contains("123.4"),
            "{line}"
        );
        let err = decode(
            card_json("").replace(r#""status":"approved""#, r#""status":"jane@example.com""#).as_bytes(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("jane@example.com"), "the full message names it: {err}");
        assert!(!err.redacted().contains("jane"), "{}", err.redacted());
        let err = decode(
            br#"{"event_id":"e","type":"jane@example.com","customer_id":"c","ts":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap_err();
        assert!(!err.redacted().contains("jane"), "{}", err.redacted());
    }

    #[test]
    fn unknown_type_and_malformed_json() {
        let err =
            decode(br#"{"event_id":"e","type":"teleport","customer_id":"c","ts":"2026-01-01T00:00:00Z"}"#)
                .unwrap_err();
        assert_eq!(err.reason_code(), "unknown_type");
        assert!(err.to_string().contains("teleport"));
        let err = decode(b"{not json").unwrap_err();
        assert_eq!(err.reason_code(), "malformed_json");
        let err = decode(card_json("").replace(r#""status":"approved""#, r#""status":true"#).as_bytes())
            .unwrap_err();
        assert_eq!(err.reason_code(), "malformed_json");
        assert!(err.to_string().contains("`status`"), "{err}");
    }

    #[test]
    fn oversized_messages_are_refused_before_parsing() {
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(decode(&big).unwrap_err().reason_code(), "oversized");
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(parse_decimal("12"), Some(12.0));
        assert_eq!(parse_decimal("0.5"), Some(0.5));
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal("12."), None);
        assert_eq!(parse_decimal(".5"), None);
        assert_eq!(parse_decimal("1,000"), None);
    }

    #[test]
    fn every_type_decodes() {
        let base = r#""event_id":"e","customer_id":"c","ts":"2026-11-24T10:00:00-05:00""#;
        let cases = [
            r#""type":"customer_profile","name":"A","email":"a@b.c","language":"ru","segment":"private","home":{"country":"GB","city":"London","lat":51.5,"lon":-0.1},"timezone":"Europe/London","consent":{"email":true}"#,
            r#""type":"login","channel":"web","success":false,"device_id":"d1","ip":"1.2.3.4""#,
            r#""type":"transfer","direction":"out","amount":1000,"currency":"GBP","counterparty_bank":"Other","own_account":true"#,
            r#""type":"support_contact","channel":"phone","reason":"card_blocked","resolved":false,"duration_s":300"#,
            r#""type":"complaint","category":"fees","severity":"high","text":"..." "#,
            r#""type":"product_change","product":"deposit","action":"close""#,
            r#""type":"travel_notice","countries":["KH","TH"],"from":"2026-11-20","to":"2026-12-05""#,
        ];
        for case in cases {
            let json = format!("{{{base},{case}}}");
            let e = decode(json.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
            if let EventBody::SupportContact(c) = e.body {
                assert_eq!(c.duration_s, Some(300.0));
            }
        }
    }

    /// What serde_json alone makes of a message (the reference `decode` falls back to).
    fn decode_with_serde_json(bytes: &[u8]) -> Result<Event, DecodeError> {
        let raw: RawEvent<'_> = serde_json::from_slice(bytes).map_err(|e| describe_json_error(bytes, e))?;
        raw.validate()
    }

    /// sonic-rs parses, serde_json words the refusals: for the corners of the JSON grammar,
    /// `decode` gives exactly what serde_json alone gives (the same event, or the same error).
    #[test]
    fn decoding_agrees_with_serde_json_on_the_corners_of_json() {
        let valid = card_json("").replace('\n', " ");
        let with = |from: &str, to: &str| -> Vec<u8> {
            assert!(valid.contains(from), "{from}");
            valid.replacen(from, to, 1).into_bytes()
        };
        let deep = format!(r#","x":{}1{}"#, "[".repeat(200), "]".repeat(200));
        let mut cases: Vec<Vec<u8>> = vec![
            valid.clone().into_bytes(),
            with("Phnom Penh", r#"Phnom\u0001Penh"#),
            with("Phnom Penh", r#"Phnom\u0000Penh"#),
            with("Phnom Penh", "Phnom\tPenh"),
            with("Phnom Penh", r#"Phnom\tPenh"#),
            with("Phnom Penh", r#"Phnom\\Penh"#),
            with("Phnom Penh", "Phnom\\Penh"),
            with("Phnom Penh", r#"Phnom\u00e9Penh"#),
            with("Phnom Penh", r#"Phnom\/Penh"#),
            with("Phnom Penh", r#"Phnom\ud800Penh"#),
            with("Phnom Penh", r#"Phnom\udc00Penh"#),
            with("Phnom Penh", r#"Phnom\ud83d\ude00Penh"#),
            with("Phnom Penh", r#"Phnom\xPenh"#),
            with("Phnom Penh", r#"Phnom\u12Penh"#),
            with("Phnom Penh", r#"Phnom\u007fPenh"#),
            with("11.55", "011.55"),
            with("11.55", "11."),
            with("11.55", ".5"),
            with("11.55", "-"),
            with("11.55", "1e"),
            with("11.55", "+1"),
            with("11.55", "1E1"),
            with("11.55", "-0"),
            with("11.55", "1e400"),
            with("11.55", "NaN"),
            with("11.55", "Infinity"),
            with("11.55", "null"),
            with("11.55", "11.550000000000000000000000001"),
            with("11.55", "\"11.55\""),
            with(r#""5812""#, "99999999999999999999"),
            with(r#""5812""#, "5812.0"),
            with(r#""5812""#, "-5812"),
            with(r#""12.50""#, "12.5e0"),
            with(r#""12.50""#, "-0.0"),
            with(r#""12.50""#, "true"),
            with(r#""approved""#, "true"),
            with(r#""e1""#, r#""e1","event_id":"e2""#),
            with(r#""event_id""#, r#""event_\u0069d""#),
            with("}}", "},}"),
            with("}}", "}}}"),
            with("}}", "}} x"),
            with("}}", "}}{}"),
            with("}}", "}}  \n"),
            with("}}", &format!("}}{deep}}}")),
            with(r#""k1","#, "'k1',"),
            with(r#""k1","#, r#""k1" /* c */,"#),
            with(r#""k1","#, "\"k1\",\u{a0}"),
            b"".to_vec(),
            b"   ".to_vec(),
            b"null".to_vec(),
            b"[]".to_vec(),
            b"{}".to_vec(),
            b"\"text\"".to_vec(),
            [b"\xef\xbb\xbf".as_slice(), valid.as_bytes()].concat(),
        ];
        // Raw bytes that no text literal above can carry.
        let raw_byte = |byte: u8| {
            let mut b = valid.clone().into_bytes();
            let at = valid.find("Phnom").unwrap() + 5;
            b[at] = byte;
            b
        };
        for byte in [0x00, 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc0, 0xff] {
            cases.push(raw_byte(byte));
        }
        let mut overlong = valid.clone().into_bytes();
        let at = valid.find("Phnom").unwrap();
        overlong.splice(at..at + 1, [0xc0, 0xaf]);
        cases.push(overlong);
        for case in &cases {
            let shown = String::from_utf8_lossy(case);
            assert_eq!(decode(case), decode_with_serde_json(case), "{shown}");
        }
    }

    #[test]
    fn nesting_bound_counts_every_bracket_across_chunks() {
        // 600 bytes: brackets on both sides of the 255- and 510-byte chunk edges.
        let mut bytes = vec![b' '; 600];
        for at in [0, 254, 255, 256, 509, 510, 599] {
            bytes[at] = if at % 2 == 0 { b'{' } else { b'[' };
        }
        bytes[300] = b'}';
        assert_eq!(nesting_bound(&bytes), 7);
        assert_eq!(nesting_bound(&[b'['; 300]), 300);
        assert_eq!(nesting_bound(b""), 0);
    }

    #[test]
    fn ids_with_a_nul_are_refused() {
        let json = r#"{"event_id":"e","type":"login","customer_id":"c\u0000d","ts":"2026-11-24T10:00:00Z",
            "channel":"web","success":true,"device_id":"d1","ip":"1.2.3.4"}"#;
        let e = decode(json.as_bytes()).unwrap_err();
        assert_eq!(e.reason_code(), "invalid_field");
        assert!(e.to_string().contains("customer_id") && e.to_string().contains("NUL"), "{e}");
    }
}
