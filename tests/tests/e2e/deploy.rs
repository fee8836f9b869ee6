//! Offline checks of `deploy/`: every file that a tool can judge without a cluster or a
//! container engine is judged by that tool (promtool, systemd-analyze, redis-server,
//! nginx), and every setting that names the service (environment variables, ports,
//! probe paths, metric names) is compared with the real service. A missing tool fails
//! the test with the package to install; nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use footfall_server::config::ServeArgs;
use footfall_tests::footfall_server::{FootfallServer, footfall_binary, free_port};
use footfall_tests::redis_server::RedisServer;
use serde_norway::Value;

use crate::metrics::{
    PROMETHEUS_HINT, metrics_when, run_tool, sample, series, traffic_of_every_kind,
};

const SYSTEMD_HINT: &str = "is part of Debian's `systemd` package: run `apt-get install \
     systemd` or `scripts/install-test-deps.sh`";
const NGINX_HINT: &str = "is part of Debian's `nginx` package: run `apt-get install nginx` \
     or `scripts/install-test-deps.sh`";

/// The alerts the runbook documents; each needs a firing and a quiet unit test.
const ALERTS: [&str; 7] = [
    "FootfallDown",
    "HitsDropped",
    "BufferNearFull",
    "FlushLagging",
    "StoreErrors",
    "LatencySLOBurn",
    "SaltNotRotated",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(relative: &str) -> Value {
    serde_norway::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("deploy/{relative} is not YAML: {e}"))
}

/// Every document of a multi-document YAML file.
fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("deploy/{relative} is not YAML: {e}"))
        })
        .filter(|document: &Value| !document.is_null())
        .collect()
}

fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))?
        .as_str()
}

/// The `FOOTFALL_*` variables `footfall serve` reads, from its clap definition, with
/// their defaults.
fn serve_flags() -> BTreeMap<String, Option<String>> {
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    command
        .get_arguments()
        .filter_map(|argument| {
            let env = argument.get_env()?.to_string_lossy().into_owned();
            let default = argument
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            Some((env, default))
        })
        .collect()
}

/// Checks that every variable in `settings` is a real flag; returns the listeners' ports
/// and the shutdown grace (seconds) the settings give, defaults filling the gaps.
fn check_settings(file: &str, settings: &BTreeMap<String, String>) -> (u16, u16, u64) {
    let flags = serve_flags();
    assert!(
        flags.len() > 15,
        "clap lists the serve flags' variables: {flags:?}"
    );
    for name in settings.keys() {
        assert!(
            flags.contains_key(name),
            "{file} sets {name}, which `footfall serve` does not read; its variables are {:?}",
            flags.keys().collect::<Vec<_>>()
        );
    }
    let value = |name: &str| {
        settings
            .get(name)
            .cloned()
            .or_else(|| flags[name].clone())
            .unwrap_or_else(|| panic!("{name} has no value and no default"))
    };
    let port = |name: &str| {
        let text = value(name);
        text.parse::<SocketAddr>()
            .unwrap_or_else(|_| panic!("{file}: {name}={text} is not address:port"))
            .port()
    };
    let grace = value("FOOTFALL_SHUTDOWN_GRACE")
        .parse()
        .unwrap_or_else(|_| panic!("{file}: FOOTFALL_SHUTDOWN_GRACE is not a number"));
    (
        port("FOOTFALL_LISTEN"),
        port("FOOTFALL_ADMIN_LISTEN"),
        grace,
    )
}

/// Seconds in a duration written like `30s`, `1m30s` or `90`.
fn seconds(text: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("duration {text:?}"));
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => panic!("duration {text:?}"),
        };
    }
    if !number.is_empty() {
        total += number.parse::<u64>().expect("digits");
    }
    total
}

// ---------------------------------------------------------------------------------------
// Prometheus

#[test]
fn promtool_checks_the_scrape_config_and_the_rules_and_their_tests() {
    let dir = deploy_dir().join("prometheus");
    for (args, what) in [
        (
            vec!["check", "config", "prometheus.yml"],
            "the scrape config (and the rule files it loads)",
        ),
        (
            vec!["check", "rules", "rules/footfall.rules.yml"],
            "the rules",
        ),
        (
            vec!["test", "rules", "rules/footfall.rules.test.yml"],
            "the rules' unit tests",
        ),
    ] {
        let output = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("promtool could not run ({e}); it {PROMETHEUS_HINT}"));
        assert!(
            output.status.success(),
            "promtool {} rejected {what} ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The scrape config reads the internal listener, where /metrics is.
    let config = yaml("prometheus/prometheus.yml");
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let footfall = jobs
        .iter()
        .find(|job| job["job_name"] == "footfall")
        .expect("a scrape job named footfall (the alerts select job=\"footfall\")");
    let targets: Vec<&str> = footfall["static_configs"][0]["targets"]
        .as_sequence()
        .expect("targets")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (_, admin_port, _) = check_settings("prometheus.yml", &BTreeMap::new());
    assert_eq!(targets, [format!("footfall:{admin_port}")]);
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let rules = yaml("prometheus/rules/footfall.rules.yml");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            if let Some(alert) = rule["alert"].as_str() {
                alerts.insert(alert.to_owned());
                assert!(
                    string_at(rule, &["annotations", "runbook"])
                        .is_some_and(|r| r.starts_with("deploy/README.md#")),
                    "{alert} has no runbook annotation"
                );
            }
        }
    }
    let expected: BTreeSet<String> = ALERTS.iter().map(|a| (*a).to_owned()).collect();
    assert_eq!(alerts, expected, "the alerts the runbook documents");

    let tests = yaml("prometheus/rules/footfall.rules.test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"].as_sequence().expect("tests") {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_owned();
            match case["exp_alerts"].as_sequence() {
                Some(expected) if !expected.is_empty() => firing.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    assert_eq!(firing, expected, "alerts with a firing test");
    assert_eq!(quiet, expected, "alerts with a not-firing test");

    let runbook = read("README.md").to_lowercase();
    for alert in ALERTS {
        assert!(
            runbook.contains(&format!("### {}", alert.to_lowercase())),
            "deploy/README.md has no `### {alert}` section for the runbook link"
        );
    }
}

/// Metric names (`footfall_…`, `process_…`) in a PromQL expression.
fn metric_names(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut token = String::new();
    for c in expression.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
            continue;
        }
        if (token.starts_with("footfall_") || token.starts_with("process_")) && !token.contains(':')
        {
            names.insert(std::mem::take(&mut token));
        }
        token.clear();
    }
    names
}

