//! Where the machine's CPU went per call, subject against ceiling. A ratio below target
//! has two causes that call for different work: the subject's calls cost more CPU than the
//! ceiling's (only cheaper calls help), or its calls leave the machine idle while they wait
//! (overlap helps). The budget tells them apart: each side's CPU per call, whose it was,
//! how idle the machine stood, and the ratio the two would reach if both kept every core
//! busy. The measured ratio is about that ratio × (1 − subject idle) / (1 − ceiling idle).

use crate::procstat::CpuSpent;
use crate::report::{Scenario, median_of};
use serde::Serialize;
use std::fmt::Write as _;

/// What a phase cost the load generator and the whole machine per 1,000 calls (the server's
/// and PostgreSQL's share are in the phase itself), and the machine's idle share.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MachineShare {
    /// The load generator and the clients it ran (pgbench).
    pub client_cpu_s_per_1k: f64,
    /// Every process on the machine: the server, PostgreSQL and the load generator included.
    pub machine_cpu_s_per_1k: f64,
    /// The share of the machine's cores no process used during the phase.
    pub machine_idle: f64,
}

impl MachineShare {
    pub fn of(spent: &CpuSpent, calls: f64) -> Option<Self> {
        if spent.machine.total <= 0.0 || calls <= 0.0 {
            return None;
        }
        let per_k = |s: f64| s / calls * 1000.0;
        Some(Self {
            client_cpu_s_per_1k: per_k(spent.client),
            machine_cpu_s_per_1k: per_k(spent.machine.busy),
            machine_idle: spent.machine.idle_share(),
        })
    }
}

/// The medians of one side (subject or ceiling) of a scenario's rounds, µs per call, over
/// the phases that sampled the machine.
struct Side {
    server: f64,
    postgres: f64,
    client: f64,
    /// Other processes and the kernel's threads; a median of each phase's own remainder.
    rest: f64,
    machine: f64,
    idle: f64,
}

impl Side {
    fn of<'a>(phases: impl Iterator<Item = &'a crate::report::Phase>) -> Option<Self> {
        let sampled: Vec<(&crate::report::Phase, MachineShare)> =
            phases.filter_map(|p| Some((p, p.machine?))).collect();
        if sampled.is_empty() {
            return None;
        }
        let us = |f: &dyn Fn(&(&crate::report::Phase, MachineShare)) -> f64| {
            median_of(sampled.iter().map(f)) * 1000.0
        };
        Some(Self {
            server: us(&|(p, _)| p.server_cpu_s_per_1k),
            postgres: us(&|(p, _)| p.postgres_cpu_s_per_1k),
            client: us(&|(_, m)| m.client_cpu_s_per_1k),
            rest: us(&|(p, m)| {
                m.machine_cpu_s_per_1k
                    - p.server_cpu_s_per_1k
                    - p.postgres_cpu_s_per_1k
                    - m.client_cpu_s_per_1k
            }),
            machine: us(&|(_, m)| m.machine_cpu_s_per_1k),
            idle: median_of(sampled.iter().map(|(_, m)| m.machine_idle)),
        })
    }

    fn row(&self, id: &str, what: &str, at_full_machine: &str) -> String {
        format!(
            "| {id} | {what} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} % | {at_full_machine} |",
            self.server,
            self.postgres,
            self.client,
            self.rest,
            self.machine,
            self.idle * 100.0,
        )
    }
}

