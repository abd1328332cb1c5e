//! A deterministic generator of a realistic event stream, for the demo, the scenario tests and
//! the benches.
//!
//! Many ordinary customers with ordinary noise (daily payments at home, online shopping at
//! foreign shops, real trips by plane, supplementary cards, typo'd logins, resolved support
//! calls), plus planted scenarios: each kind of incident the default rules must find, and the
//! look-alikes they must not page anyone for. Timestamps carry the local UTC offset of the city
//! where the event happens; a small share of events is redelivered (same `event_id`) or arrives a
//! few minutes late. The same seed gives the same stream, byte for byte.

use serde_json::{json, Value};

use crate::time::{Timestamp, DAY, HOUR, MINUTE};

/// A city: name, country, coordinates, currency, UTC offset in minutes.
#[derive(Debug, Clone, Copy)]
pub struct City {
    pub name: &'static str,
    pub country: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub currency: &'static str,
    pub offset_min: i32,
}

const fn city(
    name: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
    currency: &'static str,
    offset_min: i32,
) -> City {
    City { name, country, lat, lon, currency, offset_min }
}

/// Cities ordinary customers live in and travel to.
pub const CITIES: &[City] = &[
    city("London", "GB", 51.5072, -0.1276, "GBP", 0),
    city("Paris", "FR", 48.8566, 2.3522, "EUR", 60),
    city("Berlin", "DE", 52.52, 13.405, "EUR", 60),
    city("Madrid", "ES", 40.4168, -3.7038, "EUR", 60),
    city("Rome", "IT", 41.9028, 12.4964, "EUR", 60),
    city("Moscow", "RU", 55.7558, 37.6173, "RUB", 180),
    city("Almaty", "KZ", 43.222, 76.8512, "KZT", 300),
    city("Istanbul", "TR", 41.0082, 28.9784, "TRY", 180),
    city("Dubai", "AE", 25.2048, 55.2708, "AED", 240),
    city("New York", "US", 40.7128, -74.006, "USD", -300),
    city("Bangkok", "TH", 13.7563, 100.5018, "THB", 420),
    city("Tokyo", "JP", 35.6762, 139.6503, "JPY", 540),
];

const PHNOM_PENH: City = city("Phnom Penh", "KH", 11.5564, 104.9282, "KHR", 420);
const SUVA: City = city("Suva", "FJ", -18.1248, 178.4501, "FJD", 720);
const APIA: City = city("Apia", "WS", -13.8333, -171.7667, "WST", 780);
const VERSAILLES: City = city("Versailles", "FR", 48.8049, 2.1204, "EUR", 60);
const LONDON: City = CITIES[0];
const PARIS: City = CITIES[1];
const MADRID: City = CITIES[3];
const NEW_YORK: City = CITIES[9];

/// What the generated stream should produce for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub customer_id: String,
    /// What the scenario is, in a few words.
    pub scenario: &'static str,
    /// The rule that must open a task, or `None` if the customer must get no task at all.
    pub rule: Option<&'static str>,
}

/// The shape of a generated stream.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub customers: usize,
    pub days: u32,
    pub seed: u64,
    /// Plant the incident and look-alike scenarios.
    pub scenarios: bool,
    /// Redeliver ~1% of events and delay ~2% by up to five minutes.
    pub noise: bool,
}

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec { customers: 2_000, days: 90, seed: 7, scenarios: true, noise: true }
    }
}

/// A generated stream: JSON lines in arrival order, and what they should produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub lines: Vec<String>,
    pub expected: Vec<Expectation>,
}

/// The stream starts at 2026-06-01T00:00:00Z.
pub const START: Timestamp = Timestamp(1_780_272_000_000);

/// Builds events for one customer.
struct Writer<'a> {
    customer: String,
    events: &'a mut Vec<(Timestamp, String)>,
    next_id: u32,
}

