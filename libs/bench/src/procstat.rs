//! What a process costs, read from /proc: CPU seconds (user + system) of the server, of
//! every PostgreSQL process and of the load generator, the whole machine's busy and idle
//! time, resident memory now and at its peak.

use std::path::Path;

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux everywhere).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used by `pid` so far (its own threads, not reaped children).
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, 11, 12)
}

/// CPU seconds of `pid`'s children that have exited and been reaped (cutime + cstime).
pub fn reaped_children_cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, 13, 14)
}

/// The sum of two tick fields of /proc/<pid>/stat, counted after the command name.
fn stat_seconds(pid: u32, a: usize, b: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces; fields after it are space separated.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17 of stat, i.e. 11-14 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(a) + ticks(b)) / TICKS_PER_SECOND
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The postmaster (first line of postmaster.pid) and every process it started.
pub fn postgres_pids(data_dir: &Path) -> Vec<u32> {
    let Some(postmaster) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let mut pids = vec![postmaster];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && parent(pid) == Some(postmaster)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// CPU seconds of the whole PostgreSQL cluster: the processes running now, and the
/// backends that have exited (the postmaster reaps them, so their time is in its children's
/// total: pgbench's and COPY's connections close before the phase is read).
pub fn postgres_cpu_seconds(data_dir: &Path) -> f64 {
    let pids = postgres_pids(data_dir);
    let reaped = pids
        .first()
        .map_or(0.0, |&p| reaped_children_cpu_seconds(p));
    pids.into_iter().map(cpu_seconds).sum::<f64>() + reaped
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now, MB.
pub fn rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmRSS:") as f64 / 1024.0
}

/// Resident memory now that is the process's own (heap, stacks), MB: RSS less the mapped
/// files, chiefly the binary's code, which every process of the same binary on a node
/// shares through the page cache.
pub fn anon_rss_mb(pid: u32) -> f64 {
    status_kb(pid, "RssAnon:") as f64 / 1024.0
}

/// The most resident memory the process ever had, MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmHWM:") as f64 / 1024.0
}

/// The whole machine's CPU time so far, from the first line of /proc/stat, in CPU-seconds
/// (two cores count two seconds per second).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCpu {
    /// user, nice, system, irq and softirq.
    pub busy: f64,
    /// busy, idle and iowait: the time the machine's cores ran for this machine. Steal (the
    /// hypervisor running another guest) is left out: no process here could have used it.
    pub total: f64,
}

impl MachineCpu {
    pub fn now() -> Self {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().next().and_then(parse_cpu_line))
            .unwrap_or_default()
    }

    /// The share of the machine's time that no process used.
    pub fn idle_share(&self) -> f64 {
        if self.total > 0.0 {
            1.0 - self.busy / self.total
        } else {
            f64::NAN
        }
    }
}

/// The aggregate `cpu` line of /proc/stat: `cpu user nice system idle iowait irq softirq
/// steal guest guest_nice` in ticks (guest time is already counted in user; steal is not
/// this machine's).
fn parse_cpu_line(line: &str) -> Option<MachineCpu> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<f64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, _steal] = ticks[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq;
    Some(MachineCpu {
        busy: busy / TICKS_PER_SECOND,
        total: (busy + idle + iowait) / TICKS_PER_SECOND,
    })
}

/// CPU seconds of this process, the load generator, and of the children it has reaped
/// (pgbench, when it is the ceiling's client). A child reaped inside a phase brings its
/// whole life's CPU with it: the services are children too, and are stopped between
/// phases, never inside one.
pub fn own_cpu_seconds() -> f64 {
    let me = std::process::id();
    cpu_seconds(me) + reaped_children_cpu_seconds(me)
}

/// CPU spent over a span of work, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    pub server: f64,
    pub postgres: f64,
    /// The load generator (this process) and the clients it ran (pgbench).
    pub client: f64,
    pub machine: MachineCpu,
}

/// CPU of the server, PostgreSQL, the load generator and the machine over a span of work.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    server: f64,
    postgres: f64,
    client: f64,
    machine: MachineCpu,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>, data_dir: &Path) -> Self {
        Self {
            server: server_pid.map_or(0.0, cpu_seconds),
            postgres: postgres_cpu_seconds(data_dir),
            client: own_cpu_seconds(),
            machine: MachineCpu::now(),
        }
    }

    /// What was spent since `self`.
    pub fn since(&self, server_pid: Option<u32>, data_dir: &Path) -> CpuSpent {
        let now = Self::now(server_pid, data_dir);
        CpuSpent {
            server: now.server - self.server,
            postgres: (now.postgres - self.postgres).max(0.0),
            client: now.client - self.client,
            machine: MachineCpu {
                busy: now.machine.busy - self.machine.busy,
                total: now.machine.total - self.machine.total,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MachineCpu, parse_cpu_line};

    #[test]
    fn the_machine_line_is_read_as_busy_and_total_seconds() {
        // (line, what it reads as)
        let cases = [
            (
                "cpu  1000 50 300 8000 100 20 30 500 0 0",
                Some(MachineCpu {
                    busy: 14.0,
                    total: 95.0,
                }),
            ),
            (
                "cpu 100 0 100 800 0 0 0 0",
                Some(MachineCpu {
                    busy: 2.0,
                    total: 10.0,
                }),
            ),
            ("cpu0 1000 50 300 8000 100 20 30 500 0 0", None),
            ("cpu 1000 50 300", None),
            ("cpu 1000 fifty 300 8000 100 20 30 500", None),
            ("intr 12345", None),
        ];
        for (line, read) in cases {
            assert_eq!(parse_cpu_line(line), read, "{line}");
        }
    }

    #[test]
    fn the_idle_share_is_what_no_process_used() {
        let m = MachineCpu {
            busy: 1.5,
            total: 2.0,
        };
        assert!((m.idle_share() - 0.25).abs() < 1e-12);
        assert!(MachineCpu::default().idle_share().is_nan());
    }
}
