//! What `/proc` says about this process: peak memory, and CPU time of the process, of the
//! SQLite writer thread and of the whole machine (to tell a slow Surety from a busy machine).

use std::time::Instant;

/// The process's peak resident memory (`VmHWM`), in MiB; `None` off Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time used so far by the whole process and by each SQLite writer thread, from `/proc`.
pub struct Cpu {
    at: Instant,
    /// Busy CPU seconds of the whole machine (all processes), from `/proc/stat`.
    machine: f64,
    process: f64,
    writers: std::collections::HashMap<String, f64>,
}

/// Clock ticks per second of `/proc/*/stat` times: 100 on every Linux this runs on.
const TICKS: f64 = 100.0;

/// The name the store gives its writer thread (as `/proc` shows it: 15 bytes at most).
const WRITER_THREAD: &str = "surety-sqlite-w";

fn cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS)
}

/// Busy seconds of all CPUs since boot: the `cpu` line of `/proc/stat` minus idle and iowait.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Some(busy / TICKS)
}

impl Cpu {
    pub fn now() -> Option<Self> {
        let process = cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let mut writers = std::collections::HashMap::new();
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == WRITER_THREAD {
                if let Some(secs) =
                    std::fs::read_to_string(task.path().join("stat")).ok().as_deref().and_then(cpu_seconds)
                {
                    writers.insert(task.file_name().to_string_lossy().into_owned(), secs);
                }
            }
        }
        Some(Self { at: Instant::now(), machine: machine_busy_seconds()?, process, writers })
    }

    /// "CPU: 1.9 of 2 cores busy; the SQLite writer thread 97% of one core" since `start`.
    pub fn since(start: &Option<Self>) -> Option<String> {
        let (start, end) = (start.as_ref()?, Self::now()?);
        let wall = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let writer: f64 =
            end.writers.iter().map(|(tid, secs)| secs - start.writers.get(tid).copied().unwrap_or(0.0)).sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let others = ((end.machine - start.machine) - (end.process - start.process)).max(0.0) / wall;
        Some(format!(
            "CPU: this process {:.2} of {cores} cores (SQLite writer thread {:.0}% of one core); other processes {:.2}{}",
            (end.process - start.process) / wall,
            100.0 * writer / wall,
            others,
            if others > 0.25 { " — the machine was not idle: rates are lower than they would be" } else { "" }
        ))
    }
}