/// Every PromQL string in a dashboard: targets' `expr` and template variable queries.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    ("query", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => dashboard_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                dashboard_queries(item, out);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboard_and_alerts_use_only_metrics_the_service_exports() {
    // Every series the live service exports once it has seen traffic, flushed, and
    // sampled its gauges (the salt age appears at the upkeep after the first hit). On
    // the default store, the embedded one, whose gauges the dashboard shows too.
    let data = tempfile::tempdir().unwrap();
    let server = FootfallServer::builder()
        .store(data.path().join("footfall-data").to_str().unwrap())
        .args(["--rate-limit", "100000000", "--flush-interval-ms", "20"])
        .start();
    let accepted = traffic_of_every_kind(&server);
    let metrics = metrics_when(
        &server,
        Duration::from_secs(30),
        "hits written and every gauge sampled",
        |m| {
            sample(m, "footfall_hits_written_total").is_some_and(|n| n >= accepted as f64)
                && m.contains("\nfootfall_salt_age_seconds ")
                && m.contains("\nfootfall_store_held_bytes ")
        },
    );
    let exported: BTreeSet<String> = series(&metrics)
        .iter()
        .map(|s| s.split('{').next().unwrap_or(s).to_owned())
        .collect();

    let text = read("grafana/dashboards/footfall.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() > 15, "dashboard queries: {queries:?}");
    let mut used = BTreeSet::new();
    for query in &queries {
        for name in metric_names(query) {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name}, which the service does not export\n  in: {query}\n  exported: {exported:?}"
            );
            used.insert(name);
        }
    }
    // What the dashboard must show.
    for needed in [
        "footfall_hits_accepted_total",
        "footfall_hits_dropped_total",
        "footfall_http_request_duration_seconds_bucket",
        "footfall_buffer_hits",
        "footfall_buffer_capacity_hits",
        "footfall_store_operation_duration_seconds_bucket",
        "footfall_store_errors_total",
        "footfall_cache_lookups_total",
        "footfall_store_open_visits",
        "footfall_store_marker_bytes",
        "footfall_store_held_bytes",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    assert!(queries.iter().any(|q| q.contains("histogram_quantile(")));

    // The dashboard's datasource is the provisioned one.
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yaml");
    let uid = string_at(&datasources["datasources"][0], &["uid"]).expect("datasource uid");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], uid, "panel {}", panel["title"]);
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            panel["title"]
        );
    }
    let provider = yaml("grafana/provisioning/dashboards/footfall.yaml");
    let path = string_at(&provider["providers"][0], &["options", "path"]).expect("path");
    let compose = yaml("compose.yaml");
    let mounts = compose["services"]["grafana"]["volumes"]
        .as_sequence()
        .expect("grafana volumes");
    assert!(
        mounts
            .iter()
            .filter_map(Value::as_str)
            .any(|m| m == format!("./grafana/dashboards:{path}:ro")),
        "the compose file mounts the dashboards where the provider looks ({path})"
    );

    // Alert and recording rules read only exported metrics too.
    let rules = read("prometheus/rules/footfall.rules.yml");
    for name in metric_names(&rules) {
        assert!(
            exported.contains(&name),
            "the alert rules read {name}, which the service does not export"
        );
    }
}

// ---------------------------------------------------------------------------------------
// systemd

fn systemd_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn systemd_unit_verifies_and_its_exposure_is_at_most_2() {
    let unit = read("systemd/footfall.service");
    let settings = systemd_settings(&unit);
    let exec_start = settings
        .iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v.clone())
        .expect("ExecStart");
    assert_eq!(exec_start, "/usr/local/bin/footfall serve");

    // Verify against the binary just built, so the check sees a real executable.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("footfall.service");
    let binary = footfall_binary().canonicalize().expect("the binary's path");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/footfall", &binary.to_string_lossy()),
    )
    .expect("writing the unit copy");
    let path_text = path.to_string_lossy().into_owned();
    let verify = run_tool(
        "systemd-analyze",
        &["verify", &path_text],
        None,
        SYSTEMD_HINT,
    );
    let complaints: Vec<String> = String::from_utf8_lossy(&verify.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&verify.stdout).lines())
        .filter(|l| l.contains("footfall"))
        .map(str::to_owned)
        .collect();
    assert!(
        verify.status.success() && complaints.is_empty(),
        "systemd-analyze verify ({}):\n{}",
        verify.status,
        complaints.join("\n")
    );

    let security = run_tool(
        "systemd-analyze",
        &["security", "--offline=yes", "--no-pager", &path_text],
        None,
        SYSTEMD_HINT,
    );
    let report = String::from_utf8_lossy(&security.stdout).into_owned();
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for footfall.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in systemd-analyze security ({}):\n{report}{}",
                security.status,
                String::from_utf8_lossy(&security.stderr)
            )
        });
    assert!(
        exposure <= 2.0,
        "systemd-analyze security exposure {exposure} > 2.0:\n{report}"
    );

    // Settings the service reads are real flags, and systemd waits out the shutdown
    // grace before SIGKILL.
    let env: BTreeMap<String, String> = settings
        .iter()
        .filter(|(k, _)| k == "Environment")
        .filter_map(|(_, v)| v.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (_, _, grace) = check_settings("footfall.service", &env);
    let value = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the unit sets no {key}"))
    };
    assert!(seconds(&value("TimeoutStopSec")) > grace);
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert_eq!(value("EnvironmentFile"), "-/etc/footfall/footfall.env");
}

