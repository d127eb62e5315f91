//! `surety bench`: throughput, latency percentiles and peak memory of ingest and delivery.

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Smaller run, for a quick look.
    #[arg(long)]
    pub quick: bool,
}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is being written")
}
