//! E-mail templates per purpose and language, kept as files next to the rules
//! (`rules/outreach/<purpose>.<language>.txt` and `.html`), rendered with minijinja. The text
//! part's first line is `Subject: …`. Every template is rendered at load time against a sample
//! with every variable, with undefined variables as errors, so a missing variable, a typo or a
//! missing language is a `file:line: reason` error of `callahead rules check`, never a broken
//! e-mail.
//!
//! Variables: `name`, `bank_name`, `amount`, `currency`, `merchant`, `city`, `country`,
//! `local_time`, `date`, `card` (its last four characters only), `yes_url`, `no_url` (fraud
//! confirmations), `unsubscribe_url` (care e-mails).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::rules::RuleError;

/// The variables a template may use.
pub const VARIABLES: [&str; 13] = [
    "name",
    "bank_name",
    "amount",
    "currency",
    "merchant",
    "city",
    "country",
    "local_time",
    "date",
    "card",
    "yes_url",
    "no_url",
    "unsubscribe_url",
];

/// Languages every template must have.
pub const LANGUAGES: [&str; 2] = ["en", "ru"];

/// What a template is rendered with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailContext {
    pub name: String,
    pub bank_name: String,
    pub amount: String,
    pub currency: String,
    pub merchant: String,
    pub city: String,
    pub country: String,
    pub local_time: String,
    pub date: String,
    pub card: String,
    pub yes_url: String,
    pub no_url: String,
    pub unsubscribe_url: String,
}

impl MailContext {
    /// A context with every variable set, to validate templates.
    pub fn sample() -> MailContext {
        MailContext {
            name: "Anna Petrova".into(),
            bank_name: "Bank".into(),
            amount: "45.00".into(),
            currency: "EUR".into(),
            merchant: "Musée d'Orsay".into(),
            city: "Paris".into(),
            country: "FR".into(),
            local_time: "14:02".into(),
            date: "2026-07-01".into(),
            card: "…1234".into(),
            yes_url: "https://example.invalid/r/yes".into(),
            no_url: "https://example.invalid/r/no".into(),
            unsubscribe_url: "https://example.invalid/u/x".into(),
        }
    }
}

/// One rendered e-mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub language: String,
}

/// The templates a rule set needs: every rule's, and the follow-up to an "it wasn't me".
pub fn needed(rules: &crate::rules::RuleSet) -> Vec<String> {
    let mut out: Vec<String> =
        rules.rules.iter().filter_map(|r| r.outreach.as_ref()).map(|o| o.template.clone()).collect();
    if rules.rules.iter().any(|r| r.outreach.is_some() && r.queue == crate::vocab::Queue::Fraud) {
        out.push(crate::lifecycle::FOLLOW_UP.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// Every template, checked.
#[derive(Debug)]
pub struct Templates {
    env: minijinja::Environment<'static>,
    /// purpose → languages present
    purposes: BTreeMap<String, Vec<String>>,
}

/// The `.txt` and `.html` files of `dir` whose names start with `prefix`, sorted, each as
/// (template name without the prefix, path).
fn template_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    let mut found: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_prefix(prefix)?.to_string();
            (name.ends_with(".txt") || name.ends_with(".html")).then_some((name, p))
        })
        .collect();
    found.sort();
    Ok(found)
}