// ---------------------------------------------------------------------------------------
// Redis

#[test]
fn redis_server_loads_the_production_config() {
    // The file first, then only what a test must change: where it listens and writes.
    let server = RedisServer::builder()
        .config_file(deploy_dir().join("redis/redis.conf"))
        .start();
    let mut connection = server.connection();
    let get = |connection: &mut redis::Connection, key: &str| -> String {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query(connection)
            .expect("CONFIG GET");
        pair.get(1).cloned().unwrap_or_default()
    };
    assert_eq!(get(&mut connection, "maxmemory-policy"), "noeviction");
    assert_eq!(get(&mut connection, "appendonly"), "yes");
    assert_eq!(get(&mut connection, "appendfsync"), "everysec");
    assert_eq!(get(&mut connection, "protected-mode"), "yes");
    assert!(
        !get(&mut connection, "save").is_empty(),
        "RDB snapshots are on"
    );
    // Writes go to the AOF in the working directory.
    let _: () = redis::cmd("SET")
        .arg("ff:{demo}:probe")
        .arg(1)
        .query(&mut connection)
        .expect("SET");
    let aof_dir = server.data_dir().join("appendonlydir");
    assert!(
        aof_dir.is_dir(),
        "no AOF directory in {}",
        server.data_dir().display()
    );
}

// ---------------------------------------------------------------------------------------
// nginx

#[test]
fn nginx_accepts_the_reverse_proxy_example() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prefix = dir.path();
    let example = deploy_dir().join("nginx/footfall.conf");
    let example = example.canonicalize().expect("the example's path");
    let wrapper = prefix.join("nginx.conf");
    let p = prefix.display();
    std::fs::write(
        &wrapper,
        format!(
            "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  \
             access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  \
             fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  \
             scgi_temp_path {p}/scgi;\n  include {};\n}}\n",
            example.display()
        ),
    )
    .expect("writing the wrapper config");
    let prefix_text = format!("{p}/");
    let wrapper_text = wrapper.to_string_lossy().into_owned();
    let error_log = format!("{p}/error.log");
    let output = run_tool(
        "nginx",
        &[
            "-t",
            "-p",
            &prefix_text,
            "-c",
            &wrapper_text,
            "-e",
            &error_log,
        ],
        None,
        NGINX_HINT,
    );
    assert!(
        output.status.success(),
        "nginx -t rejected deploy/nginx/footfall.conf ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // What the example must say: replace X-Forwarded-For, bound slow clients, proxy to
    // the public listener only.
    let text = read("nginx/footfall.conf");
    let directives: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(directives.contains(&"proxy_set_header X-Forwarded-For $remote_addr;"));
    assert!(
        !directives
            .iter()
            .any(|d| d.contains("$proxy_add_x_forwarded_for"))
    );
    for needed in [
        "client_header_timeout",
        "client_body_timeout",
        "client_max_body_size",
    ] {
        assert!(
            directives.iter().any(|d| d.starts_with(needed)),
            "no {needed}"
        );
    }
    let (public_port, admin_port, _) = check_settings("footfall.conf", &BTreeMap::new());
    let upstreams: Vec<&str> = directives
        .iter()
        .filter_map(|d| d.strip_prefix("server 127.0.0.1:"))
        .collect();
    assert_eq!(upstreams, [format!("{public_port};")]);
    assert!(
        !directives
            .iter()
            .any(|d| d.contains(&format!(":{admin_port}"))),
        "the internal listener must not be proxied"
    );
}

// ---------------------------------------------------------------------------------------
// Compose, Kubernetes, Dockerfile

#[test]
fn compose_file_sets_real_flags_ports_and_files() {
    let compose = yaml("compose.yaml");
    let services = &compose["services"];
    for name in ["footfall", "redis", "prometheus", "grafana"] {
        assert!(!services[name].is_null(), "compose has no {name} service");
    }
    let footfall = &services["footfall"];
    let env: BTreeMap<String, String> = footfall["environment"]
        .as_mapping()
        .expect("footfall environment as a mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("{k:?}: {other:?}"),
            };
            (k.as_str().expect("a name").to_owned(), value)
        })
        .collect();
    let (public_port, admin_port, grace) = check_settings("compose.yaml", &env);
    let container_ports: BTreeSet<u16> = footfall["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .map(|p| {
            let text = p.as_str().expect("ports as strings");
            text.rsplit(':').next().unwrap().parse().expect("a port")
        })
        .collect();
    assert_eq!(container_ports, BTreeSet::from([public_port, admin_port]));
    assert!(
        footfall["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p.as_str() == Some(&format!("127.0.0.1:{admin_port}:{admin_port}"))),
        "the internal listener is published on the host's loopback only"
    );
    let healthcheck: Vec<&str> = footfall["healthcheck"]["test"]
        .as_sequence()
        .expect("a healthcheck")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(healthcheck, ["CMD", "/footfall", "healthcheck"]);
    let stop = footfall["stop_grace_period"]
        .as_str()
        .expect("stop_grace_period");
    assert!(
        seconds(stop) > grace,
        "stop_grace_period {stop} <= {grace} s"
    );
    assert_eq!(footfall["build"]["dockerfile"], "deploy/Dockerfile");
    assert!(
        deploy_dir()
            .join(footfall["build"]["context"].as_str().expect("context"))
            .join("deploy/Dockerfile")
            .is_file()
    );
    let store = &env["FOOTFALL_STORE"];
    assert!(
        store.starts_with("redis://redis:"),
        "footfall uses the compose Redis: {store}"
    );
    // A Redis store refuses to start without a salt secret: compose takes it from
    // deploy/.env and stops with a message when it is missing.
    let salt_secret = env.get("FOOTFALL_SALT_SECRET").map(String::as_str);
    assert!(
        salt_secret.is_some_and(|v| v.starts_with("${FOOTFALL_SALT_SECRET:?")),
        "compose requires FOOTFALL_SALT_SECRET from deploy/.env: {salt_secret:?}"
    );

    // Every file the services mount exists, and Redis runs with the production config.
    for (name, service) in services.as_mapping().expect("services") {
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let mount = mount.as_str().expect("short volume syntax");
            if let Some(source) = mount.strip_prefix("./") {
                let source = source.split(':').next().unwrap();
                assert!(
                    deploy_dir().join(source).exists(),
                    "{name:?} mounts ./{source}, which is not in deploy/"
                );
            }
        }
    }
    let redis_command: Vec<&str> = services["redis"]["command"]
        .as_sequence()
        .expect("redis command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let redis_mounts: Vec<&str> = services["redis"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        redis_mounts
            .iter()
            .any(|m| m.starts_with("./redis/redis.conf:") && m.contains(redis_command[1])),
        "redis-server {redis_command:?} reads the mounted deploy/redis/redis.conf"
    );
    assert!(
        services["redis"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("redis:7")),
        "Redis 7"
    );
    // The sites file mounted parses.
    footfall_server::sites::parse_sites_file(&read("sites.toml"))
        .expect("deploy/sites.toml is a valid sites file");
}

