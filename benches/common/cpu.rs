//! CPU time of this process by thread, from `/proc/self/task/*/stat`: what a benchmark
//! cell cost, split by the threads' names (tokio workers, the group commit, the scorer,
//! sled's flusher, ...), so a throughput gap can be turned into microseconds per request.
//!
//! Linux only; elsewhere every snapshot is empty and the budget prints nothing. The
//! kernel counts in clock ticks (10 ms), so a cell should run for seconds.

use std::collections::BTreeMap;

/// CPU seconds (user + system) of each live thread, keyed by thread id, with its name.
#[derive(Default)]
pub struct CpuSnapshot {
    threads: BTreeMap<u32, (String, f64)>,
}

/// Ticks per second of the `stat` fields: Linux's `USER_HZ`, 100 on every architecture
/// it exports to user space.
const TICKS_PER_SEC: f64 = 100.0;

impl CpuSnapshot {
    /// Every thread's CPU time now.
    pub fn take() -> Self {
        let mut threads = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self { threads };
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some(entry) = parse_stat(&stat) {
                threads.insert(tid, entry);
            }
        }
        Self { threads }
    }

    /// CPU seconds spent since `earlier`, summed by thread group ([`group_of`]). A thread
    /// that started after `earlier` counts whole; one that ended in between is lost (the
    /// benchmarks' threads live for the whole run, except short blocking-pool tasks).
    pub fn since(&self, earlier: &CpuSnapshot) -> BTreeMap<&'static str, f64> {
        let mut groups = BTreeMap::new();
        for (tid, (name, seconds)) in &self.threads {
            let before = earlier.threads.get(tid).map_or(0.0, |(_, s)| *s);
            *groups.entry(group_of(name)).or_insert(0.0) += (seconds - before).max(0.0);
        }
        groups
    }
}

/// The thread's name and CPU seconds from one `stat` line. The name (field 2) is in
/// parentheses and may hold spaces, so the fields are counted after its closing one.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name: state (3), ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime (14), stime (15).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / TICKS_PER_SEC))
}

/// A readable group for a thread name (names are cut to 15 bytes by the kernel).
fn group_of(name: &str) -> &'static str {
    match name {
        n if n.starts_with("tokio-r") => "tokio workers",
        "group-commit" => "group commit",
        "quality" => "quality scorer",
        "inference" => "model server",
        n if n.starts_with("sled") || n == "log flusher" => "sled",
        _ => "other",
    }
}

/// One line: total CPU µs per request and its split by thread group.
pub fn budget_line(label: &str, groups: &BTreeMap<&'static str, f64>, requests: usize) -> String {
    let total: f64 = groups.values().sum();
    let per = |s: f64| s * 1e6 / requests.max(1) as f64;
    let parts: Vec<String> = groups
        .iter()
        .filter(|(_, s)| **s > 0.0)
        .map(|(g, s)| format!("{g} {:.0}", per(*s)))
        .collect();
    format!(
        "{label}: {:.0} µs CPU per request ({})",
        per(total),
        parts.join(", ")
    )
}
