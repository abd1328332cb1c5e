//! Reading one rule file: TOML text → validated [`Rule`]s plus every error found, each with its
//! line. Structure errors (unknown keys, wrong types, bad values) are collected per field rather
//! than stopping at the first, so an author fixes a file in one round.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::expr::Condition;
use super::features::RuleSchema;
use super::template::{Template, CUSTOMER_PLACEHOLDERS};
use super::variant::ScriptVariant;
use super::{
    Absence, Link, Localized, Mode, Rule, RuleError, Sequence, ACTIONS, MAX_LINKS, REQUIRED_LANGUAGES,
};
use crate::detect::{DetectorKind, DetectorParams, EVENT_FACTS};
use crate::event::EventKind;
use crate::time::{Span, DAY};
use crate::vocab::{Outreach, Queue, Severity};

/// Keys a `[[rule]]` table may have.
const KEYS: &[&str] = &[
    "outreach",
    "id",
    "description",
    "queue",
    "severity",
    "mode",
    "detector",
    "params",
    "on",
    "when",
    "cooldown",
    "title",
    "explanation",
    "script",
    "actions",
    "after",
    "absent",
    "then",
    "within",
    "script_variant",
];

/// Default cooldown: one day.
const DEFAULT_COOLDOWN: i64 = DAY;

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    /// The complaint playbook's tables (read by `playbook`).
    #[serde(default)]
    procedure: Vec<Value>,
    /// The synonyms table's entries (read by `codes`).
    #[serde(default)]
    code: Vec<Value>,
}

/// A rule with every field kept as a raw TOML value and its position, validated by hand so that
/// all problems are reported.
#[derive(Deserialize)]
struct RawRule {
    id: Option<Spanned<Value>>,
    description: Option<Spanned<Value>>,
    queue: Option<Spanned<Value>>,
    severity: Option<Spanned<Value>>,
    mode: Option<Spanned<Value>>,
    detector: Option<Spanned<Value>>,
    params: Option<Spanned<Value>>,
    on: Option<Spanned<Value>>,
    when: Option<Spanned<Value>>,
    cooldown: Option<Spanned<Value>>,
    title: Option<Spanned<Value>>,
    explanation: Option<Spanned<Value>>,
    script: Option<Spanned<Value>>,
    actions: Option<Spanned<Value>>,
    outreach: Option<Spanned<Value>>,
    after: Option<Spanned<Value>>,
    absent: Option<Spanned<Value>>,
    then: Option<Spanned<Value>>,
    within: Option<Spanned<Value>>,
    script_variant: Option<Vec<RawTable>>,
}

/// A table of a rule (a `[[rule.script_variant]]`) with its position and its keys' positions.
type RawTable = Spanned<BTreeMap<String, Spanned<Value>>>;

/// A TOML value as the author wrote it, for messages: strings quoted, others as TOML.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("a {}", other.type_str()),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Collects errors for one file.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<RuleError>,
}

impl Checker<'_> {
    fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.errors.push(RuleError {
            file: self.file.to_string(),
            line: line_of(self.text, offset),
            message: message.into(),
        });
    }

    fn string(&mut self, v: &Spanned<Value>, key: &str) -> Option<String> {
        match v.get_ref() {
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(v.span().start, format!("`{key}` must be a string, found {}", other.type_str()));
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        v: Option<&Spanned<Value>>,
        key: &str,
        at: usize,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let Some(v) = v else {
            self.error(at, format!("missing `{key}`"));
            return None;
        };
        let s = self.string(v, key)?;
        match choices.iter().find(|(n, _)| *n == s) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.error(
                    v.span().start,
                    format!("`{key}` is `{s}`; expected one of: {}", names.join(", ")),
                );
                None
            }
        }
    }

    fn localized(
        &mut self,
        v: Option<&Spanned<Value>>,
        key: &str,
        at: usize,
        known: &dyn Fn(&str) -> Result<(), String>,
    ) -> Option<Localized> {
        let Some(v) = v else {
            self.error(
                at,
                format!("missing `{key}` (a table of languages: {key}.en = \"…\", {key}.ru = \"…\")"),
            );
            return None;
        };
        let Value::Table(table) = v.get_ref() else {
            self.error(
                v.span().start,
                format!("`{key}` must be a table of languages, e.g. {key}.en = \"…\""),
            );
            return None;
        };
        let mut by_language = Vec::new();
        let mut ok = true;
        for (language, text) in table {
            let Value::String(text) = text else {
                self.error(v.span().start, format!("`{key}.{language}` must be a string"));
                ok = false;
                continue;
            };
            match Template::compile_checked(text, known) {
                Ok(t) => by_language.push((language.clone(), t)),
                Err(why) => {
                    self.error(v.span().start, format!("`{key}.{language}`: {why}"));
                    ok = false;
                }
            }
        }
        for required in REQUIRED_LANGUAGES {
            if !table.contains_key(*required) {
                self.error(v.span().start, format!("`{key}` has no `{required}` version"));
                ok = false;
            }
        }
        ok.then_some(Localized { by_language })
    }
}

