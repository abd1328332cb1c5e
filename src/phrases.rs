//! The domain's words in every supported language: event types, card, login and contact
//! channels, complaint severities, products and what happened to them, contact reasons, the
//! signs of churn, and the short lines an agent reads about one event (evidence and history).
//!
//! Detectors and rules speak in codes and numbers (`contactless`, `high`, `moved_eur = 8000`);
//! whatever a task shows is put into words here, in the task's language, so that no English
//! fragment ends up inside a Russian text. Data that came with the events (merchants, cities,
//! banks, device ids, amounts, currency and country codes) is shown as it came. A code this
//! catalogue does not know (a contact reason or a product the bank added later) is shown as it
//! came too: it is data, and the catalogue is where its words go.
//!
//! Complaint categories are not here: their names are part of the complaint playbook
//! (`rules::playbook`), next to their procedures. Pure: texts and functions of their arguments.

use std::fmt::Write as _;

use crate::detect::Fact;
use crate::event::{CardChannel, ComplaintSeverity, EventBody, EventKind, LoginChannel, ProductAction};
use crate::money::Money;
use crate::time::Timestamp;

/// The languages every phrase exists in (the languages rule texts must have).
pub const LANGUAGES: [&str; 2] = ["en", "ru"];

/// `language` if the catalogue has it, else English.
pub fn supported(language: &str) -> &'static str {
    LANGUAGES.iter().find(|l| **l == language).copied().unwrap_or("en")
}

