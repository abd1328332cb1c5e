//! The Helm chart (`helm/callahead`), linted and rendered by the pinned Helm that
//! `scripts/helm.sh install` fetches (once per run), the rendered YAML parsed and checked against
//! the service itself: the callahead.toml the pod mounts loads with `callahead::config` under the
//! pod's environment (Secret values filled in), the rules ConfigMap is the repository's rule pack
//! and loads, probes and scrape settings name the port the service listens on, Secrets reach the
//! environment variables the service reads, replicas are honoured, impossible value combinations
//! are refused, and the pod's exact command, run locally against the test broker with the mounted
//! files, answers the liveness and readiness probes and stops on SIGTERM within the grace period.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callahead::config::Config;
use callahead::rules::RuleSet;
use serde::Deserialize;
use serde_json::Value;

use crate::common::{broker, free_port, http_get, root, unique};

const RELEASE: &str = "callahead";
const NAMESPACE: &str = "callahead-test";
/// The name the Downward API gives the pod in these renders.
const POD_NAME: &str = "callahead-6f7d9c8b5d-x2k9p";

fn chart() -> PathBuf {
    root().join("helm/callahead")
}

fn production_values() -> String {
    root().join("helm/examples/production.yaml").display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callahead-it-helm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The pinned Helm binary, installed (or found in the cache) once per test run.
fn helm_binary() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(root().join("scripts/helm.sh"))
            .arg("install")
            .output()
            .expect("run scripts/helm.sh");
        assert!(out.status.success(), "scripts/helm.sh install failed:\n{}", text(&out.stderr));
        let path = PathBuf::from(text(&out.stdout).trim());
        assert!(path.is_file(), "scripts/helm.sh install printed {path:?}, not a file");
        path
    })
}

/// Runs helm with its cache, config and data kept out of the user's home.
fn helm(args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("callahead-it-helm-{}-home", std::process::id()));
    Command::new(helm_binary())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .current_dir(root())
        .output()
        .expect("run helm")
}

fn template_args<'a>(chart: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["template", RELEASE, chart, "--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    args
}

/// The manifests `helm template` renders, one JSON value per document.
struct Rendered(Vec<Value>);

fn render(extra: &[&str]) -> Rendered {
    let chart = chart().display().to_string();
    let out = helm(&template_args(&chart, extra));
    assert!(out.status.success(), "helm template {extra:?} failed:\n{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let value =
            Value::deserialize(doc).unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
        if !value.is_null() {
            docs.push(value);
        }
    }
    Rendered(docs)
}