/// Finds `[[rule]]` keys that are not rule keys, with the line where each is written.
fn unknown_keys(checker: &mut Checker<'_>) {
    let Ok(table) = checker.text.parse::<toml::Table>() else { return };
    let Some(Value::Array(rules)) = table.get("rule") else { return };
    let mut search_from = 0;
    for rule in rules {
        let Value::Table(rule) = rule else { continue };
        for key in rule.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            let pattern = format!("\n{key}");
            let offset = checker.text[search_from..]
                .find(&pattern)
                .map(|i| search_from + i + 1)
                .unwrap_or(search_from);
            checker.error(offset, format!("unknown key `{key}` (rule keys are: {})", KEYS.join(", ")));
        }
        if let Some(i) = checker.text[search_from..].find("[[rule]]") {
            search_from += i + 1;
        }
    }
    let _ = search_from;
    for key in table.keys().filter(|k| !["rule", "procedure", "code"].contains(&k.as_str())) {
        let offset = checker.text.find(key.as_str()).unwrap_or(0);
        checker.error(
            offset,
            format!(
                "unknown top-level key `{key}` (a rule file holds `[[rule]]`, `[[procedure]]` and `[[code]]` tables)"
            ),
        );
    }
}

/// Parses and validates one rule file. Returns the valid rules and every error found.
pub fn parse_rules(file: &str, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let mut c = Checker { file, text, errors: Vec::new() };
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            c.error(offset, e.message().trim().to_string());
            return (Vec::new(), c.errors);
        }
    };
    unknown_keys(&mut c);
    if raw.rule.is_empty() && raw.procedure.is_empty() && raw.code.is_empty() {
        c.error(0, "no `[[rule]]` (or `[[procedure]]`, `[[code]]`) tables in this file");
    }
    let mut rules = Vec::new();
    for spanned in raw.rule {
        let at = spanned.span().start;
        let before = c.errors.len();
        let rule = check_rule(&mut c, spanned.into_inner(), at);
        if let (Some(rule), true) = (rule, c.errors.len() == before) {
            rules.push(rule);
        }
    }
    (rules, c.errors)
}