fn kubernetes_objects() -> Vec<Value> {
    let mut objects = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("k8s"))
        .expect("deploy/k8s")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "kustomization.yaml" {
            continue;
        }
        for document in yaml_documents(&format!("k8s/{name}")) {
            assert!(
                document["apiVersion"].is_string() && document["kind"].is_string(),
                "k8s/{name}: a document without apiVersion and kind"
            );
            objects.push(document);
        }
    }
    objects
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

#[test]
fn kubernetes_manifests_parse_and_agree_with_the_service() {
    let objects = kubernetes_objects();
    let deployment = object(&objects, "Deployment", "footfall");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    let pod = &deployment["spec"]["template"]["spec"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let container = &pod["containers"][0];

    // Environment: real flags; the secret is referenced, never inlined.
    let mut env = BTreeMap::new();
    for variable in container["env"].as_sequence().expect("env") {
        let name = variable["name"].as_str().expect("name").to_owned();
        if let Some(value) = variable["value"].as_str() {
            env.insert(name, value.to_owned());
        } else {
            assert!(
                !variable["valueFrom"]["secretKeyRef"].is_null(),
                "{name} comes from a secretKeyRef"
            );
            env.insert(name, String::new());
        }
    }
    for secret in ["FOOTFALL_ADMIN_TOKENS", "FOOTFALL_SALT_SECRET"] {
        assert!(
            env.get(secret).is_some_and(String::is_empty),
            "{secret} from a Secret (a Redis store refuses to start without a salt secret)"
        );
        env.remove(secret);
    }
    let (public_port, admin_port, grace) = check_settings("k8s/deployment.yaml", &env);
    check_settings(
        "k8s/deployment.yaml",
        &BTreeMap::from([("FOOTFALL_ADMIN_TOKENS".to_owned(), String::new())]),
    );
    assert!(
        env["FOOTFALL_STORE"].starts_with("redis"),
        "replicas share Redis, not an embedded store"
    );

    // Ports and probes.
    let ports: BTreeMap<String, u64> = container["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("named ports").to_owned(),
                p["containerPort"].as_u64().expect("containerPort"),
            )
        })
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([
            ("http".to_owned(), u64::from(public_port)),
            ("internal".to_owned(), u64::from(admin_port)),
        ])
    );
    let probe_port = |probe: &str| -> u64 {
        let port = &container[probe]["httpGet"]["port"];
        port.as_u64()
            .or_else(|| ports.get(port.as_str()?).copied())
            .unwrap_or_else(|| panic!("{probe} port {port:?}"))
    };
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/livez"),
        ("startupProbe", "/livez"),
    ] {
        assert_eq!(
            string_at(container, &[probe, "httpGet", "path"]),
            Some(path),
            "{probe}"
        );
        assert_eq!(probe_port(probe), u64::from(admin_port), "{probe} port");
    }

    // Shutdown: preStop sleep, then the grace, within terminationGracePeriodSeconds.
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    let termination = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        termination > pre_stop + grace,
        "terminationGracePeriodSeconds {termination} <= preStop {pre_stop} + grace {grace}"
    );

    // Hardening.
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(!container["resources"]["requests"]["cpu"].is_null());
    assert!(!container["resources"]["limits"]["memory"].is_null());

    // Services select the pods and reach the named ports.
    let public = object(&objects, "Service", "footfall");
    let internal = object(&objects, "Service", "footfall-internal");
    for service in [public, internal] {
        for (key, value) in service["spec"]["selector"].as_mapping().expect("selector") {
            assert_eq!(&labels[key.as_str().unwrap()], value, "selector {key:?}");
        }
    }
    assert_eq!(public["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        public["spec"]["ports"].as_sequence().map(Vec::len),
        Some(1),
        "the public Service does not carry the internal port"
    );
    assert_eq!(internal["spec"]["ports"][0]["targetPort"], "internal");

    // Autoscaling and disruption budget point at the Deployment.
    let hpa = object(&objects, "HorizontalPodAutoscaler", "footfall");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "footfall");
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    let pdb = object(&objects, "PodDisruptionBudget", "footfall");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);

    // The ConfigMap's sites file is the one in deploy/, mounted where the flag says.
    let config_map = object(&objects, "ConfigMap", "footfall-sites");
    let sites = config_map["data"]["sites.toml"]
        .as_str()
        .expect("sites.toml");
    assert_eq!(
        sites,
        read("sites.toml"),
        "k8s/configmap.yaml and deploy/sites.toml"
    );
    footfall_server::sites::parse_sites_file(sites).expect("the ConfigMap's sites file parses");
    let mount = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == "sites")
        .expect("the sites volume is mounted");
    assert_eq!(
        format!("{}/sites.toml", mount["mountPath"].as_str().unwrap()),
        env["FOOTFALL_SITES_FILE"]
    );

    // Each Secret reference matches the example's shape, and the example holds only a
    // placeholder.
    for variable in ["FOOTFALL_ADMIN_TOKENS", "FOOTFALL_SALT_SECRET"] {
        let reference = &container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == variable)
            .unwrap()["valueFrom"]["secretKeyRef"];
        let secret = object(&objects, "Secret", reference["name"].as_str().unwrap());
        let key = reference["key"].as_str().unwrap();
        assert!(
            secret["stringData"][key]
                .as_str()
                .is_some_and(|v| v.starts_with("REPLACE-")),
            "secret.example.yaml holds a placeholder for {variable}, not a secret"
        );
    }
    let kustomization = yaml("k8s/kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!resources.contains(&"secret.example.yaml"));
    for resource in &resources {
        assert!(
            deploy_dir().join("k8s").join(resource).is_file(),
            "{resource}"
        );
    }
    assert!(read("k8s/README.md").contains("noeviction"));
    assert!(read("k8s/README.md").contains("{site}"));
}

