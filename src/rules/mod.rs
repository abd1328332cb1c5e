//! Rules: what pages whom. A rule names a built-in detector with parameters and/or a condition
//! over the event and the customer's features, and says which queue, how severe, how often
//! (cooldown), whether it is live or in shadow mode, and what the agent reads and says.
//!
//! Rules are TOML files in a directory (`rules/` by default), edited by hand and reviewed in pull
//! requests; see `docs/rules.md` for the format and why TOML. Loading validates everything
//! (types of expressions, placeholders, parameters, duplicates) and reports *every* error as
//! `file:line: reason`. The loaded [`RuleSet`] is immutable: the service swaps a whole new set
//! atomically, and a set that fails validation never replaces the running one. Rule files also
//! hold the complaint playbook ([`playbook`]), a procedure per complaint category.

pub mod codes;
pub mod expr;
pub mod features;
pub mod file;
pub mod playbook;
pub mod template;
pub mod variant;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::detect::{DetectorKind, DetectorParams};
use crate::event::EventKind;
use crate::vocab::{Outreach, Queue, Severity};
use expr::Condition;
use template::Template;

pub use file::parse_rules;

/// Live rules open tasks; shadow rules are evaluated and counted but page nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    Shadow,
}

/// Suggested actions a rule may offer the agent.
pub const ACTIONS: &[&str] = &[
    "block_card",
    "reissue_card",
    "confirm_with_customer",
    "mark_legit",
    "call_customer",
    "reset_credentials",
    "hold_transfer",
    "assign_case_owner",
    "fix_root_cause",
    "apologise_and_compensate",
    "offer_retention",
    "escalate_to_complaints_team",
];

/// Languages every text of a rule must have.
pub const REQUIRED_LANGUAGES: &[&str] = &["en", "ru"];

/// A text in several languages.
#[derive(Debug, Clone, PartialEq)]
pub struct Localized {
    pub by_language: Vec<(String, Template)>,
}

impl Localized {
    /// The template in `language`, or in English.
    pub fn get(&self, language: &str) -> &Template {
        self.by_language
            .iter()
            .find(|(l, _)| l == language)
            .or_else(|| self.by_language.iter().find(|(l, _)| l == "en"))
            .map(|(_, t)| t)
            .expect("validated: every text has an `en` version")
    }

    /// The language actually used for `language` (itself if present, else `en`).
    pub fn language_for<'a>(&'a self, language: &'a str) -> &'a str {
        if self.by_language.iter().any(|(l, _)| l == language) {
            language
        } else {
            "en"
        }
    }
}

/// An absence rule's pattern: after an event of type `after` (matching `after_when`), no event
/// of type `absent` (matching `absent_when`) within `within` milliseconds.
#[derive(Debug, Clone)]
pub struct Absence {
    pub after: EventKind,
    pub after_when: Option<Condition>,
    pub absent: EventKind,
    pub absent_when: Option<Condition>,
    pub within: i64,
}

/// One link of a sequence rule: an event of one of the types `on` matching `when`.
#[derive(Debug, Clone)]
pub struct Link {
    pub on: Vec<EventKind>,
    pub when: Option<Condition>,
}

impl Link {
    /// True if the link may match an event of this type (its condition still to be evaluated).
    pub fn watches(&self, kind: EventKind) -> bool {
        self.on.contains(&kind)
    }
}

/// A sequence rule's pattern ("after X, then Y, then Z, within T"): events matching each link in
/// turn, in event-time order, the last within `within` milliseconds of the first. At most
/// [`MAX_LINKS`] links.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub links: Vec<Link>,
    pub within: i64,
}

