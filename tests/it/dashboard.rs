//! The shipped monitoring (deploy/): every `vkp_*` metric the Grafana dashboard and the
//! Prometheus alerting rules name is one the service exports, and compose provisions both.
//!
//! The exported set is read from what [`Metrics::render`] gives after one sample of every kind,
//! so a renamed or removed metric fails here, with the dashboard panel or rule that still uses
//! it. No YAML parser is a dependency, so the rules are read by a plain scan of their `expr:`
//! lines (one line each, or a block scalar under `expr: |`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vk_parser::metrics::Metrics;
use vk_parser::vk::tokens::ReleaseReason;

use crate::support::sim::{self, job, uid};

fn deploy_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names Prometheus stores for our metrics: gauges as named, counters with `_total`,
/// histograms by their family name (their `_bucket`, `_sum`, `_count` are stripped by
/// [`family_name`]). Also returns which of them are histograms.
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let m = Metrics::new();
    // One sample of every kind, so every family (labelled ones too) is in the exposition.
    m.job_started("DEFAULT", 1);
    m.job_finished("DEFAULT", 1, "failed", Some("VK_API_ERROR"), Duration::ZERO);
    m.in_flight_add(1);
    m.entries_reclaimed(1);
    m.dead_lettered("max_retries");
    m.vk_request("friends.get", "ok");
    m.rate_limit_wait(Duration::from_millis(1));
    m.rate_limiter_error();
    m.quota_calls("friends.get", 1);
    m.quota_exhausted("wall.get");
    m.token_benched("token", "wall.get", Duration::from_secs(60));
    m.set_group_lag(1);
    m.set_pending(1);
    m.set_ready(true);
    m.post_outcome("published");
    m.community_outcome("MEMBERS", "complete", "");
    let rendered = m.render();

    let mut names = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in rendered.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = rest.split_once(' ').expect("`# TYPE name kind`");
        let stored = match kind {
            "counter" => format!("{family}_total"),
            "histogram" => {
                histograms.insert(family.to_owned());
                family.to_owned()
            }
            _ => family.to_owned(),
        };
        // Each family has a sample under its stored name (or, for a histogram, its parts).
        assert!(
            rendered
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(&stored)),
            "{stored} has no sample in:\n{rendered}"
        );
        names.insert(stored);
    }
    (names, histograms)
}

/// `name` with a histogram's series suffix removed when what is left is a histogram.
fn family_name(name: &str, histograms: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(family) = name.strip_suffix(suffix) {
            if histograms.contains(family) {
                return family.to_owned();
            }
        }
    }
    name.to_owned()
}

/// Every `vkp_*` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = Vec::new();
    for (at, _) in expr.match_indices("vkp_") {
        if expr[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let name: String = expr[at..].chars().take_while(|c| is_ident(*c)).collect();
        names.push(name);
    }
    names
}

/// The dashboard's PromQL: every panel target's `expr` and every templating query, each with
/// where it was found.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&serde_json::Value> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        // Panels inside a collapsed row are nested in it.
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
    }
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((format!("panel {title:?}"), expr.to_owned()));
            }
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let name = var["name"].as_str().unwrap_or("?");
        for query in [&var["definition"], &var["query"], &var["query"]["query"]] {
            if let Some(q) = query.as_str() {
                out.push((format!("variable {name:?}"), q.to_owned()));
            }
        }
    }
    out
}

/// The alerting rules' PromQL, by a line scan: each `expr:` value, with its alert's name.
fn alert_exprs(rules: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut alert = String::from("?");
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(name) = trimmed
            .strip_prefix("- alert:")
            .or_else(|| trimmed.strip_prefix("alert:"))
        {
            alert = name.trim().to_owned();
        }
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        let expr = if value.starts_with('|') || value.starts_with('>') {
            // A block scalar: the lines indented deeper than `expr:`.
            let mut block = Vec::new();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push(next.trim().to_owned());
                lines.next();
            }
            block.join(" ")
        } else {
            value.to_owned()
        };
        out.push((format!("alert {alert}"), expr));
    }
    out
}

/// Names in `exprs` that the service does not export, by where they were used.
fn unknown_names(exprs: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let (exported, histograms) = exported();
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (place, expr) in exprs {
        for name in metric_names(expr) {
            if !exported.contains(&family_name(&name, &histograms)) {
                unknown.entry(name).or_default().push(place.clone());
            }
        }
    }
    unknown
}

/// Every `vkp_*` name of the expressions, suffixes stripped.
fn used_names(exprs: &[(String, String)]) -> BTreeSet<String> {
    let (_, histograms) = exported();
    exprs
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .map(|n| family_name(&n, &histograms))
        .collect()
}

