//! `surety import FILE`: backfill of canonical events from CSV or NDJSON (offline sales, bank
//! transfers, CRM exports) straight into the ledger the configuration names (ADR 0003).
//!
//! Every row goes through the API's canonical parser, so validation is identical, and batches
//! are committed through `ingest::intake::import` (one `Store::intake` each), so dedupe, identity
//! join and planning are exactly the API's. Planning rules come from the configuration alone: no
//! adapter is built and no destination secret is read, since nothing is sent from here. Deliveries planned here are sent by `surety serve`: the ledger is the queue. A reader
//! thread parses while earlier batches commit; after each commit (in file order) the rejected
//! rows are appended to the reject file and the checkpoint moves past the batch, so a rerun
//! continues where a stopped import left off. A bad row is rejected, never fatal.

mod checkpoint;
#[doc(hidden)]
pub mod fuzz_rows;
mod progress;
mod read_csv;
mod read_ndjson;
mod reader;
mod rejects;
mod rows;
mod summary;
mod validate;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::checkpoint::{Checkpoint, PrefixHash};
use self::read_csv::{CsvOptions, CsvRows};
use self::read_ndjson::NdjsonRows;
use self::reader::{read_batches, Batch};
use self::rejects::RejectFile;
pub use self::rows::{parse_map, Mapping};
use self::rows::{ReadError, Rows};
use self::summary::{Counts, Summary};
pub use self::validate::{validate, ValidateArgs};
use crate::config::Config;
use crate::core::Kind;
use crate::store::{IngestResult, StoreError};

/// Batches committing at once: one prepares (hashing, planning) while the other is written.
const IN_FLIGHT: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
}

/// The file and how to read it: what `surety import` and `surety validate` share.
#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// The CSV or NDJSON file of canonical events.
    pub file: PathBuf,
    /// The TOML configuration naming the ledger, the catalog and the destinations (defaults apply
    /// without one; SURETY_… variables override; no destination secret is read).
    #[arg(long, short, env = "SURETY_CONFIG")]
    pub config: Option<PathBuf>,
    /// csv or ndjson [default: from the extension: .csv; .ndjson or .jsonl]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Read the CSV header or NDJSON top-level key OLD as the canonical field NEW, dotted when
    /// nested (`Email=identity.email`); `OLD=` ignores it. Repeatable.
    #[arg(long = "map", value_name = "OLD=NEW", value_parser = parse_map)]
    pub map: Vec<(String, String)>,
    /// The kind of rows that state none.
    #[arg(long)]
    pub kind: Option<String>,
    /// The events' source, as the ledger records it.
    #[arg(long, default_value = "import")]
    pub source: String,
    /// The CSV field delimiter.
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub input: FileArgs,
    /// Where progress is recorded [default: FILE.checkpoint].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Ignore the checkpoint and read the file from its start (committed rows come back as duplicates).
    #[arg(long)]
    pub restart: bool,
    /// Where rejected rows go, one JSON object per line [default: FILE.rejects.ndjson].
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Rows per ledger transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A batch's commit (`ingest::intake::import`), running.
type Commit = JoinHandle<Result<Vec<IngestResult>, StoreError>>;

