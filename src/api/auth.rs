//! Authentication and roles: bearer API tokens, stored as SHA-256 hashes (in the task store, or
//! provisioned from configuration as `NAME:ROLE:SHA256`), compared in constant time, never
//! logged. Repeated wrong tokens from one client address are rate-limited (429, every operation
//! documents it); a request without a token is a 401 that does not count.
//!
//! What each role may do: agents (`fraud_agent`, `care_agent`) see and change only tasks of
//! their queue (another queue's task is a 404, so ids leak nothing); `supervisor` sees every
//! queue, reassigns and reopens; `admin` is a supervisor who may also create tokens; `auditor`
//! reads everything and changes nothing.
//!
//! OIDC (a bank's single sign-on) would plug in here: a JWT bearer verified against the
//! identity provider's key set, its role claim mapped to a [`Role`]; see `docs/agents-api.md`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use super::ApiState;
use crate::command::{Actor, Role};
use crate::vocab::Queue;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The queues this principal sees.
    pub fn queues(&self) -> Vec<Queue> {
        match self.role {
            Role::FraudAgent => vec![Queue::Fraud],
            Role::CareAgent => vec![Queue::Care],
            _ => vec![Queue::Fraud, Queue::Care],
        }
    }

    /// True if the principal sees tasks of `queue`.
    pub fn sees(&self, queue: &str) -> bool {
        self.queues().iter().any(|q| q.as_str() == queue)
    }

    /// True if the principal may change tasks (everyone but auditors).
    pub fn may_act(&self) -> bool {
        !matches!(self.role, Role::Auditor)
    }

    /// True for supervisors and admins.
    pub fn supervises(&self) -> bool {
        matches!(self.role, Role::Supervisor | Role::Admin)
    }

    /// The actor of the commands this principal sends.
    pub fn actor(&self) -> Actor {
        Actor { name: self.name.clone(), role: self.role }
    }
}

/// The holder of a console session, put in a request's extensions by the console's in-process
/// calls to the API (an HTTP client cannot set extensions): the API then trusts the session the
/// console checked instead of asking for a bearer token.
#[derive(Debug, Clone)]
pub struct ConsoleCaller(pub Principal);

/// A new random token (shown once) and its hash (stored).
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let token = format!("cah_{}", hex(&bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token: hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A provisioned token `NAME:ROLE:SHA256` as (name, role, hash).
pub fn parse_provisioned(text: &str) -> Result<(String, Role, String), String> {
    let mut parts = text.trim().splitn(3, ':');
    let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected NAME:ROLE:SHA256".to_string());
    };
    let role = Role::parse(role).filter(|r| Role::TOKEN_ROLES.contains(r)).ok_or_else(|| {
        format!("`{role}` is not a role (fraud_agent, care_agent, supervisor, admin, auditor)")
    })?;
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the hash must be 64 hex digits (the SHA-256 of the token, never the token)".to_string());
    }
    Ok((name.to_string(), role, hash.to_ascii_lowercase()))
}

/// An address range (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    bits: u8,
}

impl AddressRange {
    /// Parses `ADDRESS` or `ADDRESS/BITS`.
    pub fn parse(text: &str) -> Result<AddressRange, String> {
        let (address, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => {
                b.parse::<u8>().ok().filter(|b| *b <= max).ok_or(format!("`/{b}` is not 0 to {max}"))?
            }
            None => max,
        };
        Ok(AddressRange { network, bits })
    }

    /// True if `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let prefix = |bytes: &[u8], other: &[u8]| {
            let (whole, rest) = (usize::from(self.bits / 8), self.bits % 8);
            bytes[..whole] == other[..whole]
                && (rest == 0 || (bytes[whole] ^ other[whole]) & (0xFFu8 << (8 - rest)) == 0)
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => prefix(&n.octets(), &i.octets()),
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix(&n.octets(), &i.octets()),
            _ => false,
        }
    }
}

/// Failed authentications per client address, per minute. The client is the connecting address,
/// or, when that is a trusted proxy (`http.trusted_proxies`), the last address in
/// `X-Forwarded-For` that is not one: behind an ingress, one guesser does not lock out the floor.
#[derive(Debug)]
pub struct FailureLimiter {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    trusted_proxies: Vec<AddressRange>,
}

impl FailureLimiter {
    pub fn new(per_minute: u32) -> FailureLimiter {
        FailureLimiter { per_minute, seen: Mutex::new(HashMap::new()), trusted_proxies: Vec::new() }
    }

    /// The limiter, trusting `X-Forwarded-For` from these proxies.
    pub fn trusting(mut self, proxies: Vec<AddressRange>) -> FailureLimiter {
        self.trusted_proxies = proxies;
        self
    }

