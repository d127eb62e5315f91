//! What `/proc` says about this process: peak memory, and CPU time of the process, of the
//! SQLite writer thread and of the whole machine (to tell a slow Surety from a busy machine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Seconds the machine's CPUs sat idle waiting for the disk.
    iowait: f64,
    /// Bytes this process caused to be written to storage (`/proc/self/io`).
    written: u64,
    process: f64,
    writers: std::collections::HashMap<String, f64>,
    sampler: WriterSampler,
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

/// Busy and iowait seconds of all CPUs since boot, from the `cpu` line of `/proc/stat`.
fn machine_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Some((busy / TICKS, ticks.get(4).copied().unwrap_or(0.0) / TICKS))
}

fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
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
        let (machine, iowait) = machine_seconds()?;
        Some(Self {
            at: Instant::now(),
            machine,
            iowait,
            written: written_bytes().unwrap_or(0),
            process,
            writers,
            sampler: WriterSampler::start(),
        })
    }

    /// What was used between `start` and now.
    pub fn since(start: Option<Self>) -> Option<CpuUse> {
        let start = start?;
        let end = Self::now()?;
        // Only the start's sampler ran over the interval.
        let _ = end.sampler.finish();
        let writer_states = start.sampler.finish();
        let wall = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let writer: f64 =
            end.writers.iter().map(|(tid, secs)| secs - start.writers.get(tid).copied().unwrap_or(0.0)).sum();
        let process = end.process - start.process;
        Some(CpuUse {
            process_cores: process / wall,
            writer_share: writer / wall,
            other_cores: ((end.machine - start.machine) - process).max(0.0) / wall,
            iowait_cores: (end.iowait - start.iowait).max(0.0) / wall,
            written_bytes: end.written.saturating_sub(start.written),
            process_seconds: process,
            writer_states,
        })
    }
}

/// CPU use over a scenario, in cores (CPU-seconds per second).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct CpuUse {
    /// This process: client, server and simulator.
    pub process_cores: f64,
    /// The SQLite writer thread, as a share of one core (1.0 = saturated).
    pub writer_share: f64,
    /// Everything else on the machine: other processes competing for the CPUs.
    pub other_cores: f64,
    /// CPUs idle while waiting for the disk (fsync, checkpoints), machine-wide.
    pub iowait_cores: f64,
    /// Bytes this process wrote to storage (ledger, WAL, checkpoints).
    pub written_bytes: u64,
    pub process_seconds: f64,
    /// Where the writer thread was when sampled every millisecond.
    pub writer_states: Option<WriterStates>,
}

impl CpuUse {
    /// Above this, other work on the machine visibly lowers the rates measured.
    pub const BUSY_MACHINE: f64 = 0.25;

    pub fn describe(&self, count: u64, unit: &str) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!(
            "CPU: this process {:.2} of {cores} cores, SQLite writer thread {:.0}% of one core; {} {unit} per \
             CPU-second of this process; disk writes {:.1} KiB per {}, iowait {:.2} cores; other processes \
             {:.2} cores{}",
            self.process_cores,
            100.0 * self.writer_share,
            super::harness::grouped(count as f64 / self.process_seconds.max(1e-9)),
            self.written_bytes as f64 / 1024.0 / count.max(1) as f64,
            unit.strip_suffix("ies").map_or_else(|| unit.trim_end_matches('s').to_owned(), |u| format!("{u}y")),
            self.iowait_cores,
            self.other_cores,
            if self.other_cores > Self::BUSY_MACHINE {
                " — the machine was busy with other work: rates are lower than on an idle one"
            } else {
                ""
            }
        )
    }

    /// "writer thread: running 40%, in disk wait 35%, waiting for work 25%".
    pub fn describe_writer(&self) -> Option<String> {
        let w = self.writer_states?;
        Some(format!(
            "SQLite writer thread, sampled every ms: running {:.0}%, in disk wait {:.0}%, waiting for work {:.0}%{}",
            100.0 * w.running,
            100.0 * w.disk,
            100.0 * w.sleeping,
            if w.sleeping < 0.15 { " — the writer is the bottleneck" } else { "" }
        ))
    }
}

/// Samples the SQLite writer thread's scheduler state every millisecond: running (on a CPU or
/// waiting for one), in disk sleep (fsync, blocked writes), or sleeping (waiting for work). A
/// writer that is never asleep is the bottleneck; one that sleeps a lot is waiting for others.
pub struct WriterSampler {
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicU64; 3]>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Shares of samples: running, disk, sleeping.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct WriterStates {
    pub running: f64,
    pub disk: f64,
    pub sleeping: f64,
}

impl WriterSampler {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 3]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let (s, c) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let mut paths = writer_stat_paths();
                let mut found_at = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    if paths.is_empty() && found_at.elapsed() > Duration::from_millis(100) {
                        paths = writer_stat_paths();
                        found_at = Instant::now();
                    }
                    for p in &paths {
                        let state = std::fs::read_to_string(p).ok().and_then(|stat| {
                            stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
                        });
                        let slot = match state {
                            Some('R') => 0,
                            Some('D') => 1,
                            Some(_) => 2,
                            None => continue,
                        };
                        c[slot].fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .ok();
        Self { stop, counts, thread }
    }

    pub fn finish(mut self) -> Option<WriterStates> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let n: Vec<f64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed) as f64).collect();
        let total: f64 = n.iter().sum();
        (total > 0.0).then(|| WriterStates { running: n[0] / total, disk: n[1] / total, sleeping: n[2] / total })
    }
}

fn writer_stat_paths() -> Vec<std::path::PathBuf> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == WRITER_THREAD))
        .map(|t| t.path().join("stat"))
        .collect()
}
