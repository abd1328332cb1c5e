//! Text templates for titles, explanations and agent scripts: literal text with `{name}`
//! placeholders filled from a signal's facts and the customer's profile.
//!
//! Placeholders are checked when the rule is loaded (an unknown name is a `file:line` error),
//! so a typo never reaches an agent as a blank. `{{` and `}}` write literal braces.

use crate::detect::Fact;

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Fact(String),
}

/// Placeholders every template may use besides its facts.
pub const CUSTOMER_PLACEHOLDERS: &[&str] = &["customer_name", "customer_id", "segment"];

impl Template {
    /// Compiles `src`, accepting the placeholder names for which `known` is true.
    pub fn compile(src: &str, known: &dyn Fn(&str) -> bool) -> Result<Template, String> {
        Template::compile_checked(src, &|name| {
            if known(name) {
                Ok(())
            } else {
                Err(format!("unknown placeholder `{{{name}}}`"))
            }
        })
    }

    /// Compiles `src`; `check` accepts a placeholder name or says why not (the error).
    pub fn compile_checked(
        src: &str,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = src.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &src[i + 1..];
                    let end =
                        rest.find('}').ok_or_else(|| format!("unclosed `{{` at character {}", i + 1))?;
                    let name = rest[..end].trim();
                    check(name)?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Fact(name.to_string()));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!("unmatched `}}` at character {} (write `}}}}` for a brace)", i + 1))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// Fills the template. A fact the signal does not carry renders as `?`.
    pub fn render(&self, facts: &[(&str, Fact)], extra: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Fact(name) => match facts.iter().find(|(n, _)| n == name) {
                    Some((_, fact)) => fact.render(&mut out),
                    None => out.push_str(&extra(name).unwrap_or_else(|| "?".to_string())),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        ["city", "km"].contains(&name)
    }

    #[test]
    fn fills_placeholders() {
        let t = Template::compile("Used in {city}, {km} km away {{sic}}", &known).unwrap();
        let facts = [("city", Fact::Text("Paris".into())), ("km", Fact::Num(9_978.4))];
        assert_eq!(t.render(&facts, &|_| None), "Used in Paris, 9978 km away {sic}");
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        assert_eq!(Template::compile("in {cty}", &known).unwrap_err(), "unknown placeholder `{cty}`");
        assert!(Template::compile("in {city", &known).unwrap_err().contains("unclosed"));
        assert!(Template::compile("in city}", &known).unwrap_err().contains("unmatched"));
    }

    #[test]
    fn missing_fact_renders_a_question_mark() {
        let t = Template::compile("{city}/{km}", &known).unwrap();
        assert_eq!(t.render(&[("city", Fact::Text("Lyon".into()))], &|_| None), "Lyon/?");
    }
}