    /// The client behind a request from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|r| r.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<IpAddr> =
            forwarded.flat_map(|v| v.split(',')).filter_map(|a| a.trim().parse().ok()).collect();
        hops.into_iter().rev().find(|ip| !trusted(*ip)).unwrap_or(peer)
    }

    /// True if the address failed too often in the current minute.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock().expect("limiter lock poisoned");
        seen.get(&ip)
            .is_some_and(|(start, n)| start.elapsed() < Duration::from_secs(60) && *n >= self.per_minute)
    }

    /// Counts a failure.
    pub fn failed(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().expect("limiter lock poisoned");
        if seen.len() > 10_000 {
            seen.retain(|_, (start, _)| start.elapsed() < Duration::from_secs(60));
        }
        let entry = seen.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Duration::from_secs(60) {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// Finds the principal for a token: provisioned tokens first (constant-time comparison of the
/// hashes), then the store.
pub async fn authenticate(state: &ApiState, token: &str) -> Result<Option<Principal>, Problem> {
    let hash = hash_token(token);
    let mut found = None;
    for (name, role, provisioned) in state.provisioned.iter() {
        if bool::from(provisioned.as_bytes().ct_eq(hash.as_bytes())) {
            found = Some(Principal { name: name.clone(), role: *role });
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    let Some(row) = state.store.token(&hash).await? else { return Ok(None) };
    if row.revoked || !bool::from(row.hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    if row.expires_ms.is_some_and(|at| at <= super::now().0) {
        return Ok(None); // expired: as unknown as a revoked one
    }
    Ok(Role::parse(&row.role).map(|role| Principal { name: row.name, role }))
}

/// The client's address (from the connection).
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        if let Some(ConsoleCaller(principal)) = parts.extensions.get::<ConsoleCaller>() {
            return Ok(principal.clone());
        }
        let ip = state.limiter.client(client_ip(parts), &parts.headers);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200);
        let principal = match token {
            Some(t) => authenticate(state, t).await?,
            None => None,
        };
        match principal {
            // A valid credential is never refused, whatever others did from the same address.
            Some(p) => Ok(p),
            None if state.limiter.blocked(ip) => {
                state.metrics.auth_failures.inc();
                Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-failures",
                    "too many failed authentications from this address; wait a minute",
                ))
            }
            None => {
                // Only a token that was presented and did not match is a guess worth limiting: a
                // request without one (a browser, a probe, a client that forgot the header) costs
                // no look-up and must not lock the address's real users out.
                if token.is_some() {
                    state.limiter.failed(ip);
                    // Who tried is unknown; where from is what the audit can say (never the token).
                    state.store.audit_access_later(
                        "auth_failed",
                        "unknown".into(),
                        String::new(),
                        format!("an unknown or revoked API token from {ip}"),
                    );
                }
                state.metrics.auth_failures.inc();
                Err(Problem::unauthorized())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash_token(&a), ha);
        assert!(!ha.contains(&a[4..]));
        assert_eq!(ha.len(), 64);
    }

    #[test]
    fn provisioned_tokens_are_checked() {
        let (_, h) = new_token();
        let (name, role, hash) = parse_provisioned(&format!("ana:fraud_agent:{h}")).unwrap();
        assert_eq!((name.as_str(), role, hash), ("ana", Role::FraudAgent, h));
        assert!(parse_provisioned("ana:pilot:00").unwrap_err().contains("not a role"));
        assert!(parse_provisioned("ana:admin:cah_plaintext").unwrap_err().contains("64 hex"));
        assert!(parse_provisioned("ana").is_err());
        assert!(parse_provisioned("ana:customer:00").is_err(), "only token roles");
    }

    #[test]
    fn the_client_is_found_behind_trusted_proxies_only() {
        let l = FailureLimiter::new(3).trusting(vec![
            AddressRange::parse("10.0.0.0/8").unwrap(),
            AddressRange::parse("fd00::1").unwrap(),
        ]);
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap());
        let ingress = IpAddr::from([10, 0, 0, 5]);
        assert_eq!(l.client(ingress, &h), IpAddr::from([198, 51, 100, 7]), "the last untrusted hop");
        let stranger = IpAddr::from([192, 0, 2, 1]);
        assert_eq!(l.client(stranger, &h), stranger, "a header from an untrusted peer is ignored");
        assert_eq!(l.client(ingress, &axum::http::HeaderMap::new()), ingress);
        assert!(AddressRange::parse("10.0.0.0/33").is_err() && AddressRange::parse("ten").is_err());
        assert!(AddressRange::parse("192.168.1.0/23").unwrap().contains(IpAddr::from([192, 168, 0, 200])));
        assert!(!AddressRange::parse("192.168.1.0/24").unwrap().contains(IpAddr::from([192, 168, 0, 200])));
    }

    #[test]
    fn the_limiter_blocks_after_the_limit() {
        let l = FailureLimiter::new(3);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(!l.blocked(ip));
            l.failed(ip);
        }
        assert!(l.blocked(ip));
        assert!(!l.blocked(IpAddr::from([10, 0, 0, 2])));
    }
}