#[test]
fn the_scan_finds_names_and_strips_histogram_suffixes() {
    assert_eq!(
        metric_names(r#"sum(rate(vkp_a_total[5m])) / x_vkp_b + on() vkp_c{l="vkp_d"}"#),
        ["vkp_a_total", "vkp_c", "vkp_d"]
    );
    let histograms = BTreeSet::from(["vkp_job_duration_seconds".to_owned()]);
    assert_eq!(
        family_name("vkp_job_duration_seconds_bucket", &histograms),
        "vkp_job_duration_seconds"
    );
    // A counter that happens to end in `_count` keeps its name.
    assert_eq!(family_name("vkp_x_count", &histograms), "vkp_x_count");
    let rules = "      - alert: A\n        expr: vkp_one > 0\n      - alert: B\n        expr: |\n          vkp_two\n            > 0\n        for: 1m\n";
    assert_eq!(
        alert_exprs(rules),
        [
            ("alert A".to_owned(), "vkp_one > 0".to_owned()),
            ("alert B".to_owned(), "vkp_two > 0".to_owned()),
        ]
    );
}

#[test]
fn the_dashboard_names_only_exported_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("deploy/grafana/vk-parser.json"))
            .expect("the dashboard is JSON");
    let exprs = dashboard_exprs(&dashboard);
    assert_eq!(unknown_names(&exprs), BTreeMap::new());
    // The scan saw the dashboard's subjects, so an empty answer above is not a vacuous one.
    let used = used_names(&exprs);
    for name in [
        "vkp_jobs_finished_total",
        "vkp_job_duration_seconds",
        "vkp_jobs_in_flight",
        "vkp_vk_requests_total",
        "vkp_rate_limit_wait_seconds_total",
        "vkp_vk_quota_calls_total",
        "vkp_vk_quota_exhausted_total",
        "vkp_vk_tokens_benched",
        "vkp_group_lag",
        "vkp_group_pending",
        "vkp_dead_lettered_total",
        "vkp_posts_total",
        "vkp_communities_total",
    ] {
        assert!(used.contains(name), "the dashboard shows no {name}");
    }
}

#[test]
fn the_dashboard_uses_the_provisioned_data_source() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("deploy/grafana/vk-parser.json")).expect("JSON");
    let provisioned = deploy_file("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert!(provisioned.contains("uid: prometheus"), "{provisioned}");
    let variable = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(variable["current"]["value"], "prometheus");
    let name = variable["name"].as_str().expect("its name");
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"],
            format!("${{{name}}}"),
            "{}",
            panel["title"]
        );
    }
}

#[test]
fn the_alerting_rules_name_only_exported_metrics() {
    let rules = deploy_file("deploy/prometheus/alerts.yml");
    let exprs = alert_exprs(&rules);
    assert_eq!(unknown_names(&exprs), BTreeMap::new());
    let used = used_names(&exprs);
    for name in [
        "vkp_dead_lettered_total",
        "vkp_group_lag",
        "vkp_vk_tokens_benched",
        "vkp_ready",
        "vkp_rate_limiter_errors_total",
    ] {
        assert!(used.contains(name), "no rule watches {name}");
    }
    assert!(
        exprs
            .iter()
            .any(|(_, e)| e.contains(r#"up{job="vk-parser"}"#)),
        "no rule watches the scrape itself"
    );
}

#[test]
fn every_alert_waits_has_a_severity_and_says_what_happened() {
    let rules = deploy_file("deploy/prometheus/alerts.yml");
    // Split into one chunk per rule and check each has its parts.
    let chunks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    assert!(chunks.len() >= 5, "{} rules", chunks.len());
    for chunk in chunks {
        let name = chunk.lines().next().unwrap_or("").trim();
        for key in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(chunk.contains(key), "alert {name} has no {key}");
        }
    }
}

#[test]
fn compose_runs_monitoring_under_its_profile_with_the_dashboard_mounted() {
    let compose = deploy_file("docker-compose.yml");
    assert!(
        compose.contains(r#"profiles: ["monitoring"]"#),
        "no monitoring profile"
    );
    assert!(compose.contains("./deploy/grafana/vk-parser.json:"));
    assert!(compose.contains("./deploy/grafana/provisioning:/etc/grafana/provisioning"));
    assert!(compose.contains("./deploy/prometheus/alerts.yml:"));
    let prometheus = deploy_file("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("alerts.yml"));
    assert!(prometheus.contains("names: [vk-parser]"));
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(rendered: &str, series: &str) -> Option<f64> {
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_daily_quota_is_counted_and_benches_the_token() {
    // users.get may be called once per token per quota day: the second call on the author's
    // token gets 29, benches that token for users.get and moves the job to a global token.
    let sim = sim::start(|c| c.quotas = vec!["users.get=1".to_owned()]).await;
    let metrics = Arc::new(Metrics::new());
    let orchestrator = sim::connect(&sim).with_metrics(metrics.clone());
    let author = sim.named().open;
    let mut session = orchestrator.session(&job("q1"), uid(author)).await.unwrap();
    let params = sim::users_get(1);
    session.call("users.get", &params).await.unwrap();
    session.call("users.get", &params).await.unwrap();
    assert_eq!(session.leased_count(), 1, "moved to a global token");
    session.finish(ReleaseReason::Completed).await;

    let rendered = metrics.render();
    let method = r#"{method="users.get"}"#;
    let exhausted = sample(&rendered, &format!("vkp_vk_quota_exhausted_total{method}"));
    assert!(exhausted >= Some(1.0), "{rendered}");
    let benched = sample(&rendered, &format!("vkp_vk_tokens_benched{method}"));
    assert!(benched >= Some(1.0), "{rendered}");
    let calls = sample(&rendered, &format!("vkp_vk_quota_calls_total{method}"));
    assert!(calls >= Some(2.0), "{rendered}");
}