/// Links a sequence rule may have (`after` and up to three `then`).
pub const MAX_LINKS: usize = 4;

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Stable hash of the id (per-customer cooldowns are keyed by it, so they survive reloads).
    pub id_hash: u64,
    pub description: Option<String>,
    pub queue: Queue,
    pub severity: Severity,
    pub mode: Mode,
    pub detector: Option<DetectorParams>,
    /// Event types the rule is evaluated on.
    pub on: Vec<EventKind>,
    pub condition: Option<Condition>,
    /// Milliseconds after firing for a customer during which the rule does not fire again.
    pub cooldown: i64,
    pub title: Localized,
    pub explanation: Localized,
    pub script: Localized,
    /// Scripts for particular cases, tried in order before `script` (see [`Rule::script_for`]).
    pub script_variants: Vec<variant::ScriptVariant>,
    pub actions: Vec<String>,
    /// Whether and how the customer is written to when this rule opens or enriches a task.
    pub outreach: Option<Outreach>,
    /// An absence rule ("after X, no Y within T"), which fires by an event-time timer.
    pub absence: Option<Absence>,
    /// A sequence rule ("after X, then Y within T"), which fires on the event completing it.
    pub sequence: Option<Sequence>,
    /// Where the rule was defined, for messages.
    pub file: String,
    pub line: usize,
}

impl Rule {
    /// The detector this rule uses, if any.
    pub fn detector_kind(&self) -> Option<DetectorKind> {
        self.detector.as_ref().map(DetectorParams::kind)
    }
}

/// A problem in a rule file, located by file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads one kind of table of a rule file into `T` (a struct naming the array, e.g.
/// `procedure`, with positions kept): `Ok(None)` when the file is not valid TOML at all (the rule
/// reader reports that), or the array's error with its line.
pub(crate) fn read_tables<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    what: &str,
) -> Result<Option<T>, RuleError> {
    if text.parse::<toml::Table>().is_err() {
        return Ok(None);
    }
    toml::from_str(text).map(Some).map_err(|e| RuleError {
        file: file.to_string(),
        line: line_of(text, e.span().map(|s| s.start).unwrap_or(0)),
        message: format!("`{what}`: {}", e.message().trim()),
    })
}

/// Every problem found in a rule directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The running rule set, shared by the service's stages and swapped whole on reload.
pub type SharedRules = std::sync::Arc<std::sync::RwLock<std::sync::Arc<RuleSet>>>;

/// An immutable, validated set of rules, indexed by the event types they run on.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    by_event: [Vec<usize>; EventKind::ALL.len()],
    timer_rules: Vec<usize>,
    /// The complaint playbook: a procedure per complaint category, and the default.
    pub playbook: Arc<playbook::Playbook>,
    /// The codes the pack knows and their aliases (`[[code]]` tables).
    pub codes: Arc<codes::Codes>,
    /// Absence rules by the event types they watch (as `after` or as `absent`).
    absence_by_event: [Vec<usize>; EventKind::ALL.len()],
    /// Sequence rules by the event types of their links.
    sequence_by_event: [Vec<usize>; EventKind::ALL.len()],
    /// Hash of the rule sources: tells which rule set produced a result.
    pub fingerprint: u64,
}

