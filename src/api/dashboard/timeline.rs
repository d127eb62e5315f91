//! One event's page on the dashboard (`GET /?event=ID`): the event, what was joined to it from the
//! identity bridge (field names, never values), for a conflict which fields differed, for a
//! refund or chargeback its order and what it became at each platform, its deliveries with the
//! console's replay and settle forms, and one time-ordered list of attempts (each with the exact
//! request it sent, while kept, and the platform's answer), replays, settlements and conflicts.
//! Every value is escaped.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::{opt, time, Esc, EventLink};
use crate::api::App;
use crate::core::{DeliveryState, Event};
use crate::store::{AttemptView, DeliveryView, EventView};

/// The longest request body shown on the page, in bytes (a batch of a thousand events is
/// larger; the hash on the line identifies the whole).
const MAX_SHOWN_BODY: usize = 64 * 1024;

/// The event's page: reads what else the page needs (the subject's other events) from the ledger.
pub(super) async fn write_event_page(out: &mut String, app: &App, v: &EventView, csrf: &str) -> fmt::Result {
    // The subject's other events, per destination this one went to: a refund's order.
    let mut history: Vec<Event> = Vec::new();
    let destinations: BTreeSet<&str> = v.deliveries.iter().map(|d| d.destination.as_str()).collect();
    for d in destinations {
        if let Ok(events) = app.store.subject_history(&v.event.subject, d).await {
            for (e, _) in events {
                if !history.iter().any(|h| h.event_id == e.event_id) {
                    history.push(e);
                }
            }
        }
    }
    history.sort_by_key(|e| e.occurred_at);
    write_timeline(out, v, &history, csrf)
}

pub(super) fn write_timeline(out: &mut String, v: &EventView, history: &[Event], csrf: &str) -> fmt::Result {
    let e = &v.event;
    write!(out, "<h2>Event <code>{}</code></h2><table><tbody>", Esc(e.event_id.as_str()))?;
    let rows = [
        ("kind", e.kind.as_str().to_owned()),
        ("source", e.source.clone()),
        ("subject", format!("{}:{}", e.subject.kind, e.subject.id)),
        ("occurred", time(e.occurred_at)),
        ("received", time(e.received_at)),
        ("value", value(e)),
        ("routing", v.routing.to_string()),
        ("content hash", v.content_hash.clone()),
    ];
    for (k, val) in rows {
        write!(out, "<tr><th>{k}</th><td>{}</td></tr>", Esc(&val))?;
    }
    out.push_str("</tbody></table>\n");
    write_joined(out, e)?;
    write_order(out, v, history)?;
    write_deliveries(out, v, csrf)?;
    write_lines(out, v)
}

fn value(e: &Event) -> String {
    match (e.value, &e.currency) {
        (Some(v), Some(c)) => format!("{v} {}", c.as_str()),
        (Some(v), None) => v.to_string(),
        _ => String::new(),
    }
}

/// What ingest filled in from the identity bridge: the field names and the bridge entries they
/// came from (the subject's own, then the user's the event names), never the values.
fn write_joined(out: &mut String, e: &Event) -> fmt::Result {
    out.push_str("<h3>Joined from the identity bridge</h3>");
    if e.joined.is_empty() {
        out.push_str("<p class=\"muted\">Nothing: the event carried everything it was sent with.</p>");
        return Ok(());
    }
    let subject = format!("{}:{}", e.subject.kind, e.subject.id);
    let user = e.identity.user_id.as_deref().filter(|u| e.subject.kind != "user" || e.subject.id != *u);
    let from = match user {
        Some(u) => format!(
            "the bridge entry of <code>{}</code>, else of <code>user:{}</code> (the event's user_id)",
            Esc(&subject),
            Esc(u)
        ),
        None => format!("the bridge entry of <code>{}</code>", Esc(&subject)),
    };
    write!(
        out,
        "<p>Filled in at ingest (or when a later capture of the subject came) from {from}; values are not \
         shown, personal ones are held only as hashes.</p><ul class=\"joined\">"
    )?;
    for field in &e.joined {
        write!(out, "<li><code>{}</code></li>", Esc(field))?;
    }
    out.push_str("</ul>\n");
    Ok(())
}

