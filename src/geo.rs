//! Places and distances on the Earth.
//!
//! Locations on the wire are city-precise (a merchant's registered address, an IP's city), so
//! callers compare distances with a tolerance of tens of kilometres. The great-circle distance is
//! computed with the haversine formula, which is correct across the antimeridian and the poles.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Mean Earth radius in kilometres.
const EARTH_RADIUS_KM: f64 = 6_371.0;

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country(pub [u8; 2]);

impl Country {
    /// Parses a two-letter upper-case code.
    pub fn parse(text: &str) -> Option<Country> {
        let b = text.as_bytes();
        (b.len() == 2 && b.iter().all(u8::is_ascii_uppercase)).then(|| Country([b[0], b[1]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ASCII by construction")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code as text in human-readable formats (JSON); its two bytes in binary ones.
impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

/// The reverse of [`Serialize`]; anything but two upper-case letters is refused.
impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Country::parse(&text)
        } else {
            let code = <[u8; 2]>::deserialize(d)?;
            code.iter().all(u8::is_ascii_uppercase).then_some(Country(code))
        };
        parsed.ok_or_else(|| serde::de::Error::custom("not a two-letter upper-case country code"))
    }
}

/// A point given in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

impl Point {
    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(&self, other: &Point) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.lon - self.lon).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARIS: Point = Point { lat: 48.8566, lon: 2.3522 };
    const PHNOM_PENH: Point = Point { lat: 11.5564, lon: 104.9282 };

    #[test]
    fn paris_to_phnom_penh() {
        let d = PARIS.distance_km(&PHNOM_PENH);
        assert!((d - 10_000.0).abs() < 150.0, "got {d}");
    }

    #[test]
    fn across_the_antimeridian_is_short() {
        // Suva (Fiji, 178.4 E) and Apia (Samoa, 171.8 W) are ~1,150 km apart, not ~38,000.
        let suva = Point { lat: -18.1248, lon: 178.4501 };
        let apia = Point { lat: -13.8333, lon: -171.7667 };
        let d = suva.distance_km(&apia);
        assert!((1_000.0..1_300.0).contains(&d), "got {d}");
    }

    #[test]
    fn same_point_is_zero() {
        assert!(PARIS.distance_km(&PARIS) < 1e-9);
    }

    #[test]
    fn country_codes() {
        assert_eq!(Country::parse("KH").unwrap().as_str(), "KH");
        assert!(Country::parse("kh").is_none());
        assert!(Country::parse("KHM").is_none());
    }
}
