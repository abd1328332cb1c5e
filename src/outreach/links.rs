//! Signed, short, single-use answer links.
//!
//! A link's token is `<key id>.<nonce>.<mac>`: a random 128-bit nonce, and an HMAC-SHA256 under
//! the key `kid` over the nonce, the task, the customer, the answer, the expiry and the key id.
//! The other fields live in the store under the nonce (so the link stays short); verifying
//! recomputes the MAC from them and compares in constant time. Keys rotate without breaking
//! links in flight: new links use the first key, every listed key still verifies. What a link
//! may do (it expires, it works once) is checked by the caller against the store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A signing key and its id.
#[derive(Clone)]
pub struct LinkKey {
    pub kid: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({}, …)", self.kid) // never the secret
    }
}

impl LinkKey {
    /// A key from its configuration form `KID:BASE64` (at least 32 bytes of secret).
    pub fn parse(text: &str) -> Result<LinkKey, String> {
        let (kid, secret) = text.trim().split_once(':').ok_or("expected KID:BASE64")?;
        if kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("the key id must be letters, digits, `-` or `_`".into());
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| "the secret is not base64".to_string())?;
        if secret.len() < 32 {
            return Err(format!("the secret has {} bytes; at least 32 are needed", secret.len()));
        }
        Ok(LinkKey { kid: kid.to_string(), secret })
    }

    /// An HMAC-SHA256 under this key over `domain` then `bytes` (other uses of the same key type:
    /// signed commands, `bus::sign`).
    pub fn mac(&self, domain: &[u8], bytes: &[u8]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(domain);
        m.update(bytes);
        m.finalize().into_bytes().to_vec()
    }

    /// A random key (the demo's, when none is configured).
    pub fn random(kid: &str) -> LinkKey {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source");
        LinkKey { kid: kid.to_string(), secret }
    }
}

/// What a link is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFields<'a> {
    pub nonce: &'a str,
    pub task_id: &'a str,
    pub customer_id: &'a str,
    pub answer: &'a str,
    pub expires_ms: i64,
}

fn mac(key: &LinkKey, f: &LinkFields<'_>) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(&key.secret).expect("HMAC takes any key length");
    // Length-prefixed, so no two field lists make the same bytes.
    for part in [key.kid.as_str(), f.nonce, f.task_id, f.customer_id, f.answer, &f.expires_ms.to_string()] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part.as_bytes());
    }
    m.finalize().into_bytes().to_vec()
}

/// An opaque, stable name for `text` under `key` (a Message-ID's left part): 24 hex digits of
/// an HMAC, so it reveals nothing of `text` and cannot be made without the key.
pub fn opaque_id(key: &LinkKey, text: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(&key.secret).expect("HMAC takes any key length");
    m.update(b"message-id\0");
    m.update(text.as_bytes());
    m.finalize().into_bytes()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random nonce.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The token of a link.
pub fn sign(key: &LinkKey, f: &LinkFields<'_>) -> String {
    format!("{}.{}.{}", key.kid, f.nonce, URL_SAFE_NO_PAD.encode(mac(key, f)))
}

/// A token's key id and nonce, if it has the shape of one (nothing is trusted yet).
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let mut parts = token.splitn(3, '.');
    let (kid, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |s: &str, max| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(kid, 32) && ok(nonce, 32) && ok(mac, 64)).then_some((kid, nonce))
}

/// True if `token` is the link for these fields under one of `keys` (constant-time compare).
pub fn verify(keys: &[LinkKey], token: &str, f: &LinkFields<'_>) -> bool {
    let Some((kid, nonce)) = parse(token) else { return false };
    let Some(key) = keys.iter().find(|k| k.kid == kid) else { return false };
    if nonce != f.nonce {
        return false;
    }
    let expected = sign(key, f);
    expected.len() == token.len() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(n: &str) -> LinkFields<'_> {
        LinkFields { nonce: n, task_id: "tsk_1", customer_id: "c1", answer: "yes", expires_ms: 1_000 }
    }

    #[test]
    fn a_message_id_is_opaque_and_stable() {
        let key = LinkKey::random("k1");
        let job = "tsk_0123456789abcdef.fraud_confirmation";
        let id = opaque_id(&key, job);
        assert_eq!(id, opaque_id(&key, job), "the same on every attempt");
        assert_eq!(id.len(), 24);
        assert!(!id.contains("tsk") && !id.contains("0123456789abcdef"));
        assert_ne!(id, opaque_id(&LinkKey::random("k1"), job), "cannot be made without the key");
    }

    #[test]
    fn a_signed_link_verifies_and_any_change_breaks_it() {
        let old = LinkKey::random("k1");
        let new = LinkKey::random("k2");
        let n = nonce();
        let token = sign(&old, &fields(&n));
        assert!(token.len() < 80, "short: {token}");
        assert!(verify(&[new.clone(), old.clone()], &token, &fields(&n)), "old keys still verify");
        assert!(!verify(std::slice::from_ref(&new), &token, &fields(&n)), "a retired key does not");
        let mut other = fields(&n);
        other.answer = "no";
        assert!(!verify(std::slice::from_ref(&old), &token, &other), "the answer is signed");
        other = fields(&n);
        other.expires_ms = 2_000;
        assert!(!verify(std::slice::from_ref(&old), &token, &other), "the expiry is signed");
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(!verify(std::slice::from_ref(&old), &forged, &fields(&n)));
        assert!(parse("x").is_none() && parse("a.b.c<script>").is_none());
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        assert!(LinkKey::parse("k1:c2hvcnQ=").unwrap_err().contains("at least 32"));
        let k =
            LinkKey::parse(&format!("k1:{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32])))
                .unwrap();
        assert!(!format!("{k:?}").contains("Bw"));
    }
}
