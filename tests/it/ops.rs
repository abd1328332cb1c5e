//! Operations: the Grafana dashboard, the alert rules and the chart's manifests, checked with the
//! real tools that `scripts/ops.sh install` brings (once per run): Debian's Prometheus and
//! promtool, kubernetes-validate and the prometheus-operator and KEDA CRD schemas.
//!
//! - the alert rules file passes `promtool check rules` and its `promtool test rules` cases; every
//!   alert has a case where it fires and one where it must not, and a runbook section in
//!   docs/operating.md that its `runbook_url` points at;
//! - the chart's PrometheusRule is that file, scoped to the release;
//! - the rendered manifests (default values, helm/examples/production.yaml, dashboard and
//!   autoscaling on) validate against the strict schemas of every supported Kubernetes version
//!   and of the CRDs, and a broken manifest does not;
//! - the dashboard ships in the chart for Grafana's sidecar, and every query of every panel,
//!   run through a real Prometheus that scrapes a running `callahead serve` fed with events and
//!   agents' actions, is valid and returns data; the alert rules evaluate there without errors;
//!   `promtool check metrics` finds nothing to lint in `/metrics`.
//!
//! The dashboard's variables are replaced with concrete values before a query is run:
//! `$namespace` and `$pod` with the labels the test's scrape configuration attaches
//! ([`NAMESPACE`], [`POD`]), `$__rate_interval` with `1m` (the test scrapes every second, so a
//! minute's window always holds samples).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::common::{broker, free_port, http, http_get, root, unique};
use crate::serve::{create_topics, produce_lines, sum, Service};

/// Labels the test's Prometheus attaches to the scraped service, as Kubernetes discovery would.
const NAMESPACE: &str = "callahead-ops";
const POD: &str = "callahead-ops-0";
/// The release and namespace the chart is rendered with.
const RELEASE_NAMESPACE: &str = "callahead-test";

const CARA: &str = "cah_test_token_of_cara_care_agent";
const SUE: &str = "cah_test_token_of_sue_supervisor";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn alerts_file() -> PathBuf {
    root().join("helm/callahead/files/alerts.yaml")
}

fn dashboard_file() -> PathBuf {
    root().join("helm/callahead/files/dashboards/callahead.json")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callahead-it-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `scripts/ops.sh ARGS`.
fn ops(args: &[&str]) -> Output {
    Command::new(root().join("scripts/ops.sh"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run scripts/ops.sh")
}

/// `scripts/ops.sh install`, once per test run.
fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = ops(&["install"]);
        assert!(out.status.success(), "scripts/ops.sh install failed:\n{}", text(&out.stderr));
    });
}

/// The chart rendered by the pinned Helm (`scripts/helm.sh template`): YAML text.
fn render_text(extra: &[&str]) -> String {
    let out = Command::new(root().join("scripts/helm.sh"))
        .args(["template", "--namespace", RELEASE_NAMESPACE])
        .args(extra)
        .current_dir(root())
        .output()
        .expect("run scripts/helm.sh");
    assert!(out.status.success(), "helm template {extra:?} failed:\n{}", text(&out.stderr));
    text(&out.stdout)
}