/// (key, English, Russian). A key is `domain.code`; `{name}` is filled by [`fill`].
const PHRASES: &[(&str, &str, &str)] = &[
    // Event types, as a history line starts.
    ("kind.customer_profile", "profile updated", "профиль обновлён"),
    ("kind.card_transaction", "card payment", "оплата картой"),
    ("kind.login", "login", "вход"),
    ("kind.transfer", "transfer", "перевод"),
    ("kind.support_contact", "support contact", "обращение в поддержку"),
    ("kind.complaint", "complaint", "жалоба"),
    ("kind.product_change", "product change", "изменение продукта"),
    ("kind.travel_notice", "travel notice", "уведомление о поездке"),
    // Card channels.
    ("card.card_present", "card present", "оплата картой в магазине"),
    ("card.contactless", "contactless", "бесконтактная оплата"),
    ("card.atm", "ATM", "снятие в банкомате"),
    ("card.ecommerce", "online", "онлайн-оплата"),
    // Login channels.
    ("login.mobile", "mobile", "мобильное приложение"),
    ("login.web", "web", "веб-сайт"),
    // Contact channels (the wire contract's values).
    ("contact.phone", "phone", "по телефону"),
    ("contact.chat", "chat", "в чате"),
    ("contact.email", "e-mail", "по электронной почте"),
    ("contact.branch", "branch", "в отделении"),
    // Complaint severities.
    ("severity.low", "low", "низкая"),
    ("severity.medium", "medium", "средняя"),
    ("severity.high", "high", "высокая"),
    // Product actions.
    ("action.open", "opened", "открытие"),
    ("action.close", "closed", "закрытие"),
    ("action.downgrade", "downgraded", "понижение тарифа"),
    ("action.upgrade", "upgraded", "повышение тарифа"),
    // Products.
    ("product.card", "card", "карта"),
    ("product.credit_card", "credit card", "кредитная карта"),
    ("product.deposit", "deposit", "вклад"),
    ("product.savings", "savings account", "накопительный счёт"),
    ("product.account", "current account", "текущий счёт"),
    ("product.credit", "credit", "кредит"),
    ("product.loan", "loan", "заём"),
    ("product.mortgage", "mortgage", "ипотека"),
    ("product.overdraft", "overdraft", "овердрафт"),
    ("product.insurance", "insurance", "страховка"),
    ("product.subscription", "subscription", "подписка"),
    // Customer segments, and a customer without a name or a profile.
    ("segment.mass", "mass", "массовый"),
    ("segment.affluent", "affluent", "состоятельный"),
    ("segment.private", "private banking", "частное обслуживание"),
    ("segment.business", "business", "бизнес"),
    ("segment.unknown", "unknown", "неизвестен"),
    ("word.customer", "customer", "клиент"),
    // Support contact reasons.
    ("reason.card_blocked", "blocked card", "заблокированная карта"),
    ("reason.card_delivery", "card delivery", "доставка карты"),
    ("reason.statement_question", "statement question", "вопрос по выписке"),
    ("reason.fees", "fees", "комиссии"),
    ("reason.app", "app problems", "проблемы с приложением"),
    ("reason.login", "login problems", "проблемы со входом"),
    ("reason.transfer_delay", "delayed transfer", "задержка перевода"),
    ("reason.limits", "limits", "лимиты"),
    // Lines about one event (evidence).
    ("ev.profile", "profile updated", "профиль обновлён"),
    (
        "ev.card",
        "{channel} {money} at {merchant}, {city} {country}",
        "{channel} {money}: {merchant}, {city} {country}",
    ),
    ("ev.declined", " (declined)", " (отклонено)"),
    (
        "ev.login",
        "{outcome} {channel} login, device {device}",
        "{outcome} вход ({channel}), устройство {device}",
    ),
    ("ev.login_ok", "successful", "успешный"),
    ("ev.login_failed", "failed", "неудачный"),
    ("ev.login_place", " from {city}, {country}", ", {city}, {country}"),
    ("ev.transfer", "{direction} transfer {money}", "{direction} перевод {money}"),
    ("ev.out", "outgoing", "исходящий"),
    ("ev.in", "incoming", "входящий"),
    ("ev.bank", " with {bank}", ", банк {bank}"),
    ("ev.own", " (own account)", " (свой счёт)"),
    (
        "ev.contact",
        "{channel} contact about {reason} ({state})",
        "обращение ({channel}) по теме «{reason}» ({state})",
    ),
    ("ev.resolved", "resolved", "решено"),
    ("ev.unresolved", "unresolved", "не решено"),
    (
        "ev.complaint",
        "complaint (severity: {severity}): {category}",
        "жалоба (важность: {severity}): {category}",
    ),
    ("ev.product", "{product} {action}", "{product}: {action}"),
    (
        "ev.travel",
        "travel notice: {countries} from {from} to {to}",
        "уведомление о поездке: {countries}, с {from} по {to}",
    ),
    ("reason.password_reset", "password reset", "сброс пароля"),
    ("reason.contact_details_change", "change of contact details", "смена контактных данных"),
    // What else changed when an income stopped (`income_stopped`'s changes).
    ("income.card_quiet", "the card has not been used for {days} days", "картой не пользуются {days} дн."),
    (
        "income.activity_drop",
        "activity well below the customer's normal",
        "активность намного ниже обычной для клиента",
    ),
    (
        "income.moved_money",
        "{eur} EUR moved to the customer's own account at another bank",
        "{eur} EUR переведено на свой счёт в другом банке",
    ),
    (
        "income.payments_stopped",
        "{n} regular payment(s) stopped too",
        "регулярных платежей тоже прекратилось: {n}",
    ),
    ("income.nothing_else", "nothing else has changed yet", "больше пока ничего не изменилось"),
    // The signs of churn (`churn_risk`'s reasons).
    (
        "churn.silent",
        "silent for {days} days (usually {typical} events a week)",
        "нет активности {days} дн. (обычно событий в неделю: {typical})",
    ),
    (
        "churn.drop",
        "activity fell to {recent} events a week from a usual {typical}",
        "активность упала до {recent} событий в неделю (обычно {typical})",
    ),
    (
        "churn.moved",
        "moved {eur} EUR to their own account at another bank",
        "{eur} EUR переведено на свой счёт в другом банке",
    ),
    ("churn.closed", "closed a product without replacing it", "продукт закрыт без замены"),
    // A customer's "it was not me" after the task was closed (`incident::reported_task`).
    (
        "report.title",
        "The customer reports fraud on a closed case",
        "Клиент сообщает о мошенничестве по закрытому делу",
    ),
    (
        "report.explanation",
        "The customer answered \"it was not me\" after task {task} was closed. Call them first; the \
         card system has been asked to block the card.",
        "Клиент ответил «это не я» после закрытия задачи {task}. Позвоните клиенту в первую очередь; \
         карточной системе отправлен запрос на блокировку карты.",
    ),
    ("churn.complaints", "{n} complaint(s) recently", "недавних жалоб: {n}"),
    (
        "churn.complaints_about",
        "{n} complaint(s) recently, the latest about {category}",
        "недавних жалоб: {n}, последняя: {category}",
    ),
];

/// The phrase for `key` in `language` (English if the catalogue lacks the language).
pub fn phrase(key: &str, language: &str) -> Option<&'static str> {
    let (_, en, ru) = PHRASES.iter().find(|(k, ..)| *k == key)?;
    Some(if supported(language) == "ru" { ru } else { en })
}

