//! The complaint playbook: for each complaint category, its procedure (what the care agent
//! does, step by step; which team owns it; how long it may take; whether compensation may be
//! offered, and up to how much; what to say), in every language rule texts use, plus one
//! default procedure for a category nobody has written one for yet.
//!
//! Procedures are `[[procedure]]` tables in any rule file (the default pack keeps them in
//! `rules/complaints.toml`), read here with every problem reported as `file:line: reason`, like
//! rules. A complaint of a category the playbook does not list gets the default procedure, and
//! the task says so (`known = false`): the gap is shown and counted, never papered over.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::template::{Template, CUSTOMER_PLACEHOLDERS};
use super::{line_of, Localized, RuleError, REQUIRED_LANGUAGES};
use crate::detect::Fact;
use crate::time::{Span, HOUR};

/// The category of the default procedure.
pub const DEFAULT_CATEGORY: &str = "*";

/// Keys a `[[procedure]]` table may have.
const KEYS: &[&str] = &["category", "name", "team", "sla", "compensation", "steps", "script"];

/// Placeholders of a procedure's name: the category as the complaint gave it.
const NAME_PLACEHOLDERS: &[&str] = &["category"];

/// Placeholders of its steps and script: the category as given, its name, and the customer's.
const TEXT_PLACEHOLDERS: &[&str] = &["category", "category_name"];

/// Whether an agent may offer compensation, and up to how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compensation {
    No,
    /// Yes, as the agent judges.
    Yes,
    /// Yes, up to this many euros.
    UpToEur(f64),
}

/// One category's procedure, as written.
#[derive(Debug, Clone)]
pub struct Procedure {
    /// The complaint category it is for (`*` for the default).
    pub category: String,
    pub name: Localized,
    /// The team that owns complaints of this category.
    pub team: String,
    /// Time to resolve a complaint of this category, in milliseconds.
    pub sla: i64,
    pub compensation: Compensation,
    /// The steps, per language (every language has the same number).
    pub steps: Vec<(String, Vec<Template>)>,
    pub script: Localized,
    pub file: String,
    pub line: usize,
}

/// A procedure put into words for one complaint, in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// False when the category has no procedure of its own (the default was used).
    pub known: bool,
    pub name: String,
    pub team: String,
    pub sla_hours: f64,
    pub compensation: Compensation,
    pub steps: Vec<String>,
    pub script: String,
}

/// Every procedure of a rule set. Empty when the rule files have none.
#[derive(Debug, Clone, Default)]
pub struct Playbook {
    pub procedures: Vec<Procedure>,
}

impl Playbook {
    /// Checks procedures read from every file together: categories are unique and exactly one
    /// procedure is the default (unless there are none at all).
    pub fn new(procedures: Vec<Procedure>) -> (Playbook, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut kept: Vec<Procedure> = Vec::new();
        for p in procedures {
            if let Some(first) = kept.iter().find(|k| k.category == p.category) {
                let what = if p.category == DEFAULT_CATEGORY {
                    "a second default procedure (`category = \"*\"`)".to_string()
                } else {
                    format!("the procedure for category `{}` is defined twice", p.category)
                };
                errors.push(RuleError {
                    file: p.file.clone(),
                    line: p.line,
                    message: format!("{what}; the first is at {}:{}", first.file, first.line),
                });
            } else {
                kept.push(p);
            }
        }
        if let Some(first) = kept.first() {
            if !kept.iter().any(|p| p.category == DEFAULT_CATEGORY) {
                errors.push(RuleError {
                    file: first.file.clone(),
                    line: first.line,
                    message: "the playbook has no default procedure: add one `[[procedure]]` with \
                              `category = \"*\"` for complaints of a category it does not list"
                        .to_string(),
                });
            }
        }
        (Playbook { procedures: kept }, errors)
    }

    /// True when no rule file has a procedure.
    pub fn is_empty(&self) -> bool {
        self.procedures.is_empty()
    }

