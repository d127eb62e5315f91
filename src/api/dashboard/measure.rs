//! The dashboard's measurement views: the alerts (on the overview, from memory), and the late
//! arrivals (`/?view=late`, a server-drawn SVG chart per event day) and coverage
//! (`/?view=coverage`) pages. The two pages read the window's events from the ledger, so they are
//! loaded on demand and never auto-refreshed.

use std::fmt::{self, Write};

use super::{time, Esc};
use crate::alerts::{AlertsView, Delivery, Status};
use crate::reconcile::coverage::{CoverageReport, FIELDS};
use crate::reconcile::late::LateReport;

/// Alerts listed on the overview.
const RECENT_ALERTS: usize = 10;

/// Links between the dashboard's views.
pub fn write_nav(out: &mut String, current: &str) -> fmt::Result {
    out.push_str("<nav class=\"views\">");
    for (view, label) in [
        ("", "Overview"),
        ("events", "Events"),
        ("late", "Late arrivals"),
        ("coverage", "Coverage"),
        ("reconcile", "Reconcile"),
    ] {
        if view == current {
            write!(out, "<b>{label}</b> ")?;
        } else if view.is_empty() {
            write!(out, "<a href=\"/\">{label}</a> ")?;
        } else {
            write!(out, "<a href=\"/?view={view}\">{label}</a> ")?;
        }
    }
    out.push_str("</nav>\n");
    Ok(())
}

/// What fires now and the newest messages.
pub fn write_alerts(out: &mut String, v: &AlertsView) -> fmt::Result {
    out.push_str("<h2>Alerts</h2>");
    if !v.evaluating {
        out.push_str(
            "<p class=\"muted\">No <code>[[alerts]]</code> rules are evaluated by this process: none are \
             configured, <code>alerting.evaluate = false</code>, or another process on the same ledger leads \
             (README, \"Alerts\").</p>",
        );
        return Ok(());
    }
    if v.active.is_empty() {
        out.push_str("<p class=\"closed\">Nothing fires.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>rule</th><th>destination</th><th>condition</th><th>value</th><th>above</th>\
             <th>since</th></tr></thead><tbody>",
        );
        for a in &v.active {
            write!(
                out,
                "<tr><td><span class=\"{}\">{}</span></td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                if a.fired_at.is_some() { "open" } else { "warn" },
                Esc(&a.rule),
                Esc(&a.destination),
                a.when.describe(),
                a.value,
                a.above,
                time(a.since)
            )?;
        }
        out.push_str("</tbody></table>");
    }
    if !v.recent.is_empty() {
        write!(out, "<h3>Messages (newest {RECENT_ALERTS})</h3><ul>")?;
        for n in v.recent.iter().take(RECENT_ALERTS) {
            let sent = match &n.notification {
                Delivery::NotConfigured => "listed only (no webhook)".to_owned(),
                Delivery::Pending { attempts } => format!("sending (attempt {attempts})"),
                Delivery::Sent { attempts } => format!("sent (attempt {attempts})"),
                Delivery::Failed { attempts, error } => format!("not sent after {attempts} attempts: {error}"),
            };
            write!(
                out,
                "<li class=\"{}\">{} {} — {}</li>",
                if n.status == Status::Firing { "warn" } else { "muted" },
                time(n.at),
                Esc(&n.summary()),
                Esc(&sent)
            )?;
        }
        out.push_str("</ul>");
    }
    Ok(())
}

/// Bar colours, on time first.
const SEGMENTS: [(&str, &str); 5] = [
    ("on time", "#1a7f37"),
    ("< 1 h late", "#bf8700"),
    ("< 24 h late", "#d4700b"),
    ("< 72 h late", "#cf222e"),
    ("later", "#82071e"),
];

