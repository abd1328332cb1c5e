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
    // A second demo with 10,000 open tasks, for the queue's first paint at scale.
    let dir = std::env::temp_dir().join(crate::common::unique("console-10k"));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("complaints.jsonl");
    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                r#"{{"event_id":"c{i}","type":"complaint","customer_id":"b{i:05}","ts":"2026-11-30T{:02}:{:02}:00Z","category":"fees","severity":"high","text":"charged twice"}}"#,
                (i / 60) % 24,
                i % 60
            )
        })
        .collect();
    std::fs::write(&events, lines.join("\n")).unwrap();
    let large = Demo::start_with(None, 1_800, &["--input", events.to_str().unwrap()]);
    let shots = root().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root().join("tests/console/console.test.mjs"))
        .envs(vars)
        .env("CALLAHEAD_BASE", format!("http://{}", demo.address))
        .env("CALLAHEAD_TOKENS", serde_json::to_string(&demo.tokens).unwrap())
        .env("CALLAHEAD_SHOTS", &shots)
        .env("CALLAHEAD_LARGE_BASE", format!("http://{}", large.address))
        .env("CALLAHEAD_LARGE_TOKENS", serde_json::to_string(&large.tokens).unwrap())
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