/// The words for a code of a domain (`card`, `login`, `contact`, `severity`, `action`,
/// `product`, `reason`, `kind`), or the code itself when the catalogue does not know it.
pub fn code(domain: &str, code: &str, language: &str) -> String {
    phrase(&format!("{domain}.{code}"), language).map_or_else(|| code.to_string(), str::to_string)
}

/// True if the catalogue has words for this code.
pub fn knows(domain: &str, code: &str) -> bool {
    phrase(&format!("{domain}.{code}"), "en").is_some()
}

/// The phrase for `key` in `language` with `{name}` filled from `values` (empty when the
/// catalogue lacks the key).
pub fn filled(key: &str, language: &str, values: &[(&str, &str)]) -> String {
    phrase(key, language).map_or_else(String::new, |text| fill(text, values))
}

/// Fills `{name}` in a phrase with `values`; anything else is copied.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let name = &rest[start + 1..start + end];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..=start + end]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// `key` in `language`, filled.
fn say(key: &str, language: &str, values: &[(&str, &str)]) -> String {
    fill(phrase(key, language).expect("every phrase key used in code is in the catalogue"), values)
}

fn severity_code(s: ComplaintSeverity) -> &'static str {
    match s {
        ComplaintSeverity::Low => "low",
        ComplaintSeverity::Medium => "medium",
        ComplaintSeverity::High => "high",
    }
}

fn action_code(a: ProductAction) -> &'static str {
    match a {
        ProductAction::Open => "open",
        ProductAction::Close => "close",
        ProductAction::Downgrade => "downgrade",
        ProductAction::Upgrade => "upgrade",
    }
}

fn card_channel(c: CardChannel, language: &str) -> String {
    code("card", c.as_str(), language)
}

/// A date (UTC) without the time: `2026-06-01`.
fn day(at: Timestamp) -> String {
    at.to_string().chars().take(10).collect()
}

/// The line an agent reads about one event, in `language`. `category` names a complaint
/// category (the playbook's name for it).
pub fn evidence(body: &EventBody, language: &str, category: &dyn Fn(&str) -> String) -> String {
    let l = language;
    match body {
        EventBody::CustomerProfile(_) => say("ev.profile", l, &[]),
        EventBody::CardTransaction(t) => {
            let mut line = say(
                "ev.card",
                l,
                &[
                    ("channel", &card_channel(t.channel, l)),
                    ("money", &t.money.to_string()),
                    ("merchant", &t.merchant_name),
                    ("city", &t.place.city),
                    ("country", t.place.country.as_str()),
                ],
            );
            if !t.approved {
                line.push_str(&say("ev.declined", l, &[]));
            }
            line
        }
        EventBody::Login(login) => {
            let channel = match login.channel {
                LoginChannel::Mobile => "mobile",
                LoginChannel::Web => "web",
            };
            let outcome = say(if login.success { "ev.login_ok" } else { "ev.login_failed" }, l, &[]);
            let mut line = say(
                "ev.login",
                l,
                &[
                    ("outcome", &outcome),
                    ("channel", &code("login", channel, l)),
                    ("device", &login.device_id),
                ],
            );
            if let Some(g) = &login.geo {
                line.push_str(&say(
                    "ev.login_place",
                    l,
                    &[("city", &g.city), ("country", g.country.as_str())],
                ));
            }
            line
        }
        EventBody::Transfer(t) => {
            let direction = say(if t.outgoing { "ev.out" } else { "ev.in" }, l, &[]);
            let mut line =
                say("ev.transfer", l, &[("direction", &direction), ("money", &t.money.to_string())]);
            if let Some(bank) = &t.counterparty_bank {
                line.push_str(&say("ev.bank", l, &[("bank", bank)]));
            }
            if t.own_account {
                line.push_str(&say("ev.own", l, &[]));
            }
            line
        }
        EventBody::SupportContact(c) => say(
            "ev.contact",
            l,
            &[
                ("channel", &code("contact", &c.channel, l)),
                // Known codes in words; others as the producing system wrote them.
                (
                    "reason",
                    &if knows("reason", &c.reason) {
                        code("reason", &c.reason, l)
                    } else {
                        c.reason_text.clone()
                    },
                ),
                ("state", &say(if c.resolved { "ev.resolved" } else { "ev.unresolved" }, l, &[])),
            ],
        ),
        EventBody::Complaint(c) => say(
            "ev.complaint",
            l,
            &[
                ("severity", &code("severity", severity_code(c.severity), l)),
                ("category", &category(&c.category)),
            ],
        ),
        EventBody::ProductChange(p) => say(
            "ev.product",
            l,
            &[
                ("product", &code("product", &p.product, l)),
                ("action", &code("action", action_code(p.action), l)),
            ],
        ),
        EventBody::TravelNotice(n) => {
            let countries: Vec<&str> = n.countries.iter().map(|c| c.as_str()).collect();
            say(
                "ev.travel",
                l,
                &[("countries", &countries.join(", ")), ("from", &day(n.from)), ("to", &day(n.to))],
            )
        }
    }
}