impl Writer<'_> {
    fn push(&mut self, at: Timestamp, offset_min: i32, kind: &str, mut body: Value) {
        self.next_id += 1;
        let fields = body.as_object_mut().expect("event bodies are objects");
        fields.insert("event_id".into(), json!(format!("{}-{}", self.customer, self.next_id)));
        fields.insert("type".into(), json!(kind));
        fields.insert("customer_id".into(), json!(self.customer));
        fields.insert("ts".into(), json!(local_rfc3339(at, offset_min)));
        self.events.push((at, body.to_string()));
    }

    fn profile(&mut self, at: Timestamp, name: &str, segment: &str, language: &str, home: City) {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        self.push(
            at,
            home.offset_min,
            "customer_profile",
            json!({"name": name, "email": email, "phone": "+440000000000", "language": language,
                   "segment": segment, "timezone": "Etc/UTC", "consent": {"email": true},
                   "home": {"country": home.country, "city": home.name, "lat": home.lat, "lon": home.lon}}),
        );
    }

    #[allow(clippy::too_many_arguments)]
    /// A card payment of about `amount_eur` euros, in the city's currency.
    fn card(
        &mut self,
        at: Timestamp,
        card: &str,
        channel: &str,
        amount_eur: f64,
        c: City,
        merchant: &str,
        approved: bool,
    ) {
        let rate = crate::money::Currency::parse(c.currency).and_then(|k| k.eur_rate()).unwrap_or(1.0);
        let amount = format!("{:.2}", amount_eur / rate);
        self.push(
            at,
            c.offset_min,
            "card_transaction",
            json!({"card_id": card, "amount": amount, "currency": c.currency, "channel": channel,
                   "status": if approved { "approved" } else { "declined" },
                   "merchant": {"name": merchant, "mcc": "5411", "country": c.country, "city": c.name,
                                "lat": c.lat, "lon": c.lon}}),
        );
    }

    fn login(&mut self, at: Timestamp, c: City, success: bool, device: &str) {
        self.push(
            at,
            c.offset_min,
            "login",
            json!({"channel": "mobile", "success": success, "device_id": device, "ip": "192.0.2.1",
                   "geo": {"country": c.country, "city": c.name, "lat": c.lat, "lon": c.lon}}),
        );
    }

    fn transfer(&mut self, at: Timestamp, out: bool, amount: f64, own: bool, bank: &str) {
        self.push(
            at,
            0,
            "transfer",
            json!({"direction": if out { "out" } else { "in" }, "amount": amount, "currency": "EUR",
                   "counterparty_bank": bank, "own_account": own}),
        );
    }

    fn contact(&mut self, at: Timestamp, reason: &str, resolved: bool) {
        self.push(
            at,
            0,
            "support_contact",
            json!({"channel": "phone", "reason": reason, "resolved": resolved, "duration_s": 420}),
        );
    }

    fn complaint(&mut self, at: Timestamp, category: &str, severity: &str) {
        self.push(at, 0, "complaint", json!({"category": category, "severity": severity, "text": "…"}));
    }

    fn product(&mut self, at: Timestamp, product: &str, action: &str) {
        self.push(at, 0, "product_change", json!({"product": product, "action": action}));
    }
}

/// Formats an instant in a local offset, e.g. `2026-06-01T09:30:00+07:00`.
pub fn local_rfc3339(at: Timestamp, offset_min: i32) -> String {
    let local = Timestamp(at.0 + i64::from(offset_min) * MINUTE);
    let text = local.to_string(); // UTC form of the shifted instant: "YYYY-MM-DDTHH:MM:SS.mmmZ"
    let stem = &text[..19];
    if offset_min == 0 {
        return format!("{stem}Z");
    }
    let sign = if offset_min < 0 { '-' } else { '+' };
    let m = offset_min.unsigned_abs();
    format!("{stem}{sign}{:02}:{:02}", m / 60, m % 60)
}

fn names(rng: &mut fastrand::Rng) -> (&'static str, &'static str) {
    const EN: &[&str] = &["Alice Brown", "Tom Hughes", "Priya Patel", "John Smith", "Emma Wilson"];
    const RU: &[&str] = &["Anna Petrova", "Ivan Sokolov", "Olga Ivanova", "Dmitry Volkov", "Maria Orlova"];
    if rng.bool() {
        (EN[rng.usize(..EN.len())], "en")
    } else {
        (RU[rng.usize(..RU.len())], "ru")
    }
}

