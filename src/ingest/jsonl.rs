//! Reading events from a JSON-lines file: one event per line, blank lines ignored. Each line is
//! handed over with its number so errors can say where they are.

use std::io::BufRead;

/// Calls `each(line_number, bytes)` for every non-blank line; stops at an I/O error.
pub fn for_each_line(mut input: impl BufRead, mut each: impl FnMut(u64, &[u8])) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        number += 1;
        let line = buf.trim_ascii();
        if !line.is_empty() {
            each(number, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_skips_blanks() {
        let mut seen = Vec::new();
        for_each_line(&b"a\n\n  \nb\r\nc"[..], |n, l| seen.push((n, l.to_vec()))).unwrap();
        assert_eq!(seen, vec![(1, b"a".to_vec()), (4, b"b".to_vec()), (5, b"c".to_vec())]);
    }
}