/// A short line about a remembered event (the task's recent history): its type, its money, the
/// one word that says what it was (put into words when it is a code) and its country.
pub fn history(
    kind: EventKind,
    money: Option<Money>,
    detail: Option<&str>,
    country: Option<&str>,
    language: &str,
    category: &dyn Fn(&str) -> String,
) -> String {
    let mut line = code("kind", kind.as_str(), language);
    if let Some(m) = money {
        let _ = write!(line, " {m}");
    }
    if let Some(d) = detail {
        let d = match kind {
            EventKind::SupportContact => code("reason", d, language),
            EventKind::Complaint => category(d),
            EventKind::ProductChange => product_detail(d, language),
            _ => d.to_string(),
        };
        let _ = write!(line, " · {d}");
    }
    if let Some(c) = country {
        let _ = write!(line, " · {c}");
    }
    line
}

/// A product change as a history item or an absence anchor names it: the product, or the
/// product and what happened to it (`card open`).
fn product_detail(detail: &str, language: &str) -> String {
    match detail.rsplit_once(' ') {
        Some((product, action)) if knows("action", action) => say(
            "ev.product",
            language,
            &[
                ("product", &code("product", product, language)),
                ("action", &code("action", action, language)),
            ],
        ),
        _ => code("product", detail, language),
    }
}

/// What else changed when an income stopped, in words: what an `income_stopped` signal's
/// `changes` codes say, with their numbers (or that nothing has, yet).
pub fn income_changes(facts: &[(&str, Fact)], language: &str) -> String {
    let fact = |name: &str| facts.iter().find(|(n, _)| *n == name).map(|(_, f)| f);
    let shown = |name: &str| {
        let mut out = String::new();
        if let Some(f) = fact(name) {
            f.render(&mut out);
        }
        out
    };
    let codes = match fact("changes") {
        Some(Fact::Text(t)) => t.as_str(),
        _ => "",
    };
    let lines: Vec<String> = codes
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|code| match code {
            "card_quiet" => say("income.card_quiet", language, &[("days", &shown("card_quiet_days"))]),
            "moved_money" => say("income.moved_money", language, &[("eur", &shown("moved_eur"))]),
            "payments_stopped" => {
                say("income.payments_stopped", language, &[("n", &shown("payments_stopped"))])
            }
            "activity_drop" => say("income.activity_drop", language, &[]),
            other => other.to_string(),
        })
        .collect();
    if lines.is_empty() {
        say("income.nothing_else", language, &[])
    } else {
        lines.join("; ")
    }
}

