//! The alerts, recording rules and dashboard the chart ships refer only to metrics the
//! services really export. The five services run as separate processes and play the closed
//! loop (testkit scenario: check-outs, surveys over a real SMTP server, complaints that
//! breach and climb the ladder, KPIs); then every service's /metrics is scraped, and every
//! metric name in the PrometheusRule template's `expr:`s and in the dashboard's queries
//! must be in some scrape. A name no service exports is an alert that can never fire, or
//! a panel that stays empty: this test fails and names it.
//!
//! The names are taken from the PromQL with a small tokenizer (identifiers that are not
//! functions, keywords, label names or recording rules). The rules are read from the
//! template itself with its `{{ … }}` actions cut out, so metric names must stay literal
//! there (the template says so); `scripts/check-deploy.sh` checks the rendered rules parse,
//! every recording rule used is defined and every runbook_url has its section.

use guestloop_testkit::platform::Platform;
use guestloop_testkit::scenario::{self, Endpoints};
use guestloop_testkit::sinks;
use std::collections::{BTreeMap, BTreeSet};

const RULES: &str = include_str!("../../helm/guestloop/templates/prometheusrule.yaml");
const DASHBOARD: &str = include_str!("../../helm/guestloop/dashboards/guestloop.json");

/// Series Prometheus makes itself for every target, not the services.
const SYNTHETIC: [&str; 1] = ["up"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_alerts_and_the_dashboard_is_exported() {
    let wanted = referenced();
    let rule_names: BTreeSet<&str> = wanted
        .iter()
        .filter(|(_, w)| w.iter().any(|w| w.starts_with("rule ")))
        .map(|(n, _)| n.as_str())
        .collect();
    // The extraction itself must keep working: a template or dashboard it no longer reads
    // would pass vacuously.
    assert!(
        rule_names.len() >= 15,
        "only {} metric names found in the rules: {rule_names:?}",
        rule_names.len()
    );
    assert!(
        wanted.len() >= 30,
        "only {} metric names found in all: {:?}",
        wanted.len(),
        wanted.keys()
    );

    let smtp = sinks::smtp_sink();
    let spec = guestloop_e2e::platform_spec(
        "monitoring",
        "metrics",
        &scenario::config_toml(smtp.port),
        Default::default(),
    )
    .await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let endpoints = Endpoints::of(&platform);
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    // A few guests per property: check-outs, surveys sent and answered, cases opened,
    // half of them left to breach and escalate, everything rolled up into the KPIs.
    // (Seed 1 leaves two cases to breach.)
    let played = scenario::play(&endpoints, &token, 6, 1)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        played.hops > 0,
        "no case breached and escalated: {played:?}"
    );

    let mut exported = BTreeSet::new();
    for s in &platform.services {
        let body = scrape(s.admin_port).await;
        assert!(
            body.contains("grpc_server_requests_total{"),
            "{} served no call:\n{body}",
            s.name
        );
        // Every call the scenario made was to a method the service serves: none may be
        // counted as unknown (its list of served methods would have missed a service).
        let unknown: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with("grpc_server_requests_total{"))
            .filter(|l| l.contains("method=\"unknown\""))
            .collect();
        assert!(unknown.is_empty(), "{}: {unknown:?}", s.name);
        exported.extend(sample_names(&body));
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| !exported.contains(name.as_str()))
        .map(|(name, used)| format!("  {name}  (in {})", used.join("; ")))
        .collect();
    assert!(
        missing.is_empty(),
        "the alerts/dashboard refer to metrics no service exports:\n{}\n\
         (fix the name, or export the metric — at zero from the start if it only appears \
         after a rare event)",
        missing.join("\n")
    );

    for s in platform.services.iter_mut().rev() {
        let status = s.stop(std::time::Duration::from_secs(25)).unwrap().unwrap();
        assert!(status.success(), "{} exited with {status}", s.name);
    }
}

#[test]
fn the_tokenizer_finds_metric_names_and_nothing_else() {
    let names = |q: &str| metric_names(q).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (job, le) (rate(a_seconds_bucket{job=~"x|y",le="0.25"}[5m] offset 1h))
               / on (job) group_left (pod) b_total > bool 0.5 * 1e3"#
        ),
        ["a_seconds_bucket", "b_total"]
    );
    assert_eq!(
        names("histogram_quantile(0.99, sum(rate(c_bucket[$__rate_interval])) without (instance))"),
        ["c_bucket"]
    );
    assert_eq!(
        names(
            "absent(up{job=\"x\"} == 1) or guestloop:rpc_errors:ratio_rate5m > (14.4 * (1 - 99.9 / 100))"
        ),
        ["up"]
    );
    assert_eq!(
        names("topk(10, d) unless ignoring(code) count_values(\"v\", e) and f"),
        ["d", "e", "f"]
    );
    let template = "        - alert: X\n          expr: |\n            sum by (job) (rate(g_total{ {{- $sel }},code=~{{ $c | quote }}}[{{ $w }}]))\n            > {{ $t.x }}\n          for: 5m\n        - record: a:b\n          expr: h_total{ {{- $sel }}}\n";
    assert_eq!(
        rule_exprs(template)
            .iter()
            .flat_map(|(_, e)| metric_names(e))
            .collect::<Vec<_>>(),
        ["g_total", "h_total"]
    );
}

