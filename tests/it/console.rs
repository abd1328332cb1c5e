//! The agents' console in a real headless browser: Debian's Chromium driven by playwright-core
//! (both installed by `scripts/browser.sh`), against the demo's console. The checks themselves
//! are in `tests/console/console.test.mjs` (login, the queue, an impossible-travel task on the
//! map, claim, a second agent, a care agent, CSRF, resolve, live refresh, the supervisor view,
//! Russian, logout); screenshots land in `target/console-screenshots/`.

use std::process::Command;

use crate::api::Demo;
use crate::common::root;

#[test]
fn the_console_works_in_a_real_browser() {
    let install =
        Command::new(root().join("scripts/browser.sh")).arg("install").output().expect("run browser.sh");
    assert!(
        install.status.success(),
        "cannot install the browser: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let env =
        Command::new(root().join("scripts/browser.sh")).arg("env").output().expect("run browser.sh env");
    let vars: Vec<(String, String)> = String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['\'', '"']).to_string()))
        .collect();
    assert!(vars.iter().any(|(k, _)| k == "CALLAHEAD_PLAYWRIGHT"), "{vars:?}");

    let demo = Demo::start(None, 1_800);
    let shots = root().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root().join("tests/console/console.test.mjs"))
        .envs(vars)
        .env("CALLAHEAD_BASE", format!("http://{}", demo.address))
        .env("CALLAHEAD_TOKENS", serde_json::to_string(&demo.tokens).unwrap())
        .env("CALLAHEAD_SHOTS", &shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(shots.join("queue.png").exists() && shots.join("task.png").exists());
}