/// A log-normal-ish amount around `median`.
fn amount(rng: &mut fastrand::Rng, median: f64) -> f64 {
    let z: f64 = (0..4).map(|_| rng.f64()).sum::<f64>() - 2.0; // ~N(0, 0.58)
    (median * (0.7 * z).exp()).max(1.0)
}

/// One ordinary customer's life over the period: payments at home most days, logins, online
/// shopping (often at foreign shops), now and then a real trip by plane, a support call, a
/// typo'd password.
fn ordinary(rng: &mut fastrand::Rng, id: usize, days: u32, events: &mut Vec<(Timestamp, String)>) {
    let home = CITIES[rng.usize(..CITIES.len())];
    let customer = format!("c{id:07}");
    let mut w = Writer { customer: customer.clone(), events, next_id: 0 };
    let (name, language) = names(rng);
    let segment = ["mass", "mass", "mass", "affluent", "private", "business"][rng.usize(..6)];
    if rng.f64() < 0.95 {
        // A few customers' profiles never arrive.
        w.profile(START.plus(rng.i64(0..DAY)), name, segment, language, home);
    }
    let median = [8.0, 25.0, 60.0, 150.0][rng.usize(..4)];
    let per_day = 0.5 + rng.f64() * 2.0;
    let card = format!("{customer}-k1");
    let device = format!("{customer}-phone");
    let has_second_card = rng.f64() < 0.1;
    let second_city = CITIES[rng.usize(..CITIES.len())];
    let trip_day = if rng.f64() < 0.15 { Some(rng.u32(10..days.saturating_sub(10).max(11))) } else { None };
    let mut here = home;
    for day in 0..days {
        let day_start = START.plus(i64::from(day) * DAY);
        let mut travelling = false;
        if let Some(t) = trip_day {
            // A day in the air each way: the next payment is over a day after the last one.
            if day == t {
                here = CITIES[rng.usize(..CITIES.len())];
                travelling = true;
            } else if day == t + 4 {
                here = home;
                travelling = true;
            }
        }
        let n = if travelling { 0 } else { (per_day + rng.f64() - 0.5).round().max(0.0) as usize };
        for _ in 0..n {
            let at = day_start.plus(8 * HOUR + rng.i64(0..12 * HOUR));
            if rng.f64() < 0.2 {
                let shop = CITIES[rng.usize(..CITIES.len())];
                w.card(at, &card, "ecommerce", amount(rng, median), shop, "Web Shop", true);
            } else {
                let channel = ["card_present", "contactless", "contactless", "atm"][rng.usize(..4)];
                w.card(at, &card, channel, amount(rng, median), here, "Local Store", true);
            }
        }
        if has_second_card && rng.f64() < 0.3 {
            let at = day_start.plus(9 * HOUR + rng.i64(0..10 * HOUR));
            w.card(
                at,
                &format!("{customer}-k2"),
                "contactless",
                amount(rng, median),
                second_city,
                "Corner Shop",
                true,
            );
        }
        if rng.f64() < 0.7 {
            let at = day_start.plus(7 * HOUR + rng.i64(0..14 * HOUR));
            if rng.f64() < 0.05 {
                w.login(at, here, false, &device);
            }
            w.login(at.plus(MINUTE), here, true, &device);
        }
        if rng.f64() < 0.01 {
            w.contact(day_start.plus(11 * HOUR), "statement_question", true);
        }
        if rng.f64() < 0.04 {
            w.transfer(day_start.plus(10 * HOUR), rng.bool(), amount(rng, 200.0), false, "Other Bank");
        }
    }
}

/// Generates the stream.
pub fn generate(spec: &StreamSpec) -> Generated {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut events: Vec<(Timestamp, String)> = Vec::new();
    for id in 0..spec.customers {
        ordinary(&mut rng, id, spec.days, &mut events);
    }
    let mut expected = Vec::new();
    if spec.scenarios {
        plant_scenarios(&mut rng, spec.days, &mut events, &mut expected);
    }
    events.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut lines: Vec<String> = events.into_iter().map(|(_, line)| line).collect();
    if spec.noise {
        add_noise(&mut rng, &mut lines);
    }
    Generated { lines, expected }
}

