//! One event's timeline on the dashboard (`GET /?event=ID`): its deliveries, attempts, replays,
//! settlements and conflicts, every value escaped.

use std::fmt::{self, Write};

use super::{opt, time, Esc};
use crate::store::EventView;

pub(super) fn write_timeline(out: &mut String, v: &EventView) -> fmt::Result {
    let e = &v.event;
    write!(out, "<h2>Event <code>{}</code></h2><table><tbody>", Esc(e.event_id.as_str()))?;
    let value = match (e.value, &e.currency) {
        (Some(v), Some(c)) => format!("{v} {}", c.as_str()),
        (Some(v), None) => v.to_string(),
        _ => String::new(),
    };
    let rows = [
        ("kind", e.kind.as_str().to_owned()),
        ("source", e.source.clone()),
        ("subject", format!("{}:{}", e.subject.kind, e.subject.id)),
        ("occurred", time(e.occurred_at)),
        ("received", time(e.received_at)),
        ("value", value),
        ("routing", v.routing.to_string()),
        ("content hash", v.content_hash.clone()),
    ];
    for (k, val) in rows {
        write!(out, "<tr><th>{k}</th><td>{}</td></tr>", Esc(&val))?;
    }
    out.push_str("</tbody></table>\n<h3>Deliveries</h3>");
    if v.deliveries.is_empty() {
        out.push_str("<p class=\"muted\">None: no destination takes this kind.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>delivery</th><th>destination</th><th>as</th><th>state</th><th>reason</th>\
             <th>attempts</th><th>messages</th><th>next attempt</th><th>updated</th></tr></thead><tbody>",
        );
        for d in &v.deliveries {
            let mut messages = d.messages.join("; ");
            if !d.stripped_fields.is_empty() {
                let _ = write!(messages, " (left out for consent: {})", d.stripped_fields.join(", "));
            }
            write!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
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
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h3>Attempts</h3>");
    if v.attempts.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>delivery</th><th>#</th><th>at</th><th>outcome</th><th>HTTP</th><th>ms</th>\
             <th>detail</th><th>error</th><th>response</th></tr></thead><tbody>",
        );
        for a in &v.attempts {
            write!(
                out,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.delivery_id,
                a.attempt,
                if a.forced { " (forced)" } else { "" },
                time(a.at),
                Esc(&a.outcome),
                a.http_status.map(|s| s.to_string()).unwrap_or_default(),
                a.duration_ms.map(|ms| format!("{ms:.0}")).unwrap_or_default(),
                opt(&a.detail),
                opt(&a.error),
                opt(&a.response_excerpt)
            )?;
        }
        out.push_str("</tbody></table>\n");
    }
    for r in &v.replays {
        write!(
            out,
            "<p>Delivery {} replayed at {} from {}{}{}.</p>",
            r.delivery_id,
            time(r.at),
            Esc(&r.previous_state),
            r.previous_reason.as_deref().map(|x| format!(":{}", Esc(x))).unwrap_or_default(),
            if r.forced { " (forced)" } else { "" }
        )?;
    }
    for st in &v.settlements {
        write!(
            out,
            "<p>Delivery {} settled as {} by {} at {} (was {}{}){}.</p>",
            st.delivery_id,
            st.settled_as,
            Esc(&st.by),
            time(st.at),
            Esc(&st.previous_state),
            st.previous_reason.as_deref().map(|x| format!(":{}", Esc(x))).unwrap_or_default(),
            st.note.as_deref().map(|n| format!(": “{}”", Esc(n))).unwrap_or_default()
        )?;
    }
    for c in &v.conflicts {
        write!(
            out,
            "<p class=\"warn\">Conflict at {}: the same id with other content (hash {}); the first version stands.</p>",
            time(c.received_at),
            Esc(&c.content_hash)
        )?;
    }
    Ok(())
}