/// `helm template` must refuse these values; returns its error output.
fn render_refused(extra: &[&str]) -> String {
    let chart = chart().display().to_string();
    let out = helm(&template_args(&chart, extra));
    assert!(!out.status.success(), "helm template {extra:?} should have failed:\n{}", text(&out.stdout));
    text(&out.stderr)
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "expected exactly one {kind}, found {}", all.len());
        all[0]
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.all(kind)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} named {name} rendered"))
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    fn container(&self) -> &Value {
        let containers =
            self.deployment()["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
        containers.iter().find(|c| c["name"] == "callahead").expect("a container named callahead")
    }

    fn pod_spec(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    /// The volume mounted at exactly `mount_path`.
    fn volume_at(&self, mount_path: &str) -> &Value {
        let mounts = self.container()["volumeMounts"].as_array().expect("volumeMounts");
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == mount_path)
            .unwrap_or_else(|| panic!("nothing is mounted at {mount_path}: {mounts:?}"));
        let volumes = self.pod_spec()["volumes"].as_array().expect("volumes");
        volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume")
    }

    /// The data of the ConfigMap mounted at `mount_path`.
    fn config_map_at(&self, mount_path: &str) -> &serde_json::Map<String, Value> {
        let name = self.volume_at(mount_path)["configMap"]["name"].as_str().expect("a configMap volume");
        self.named("ConfigMap", name)["data"].as_object().expect("ConfigMap data")
    }

    /// The path the container passes to `--config`.
    fn config_path(&self) -> String {
        let args: Vec<&str> =
            self.container()["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(args.first(), Some(&"serve"), "the container runs `callahead serve`: {args:?}");
        let at = args.iter().position(|a| *a == "--config").expect("--config");
        args[at + 1].to_string()
    }

    /// The callahead.toml the pod reads: the file of the ConfigMap mounted where --config points.
    fn config_text(&self) -> String {
        let path = PathBuf::from(self.config_path());
        let dir = path.parent().unwrap().to_str().unwrap();
        let file = path.file_name().unwrap().to_str().unwrap();
        let data = self.config_map_at(dir);
        data[file].as_str().unwrap_or_else(|| panic!("the config ConfigMap has no key {file}")).to_string()
    }

    /// The container's environment, Secret references replaced by `secrets[(secret, key)]`.
    fn env(&self, secrets: &BTreeMap<(&str, &str), &str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in self.container()["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap().to_string();
            if let Some(v) = e["value"].as_str() {
                out.push((name, v.to_string()));
            } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
                out.push((name, POD_NAME.to_string()));
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let key = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
                let value =
                    secrets.get(&key).unwrap_or_else(|| panic!("{name} reads unexpected Secret key {key:?}"));
                out.push((name, value.to_string()));
            } else {
                panic!("unexpected env entry {e}");
            }
        }
        out
    }

    /// The container port a probe targets (by name or number).
    fn probe_port(&self, probe: &str) -> u16 {
        let port = &self.container()[probe]["httpGet"]["port"];
        match port {
            Value::Number(n) => n.as_u64().unwrap() as u16,
            Value::String(name) => self.container_port(name),
            other => panic!("{probe} has no httpGet port: {other}"),
        }
    }

    fn container_port(&self, name: &str) -> u16 {
        let ports = self.container()["ports"].as_array().expect("ports");
        let port =
            ports.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no container port {name}"));
        port["containerPort"].as_u64().unwrap() as u16
    }

    fn pod_labels(&self) -> &serde_json::Map<String, Value> {
        self.deployment()["spec"]["template"]["metadata"]["labels"].as_object().expect("pod labels")
    }

    fn assert_selects_pods(&self, what: &str, selector: &Value) {
        let selector = selector.as_object().unwrap_or_else(|| panic!("{what} has no selector"));
        assert!(!selector.is_empty(), "{what} selects everything");
        for (k, v) in selector {
            assert_eq!(self.pod_labels().get(k), Some(v), "{what} selects {k}={v}, which the pods lack");
        }
    }
}