/// Runs the import; the exit code is 1 when no row of the file was usable.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let file = args.input.file.as_path();
    let Input { format, delimiter } = Input::check(&args.input)?;
    let checkpoint_path = args.checkpoint.clone().unwrap_or_else(|| beside(file, ".checkpoint"));
    let rejects_path = args.rejects.clone().unwrap_or_else(|| beside(file, ".rejects.ndjson"));

    let open = || File::open(file).with_context(|| format!("cannot open {}", file.display()));
    let input = open()?;
    let size = input.metadata().with_context(|| format!("cannot read {}", file.display()))?.len();
    let mut prefix = PrefixHash::new(open()?);
    let resume = if args.restart { None } else { Checkpoint::load(&checkpoint_path)? };
    if let Some(cp) = &resume {
        check_resume(cp, format, &mut prefix, file, &checkpoint_path)?;
    }
    let at = resume.as_ref().map(Checkpoint::position);
    let rows = open_rows(input, &args.input, Input { format, delimiter }, at)?;

    // Destination secrets are not read: the import plans deliveries, `surety serve` sends them.
    let config = Config::load_for_planning(args.input.config.as_deref())?;
    let store = crate::store::open(&config).await?;
    // Planning only: no adapter is built, so no destination secret has to resolve here.
    let planner = Arc::new(crate::platforms::planner_from_config(&config));
    let rejects = RejectFile::open(&rejects_path, resume.as_ref().map(|c| c.rejects_len))?;

    let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
    let (source, batch_size) = (args.input.source.clone(), args.batch_size as usize);
    std::thread::Builder::new()
        .name("surety-import-reader".into())
        .spawn(move || read_batches(rows, &source, batch_size, tx))
        .context("cannot start the reader thread")?;

    let earlier = resume.as_ref().map(|c| c.totals.clone()).unwrap_or_default();
    let progress = progress::Progress::new(size, at.map_or(0, |p| p.offset));
    let mut books =
        Books { format, checkpoint: &checkpoint_path, rejects, prefix, earlier, run: Counts::default(), progress };
    let mut inflight: VecDeque<(Batch, Option<Commit>)> = VecDeque::new();
    let mut read_failure = None;
    let mut reading = true;
    loop {
        while reading && inflight.len() < IN_FLIGHT {
            match rx.recv().await {
                Some(Ok(mut batch)) => {
                    let events = std::mem::take(&mut batch.events);
                    let task = (!events.is_empty()).then(|| {
                        let (store, planner) = (store.clone(), planner.clone());
                        tokio::spawn(async move {
                            crate::ingest::intake::import(&*store, planner, events, Utc::now()).await
                        })
                    });
                    inflight.push_back((batch, task));
                }
                Some(Err(e)) => {
                    read_failure = Some(e);
                    reading = false;
                }
                None => reading = false,
            }
        }
        let Some((batch, task)) = inflight.pop_front() else { break };
        let results = match task {
            None => Ok(Vec::new()),
            Some(task) => task.await.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())),
        };
        match results {
            Ok(results) => books.settle(&batch, &results, file)?,
            Err(e) => {
                books.progress.finish();
                anyhow::bail!(
                    "storing the rows from line {line} on failed: {e}\nthe rows before line {line} are \
                     committed; run the same command again to continue from there",
                    line = batch.first_line
                );
            }
        }
    }
    books.progress.finish();
    if let Some(e) = read_failure {
        anyhow::bail!(
            "reading {} failed: {e}\nthe rows before it are committed; run the same command again to continue",
            file.display()
        );
    }

    let (run, mut totals) = (books.run, books.earlier);
    totals.add(&run);
    let mut summary = Summary::new(file, format.name(), &run, &totals, started.elapsed());
    summary.resumed_at_line = at.map(|p| p.line);
    summary.rejects_file = (totals.rejected > 0).then_some(rejects_path.as_path());
    summary.checkpoint = &checkpoint_path;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.text());
    }
    if totals.usable() > 0 {
        if run.rows == 0 && at.is_some() {
            eprintln!("nothing new in {} since the checkpoint; --restart reads it again", file.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Nothing to continue from: the next run starts afresh.
    let _ = std::fs::remove_file(&checkpoint_path);
    if totals.rows == 0 {
        eprintln!("error: {} has no rows", file.display());
    } else {
        eprintln!(
            "error: no usable row in {}: all {} were rejected (see {})",
            file.display(),
            totals.rows,
            rejects_path.display()
        );
    }
    Ok(ExitCode::from(1))
}

/// What follows each commit, in file order: the counts, the reject file, the checkpoint, the
/// progress shown.
struct Books<'a> {
    format: Format,
    checkpoint: &'a Path,
    rejects: RejectFile,
    prefix: PrefixHash,
    /// What earlier runs over this file counted (from the checkpoint).
    earlier: Counts,
    run: Counts,
    progress: progress::Progress,
}

impl Books<'_> {
    fn settle(&mut self, batch: &Batch, results: &[IngestResult], file: &Path) -> anyhow::Result<()> {
        self.run.rows += batch.rows;
        self.run.rejected += batch.rejects.len() as u64;
        self.run.add_results(results);
        // Rejects first: the checkpoint records the reject file's length, and a rerun cuts it there.
        self.rejects.append(&batch.rejects)?;
        self.prefix.advance(batch.end.offset).with_context(|| format!("cannot read {}", file.display()))?;
        let mut totals = self.earlier.clone();
        totals.add(&self.run);
        Checkpoint::new(self.format.name(), batch.end, self.prefix.hex(), self.rejects.len(), totals)
            .save(self.checkpoint)
            .with_context(|| format!("cannot write the checkpoint {}", self.checkpoint.display()))?;
        self.progress.update(batch.end.offset, self.run.rows);
        Ok(())
    }
}