fn check_rule(c: &mut Checker<'_>, r: RawRule, at: usize) -> Option<Rule> {
    let id = match &r.id {
        None => {
            c.error(at, "missing `id`");
            None
        }
        Some(v) => c.string(v, "id").and_then(|id| {
            let valid = id.starts_with(|ch: char| ch.is_ascii_lowercase())
                && id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
            if !valid {
                c.error(v.span().start, format!("rule id `{id}` must be lower_snake_case (a-z, 0-9, _)"));
            }
            valid.then_some(id)
        }),
    };
    let description = r.description.as_ref().and_then(|v| c.string(v, "description"));
    // A pattern rule: an absence ("after X, no Y within T") or a sequence ("after X, then Y
    // within T"); `then` makes it a sequence.
    let is_pattern = r.after.is_some() || r.absent.is_some() || r.then.is_some() || r.within.is_some();
    let is_sequence = r.then.is_some();
    let is_absence = is_pattern && !is_sequence;
    if is_pattern {
        let (what, conditions) = if is_sequence {
            ("a sequence rule (`after`, `then`, `within`)", "`after.when` and each `then`'s `when`")
        } else {
            ("an absence rule (`after`, `absent`, `within`)", "`after.when` and `absent.when`")
        };
        for (key, value) in
            [("detector", &r.detector), ("params", &r.params), ("on", &r.on), ("when", &r.when)]
        {
            if let Some(v) = value {
                c.error(v.span().start, format!("{what} has no `{key}`: conditions go in {conditions}"));
            }
        }
        if let (true, Some(v)) = (is_sequence, &r.absent) {
            c.error(v.span().start, "a rule has `then` (a sequence) or `absent` (an absence), not both");
        }
    }
    let queue = c.choice(r.queue.as_ref(), "queue", at, &[("fraud", Queue::Fraud), ("care", Queue::Care)]);
    let severity = c.choice(
        r.severity.as_ref(),
        "severity",
        at,
        &[
            ("critical", Severity::Critical),
            ("high", Severity::High),
            ("medium", Severity::Medium),
            ("low", Severity::Low),
        ],
    );
    let mode = match &r.mode {
        None => Some(Mode::Live),
        some => c.choice(some.as_ref(), "mode", at, &[("live", Mode::Live), ("shadow", Mode::Shadow)]),
    };
    let detector_kind = r.detector.as_ref().and_then(|v| {
        let name = c.string(v, "detector")?;
        let kind = DetectorKind::parse(&name);
        if kind.is_none() {
            let names: Vec<&str> = DetectorKind::ALL.iter().map(|d| d.name()).collect();
            c.error(
                v.span().start,
                format!("unknown detector `{name}`; built-in detectors are: {}", names.join(", ")),
            );
        }
        kind
    });
    let detector = match (detector_kind, &r.params) {
        (Some(kind), None) => {
            Some(DetectorParams::from_toml(kind, toml::Table::new()).expect("defaults are valid"))
        }
        (Some(kind), Some(v)) => match v.get_ref() {
            Value::Table(t) => match DetectorParams::from_toml(kind, t.clone()) {
                Ok(p) => Some(p),
                Err(why) => {
                    c.error(v.span().start, format!("`params` of detector `{}`: {why}", kind.name()));
                    None
                }
            },
            other => {
                c.error(v.span().start, format!("`params` must be a table, found {}", other.type_str()));
                None
            }
        },
        (None, Some(v)) if r.detector.is_none() => {
            c.error(v.span().start, "`params` given but no `detector`");
            None
        }
        (None, _) => None,
    };
    let on = match &r.on {
        Some(v) => {
            let mut kinds = Vec::new();
            match v.get_ref() {
                Value::Array(items) => {
                    for item in items {
                        match item.as_str().and_then(EventKind::parse) {
                            Some(k) => {
                                if let Some(d) = detector_kind {
                                    if !d.triggers().contains(&k) {
                                        c.error(
                                            v.span().start,
                                            format!("detector `{}` never fires on `{k}`", d.name()),
                                        );
                                    }
                                }
                                kinds.push(k);
                            }
                            None => {
                                c.error(v.span().start, format!("`on`: {} is not an event type", shown(item)))
                            }
                        }
                    }
                }
                _ => c.error(
                    v.span().start,
                    "`on` must be a list of event types, e.g. on = [\"card_transaction\"]",
                ),
            }
            kinds
        }
        None => match detector_kind {
            Some(d) => d.triggers().to_vec(),
            None => {
                if r.detector.is_none() && !is_pattern {
                    c.error(at, "a rule without a `detector` needs `on` (the event types it runs on)");
                }
                Vec::new()
            }
        },
    };
    let condition = r.when.as_ref().and_then(|v| {
        let src = c.string(v, "when")?;
        let schema = RuleSchema { detector: detector_kind };
        match Condition::compile_all(&src, &schema) {
            Ok(cond) => Some(cond),
            Err(errors) => {
                // The span starts at the opening quote; count lines inside the string too.
                let quote = if c.text[v.span().start..].starts_with("\"\"\"") { 3 } else { 1 };
                for e in errors {
                    c.error(v.span().start + quote + e.offset, format!("`when`: {e}"));
                }
                None
            }
        }
    });
    if r.detector.is_none() && r.when.is_none() && !is_pattern {
        c.error(
            at,
            "a rule needs a `detector`, a `when` condition, or both (or `after`, `absent` and `within`, \
             or `after`, `then` and `within`)",
        );
    }
    let absence = if is_absence { absence(c, &r, at) } else { None };
    let sequence = if is_sequence { sequence(c, &r, at) } else { None };
    let cooldown = match &r.cooldown {
        None => Some(DEFAULT_COOLDOWN),
        Some(v) => c.string(v, "cooldown").and_then(|s| match Span::parse(&s) {
            Ok(span) => Some(span.0),
            Err(why) => {
                c.error(v.span().start, format!("`cooldown`: {why}"));
                None
            }
        }),
    };
    let pattern = if is_sequence {
        Some(crate::detect::sequence::FACTS)
    } else if is_absence {
        Some(crate::detect::absence::FACTS)
    } else {
        None
    };
    let known = |name: &str| placeholder_check(name, pattern, detector_kind);
    let title = c.localized(r.title.as_ref(), "title", at, &known);
    let explanation = c.localized(r.explanation.as_ref(), "explanation", at, &known);
    let script = c.localized(r.script.as_ref(), "script", at, &known);
    let script_variants =
        script_variants(c, r.script_variant.as_deref().unwrap_or_default(), detector_kind, &known);
    let actions = match &r.actions {
        None => {
            c.error(at, "missing `actions` (suggested actions for the agent)");
            None
        }
        Some(v) => match v.get_ref() {
            Value::Array(items) if !items.is_empty() => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(a) if ACTIONS.contains(&a) => out.push(a.to_string()),
                        _ => c.error(
                            v.span().start,
                            format!("unknown action {}; known actions: {}", shown(item), ACTIONS.join(", ")),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                c.error(v.span().start, "`actions` must be a non-empty list of action names");
                None
            }
        },
    };
    let outreach = match &r.outreach {
        None => Some(None),
        Some(v) => {
            match v.get_ref() {
                Value::Table(t) => {
                    let template = t.get("template").and_then(Value::as_str).map(str::to_string);
                    let any_hour = t.get("any_hour").map(Value::as_bool);
                    let unknown: Vec<&String> =
                        t.keys().filter(|k| !["template", "any_hour"].contains(&k.as_str())).collect();
                    if !unknown.is_empty() {
                        c.error(
                            v.span().start,
                            format!("`outreach`: unknown key `{}` (keys: template, any_hour)", unknown[0]),
                        );
                        None
                    } else if template.as_deref().is_none_or(|t| {
                        t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    }) {
                        c.error(
                            v.span().start,
                            "`outreach.template` must name a template (letters, digits, `_`)",
                        );
                        None
                    } else if any_hour == Some(None) {
                        c.error(v.span().start, "`outreach.any_hour` must be true or false");
                        None
                    } else {
                        let template = template.expect("checked");
                        Some(Some(Outreach { template, any_hour: any_hour.flatten().unwrap_or(false) }))
                    }
                }
                other => {
                    c.error(v.span().start, format!("`outreach` must be a table such as {{ template = \"fraud_confirmation\" }}, not {}", shown(other)));
                    None
                }
            }
        }
    };
    Some(Rule {
        outreach: outreach?,
        absence: if is_absence { Some(absence?) } else { None },
        sequence: if is_sequence { Some(sequence?) } else { None },
        id_hash: crate::state::hash_text(id.as_deref()?),
        id: id?,
        description,
        queue: queue?,
        severity: severity?,
        mode: mode?,
        detector,
        on,
        condition,
        cooldown: cooldown?,
        title: title?,
        explanation: explanation?,
        script: script?,
        script_variants: script_variants?,
        actions: actions?,
        file: c.file.to_string(),
        line: line_of(c.text, at),
    })
}