/// Every metric name the rules template and the dashboard use, with where.
fn referenced() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rule, expr) in rule_exprs(RULES) {
        for name in metric_names(&expr) {
            out.entry(name).or_default().push(format!("rule {rule}"));
        }
    }
    for (title, expr) in dashboard_exprs(DASHBOARD) {
        for name in metric_names(&expr) {
            out.entry(name)
                .or_default()
                .push(format!("dashboard {title}"));
        }
    }
    for s in SYNTHETIC {
        out.remove(s);
    }
    for used in out.values_mut() {
        used.dedup();
    }
    out
}

/// (alert or record name, expression) of every `expr:` of a rules template (inline or
/// block scalars), with the template's `{{ … }}` actions cut out.
fn rule_exprs(template: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = template.lines().collect();
    let mut out = Vec::new();
    let mut rule = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let item = line.trim_start().trim_start_matches("- ");
        if let Some(name) = item
            .strip_prefix("alert:")
            .or_else(|| item.strip_prefix("record:"))
        {
            rule = strip_actions(name).trim().to_string();
            continue;
        }
        let Some(at) = line.find("expr:") else {
            continue;
        };
        if !line[..at].trim().is_empty() && line[..at].trim() != "-" {
            continue;
        }
        let rest = line[at + "expr:".len()..].trim();
        let mut expr = String::new();
        if rest.starts_with('|') || rest.starts_with('>') {
            while i < lines.len() {
                let next = lines[i];
                let indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && indent <= at {
                    break;
                }
                expr.push_str(next);
                expr.push('\n');
                i += 1;
            }
        } else {
            expr.push_str(rest);
        }
        out.push((rule.clone(), strip_actions(&expr)));
    }
    out
}

fn strip_actions(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("}}") {
            Some(end) => &rest[start + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// (panel title, query) of every panel target and every label_values variable.
fn dashboard_exprs(json: &str) -> Vec<(String, String)> {
    let dashboard: serde_json::Value = serde_json::from_str(json).expect("the dashboard is JSON");
    let mut out = Vec::new();
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            walk(&p["panels"], out);
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    let title = p["title"].as_str().unwrap_or("?");
                    out.push((format!("panel '{title}'"), expr.to_string()));
                }
            }
        }
    }
    walk(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = v["query"]["query"].as_str().or(v["query"].as_str());
        if let Some(args) = query
            .and_then(|q| q.strip_prefix("label_values("))
            .and_then(|q| q.strip_suffix(')'))
            && let Some((selector, _label)) = args.rsplit_once(',')
        {
            let name = v["name"].as_str().unwrap_or("?");
            out.push((format!("variable ${name}"), selector.to_string()));
        }
    }
    out
}

/// Words of PromQL that are not metric names when not followed by `(`.
const KEYWORDS: [&str; 24] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
    "atan2",
    "start",
    "end",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers that are not a function
/// (followed by `(`), a keyword, a label name (inside `{…}` or a `by (…)` list) or a
/// recording rule (`level:metric:operation`, with colons). Strings, ranges (`[5m]`),
/// numbers, durations and Grafana variables (`$job`, `${x}`) are skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_string = |i: usize| -> usize {
        let quote = b[i];
        let mut j = i + 1;
        while j < b.len() && b[j] != quote {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        j + 1
    };
    let skip_group = |i: usize, open: u8, close: u8| -> usize {
        let mut depth = 0;
        let mut j = i;
        while j < b.len() {
            match b[j] {
                b'"' | b'\'' | b'`' => {
                    j = skip_string(j);
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    };
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(i),
            b'{' => i = skip_group(i, b'{', b'}'),
            b'[' => i = skip_group(i, b'[', b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                i += 1;
                if i < b.len() && b[i] == b'{' {
                    i = skip_group(i, b'{', b'}');
                } else {
                    while i < b.len() && word(b[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() || c == b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                let ident = &expr[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let call = j < b.len() && b[j] == b'(';
                let lower = ident.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if call {
                        i = skip_group(j, b'(', b')');
                    }
                } else if call || KEYWORDS.contains(&lower.as_str()) || ident.contains(':') {
                    // A function, a keyword or a recording rule.
                } else {
                    out.insert(ident.to_string());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The sample names of a Prometheus text exposition (histograms as their _bucket, _sum
/// and _count series).
fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

async fn scrape(port: u16) -> String {
    let reply = guestloop_testkit::scrape(("127.0.0.1", port))
        .await
        .expect("admin port");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}
