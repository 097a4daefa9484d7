//! What a process costs, read from /proc: CPU seconds (user + system) of the server and of
//! every PostgreSQL process, resident memory now and at its peak.

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

/// CPU of the server and of PostgreSQL over a span of work.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    server: f64,
    postgres: f64,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>, data_dir: &Path) -> Self {
        Self {
            server: server_pid.map_or(0.0, cpu_seconds),
            postgres: postgres_cpu_seconds(data_dir),
        }
    }

    /// (server, postgres) CPU seconds since `self`.
    pub fn since(&self, server_pid: Option<u32>, data_dir: &Path) -> (f64, f64) {
        let now = Self::now(server_pid, data_dir);
        (
            now.server - self.server,
            (now.postgres - self.postgres).max(0.0),
        )
    }
}