impl RuleSet {
    /// Loads and validates every `*.toml` file in `dir` (sorted by name).
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
        let at_dir = |message: String| {
            RuleErrors(vec![RuleError { file: dir.display().to_string(), line: 0, message }])
        };
        let entries =
            std::fs::read_dir(dir).map_err(|e| at_dir(format!("cannot read rule directory: {e}")))?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(at_dir("no rule files (*.toml) found".to_string()));
        }
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((path.display().to_string(), text)),
                Err(e) => errors.push(RuleError {
                    file: path.display().to_string(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match RuleSet::from_sources(&sources) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(RuleErrors(errors)),
            Err(RuleErrors(more)) => {
                errors.extend(more);
                Err(RuleErrors(errors))
            }
        }
    }

    /// Validates rules given as (file name, TOML text) pairs.
    pub fn from_sources(sources: &[(String, String)]) -> Result<RuleSet, RuleErrors> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut errors = Vec::new();
        let mut procedures = Vec::new();
        let mut code_entries = Vec::new();
        for (name, text) in sources {
            let (found, errs) = codes::parse_codes(name, text);
            code_entries.extend(found);
            errors.extend(errs);
            let (parsed, errs) = parse_rules(name, text);
            errors.extend(errs);
            let (found, errs) = playbook::parse_procedures(name, text);
            procedures.extend(found);
            errors.extend(errs);
            for rule in parsed {
                if let Some(first) = rules.iter().find(|r| r.id == rule.id) {
                    errors.push(RuleError {
                        file: rule.file.clone(),
                        line: rule.line,
                        message: format!(
                            "rule id `{}` is already defined at {}:{}",
                            rule.id, first.file, first.line
                        ),
                    });
                } else {
                    rules.push(rule);
                }
            }
        }
        let (playbook, errs) = playbook::Playbook::new(procedures);
        errors.extend(errs);
        let categories: Vec<&str> = playbook.categories().collect();
        let (codes, errs) = codes::Codes::new(code_entries, &categories);
        errors.extend(errs);
        let mut title_languages: Vec<&str> = Vec::new();
        for rule in &rules {
            for (language, _) in &rule.title.by_language {
                if !title_languages.contains(&language.as_str()) {
                    title_languages.push(language);
                }
            }
        }
        errors.extend(playbook.missing_languages(&title_languages));
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        let playbook = Arc::new(playbook);
        let codes = Arc::new(codes);
        let mut by_event: [Vec<usize>; EventKind::ALL.len()] = Default::default();
        let mut timer_rules = Vec::new();
        let mut absence_by_event: [Vec<usize>; EventKind::ALL.len()] = Default::default();
        let mut sequence_by_event: [Vec<usize>; EventKind::ALL.len()] = Default::default();
        for (i, rule) in rules.iter().enumerate() {
            for kind in &rule.on {
                by_event[*kind as usize].push(i);
            }
            if let Some(a) = &rule.absence {
                absence_by_event[a.absent as usize].push(i);
                if a.after != a.absent {
                    absence_by_event[a.after as usize].push(i);
                }
            }
            if let Some(s) = &rule.sequence {
                for kind in EventKind::ALL {
                    if s.links.iter().any(|l| l.watches(kind)) {
                        sequence_by_event[kind as usize].push(i);
                    }
                }
            }
            if rule.detector_kind().is_some_and(DetectorKind::uses_timers) {
                timer_rules.push(i);
            }
        }
        let mut all_text = String::new();
        for (name, text) in sources {
            all_text.push_str(name);
            all_text.push_str(text);
        }
        let fingerprint = xxhash_rust::xxh3::xxh3_64(all_text.as_bytes());
        Ok(RuleSet {
            rules,
            by_event,
            timer_rules,
            playbook,
            codes,
            absence_by_event,
            sequence_by_event,
            fingerprint,
        })
    }

    /// Indexes of the rules evaluated on an event type.
    pub fn for_event(&self, kind: EventKind) -> &[usize] {
        &self.by_event[kind as usize]
    }

    /// Indexes of the rules evaluated when an event-time timer fires.
    pub fn for_timers(&self) -> &[usize] {
        &self.timer_rules
    }

    /// Indexes of the absence rules an event type starts or ends.
    pub fn absences_for(&self, kind: EventKind) -> &[usize] {
        &self.absence_by_event[kind as usize]
    }

    /// Indexes of the sequence rules with a link on an event type.
    pub fn sequences_for(&self, kind: EventKind) -> &[usize] {
        &self.sequence_by_event[kind as usize]
    }

    /// The sequence rule with this id hash, if the set has it.
    pub fn sequence_rule(&self, id_hash: u64) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.id_hash == id_hash && r.sequence.is_some())
    }

    /// The absence rule with this id hash, if the set has it.
    pub fn absence_rule(&self, id_hash: u64) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.id_hash == id_hash && r.absence.is_some())
    }
}
