//! What a run found, as JSON (for tools) and markdown (for people), with the machine, date
//! and commit it ran on, and an SVG chart of latency against offered rate.

use crate::budget::MachineShare;
use crate::load::Summary;
use crate::pgbench::PgbenchRun;
use crate::procstat::CpuSpent;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One measured phase of load.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    #[serde(flatten)]
    pub summary: Summary,
    pub server_cpu_s_per_1k: f64,
    pub postgres_cpu_s_per_1k: f64,
    /// How the service's batchers ran during the phase; `None` for a ceiling or a path
    /// without batches.
    #[serde(flatten)]
    pub batching: Option<Batching>,
    /// The load generator's CPU and the whole machine's, `None` where not sampled.
    #[serde(flatten)]
    pub machine: Option<MachineShare>,
}

/// What a service's batchers (all together) wrote during a phase, from its /metrics
/// (`guestloop_batch_items`, `guestloop_batch_seconds`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Batching {
    pub items_per_batch: f64,
    /// The mean time a batch took to write.
    pub ms_per_batch: f64,
}

impl Phase {
    /// A phase's figures with what it cost per 1,000 of its `calls` (at least one): the
    /// server's and PostgreSQL's CPU, the load generator's and the machine's.
    pub fn with_cpu(summary: Summary, spent: &CpuSpent, calls: f64) -> Self {
        let calls = calls.max(1.0);
        let per_k = |s: f64| s / calls * 1000.0;
        Self {
            summary,
            server_cpu_s_per_1k: per_k(spent.server),
            postgres_cpu_s_per_1k: per_k(spent.postgres),
            batching: None,
            machine: MachineShare::of(spent, calls),
        }
    }

    pub fn from_pgbench(run: PgbenchRun, spent: CpuSpent, duration: Duration) -> Self {
        let calls = run.tps * duration.as_secs().max(1) as f64;
        let summary = Summary {
            calls_per_s: run.tps,
            ok: calls as u64,
            errors: BTreeMap::new(),
            // pgbench reports the mean only.
            p50_ms: run.latency_avg_ms,
            p99_ms: f64::NAN,
            p999_ms: f64::NAN,
            mean_ms: run.latency_avg_ms,
        };
        // pgbench is no server of ours: the mark it is measured from has no server pid.
        Self::with_cpu(summary, &spent, calls)
    }
}

/// Subject then ceiling, back to back.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub subject: Phase,
    pub ceiling: Phase,
}

impl Round {
    pub fn ratio(&self) -> f64 {
        self.subject.summary.calls_per_s / self.ceiling.summary.calls_per_s.max(1e-9)
    }
}

/// What the issue asks of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub min_ratio: f64,
    /// Subject p99 at most this many times the ceiling's.
    pub max_p99_times_ceiling: Option<f64>,
    /// Subject p99 at most this many milliseconds.
    pub max_p99_ms: Option<f64>,
}

impl Target {
    pub fn ratio_at_least(min_ratio: f64) -> Self {
        Self {
            min_ratio,
            max_p99_times_ceiling: None,
            max_p99_ms: None,
        }
    }

    pub fn with_p99_at_most_times_ceiling(mut self, times: f64) -> Self {
        self.max_p99_times_ceiling = Some(times);
        self
    }

    pub fn with_p99_at_most_ms(mut self, ms: f64) -> Self {
        self.max_p99_ms = Some(ms);
        self
    }