#[test]
fn dockerfile_sets_real_flags_ports_and_a_healthcheck_without_curl() {
    let text = read("Dockerfile");
    // Join continued lines, drop comments.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (instruction, rest) = l.trim().split_once(char::is_whitespace)?;
            Some((instruction.to_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let all = |name: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let mut env = BTreeMap::new();
    for rest in all("ENV") {
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=').expect("ENV key=value");
            env.insert(key.to_owned(), value.to_owned());
        }
    }
    let (public_port, admin_port, _) = check_settings("Dockerfile", &env);
    assert_eq!(env["FOOTFALL_STORE"], "/data");
    let exposed: BTreeSet<u16> = all("EXPOSE")
        .iter()
        .flat_map(|rest| rest.split_whitespace())
        .map(|p| p.parse().expect("a port"))
        .collect();
    assert_eq!(exposed, BTreeSet::from([public_port, admin_port]));
    assert_eq!(all("VOLUME"), ["/data"]);
    let healthcheck = all("HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1);
    assert!(
        healthcheck[0].ends_with(r#"CMD ["/footfall", "healthcheck"]"#),
        "{healthcheck:?}"
    );
    assert!(!joined.contains("curl"), "no curl in the image");
    let from = all("FROM");
    assert!(from.len() >= 2, "multi-stage");
    let runtime = from.last().unwrap();
    assert!(
        runtime.starts_with("gcr.io/distroless/cc-debian12:nonroot")
            || runtime.starts_with("debian:bookworm-slim"),
        "runtime image {runtime}"
    );
    let user = all("USER");
    assert!(
        user.last()
            .is_some_and(|u| !u.starts_with("root") && !u.starts_with("0")),
        "runs as a non-root user: {user:?}"
    );
    // The build context is the repository root; the .dockerignore keeps target/ out
    // and the workspace members in.
    let ignore = std::fs::read_to_string(deploy_dir().join("../.dockerignore"))
        .expect("a .dockerignore at the repository root");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"target"));
    for member in ["crates", "tests", "benches", "Cargo.toml", "Cargo.lock"] {
        assert!(!ignored.contains(&member), "{member} is needed to build");
    }
}

// ---------------------------------------------------------------------------------------
// footfall healthcheck

/// Runs `footfall healthcheck` with only `FOOTFALL_ADMIN_LISTEN` set.
fn healthcheck(admin_listen: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(footfall_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FOOTFALL_") {
            command.env_remove(key);
        }
    }
    command
        .arg("healthcheck")
        .args(args)
        .env("FOOTFALL_ADMIN_LISTEN", admin_listen)
        .stdin(Stdio::null())
        .output()
        .expect("running footfall healthcheck")
}

fn one_line_reason(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("footfall healthcheck: "), "{stderr:?}");
    stderr
}

