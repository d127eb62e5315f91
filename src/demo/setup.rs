//! What the tour runs against: one simulator per platform of `platforms::ALL`, the service's
//! secrets (files in the temp folder), and the configuration that points a destination at each
//! simulator and a small shop's catalog at them. Each platform writes its own section and says
//! its own routes (`platforms::Simulator`, `platforms::Showcase`): no platform is named here.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::platforms::{secret_file, toml_string, Entry, Purpose, Simulator, ALL};

/// The business events of the shop's catalog, in the order the tour introduces them.
pub const KINDS: [&str; 4] = ["order_paid", "refund_completed", "chargeback_opened", "lead_qualified"];

/// One platform's simulator and the demo's destination pointed at it.
pub struct Lane {
    pub platform: &'static Entry,
    /// The destination's name (`Showcase::demo_name`).
    pub name: &'static str,
    pub sim: Box<dyn Simulator>,
}

/// One simulator per platform, in [`ALL`]'s order.
pub struct Sims {
    pub lanes: Vec<Lane>,
}

impl Sims {
    pub async fn start() -> anyhow::Result<Self> {
        let mut lanes = Vec::with_capacity(ALL.len());
        for platform in ALL {
            match (platform.simulate)(Default::default()).await {
                Ok(sim) => lanes.push(Lane { platform, name: platform.showcase.demo_name, sim }),
                Err(e) => {
                    Self { lanes }.shutdown().await;
                    return Err(e).with_context(|| format!("cannot start the {} simulator", platform.label));
                }
            }
        }
        Ok(Self { lanes })
    }

    pub async fn shutdown(&self) {
        for lane in &self.lanes {
            lane.sim.shutdown().await;
        }
    }

    /// The lane of destination `name`.
    pub fn lane(&self, name: &str) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.name == name)
    }

    /// The lane whose outage the tour plays: the first platform listed.
    pub fn outage(&self) -> anyhow::Result<&Lane> {
        self.lanes.first().context("no platform to simulate")
    }

    /// Events the destination's simulator took — one per delivered delivery, if nothing was lost
    /// or sent twice.
    pub fn received(&self, destination: &str) -> Option<u64> {
        self.lane(destination).map(|l| l.sim.received())
    }

    /// What each simulator says it took, in its platform's words.
    pub fn describe(&self) -> Vec<String> {
        self.lanes.iter().map(|l| l.sim.describe()).collect()
    }
}

/// The demo's destinations, one per platform of [`ALL`].
pub fn destinations() -> Vec<&'static str> {
    ALL.iter().map(|p| p.showcase.demo_name).collect()
}

/// Secrets live in files of the temp folder: never inline in the configuration, and no
/// process-wide environment variable to set.
pub struct Secrets {
    dir: PathBuf,
    ingest: String,
    admin: String,
    stripe: String,
}

/// The demo's Stripe endpoint secret: the tour signs its payment webhooks with it, as Stripe would.
pub const STRIPE_SECRET: &str = "whsec_surety_demo";

impl Secrets {
    pub fn write(dir: &Path, ingest_token: &str, admin_token: &str) -> anyhow::Result<Self> {
        let file = |name: &str, value: &str| {
            secret_file(dir, name, value).with_context(|| format!("cannot write {}", dir.join(name).display()))
        };
        Ok(Self {
            dir: dir.to_owned(),
            ingest: file("ingest_token", ingest_token)?,
            admin: file("admin_token", admin_token)?,
            stripe: file("stripe_webhook_secret", STRIPE_SECRET)?,
        })
    }
}

/// The demo's configuration: fast retries so the outage plays out in seconds, a destination per
/// simulator, and a small shop's catalog.
pub fn config_toml(db: &Path, addr: std::net::SocketAddr, secrets: &Secrets, sims: &Sims) -> anyhow::Result<String> {
    let mut toml = format!(
        r#"[storage]
url = {db}

[server]
listen = "{addr}"

[auth]
ingest_tokens = [{ingest}]
admin_tokens = [{admin}]

[retry]
max_attempts = 10
base_delay_ms = 400
max_delay_ms = 2000

[worker]
poll_interval_ms = 100
breaker_threshold = 3
breaker_cooldown_ms = 1000
breaker_max_cooldown_ms = 4000

[log]
level = "error"

# The payment provider: Stripe's webhooks, signed with the endpoint's secret.
[sources.stripe]
signing_secret = {stripe}
"#,
        db = toml_string(&format!("sqlite://{}", db.display())),
        ingest = secrets.ingest,
        admin = secrets.admin,
        stripe = secrets.stripe,
    );
    for lane in &sims.lanes {
        let section = lane
            .sim
            .destination_toml(lane.name, &secrets.dir, Purpose::Tour)
            .with_context(|| format!("cannot write the {} destination's secrets", lane.platform.label))?;
        toml.push_str(&format!(
            "\n{section}timeout_ms = 2000\n\
             identity_wait_secs = 0 # the demo shows skipped:no_identity at once, not after a wait\n"
        ));
    }
    toml.push_str(
        "\n# The shop's browser tags send no purchase: bank transfers are confirmed days after checkout, so\n\
         # the payment provider's confirmation is the one source of purchases, for every platform.\n",
    );
    for kind in KINDS {
        toml.push_str(&format!("[catalog.{kind}]\n"));
        for lane in &sims.lanes {
            if let Some(route) = lane.platform.showcase.route(kind) {
                toml.push_str(&format!("{} = {{ event = {}{} }}\n", lane.name, toml_string(route.event), route.extra));
            }
        }
        toml.push('\n');
    }
    toml.push_str("# fulfillment_failed is deliberately absent: an operational state, kept in the ledger only.\n");
    Ok(toml)
}