    /// How the report states it.
    pub fn describe(&self) -> String {
        let mut out = format!("≥ {:.0} %", self.min_ratio * 100.0);
        if let Some(t) = self.max_p99_times_ceiling {
            let _ = write!(out, ", p99 ≤ {t}× ceiling");
        }
        if let Some(ms) = self.max_p99_ms {
            let _ = write!(out, ", p99 ≤ {ms} ms");
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub offered_per_s: f64,
    pub achieved_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Failed calls by gRPC code name; `client_overflow` counts calls the load generator
    /// did not start because too many were already in flight.
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub id: String,
    pub subject: String,
    pub ceiling: String,
    pub target: Target,
    pub rounds: Vec<Round>,
    pub median_ratio: f64,
    pub subject_p99_ms: f64,
    pub ceiling_p99_ms: f64,
    pub met: bool,
    pub sweep: Vec<SweepPoint>,
    pub peak_rss: BTreeMap<String, f64>,
}

pub fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Scenario {
    pub fn new(id: &str, subject: &str, ceiling: &str, target: Target, rounds: Vec<Round>) -> Self {
        let median_ratio = median_of(rounds.iter().map(Round::ratio));
        let subject_p99_ms = median_of(rounds.iter().map(|r| r.subject.summary.p99_ms));
        let ceiling_p99_ms = median_of(rounds.iter().map(|r| r.ceiling.summary.p99_ms));
        let p99_ok = match target.max_p99_times_ceiling {
            Some(times) => subject_p99_ms <= times * ceiling_p99_ms,
            None => true,
        } && target.max_p99_ms.is_none_or(|ms| subject_p99_ms <= ms);
        Self {
            id: id.into(),
            subject: subject.into(),
            ceiling: ceiling.into(),
            met: median_ratio >= target.min_ratio && p99_ok,
            target,
            rounds,
            median_ratio,
            subject_p99_ms,
            ceiling_p99_ms,
            sweep: Vec::new(),
            peak_rss: BTreeMap::new(),
        }
    }

    pub fn with_sweep(mut self, sweep: Vec<SweepPoint>) -> Self {
        self.sweep = sweep;
        self
    }

    pub fn with_peak_rss(mut self, service: &str, mb: f64) -> Self {
        self.peak_rss.insert(service.into(), mb);
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub service: String,
    pub first_serving_ms: f64,
    pub restart_serving_ms: f64,
    pub idle_rss_mb: f64,
    /// Of `idle_rss_mb`, what is not mapped from files (the binary's code is).
    pub idle_anon_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub commit: String,
    pub machine: String,
    pub binaries: String,
    pub service_env: BTreeMap<String, String>,
    pub quick: bool,
    pub phase_seconds: f64,
    pub repeats: usize,
    pub scenarios: Vec<Scenario>,
    pub footprint: Vec<Footprint>,
}

/// Every scenario's peak RSS of `service`, as the footprint table lists them: P2's under
/// the bare name, P3's as "feedback-intake (import)" and the like; "–" without any.
fn peaks_of(scenarios: &[Scenario], service: &str) -> String {
    let peaks: Vec<String> = scenarios
        .iter()
        .flat_map(|sc| sc.peak_rss.iter())
        .filter_map(|(key, mb)| {
            let what = key.strip_prefix(service)?.trim();
            (what.is_empty() || what.starts_with('('))
                .then(|| format!("{mb:.1} {what}").trim_end().to_string())
        })
        .collect();
    if peaks.is_empty() {
        "–".to_string()
    } else {
        peaks.join(", ")
    }
}

/// "0", or the total and each code: "470 (ResourceExhausted 470)".
fn errors_by_code(errors: &BTreeMap<String, u64>) -> String {
    let total: u64 = errors.values().sum();
    if total == 0 {
        return "0".into();
    }
    let codes: Vec<String> = errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
    format!("{total} ({})", codes.join(", "))
}

fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "–".into()
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Guestloop benchmark, {}\n", self.date);
        let _ = writeln!(
            s,
            "Commit `{}` · {} · binaries `{}` · {} rounds of {:.0} s per phase, subject and ceiling interleaved{}\n",
            self.commit,
            self.machine,
            self.binaries,
            self.repeats,
            self.phase_seconds,
            if self.quick {
                " · QUICK RUN (figures not meaningful)"
            } else {
                ""
            }
        );
        if !self.service_env.is_empty() {
            let env: Vec<String> = self
                .service_env
                .iter()
                .map(|(k, v)| format!("`{k}={v}`"))
                .collect();
            let _ = writeln!(s, "Services ran with {}\n", env.join(", "));
        }
        let _ = writeln!(
            s,
            "| id | subject | ceiling | subject calls/s | ceiling calls/s | ratio (median) | target | subject p99 ms | ceiling p99 ms | CPU s/1k calls server + pg | items per batch (mean time) | met |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for sc in &self.scenarios {
            let subject = median_of(sc.rounds.iter().map(|r| r.subject.summary.calls_per_s));
            let ceiling = median_of(sc.rounds.iter().map(|r| r.ceiling.summary.calls_per_s));
            let server_cpu = median_of(sc.rounds.iter().map(|r| r.subject.server_cpu_s_per_1k));
            let pg_cpu = median_of(sc.rounds.iter().map(|r| r.subject.postgres_cpu_s_per_1k));
            let batching: Vec<Batching> = sc
                .rounds
                .iter()
                .filter_map(|r| r.subject.batching)
                .collect();
            let per_batch = if batching.is_empty() {
                "–".to_string()
            } else {
                format!(
                    "{:.1} in {:.2} ms",
                    median_of(batching.iter().map(|b| b.items_per_batch)),
                    median_of(batching.iter().map(|b| b.ms_per_batch))
                )
            };
            let target = sc.target.describe();
            let errors: u64 = sc
                .rounds
                .iter()
                .flat_map(|r| r.subject.summary.errors.values())
                .sum();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.0} | **{:.1} %** | {} | {} | {} | {:.3} + {:.3} | {} | {}{} |",
                sc.id,
                sc.subject,
                sc.ceiling,
                subject,
                ceiling,
                sc.median_ratio * 100.0,
                target,
                ms(sc.subject_p99_ms),
                ms(sc.ceiling_p99_ms),
                server_cpu,
                pg_cpu,
                per_batch,
                if sc.met { "yes" } else { "no" },
                if errors > 0 {
                    format!(" ({errors} errors)")
                } else {
                    String::new()
                },
            );
        }
        s.push_str(&crate::budget::markdown(&self.scenarios));
        for sc in self.scenarios.iter().filter(|sc| !sc.sweep.is_empty()) {
            let _ = writeln!(s, "\n## {} open loop: {}\n", sc.id, sc.subject);
            let _ = writeln!(s, "| offered/s | achieved/s | p50 ms | p99 ms | errors |");
            let _ = writeln!(s, "|---|---|---|---|---|");
            for p in &sc.sweep {
                let _ = writeln!(
                    s,
                    "| {:.0} | {:.0} | {} | {} | {} |",
                    p.offered_per_s,
                    p.achieved_per_s,
                    ms(p.p50_ms),
                    ms(p.p99_ms),
                    errors_by_code(&p.errors)
                );
            }
        }
        if !self.footprint.is_empty() {
            let _ = writeln!(s, "\n## P7 footprint\n");
            let _ = writeln!(
                s,
                "| service | start → SERVING, fresh schema (ms) | restart → SERVING (ms) | idle RSS MB | of which anonymous MB | peak RSS under load MB |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            for f in &self.footprint {
                let peak = peaks_of(&self.scenarios, &f.service);
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {} |",
                    f.service,
                    f.first_serving_ms,
                    f.restart_serving_ms,
                    f.idle_rss_mb,
                    f.idle_anon_mb,
                    peak
                );
            }
        }
        s
    }

    /// p99 latency against offered rate, one line per scenario with a sweep.
    pub fn svg(&self) -> String {
        let series: Vec<&Scenario> = self
            .scenarios
            .iter()
            .filter(|s| !s.sweep.is_empty())
            .collect();
        let (w, h, pad) = (720.0, 420.0, 60.0);
        let max_rate = series
            .iter()
            .flat_map(|s| s.sweep.iter().map(|p| p.offered_per_s))
            .fold(1.0_f64, f64::max);
        let max_ms = series
            .iter()
            .flat_map(|s| s.sweep.iter().map(|p| p.p99_ms))
            .filter(|x| x.is_finite())
            .fold(1.0_f64, f64::max);
        let x = |r: f64| pad + r / max_rate * (w - 2.0 * pad);
        let y = |m: f64| h - pad - m.min(max_ms) / max_ms * (h - 2.0 * pad);
        let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">p99 latency (ms) against offered rate (calls/s), open loop — {}</text>
<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{max_rate:.0} calls/s</text><text x="{}" y="{}" text-anchor="end">{max_ms:.1} ms</text>
"#,
            w / 2.0,
            self.date,
            h - pad,
            w - pad,
            h - pad,
            h - pad,
            w - pad,
            h - pad + 20.0,
            pad - 5.0,
            pad + 4.0,
        );
        for (i, sc) in series.iter().enumerate() {
            let colour = colours[i % colours.len()];
            let points: Vec<String> = sc
                .sweep
                .iter()
                .filter(|p| p.p99_ms.is_finite())
                .map(|p| format!("{:.1},{:.1}", x(p.offered_per_s), y(p.p99_ms)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" fill="{colour}">{} {}</text>"#,
                pad + 10.0,
                pad + 16.0 * (i as f64 + 1.0),
                sc.id,
                sc.subject
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::{Phase, Scenario, Target, peaks_of};
    use crate::load::Summary;
    use crate::procstat::{CpuSpent, MachineCpu};

    #[test]
    fn a_phase_costs_its_cpu_per_thousand_calls_and_never_divides_by_zero() {
        let spent = CpuSpent {
            server: 2.0,
            postgres: 3.0,
            client: 1.0,
            machine: MachineCpu {
                busy: 8.0,
                total: 10.0,
            },
        };
        let summary = Summary {
            calls_per_s: 0.0,
            ok: 0,
            errors: Default::default(),
            p50_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            mean_ms: 0.0,
        };
        // (calls, server, postgres, client, machine, all s per 1,000 calls)
        let cases = [
            (4000.0, 0.5, 0.75, 0.25, 2.0),
            (0.0, 2000.0, 3000.0, 1000.0, 8000.0),
        ];
        for (calls, server, postgres, client, machine) in cases {
            let phase = Phase::with_cpu(summary.clone(), &spent, calls);
            let share = phase.machine.expect("the machine was sampled");
            let got = [
                phase.server_cpu_s_per_1k,
                phase.postgres_cpu_s_per_1k,
                share.client_cpu_s_per_1k,
                share.machine_cpu_s_per_1k,
            ];
            assert_eq!(got, [server, postgres, client, machine], "{calls} calls");
            assert!((share.machine_idle - 0.2).abs() < 1e-12);
        }
    }

    fn with_peaks(peaks: &[(&str, f64)]) -> Scenario {
        peaks.iter().fold(
            Scenario::new(
                "P",
                "subject",
                "ceiling",
                Target::ratio_at_least(1.0),
                vec![],
            ),
            |sc, (service, mb)| sc.with_peak_rss(service, *mb),
        )
    }

    #[test]
    fn the_footprint_lists_every_peak_of_a_service_and_only_its_own() {
        let scenarios = [
            with_peaks(&[("feedback-intake", 24.5)]),
            with_peaks(&[("feedback-intake (import)", 43.5), ("guest-profile", 20.7)]),
            with_peaks(&[("metrics (GetKpis)", 32.5), ("metrics-extra", 99.0)]),
        ];
        // (service, what its row shows)
        let cases = [
            ("feedback-intake", "24.5, 43.5 (import)"),
            ("guest-profile", "20.7"),
            ("metrics", "32.5 (GetKpis)"),
            ("notification", "–"),
        ];
        for (service, shown) in cases {
            assert_eq!(peaks_of(&scenarios, service), shown, "{service}");
        }
    }
}
