//! The dashboard's reconcile page (`/?view=reconcile`): the latest report kept in the ledger
//! (`POST /v1/reconcile`, `surety reconcile --record`) — when and by whom, the window, per
//! destination its classes and gaps, the largest unexplained mismatches (each linked to its
//! event's timeline) and the bad rows.

use std::fmt::{self, Write};

use super::{time, Esc};
use crate::reconcile::{Recorded, KEPT_MISMATCHES};

pub fn write_reconcile(out: &mut String, last: Option<&Recorded>) -> fmt::Result {
    out.push_str("<h2>Reconcile</h2>");
    let Some(Recorded { at, by, report }) = last else {
        out.push_str(
            "<p class=\"muted\">No reconcile report is kept in the ledger yet. Run one with \
             <code>curl -H 'Authorization: Bearer …' -F source=@orders.csv -F platforms.ga4-web=@ga4.csv \
             https://…/v1/reconcile</code> (or <code>surety reconcile --record</code> on the command line) \
             and its report appears here.</p>",
        );
        return Ok(());
    };
    let t = &report.totals;
    write!(
        out,
        "<p>Recorded at {} by {}, window {} .. {}: {} source rows, {} ledger events, {} explained and \
         <span class=\"{}\">{} unexplained</span> differences, {} bad rows.</p>",
        time(*at),
        Esc(by),
        time(report.window.since),
        time(report.window.until),
        t.source_rows,
        t.ledger_events,
        t.explained,
        if t.unexplained > 0 { "open" } else { "closed" },
        t.unexplained,
        t.bad_rows
    )?;
    out.push_str(
        "<table><thead><tr><th>destination</th><th>source</th><th>received</th><th>planned</th>\
         <th>delivered</th><th>platform reported</th><th>explained</th><th>unexplained</th><th>classes</th>\
         </tr></thead><tbody>",
    );
    for (dest, d) in &report.destinations {
        let classes: Vec<String> = d.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\"><span class=\"{}\">{}</span></td><td>{}</td></tr>",
            Esc(dest),
            d.source,
            d.received,
            d.planned,
            d.delivered,
            d.platform_reported.map_or_else(|| "—".to_owned(), |n| n.to_string()),
            d.explained,
            if d.unexplained > 0 { "open" } else { "closed" },
            d.unexplained,
            Esc(&classes.join(", "))
        )?;
    }
    out.push_str("</tbody></table>");
    if !report.mismatches.is_empty() {
        write!(
            out,
            "<h3>Largest unexplained mismatches</h3><p class=\"muted\">Up to {KEPT_MISMATCHES}, by the amount \
             at stake.</p><table><thead><tr><th>class</th><th>destination</th><th>key</th><th>value</th>\
             <th>detail</th></tr></thead><tbody>"
        )?;
        for m in &report.mismatches {
            let key = match &m.event_id {
                Some(id) => format!("<a href=\"/?event={}\">{}</a>", Esc(&encode(id)), Esc(&m.key)),
                None => Esc(&m.key).to_string(),
            };
            write!(
                out,
                "<tr><td><span class=\"open\">{}</span></td><td>{}</td><td>{key}</td><td class=\"n\">{}</td>\
                 <td>{}</td></tr>",
                Esc(&m.class),
                Esc(&m.destination),
                m.value.map_or_else(String::new, |v| format!("{v:.2}")),
                Esc(&m.detail)
            )?;
        }
        out.push_str("</tbody></table>");
    }
    if !report.bad_rows.is_empty() {
        out.push_str(
            "<h3>Bad rows</h3><table><thead><tr><th>file</th><th>line</th><th>problem</th></tr></thead><tbody>",
        );
        for b in &report.bad_rows {
            write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                Esc(&b.file),
                b.line,
                Esc(&b.message)
            )?;
        }
        out.push_str("</tbody></table>");
    }
    Ok(())
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