fn render(extra: &[&str]) -> Vec<Value> {
    let yaml = render_text(extra);
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn yaml_file(path: &Path) -> Value {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alerting rule of the rules file.
fn alerts() -> Vec<Value> {
    let file = yaml_file(&alerts_file());
    let rules: Vec<Value> = file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .filter(|r| r["alert"].is_string())
        .collect();
    assert!(rules.len() >= 11, "{rules:?}");
    rules
}

// ------------------------------------------------------------------------------------------------
// Alert rules
// ------------------------------------------------------------------------------------------------

#[test]
fn ops_alert_rules_pass_promtool_check_and_unit_tests() {
    install();
    let out = ops(&["check-rules"]);
    assert!(out.status.success(), "promtool check rules:\n{}{}", text(&out.stdout), text(&out.stderr));
    let out = ops(&["test-rules"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && all.contains("SUCCESS"), "promtool test rules:\n{all}");

    // Every alert has a case where it fires and a case where it must not.
    let tests = yaml_file(&root().join("helm/tests/alerts.test.yaml"));
    let rule_files: Vec<&str> =
        tests["rule_files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(rule_files, ["../callahead/files/alerts.yaml"], "the tests read the chart's rules file");
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for case in tests["tests"].as_array().unwrap() {
        for t in case["alert_rule_test"].as_array().into_iter().flatten() {
            let name = t["alertname"].as_str().unwrap().to_string();
            if t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()) {
                fires.insert(name);
            } else {
                silent.insert(name);
            }
        }
    }
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        assert!(fires.contains(name), "no promtool test where {name} fires");
        assert!(silent.contains(name), "no promtool test where {name} must stay silent");
    }
}

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn ops_every_alert_has_a_runbook_section() {
    let doc = std::fs::read_to_string(root().join("docs/operating.md")).unwrap();
    let sections: BTreeMap<String, String> = {
        // Each heading's anchor → the text up to the next heading.
        let mut out = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        let mut fenced = false;
        for line in doc.lines() {
            fenced ^= line.starts_with("```");
            let heading =
                if fenced { None } else { line.strip_prefix('#').map(|l| l.trim_start_matches('#')) };
            if let Some(h) = heading {
                if let Some((a, body)) = current.take() {
                    out.insert(a, body);
                }
                current = Some((anchor(h), String::new()));
            } else if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        out.extend(current);
        out
    };
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        let url = alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no runbook_url annotation"));
        let (page, fragment) = url.split_once('#').unwrap_or_else(|| panic!("{name}: {url} has no anchor"));
        assert_eq!(page, "docs/operating.md", "{name}: the runbook is docs/operating.md");
        assert_eq!(fragment, name.to_lowercase(), "{name}: the anchor is the alert's name in lower case");
        let body = sections
            .get(fragment)
            .unwrap_or_else(|| panic!("{name}: docs/operating.md has no heading with anchor #{fragment}"));
        // A runbook says what it means, what to look at on the dashboard, and what to do.
        for part in ["**Means**", "**Look at**", "**Do**"] {
            assert!(body.contains(part), "{name}: its runbook section has no {part}:\n{body}");
        }
    }
}

#[test]
fn ops_prometheus_rule_is_the_rules_file_scoped_to_the_release() {
    install();
    let docs = render(&[
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.prometheusRule.lagThreshold=5000",
        "--set",
        "metrics.prometheusRule.runbookBaseUrl=https://git.example.com/callahead/-/blob/main/",
    ]);
    let rule = of_kind(&docs, "PrometheusRule");
    assert_eq!(rule.len(), 1);
    let file = yaml_file(&alerts_file());
    let groups = rule[0]["spec"]["groups"].as_array().unwrap();
    let file_groups = file["groups"].as_array().unwrap();
    assert_eq!(groups.len(), file_groups.len());
    let selector = format!(r#"namespace="{RELEASE_NAMESPACE}", job="callahead-metrics""#);
    for (g, fg) in groups.iter().zip(file_groups) {
        assert_eq!(g["name"], fg["name"]);
        let (rules, file_rules) = (g["rules"].as_array().unwrap(), fg["rules"].as_array().unwrap());
        assert_eq!(rules.len(), file_rules.len());
        for (r, fr) in rules.iter().zip(file_rules) {
            let name = fr["alert"].as_str().unwrap();
            assert_eq!(r["alert"], fr["alert"]);
            assert_eq!(r["for"], fr["for"], "{name}");
            assert_eq!(r["labels"], fr["labels"], "{name}");
            let mut expected = fr["expr"].as_str().unwrap().replace(r#"job="callahead""#, &selector);
            if name == "CallaheadConsumerLag" {
                expected = expected.replace("100000", "5000");
                assert!(expected.trim_end().ends_with("> 5000"), "{expected}");
            }
            let expr = r["expr"].as_str().unwrap();
            assert_eq!(expr, expected, "{name}");
            // Every callahead series the rule reads is this release's.
            assert_eq!(
                expr.matches("callahead_").count(),
                expr.matches(&selector).count(),
                "{name}: a selector without the release's namespace and job: {expr}"
            );
            assert_eq!(
                r["annotations"]["runbook_url"].as_str().unwrap(),
                format!(
                    "https://git.example.com/callahead/-/blob/main/{}",
                    fr["annotations"]["runbook_url"].as_str().unwrap()
                )
            );
            assert_eq!(r["annotations"]["summary"], fr["annotations"]["summary"], "{name}");
        }
    }
    // The rendered rules are valid rules for promtool too.
    let dir = temp_dir("prometheusrule");
    let path = dir.join("rendered-rules.yaml");
    std::fs::write(&path, serde_yaml::to_string(&rule[0]["spec"]).unwrap()).unwrap();
    let out = ops(&["check-rules", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------------------------------
// Manifests
// ------------------------------------------------------------------------------------------------

#[test]
fn ops_manifests_validate_against_the_kubernetes_and_crd_schemas() {
    install();
    let dir = temp_dir("manifests");
    let prod = root().join("helm/examples/production.yaml").display().to_string();
    let variants: Vec<(&str, Vec<&str>)> = vec![
        ("default", vec![]),
        ("default-dashboard", vec!["--set", "metrics.dashboard.enabled=true"]),
        ("production", vec!["-f", &prod]),
        (
            "production-autoscaling",
            vec!["-f", &prod, "--set", "autoscaling.enabled=true", "--set", "metrics.dashboard.enabled=true"],
        ),
    ];
    let mut files = Vec::new();
    for (name, args) in &variants {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, render_text(args)).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["validate-manifests"];
    args.extend(files.iter().map(String::as_str));
    let out = ops(&args);
    let report = text(&out.stdout);
    assert!(out.status.success(), "validation failed:\n{report}{}", text(&out.stderr));
    assert!(!report.contains("ERROR"), "{report}");
    // Each file was validated, every kind the chart renders included.
    for (file, kinds) in [
        (
            &files[0],
            &[
                "Deployment/",
                "ConfigMap/callahead-config",
                "Service/",
                "PodDisruptionBudget/",
                "ServiceAccount/",
            ][..],
        ),
        (&files[1], &["ConfigMap/callahead-dashboard"][..]),
        (&files[2], &["ServiceMonitor/", "PrometheusRule/", "ConfigMap/callahead-dashboard"][..]),
        (&files[3], &["ScaledObject/", "ServiceMonitor/", "PrometheusRule/"][..]),
    ] {
        for kind in kinds {
            assert!(
                report.lines().any(|l| l.starts_with("ok") && l.contains(file.as_str()) && l.contains(kind)),
                "{kind} of {file} was not validated:\n{report}"
            );
        }
    }
    assert!(report.contains("1.29") && report.contains("1.33"), "{report}");

    // The same manifests with an unknown field in a built-in kind and in a CRD are refused.
    let broken = std::fs::read_to_string(&files[3])
        .unwrap()
        .replacen("  revisionHistoryLimit: 5", "  revisionHistoryLimit: 5\n  replicaz: 3", 1)
        .replacen("  cooldownPeriod: 600", "  cooldownPeriod: 600\n  cooldownPeriode: 600", 1);
    let path = dir.join("broken.yaml");
    std::fs::write(&path, broken).unwrap();
    let out = ops(&["validate-manifests", path.to_str().unwrap()]);
    let report = text(&out.stdout);
    assert!(!out.status.success(), "a broken manifest passed:\n{report}");
    assert!(
        report.contains("Deployment/callahead") && report.contains("'replicaz' was unexpected"),
        "{report}"
    );
    assert!(report.contains("ScaledObject/callahead") && report.contains("'cooldownPeriode'"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ops_autoscaling_is_off_by_default_and_scales_on_the_release_lag() {
    let docs = render(&[]);
    assert!(of_kind(&docs, "ScaledObject").is_empty(), "autoscaling is off by default");
    assert!(of_kind(&docs, "HorizontalPodAutoscaler").is_empty());

    let prod = root().join("helm/examples/production.yaml").display().to_string();
    let docs =
        render(&["-f", &prod, "--set", "autoscaling.enabled=true", "--set", "autoscaling.maxReplicas=12"]);
    let scaled = of_kind(&docs, "ScaledObject");
    assert_eq!(scaled.len(), 1);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert_eq!(scaled[0]["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
    assert_eq!(scaled[0]["spec"]["maxReplicaCount"], 12);
    assert!(deployment["spec"]["replicas"].is_null(), "KEDA owns the replica count");
    let trigger = &scaled[0]["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "prometheus");
    assert_eq!(
        trigger["metadata"]["query"],
        format!(
            r#"sum(callahead_consumer_lag_messages{{namespace="{RELEASE_NAMESPACE}", job="callahead-metrics"}})"#
        )
    );
    // The ServiceMonitor's job is the metrics Service's name: the query reads this release.
    assert!(of_kind(&docs, "Service").iter().any(|s| s["metadata"]["name"] == "callahead-metrics"));

    // With SQLite the pods could not share their store.
    let out = Command::new(root().join("scripts/helm.sh"))
        .args(["template", "--namespace", RELEASE_NAMESPACE, "--set", "autoscaling.enabled=true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("autoscaling.enabled needs store.type=postgres"),
        "{}",
        text(&out.stderr)
    );
}

// ------------------------------------------------------------------------------------------------
// Dashboard
// ------------------------------------------------------------------------------------------------

const ROWS: [&str; 5] =
    ["Is it healthy", "Is it keeping up", "What is it finding", "Are agents keeping up", "Outreach"];

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dashboard_file()).unwrap()).expect("dashboard JSON")
}

/// Every (panel title, target expression) of the dashboard.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.push((panel["title"].as_str().unwrap().to_string(), t["expr"].as_str().unwrap().to_string()));
        }
    }
    out
}

/// A dashboard expression with its variables replaced (see the module doc).
fn concrete(expr: &str) -> String {
    let out = expr
        .replace("${namespace}", NAMESPACE)
        .replace("$namespace", NAMESPACE)
        .replace("${pod}", POD)
        .replace("$pod", POD)
        .replace("$__rate_interval", "1m");
    assert!(!out.contains('$'), "a variable the test does not know: {expr}");
    out
}

#[test]
fn ops_dashboard_ships_for_the_grafana_sidecar() {
    let d = dashboard();
    let vars: Vec<&str> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(vars, ["datasource", "namespace", "pod"]);
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    assert_eq!(d["templating"]["list"][0]["query"], "prometheus");
    let rows: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ROWS);
    let mut ids = BTreeSet::new();
    for panel in d["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_i64().unwrap()), "duplicate panel id: {panel}");
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        assert!(panel["description"].as_str().is_some_and(|s| !s.is_empty()), "{title}: no description");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap();
            // Every series selector is scoped by the namespace and pod variables; no query can
            // hide a missing series behind a constant.
            let selectors = expr.matches("callahead_").count();
            assert!(selectors > 0, "{title}: {expr}");
            assert_eq!(
                expr.matches(r#"namespace="$namespace", pod=~"$pod""#).count(),
                selectors,
                "{title}: {expr}"
            );
            for hiding in ["vector(", "absent(", " or "] {
                assert!(!expr.contains(hiding), "{title}: {expr}");
            }
        }
    }

    // The chart ships it unchanged, labelled for the sidecar; off by default.
    assert!(of_kind(&render(&[]), "ConfigMap").iter().all(|c| c["data"]["callahead.json"].is_null()));
    let docs = render(&[
        "--set",
        "metrics.dashboard.enabled=true",
        "--set",
        "metrics.dashboard.annotations.grafana_folder=Banking",
    ]);
    let cm: Vec<&Value> =
        of_kind(&docs, "ConfigMap").into_iter().filter(|c| !c["data"]["callahead.json"].is_null()).collect();
    assert_eq!(cm.len(), 1);
    assert_eq!(cm[0]["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm[0]["metadata"]["annotations"]["grafana_folder"], "Banking");
    assert_eq!(cm[0]["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(
        cm[0]["data"]["callahead.json"].as_str().unwrap(),
        std::fs::read_to_string(dashboard_file()).unwrap(),
        "the ConfigMap holds files/dashboards/callahead.json unchanged"
    );
}

/// A Prometheus of the test's own, stopped on drop.
struct Prometheus {
    url: String,
    data: PathBuf,
}

impl Prometheus {
    fn start(scrape: &str, dir: &Path) -> Prometheus {
        let port = free_port();
        // The rules file as it is: its job="callahead" is this scrape job.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: callahead\n    static_configs:\n      - targets: [\"{scrape}\"]\n        \
             labels: {{namespace: {NAMESPACE}, pod: {POD}}}\n",
            rules = alerts_file().display()
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let data = dir.join("prometheus-data");
        let out =
            ops(&["prometheus", &port.to_string(), config_path.to_str().unwrap(), data.to_str().unwrap()]);
        assert!(out.status.success(), "cannot start Prometheus:\n{}", text(&out.stderr));
        let url = text(&out.stdout).trim().to_string();
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        Prometheus { url, data }
    }

    fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// GET on the HTTP API: the JSON answer.
    fn get(&self, path_and_query: &str) -> Value {
        let (status, body) = http_get(self.address(), path_and_query).expect("Prometheus answers");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {status} {e}: {body}"))
    }

    /// An instant query: (status, result).
    fn query(&self, expr: &str) -> (String, Vec<Value>) {
        let v = self.get(&format!("/api/v1/query?query={}", percent_encode(expr)));
        let status = v["status"].as_str().unwrap_or("").to_string();
        let status = if status == "success" { status } else { format!("{status}: {}", v["error"]) };
        (status, v["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = ops(&["stop-prometheus", self.data.to_str().unwrap()]);
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An RFC 3339 time `minutes` from now.
fn at(minutes: i64) -> String {
    callahead::api::now().plus(minutes * 60_000).to_string()
}

/// Events that open three tasks (an impossible trip three hours ago, already overdue; two
/// high-severity complaints now), plus ordinary activity.
fn events() -> Vec<String> {
    let card = |id: &str, customer: &str, ts: &str, city: &str, country: &str, lat: f64, lon: f64| {
        format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"{customer}","ts":"{ts}","card_id":"{customer}-k1","amount":"45.00","currency":"EUR","channel":"card_present","status":"approved","merchant":{{"name":"Shop","mcc":"5812","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
        )
    };
    let complaint = |id: &str, customer: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"complaint","customer_id":"{customer}","ts":"{}","category":"fees","severity":"high"}}"#,
            at(0)
        )
    };
    let login = |id: &str, customer: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"login","customer_id":"{customer}","ts":"{}","channel":"mobile","success":true,"device_id":"{customer}-phone"}}"#,
            at(0)
        )
    };
    vec![
        login("o-l1", "ops-f1"),
        card("o-t1", "ops-f1", &at(-180), "Phnom Penh", "KH", 11.5564, 104.9282),
        card("o-t2", "ops-f1", &at(-150), "Paris", "FR", 48.8606, 2.3376),
        complaint("o-c1", "ops-c1"),
        complaint("o-c2", "ops-c2"),
        login("o-l2", "ops-c1"),
        login("o-l2", "ops-c1"), // redelivered
    ]
}

/// POSTs an action; polls a 202 until the engine applied it.
fn act(address: &str, token: &str, path: &str, body: Option<&str>) -> Value {
    let (mut status, _, mut reply) = http(address, "POST", path, Some(token), body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status == 202 {
        let location = reply["location"].as_str().expect("202 says where to look").to_string();
        assert!(Instant::now() < deadline, "{path}: never applied");
        std::thread::sleep(Duration::from_millis(200));
        (status, _, reply) = http(address, "GET", &location, Some(token), None);
    }
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

/// Waits until `check` holds on the service's metrics.
fn wait_metrics(service: &Service, what: &str, check: impl Fn(&prometheus_parse::Scrape) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if check(&service.metrics()) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not seen in /metrics within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ops_every_dashboard_query_returns_data_from_a_real_prometheus() {
    install();
    let started = Instant::now();
    let dir = temp_dir("prometheus");
    let prefix = unique("ops");
    let topics = create_topics(&prefix).await;
    let hash = callahead::api::auth::hash_token;
    let tokens = format!("cara:care_agent:{},sue:supervisor:{}", hash(CARA), hash(SUE));
    let store = format!("sqlite://{}", dir.join("tasks.db").display());
    let service = Service::start_with(
        broker(),
        &topics,
        &prefix,
        &store,
        &[
            ("CALLAHEAD_API_TOKENS", &tokens),
            ("CALLAHEAD_API_SLA_TICK_MS", "500"),
            ("CALLAHEAD_API_CLAIM_IDLE_MS", "4000"),
            ("CALLAHEAD_STATE_CHECKPOINT_INTERVAL_MS", "200"),
        ],
    );
    let prometheus = Prometheus::start(&service.http, &dir);

    // Events that open tasks, and refused input of three kinds.
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker()).create().expect("producer");
    produce_lines(&producer, &topics.events, &events()).await;
    for (key, payload) in [
        ("ops-x", "{not json".to_string()),
        (
            "ops-x",
            r#"{"event_id":"x2","type":"teleport","customer_id":"ops-x","ts":"2026-06-01T00:00:00Z"}"#
                .to_string(),
        ),
        ("someone-else", events()[0].clone()),
    ] {
        producer
            .send(
                FutureRecord::to(&topics.events).key(key).payload(payload.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }

    // The agents: one care task taken, worked and resolved; another claimed and left to expire.
    let api = service.http.clone();
    let care = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, _, page) = http(&api, "GET", "/api/v1/tasks?queue=care", Some(SUE), None);
            let ids: Vec<String> = page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect();
            if ids.len() >= 2 {
                break ids;
            }
            assert!(Instant::now() < deadline, "the care tasks did not open: {page}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let worked = &care[0];
    act(&api, CARA, &format!("/api/v1/tasks/{worked}/claim"), None);
    act(
        &api,
        CARA,
        &format!("/api/v1/tasks/{worked}/contacted"),
        Some(r#"{"channel":"phone","result":"reached","note":"called back"}"#),
    );
    let task = act(
        &api,
        CARA,
        &format!("/api/v1/tasks/{worked}/resolve"),
        Some(r#"{"outcome":"retained","note":"fee refunded"}"#),
    );
    assert_eq!(task["status"], "resolved", "{task}");
    act(&api, CARA, &format!("/api/v1/tasks/{}/claim", care[1]), None);

    // What the tickers and librdkafka's statistics add on their own.
    let count = |m: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]| -> f64 {
        m.samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    wait_metrics(&service, "an SLA escalation", |m| {
        count(m, "callahead_commands_total", &[("action", "escalate"), ("result", "applied")]) >= 1.0
    });
    wait_metrics(&service, "an expired claim", |m| {
        count(m, "callahead_commands_total", &[("action", "expire_claim"), ("result", "applied")]) >= 1.0
    });
    wait_metrics(&service, "overdue fraud tasks", |m| {
        count(m, "callahead_tasks_overdue", &[("queue", "fraud")]) >= 1.0
    });
    wait_metrics(&service, "precision of complaint_escalation", |m| {
        count(m, "callahead_rule_precision", &[("rule", "complaint_escalation")]) == 1.0
    });
    wait_metrics(&service, "consumer lag per partition", |m| {
        m.samples.iter().any(|s| s.metric == "callahead_consumer_lag_messages")
    });
    let m = service.metrics();
    for step in ["claim", "first_contact", "resolve"] {
        let n = count(&m, "callahead_task_step_seconds_count", &[("queue", "care"), ("step", step)]);
        assert!(n >= 1.0, "time to {step} not observed");
    }
    assert_eq!(sum(&m, "callahead_events_invalid_total", None), 3.0);

    // Prometheus has scraped all of it (a few scrapes after the last change).
    let up = format!(r#"count_over_time(callahead_ready{{namespace="{NAMESPACE}"}}[1m])"#);
    let first = prometheus.query(&up).1.first().map(|r| r["value"][1].as_str().unwrap().to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, result) = prometheus.query(&up);
        let n: f64 =
            result.first().and_then(|r| r["value"][1].as_str()).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if status == "success"
            && n >= 5.0
            && result.first().map(|r| r["value"][1].as_str().unwrap().to_string()) != first
        {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus is not scraping: {status} {result:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let targets = prometheus.get("/api/v1/targets");
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");

    // Every query of every panel: valid, and with data.
    let dashboard = dashboard();
    let mut failures = Vec::new();
    let all = queries(&dashboard);
    assert!(all.len() >= 50, "{}", all.len());
    for (title, expr) in &all {
        let (status, result) = prometheus.query(&concrete(expr));
        if status != "success" {
            failures.push(format!("{title}: {expr}: {status}"));
        } else if result.is_empty() {
            failures.push(format!("{title}: {expr}: no data"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );

    // The variables' queries list the scraped namespace and pod.
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(q) = var["query"]["query"].as_str() else { continue };
        let inner =
            q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')).expect("label_values(…)");
        let (series, label) = inner.rsplit_once(", ").unwrap();
        let v = prometheus
            .get(&format!("/api/v1/label/{label}/values?match[]={}", percent_encode(&concrete(series))));
        let want = if label == "namespace" { NAMESPACE } else { POD };
        assert!(v["data"].as_array().unwrap().iter().any(|x| x == want), "{q}: {v}");
    }

    // The check can fail: a misspelled metric or label value finds nothing.
    let (_, expr) = &all[0];
    for (from, to) in [("callahead_ready", "callahead_readdy"), (NAMESPACE, "callahead-opz")] {
        let wrong = concrete(expr).replace(from, to);
        assert_ne!(wrong, concrete(expr));
        assert!(prometheus.query(&wrong).1.is_empty(), "{wrong} has data");
    }

    // The alert rules evaluate against the real series without errors.
    let rules = prometheus.get("/api/v1/rules?type=alert");
    let evaluated: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(evaluated.len(), alerts().len(), "{rules}");
    for r in evaluated {
        assert_eq!(r["health"], "ok", "{r}");
    }

    // /metrics passes promtool's lint.
    let (status, body) = http_get(&service.http, "/metrics").unwrap();
    assert_eq!(status, 200);
    let path = dir.join("metrics.txt");
    std::fs::write(&path, &body).unwrap();
    let out = ops(&["check-metrics", path.to_str().unwrap()]);
    let lint = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && lint.trim().is_empty(), "promtool check metrics:\n{lint}");

    eprintln!("ops: {} dashboard queries checked in {:?}", all.len(), started.elapsed());
    assert!(service.stop(Duration::from_secs(20)).success());
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