impl Templates {
    /// Loads and checks the templates: `<rules dir>/outreach/<file>` or, where the rules come
    /// from a Kubernetes ConfigMap (whose keys cannot name a folder), `<rules dir>/outreach.<file>`;
    /// a file is `<purpose>.<language>.txt` or `.html`. `needed` are the purposes rules (and the
    /// engine) ask for. Every problem is returned, with its file and line.
    pub fn load(rules_dir: &Path, needed: &[String]) -> Result<Templates, Vec<RuleError>> {
        let dir = rules_dir.join("outreach");
        let mut errors = Vec::new();
        let err =
            |file: &str, line: usize, message: String| RuleError { file: file.to_string(), line, message };
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // (template name, path, source), from the folder, then from flat `outreach.` files.
        let mut files: Vec<(String, String, String)> = Vec::new();
        let folder = template_files(&dir, "");
        let flat = template_files(rules_dir, "outreach.");
        if folder.is_err() && flat.as_ref().is_ok_and(Vec::is_empty) && !needed.is_empty() {
            if let Err(e) = &folder {
                errors.push(err(
                    &dir.display().to_string(),
                    0,
                    format!("cannot read the outreach templates: {e}"),
                ));
            }
        }
        for (name, path) in folder.unwrap_or_default().into_iter().chain(flat.unwrap_or_default()) {
            let shown = path.display().to_string();
            if files.iter().any(|(n, _, _)| *n == name) {
                errors.push(err(
                    &shown,
                    0,
                    format!("template {name} is defined twice (outreach/ and outreach.)"),
                ));
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(source) => files.push((name, shown, source)),
                Err(e) => errors.push(err(&shown, 0, format!("cannot read: {e}"))),
            }
        }
        let mut purposes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut paths: BTreeMap<String, String> = BTreeMap::new();
        for (name, path, source) in files {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() != 3 || !LANGUAGES.contains(&parts[1]) && parts[1].len() != 2 {
                errors.push(err(
                    &path,
                    0,
                    "a template file is named <purpose>.<language>.txt or .html".into(),
                ));
                continue;
            }
            if parts[2] == "txt" && !source.starts_with("Subject: ") {
                errors.push(err(&path, 1, "the text part must start with a `Subject: ` line".into()));
            }
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                errors.push(err(&path, e.line().unwrap_or(0), e.to_string()));
                continue;
            }
            paths.insert(name.clone(), path);
            let langs = purposes.entry(parts[0].to_string()).or_default();
            if parts[2] == "txt" {
                langs.push(parts[1].to_string());
            }
        }
        let sample = minijinja::Value::from_serialize(MailContext::sample());
        for (name, path) in &paths {
            if let Err(e) = env.get_template(name).and_then(|t| t.render(&sample)) {
                let mut detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
                if e.kind() == minijinja::ErrorKind::UndefinedError {
                    detail.push_str(&format!(" (the variables are: {})", VARIABLES.join(", ")));
                }
                errors.push(err(path, e.line().unwrap_or(0), format!("{}{detail}", e.kind())));
            }
            let html = name.replace(".txt", ".html");
            if name.ends_with(".txt") && !paths.contains_key(&html) {
                errors.push(err(path, 0, format!("no HTML part: {html} is missing")));
            }
        }
        for purpose in needed {
            let have = purposes.get(purpose).cloned().unwrap_or_default();
            for lang in LANGUAGES {
                if !have.iter().any(|l| l == lang) {
                    errors.push(err(
                        &dir.display().to_string(),
                        0,
                        format!(
                            "template `{purpose}` has no `{lang}` version ({purpose}.{lang}.txt and .html)"
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(Templates { env, purposes })
        } else {
            Err(errors)
        }
    }

    /// True if `purpose` exists.
    pub fn has(&self, purpose: &str) -> bool {
        self.purposes.contains_key(purpose)
    }

    /// Renders `purpose` in `language` (English if the purpose has no such version).
    pub fn render(&self, purpose: &str, language: &str, ctx: &MailContext) -> Result<Rendered, String> {
        let langs = self.purposes.get(purpose).ok_or_else(|| format!("no template `{purpose}`"))?;
        let lang = if langs.iter().any(|l| l == language) { language } else { "en" };
        let value = minijinja::Value::from_serialize(ctx);
        let render = |ext: &str| {
            self.env
                .get_template(&format!("{purpose}.{lang}.{ext}"))
                .and_then(|t| t.render(&value))
                .map_err(|e| e.to_string())
        };
        let text = render("txt")?;
        let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
        Ok(Rendered {
            subject: first.trim_start_matches("Subject: ").trim().to_string(),
            text: body.trim_start_matches('\n').to_string(),
            html: render("html")?,
            language: lang.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_rules() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")
    }

    #[test]
    fn the_shipped_templates_render_in_both_languages() {
        let needed =
            vec!["fraud_confirmation".to_string(), "fraud_followup".to_string(), "care_callback".to_string()];
        let t = Templates::load(&repo_rules(), &needed).unwrap_or_else(|e| panic!("{e:#?}"));
        for purpose in &needed {
            for lang in LANGUAGES {
                let r = t.render(purpose, lang, &MailContext::sample()).unwrap();
                assert_eq!(r.language, lang);
                assert!(!r.subject.is_empty() && !r.text.contains("{{") && !r.html.contains("{{"));
                // The trusted channel is always the number on the card or the bank's app.
                let words = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    words.contains("back of your card") || words.contains("обороте карты"),
                    "{purpose}.{lang}"
                );
            }
        }
        let fr = t.render("fraud_confirmation", "fr", &MailContext::sample()).unwrap();
        assert_eq!(fr.language, "en", "a missing language falls back to English");
    }

    #[test]
    fn a_missing_variable_or_language_is_a_file_line_error() {
        let dir = std::env::temp_dir().join(format!("callahead-tpl-{}", std::process::id()));
        let out = dir.join("outreach");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("x.en.txt"), "Subject: hi\n\nHello {{ name }},\nyou paid {{ amout }}\n")
            .unwrap();
        std::fs::write(out.join("x.en.html"), "<p>{{ name }}</p>").unwrap();
        let errors = Templates::load(&dir, &["x".to_string()]).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(|e| e.contains("x.en.txt:4") && e.contains("undefined")), "{text:#?}");
        assert!(text.iter().any(|e| e.contains("no `ru` version")), "{text:#?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn templates_load_from_flat_configmap_names_too() {
        let dir = std::env::temp_dir().join(format!("callahead-tpl-flat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(repo_rules().join("outreach")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            std::fs::copy(&path, dir.join(format!("outreach.{name}"))).unwrap();
        }
        let needed = vec!["fraud_confirmation".to_string(), "care_callback".to_string()];
        let t = Templates::load(&dir, &needed).expect("the flat layout loads");
        assert!(t.has("fraud_confirmation") && t.has("fraud_followup"));
        // The same template in both layouts is refused, not silently picked.
        std::fs::create_dir_all(dir.join("outreach")).unwrap();
        std::fs::copy(dir.join("outreach.care_callback.en.txt"), dir.join("outreach/care_callback.en.txt"))
            .unwrap();
        let errors = Templates::load(&dir, &needed).unwrap_err();
        assert!(errors.iter().any(|e| e.to_string().contains("defined twice")), "{errors:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
