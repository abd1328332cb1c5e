//! The agents' API fuzzed from its own OpenAPI document: `scripts/api-fuzz.sh` runs Schemathesis
//! (pinned, installed once into a cached venv) against `callahead demo` on the embedded SQLite
//! store and on a fresh PostgreSQL database, as a supervisor and as a fraud agent. Any 5xx, any
//! undocumented status code, content type or response shape, a 405 without a problem and an
//! `Allow` header, or an engine that stops applying commands afterwards fails the test.

use std::process::Command;

use crate::common::root;

/// The PostgreSQL server the test suite expects (trust auth, database `test`); the script
/// creates a database of its own beside `test` and drops it again.
const POSTGRES: &str = "postgres://root@127.0.0.1:5432/test";

#[test]
fn the_api_survives_schemathesis_on_both_stores() {
    let out = Command::new(root().join("scripts/api-fuzz.sh"))
        .args(["sqlite", POSTGRES])
        .env("CALLAHEAD_BIN", env!("CARGO_BIN_EXE_callahead"))
        .current_dir(root())
        .output()
        .expect("run scripts/api-fuzz.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/api-fuzz.sh failed ({}):\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout.lines().filter(|l| l.contains(": ok, ")).count(), 2, "a summary per store:\n{stdout}");
}