/// Loads `toml` with the service's own configuration loader, as the pod would.
fn load_config(toml: &str, env: &[(String, String)], name: &str) -> Config {
    let dir = temp_dir(name);
    let path = dir.join("callahead.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(Some(&path), env)
        .unwrap_or_else(|e| panic!("the rendered callahead.toml is refused by the service: {e}\n{toml}"));
    let _ = std::fs::remove_dir_all(&dir);
    config
}

/// Checks what every rendering must satisfy; returns the loaded configuration.
fn check_pod(r: &Rendered, env: &[(String, String)], name: &str) -> Config {
    let config = load_config(&r.config_text(), env, name);
    let pod = r.pod_spec();
    let c = r.container();

    // Probes: liveness on /healthz, readiness on /readyz, on the port the service listens on.
    let listen: SocketAddr = config.http.listen.parse().expect("http.listen");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(r.probe_port("livenessProbe"), listen.port(), "liveness probe port vs http.listen");
    assert_eq!(r.probe_port("readinessProbe"), listen.port(), "readiness probe port vs http.listen");
    assert!(listen.ip().is_unspecified(), "the service must listen on all addresses in a pod, not {listen}");

    // The metrics Service targets that port on these pods.
    let service = r.named("Service", "callahead-metrics");
    r.assert_selects_pods("the Service", &service["spec"]["selector"]);
    let sp = &service["spec"]["ports"][0];
    let target = match &sp["targetPort"] {
        Value::String(name) => r.container_port(name),
        Value::Number(n) => n.as_u64().unwrap() as u16,
        other => panic!("Service targetPort {other}"),
    };
    assert_eq!(target, listen.port(), "the Service's target port");

    // Rules: the directory the service reads is the mounted rules ConfigMap, and it loads.
    let rules_dir = config.rules.dir.to_str().unwrap();
    let rules = r.config_map_at(rules_dir);
    let dir = temp_dir(&format!("{name}-rules"));
    for (file, body) in rules {
        std::fs::write(dir.join(file), body.as_str().unwrap()).unwrap();
    }
    let set = RuleSet::load_dir(&dir).unwrap_or_else(|e| panic!("the rules ConfigMap does not load: {e}"));
    assert!(!set.rules.is_empty());
    // The e-mail templates the rules name are in the same directory (as `outreach.<file>`).
    let needed = callahead::outreach::templates::needed(&set);
    assert!(!needed.is_empty(), "the default rules write to customers");
    if let Err(errors) = callahead::outreach::templates::Templates::load(&dir, &needed) {
        panic!("the rules ConfigMap's e-mail templates do not load: {errors:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);

    // JSON logs, and a grace period that leaves room for the final checkpoint and commit.
    let args = c["args"].as_array().unwrap();
    assert!(args.iter().any(|a| a == "--json-logs"), "serve --json-logs: {args:?}");
    assert!(pod["terminationGracePeriodSeconds"].as_u64().expect("terminationGracePeriodSeconds") >= 30);

    // Security: non-root, read-only root file system, no privilege escalation, no capabilities.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["automountServiceAccountToken"], false);
    // On a read-only root, an SQLite database must sit in a writable emptyDir mount.
    if let Some(path) = config.store.url.strip_prefix("sqlite://") {
        let dir = Path::new(path).parent().unwrap().to_str().unwrap();
        assert!(r.volume_at(dir)["emptyDir"].is_object(), "the SQLite directory {dir} is not an emptyDir");
    }

    // Resources are set; the PodDisruptionBudget covers these pods.
    assert!(c["resources"]["requests"]["memory"].is_string(), "memory request");
    assert!(c["resources"]["limits"]["memory"].is_string(), "memory limit");
    let pdb = r.one("PodDisruptionBudget");
    r.assert_selects_pods("the PodDisruptionBudget", &pdb["spec"]["selector"]["matchLabels"]);
    r.assert_selects_pods("the Deployment", &r.deployment()["spec"]["selector"]["matchLabels"]);
    config
}

#[test]
fn helm_chart_lints_without_errors() {
    let chart = chart().display().to_string();
    let prod = production_values();
    for extra in [vec![], vec!["-f", prod.as_str()]] {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend(extra.iter().copied());
        let out = helm(&args);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "helm lint {extra:?} failed:\n{all}");
        // Lint reports a template's `fail` only as an [INFO] line: refuse those too.
        for bad in ["[ERROR]", "[WARNING]", "Fail:"] {
            assert!(!all.contains(bad), "helm lint {extra:?} reports {bad}:\n{all}");
        }
    }
}

#[test]
fn helm_chart_rules_are_the_repository_rule_pack() {
    let r = render(&[]);
    let rules = r.config_map_at("/etc/callahead/rules");
    let mut repo = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            repo.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    // E-mail templates: rules/outreach/<file> is the ConfigMap key outreach.<file>.
    for entry in std::fs::read_dir(root().join("rules/outreach")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        repo.insert(format!("outreach.{name}"), std::fs::read_to_string(&path).unwrap());
    }
    let chart: BTreeMap<String, String> =
        rules.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        repo.keys().collect::<Vec<_>>(),
        "the chart's rule files differ from rules/: run scripts/helm.sh sync-rules"
    );
    for (name, body) in &repo {
        assert!(
            chart[name] == *body,
            "helm/callahead/files/rules/{name} differs from rules/{name}: run scripts/helm.sh sync-rules"
        );
    }

    // Extra rule files from values are added next to the defaults, and a bad name is refused.
    let extra = "[[rule]]\nid = \"x\"\n";
    let r = render(&["--set-string", &format!("rules.files.team\\.toml={extra}")]);
    let rules = r.config_map_at("/etc/callahead/rules");
    assert_eq!(rules["team.toml"], extra);
    assert!(rules.contains_key("fraud.toml"));
    let err = render_refused(&["--set-string", "rules.files.team\\.txt=x"]);
    assert!(err.contains("rules.files"), "{err}");
    let r = render(&["--set-string", "rules.files.outreach\\.care_callback\\.en\\.txt=Subject: x\n"]);
    assert_eq!(r.config_map_at("/etc/callahead/rules")["outreach.care_callback.en.txt"], "Subject: x\n");
}

#[test]
fn helm_chart_default_values_give_a_working_single_pod() {
    let r = render(&[]);
    let config = check_pod(&r, &r.env(&BTreeMap::new()), "default");
    assert_eq!(r.deployment()["spec"]["replicas"], 1);
    assert!(config.store.url.starts_with("sqlite:///"), "{}", config.store.url);
    assert_eq!(config.rules.dir, PathBuf::from("/etc/callahead/rules"));
    // Values map one to one onto the file.
    assert_eq!(config.kafka.brokers, "kafka:9092");
    assert_eq!(config.kafka.batch_size, 2000);
    // No Secret is referenced: the only variable is the pod's name as its static group member
    // id, which reaches librdkafka's `group.instance.id`.
    let env = r.container()["env"].as_array().expect("env").clone();
    assert_eq!(env.len(), 1, "{env:?}");
    assert_eq!(env[0]["name"], "CALLAHEAD_KAFKA_CLIENT_GROUP_INSTANCE_ID");
    assert!(env.iter().all(|e| e["valueFrom"]["secretKeyRef"].is_null()));
    assert_eq!(config.kafka.client["group.instance.id"], POD_NAME);
    let dynamic = render(&["--set", "staticMembership=false"]);
    assert!(dynamic.container()["env"].is_null(), "{}", dynamic.container()["env"]);
    // Scrape annotations on the pods, on the metrics port.
    let annotations = &r.deployment()["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], r.container_port("metrics").to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert!(annotations["checksum/config"].is_string());
    assert!(r.all("ServiceMonitor").is_empty() && r.all("PrometheusRule").is_empty());

    // Replicas are honoured, and the config checksum follows the configuration.
    let five = render(&[
        "--set",
        "store.type=postgres",
        "--set",
        "secrets.existingSecret=s",
        "--set",
        "secrets.commandKeysKey=command-keys",
        "--set",
        "replicaCount=5",
    ]);
    let env = &five.deployment()["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array().unwrap().iter().any(|e| e["name"] == "CALLAHEAD_KAFKA_COMMAND_KEYS"
            && e["valueFrom"]["secretKeyRef"]["key"] == "command-keys"),
        "{env}"
    );
    let err = render_refused(&[
        "--set",
        "store.type=postgres",
        "--set",
        "secrets.existingSecret=s",
        "--set",
        "replicaCount=2",
    ]);
    assert!(err.contains("needs secrets.commandKeysKey"), "{err}");
    for secret in
        ["ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret", "ssl.key.pem"]
    {
        let err = render_refused(&[
            "--set-string",
            &format!("config.kafka.client.{}=x", secret.replace('.', "\\.")),
        ]);
        assert!(err.contains(&format!("must not hold \"{secret}\"")), "{secret}: {err}");
    }
    let err = render_refused(&["--set", "config.kafka.command_keys[0]=k1:c2VjcmV0"]);
    assert!(err.contains("config.kafka.command_keys must not be set here"), "{err}");
    assert_eq!(five.deployment()["spec"]["replicas"], 5);
    let other = render(&["--set", "config.kafka.batch_size=100"]);
    assert_ne!(
        other.deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"],
        annotations["checksum/config"]
    );
    let c = load_config(&other.config_text(), &[], "batch");
    assert_eq!(c.kafka.batch_size, 100);
}

/// Two provisioned API tokens as the Secret would hold them (hashes, never tokens).
const API_TOKENS: &str = "ana:fraud_agent:0000000000000000000000000000000000000000000000000000000000000000,\
sue:supervisor:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn helm_chart_production_values_wire_secrets_and_monitoring() {
    let prod = production_values();
    let r = render(&["-f", &prod]);
    let secrets = BTreeMap::from([
        (("callahead-secrets", "store-url"), "postgres://callahead:s3cret@postgres.db:5432/callahead"),
        (("callahead-secrets", "sasl-password"), "kafka-s3cret"),
        (("callahead-secrets", "api-tokens"), API_TOKENS),
        (("callahead-secrets", "smtp-password"), "smtp-s3cret"),
        (("callahead-secrets", "link-keys"), "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        (("callahead-secrets", "command-keys"), "c1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="),
    ]);
    let env = r.env(&secrets);
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"CALLAHEAD_STORE_URL"), "{names:?}");
    assert!(names.contains(&"CALLAHEAD_KAFKA_CLIENT_SASL_PASSWORD"), "{names:?}");
    assert!(names.contains(&"CALLAHEAD_API_TOKENS"), "{names:?}");
    let config = check_pod(&r, &env, "production");
    assert_eq!(config.api.tokens.len(), 2, "the API tokens reach the settings from the Secret");
    // E-mail: on, with the relay's password and the link keys from the Secret.
    assert!(config.outreach.enabled);
    assert_eq!(config.outreach.smtp_password, "smtp-s3cret");
    assert_eq!(config.outreach.link_keys, vec!["k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]);
    assert_eq!(config.kafka.command_keys, vec!["c1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="]);

    // The Secret's values reach the settings the service uses, and never the ConfigMap.
    assert_eq!(config.store.url, "postgres://callahead:s3cret@postgres.db:5432/callahead");
    assert_eq!(config.kafka.client["sasl.password"], "kafka-s3cret");
    assert_eq!(config.kafka.client["security.protocol"], "SASL_SSL");
    assert_eq!(config.kafka.client["sasl.mechanism"], "SCRAM-SHA-512");
    let toml = r.config_text();
    assert!(
        !toml.contains("s3cret")
            && !toml.contains("postgres://")
            && !toml.contains("k1:")
            && !toml.contains("c1:"),
        "{toml}"
    );
    // Whole numbers from a -f file stay integers (helm's toToml would write 5000.0).
    assert_eq!(config.kafka.batch_size, 5000);
    assert_eq!(config.kafka.group_id, "callahead-prod");
    assert_eq!(config.kafka.input_topics, vec!["bank.customer-events"]);

    assert_eq!(r.deployment()["spec"]["replicas"], 3);
    // PostgreSQL: no SQLite volume; the CA bundle is mounted where ssl.ca.location points.
    let volumes = r.pod_spec()["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["emptyDir"].is_null()), "{volumes:?}");
    let ca =
        Path::new(&config.kafka.client["ssl.ca.location"]).parent().unwrap().to_str().unwrap().to_string();
    assert_eq!(r.volume_at(&ca)["configMap"]["name"], "kafka-ca");
    assert_eq!(r.container()["image"], "registry.example.com/callahead:0.1.0");

    // Monitoring through the prometheus-operator: the ServiceMonitor scrapes the metrics port.
    let sm = r.one("ServiceMonitor");
    let service = r.named("Service", "callahead-metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&service["metadata"]["labels"][k], v, "the ServiceMonitor does not select the Service");
    }
    assert_eq!(sm["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);

    // The customers' pages: their own port, Service and listener; HSTS; a NetworkPolicy that
    // opens the pages port to all and the internal port to the listed peers only.
    assert_eq!(config.http.public_listen, "0.0.0.0:8081");
    assert!(config.http.hsts);
    let pages = r.named("Service", "callahead-pages");
    assert_eq!(pages["spec"]["ports"][0]["targetPort"], "pages");
    let ports = r.container()["ports"].as_array().unwrap();
    assert!(ports.iter().any(|p| p["name"] == "pages" && p["containerPort"] == 8081), "{ports:?}");
    let policy = r.one("NetworkPolicy");
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["ports"][0]["port"] == "pages" && r["from"].is_null()), "{rules:?}");
    let internal = rules.iter().find(|r| r["ports"][0]["port"] == "metrics").unwrap();
    assert_eq!(internal["from"].as_array().unwrap().len(), 3, "own pods, monitoring, agents' ingress");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let rules = r.one("PrometheusRule");
    let alerts: Vec<&str> = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert!(alerts.contains(&"CallaheadNotReady") && alerts.contains(&"CallaheadConsumerLag"), "{alerts:?}");
    let annotations = &r.deployment()["spec"]["template"]["metadata"]["annotations"];
    assert!(annotations["prometheus.io/scrape"].is_null(), "scraped twice: annotations and ServiceMonitor");
}

#[test]
fn helm_chart_refuses_values_that_cannot_work() {
    let err = render_refused(&["--set", "replicaCount=3"]);
    assert!(err.contains("store.type=sqlite with replicaCount=3"), "{err}");
    let err = render_refused(&["--set", "store.type=postgres"]);
    assert!(err.contains("secrets.existingSecret"), "{err}");
    let err = render_refused(&["--set-string", "config.kafka.client.sasl\\.password=x"]);
    assert!(err.contains("sasl.password"), "{err}");
    let err = render_refused(&["--set", "config.http.listen=127.0.0.1:1"]);
    assert!(err.contains("config.http"), "{err}");
    let err = render_refused(&["--set", "replicaCount=two"]);
    assert!(err.contains("replicaCount"), "{err}");
    // E-mail secrets never in the ConfigMap; links cannot be signed without keys.
    let err = render_refused(&["--set", "config.outreach.enabled=true"]);
    assert!(err.contains("secrets.linkKeysKey"), "{err}");
    let err = render_refused(&["--set-string", "config.outreach.smtp_password=x"]);
    assert!(err.contains("config.outreach.smtp_password"), "{err}");
    let err = render_refused(&["--set", "secrets.dkimKeyKey=dkim"]);
    assert!(err.contains("secrets.existingSecret"), "{err}");
}

/// A DKIM key from the Secret is mounted as a file, and the configuration points at that file.
#[test]
fn helm_chart_mounts_the_dkim_key_where_the_configuration_points() {
    let r = render(&["--set", "secrets.existingSecret=s", "--set", "secrets.dkimKeyKey=dkim"]);
    let config: toml::Value = toml::from_str(&r.config_text()).expect("callahead.toml");
    let file = config["outreach"]["dkim_key_file"].as_str().expect("outreach.dkim_key_file").to_string();
    let dir = Path::new(&file).parent().unwrap().to_str().unwrap();
    let volume = r.volume_at(dir);
    assert_eq!(volume["secret"]["secretName"], "s");
    assert_eq!(volume["secret"]["items"][0]["key"], "dkim");
    assert_eq!(volume["secret"]["items"][0]["path"], Path::new(&file).file_name().unwrap().to_str().unwrap());
}

/// The pod's command run here: the mounted ConfigMaps written under a temporary root, paths
/// re-rooted through the same CALLAHEAD_* variables an operator would use, the test broker in
/// place of the cluster's.
#[test]
fn helm_chart_pod_command_passes_its_probes_and_stops_within_the_grace_period() {
    let port = free_port();
    let r = render(&["--set", &format!("metrics.port={port}"), "--set", "metrics.host=127.0.0.1"]);
    let tmp = temp_dir("pod");
    let c = r.container();
    // Materialise the ConfigMap mounts and the emptyDir under tmp.
    for m in c["volumeMounts"].as_array().unwrap() {
        let mount_path = m["mountPath"].as_str().unwrap();
        let dir = tmp.join(mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let volume = r.volume_at(mount_path);
        if volume["configMap"].is_object() {
            for (file, body) in r.config_map_at(mount_path) {
                std::fs::write(dir.join(file), body.as_str().unwrap()).unwrap();
            }
        }
    }
    let reroot = |p: &str| tmp.join(p.trim_start_matches('/')).display().to_string();
    let config = load_config(&r.config_text(), &[], "pod-config");
    let sqlite = config.store.url.strip_prefix("sqlite://").expect("default store is SQLite");

    // Topics for this run on the test broker.
    let prefix = unique("helm");
    let (events, tasks, dead, commands, actions) = (
        format!("{prefix}-events"),
        format!("{prefix}-tasks"),
        format!("{prefix}-dead"),
        format!("{prefix}-commands"),
        format!("{prefix}-actions"),
    );
    create_topics(broker(), &[&events, &tasks, &dead, &commands, &actions]);

    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .map(|a| if a.starts_with('/') { reroot(a) } else { a.to_string() })
        .collect();
    let log = tmp.join("service.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_callahead"))
        .args(&args)
        .env_clear()
        .envs(r.env(&BTreeMap::new()))
        .env("CALLAHEAD_RULES_DIR", reroot(config.rules.dir.to_str().unwrap()))
        .env("CALLAHEAD_STORE_URL", format!("sqlite://{}", reroot(sqlite)))
        .env("CALLAHEAD_KAFKA_BROKERS", broker())
        .env("CALLAHEAD_KAFKA_GROUP_ID", &prefix)
        .env("CALLAHEAD_KAFKA_INPUT_TOPICS", &events)
        .env("CALLAHEAD_KAFKA_TASKS_TOPIC", &tasks)
        .env("CALLAHEAD_KAFKA_DEAD_LETTER_TOPIC", &dead)
        .env("CALLAHEAD_KAFKA_COMMANDS_TOPIC", &commands)
        .env("CALLAHEAD_KAFKA_ACTIONS_TOPIC", &actions)
        // The test broker takes half the session timeout to form a group (scripts/kafka.sh).
        .env("CALLAHEAD_KAFKA_CLIENT_SESSION_TIMEOUT_MS", "6000")
        .current_dir(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start callahead serve");
    let address = format!("127.0.0.1:{}", r.probe_port("livenessProbe"));
    let path_of = |probe: &str| c[probe]["httpGet"]["path"].as_str().unwrap().to_string();
    let wait_for = |path: &str, child: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(&address, path) {
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("callahead exited ({status}) before {path} answered 200:\n{}", read(&log));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{path} did not answer 200 within 60 s:\n{}", read(&log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(&path_of("livenessProbe"), &mut child);
    wait_for(&path_of("readinessProbe"), &mut child);

    // SIGTERM, as the kubelet sends it: a clean exit within terminationGracePeriodSeconds.
    let grace = Duration::from_secs(r.pod_spec()["terminationGracePeriodSeconds"].as_u64().unwrap());
    let stopped = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > grace {
            let _ = child.kill();
            panic!("no exit within the {grace:?} grace period of SIGTERM:\n{}", read(&log));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", read(&log));
    // --json-logs: every log line is a JSON object.
    let logged = read(&log);
    assert!(!logged.trim().is_empty());
    for line in logged.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn create_topics(bootstrap: &str, names: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
        let topics: Vec<NewTopic> =
            names.iter().map(|n| NewTopic::new(n, 2, TopicReplication::Fixed(1))).collect();
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
            result.expect("topic created");
        }
    });
}