/// One side of a pattern rule (`after`, `absent`, or a link of `then`): a table with `on`, the
/// event type or types, and an optional `when`. `at` locates the table.
fn pattern_side(
    c: &mut Checker<'_>,
    v: &Value,
    at: usize,
    key: &str,
) -> Option<(Vec<EventKind>, Option<Condition>)> {
    let Value::Table(t) = v else {
        c.error(at, format!("`{key}` must be a table such as {{ on = \"complaint\", when = \"…\" }}"));
        return None;
    };
    if let Some(k) = t.keys().find(|k| !["on", "when"].contains(&k.as_str())) {
        c.error(at, format!("`{key}`: unknown key `{k}` (keys: on, when)"));
        return None;
    }
    let names: Vec<&Value> = match t.get("on") {
        Some(Value::String(_)) => vec![&t["on"]],
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        _ => {
            c.error(at, format!("`{key}` needs `on`, the event type (a string) or types (a list)"));
            return None;
        }
    };
    let mut kinds = Vec::new();
    for name in names {
        match name.as_str().and_then(EventKind::parse) {
            Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Some(_) => {}
            None => {
                c.error(at, format!("`{key}.on`: {} is not an event type", shown(name)));
                return None;
            }
        }
    }
    let when = match t.get("when") {
        None => None,
        Some(Value::String(src)) => match Condition::compile_all(src, &RuleSchema { detector: None }) {
            Ok(cond) => Some(cond),
            Err(errors) => {
                for e in errors {
                    c.error(at, format!("`{key}.when`: {e}"));
                }
                return None;
            }
        },
        Some(other) => {
            c.error(at, format!("`{key}.when` must be a string, found {}", other.type_str()));
            return None;
        }
    };
    Some((kinds, when))
}