    /// Procedures for named categories (the default not counted).
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.procedures.iter().map(|p| p.category.as_str()).filter(|c| *c != DEFAULT_CATEGORY)
    }

    /// The procedure for `category` and whether it is the category's own (`false`: the
    /// default). `None` only for an empty playbook.
    pub fn for_category(&self, category: &str) -> Option<(&Procedure, bool)> {
        match self.procedures.iter().find(|p| p.category == category && category != DEFAULT_CATEGORY) {
            Some(p) => Some((p, true)),
            None => self.procedures.iter().find(|p| p.category == DEFAULT_CATEGORY).map(|p| (p, false)),
        }
    }

    /// True if `category` has a procedure of its own.
    pub fn knows(&self, category: &str) -> bool {
        self.for_category(category).is_some_and(|(_, known)| known)
    }

    /// The category's name in `language` (the category as given without a playbook).
    pub fn name_of(&self, category: &str, language: &str) -> String {
        match self.for_category(category) {
            Some((p, _)) => p.name.get(language).render(&category_facts(category, None), &|_| None),
            None => category.to_string(),
        }
    }

    /// The procedure for a complaint of `category`, in `language`; `customer` fills the
    /// customer's placeholders. `None` for an empty playbook.
    pub fn render(
        &self,
        category: &str,
        language: &str,
        customer: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Rendered> {
        let (p, known) = self.for_category(category)?;
        let name = p.name.get(language).render(&category_facts(category, None), &|_| None);
        let facts = category_facts(category, Some(&name));
        let language = p.script.language_for(language);
        let steps = p
            .steps
            .iter()
            .find(|(l, _)| l == language)
            .map(|(_, steps)| steps.iter().map(|s| s.render(&facts, customer)).collect())
            .unwrap_or_default();
        Some(Rendered {
            known,
            name,
            team: p.team.clone(),
            sla_hours: p.sla as f64 / HOUR as f64,
            compensation: p.compensation,
            steps,
            script: p.script.get(language).render(&facts, customer),
        })
    }

    /// Languages a procedure lacks among `languages` (those the rules' titles use): errors.
    pub fn missing_languages(&self, languages: &[&str]) -> Vec<RuleError> {
        let mut errors = Vec::new();
        for p in &self.procedures {
            for language in languages {
                let has = |texts: &Localized| texts.by_language.iter().any(|(l, _)| l == language);
                if !has(&p.name) || !has(&p.script) || !p.steps.iter().any(|(l, _)| l == language) {
                    errors.push(RuleError {
                        file: p.file.clone(),
                        line: p.line,
                        message: format!(
                            "procedure `{}` has no `{language}` version, and rule titles are written in it",
                            p.category
                        ),
                    });
                }
            }
        }
        errors
    }
}

fn category_facts(category: &str, name: Option<&str>) -> Vec<(&'static str, Fact)> {
    let mut facts = vec![("category", Fact::Text(category.to_string()))];
    if let Some(name) = name {
        facts.push(("category_name", Fact::Text(name.to_string())));
    }
    facts
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    procedure: Vec<Spanned<BTreeMap<String, Spanned<Value>>>>,
}

/// Reads the `[[procedure]]` tables of one rule file: the valid procedures and every error. A
/// file that is not valid TOML gives no error here (the rule reader reports it).
pub fn parse_procedures(file: &str, text: &str) -> (Vec<Procedure>, Vec<RuleError>) {
    let mut errors = Vec::new();
    let raw: RawFile = match super::read_tables(file, text, "procedure") {
        Ok(Some(raw)) => raw,
        Ok(None) => return (Vec::new(), errors),
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut procedures = Vec::new();
    for table in raw.procedure {
        let at = table.span().start;
        let before = errors.len();
        let mut error = |offset: usize, message: String| {
            errors.push(RuleError { file: file.to_string(), line: line_of(text, offset), message })
        };
        let procedure = check(table.get_ref(), at, &mut error);
        if let (Some(mut p), true) = (procedure, errors.len() == before) {
            p.file = file.to_string();
            p.line = line_of(text, at);
            procedures.push(p);
        }
    }
    (procedures, errors)
}

type Report<'a> = dyn FnMut(usize, String) + 'a;

fn check(t: &BTreeMap<String, Spanned<Value>>, at: usize, error: &mut Report<'_>) -> Option<Procedure> {
    for (key, value) in t {
        if !KEYS.contains(&key.as_str()) {
            error(
                value.span().start,
                format!("unknown key `{key}` (procedure keys are: {})", KEYS.join(", ")),
            );
        }
    }
    let string = |key: &str, error: &mut Report<'_>| -> Option<(String, usize)> {
        let Some(v) = t.get(key) else {
            error(at, format!("a procedure needs `{key}`"));
            return None;
        };
        match v.get_ref() {
            Value::String(s) if !s.trim().is_empty() => Some((s.clone(), v.span().start)),
            Value::String(_) => {
                error(v.span().start, format!("`{key}` is empty"));
                None
            }
            other => {
                error(v.span().start, format!("`{key}` must be a string, found {}", other.type_str()));
                None
            }
        }
    };
    // Categories are compared in normal form, like the complaints' (`crate::codes`).
    let category =
        string("category", error)
            .map(|(c, _)| if c == DEFAULT_CATEGORY { c } else { crate::codes::normalize(&c) });
    let team = string("team", error).and_then(|(team, offset)| {
        let valid =
            team.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            error(offset, format!("`team` is `{team}`; a team is named with a-z, 0-9, `_` and `-`"));
        }
        valid.then_some(team)
    });
    let sla = string("sla", error).and_then(|(text, offset)| match Span::parse(&text) {
        Ok(span) if span.0 > 0 => Some(span.0),
        Ok(_) => {
            error(offset, "`sla` must be longer than zero".to_string());
            None
        }
        Err(why) => {
            error(offset, format!("`sla`: {why}"));
            None
        }
    });
    let compensation = match t.get("compensation") {
        None => {
            error(
                at,
                "a procedure needs `compensation`: false, true, or the most in euros (e.g. 50)".to_string(),
            );
            None
        }
        Some(v) => match v.get_ref() {
            Value::Boolean(false) => Some(Compensation::No),
            Value::Boolean(true) => Some(Compensation::Yes),
            Value::Integer(n) if *n > 0 => Some(Compensation::UpToEur(*n as f64)),
            Value::Float(x) if *x > 0.0 && x.is_finite() => Some(Compensation::UpToEur(*x)),
            other => {
                error(
                    v.span().start,
                    format!(
                        "`compensation` must be false, true or the most in euros (a number above 0), not {}",
                        match other {
                            Value::String(s) => format!("`{s}`"),
                            Value::Integer(n) => n.to_string(),
                            Value::Float(x) => x.to_string(),
                            other => format!("a {}", other.type_str()),
                        }
                    ),
                );
                None
            }
        },
    };
    let with_customer =
        |name: &str| TEXT_PLACEHOLDERS.contains(&name) || CUSTOMER_PLACEHOLDERS.contains(&name);
    let name = localized(t.get("name"), "name", at, &|n| NAME_PLACEHOLDERS.contains(&n), error);
    let script = localized(t.get("script"), "script", at, &with_customer, error);
    let steps = steps(t.get("steps"), at, &with_customer, error);
    Some(Procedure {
        category: category?,
        name: name?,
        team: team?,
        sla: sla?,
        compensation: compensation?,
        steps: steps?,
        script: script?,
        file: String::new(),
        line: 0,
    })
}

