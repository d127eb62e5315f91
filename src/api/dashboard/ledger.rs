//! The overview's ledger sections: totals, each destination's queue, circuit and deliveries by
//! state and reason (adding up to what was planned), the newest deliveries that need a person and
//! the newest refused receipts.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::{age, measure, opt, time, Esc, EventLink, NEWEST};
use crate::api::App;
use crate::core::DeliveryState;
use crate::store::{Counts, DeliveryView, ReceiptView};
use crate::telemetry::DestinationLabels;

pub(super) fn write_overview(
    out: &mut String,
    app: &App,
    c: &Counts,
    stuck: &[DeliveryView],
    refused: &[ReceiptView],
    now: DateTime<Utc>,
) -> fmt::Result {
    out.push_str("<h2>Ledger</h2><div class=\"totals\">");
    for (label, n) in
        [("events", c.events), ("routed", c.routed), ("not routed", c.not_routed), ("conflicts", c.conflicts)]
    {
        write!(out, "<div><b>{n}</b>{label}</div>")?;
    }
    out.push_str("</div>\n<h2>Destinations</h2>");
    let mut names: BTreeSet<&str> = app.config.destinations.iter().map(|d| d.name()).collect();
    names.extend(c.deliveries.iter().map(|(d, ..)| d.as_str()));
    if names.is_empty() {
        out.push_str("<p class=\"muted\">No destinations configured: events are stored as not routed.</p>");
    }
    for name in names {
        write_destination(out, app, c, name, now)?;
    }
    measure::write_alerts(out, &app.alerts.view())?;
    write_stuck(out, stuck)?;
    write_refused(out, refused)
}

fn write_destination(out: &mut String, app: &App, c: &Counts, name: &str, now: DateTime<Utc>) -> fmt::Result {
    let circuit = app.metrics.circuit_open.get(&DestinationLabels { destination: name.to_owned() }).map(|g| g.get());
    let circuit = match circuit {
        Some(1..) => "<span class=\"open\">circuit open</span>",
        Some(_) => "<span class=\"closed\">circuit closed</span>",
        None => "<span class=\"muted\">no worker here</span>",
    };
    write!(out, "<div class=\"dest\"><h3>{} &nbsp;{circuit}</h3>", Esc(name))?;
    match c.queues.iter().find(|q| q.destination == name) {
        Some(q) => write!(
            out,
            "<p>Queue: <b>{}</b> pending or in flight, oldest planned {} ago.</p>",
            q.depth,
            q.oldest.map(|t| age(now, t)).unwrap_or_default()
        )?,
        None => out.push_str("<p>Queue: empty.</p>"),
    }
    let rows: Vec<_> = c.deliveries.iter().filter(|(d, ..)| d == name).collect();
    out.push_str("<table><thead><tr><th>state</th><th>reason</th><th>deliveries</th></tr></thead><tbody>");
    let mut by_state = [0u64; DeliveryState::ALL.len()];
    for (_, state, reason, n) in &rows {
        let i = DeliveryState::ALL.iter().position(|s| s == state).unwrap_or(0);
        by_state[i] += n;
        write!(out, "<tr><td>{}</td><td>{}</td><td class=\"n\">{n}</td></tr>", state.as_str(), opt(reason))?;
    }
    let planned: u64 = by_state.iter().sum();
    write!(
        out,
        "</tbody><tfoot><tr><td colspan=\"2\">planned</td><td class=\"n\">{planned}</td></tr></tfoot></table>"
    )?;
    let parts: Vec<String> = DeliveryState::ALL
        .iter()
        .zip(by_state)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect();
    if !parts.is_empty() {
        write!(out, "<p class=\"muted\">{planned} planned = {}</p>", parts.join(" + "))?;
    }
    out.push_str("</div>\n");
    Ok(())
}

fn write_stuck(out: &mut String, stuck: &[DeliveryView]) -> fmt::Result {
    write!(out, "<h2>Dead, rejected and in doubt (newest {NEWEST})</h2>")?;
    if stuck.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>");
        return Ok(());
    }
    out.push_str(
        "<p class=\"muted\">Replay with <code>surety dlq replay --id N --config FILE</code> or <code>POST \
         /v1/deliveries/replay {\"delivery_ids\": [N]}</code>. An in-doubt delivery may have arrived: check the \
         platform before replaying it, or settle it as you found it, sending nothing, with <code>surety dlq settle \
         --id N --as delivered|not_delivered --note TEXT</code> or <code>POST /v1/deliveries/settle</code>.</p>",
    );
    out.push_str(
        "<table><thead><tr><th>delivery</th><th>event</th><th>destination</th><th>state</th><th>reason</th>\
         <th>attempts</th><th>updated</th><th>replay or settle</th></tr></thead><tbody>",
    );
    for d in stuck {
        write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td><code>surety dlq replay --id {}</code><br><code>surety dlq settle --id {} --as \
             delivered|not_delivered</code></td></tr>",
            d.id,
            EventLink(&d.event_id),
            Esc(&d.destination),
            d.state.as_str(),
            opt(&d.reason),
            d.attempts,
            time(d.updated_at),
            d.id,
            d.id
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn write_refused(out: &mut String, refused: &[ReceiptView]) -> fmt::Result {
    write!(out, "<h2>Ignored and invalid receipts (newest {NEWEST})</h2>")?;
    if refused.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>");
        return Ok(());
    }
    out.push_str(
        "<table><thead><tr><th>last seen</th><th>source</th><th>receipt</th><th>topic</th><th>status</th>\
         <th>why</th><th>times</th></tr></thead><tbody>",
    );
    for r in refused {
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            time(r.last_at),
            Esc(&r.source),
            Esc(&r.receipt_id),
            Esc(&r.topic),
            Esc(&r.status),
            opt(&r.detail),
            r.times
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}
