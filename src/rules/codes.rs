//! The synonyms table: the codes a rule pack knows (contact reasons and complaint categories)
//! and the aliases other systems use for them.
//!
//! Decoding already puts every reason and category into its normal form
//! ([`crate::codes::normalize`]); this table maps known aliases of one code (a different word,
//! not only a different spelling: `disputed_fee`, `charge_dispute` for `fee_dispute`) to that
//! code. It is `[[code]]` tables in any rule file (the default pack keeps them in
//! `rules/codes.toml`), validated like rules, every problem reported as `file:line: reason`:
//!
//! ```toml
//! [[code]]
//! code = "fee_dispute"                        # in normal form
//! aliases = ["disputed fee", "Charge-Dispute"] # any spelling: normalised on load
//! ```
//!
//! One namespace serves both fields, so a contact about `fees` and a complaint about `fees`
//! name the same problem. A code the table does not list is still counted as itself; the
//! engine reports it as new (a metric), so the table can be completed.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use toml::{Spanned, Value};

use super::{line_of, RuleError};
use crate::codes::normalize;
use crate::event::{Event, EventBody};
use crate::state::FastHash;

/// Keys a `[[code]]` table may have.
const KEYS: &[&str] = &["code", "aliases", "description"];

/// A code as one table declares it.
#[derive(Debug, Clone)]
pub struct CodeEntry {
    pub code: String,
    /// The aliases, in normal form.
    pub aliases: Vec<String>,
    pub file: String,
    pub line: usize,
}

/// Which coded field of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeField {
    /// A support contact's `reason`.
    Reason,
    /// A complaint's `category`.
    Category,
}

impl CodeField {
    /// The field's name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            CodeField::Reason => "reason",
            CodeField::Category => "category",
        }
    }
}

/// Every code of a rule set and the alias map. Empty when the rule files declare none.
#[derive(Debug, Clone, Default)]
pub struct Codes {
    /// Normal form of an alias → its code.
    aliases: HashMap<String, String, FastHash>,
    /// Every code the pack knows (declared here, or a complaint category with a procedure).
    known: HashMap<String, (), FastHash>,
    pub entries: Vec<CodeEntry>,
}

impl Codes {
    /// The table of `entries`, with the playbook's categories known too; every conflict as an
    /// error (an alias of two codes, an alias that is itself a code, a code declared twice).
    pub fn new(entries: Vec<CodeEntry>, categories: &[&str]) -> (Codes, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut codes = Codes::default();
        let mut declared: HashMap<&str, &CodeEntry> = HashMap::new();
        for e in &entries {
            if let Some(first) = declared.get(e.code.as_str()) {
                errors.push(RuleError {
                    file: e.file.clone(),
                    line: e.line,
                    message: format!(
                        "code `{}` is already declared at {}:{}",
                        e.code, first.file, first.line
                    ),
                });
            } else {
                declared.insert(&e.code, e);
            }
        }
        let mut alias_of: HashMap<&str, &CodeEntry> = HashMap::new();
        for e in &entries {
            for alias in &e.aliases {
                if let Some(other) = declared.get(alias.as_str()) {
                    errors.push(RuleError {
                        file: e.file.clone(),
                        line: e.line,
                        message: format!(
                            "alias `{alias}` of `{}` is itself a code (declared at {}:{}): a code cannot stand for another",
                            e.code, other.file, other.line
                        ),
                    });
                } else if let Some(first) = alias_of.get(alias.as_str()).filter(|f| f.code != e.code) {
                    errors.push(RuleError {
                        file: e.file.clone(),
                        line: e.line,
                        message: format!(
                            "alias `{alias}` of `{}` is already an alias of `{}` ({}:{})",
                            e.code, first.code, first.file, first.line
                        ),
                    });
                } else {
                    alias_of.insert(alias, e);
                }
            }
        }
        for (alias, e) in alias_of {
            codes.aliases.insert(alias.to_string(), e.code.clone());
        }
        for code in entries.iter().map(|e| e.code.as_str()).chain(categories.iter().copied()) {
            codes.known.insert(code.to_string(), ());
        }
        codes.entries = entries;
        (codes, errors)
    }

    /// The code `normal` (a normal form) stands for: its alias's code, or itself.
    pub fn canonical<'a>(&'a self, normal: &'a str) -> &'a str {
        self.aliases.get(normal).map_or(normal, String::as_str)
    }

    /// True if the pack knows `code` (a canonical code).
    pub fn knows(&self, code: &str) -> bool {
        self.known.contains_key(code)
    }