/// The signs of churn a `churn_risk` signal found, in words: what its facts `silent`,
/// `activity_drop`, `moved_eur`, `product_closed` and `complaints` say, with their numbers.
/// `category` is the latest complaint's category in words, when known.
pub fn churn_reasons(facts: &[(&str, Fact)], language: &str, category: Option<&str>) -> String {
    let num = |name: &str| {
        facts.iter().find(|(n, _)| *n == name).and_then(|(_, f)| match f {
            Fact::Num(v) => Some(*v),
            Fact::Text(_) => None,
        })
    };
    let shown = |name: &str| {
        let mut out = String::new();
        Fact::Num(num(name).unwrap_or(0.0)).render(&mut out);
        out
    };
    let mut reasons = Vec::new();
    if num("silent").unwrap_or(0.0) > 0.0 {
        reasons.push(say(
            "churn.silent",
            language,
            &[("days", &shown("days_silent")), ("typical", &shown("typical_weekly"))],
        ));
    }
    if num("activity_drop").unwrap_or(0.0) > 0.0 {
        reasons.push(say(
            "churn.drop",
            language,
            &[("recent", &shown("recent_weekly")), ("typical", &shown("typical_weekly"))],
        ));
    }
    if num("moved_eur").unwrap_or(0.0) > 0.0 {
        reasons.push(say("churn.moved", language, &[("eur", &shown("moved_eur"))]));
    }
    if num("product_closed").unwrap_or(0.0) > 0.0 {
        reasons.push(say("churn.closed", language, &[]));
    }
    if num("complaints").unwrap_or(0.0) > 0.0 {
        reasons.push(match category {
            Some(c) => {
                say("churn.complaints_about", language, &[("n", &shown("complaints")), ("category", c)])
            }
            None => say("churn.complaints", language, &[("n", &shown("complaints"))]),
        });
    }
    reasons.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}`s of a phrase, sorted.
    fn names(text: &str) -> Vec<&str> {
        let mut out: Vec<&str> =
            text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(n, _)| n)).collect();
        out.sort();
        out
    }

    /// A phrase without its `{name}`s.
    fn words(text: &str) -> String {
        names(text).iter().fold(text.to_string(), |t, n| t.replace(&format!("{{{n}}}"), ""))
    }

    #[test]
    fn every_phrase_is_in_every_language_with_the_same_placeholders() {
        let mut keys: Vec<&str> = PHRASES.iter().map(|p| p.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), PHRASES.len(), "duplicate keys");
        assert_eq!(LANGUAGES, ["en", "ru"], "a new language needs a column in PHRASES");
        for (key, en, ru) in PHRASES {
            assert!(!en.is_empty() && !ru.is_empty(), "{key}");
            assert_eq!(names(en), names(ru), "{key}: the languages fill different placeholders");
            assert!(
                !words(en).chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)),
                "Cyrillic in {key}: {en}"
            );
            // Currency codes are the same in every language.
            assert!(
                !words(ru).replace("EUR", "").chars().any(|c| c.is_ascii_alphabetic()),
                "Latin letters in the Russian of {key}: {ru}"
            );
        }
    }

    #[test]
    fn every_code_of_the_event_contract_has_words() {
        for kind in EventKind::ALL {
            assert!(knows("kind", kind.as_str()), "{kind}");
        }
        for c in
            [CardChannel::CardPresent, CardChannel::Contactless, CardChannel::Atm, CardChannel::Ecommerce]
        {
            assert!(knows("card", c.as_str()), "{c:?}");
        }
        for s in [ComplaintSeverity::Low, ComplaintSeverity::Medium, ComplaintSeverity::High] {
            assert!(knows("severity", severity_code(s)));
        }
        for a in [ProductAction::Open, ProductAction::Close, ProductAction::Downgrade, ProductAction::Upgrade]
        {
            assert!(knows("action", action_code(a)));
        }
        for c in ["phone", "chat", "email", "branch"] {
            assert!(knows("contact", c));
        }
        assert_eq!(supported("de"), "en");
        assert_eq!(code("product", "yacht", "ru"), "yacht", "an unknown code is shown as it came");
    }

    #[test]
    fn lines_about_an_event_are_in_the_language_asked() {
        let event = crate::detect::testkit::event(
            r#"{"event_id":"e","type":"card_transaction","customer_id":"c","ts":"2026-06-01T10:00:00Z","card_id":"k","amount":12.5,"currency":"EUR","channel":"contactless","status":"declined","merchant":{"name":"Riverside Cafe","country":"KH","city":"Phnom Penh"}}"#,
        );
        let none = |c: &str| c.to_string();
        assert_eq!(
            evidence(&event.body, "en", &none),
            "contactless 12.50 EUR at Riverside Cafe, Phnom Penh KH (declined)"
        );
        assert_eq!(
            evidence(&event.body, "ru", &none),
            "бесконтактная оплата 12.50 EUR: Riverside Cafe, Phnom Penh KH (отклонено)"
        );
        let line = history(EventKind::SupportContact, None, Some("card_blocked"), None, "ru", &none);
        assert_eq!(line, "обращение в поддержку · заблокированная карта");
        let line = history(EventKind::ProductChange, None, Some("card open"), None, "ru", &none);
        assert_eq!(line, "изменение продукта · карта: открытие");
    }

    #[test]
    fn churn_reasons_come_from_numbers() {
        let facts = [
            ("silent", Fact::Num(1.0)),
            ("days_silent", Fact::Num(23.0)),
            ("typical_weekly", Fact::Num(5.4)),
            ("moved_eur", Fact::Num(0.0)),
            ("complaints", Fact::Num(1.0)),
        ];
        assert_eq!(
            churn_reasons(&facts, "en", Some("fees")),
            "silent for 23 days (usually 5.4 events a week); 1 complaint(s) recently, the latest about fees"
        );
        assert_eq!(
            churn_reasons(&facts, "ru", None),
            "нет активности 23 дн. (обычно событий в неделю: 5.4); недавних жалоб: 1"
        );
    }
}