/// The markdown section: two rows per scenario whose phases sampled the machine.
pub fn markdown(scenarios: &[Scenario]) -> String {
    let mut rows = String::new();
    for sc in scenarios {
        let subject = Side::of(sc.rounds.iter().map(|r| &r.subject));
        let ceiling = Side::of(sc.rounds.iter().map(|r| &r.ceiling));
        let (Some(subject), Some(ceiling)) = (subject, ceiling) else {
            continue;
        };
        let at_full_machine = format!("**{:.1} %**", ceiling.machine / subject.machine * 100.0);
        let _ = writeln!(
            rows,
            "{}",
            subject.row(&sc.id, &sc.subject, &at_full_machine)
        );
        let _ = writeln!(rows, "{}", ceiling.row(&sc.id, &sc.ceiling, ""));
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Where the machine went, µs of CPU per call (median of rounds)\n"
    );
    let _ = writeln!(
        s,
        "*rest*: every other process and the kernel's own threads (in P6, the other \
         service process); the kernel counts a process's time and the machine's apart, \
         so a small rest may read below zero. *Ratio at a full machine*: the ceiling's \
         CPU per call over the subject's, the ratio both would reach if each kept every \
         core busy. The measured \
         ratio is about that × (1 − subject idle) / (1 − ceiling idle): below it where the \
         subject's calls wait more than the ceiling's, above it where the ceiling waits \
         more (one COPY, one SQL client).\n"
    );
    let _ = writeln!(
        s,
        "| id | subject, then its ceiling | server | PostgreSQL | load generator | rest | whole machine | machine idle | ratio at a full machine |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    s.push_str(&rows);
    s
}

#[cfg(test)]
mod tests {
    use super::{MachineShare, markdown};
    use crate::load::Summary;
    use crate::report::{Phase, Round, Scenario, Target};

    /// A phase of 1,000 calls/s with these CPU costs in µs per call and this idle share.
    fn phase(server: f64, postgres: f64, machine: Option<(f64, f64, f64)>) -> Phase {
        Phase {
            summary: Summary {
                calls_per_s: 1000.0,
                ok: 1000,
                errors: Default::default(),
                p50_ms: 1.0,
                p99_ms: 2.0,
                p999_ms: 3.0,
                mean_ms: 1.0,
            },
            server_cpu_s_per_1k: server / 1000.0,
            postgres_cpu_s_per_1k: postgres / 1000.0,
            batching: None,
            machine: machine.map(|(client, whole, idle)| MachineShare {
                client_cpu_s_per_1k: client / 1000.0,
                machine_cpu_s_per_1k: whole / 1000.0,
                machine_idle: idle,
            }),
        }
    }

    fn scenario(id: &str, rounds: Vec<Round>) -> Scenario {
        Scenario::new(id, "GetGuest", "Check", Target::ratio_at_least(1.0), rounds)
    }

    #[test]
    fn each_side_shows_the_median_of_its_rounds_and_the_ratio_at_a_full_machine() {
        let round = |subject_machine: f64, idle: f64| Round {
            subject: phase(30.0, 20.0, Some((10.0, subject_machine, idle))),
            ceiling: phase(8.0, 0.0, Some((6.0, 16.0, 0.05))),
        };
        // Subject rounds of 60, 80 and 64 µs: the median, 64, is over the ceiling's 16.
        let md = markdown(&[scenario(
            "P1",
            vec![round(60.0, 0.3), round(80.0, 0.1), round(64.0, 0.2)],
        )]);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| P1")).collect();
        assert_eq!(
            rows,
            [
                "| P1 | GetGuest | 30.0 | 20.0 | 10.0 | 4.0 | 64.0 | 20 % | **25.0 %** |",
                "| P1 | Check | 8.0 | 0.0 | 6.0 | 2.0 | 16.0 | 5 % |  |",
            ]
        );
    }

    #[test]
    fn a_scenario_without_the_machine_on_both_sides_is_left_out() {
        let sampled = phase(1.0, 1.0, Some((1.0, 4.0, 0.0)));
        let cases = [
            (phase(1.0, 1.0, None), sampled.clone()),
            (sampled.clone(), phase(1.0, 1.0, None)),
        ];
        for (subject, ceiling) in cases {
            let md = markdown(&[scenario("P4", vec![Round { subject, ceiling }])]);
            assert_eq!(md, "", "no section without both sides");
        }
        let md = markdown(&[scenario(
            "P2",
            vec![Round {
                subject: sampled.clone(),
                ceiling: sampled,
            }],
        )]);
        assert!(md.contains("| P2 | GetGuest |"), "{md}");
    }
}