/// Late arrivals per event day: a stacked bar per day (on time, then by lateness) and the table.
pub fn write_late(out: &mut String, r: &LateReport) -> fmt::Result {
    write!(
        out,
        "<h2>Late arrivals</h2><p class=\"muted\">Events by UTC event day, {} .. {}: on time = received before \
         the day ended; late ones by how long after. <code>surety late</code> and <code>GET \
         /v1/late-arrivals</code> give the same figures, with <code>--changed-since</code>.</p>",
        time(r.since),
        time(r.until)
    )?;
    if r.days.is_empty() {
        out.push_str("<p class=\"muted\">No events in the window.</p>");
        return Ok(());
    }
    let max = r.days.iter().map(|d| d.events).max().unwrap_or(1).max(1) as f64;
    let (bar, gap, height, label) = (18.0, 6.0, 160.0, 30.0);
    let width = r.days.len() as f64 * (bar + gap) + gap;
    write!(
        out,
        "<svg class=\"chart\" role=\"img\" aria-label=\"events per day by lateness\" width=\"{width}\" \
         height=\"{}\" viewBox=\"0 0 {width} {}\">",
        height + label,
        height + label
    )?;
    for (i, d) in r.days.iter().enumerate() {
        let x = gap + i as f64 * (bar + gap);
        let mut y = height;
        let parts = [d.on_time, d.late.under_1h, d.late.under_24h, d.late.under_72h, d.late.later];
        for (n, (name, colour)) in parts.iter().zip(SEGMENTS) {
            if *n == 0 {
                continue;
            }
            let h = *n as f64 / max * (height - 4.0);
            y -= h;
            write!(
                out,
                "<rect x=\"{x}\" y=\"{y:.1}\" width=\"{bar}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {name}: \
                 {n}</title></rect>",
                d.day
            )?;
        }
        write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            x + bar / 2.0,
            height + 12.0,
            d.day.format("%m-%d")
        )?;
    }
    out.push_str("</svg><p>");
    for (name, colour) in SEGMENTS {
        write!(out, "<span style=\"color:{colour}\">■</span> {name} &nbsp;")?;
    }
    out.push_str("</p>");
    out.push_str(
        "<table><thead><tr><th>day</th><th>events</th><th>on time</th><th>&lt; 1 h</th><th>&lt; 24 h</th>\
         <th>&lt; 72 h</th><th>later</th><th>outside_window</th><th>value</th></tr></thead><tbody>",
    );
    for d in &r.days {
        let outside: u64 = d.outside_window.values().sum();
        let value: Vec<String> = d.value.iter().map(|(c, v)| format!("{v:.2} {c}")).collect();
        write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td></tr>",
            d.day,
            d.events,
            d.on_time,
            d.late.under_1h,
            d.late.under_24h,
            d.late.under_72h,
            d.late.later,
            outside,
            Esc(&value.join(", "))
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

/// Coverage per kind: identifiers and consent as shares, and each destination's outcomes.
pub fn write_coverage(out: &mut String, r: &CoverageReport) -> fmt::Result {
    write!(
        out,
        "<h2>Coverage</h2><p class=\"muted\">What the events of {} .. {} carried and what became of them \
         (<code>surety coverage</code>, <code>GET /v1/coverage</code>).</p>",
        time(r.since),
        time(r.until)
    )?;
    if r.rows.is_empty() {
        out.push_str("<p class=\"muted\">No events in the window.</p>");
        return Ok(());
    }
    out.push_str("<table><thead><tr><th>kind</th><th>events</th><th>joined</th>");
    for f in FIELDS {
        write!(out, "<th>{f}</th>")?;
    }
    out.push_str("<th>analytics</th><th>ad_user_data</th><th>ad_personalization</th></tr></thead><tbody>");
    let pct = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
    for row in &r.rows {
        write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            Esc(&row.key),
            row.events,
            row.joined
        )?;
        for f in FIELDS {
            let n = row.fields.get(f).copied().unwrap_or(0);
            write!(out, "<td class=\"n\">{:.0}%</td>", pct(n, row.events))?;
        }
        for c in ["analytics", "ad_user_data", "ad_personalization"] {
            let n = row.consent.get(c).copied().unwrap_or(0);
            write!(out, "<td class=\"n\">{:.0}%</td>", pct(n, row.events))?;
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out.push_str(
        "<h3>Per destination</h3><table><thead><tr><th>kind</th><th>destination</th><th>planned</th><th>sent</th>\
         <th>delivered</th><th>accepted</th><th>rejected</th><th>dead</th><th>in doubt</th><th>pending</th>\
         <th>skipped</th></tr></thead><tbody>",
    );
    for row in &r.rows {
        for (dest, c) in &row.destinations {
            let skipped: Vec<String> = c.skipped.iter().map(|(why, n)| format!("{why} {n}")).collect();
            write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                Esc(&row.key),
                Esc(dest),
                c.planned,
                c.sent,
                c.delivered,
                c.accepted,
                c.rejected,
                c.dead,
                c.in_doubt,
                c.pending,
                Esc(&skipped.join(", "))
            )?;
        }
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}
