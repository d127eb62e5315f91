//! `surety events find Q` and `surety events list`: the console's search and event list on the
//! command line, over the ledger the configuration names (as `surety events show`).

use std::fmt::Write;
use std::process::ExitCode;

use clap::Args;

use super::{load, runtime, ConfigArg};
use crate::api::find::{search_keys, ListParams};
use crate::core::DeliveryState;
use crate::store::search::{EventPage, EventSummary, SearchResult};

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only events of this kind (`order_paid`).
    #[arg(long)]
    kind: Option<String>,
    /// Only events from this source (`stripe`, `shopify`, `segment`, `api`, `import`).
    #[arg(long)]
    source: Option<String>,
    /// Only events with a delivery to this destination (with --state and --reason: that delivery).
    #[arg(long)]
    destination: Option<String>,
    /// Only events with a delivery in this state (pending, delivered, rejected, dead, in_doubt, …).
    #[arg(long)]
    state: Option<DeliveryState>,
    /// Only events with a delivery ended for this reason (`invalid`, `consent_denied`, …).
    #[arg(long)]
    reason: Option<String>,
    /// Occurred at or after: a date (2026-12-01) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Occurred before: a date (the whole day included) or an RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = crate::api::find::DEFAULT_PAGE)]
    limit: usize,
    /// Continue a list where the previous page ended (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `surety events find`: exit 0 with what was found, 1 when nothing was, 2 on a bad query.
pub fn find(query: &str, config: &ConfigArg, json: bool) -> anyhow::Result<ExitCode> {
    let keys = match search_keys(query) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let config = load(config)?;
    let found = runtime()?.block_on(async {
        crate::store::open_existing(&config).await?.search(keys).await.map_err(anyhow::Error::from)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", found_text(&found));
    }
    Ok(if found.matches.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `surety events list`: exit 0 with a page (maybe empty), 2 on a bad filter.
pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let params = ListParams {
        kind: args.kind,
        source: args.source,
        destination: args.destination,
        state: args.state,
        reason: args.reason,
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
        cursor: args.cursor,
    };
    let filter = match params.filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let config = load(&args.config)?;
    let page = runtime()?.block_on(async {
        crate::store::open_existing(&config).await?.list_events(filter).await.map_err(anyhow::Error::from)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
    } else {
        print!("{}", page_text(&page));
    }
    Ok(ExitCode::SUCCESS)
}

fn found_text(found: &SearchResult) -> String {
    let mut out = String::new();
    if found.matches.is_empty() {
        out.push_str("nothing found\n");
        return out;
    }
    for m in &found.matches {
        let _ = writeln!(out, "found {}:{} by {}", m.subject.kind, m.subject.id, m.by.as_str());
    }
    out.push('\n');
    for e in &found.events {
        write_event(&mut out, e);
    }
    if found.truncated {
        out.push_str("(more matched than are listed: narrow the query)\n");
    }
    out
}

fn page_text(page: &EventPage) -> String {
    let mut out = String::new();
    if page.events.is_empty() {
        out.push_str("no events on this page\n");
    }
    for e in &page.events {
        write_event(&mut out, e);
    }
    if let Some(c) = &page.next_cursor {
        let _ = writeln!(out, "more: --cursor {c}");
    }
    out
}

fn write_event(out: &mut String, e: &EventSummary) {
    let value = match (e.value, &e.currency) {
        (Some(v), Some(c)) => format!("  {v:.2} {c}"),
        (Some(v), None) => format!("  {v}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{}  {}  {} from {}  {}:{}{value}",
        e.occurred_at.format("%Y-%m-%d %H:%M:%S"),
        e.event_id,
        e.kind,
        e.source,
        e.subject.kind,
        e.subject.id
    );
    if e.deliveries.is_empty() {
        out.push_str("    (not routed)\n");
    }
    for d in &e.deliveries {
        let reason = d.reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default();
        let next =
            d.next_attempt_at.map(|t| format!(", next attempt {}", t.format("%Y-%m-%d %H:%M:%S"))).unwrap_or_default();
        let _ = writeln!(
            out,
            "    #{:<6} {:<16} {}{reason} ({} attempts{next})",
            d.id,
            d.destination,
            d.state.as_str(),
            d.attempts
        );
        for m in &d.messages {
            let _ = writeln!(out, "        {m}");
        }
    }
}