    /// The event with its coded field replaced by the code its alias stands for, if it is an
    /// alias (`None` when nothing changes: most events), and which field is coded with whether
    /// the pack knows its code.
    pub fn resolve(&self, event: &Event) -> (Option<Event>, Option<(CodeField, bool)>) {
        let (field, code) = match &event.body {
            EventBody::SupportContact(c) => (CodeField::Reason, c.reason.as_str()),
            EventBody::Complaint(c) => (CodeField::Category, c.category.as_str()),
            _ => return (None, None),
        };
        let canonical = self.canonical(code);
        let known = self.knows(canonical);
        if canonical == code {
            return (None, Some((field, known)));
        }
        let mut resolved = event.clone();
        match &mut resolved.body {
            EventBody::SupportContact(c) => c.reason = canonical.to_string(),
            EventBody::Complaint(c) => c.category = canonical.to_string(),
            _ => {}
        }
        (Some(resolved), Some((field, known)))
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    code: Vec<Spanned<BTreeMap<String, Spanned<Value>>>>,
}

/// Reads the `[[code]]` tables of one rule file: the valid entries and every error. A file that
/// is not valid TOML gives no error here (the rule reader reports it).
pub fn parse_codes(file: &str, text: &str) -> (Vec<CodeEntry>, Vec<RuleError>) {
    let mut errors = Vec::new();
    let raw: RawFile = match super::read_tables(file, text, "code") {
        Ok(Some(raw)) => raw,
        Ok(None) => return (Vec::new(), errors),
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut entries = Vec::new();
    for table in raw.code {
        let at = table.span().start;
        let mut error = |offset: usize, message: String| {
            errors.push(RuleError { file: file.to_string(), line: line_of(text, offset), message })
        };
        let t = table.get_ref();
        let mut ok = true;
        for (key, value) in t {
            if !KEYS.contains(&key.as_str()) {
                error(value.span().start, format!("`code`: unknown key `{key}` (keys: {})", KEYS.join(", ")));
                ok = false;
            }
        }
        let code = match t.get("code").map(|v| (v.span().start, v.get_ref())) {
            Some((offset, Value::String(code))) => {
                let normal = normalize(code);
                if normal.is_empty() {
                    error(offset, "`code` has no letters or digits".to_string());
                    ok = false;
                } else if normal != *code {
                    error(
                        offset,
                        format!("`code` = \"{code}\" is not in normal form: write \"{normal}\" (lower snake case)"),
                    );
                    ok = false;
                }
                normal
            }
            Some((offset, _)) => {
                error(offset, "`code` must be a string".to_string());
                ok = false;
                String::new()
            }
            None => {
                error(at, "a `[[code]]` table needs `code`".to_string());
                ok = false;
                String::new()
            }
        };
        let mut aliases = Vec::new();
        match t.get("aliases").map(|v| (v.span().start, v.get_ref())) {
            None => {}
            Some((offset, Value::Array(items))) => {
                for item in items {
                    match item {
                        Value::String(alias) => {
                            let normal = normalize(alias);
                            if normal.is_empty() {
                                error(offset, format!("alias \"{alias}\" has no letters or digits"));
                                ok = false;
                            } else if normal == code {
                                error(
                                    offset,
                                    format!("alias \"{alias}\" is a spelling of `{code}` itself: spellings need no alias"),
                                );
                                ok = false;
                            } else if !aliases.contains(&normal) {
                                aliases.push(normal);
                            }
                        }
                        _ => {
                            error(offset, "`aliases` must be a list of strings".to_string());
                            ok = false;
                        }
                    }
                }
            }
            Some((offset, _)) => {
                error(offset, "`aliases` must be a list of strings".to_string());
                ok = false;
            }
        }
        if ok {
            entries.push(CodeEntry { code, aliases, file: file.to_string(), line: line_of(text, at) });
        }
    }
    (entries, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Codes, Vec<String>> {
        let (entries, mut errors) = parse_codes("c.toml", text);
        let (codes, more) = Codes::new(entries, &["fees"]);
        errors.extend(more);
        if errors.is_empty() {
            Ok(codes)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn aliases_map_to_their_code_in_any_spelling() {
        let codes = load(
            r#"
[[code]]
code = "fee_dispute"
aliases = ["Disputed Fee", "CHARGE-DISPUTE"]

[[code]]
code = "password_reset"
"#,
        )
        .unwrap();
        assert_eq!(codes.canonical("disputed_fee"), "fee_dispute");
        assert_eq!(codes.canonical("charge_dispute"), "fee_dispute");
        assert_eq!(codes.canonical("fee_dispute"), "fee_dispute");
        assert_eq!(codes.canonical("something_else"), "something_else");
        assert!(codes.knows("password_reset") && codes.knows("fees"), "declared, or a playbook category");
        assert!(!codes.knows("something_else"));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let errors = load(
            r#"
[[code]]
code = "Fee Dispute"

[[code]]
code = "fee_dispute"
aliases = ["fee-dispute", "refund"]
colour = "red"

[[code]]
code = "refund_request"
aliases = ["refund"]

[[code]]
code = "refund"
"#,
        )
        .unwrap_err();
        let has = |prefix: &str, text: &str| errors.iter().any(|e| e.starts_with(prefix) && e.contains(text));
        assert!(has("c.toml:3:", "not in normal form: write \"fee_dispute\""), "{errors:#?}");
        assert!(has("c.toml:7:", "is a spelling of `fee_dispute` itself"), "{errors:#?}");
        assert!(has("c.toml:8:", "unknown key `colour`"), "{errors:#?}");
        assert!(has("c.toml:10:", "alias `refund` of `refund_request` is itself a code"), "{errors:#?}");
    }

    #[test]
    fn one_alias_cannot_stand_for_two_codes() {
        let errors =
            load("[[code]]\ncode = \"a\"\naliases = [\"x\"]\n[[code]]\ncode = \"b\"\naliases = [\"X\"]\n")
                .unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("alias `x` of `b` is already an alias of `a`")),
            "{errors:#?}"
        );
    }
}