/// Redelivers ~1% of events a little later and moves ~2% a few positions back (late arrival).
fn add_noise(rng: &mut fastrand::Rng, lines: &mut Vec<String>) {
    let n = lines.len();
    let mut out = Vec::with_capacity(n + n / 100);
    for (i, line) in lines.drain(..).enumerate() {
        out.push(line);
        if rng.f64() < 0.01 {
            // A producer retry: the same message again, a few messages later.
            let dup = out[i.min(out.len() - 1)].clone();
            out.push(dup);
        }
        let len = out.len();
        if len > 10 && rng.f64() < 0.02 {
            // Arrives a few messages late (well within the allowed lateness at these rates).
            let back = rng.usize(1..5);
            out.swap(len - 1, len - 1 - back);
        }
    }
    *lines = out;
}

/// A customer with a few weeks of ordinary history, ready for a scenario.
#[allow(clippy::too_many_arguments)]
fn history(
    w: &mut Writer<'_>,
    rng: &mut fastrand::Rng,
    home: City,
    card: &str,
    median: f64,
    from_day: u32,
    days: u32,
) {
    for day in from_day..from_day + days {
        let day_start = START.plus(i64::from(day) * DAY);
        w.card(
            day_start.plus(9 * HOUR + rng.i64(0..8 * HOUR)),
            card,
            "contactless",
            amount(rng, median),
            home,
            "Local Store",
            true,
        );
        w.login(day_start.plus(20 * HOUR), home, true, &format!("{}-phone", w.customer));
    }
}

