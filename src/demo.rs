//! `surety demo`: a small shop's day played through a real Surety against the GA4 simulator.

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Exit after the tour instead of leaving the service up.
    #[arg(long)]
    pub exit: bool,
}

pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the demo is being written")
}
