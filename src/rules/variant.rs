//! Script variants: a rule may carry several scripts, each with a condition over its signal's
//! facts, so that what the agent says fits what happened (a customer who moved money away while
//! still active is not told that they stopped using their account). The first variant whose
//! condition holds is the script; the rule's `script` is the fallback.
//!
//! A variant's condition is the condition language of `when`, type-checked when the file is
//! loaded, but it reads only `signal.*` facts: it is evaluated when the task is written, from the
//! signal alone.

use super::expr::{Condition, ExprError, FeatureId, Features, Schema, Value};
use super::{Localized, Rule};
use crate::detect::{DetectorKind, Fact, Signal};
use crate::vocab::Type;

/// One alternative script of a rule and when it applies.
#[derive(Debug, Clone)]
pub struct ScriptVariant {
    pub when: Condition,
    pub script: Localized,
    /// Where the variant starts in its file, for messages.
    pub line: usize,
}

/// Resolves `signal.<fact>` of one detector; nothing else.
struct SignalSchema {
    detector: Option<DetectorKind>,
}

impl Schema for SignalSchema {
    fn resolve(&self, name: &str) -> Option<(FeatureId, Type)> {
        let fact = name.strip_prefix("signal.")?;
        let facts = self.detector?.facts();
        let index = facts.iter().position(|(n, _)| *n == fact)?;
        Some((FeatureId(index as u16), facts[index].1))
    }
}

/// A signal's facts as the features of a variant's condition.
struct SignalFeatures<'a> {
    signal: &'a Signal,
    detector: Option<DetectorKind>,
}

impl Features for SignalFeatures<'_> {
    fn get(&self, id: FeatureId) -> Value<'_> {
        let Some((name, _)) = self.detector.and_then(|d| d.facts().get(usize::from(id.0))) else {
            return Value::Missing;
        };
        match self.signal.fact(name) {
            Some(Fact::Num(v)) => Value::Num(*v),
            Some(Fact::Text(t)) => Value::Str(t),
            None => Value::Missing,
        }
    }
}

/// Compiles a variant's condition for a rule with `detector`. An `event.*` or `customer.*` name
/// is refused with a message saying why.
pub fn compile_condition(src: &str, detector: Option<DetectorKind>) -> Result<Condition, Vec<ExprError>> {
    Condition::compile_all(src, &SignalSchema { detector }).map_err(|mut errors| {
        for e in &mut errors {
            if e.message.starts_with("unknown feature `event.")
                || e.message.starts_with("unknown feature `customer.")
            {
                e.message.push_str(" (a script variant reads only the signal's facts, `signal.<fact>`)");
            } else if e.message.starts_with("unknown feature `signal.") && detector.is_none() {
                e.message.push_str(" (a rule without a detector has no signal facts)");
            }
        }
        errors
    })
}

impl Rule {
    /// The script of the first variant whose condition holds for this signal.
    pub fn variant_for(&self, signal: &Signal) -> Option<&Localized> {
        let features = SignalFeatures { signal, detector: self.detector_kind() };
        self.script_variants.iter().find(|v| v.when.eval(&features)).map(|v| &v.script)
    }

    /// The scripts of every variant whose condition holds for this signal, in order.
    pub fn matching_variants(&self, signal: &Signal) -> Vec<&Localized> {
        let features = SignalFeatures { signal, detector: self.detector_kind() };
        self.script_variants.iter().filter(|v| v.when.eval(&features)).map(|v| &v.script).collect()
    }

    /// The script for this signal: the first variant whose condition holds, else `script`.
    pub fn script_for(&self, signal: &Signal) -> &Localized {
        self.variant_for(signal).unwrap_or(&self.script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_rules;
    use crate::time::Timestamp;

    const RULE: &str = r#"
[[rule]]
id = "churn"
queue = "care"
severity = "medium"
detector = "churn_risk"
title.en = "Churn"
title.ru = "Уход"
explanation.en = "{reasons}"
explanation.ru = "{reasons}"
script.en = "Fallback"
script.ru = "Запасной"
actions = ["call_customer"]

[[rule.script_variant]]
when = "signal.moved_eur > 0 && signal.silent == 0"
script.en = "Moved money"
script.ru = "Перевёл деньги"

[[rule.script_variant]]
when = "signal.silent == 1"
script.en = "Silent"
script.ru = "Молчит"
"#;

    fn signal(facts: Vec<(&'static str, Fact)>) -> Signal {
        Signal { at: Timestamp(0), facts, evidence: Vec::new(), money_at_risk_eur: 0.0 }
    }

    #[test]
    fn the_first_matching_variant_wins_and_script_is_the_fallback() {
        let (rules, errors) = parse_rules("care.toml", RULE);
        assert!(errors.is_empty(), "{errors:#?}");
        let rule = &rules[0];
        assert_eq!(rule.script_variants.len(), 2);
        assert_eq!(rule.script_variants[1].line, 20);
        let said = |facts| rule.script_for(&signal(facts)).get("en").render(&[], &|_| None);
        assert_eq!(said(vec![("moved_eur", Fact::Num(800.0)), ("silent", Fact::Num(0.0))]), "Moved money");
        assert_eq!(said(vec![("moved_eur", Fact::Num(800.0)), ("silent", Fact::Num(1.0))]), "Silent");
        assert_eq!(said(vec![("moved_eur", Fact::Num(0.0)), ("silent", Fact::Num(0.0))]), "Fallback");
        assert_eq!(said(vec![]), "Fallback", "missing facts never match");
    }

    #[test]
    fn a_variant_is_checked_when_the_file_is_loaded() {
        let errors = |text: &str| -> Vec<String> {
            parse_rules("care.toml", text).1.iter().map(ToString::to_string).collect()
        };
        let e = errors(&RULE.replace("signal.silent == 1", "customer.segment == 'mass'"));
        assert!(
            e.iter().any(|e| e.starts_with("care.toml:21: `script_variant.when`")
                && e.contains("only the signal's facts")),
            "{e:#?}"
        );
        let e = errors(&RULE.replace("signal.silent == 1", "signal.silent == 'yes'"));
        assert!(e.iter().any(|e| e.contains("type mismatch")), "{e:#?}");
        let e = errors(&RULE.replace("script.ru = \"Молчит\"\n", ""));
        assert!(e.iter().any(|e| e.contains("`script` has no `ru` version")), "{e:#?}");
        let e = errors(&RULE.replace("script.en = \"Silent\"", "script.en = \"Silent {reason}\""));
        assert!(e.iter().any(|e| e.contains("unknown placeholder `{reason}`")), "{e:#?}");
        let e = errors(&RULE.replace("when = \"signal.silent == 1\"\n", "colour = 1\n"));
        assert!(e.iter().any(|e| e.contains("needs `when`")), "{e:#?}");
        assert!(e.iter().any(|e| e.contains("unknown key `colour`")), "{e:#?}");
    }
}