/// A table of languages, each a template; every required language present.
fn languages<'v>(
    v: Option<&'v Spanned<Value>>,
    key: &str,
    at: usize,
    what: &str,
    error: &mut Report<'_>,
) -> Option<(&'v toml::Table, usize)> {
    let Some(v) = v else {
        error(at, format!("a procedure needs `{key}` ({what}: {key}.en = …, {key}.ru = …)"));
        return None;
    };
    let Value::Table(table) = v.get_ref() else {
        error(v.span().start, format!("`{key}` must be a table of languages, e.g. {key}.en = …"));
        return None;
    };
    let mut ok = true;
    for required in REQUIRED_LANGUAGES {
        if !table.contains_key(*required) {
            error(v.span().start, format!("`{key}` has no `{required}` version"));
            ok = false;
        }
    }
    ok.then_some((table, v.span().start))
}

fn localized(
    v: Option<&Spanned<Value>>,
    key: &str,
    at: usize,
    known: &dyn Fn(&str) -> bool,
    error: &mut Report<'_>,
) -> Option<Localized> {
    let (table, offset) = languages(v, key, at, "a text per language", error)?;
    let mut by_language = Vec::new();
    let mut ok = true;
    for (language, text) in table {
        let compiled = match text {
            Value::String(text) if !text.trim().is_empty() => Template::compile(text, known),
            Value::String(_) => Err("is empty".to_string()),
            other => Err(format!("must be a string, found {}", other.type_str())),
        };
        match compiled {
            Ok(t) => by_language.push((language.clone(), t)),
            Err(why) => {
                error(offset, format!("`{key}.{language}`: {why}"));
                ok = false;
            }
        }
    }
    ok.then_some(Localized { by_language })
}

