//! The normal form of codes that other systems write: contact reasons and complaint categories.
//!
//! Systems we did not write spell the same code differently (`fee_dispute`, `Fee dispute`,
//! `FEE-DISPUTE`, ` fee.dispute `, `FeeDispute`). Decoding puts every reason and category into
//! one normal form, once, at the edge of the domain, so that repeat counting, the playbook,
//! rule conditions and metrics all compare like with like; the text as written stays on the
//! event for the agent. The normal form is lower snake case: Unicode lower case with the common
//! full case foldings (`ß` → `ss`, final `ς` → `σ`), words split at spaces, `-`, `_`, `.` and
//! other punctuation and at a lower-to-upper case change, joined by `_`, nothing at either end.
//! Known aliases of one code (`disputed_fee` for `fee_dispute`) are mapped by the synonyms table
//! of the rule pack (`rules::codes`), which works on normal forms. A leaf: no crate imports.

use heck::ToSnakeCase;

/// The normal form of a code as written (see the module doc). Idempotent: the normal form of a
/// normal form is itself. Empty (or separator-only) text gives an empty code.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return ascii_snake_case(text);
    }
    let snake = text.trim().to_snake_case();
    if snake.contains(['ß', 'ς']) {
        snake.replace('ß', "ss").replace('ς', "σ")
    } else {
        snake
    }
}

/// How a word of an ASCII text is being read (`heck`'s word modes).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Boundary,
    Lower,
    Upper,
}

/// `heck`'s snake case for ASCII text, the common case, without its formatting machinery (a
/// tenth of the instructions; the same output, checked against `heck` in the tests): words
/// split at anything not alphanumeric, at a lower-to-upper change (`feeDispute`) and before the
/// last capital of a run followed by a lower-case letter (`HTTPServer`), lowered and joined by
/// `_`.
fn ascii_snake_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let push = |word: &[u8], out: &mut String| {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(word.iter().map(|b| char::from(b.to_ascii_lowercase())));
    };
    for word in text.as_bytes().split(|b| !b.is_ascii_alphanumeric()) {
        let mut init = 0;
        let mut mode = Mode::Boundary;
        for i in 0..word.len() {
            let c = word[i];
            let Some(&next) = word.get(i + 1) else {
                push(&word[init..], &mut out);
                break;
            };
            let next_mode = if c.is_ascii_lowercase() {
                Mode::Lower
            } else if c.is_ascii_uppercase() {
                Mode::Upper
            } else {
                mode
            };
            if next_mode == Mode::Lower && next.is_ascii_uppercase() {
                push(&word[init..=i], &mut out);
                init = i + 1;
                mode = Mode::Boundary;
            } else if mode == Mode::Upper && c.is_ascii_uppercase() && next.is_ascii_lowercase() {
                push(&word[init..i], &mut out);
                init = i;
                mode = Mode::Boundary;
            } else {
                mode = next_mode;
            }
        }
    }
    out
}

/// True if `code` is already in normal form (what rule files must write, e.g. synonyms).
pub fn is_normal(code: &str) -> bool {
    normalize(code) == code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_code_have_one_normal_form() {
        for spelling in [
            "fee_dispute",
            "Fee dispute",
            "FEE-DISPUTE",
            "  fee.dispute ",
            "FeeDispute",
            "fee__dispute",
            "Fee - Dispute",
            "fee\tdispute\n",
        ] {
            assert_eq!(normalize(spelling), "fee_dispute", "{spelling:?}");
        }
    }

    #[test]
    fn unicode_is_folded() {
        assert_eq!(normalize("Жалоба На Комиссию"), "жалоба_на_комиссию");
        assert_eq!(normalize("STRASSE"), normalize("Straße"));
        assert_eq!(normalize("ΟΔΟΣ"), normalize("οδος"));
    }

    /// The ASCII path gives what `heck` gives, on text mixing cases, digits and separators.
    #[test]
    fn the_ascii_path_agrees_with_heck() {
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet: Vec<char> = "aAbBzZ09 _-.\t/".chars().collect();
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..14)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            assert_eq!(ascii_snake_case(&text), text.trim().to_snake_case(), "{text:?}");
        }
        for text in ["HTTPServer", "feeDispute", "Fee2Dispute", "ABC", "aB", "Ab", "A1b", "a1B", "X", ""] {
            assert_eq!(ascii_snake_case(text), text.to_snake_case(), "{text:?}");
        }
    }

    #[test]
    fn normal_form_is_idempotent() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "aZ _-.9ßЖ".chars().collect();
        for _ in 0..2_000 {
            let text: String = (0..rng.usize(0..12)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            let once = normalize(&text);
            assert_eq!(normalize(&once), once, "{text:?}");
            assert!(is_normal(&once));
        }
        assert_eq!(normalize(" -_. "), "");
    }
}