#[test]
fn healthcheck_subcommand_against_a_real_service() {
    let server = FootfallServer::builder().start();
    let internal = server.internal().to_string();
    for args in [&[][..], &["--live"][..]] {
        let output = healthcheck(&internal, args);
        assert!(
            output.status.success(),
            "healthcheck {args:?} on a ready service: {output:?}\nservice log:\n{}",
            server.log()
        );
    }
    // A wildcard listener is asked on loopback, as in the container.
    let wildcard = format!("0.0.0.0:{}", server.internal().port());
    assert!(healthcheck(&wildcard, &[]).status.success());
    // The public listener has no /readyz: 404 is a failure.
    let output = healthcheck(&server.public().to_string(), &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(one_line_reason(&output).contains("404"));
    // Nobody listening.
    let nobody = format!("127.0.0.1:{}", free_port().expect("a free port"));
    let output = healthcheck(&nobody, &["--timeout", "2"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(one_line_reason(&output).contains(&nobody));
}

#[test]
fn healthcheck_fails_when_the_store_is_gone_but_liveness_holds() {
    let mut redis = RedisServer::start();
    let server = FootfallServer::builder().store(redis.url()).start();
    let internal = server.internal().to_string();
    let ready = healthcheck(&internal, &[]);
    assert!(
        ready.status.success(),
        "{ready:?}\nservice log:\n{}",
        server.log()
    );
    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    let output = loop {
        let output = healthcheck(&internal, &[]);
        if !output.status.success() {
            break output;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still 200 30 s after Redis died"
        );
        // Polling until the service notices the store is gone.
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(output.status.code(), Some(1));
    let reason = one_line_reason(&output);
    assert!(
        reason.contains("/readyz") && reason.contains("503"),
        "{reason}"
    );
    // Liveness never touches the store: no restart loop during a Redis outage.
    assert!(healthcheck(&internal, &["--live"]).status.success());
}

/// The markers around the commented example of every site setting in `sites.toml`.
const SITES_EXAMPLE_START: &str = "# --- example: every site setting ---";
const SITES_EXAMPLE_END: &str = "# --- end of example ---";

/// Every object key in `value`, at any depth.
fn json_keys(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                out.insert(key.clone());
                json_keys(value, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_keys(item, out)),
        _ => {}
    }
}

#[test]
fn the_sites_file_and_its_commented_example_parse() {
    let text = read("sites.toml");
    let sites = footfall_server::sites::parse_sites_file(&text)
        .expect("deploy/sites.toml is a valid sites file");
    assert_eq!(sites.len(), 1, "one site, the example commented out");

    // The example, uncommented as the file says (one "# " off each line), is a sites
    // file of its own, and appended to the file it is still valid.
    let (_, after_start) = text
        .split_once(SITES_EXAMPLE_START)
        .expect("deploy/sites.toml has the example's start marker");
    let (example, _) = after_start
        .split_once(SITES_EXAMPLE_END)
        .expect("deploy/sites.toml has the example's end marker");
    let uncommented: String = example
        .lines()
        .skip(1)
        .map(|line| {
            let stripped = line
                .strip_prefix("# ")
                .or_else(|| line.strip_prefix('#'))
                .unwrap_or_else(|| panic!("a line of the example is not commented: {line:?}"));
            format!("{stripped}\n")
        })
        .collect();
    let example_sites = footfall_server::sites::parse_sites_file(&uncommented)
        .unwrap_or_else(|e| panic!("the uncommented example does not parse: {e}\n{uncommented}"));
    assert_eq!(example_sites.len(), 1);
    let both = footfall_server::sites::parse_sites_file(&format!("{text}\n{uncommented}"))
        .expect("the file with its example uncommented parses");
    assert_eq!(both.len(), 2);

    // It shows every setting: each key the site's settings serialise to (with a trust
    // record, its seal, and footer lines with labels) is written in the example.
    let settings = serde_json::to_value(&example_sites[0].settings).expect("settings serialise");
    let mut keys = BTreeSet::new();
    json_keys(&settings, &mut keys);
    for required in [
        "trust",
        "tinnhiemmang",
        "lines",
        "label_vi",
        "salt_rotation_hours",
    ] {
        assert!(
            keys.contains(required),
            "{required} missing from {settings}"
        );
    }
    for key in &keys {
        let written = uncommented.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with(&format!("{key} ="))
                || (line.starts_with('[')
                    && line.trim_end_matches(']').ends_with(&format!(".{key}")))
        });
        assert!(
            written,
            "the example in deploy/sites.toml does not show {key:?}"
        );
    }
    // And no longer points at a Rust type instead of the fields.
    assert!(
        !text.contains("SiteSettings"),
        "name the fields, not a Rust type"
    );
}

// ---------------------------------------------------------------------------------------
// The systemd install, as the runbook writes it

/// The fenced block of language `lang` that first follows `heading` in `text`.
fn fenced_block(text: &str, heading: &str, lang: &str) -> String {
    let (_, after) = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("deploy/README.md has no {heading:?}"));
    let (_, block) = after
        .split_once(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"));
    let (block, _) = block.split_once("```").expect("a closed fenced block");
    block.to_owned()
}

/// A user and group id (equal, as DynamicUser allocates them) in systemd's dynamic range
/// (61184–65519) that no account or group of this host uses: it owns nothing but what
/// the emulated service manager gives it, as a dynamic user.
fn dynamic_user_id() -> u32 {
    let used: BTreeSet<u32> = ["/etc/passwd", "/etc/group"]
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| line.split(':').nth(2)?.parse().ok())
        .collect();
    (61184..=65519)
        .find(|id| !used.contains(id))
        .expect("a free id in the dynamic user range")
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Starts the unit installed under `root` as systemd would start it, for what a
/// service can observe: the user (a dynamic user id, no supplementary groups, no new
/// privileges, via `setpriv`), `LoadCredential=` (copies owned by that user, mode 0400, in
/// a directory of mode 0500, named by `%d` and `$CREDENTIALS_DIRECTORY`), the state
/// directory (owned by the user, `StateDirectoryMode`), `Environment=` then
/// `EnvironmentFile=` (which overrides it), `WorkingDirectory=`, `UMask=` and
/// `ExecStart=`. Paths under `/etc`, `/var/lib` and `/usr/local` are those under `root`.
/// Sandboxing (namespaces, system call filter) is not emulated: `systemd-analyze` judges
/// it above. `overrides` come last, as a drop-in would.
fn start_like_systemd(
    root: &Path,
    uid: u32,
    overrides: &[(&str, String)],
    log: &Path,
) -> std::process::Child {
    use std::os::unix::fs::chown;
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/footfall.service"))
        .expect("the installed unit");
    let settings = systemd_settings(&unit);
    let under_root = |path: &str| -> String {
        for prefix in ["/etc/", "/var/lib/", "/usr/local/"] {
            if path.starts_with(prefix) {
                return format!("{}{path}", root.display());
            }
        }
        path.to_owned()
    };
    let credentials = root.join("run/credentials/footfall.service");
    if credentials.exists() {
        std::fs::remove_dir_all(&credentials).expect("clearing the credentials directory");
    }
    std::fs::create_dir_all(&credentials).expect("the credentials directory");
    let mut state_mode = 0o755;
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut exec, mut workdir, mut umask) =
        (String::new(), String::from("/"), String::from("0022"));
    let mut env_files = Vec::new();
    for (key, value) in &settings {
        match key.as_str() {
            "LoadCredential" => {
                let (id, path) = value.split_once(':').expect("LoadCredential=ID:PATH");
                let copy = credentials.join(id);
                // systemd reads the source as root; a missing one stops the start.
                std::fs::copy(under_root(path), &copy).unwrap_or_else(|e| {
                    panic!("LoadCredential={value}: {e} (systemd would refuse to start)")
                });
                chown(&copy, Some(uid), Some(uid)).expect("chown of a credential");
                set_mode(&copy, 0o400);
            }
            "StateDirectoryMode" => {
                state_mode = u32::from_str_radix(value, 8).expect("an octal mode");
            }
            "Environment" => {
                let (name, value) = value.split_once('=').expect("Environment=NAME=VALUE");
                assert!(
                    !value.contains('%') || value.starts_with("%d/"),
                    "the emulation knows only the %d specifier: {name}={value}"
                );
                let value = value.replace("%d", &credentials.to_string_lossy());
                env.push((name.to_owned(), under_root(&value)));
            }
            "EnvironmentFile" => env_files.push(value.trim_start_matches('-').to_owned()),
            "ExecStart" => exec.clone_from(value),
            "WorkingDirectory" => workdir = under_root(value),
            "UMask" => umask.clone_from(value),
            _ => {}
        }
    }
    chown(&credentials, Some(uid), Some(uid)).expect("chown of the credentials directory");
    set_mode(&credentials, 0o500);
    let state_name = settings
        .iter()
        .find(|(k, _)| k == "StateDirectory")
        .map(|(_, v)| v.clone())
        .expect("a StateDirectory");
    let state = root.join("var/lib").join(state_name);
    std::fs::create_dir_all(&state).expect("the state directory");
    chown(&state, Some(uid), Some(uid)).expect("chown of the state directory");
    set_mode(&state, state_mode);
    for file in env_files {
        if let Ok(text) = std::fs::read_to_string(under_root(&file)) {
            for line in text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                let (name, value) = line.split_once('=').expect("NAME=VALUE in the env file");
                env.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    for (name, value) in overrides {
        env.push(((*name).to_owned(), value.clone()));
    }
    let mut words = exec.split_whitespace();
    let program = under_root(words.next().expect("ExecStart names a program"));
    let log_file = std::fs::File::create(log).expect("the service log");
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--no-new-privs", "--", "sh", "-c"])
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(program)
        .args(words)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .envs(env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("the log twice"))
        .stderr(log_file)
        .spawn()
        .expect("running setpriv (util-linux)")
}

/// `GET path` on `address`, `None` while nothing answers.
fn try_get(
    address: SocketAddr,
    path: &str,
) -> Option<footfall_tests::footfall_server::HttpResponse> {
    footfall_tests::footfall_server::HttpClient::connect(address)
        .and_then(|mut client| client.get(path))
        .ok()
}

/// Waits until `/readyz` on `internal` answers 200; panics with the log if the service
/// exits or does not get ready in 30 s.
fn wait_ready(child: &mut std::process::Child, internal: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("waiting for footfall") {
            panic!(
                "footfall exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if try_get(internal, "/readyz").is_some_and(|r| r.status == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 after 30 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        // Polling: the service gives no readiness signal but /readyz.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("waiting for footfall").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn systemd_install_as_the_runbook_writes_it_serves_as_a_dynamic_user() {
    use footfall_server::trust::credential::{self, Credential};
    use footfall_server::trust::{Keyring, KeysDocument};
    use std::os::unix::fs::MetadataExt;

    let whoami = Command::new("id")
        .arg("-u")
        .output()
        .expect("running id -u");
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout).trim(),
        "0",
        "this test runs the runbook's install as root (as the runbook says) and starts the \
         service as another user: run the e2e tests as root (CI and the dev box do)"
    );
    let readme = read("README.md");
    let script = fenced_block(&readme, "### Binary and systemd", "sh");
    let record = fenced_block(&readme, "## Issuing a trust credential", "toml");

    // A host under a temporary root: what a Debian host has before the install.
    let root_dir = tempfile::tempdir().expect("a temporary root");
    let root = root_dir.path();
    set_mode(root, 0o755);
    for dir in [
        "etc/systemd/system",
        "usr/local/bin",
        "var/lib",
        "run/credentials",
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("a host directory");
    }
    // The repository as the runbook expects it, with the binary already built.
    let work = tempfile::tempdir().expect("a work directory");
    std::os::unix::fs::symlink(
        deploy_dir().canonicalize().unwrap(),
        work.path().join("deploy"),
    )
    .expect("linking deploy/");
    std::fs::create_dir_all(work.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        footfall_binary().canonicalize().unwrap(),
        work.path().join("target/release/footfall"),
    )
    .expect("linking the built binary");
    // cargo (already built) and systemctl (recorded; the test starts the unit below).
    let shims = work.path().join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    let calls = work.path().join("systemctl.calls");
    for (name, body) in [
        (
            "cargo",
            "[ \"$*\" = 'build --release -p footfall-server --bin footfall' ] || \
             { echo \"unexpected cargo $*\" >&2; exit 1; }"
                .to_owned(),
        ),
        ("systemctl", format!("echo \"$*\" >> '{}'", calls.display())),
    ] {
        let path = shims.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        set_mode(&path, 0o755);
    }
    let rooted = ["/etc/", "/usr/local/", "/var/lib/"]
        .iter()
        .fold(script, |s, prefix| {
            s.replace(
                &format!(" {prefix}"),
                &format!(" {}{prefix}", root.display()),
            )
        });
    let output = Command::new("sh")
        .args(["-eu", "-c", &rooted])
        .current_dir(work.path())
        .env(
            "PATH",
            format!(
                "{}:{}/usr/local/bin:/usr/bin:/bin",
                shims.display(),
                root.display()
            ),
        )
        .output()
        .expect("running the runbook's install steps");
    assert!(
        output.status.success(),
        "the runbook's steps failed:\n{rooted}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap_or_default(),
        "daemon-reload\nenable --now footfall\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/systemd/system/footfall.service")).unwrap(),
        read("systemd/footfall.service")
    );
    // Everything in /etc/footfall is root's; only the digests of tokens.toml are readable
    // by others, through a directory they can pass but not list.
    let etc = root.join("etc/footfall");
    assert_eq!(mode_of(&etc), 0o711);
    for file in ["footfall.env", "sites.toml", "issuer.key", "salt-secret"] {
        let path = etc.join(file);
        assert_eq!(mode_of(&path), 0o600, "{file}");
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 0, "{file}");
    }
    let tokens_file = etc.join("tokens.toml");
    assert_eq!(mode_of(&tokens_file), 0o644);
    assert_eq!(std::fs::metadata(&tokens_file).unwrap().uid(), 0);
    let env_text = std::fs::read_to_string(etc.join("footfall.env")).unwrap();
    assert!(
        env_text
            .lines()
            .any(|l| l.starts_with("FOOTFALL_ADMIN_TOKENS=") && l.len() > 40)
    );

    // "Then edit sites.toml": the trust section's record, as shown there.
    let sites = etc.join("sites.toml");
    let mut text = std::fs::read_to_string(&sites).unwrap();
    text.push('\n');
    text.push_str(&record);
    std::fs::write(&sites, text).unwrap();
    let site_id = footfall_server::sites::parse_sites_file(&record).expect("the runbook's record")
        [0]
    .id
    .to_string();

    let uid = dynamic_user_id();
    let public: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    let internal: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    // Only the listeners change (the defaults may be taken on a test machine).
    let overrides = [
        ("FOOTFALL_LISTEN", public.to_string()),
        ("FOOTFALL_ADMIN_LISTEN", internal.to_string()),
    ];
    let log = work.path().join("footfall.log");
    let mut child = start_like_systemd(root, uid, &overrides, &log);
    wait_ready(&mut child, internal, &log);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("run/credentials/footfall.service/salt-secret"),
        "the salt secret comes from the credential:\n{log_text}"
    );
    assert!(!log_text.contains("no --trust-key-file"), "{log_text}");

    let page = try_get(public, &format!("/trust/{site_id}?lang=en")).expect("the page");
    assert_eq!(page.status, 200);
    let page = String::from_utf8(page.body).unwrap();
    assert!(
        page.contains("through <time datetime=\"2027-05-31\">2027-05-31</time>"),
        "{page}"
    );
    let keys = try_get(public, "/.well-known/footfall-trust-keys").expect("the keys");
    let keys = KeysDocument::from_json(&String::from_utf8(keys.body).unwrap()).unwrap();
    let served = try_get(public, &format!("/trust/{site_id}.json")).expect("the credential");
    assert_eq!(served.status, 200);
    let credential: Credential = serde_json::from_slice(&served.body).unwrap();
    let verified = credential::verify(&credential, &keys).expect("a valid credential");
    let key = Keyring::load(&etc.join("issuer.key")).expect("the key keygen made");
    assert_eq!(
        credential.key_id,
        key.key_id(),
        "signed with the runbook's key"
    );
    assert_eq!(verified.payload.site, site_id);
    assert!(page.contains(&verified.fingerprint));
    assert!(page.contains(&format!("key id <code>{}</code>", key.key_id())));

    // The site-tokens step as the runbook shows it: `footfall admin-token new >>
    // tokens.toml`, then `systemctl reload` (the unit's ExecReload: SIGHUP). The service,
    // as its dynamic user, reads the file in place, and the new token manages its site.
    let made = Command::new(root.join("usr/local/bin/footfall"))
        .args(["admin-token", "new", "--site", &site_id])
        .output()
        .expect("footfall admin-token new");
    assert!(made.status.success(), "{made:?}");
    let token = String::from_utf8(made.stderr)
        .unwrap()
        .lines()
        .last()
        .expect("the token, shown once")
        .trim()
        .to_owned();
    let mut entries = std::fs::OpenOptions::new()
        .append(true)
        .open(&tokens_file)
        .unwrap();
    std::io::Write::write_all(&mut entries, &made.stdout).unwrap();
    drop(entries);
    let site_admin = |token: &str| {
        footfall_tests::footfall_server::HttpClient::connect(internal)
            .and_then(|mut client| {
                client.request(
                    "GET",
                    &format!("/admin/v1/sites/{site_id}"),
                    &[("Authorization", &format!("Bearer {token}"))],
                    b"",
                )
            })
            .expect("the admin API answers")
            .status
    };
    assert_eq!(site_admin(&token), 401, "not yet reloaded");
    let reload = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(reload.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while site_admin(&token) != 200 {
        assert!(
            Instant::now() < deadline,
            "the reloaded tokens file did not take the new token:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A restart serves the very same credential.
    stop(child);
    let mut child = start_like_systemd(root, uid, &overrides, &log);
    wait_ready(&mut child, internal, &log);
    let again = try_get(public, &format!("/trust/{site_id}.json")).expect("the credential");
    assert_eq!(
        again.body, served.body,
        "the credential changed across a restart"
    );
    stop(child);

    // The mistake the runbook warns about: pointing the service at the root-only file
    // itself. It stops at once, naming the setting, the file and the reason.
    let direct = [
        overrides[0].clone(),
        overrides[1].clone(),
        (
            "FOOTFALL_TRUST_KEY_FILE",
            etc.join("issuer.key").to_string_lossy().into_owned(),
        ),
    ];
    let mut child = start_like_systemd(root, uid, &direct, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "footfall started with an unreadable key"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("FOOTFALL_TRUST_KEY_FILE")
            && log_text.contains("issuer.key")
            && log_text.contains("Permission denied"),
        "{log_text}"
    );
}
