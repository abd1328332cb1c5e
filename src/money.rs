//! Money: amounts with an ISO 4217 currency, and the approximate conversion to euros that
//! detectors use to compare amounts across currencies.
//!
//! The conversion table is deliberately coarse (rates of late 2026, rounded): it only feeds
//! scoring (baselines, "money at risk" in priorities), never what an agent or customer sees;
//! tasks always show the original amount and currency. A currency missing from the table is
//! valid on the wire; such amounts simply do not feed euro-based baselines.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(pub [u8; 3]);

impl Currency {
    /// Parses a three-letter upper-case code.
    pub fn parse(text: &str) -> Option<Currency> {
        let b = text.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Currency([b[0], b[1], b[2]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII by construction")
    }

    /// Euros per one unit of this currency, if known.
    pub fn eur_rate(&self) -> Option<f64> {
        EUR_RATES.iter().find(|(code, _)| code.as_bytes() == self.0).map(|(_, rate)| *rate)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code as text in human-readable formats (JSON); its three bytes in binary ones.
impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

/// The reverse of [`Serialize`]; anything but three upper-case letters is refused.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Currency::parse(&text)
        } else {
            let code = <[u8; 3]>::deserialize(d)?;
            code.iter().all(u8::is_ascii_uppercase).then_some(Currency(code))
        };
        parsed.ok_or_else(|| serde::de::Error::custom("not a three-letter upper-case currency code"))
    }
}

/// An amount of money in a currency, as it came on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub amount: f64,
    pub currency: Currency,
}

impl Money {
    /// The amount in euros, if the currency is in the conversion table.
    pub fn to_eur(&self) -> Option<f64> {
        self.currency.eur_rate().map(|rate| self.amount * rate)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} {}", self.amount, self.currency)
    }
}

/// Approximate euros per unit. Coarse on purpose: see the module doc.
const EUR_RATES: &[(&str, f64)] = &[
    ("EUR", 1.0),
    ("USD", 0.92),
    ("GBP", 1.17),
    ("CHF", 1.06),
    ("JPY", 0.0061),
    ("CNY", 0.127),
    ("RUB", 0.0098),
    ("KZT", 0.0018),
    ("TRY", 0.022),
    ("AED", 0.25),
    ("THB", 0.026),
    ("KHR", 0.000_23),
    ("VND", 0.000_036),
    ("SGD", 0.69),
    ("HKD", 0.118),
    ("AUD", 0.60),
    ("NZD", 0.55),
    ("CAD", 0.66),
    ("MXN", 0.048),
    ("BRL", 0.16),
    ("INR", 0.0107),
    ("SEK", 0.087),
    ("NOK", 0.085),
    ("DKK", 0.134),
    ("PLN", 0.23),
    ("CZK", 0.040),
    ("HUF", 0.0025),
    ("GEL", 0.34),
    ("AMD", 0.0024),
    ("RSD", 0.0085),
    ("ILS", 0.25),
    ("EGP", 0.019),
    ("ZAR", 0.05),
    ("KRW", 0.00066),
    ("IDR", 0.000_057),
    ("FJD", 0.40),
    ("WST", 0.33),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("EURO").is_none());
    }

    #[test]
    fn converts_known_currencies_only() {
        let usd = Money { amount: 100.0, currency: Currency::parse("USD").unwrap() };
        assert!((usd.to_eur().unwrap() - 92.0).abs() < 1e-9);
        let xxx = Money { amount: 1.0, currency: Currency::parse("XXX").unwrap() };
        assert_eq!(xxx.to_eur(), None);
    }
}