/// The `within` of a pattern rule: a span longer than zero.
fn pattern_within(c: &mut Checker<'_>, r: &RawRule, at: usize, what: &str) -> Option<i64> {
    match &r.within {
        None => {
            c.error(at, format!("{what} needs `within` (a span such as \"72h\")"));
            None
        }
        Some(v) => c.string(v, "within").and_then(|text| match Span::parse(&text) {
            Ok(span) if span.0 > 0 => Some(span.0),
            Ok(_) => {
                c.error(v.span().start, "`within` must be longer than zero");
                None
            }
            Err(why) => {
                c.error(v.span().start, format!("`within`: {why}"));
                None
            }
        }),
    }
}

/// The `after`, `absent` and `within` of an absence rule ("after X, no Y within T").
fn absence(c: &mut Checker<'_>, r: &RawRule, at: usize) -> Option<Absence> {
    let side = |c: &mut Checker<'_>, v: Option<&Spanned<Value>>, key: &str| {
        let Some(v) = v else {
            c.error(at, format!("an absence rule needs `{key}` (e.g. {key} = {{ on = \"complaint\" }})"));
            return None;
        };
        let (kinds, when) = pattern_side(c, v.get_ref(), v.span().start, key)?;
        if kinds.len() != 1 {
            c.error(v.span().start, format!("`{key}.on` of an absence rule names one event type"));
            return None;
        }
        Some((kinds[0], when))
    };
    let after = side(c, r.after.as_ref(), "after");
    let absent = side(c, r.absent.as_ref(), "absent");
    let within = pattern_within(c, r, at, "an absence rule");
    let ((after, after_when), (absent, absent_when), within) = (after?, absent?, within?);
    Some(Absence { after, after_when, absent, absent_when, within })
}

/// The `after`, `then` and `within` of a sequence rule ("after X, then Y within T"): `then` is
/// one link (a table) or several in order (a list of tables).
fn sequence(c: &mut Checker<'_>, r: &RawRule, at: usize) -> Option<Sequence> {
    let first = match &r.after {
        None => {
            c.error(at, "a sequence rule needs `after`, its first link (e.g. after = { on = \"login\" })");
            None
        }
        Some(v) => pattern_side(c, v.get_ref(), v.span().start, "after"),
    };
    let then = r.then.as_ref().expect("a sequence rule has `then`");
    let raw: Vec<&Value> = match then.get_ref() {
        Value::Array(items) => items.iter().collect(),
        table => vec![table],
    };
    let mut links = vec![first];
    if raw.is_empty() || raw.len() + 1 > MAX_LINKS {
        c.error(
            then.span().start,
            format!("`then` has one to {} links (a table, or a list of tables)", MAX_LINKS - 1),
        );
        links.push(None);
    }
    for (i, v) in raw.iter().enumerate() {
        let key = if raw.len() == 1 { "then".to_string() } else { format!("then[{i}]") };
        links.push(pattern_side(c, v, then.span().start, &key));
    }
    let within = pattern_within(c, r, at, "a sequence rule");
    let links: Option<Vec<Link>> = links.into_iter().map(|l| l.map(|(on, when)| Link { on, when })).collect();
    Some(Sequence { links: links?, within: within? })
}

/// Whether a rule's templates may use the placeholder `name`: what its signals carry (the
/// detector's facts; the event facts for a rule without a detector or a detector in
/// `DetectorKind::carries_event_facts`; the wait's facts for an absence rule, the chain's for a
/// sequence rule) and the customer placeholders.
/// Anything else is an error saying why, so that whatever passes the check renders.
fn placeholder_check(
    name: &str,
    pattern: Option<&[(&str, crate::vocab::Type)]>,
    detector: Option<DetectorKind>,
) -> Result<(), String> {
    let has = |facts: &[(&str, crate::vocab::Type)]| facts.iter().any(|(n, _)| *n == name);
    if CUSTOMER_PLACEHOLDERS.contains(&name) {
        return Ok(());
    }
    if let Some(facts) = pattern {
        // An absence rule fires on no event, a sequence rule on several: their facts are the
        // wait's or the chain's.
        return if has(facts) { Ok(()) } else { Err(format!("unknown placeholder `{{{name}}}`")) };
    }
    let facts = detector.map(DetectorKind::facts).unwrap_or(&[]);
    if has(facts) {
        return Ok(());
    }
    let event_facts = detector.is_none_or(DetectorKind::carries_event_facts);
    match detector {
        Some(d) if has(EVENT_FACTS) && !event_facts => {
            let detector = serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_string));
            let own: Vec<&str> = facts.iter().map(|(n, _)| *n).collect();
            Err(format!(
                "placeholder `{{{name}}}` is an event fact, which `{}` signals do not carry (it would \
                 render as `?`); use the detector's facts: {}",
                detector.unwrap_or_default(),
                own.join(", ")
            ))
        }
        _ if event_facts && has(EVENT_FACTS) => Ok(()),
        _ => Err(format!("unknown placeholder `{{{name}}}`")),
    }
}