fn plant_scenarios(
    rng: &mut fastrand::Rng,
    days: u32,
    events: &mut Vec<(Timestamp, String)>,
    expected: &mut Vec<Expectation>,
) {
    let mut n = 0;
    let mut scenario = |scenario: &'static str, rule: Option<&'static str>| {
        n += 1;
        let id = format!("s{n:03}");
        expected.push(Expectation { customer_id: id.clone(), scenario, rule });
        id
    };
    let day = |d: u32| START.plus(i64::from(d) * DAY);
    let last = days.saturating_sub(1).max(40);

    // The story: Phnom Penh, then a museum in Paris 30 minutes later.
    let c = scenario("card in Phnom Penh then Paris 30 min later", Some("impossible_travel"));
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "Anna Petrova", "private", "ru", LONDON);
    history(&mut w, rng, LONDON, "pp-k1", 30.0, 1, 20);
    w.card(day(30).plus(2 * HOUR), "pp-k1", "contactless", 12.0, PHNOM_PENH, "Riverside Cafe", true);
    w.card(day(30).plus(2 * HOUR + 30 * MINUTE), "pp-k1", "card_present", 45.0, PARIS, "Musee d'Orsay", true);

    // A real flight Phnom Penh → Paris: 14 hours later.
    let c = scenario("real flight Phnom Penh to Paris", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Tom Hughes", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "rf-k1", 30.0, 1, 20);
    w.card(day(31).plus(HOUR), "rf-k1", "contactless", 12.0, PHNOM_PENH, "Airport Cafe", true);
    w.card(day(31).plus(15 * HOUR), "rf-k1", "card_present", 45.0, PARIS, "CDG Bakery", true);

    // Across the antimeridian: Suva → Apia in 2 hours is a flight; in 20 minutes it is not.
    let c = scenario("flight Suva to Apia across the antimeridian", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    history(&mut w, rng, SUVA, "am-k1", 20.0, 1, 15);
    w.card(day(32), "am-k1", "contactless", 10.0, SUVA, "Suva Market", true);
    w.card(day(32).plus(2 * HOUR), "am-k1", "atm", 100.0, APIA, "Apia ATM", true);
    let c = scenario("Suva then Apia 20 min later", Some("impossible_travel"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    history(&mut w, rng, SUVA, "am-k2", 20.0, 1, 15);
    w.card(day(33), "am-k2", "contactless", 10.0, SUVA, "Suva Market", true);
    w.card(day(33).plus(20 * MINUTE), "am-k2", "atm", 100.0, APIA, "Apia ATM", true);

    // Neighbouring cities: Paris then Versailles 10 minutes later (17 km, city precision).
    let c = scenario("Paris then Versailles 10 min later", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Emma Wilson", "mass", "en", PARIS);
    history(&mut w, rng, PARIS, "nb-k1", 25.0, 1, 20);
    w.card(day(34).plus(10 * HOUR), "nb-k1", "card_present", 20.0, PARIS, "Cafe", true);
    w.card(
        day(34).plus(10 * HOUR + 10 * MINUTE),
        "nb-k1",
        "contactless",
        15.0,
        VERSAILLES,
        "Chateau Shop",
        true,
    );

    // E-commerce abroad: a New York web shop five minutes after a payment in London.
    let c = scenario("online shop registered abroad", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "John Smith", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "ec-k1", 25.0, 1, 20);
    w.card(day(35).plus(10 * HOUR), "ec-k1", "contactless", 20.0, LONDON, "Pret", true);
    w.card(day(35).plus(10 * HOUR + 5 * MINUTE), "ec-k1", "ecommerce", 30.0, NEW_YORK, "US Web Store", true);

    // A second card: the customer in London, their partner's supplementary card in Madrid.
    let c = scenario("supplementary card used in another city", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Priya Patel", "affluent", "en", LONDON);
    history(&mut w, rng, LONDON, "sc-main", 40.0, 1, 20);
    w.card(day(36).plus(12 * HOUR), "sc-main", "contactless", 20.0, LONDON, "Tesco", true);
    w.card(
        day(36).plus(12 * HOUR + 15 * MINUTE),
        "sc-supp",
        "contactless",
        25.0,
        MADRID,
        "El Corte Ingles",
        true,
    );

    // A card replacement: new card opened, old one closed, new card used (not churn, not fraud).
    let c = scenario("card replacement", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Olga Ivanova", "mass", "ru", LONDON);
    history(&mut w, rng, LONDON, "rp-old", 25.0, 1, 20);
    w.product(day(37), "card", "open");
    w.product(day(37).plus(HOUR), "card", "close");
    history(&mut w, rng, LONDON, "rp-new", 25.0, 38, 10);

    // A quiet spender's big purchase.
    let c = scenario("quiet spender buys for 2,500 EUR", Some("amount_anomaly"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Ivan Sokolov", "mass", "ru", PARIS);
    history(&mut w, rng, PARIS, "qa-k1", 20.0, 1, 20);
    w.card(day(38).plus(14 * HOUR), "qa-k1", "ecommerce", 2_500.0, PARIS, "Luxury Watches", true);

    // A big spender's big purchase is ordinary.
    let c = scenario("big spender buys for 2,500 EUR", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Maria Orlova", "private", "ru", PARIS);
    history(&mut w, rng, PARIS, "bs-k1", 1_500.0, 1, 20);
    w.card(day(38).plus(14 * HOUR), "bs-k1", "card_present", 2_500.0, PARIS, "Jeweller", true);

    // Card testing: six tiny or declined online attempts in six minutes.
    let c = scenario("card testing online", Some("card_testing"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Dmitry Volkov", "mass", "ru", LONDON);
    history(&mut w, rng, LONDON, "ct-k1", 30.0, 1, 20);
    for i in 0..6 {
        w.card(
            day(39).plus(3 * HOUR + i * MINUTE),
            "ct-k1",
            "ecommerce",
            1.0,
            NEW_YORK,
            "Tiny Donations",
            i % 2 == 0,
        );
    }

    // Account takeover: failures, a new device, money out.
    let c = scenario("account takeover", Some("account_takeover"));
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "Alice Brown", "affluent", "en", LONDON);
    history(&mut w, rng, LONDON, "at-k1", 30.0, 1, 20);
    for i in 0..4 {
        w.login(day(40).plus(2 * HOUR + i * MINUTE), LONDON, false, "unknown-laptop");
    }
    w.login(day(40).plus(2 * HOUR + 5 * MINUTE), LONDON, true, "unknown-laptop");
    w.transfer(day(40).plus(2 * HOUR + 12 * MINUTE), true, 3_000.0, false, "Mule Bank");

    // Typos on a known device, then an ordinary transfer: not a takeover.
    let c = scenario("password typos on own phone", None);
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "John Smith", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "ty-k1", 30.0, 1, 20);
    for i in 0..3 {
        w.login(day(40).plus(2 * HOUR + i * MINUTE), LONDON, false, &format!("{c}-phone"));
    }
    w.login(day(40).plus(2 * HOUR + 4 * MINUTE), LONDON, true, &format!("{c}-phone"));
    w.transfer(day(40).plus(2 * HOUR + 10 * MINUTE), true, 300.0, false, "Landlord Bank");

    // Churn: an active customer complains, then falls silent while the stream goes on.
    let c = scenario("active customer complains then falls silent", Some("churn_risk"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Emma Wilson", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "ch-k1", 30.0, 0, 40);
    w.complaint(day(40).plus(HOUR), "fees", "medium");

    // Churn while still active: savings moved to own account elsewhere, deposit closed.
    let c = scenario("moves savings to another bank and closes deposit", Some("churn_risk"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Olga Ivanova", "affluent", "ru", MADRID);
    history(&mut w, rng, MADRID, "mv-k1", 30.0, 0, 45);
    w.transfer(day(44).plus(HOUR), true, 8_000.0, true, "Neo Bank");
    w.product(day(44).plus(2 * HOUR), "deposit", "close");

    // An always-quiet customer: one payment every two weeks; long gaps are their normal.
    let c = scenario("always quiet customer", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Tom Hughes", "mass", "en", LONDON);
    let mut d = 0;
    while d < last {
        w.card(
            day(d).plus(12 * HOUR),
            "qq-k1",
            "card_present",
            amount(rng, 30.0),
            LONDON,
            "Local Store",
            true,
        );
        d += 14;
    }
    w.complaint(day(20), "app", "low");

    // Repeat contact: three unresolved calls about the same problem in five days.
    let c = scenario("three unresolved calls about a blocked card", Some("repeat_contact"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Priya Patel", "business", "en", LONDON);
    for (i, d) in [41, 43, 45].into_iter().enumerate() {
        w.contact(day(d).plus(HOUR * (9 + i as i64)), "card_blocked", false);
    }

    // A high-severity complaint.
    let c = scenario("high-severity complaint", Some("complaint_escalation"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Anna Petrova", "mass", "ru", PARIS);
    w.complaint(day(42), "mis-selling", "high");

    // No profile ever arrives: the impossible pair is still found; the task says so.
    let c = scenario("impossible travel, profile never arrives", Some("impossible_travel"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    history(&mut w, rng, LONDON, "np-k1", 30.0, 1, 10);
    w.card(day(43).plus(10 * HOUR), "np-k1", "atm", 200.0, LONDON, "London ATM", true);
    w.card(day(43).plus(11 * HOUR), "np-k1", "card_present", 900.0, NEW_YORK, "5th Avenue Store", true);

    // A complaint in a category the playbook has no procedure for: escalated with the default
    // procedure, and the task says the category has none.
    let c =
        scenario("high-severity complaint in a category without a procedure", Some("complaint_escalation"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Ivan Sokolov", "mass", "ru", MADRID);
    w.complaint(day(44), "branch_closure", "high");

    // Two complaints about fees in a week.
    let c = scenario("two complaints about fees in a week", Some("complaint_escalation"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Emma Wilson", "mass", "en", LONDON);
    w.complaint(day(45), "fees", "medium");
    w.complaint(day(47), "fees", "low");

    // Both queues at once: the card is tested online (fraud), then the customer complains about
    // the card (care); each task names the other.
    let c = scenario("card tested online, then a complaint about the card", Some("card_testing"));
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "Maria Orlova", "mass", "ru", PARIS);
    history(&mut w, rng, PARIS, "bq-k1", 30.0, 1, 20);
    for i in 0..5 {
        w.card(
            day(46).plus(4 * HOUR + i * MINUTE),
            "bq-k1",
            "ecommerce",
            1.0,
            NEW_YORK,
            "Tiny Donations",
            false,
        );
    }
    w.complaint(day(46).plus(6 * HOUR), "card", "high");

    // A large payment in a country the customer never told us about (the shadow rule
    // `large_payment_untrusted_country` counts it; the amount anomaly pages).
    let c = scenario("large payment abroad without a travel notice", Some("amount_anomaly"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "John Smith", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "lp-k1", 30.0, 1, 20);
    w.card(day(48).plus(15 * HOUR), "lp-k1", "card_present", 1_200.0, NEW_YORK, "Electronics Store", true);

    // A new card that is never used (the shadow rule `new_card_unused` counts it; nobody is
    // paged).
    let c = scenario("new card never used", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Olga Ivanova", "mass", "ru", MADRID);
    history(&mut w, rng, MADRID, "nc-k1", 25.0, 1, 20);
    w.product(day(25), "card", "open");
    // Income that stops: a fortnightly salary, then nothing, and the card goes quiet.
    let c = scenario("salary stops, then the card goes quiet", Some("income_stopped"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Mark Evans", "mass", "en", LONDON);
    let s0 = last.saturating_sub(50);
    history(&mut w, rng, LONDON, "is-k1", 25.0, 0, s0 + 36);
    for k in 0..3 {
        w.transfer(
            day(s0 + 14 * k).plus(7 * HOUR),
            false,
            1_450.0 + f64::from(k) * 10.0,
            false,
            "Acme Payroll",
        );
    }

    // A new employer paying on time: the flow continues, nobody is paged.
    let c = scenario("salary from a new employer", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Sara Costa", "mass", "en", MADRID);
    history(&mut w, rng, MADRID, "ne-k1", 25.0, 0, last);
    for k in 0..(last - s0) / 14 + 1 {
        let (payer, pay) =
            if k < 3 { ("Old Employer Bank", 1_800.0) } else { ("New Employer Bank", 1_950.0) };
        w.transfer(day(s0 + 14 * k).plus(7 * HOUR), false, pay, false, payer);
    }

    // A few large purchases every two weeks or so since the stream began: each is normal.
    let c = scenario("large purchases every two weeks", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Lena Fischer", "affluent", "en", PARIS);
    history(&mut w, rng, PARIS, "lf-k1", 30.0, 0, last);
    for (k, d) in (2..last).step_by(15).enumerate() {
        let amount = [720.0, 940.0, 810.0, 880.0, 760.0][k % 5];
        w.card(
            day(d).plus(18 * HOUR),
            "lf-k1",
            "ecommerce",
            amount,
            PARIS,
            ["Design Store", "Travel Agency"][k % 2],
            true,
        );
    }

    // A care home paid by card every month, and cash on payday: the pattern from its second time.
    let c = scenario("care home paid by card monthly, cash on payday", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Peter Novak", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "ch-k9", 20.0, 0, last);
    for d in (3..last).step_by(30) {
        w.transfer(day(d).plus(6 * HOUR), false, 2_100.0, false, "City Pension Fund");
        w.card(
            day(d).plus(10 * HOUR),
            "ch-k9",
            "atm",
            400.0,
            LONDON,
            ["High St ATM", "Station ATM"][d as usize % 2],
            true,
        );
        w.card(day(d + 1).plus(9 * HOUR), "ch-k9", "ecommerce", 1_380.0, LONDON, "Oakwood Care Home", true);
    }

    // One problem, three spellings from three systems: one repeat contact.
    let c =
        scenario("three unresolved contacts about one problem, spelled three ways", Some("repeat_contact"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Nina Berg", "mass", "en", PARIS);
    for (i, reason) in ["fee_dispute", "Fee dispute", " FEE-DISPUTE "].into_iter().enumerate() {
        w.contact(day(last - 20 + 2 * i as u32).plus(10 * HOUR), reason, false);
    }

    // A dormant account: paid in, quiet for weeks, then a new device sends most of it away.
    let c = scenario("dormant account drained by a new device", Some("dormant_drain"));
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "Leo Martin", "mass", "en", PARIS);
    w.login(day(1).plus(9 * HOUR), PARIS, true, &format!("{c}-phone"));
    w.transfer(day(2).plus(9 * HOUR), false, 2_400.0, false, "Employer Bank");
    w.transfer(day(5).plus(9 * HOUR), true, 300.0, false, "Landlord Bank");
    w.login(day(last - 2).plus(3 * HOUR), MADRID, true, "unknown-laptop");
    w.transfer(day(last - 2).plus(3 * HOUR + 25 * MINUTE), true, 1_900.0, false, "Offshore Bank");

    // A quiet customer comes back with ordinary spending and pays the usual landlord: no page.
    let c = scenario("quiet customer comes back with ordinary spending", None);
    let mut w = Writer { customer: c.clone(), events, next_id: 0 };
    w.profile(day(0), "Ines Garcia", "mass", "en", MADRID);
    w.login(day(1).plus(9 * HOUR), MADRID, true, &format!("{c}-phone"));
    w.transfer(day(2).plus(9 * HOUR), false, 1_800.0, false, "Employer Bank");
    w.transfer(day(5).plus(9 * HOUR), true, 700.0, false, "Landlord Bank");
    w.login(day(last - 3).plus(10 * HOUR), MADRID, true, "new-tablet");
    w.card(day(last - 3).plus(11 * HOUR), "qb-k1", "contactless", 35.0, MADRID, "Local Store", true);
    w.transfer(day(last - 3).plus(12 * HOUR), true, 1_000.0, false, "Landlord Bank");

    // Low and slow: tiny online attempts at different shops, never more than three in ten
    // minutes, then a large approved purchase.
    let c = scenario("card tested low and slow, then a large purchase", Some("card_tested_then_used"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Paul Weber", "mass", "en", PARIS);
    history(&mut w, rng, PARIS, "ls-k1", 30.0, 1, 20);
    for (i, shop) in
        ["Gift Cards Co", "Donate Now", "Streamly", "Ebook Shop", "Tiny Games"].into_iter().enumerate()
    {
        let approved = i == 2;
        w.card(
            day(last - 4).plus(HOUR + i as i64 * 17 * MINUTE),
            "ls-k1",
            "ecommerce",
            0.5,
            NEW_YORK,
            shop,
            approved,
        );
    }
    w.card(day(last - 4).plus(3 * HOUR), "ls-k1", "ecommerce", 1_650.0, NEW_YORK, "Electronics Online", true);

    // Five app subscriptions billed the same morning: approved, small, not testing.
    let c = scenario("five app subscriptions billed together", None);
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Mia Novak", "mass", "en", LONDON);
    history(&mut w, rng, LONDON, "sb-k1", 25.0, 1, 20);
    for (i, (app, price)) in
        [("Music", 4.99), ("Cloud", 2.99), ("News", 3.49), ("Games", 0.99), ("Maps", 1.99)]
            .into_iter()
            .enumerate()
    {
        w.card(
            day(last - 6).plus(6 * HOUR + i as i64 * MINUTE),
            "sb-k1",
            "ecommerce",
            price,
            LONDON,
            app,
            true,
        );
    }

    // A complaint resolved, then the same complaint again weeks later: the fix did not hold.
    let c = scenario("complaint again after it was resolved", Some("complaint_recurrence"));
    let mut w = Writer { customer: c, events, next_id: 0 };
    w.profile(day(0), "Omar Haddad", "mass", "en", LONDON);
    w.complaint(day(last - 30).plus(9 * HOUR), "Fees", "medium");
    w.contact(day(last - 29).plus(9 * HOUR), "fees", true);
    w.complaint(day(last - 10).plus(9 * HOUR), "FEES", "low");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let spec = StreamSpec { customers: 20, days: 50, ..StreamSpec::default() };
        assert_eq!(generate(&spec).lines, generate(&spec).lines);
        let other = StreamSpec { seed: 8, ..spec.clone() };
        assert_ne!(generate(&spec).lines, generate(&other).lines);
    }

    #[test]
    fn every_line_is_a_valid_event() {
        let g = generate(&StreamSpec { customers: 30, days: 50, ..StreamSpec::default() });
        for line in &g.lines {
            crate::event::decode(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        assert!(g.expected.iter().any(|e| e.rule == Some("impossible_travel")));
    }

    #[test]
    fn local_offsets() {
        let t = Timestamp::parse_rfc3339("2026-06-01T02:00:00Z").unwrap();
        assert_eq!(local_rfc3339(t, 420), "2026-06-01T09:00:00+07:00");
        assert_eq!(local_rfc3339(t, -300), "2026-05-31T21:00:00-05:00");
        assert_eq!(Timestamp::parse_rfc3339(&local_rfc3339(t, -300)).unwrap(), t);
    }
}
