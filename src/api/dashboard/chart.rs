//! Deliveries per destination over time on the overview: one small server-drawn SVG chart per
//! destination (small multiples, so they sit beside the health lines above the fold), a stacked
//! bar per UTC hour of the last [`HOURS`] — delivered, retried, failed (rejected, dead or
//! in_doubt) — read from the ledger by `Store::deliveries_over_time` (`store::over_time`).

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::Esc;
use crate::store::over_time::{HourCounts, HOUR_US};

/// Hours the overview's charts show.
pub const HOURS: u32 = 24;

/// The bar segments, bottom up: name, colour.
const SEGMENTS: [(&str, &str); 3] = [("delivered", "#1a7f37"), ("retried", "#bf8700"), ("failed", "#cf222e")];
const BAR: f64 = 8.0;
const GAP: f64 = 2.0;
const HEIGHT: f64 = 48.0;
const AXIS: f64 = 11.0;

/// One chart per destination in `names` (in that order), all over the window starting at
/// `since` (a whole hour), `HOURS` long.
pub fn write(out: &mut String, names: &[&str], counts: &[HourCounts], since: DateTime<Utc>) -> fmt::Result {
    write!(
        out,
        "<h2>Deliveries, last {HOURS} h <span class=\"legend\">{}</span></h2><div class=\"charts\">",
        SEGMENTS
            .iter()
            .map(|(name, colour)| format!("<span style=\"color:{colour}\">■</span> {name}"))
            .collect::<Vec<_>>()
            .join(" &nbsp;")
    )?;
    for name in names {
        let mine: Vec<&HourCounts> = counts.iter().filter(|c| c.destination == *name).collect();
        write_one(out, name, &mine, since)?;
    }
    out.push_str("</div>\n");
    Ok(())
}

/// The slot of an hour in the window, if it is in it.
fn slot(since: DateTime<Utc>, hour: DateTime<Utc>) -> Option<usize> {
    let n = (hour.timestamp_micros() - since.timestamp_micros()).div_euclid(HOUR_US);
    usize::try_from(n).ok().filter(|n| *n < HOURS as usize)
}

fn write_one(out: &mut String, name: &str, counts: &[&HourCounts], since: DateTime<Utc>) -> fmt::Result {
    let mut slots = [[0u64; 3]; HOURS as usize];
    for c in counts {
        if let Some(i) = slot(since, c.hour) {
            slots[i] = [c.delivered, c.retried, c.failed];
        }
    }
    let sums = slots.iter().fold([0u64; 3], |acc, s| [acc[0] + s[0], acc[1] + s[1], acc[2] + s[2]]);
    let max = slots.iter().map(|s| s.iter().sum::<u64>()).max().unwrap_or(0);
    let width = f64::from(HOURS) * (BAR + GAP) + GAP;
    write!(
        out,
        "<figure class=\"over-time\" data-destination=\"{name}\"><figcaption><b>{name}</b> <span class=\"muted\">\
         {} delivered · {} retried · {} failed</span></figcaption>\
         <svg class=\"chart\" role=\"img\" aria-label=\"{name}: deliveries per hour\" width=\"{width}\" \
         height=\"{h}\" viewBox=\"0 0 {width} {h}\">",
        sums[0],
        sums[1],
        sums[2],
        name = Esc(name),
        h = HEIGHT + AXIS,
    )?;
    write!(out, "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#d0d7de\"/>")?;
    for (i, s) in slots.iter().enumerate() {
        let x = GAP + i as f64 * (BAR + GAP);
        let hour = since + chrono::Duration::hours(i as i64);
        let mut y = HEIGHT;
        for (n, (what, colour)) in s.iter().zip(SEGMENTS) {
            if *n == 0 {
                continue;
            }
            // At least a pixel, so one failure in a busy hour still shows.
            let h = (*n as f64 / max as f64 * (HEIGHT - 2.0)).max(1.0);
            y -= h;
            write!(
                out,
                "<rect class=\"bar {what}\" x=\"{x}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{h:.1}\" \
                 fill=\"{colour}\"><title>{} UTC {what}: {n}</title></rect>",
                hour.format("%m-%d %H:00")
            )?;
        }
        if i % 6 == 0 {
            write!(
                out,
                "<text x=\"{x}\" y=\"{}\" font-size=\"9\" fill=\"#57606a\">{}</text>",
                HEIGHT + AXIS - 1.0,
                hour.format("%H")
            )?;
        }
    }
    if max > 0 {
        write!(out, "<text x=\"{width}\" y=\"9\" font-size=\"9\" text-anchor=\"end\" fill=\"#57606a\">{max}</text>")?;
    }
    out.push_str("</svg></figure>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn one_chart_per_destination_with_a_stacked_bar_per_hour_and_nothing_outside_the_window() {
        let since = at("2026-12-06T19:00:00Z");
        let counts = vec![
            HourCounts { destination: "ga4".into(), hour: since, delivered: 3, retried: 1, failed: 0 },
            HourCounts {
                destination: "ga4".into(),
                hour: at("2026-12-07T18:00:00Z"),
                delivered: 0,
                retried: 0,
                failed: 2,
            },
            HourCounts {
                destination: "ga4".into(),
                hour: at("2026-12-07T19:00:00Z"),
                delivered: 9,
                retried: 0,
                failed: 0,
            },
        ];
        let mut out = String::new();
        write(&mut out, &["ga4", "meta <x>"], &counts, since).unwrap();
        assert_eq!(out.matches("<svg").count(), 2);
        assert!(out.contains("data-destination=\"meta &lt;x&gt;\""), "escaped: {out}");
        let ga4 = &out[..out.find("data-destination=\"meta").unwrap()];
        assert_eq!(ga4.matches("class=\"bar delivered\"").count(), 1, "the hour after the window is not drawn");
        assert_eq!(ga4.matches("class=\"bar retried\"").count(), 1);
        assert_eq!(ga4.matches("class=\"bar failed\"").count(), 1);
        assert!(ga4.contains("3 delivered · 1 retried · 2 failed"), "{ga4}");
        assert!(ga4.contains("12-07 18:00 UTC failed: 2"), "{ga4}");
        let meta = &out[out.find("data-destination=\"meta").unwrap()..];
        assert!(!meta.contains("class=\"bar"), "an idle destination draws no bars: {meta}");
    }
}
