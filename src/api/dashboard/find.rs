//! The console's search results (`/?view=search&q=…`) and event list (`/?view=events&…`, the
//! filters of `GET /v1/events`, a page at a time): every event with its delivery per destination,
//! state, reason and what the platform said, each linked to its timeline.

use std::fmt::{self, Write};

use super::{time, Esc, EventLink};
use crate::api::find::{search_keys, ListParams};
use crate::api::App;
use crate::core::DeliveryState;
use crate::store::search::{EventSummary, SearchResult};
use crate::store::StoreError;

/// The list's filters, as the form names them.
const FILTERS: [&str; 7] = ["kind", "source", "destination", "state", "reason", "since", "until"];

/// The search view's body (a bad query is said on the page, as a warning).
pub async fn search(app: &App, q: &str) -> Result<String, StoreError> {
    let mut out = String::from("<h2>Find</h2>");
    if q.is_empty() {
        out.push_str(
            "<p class=\"muted\">Type an event id, an order (<code>1042</code> or <code>order:1042</code>), a Stripe \
             (<code>pi_…</code>, <code>evt_…</code>, <code>re_…</code>), Shopify or Segment id, an email or phone \
             (hashed before the lookup, never kept) or a click id into the box above.</p>",
        );
        return Ok(out);
    }
    match search_keys(q) {
        Ok(keys) => write_found(&mut out, &app.store.search(keys).await?).ok(),
        Err(e) => write!(out, "<p class=\"warn\">{}</p>", Esc(&e)).ok(),
    };
    Ok(out)
}

fn write_found(out: &mut String, found: &SearchResult) -> fmt::Result {
    if found.matches.is_empty() {
        out.push_str("<p class=\"warn\" id=\"found\">Nothing found.</p>");
        return Ok(());
    }
    out.push_str("<p id=\"found\">Found ");
    for (i, m) in found.matches.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}<code>{}:{}</code> by {}", Esc(&m.subject.kind), Esc(&m.subject.id), m.by.as_str())?;
    }
    out.push_str(". Every event of it, in event-time order:</p>");
    write_events(out, &found.events)?;
    if found.truncated {
        out.push_str("<p class=\"warn\">More matched than are listed: narrow the query.</p>");
    }
    Ok(())
}

/// Events and their deliveries, one row per event.
fn write_events(out: &mut String, events: &[EventSummary]) -> fmt::Result {
    out.push_str(
        "<table class=\"events\"><thead><tr><th>occurred</th><th>event</th><th>kind</th><th>source</th>\
         <th>subject</th><th>value</th><th>deliveries</th></tr></thead><tbody>",
    );
    for e in events {
        let value = match (e.value, &e.currency) {
            (Some(v), Some(c)) => format!("{v:.2} {c}"),
            (Some(v), None) => v.to_string(),
            _ => String::new(),
        };
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}:{}</td><td class=\"n\">{}</td><td>",
            time(e.occurred_at),
            EventLink(&e.event_id),
            Esc(&e.kind),
            Esc(&e.source),
            Esc(&e.subject.kind),
            Esc(&e.subject.id),
            Esc(&value)
        )?;
        if e.deliveries.is_empty() {
            out.push_str("<span class=\"muted\">not routed</span>");
        }
        for d in &e.deliveries {
            let class = match d.state {
                DeliveryState::Delivered => "closed",
                DeliveryState::Dead | DeliveryState::Rejected | DeliveryState::InDoubt => "open",
                _ => "muted",
            };
            write!(
                out,
                "<div class=\"delivery\" data-destination=\"{}\" data-state=\"{}\">{} <span class=\"{class}\">{}{}</span> \
                 <span class=\"muted\">#{} · {} attempts</span>",
                Esc(&d.destination),
                d.state.as_str(),
                Esc(&d.destination),
                d.state.as_str(),
                d.reason.as_deref().map(|r| format!(":{}", Esc(r))).unwrap_or_default(),
                d.id,
                d.attempts
            )?;
            for m in &d.messages {
                write!(out, "<br><span class=\"warn\">{}</span>", Esc(m))?;
            }
            out.push_str("</div>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

/// The event list's body: the filter form, one page, and a link to the next.
pub async fn events(app: &App, param: impl Fn(&str) -> Option<String>) -> Result<String, StoreError> {
    let mut out = String::from("<h2>Events</h2><form method=\"get\" action=\"/\" class=\"filters\">");
    out.push_str("<input type=\"hidden\" name=\"view\" value=\"events\">");
    for name in FILTERS {
        let placeholder = match name {
            "state" => "rejected",
            "since" | "until" => "2026-12-01",
            "kind" => "order_paid",
            _ => "",
        };
        write!(
            out,
            "<label>{name} <input name=\"{name}\" value=\"{}\" placeholder=\"{placeholder}\" size=\"12\"></label> ",
            Esc(&param(name).unwrap_or_default())
        )
        .ok();
    }
    out.push_str("<button type=\"submit\">List</button></form>");
    let text = |name: &str| param(name).filter(|v| !v.is_empty());
    let state = match text("state").map(|s| s.parse::<DeliveryState>()).transpose() {
        Ok(s) => s,
        Err(e) => {
            write!(out, "<p class=\"warn\">state: {}</p>", Esc(&e)).ok();
            return Ok(out);
        }
    };
    let limit = match text("limit").map(|l| l.parse::<usize>()).transpose() {
        Ok(l) => l,
        Err(_) => {
            out.push_str("<p class=\"warn\">limit: must be a number</p>");
            return Ok(out);
        }
    };
    let params = ListParams {
        kind: text("kind"),
        source: text("source"),
        destination: text("destination"),
        state,
        reason: text("reason"),
        since: text("since"),
        until: text("until"),
        limit,
        cursor: text("cursor"),
    };
    let filter = match params.filter() {
        Ok(f) => f,
        Err(e) => {
            write!(out, "<p class=\"warn\">{}</p>", Esc(&e)).ok();
            return Ok(out);
        }
    };
    let page = app.store.list_events(filter).await?;
    if page.events.is_empty() {
        out.push_str("<p class=\"muted\">No events on this page.</p>");
    } else {
        write_events(&mut out, &page.events).ok();
    }
    if let Some(cursor) = &page.next_cursor {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("view", "events");
        for name in FILTERS.into_iter().chain(["limit"]) {
            if let Some(v) = text(name) {
                next.append_pair(name, &v);
            }
        }
        next.append_pair("cursor", cursor);
        write!(out, "<p><a id=\"next\" href=\"/?{}\">Next page</a></p>", Esc(&next.finish())).ok();
    }
    Ok(out)
}