/// For an event that follows others of its subject (a refund, a chargeback): its order, and
/// what it became at each platform.
fn write_order(out: &mut String, v: &EventView, history: &[Event]) -> fmt::Result {
    let e = &v.event;
    let Some(order) = history.iter().find(|h| h.event_id != e.event_id && h.occurred_at <= e.occurred_at) else {
        return Ok(());
    };
    write!(
        out,
        "<h3>Order</h3><p>This {} adjusts {} ({}, {}, occurred {}).</p>",
        Esc(e.kind.as_str()),
        EventLink(order.event_id.as_str()),
        Esc(order.kind.as_str()),
        Esc(&value(order)),
        time(order.occurred_at)
    )?;
    let others: Vec<&Event> =
        history.iter().filter(|h| h.event_id != e.event_id && h.event_id != order.event_id).collect();
    if !others.is_empty() {
        out.push_str("<p>Other events of the subject: ");
        for (i, o) in others.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write!(out, "{} ({})", EventLink(o.event_id.as_str()), Esc(o.kind.as_str()))?;
        }
        out.push_str(".</p>");
    }
    out.push_str(
        "<table><thead><tr><th>destination</th><th>became</th><th>state</th><th>value and adjustment</th></tr>\
         </thead><tbody>",
    );
    for d in &v.deliveries {
        // What the platform took: the detail of the delivered attempt (Google Ads names the
        // restated value there), else the event's own value.
        let said = v
            .attempts
            .iter()
            .rev()
            .find(|a| a.delivery_id == d.id && a.outcome == "delivered")
            .and_then(|a| a.detail.clone())
            .unwrap_or_else(|| format!("value {}", value(e)));
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            Esc(&d.destination),
            Esc(&d.destination_event),
            d.state.as_str(),
            d.reason.as_deref().map(|r| format!(":{}", Esc(r))).unwrap_or_default(),
            Esc(&said)
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn write_deliveries(out: &mut String, v: &EventView, csrf: &str) -> fmt::Result {
    out.push_str("<h3>Deliveries</h3>");
    if v.deliveries.is_empty() {
        out.push_str("<p class=\"muted\">None: no destination takes this kind.</p>");
        return Ok(());
    }
    out.push_str(
        "<table><thead><tr><th>delivery</th><th>destination</th><th>as</th><th>state</th><th>reason</th>\
         <th>attempts</th><th>messages</th><th>next attempt</th><th>updated</th><th>act</th></tr></thead><tbody>",
    );
    for d in &v.deliveries {
        let mut messages = d.messages.join("; ");
        if !d.stripped_fields.is_empty() {
            let _ = write!(messages, " (left out for consent: {})", d.stripped_fields.join(", "));
        }
        write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>",
            d.id,
            Esc(&d.destination),
            Esc(&d.destination_event),
            d.state.as_str(),
            opt(&d.reason),
            d.attempts,
            Esc(messages.trim()),
            d.next_attempt_at.map(time).unwrap_or_default(),
            time(d.updated_at)
        )?;
        write_forms(out, v.event.event_id.as_str(), d, csrf)?;
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

/// Replay (every ended delivery; a delivered one only with "force", which is recorded) and
/// settle (dead, rejected and in_doubt ones), each a form with the page's CSRF token.
fn write_forms(out: &mut String, event_id: &str, d: &DeliveryView, csrf: &str) -> fmt::Result {
    if !d.state.is_ended() {
        out.push_str("<span class=\"muted\">in the queue</span>");
        return Ok(());
    }
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"event\" value=\"{}\">\
         <input type=\"hidden\" name=\"delivery_id\" value=\"{}\">",
        Esc(csrf),
        Esc(event_id),
        d.id
    );
    write!(out, "<form class=\"act\" method=\"post\" action=\"/console/replay\">{hidden}")?;
    if d.state == DeliveryState::Delivered {
        out.push_str(
            "<label title=\"It was delivered: a replay sends it again, and the platform may count it twice\">\
             <input type=\"checkbox\" name=\"force\" value=\"1\"> force</label> ",
        );
    }
    out.push_str("<button type=\"submit\">Replay</button></form>");
    if matches!(d.state, DeliveryState::Dead | DeliveryState::Rejected | DeliveryState::InDoubt) {
        write!(
            out,
            "<form class=\"act\" method=\"post\" action=\"/console/settle\">{hidden}<select name=\"as\" \
             aria-label=\"what the platform shows\"><option value=\"delivered\">arrived</option><option \
             value=\"not_delivered\">did not arrive</option></select> <input name=\"note\" maxlength=\"2000\" \
             placeholder=\"note\" aria-label=\"note\"> <button type=\"submit\">Settle</button></form>"
        )?;
    }
    Ok(())
}

/// One line of the event's history, in time order.
enum Line<'a> {
    Attempt(&'a AttemptView),
    Replay(&'a crate::store::ReplayView),
    Settlement(&'a crate::store::SettlementView),
    Conflict(&'a crate::store::ConflictView),
}

impl Line<'_> {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Attempt(a) => a.at,
            Self::Replay(r) => r.at,
            Self::Settlement(s) => s.at,
            Self::Conflict(c) => c.received_at,
        }
    }
}

/// Attempts, replays, settlements and conflicts in one list, oldest first (ties keep the order
/// the ledger wrote them in). An attempt's error is shown once, not again as its detail.
fn write_lines(out: &mut String, v: &EventView) -> fmt::Result {
    out.push_str("<h3>Attempts</h3>");
    let mut lines: Vec<Line<'_>> = Vec::new();
    lines.extend(v.attempts.iter().map(Line::Attempt));
    lines.extend(v.replays.iter().map(Line::Replay));
    lines.extend(v.settlements.iter().map(Line::Settlement));
    lines.extend(v.conflicts.iter().map(Line::Conflict));
    if lines.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
        return Ok(());
    }
    lines.sort_by_key(Line::at);
    out.push_str(
        "<table class=\"lines\"><thead><tr><th>at</th><th>delivery</th><th>#</th><th>outcome</th><th>HTTP</th>\
         <th>ms</th><th>detail</th><th>request and answer</th></tr></thead><tbody>",
    );
    for line in lines {
        match line {
            Line::Attempt(a) => write_attempt(out, a)?,
            Line::Replay(r) => write!(
                out,
                "<tr class=\"replay\"><td>{}</td><td class=\"n\">{}</td><td colspan=\"6\">{} from {}{}{}</td></tr>",
                time(r.at),
                r.delivery_id,
                if r.forced { "<b>forced replay</b>" } else { "replayed" },
                Esc(&r.previous_state),
                r.previous_reason.as_deref().map(|x| format!(":{}", Esc(x))).unwrap_or_default(),
                r.by.as_deref().map(|b| format!(" by <span class=\"by\">{}</span>", Esc(b))).unwrap_or_default(),
            )?,
            Line::Settlement(st) => write!(
                out,
                "<tr class=\"settle\"><td>{}</td><td class=\"n\">{}</td><td colspan=\"6\">settled as {} by {} (was \
                 {}{}){}</td></tr>",
                time(st.at),
                st.delivery_id,
                st.settled_as,
                Esc(&st.by),
                Esc(&st.previous_state),
                st.previous_reason.as_deref().map(|x| format!(":{}", Esc(x))).unwrap_or_default(),
                st.note.as_deref().map(|n| format!(": “{}”", Esc(n))).unwrap_or_default()
            )?,
            Line::Conflict(c) => {
                let differs = if c.differs.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it differed in {}",
                        c.differs.iter().map(|f| format!("<code>{}</code>", Esc(f))).collect::<Vec<_>>().join(", ")
                    )
                };
                write!(
                    out,
                    "<tr class=\"warn\"><td>{}</td><td></td><td colspan=\"6\">Conflict: the same id with other \
                     content (hash {}){differs}; the first version stands.</td></tr>",
                    time(c.received_at),
                    Esc(&c.content_hash)
                )?
            }
        }
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn write_attempt(out: &mut String, a: &AttemptView) -> fmt::Result {
    // Each error once: the detail usually quotes the network error or the answer already.
    let mut said: Vec<&str> = Vec::new();
    for text in [a.detail.as_deref(), a.error.as_deref()].into_iter().flatten() {
        let text = text.trim();
        if !text.is_empty() && !said.iter().any(|s| s.contains(text)) {
            said.push(text);
        }
    }
    write!(
        out,
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n attempt\">{}{}</td><td>{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td>{}</td><td>",
        time(a.at),
        a.delivery_id,
        a.attempt,
        if a.forced { " (forced)" } else { "" },
        Esc(&a.outcome),
        a.http_status.map(|s| s.to_string()).unwrap_or_default(),
        a.duration_ms.map(|ms| format!("{ms:.0}")).unwrap_or_default(),
        Esc(&said.join("; "))
    )?;
    if a.request_sha256.is_some() || a.response_excerpt.is_some() {
        write!(out, "<details><summary>{}</summary>", Esc(a.endpoint.as_deref().unwrap_or("request")))?;
        match (&a.request_body, &a.request_sha256) {
            (Some(body), _) => {
                let shown = cut(body, MAX_SHOWN_BODY);
                write!(out, "<p>Sent:</p><pre class=\"request\">{}</pre>", Esc(shown))?;
                if shown.len() < body.len() {
                    write!(out, "<p class=\"muted\">(first {MAX_SHOWN_BODY} bytes of {})</p>", body.len())?;
                }
            }
            (None, Some(hash)) => write!(
                out,
                "<p class=\"muted\">Sent a body with SHA-256 <code>{}</code> (no longer kept: \
                 <code>[ledger] keep_request_bodies_days</code>).</p>",
                Esc(hash)
            )?,
            (None, None) => {}
        }
        match a.response_excerpt.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(answer) if !said.iter().any(|s| s.contains(answer.trim())) => {
                write!(out, "<p>The platform answered:</p><pre class=\"answer\">{}</pre>", Esc(answer))?
            }
            Some(_) => out.push_str("<p class=\"muted\">The platform's answer is the detail.</p>"),
            None => out.push_str("<p class=\"muted\">No answer body.</p>"),
        }
        out.push_str("</details>");
    }
    out.push_str("</td></tr>");
    Ok(())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
