//! The platforms of scenario d as the benchmark runs them: every entry of `platforms::ALL`, its
//! simulator behind the arrival layer (counting only, no bodies kept), its destination's section
//! and catalog route, all from the platform's own code (`platforms::Simulator`,
//! `platforms::Showcase`). No platform is named here.

use std::time::Instant;

use crate::bench::harness::Sim;
use crate::platforms::ALL;

/// One simulator per platform, in [`ALL`]'s order.
pub(super) struct Sims {
    pub(super) lanes: Vec<Sim>,
}

impl Sims {
    pub(super) async fn start(events: usize, epoch: Instant) -> anyhow::Result<Self> {
        let mut lanes = Vec::with_capacity(ALL.len());
        for platform in ALL {
            match Sim::start(platform, events, epoch).await {
                Ok(sim) => lanes.push(sim),
                Err(e) => {
                    Self { lanes }.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(Self { lanes })
    }

    /// Every destination and its catalog route, as TOML; secrets in `dir`.
    pub(super) fn destinations(&self, dir: &std::path::Path, concurrency: usize) -> anyhow::Result<String> {
        self.lanes.iter().map(|sim| sim.destination_toml(dir, concurrency)).collect()
    }

    pub(super) async fn stop(self) {
        for sim in self.lanes {
            sim.stop().await;
        }
    }
}