/// Refuses a checkpoint that does not describe this file as it is now.
fn check_resume(
    cp: &Checkpoint,
    format: Format,
    prefix: &mut PrefixHash,
    file: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    let changed = || {
        anyhow::anyhow!(
            "{} changed since the checkpoint {} was written (its first {} bytes differ); \
             rerun with --restart to import it from the start (committed rows come back as duplicates)",
            file.display(),
            path.display(),
            cp.offset
        )
    };
    if cp.format != format.name() {
        anyhow::bail!("the checkpoint {} is for {} input; rerun with --restart", path.display(), cp.format);
    }
    prefix.advance(cp.offset).map_err(|_| changed())?;
    if prefix.hex() != cp.prefix_sha256 {
        return Err(changed());
    }
    Ok(())
}

/// What the import and `surety validate` check about their flags before reading a row.
#[derive(Clone, Copy)]
struct Input {
    format: Format,
    delimiter: u8,
}

impl Input {
    fn check(args: &FileArgs) -> anyhow::Result<Self> {
        let file = args.file.as_path();
        let Some(format) = args.format.or_else(|| Format::of(file)) else {
            anyhow::bail!(
                "cannot tell the format of {} from its extension: give --format csv or --format ndjson",
                file.display()
            )
        };
        if let Some(k) = &args.kind {
            Kind::parse(k).map_err(|m| anyhow::anyhow!("--kind {k}: {m}"))?;
        }
        if args.source.trim().is_empty() || args.source.trim() != args.source {
            anyhow::bail!("--source must be a name without surrounding whitespace");
        }
        let Ok(delimiter) = u8::try_from(args.delimiter) else {
            anyhow::bail!("--delimiter must be one ASCII character")
        };
        Ok(Self { format, delimiter })
    }
}

/// The rows of `input` (the file `args.file`), from `at` on.
fn open_rows(input: File, args: &FileArgs, how: Input, at: Option<rows::Position>) -> anyhow::Result<Box<dyn Rows>> {
    let (file, kind) = (args.file.as_path(), args.kind.as_deref());
    let mapping = Mapping::new(&args.map);
    Ok(match how.format {
        Format::Csv => {
            let options = CsvOptions { delimiter: how.delimiter, mapping: &mapping, default_kind: kind };
            Box::new(CsvRows::open(input, &options, at).map_err(|e| read_error(e, file))?)
        }
        Format::Ndjson => Box::new(
            NdjsonRows::open(input, mapping, kind, at).with_context(|| format!("cannot read {}", file.display()))?,
        ),
    })
}

fn read_error(e: ReadError, file: &Path) -> anyhow::Error {
    match e {
        ReadError::Io(e) => anyhow::anyhow!("cannot read {}: {e}", file.display()),
        ReadError::Header(problems) => anyhow::anyhow!(
            "the header of {} does not name canonical event fields:\n  {}",
            file.display(),
            problems.join("\n  ")
        ),
    }
}

/// `FILE` with `suffix` added to its name.
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}
