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
    let snake = text.trim().to_snake_case();
    if snake.contains(['ß', 'ς']) {
        snake.replace('ß', "ss").replace('ς', "σ")
    } else {
        snake
    }
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