/// The `[[rule.script_variant]]` tables of a rule: each a `when` over the signal's facts and a
/// `script` in every language (see `variant`).
fn script_variants(
    c: &mut Checker<'_>,
    raw: &[RawTable],
    detector: Option<DetectorKind>,
    known: &dyn Fn(&str) -> Result<(), String>,
) -> Option<Vec<ScriptVariant>> {
    let before = c.errors.len();
    let mut variants = Vec::new();
    for table in raw {
        let at = table.span().start;
        for (key, v) in table.get_ref() {
            if key != "when" && key != "script" {
                c.error(
                    v.span().start,
                    format!("`script_variant`: unknown key `{key}` (keys: when, script)"),
                );
            }
        }
        let when = match table.get_ref().get("when") {
            None => {
                c.error(at, "a `script_variant` needs `when` (a condition over `signal.<fact>`)");
                None
            }
            Some(v) => c.string(v, "script_variant.when").and_then(|src| {
                match super::variant::compile_condition(&src, detector) {
                    Ok(cond) => Some(cond),
                    Err(errors) => {
                        let quote = if c.text[v.span().start..].starts_with("\"\"\"") { 3 } else { 1 };
                        for e in errors {
                            c.error(v.span().start + quote + e.offset, format!("`script_variant.when`: {e}"));
                        }
                        None
                    }
                }
            }),
        };
        let script = c.localized(table.get_ref().get("script"), "script", at, known);
        if let (Some(when), Some(script)) = (when, script) {
            variants.push(ScriptVariant { when, script, line: line_of(c.text, at) });
        }
    }
    (c.errors.len() == before).then_some(variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSENCE: &str = r#"
[[rule]]
id = "complaint_unresolved"
queue = "care"
severity = "high"
after = { on = "complaint", when = "event.severity != 'low'" }
absent = { on = "support_contact", when = "event.resolved" }
within = "72h"
actions = ["call_customer"]
title.en = "Unresolved after {waited_hours} h: {anchor_detail}"
title.ru = "Не решено за {waited_hours} ч"
explanation.en = "x"
explanation.ru = "x"
script.en = "Hello {customer_name}"
script.ru = "Здравствуйте, {customer_name}"
"#;

    #[test]
    fn an_absence_rule_loads_with_its_conditions_type_checked() {
        let (rules, errors) = parse_rules("a.toml", ABSENCE);
        assert!(errors.is_empty(), "{errors:?}");
        let a = rules[0].absence.as_ref().expect("an absence rule");
        assert_eq!(
            (a.after, a.absent, a.within),
            (EventKind::Complaint, EventKind::SupportContact, 72 * 3_600_000)
        );
        assert!(a.after_when.is_some() && a.absent_when.is_some());
        assert!(rules[0].on.is_empty() && rules[0].detector.is_none());
    }

    #[test]
    fn absence_rule_mistakes_are_file_line_errors() {
        let cases = [
            ("within = \"72h\"\n", "", "needs `within`"),
            ("within = \"72h\"", "within = \"0s\"", "longer than zero"),
            ("when = \"event.severity != 'low'\"", "when = \"event.severity > 3\"", "`after.when`"),
            ("on = \"complaint\"", "on = \"complain\"", "not an event type"),
            ("within = \"72h\"\n", "within = \"72h\"\ndetector = \"churn_risk\"\n", "has no `detector`"),
            ("{waited_hours} h: {anchor_detail}", "{speed_kmh}", "unknown placeholder"),
        ];
        for (from, to, expected) in cases {
            let text = ABSENCE.replacen(from, to, 1);
            assert_ne!(text, ABSENCE, "{from}");
            let (_, errors) = parse_rules("a.toml", &text);
            assert!(
                errors.iter().any(|e| e.message.contains(expected) && e.line > 1),
                "{expected}: {errors:?}"
            );
        }
    }

    const SEQUENCE: &str = r#"
[[rule]]
id = "takeover"
queue = "fraud"
severity = "critical"
after = { on = ["support_contact", "login"], when = "event.reason == 'password_reset' || event.new_device" }
then = { on = "transfer", when = "event.outgoing && event.new_payee" }
within = "1h"
actions = ["hold_transfer"]
title.en = "{amount_eur} EUR to {last_detail} {minutes} min after {first_detail}"
title.ru = "{amount_eur} EUR"
explanation.en = "x"
explanation.ru = "x"
script.en = "Hello {customer_name}"
script.ru = "Здравствуйте, {customer_name}"
"#;

    #[test]
    fn a_sequence_rule_loads_with_its_links_type_checked() {
        let (rules, errors) = parse_rules("s.toml", SEQUENCE);
        assert!(errors.is_empty(), "{errors:?}");
        let s = rules[0].sequence.as_ref().expect("a sequence rule");
        assert_eq!(s.within, 3_600_000);
        assert_eq!(s.links.len(), 2);
        assert_eq!(s.links[0].on, vec![EventKind::SupportContact, EventKind::Login]);
        assert!(s.links.iter().all(|l| l.when.is_some()));
        assert!(rules[0].absence.is_none() && rules[0].on.is_empty() && rules[0].detector.is_none());
        // A list of links in order.
        let three = SEQUENCE.replacen(
            "then = { on = \"transfer\", when = \"event.outgoing && event.new_payee\" }",
            "then = [{ on = \"login\" }, { on = \"transfer\" }]",
            1,
        );
        let (rules, errors) = parse_rules("s.toml", &three);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules[0].sequence.as_ref().unwrap().links.len(), 3);
    }

    #[test]
    fn sequence_rule_mistakes_are_file_line_errors() {
        let then = "then = { on = \"transfer\", when = \"event.outgoing && event.new_payee\" }";
        let cases = [
            ("within = \"1h\"\n", "", "needs `within`"),
            ("event.outgoing && event.new_payee", "event.outgoing > 2", "`then.when`"),
            ("event.new_device\"", "event.new_device + 1\"", "`after.when`"),
            ("\"support_contact\", \"login\"", "\"support_contact\", \"logon\"", "not an event type"),
            (then, "then = []", "one to 3 links"),
            (then, "then = [{ on = \"login\" }, { on = \"login\" }, { on = \"login\" }, { on = \"login\" }]", "one to 3 links"),
            (then, "then = [{ on = \"login\" }, { on = \"transfer\", if = \"x\" }]", "`then[1]`: unknown key `if`"),
            ("within = \"1h\"\n", "within = \"1h\"\nabsent = { on = \"login\" }\n", "not both"),
            ("within = \"1h\"\n", "within = \"1h\"\nwhen = \"event.success\"\n", "a sequence rule"),
            ("{amount_eur} EUR to", "{waited_hours} EUR to", "unknown placeholder"),
            ("after = { on = [\"support_contact\", \"login\"], when = \"event.reason == 'password_reset' || event.new_device\" }\n", "", "needs `after`"),
        ];
        for (from, to, expected) in cases {
            let text = SEQUENCE.replacen(from, to, 1);
            assert_ne!(text, SEQUENCE, "{from}");
            let (_, errors) = parse_rules("s.toml", &text);
            assert!(
                errors.iter().any(|e| e.message.contains(expected) && e.line > 1),
                "{expected}: {errors:?}"
            );
        }
    }

    const GOOD: &str = r#"
[[rule]]
id = "travel"
queue = "fraud"
severity = "high"
detector = "impossible_travel"
params = { max_speed_kmh = 900 }
when = "signal.speed_kmh > 1000"
cooldown = "6h"
title.en = "Card {card} in two places"
title.ru = "Карта {card} в двух местах"
explanation.en = "{from_city} → {to_city}: {distance_km} km in {minutes} min"
explanation.ru = "{from_city} → {to_city}: {distance_km} км за {minutes} мин"
script.en = "Hello {customer_name}"
script.ru = "Здравствуйте, {customer_name}"
actions = ["block_card", "confirm_with_customer"]
"#;

    #[test]
    fn a_good_rule_loads() {
        let (rules, errors) = parse_rules("fraud.toml", GOOD);
        assert!(errors.is_empty(), "{errors:?}");
        let r = &rules[0];
        assert_eq!(r.id, "travel");
        assert_eq!(r.line, 2);
        assert_eq!(r.cooldown, 6 * crate::time::HOUR);
        assert_eq!(r.on, vec![EventKind::CardTransaction]);
        let DetectorParams::ImpossibleTravel(p) = r.detector.as_ref().unwrap() else { panic!() };
        assert_eq!(p.max_speed_kmh, 900.0);
        assert_eq!(p.min_distance_km, 100.0, "unset params take defaults");
    }

    fn errors_of(text: &str) -> Vec<String> {
        parse_rules("f.toml", text).1.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let bad = GOOD
            .replace(r#"when = "signal.speed_kmh > 1000""#, r#"when = "event.country == 42""#)
            .replace(r#"severity = "high""#, r#"severity = "urgent""#)
            .replace("{to_city}: {distance_km} km", "{to_cty}: {distance_km} km")
            .replace(r#"cooldown = "6h""#, "cooldown = \"6h\"\ncolour = \"red\"");
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("f.toml:5: `severity` is `urgent`")), "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.starts_with("f.toml:8: `when`") && e.contains("event.country")),
            "{errors:#?}"
        );
        assert!(errors.iter().any(|e| e.starts_with("f.toml:10: unknown key `colour`")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("unknown placeholder `{to_cty}`")), "{errors:#?}");
    }

    #[test]
    fn a_when_with_two_errors_reports_both_with_line_and_column() {
        let when = "signal.speed_mph > 1000 && event.country == 42";
        let bad = GOOD.replace("signal.speed_kmh > 1000", when);
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("f.toml:8: `when`: column 1: unknown feature `signal.speed_mph`"),
            "{errors:#?}"
        );
        let column = when.find("event.country").unwrap() + 1;
        assert!(
            errors[1]
                .starts_with(&format!("f.toml:8: `when`: column {column}: type mismatch: `event.country`")),
            "{errors:#?}"
        );
        // An unknown name inside a comparison is one error, not also a type mismatch.
        let errors = errors_of(&GOOD.replace("signal.speed_kmh > 1000", "signal.nope == 'x' && event.nope"));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors.iter().all(|e| e.contains("unknown feature")), "{errors:#?}");
    }

    #[test]
    fn an_event_fact_a_detector_does_not_carry_is_refused_with_its_line() {
        // `{city}` passed the check here but rendered `?`: impossible_travel signals carry
        // `from_city`/`to_city`, not the event facts.
        let bad = GOOD.replace("explanation.en = \"{from_city}", "explanation.en = \"{city}, {from_city}");
        assert_ne!(bad, GOOD);
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("f.toml:12: `explanation.en`: placeholder `{city}` is an event fact"),
            "{errors:#?}"
        );
        assert!(errors[0].contains("`impossible_travel`") && errors[0].contains("to_city"), "{errors:#?}");
        // Detectors that do carry them, and rules without a detector, may use them.
        let anomaly = GOOD
            .replace("impossible_travel", "amount_anomaly")
            .replace("params = { max_speed_kmh = 900 }\n", "")
            .replace("signal.speed_kmh > 1000", "signal.ratio > 10")
            .replace("{card}", "{city}")
            .replace("{from_city} → {to_city}: {distance_km} km in {minutes} min", "{merchant} {amount}")
            .replace("{from_city} → {to_city}: {distance_km} км за {minutes} мин", "{merchant} {amount}");
        assert_eq!(errors_of(&anomaly), Vec::<String>::new());
    }

    #[test]
    fn unknown_feature_and_detector_and_params() {
        let bad = GOOD.replace("signal.speed_kmh", "signal.speed_mph").replace("max_speed_kmh", "max_speed");
        let errors = errors_of(&bad);
        assert!(errors.iter().any(|e| e.contains("signal.speed_mph")), "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.starts_with("f.toml:7: `params`") && e.contains("max_speed")),
            "{errors:#?}"
        );
        let errors =
            errors_of(&GOOD.replace(r#"detector = "impossible_travel""#, r#"detector = "teleport""#));
        assert!(errors.iter().any(|e| e.starts_with("f.toml:6: unknown detector `teleport`")), "{errors:#?}");
    }

    #[test]
    fn missing_language_and_syntax_error() {
        let errors = errors_of(&GOOD.replace("script.ru = \"Здравствуйте, {customer_name}\"\n", ""));
        assert!(errors.iter().any(|e| e.contains("`script` has no `ru` version")), "{errors:#?}");
        let errors = errors_of("[[rule]]\nid = \"x\nqueue = 1\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("f.toml:2:"), "{errors:#?}");
    }

    #[test]
    fn condition_only_rule_needs_on() {
        let text = GOOD
            .replace("detector = \"impossible_travel\"\nparams = { max_speed_kmh = 900 }\n", "")
            .replace("signal.speed_kmh > 1000", "event.amount_eur > 1000")
            .replace("{card}", "{merchant}")
            .replace("{from_city} → {to_city}: {distance_km} km in {minutes} min", "{amount}")
            .replace("{from_city} → {to_city}: {distance_km} км за {minutes} мин", "{amount}");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("needs `on`"));
        let (rules, errors) =
            parse_rules("f.toml", &text.replace("cooldown", "on = [\"card_transaction\"]\ncooldown"));
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(rules[0].on, vec![EventKind::CardTransaction]);
    }
}
