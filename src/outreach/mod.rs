//! E-mail to customers: the bank writes first, and the customer answers with one click.
//!
//! - `templates.rs`: e-mails per purpose and language, as files next to the rules, checked at
//!   load time (`file:line: reason`);
//! - `policy.rs` (pure): consent, quiet hours in the customer's time zone, the contact-fatigue
//!   cap, a recent answer: send, defer or suppress, with the reason;
//! - `links.rs` (pure): signed, short, single-use answer links (HMAC-SHA256 with key ids);
//! - `sender.rs`: the worker off the event path that delivers the outbox of e-mail jobs over
//!   SMTP (lettre) with retries, records every decision on the task through a command, and
//!   never stalls event processing;
//! - `pages.rs`: the customer's answer pages (a GET shows, only the button's POST acts).
//!
//! `docs/outreach.md` has the design, the policy's decisions and the duplicate window.

pub mod links;
pub mod pages;
pub mod policy;
pub mod sender;
pub mod templates;