fn steps(
    v: Option<&Spanned<Value>>,
    at: usize,
    known: &dyn Fn(&str) -> bool,
    error: &mut Report<'_>,
) -> Option<Vec<(String, Vec<Template>)>> {
    let (table, offset) = languages(v, "steps", at, "a list of steps per language", error)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (language, list) in table {
        let Value::Array(items) = list else {
            error(offset, format!("`steps.{language}` must be a list of strings"));
            ok = false;
            continue;
        };
        if items.is_empty() {
            error(offset, format!("`steps.{language}` is empty: a procedure has at least one step"));
            ok = false;
            continue;
        }
        let mut compiled = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let step = match item {
                Value::String(s) if !s.trim().is_empty() => Template::compile(s, known),
                Value::String(_) => Err("is empty".to_string()),
                other => Err(format!("must be a string, found {}", other.type_str())),
            };
            match step {
                Ok(t) => compiled.push(t),
                Err(why) => {
                    error(offset, format!("`steps.{language}`, step {}: {why}", i + 1));
                    ok = false;
                }
            }
        }
        out.push((language.clone(), compiled));
    }
    if ok {
        if let Some((first, n)) = out.first().map(|(l, s)| (l.clone(), s.len())) {
            for (language, steps) in &out[1..] {
                if steps.len() != n {
                    error(
                        offset,
                        format!("`steps.{language}` has {} steps and `steps.{first}` has {n}: every language lists the same steps", steps.len()),
                    );
                    ok = false;
                }
            }
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[procedure]]
category = "fees"
team = "complaints"
sla = "2d"
compensation = 50
name.en = "Fees and charges"
name.ru = "Комиссии"
steps.en = ["Check the fee", "Refund it if it was wrong"]
steps.ru = ["Проверьте комиссию", "Верните её, если она ошибочна"]
script.en = "Hello {customer_name}, about the fee you complained about…"
script.ru = "Здравствуйте, {customer_name}! По поводу комиссии…"

[[procedure]]
category = "*"
team = "complaints"
sla = "5d"
compensation = false
name.en = "\"{category}\" (no procedure yet)"
name.ru = "«{category}» (процедура не описана)"
steps.en = ["Record the complaint as {category_name}"]
steps.ru = ["Зарегистрируйте жалобу: {category_name}"]
script.en = "Hello {customer_name}, about your complaint…"
script.ru = "Здравствуйте, {customer_name}! По поводу вашей жалобы…"
"#;

    fn load(text: &str) -> (Playbook, Vec<String>) {
        let (procedures, mut errors) = parse_procedures("c.toml", text);
        let (playbook, more) = Playbook::new(procedures);
        errors.extend(more);
        (playbook, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_category_gets_its_procedure_and_an_unknown_one_the_default() {
        let (playbook, errors) = load(GOOD);
        assert!(errors.is_empty(), "{errors:#?}");
        let none = |_: &str| None;
        let fees = playbook.render("fees", "ru", &none).unwrap();
        assert!(fees.known);
        assert_eq!(fees.name, "Комиссии");
        assert_eq!(fees.sla_hours, 48.0);
        assert_eq!(fees.compensation, Compensation::UpToEur(50.0));
        assert_eq!(fees.steps.len(), 2);
        let other = playbook.render("branch_closure", "en", &none).unwrap();
        assert!(!other.known);
        assert_eq!(other.name, "\"branch_closure\" (no procedure yet)");
        assert_eq!(other.steps, ["Record the complaint as \"branch_closure\" (no procedure yet)"]);
        assert_eq!(
            other.script, "Hello ?, about your complaint…",
            "customer placeholders come from the caller"
        );
        assert_eq!(playbook.name_of("fees", "en"), "Fees and charges");
        assert_eq!(playbook.categories().collect::<Vec<_>>(), ["fees"]);
        assert!(Playbook::default().render("fees", "en", &none).is_none());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let bad = GOOD
            .replace("sla = \"2d\"", "sla = \"2 days\"")
            .replace("compensation = 50", "compensation = \"some\"")
            .replace("steps.ru = [\"Проверьте комиссию\", ", "steps.ru = [")
            .replace("script.ru = \"Здравствуйте, {customer_name}! По поводу комиссии…\"\n", "colour = 1\n");
        let (_, errors) = load(&bad);
        assert!(errors.iter().any(|e| e.starts_with("c.toml:5: `sla`")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("c.toml:6: `compensation`")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("`steps.ru` has 1 steps")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("c.toml:12: unknown key `colour`")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("`script` has no `ru` version")), "{errors:#?}");
    }

    #[test]
    fn one_default_and_unique_categories() {
        let no_default = GOOD.split("\n[[procedure]]\ncategory = \"*\"").next().unwrap();
        let (_, errors) = load(no_default);
        assert!(errors.iter().any(|e| e.starts_with("c.toml:2: the playbook has no default")), "{errors:#?}");
        let (_, errors) = load(&format!("{GOOD}{GOOD}"));
        assert!(
            errors.iter().any(|e| e.contains("`fees` is defined twice; the first is at c.toml:2")),
            "{errors:#?}"
        );
        assert!(errors.iter().any(|e| e.contains("a second default procedure")), "{errors:#?}");
        let (_, errors) = load(&GOOD.replace("{category_name}", "{category_nme}"));
        assert!(errors.iter().any(|e| e.contains("unknown placeholder `{category_nme}`")), "{errors:#?}");
        let (playbook, _) = load(GOOD);
        let missing = playbook.missing_languages(&["en", "de"]);
        assert_eq!(missing.len(), 2, "{missing:?}");
    }
}
