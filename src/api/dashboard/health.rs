//! The first thing the overview shows: one health line per destination — delivering, retrying,
//! circuit open, halted (credentials refused) or failing — with the last error the platform gave
//! and when, the next probe or attempt as it truly stands (never a time already past), the queue
//! and its oldest delivery, what waits for a person (dead, rejected, in doubt), and its roll-out
//! (`validate` mode, `sample` limits).

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::{age, time, Esc};
use crate::api::App;
use crate::core::DeliveryState;
use crate::store::{Counts, StoreError};
use crate::telemetry::lanes::{Circuit, LaneState, PlatformError};

/// How a destination is doing, in one word a person reads first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Delivering,
    Retrying,
    CircuitOpen,
    Halted,
    Failing,
    /// No worker for it runs in this process (an API-only process).
    NoWorker,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Self::Delivering => "delivering",
            Self::Retrying => "retrying",
            Self::CircuitOpen => "circuit open",
            Self::Halted => "halted (credentials refused)",
            Self::Failing => "failing",
            Self::NoWorker => "no worker here",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Self::Delivering => "closed",
            Self::Retrying | Self::NoWorker => "warn",
            Self::CircuitOpen | Self::Halted | Self::Failing => "open",
        }
    }

    /// From what the worker last learnt: a halted or open circuit says so; otherwise the last
    /// error, if the platform has not taken anything since, says retrying or failing.
    pub fn of(lane: Option<&LaneState>) -> Self {
        let Some(lane) = lane else { return Self::NoWorker };
        match lane.circuit {
            Circuit::Halted => return Self::Halted,
            Circuit::Open => return Self::CircuitOpen,
            Circuit::Closed => {}
        }
        match &lane.last_error {
            Some(e) if lane.last_success.is_none_or(|ok| ok < e.at) => {
                if e.outcome == "retry" {
                    Self::Retrying
                } else {
                    Self::Failing
                }
            }
            _ => Self::Delivering,
        }
    }
}

/// When the worker will next try: for a paused circuit, not before it reopens nor before a
/// delivery is due; otherwise when the next delivery is due. Never earlier than `now`; none when
/// nothing waits.
pub fn next_try(lane: Option<&LaneState>, due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let due = due?;
    let reopen = lane.and_then(|l| l.open_until).unwrap_or(now);
    Some(due.max(reopen).max(now))
}

/// One destination's line.
pub struct Line {
    pub destination: String,
    pub health: Health,
    pub last_error: Option<PlatformError>,
    pub next_try: Option<DateTime<Utc>>,
    pub depth: u64,
    pub oldest: Option<DateTime<Utc>>,
    pub dead: u64,
    pub rejected: u64,
    pub in_doubt: u64,
    /// Its roll-out: `live` or `validate`, and its sample (none for a destination no longer
    /// configured).
    pub mode: Option<&'static str>,
    pub sample: Option<String>,
}

pub async fn lines(app: &App, c: &Counts, now: DateTime<Utc>) -> Result<Vec<Line>, StoreError> {
    let mut names: BTreeSet<&str> = app.config.destinations.iter().map(|d| d.name()).collect();
    names.extend(c.deliveries.iter().map(|(d, ..)| d.as_str()));
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let lane = app.metrics.lanes.get(name);
        let queue = c.queues.iter().find(|q| q.destination == name);
        let count = |state: DeliveryState| -> u64 {
            c.deliveries.iter().filter(|(d, s, ..)| d == name && *s == state).map(|(.., n)| *n).sum()
        };
        let due = if queue.is_some_and(|q| q.depth > 0) { app.store.next_due(name).await? } else { None };
        let common = app.config.destinations.iter().find(|d| d.name() == name).map(|d| d.common());
        out.push(Line {
            destination: name.to_owned(),
            health: Health::of(lane.as_ref()),
            last_error: lane.as_ref().and_then(|l| l.last_error.clone()),
            next_try: next_try(lane.as_ref(), due, now),
            depth: queue.map_or(0, |q| q.depth),
            oldest: queue.and_then(|q| q.oldest),
            dead: count(DeliveryState::Dead),
            rejected: count(DeliveryState::Rejected),
            in_doubt: count(DeliveryState::InDoubt),
            mode: common.map(|c| c.mode.as_str()),
            sample: common.and_then(|c| c.sample.as_ref()).map(|s| s.describe()),
        });
    }
    Ok(out)
}

/// The destination's roll-out under its name: `validate mode` (marked), `live`, and its sample.
fn rollout(out: &mut String, l: &Line) -> fmt::Result {
    match l.mode {
        Some("validate") => out.push_str(
            "<br><span class=\"warn\" title=\"checked against the platform, nothing counted: \
             skipped:validate_only\">validate mode</span>",
        ),
        Some(mode) => write!(out, "<br><span class=\"muted\">{mode}</span>")?,
        None => {}
    }
    if let Some(sample) = &l.sample {
        write!(out, " <span class=\"muted\" title=\"the rest: skipped:not_sampled\">sample: {}</span>", Esc(sample))?;
    }
    Ok(())
}

/// A link to the event list of one destination's deliveries in a state.
fn listed(out: &mut String, destination: &str, state: DeliveryState, n: u64) -> fmt::Result {
    if n == 0 {
        return write!(out, "<td class=\"n\">0</td>");
    }
    let d: String = url::form_urlencoded::byte_serialize(destination.as_bytes()).collect();
    write!(
        out,
        "<td class=\"n\"><a href=\"/?view=events&amp;destination={}&amp;state={}\">{n}</a></td>",
        Esc(&d),
        state.as_str()
    )
}

pub fn write(out: &mut String, lines: &[Line], now: DateTime<Utc>) -> fmt::Result {
    out.push_str("<h2>Health</h2>");
    if lines.is_empty() {
        out.push_str("<p class=\"muted\">No destinations configured.</p>");
        return Ok(());
    }
    out.push_str(
        "<table class=\"health\"><thead><tr><th>destination</th><th>health</th><th>last error from the platform</th>\
         <th>next try</th><th>queue</th><th>oldest pending</th><th>dead</th><th>rejected</th><th>in doubt</th>\
         </tr></thead><tbody>",
    );
    for l in lines {
        write!(
            out,
            "<tr data-destination=\"{}\" data-health=\"{}\" data-mode=\"{}\"><td>{}",
            Esc(&l.destination),
            l.health.label(),
            l.mode.unwrap_or(""),
            Esc(&l.destination),
        )?;
        rollout(out, l)?;
        write!(out, "</td><td><span class=\"{}\">{}</span></td><td>", l.health.class(), l.health.label())?;
        match &l.last_error {
            Some(e) => {
                write!(out, "{} <span class=\"muted\">({}, {} ago)</span>", Esc(&e.message), e.outcome, age(now, e.at))?
            }
            None => out.push_str("<span class=\"muted\">none</span>"),
        }
        out.push_str("</td><td>");
        match l.next_try {
            Some(t) if t <= now => out.push_str("now"),
            Some(t) => write!(out, "{} UTC <span class=\"muted\">(in {})</span>", time(t), age(t, now))?,
            None if l.depth == 0 => out.push_str("<span class=\"muted\">nothing waits</span>"),
            None => out.push_str("<span class=\"muted\">in flight</span>"),
        }
        write!(
            out,
            "</td><td class=\"n\">{}</td><td>{}</td>",
            l.depth,
            l.oldest.map(|t| age(now, t)).unwrap_or_default()
        )?;
        listed(out, &l.destination, DeliveryState::Dead, l.dead)?;
        listed(out, &l.destination, DeliveryState::Rejected, l.rejected)?;
        listed(out, &l.destination, DeliveryState::InDoubt, l.in_doubt)?;
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(at: DateTime<Utc>, outcome: &'static str) -> Option<PlatformError> {
        Some(PlatformError { at, outcome, message: "x".into() })
    }

    #[test]
    fn the_word_follows_the_circuit_then_the_last_error_since_the_last_success() {
        let t = Utc::now();
        let earlier = t - chrono::Duration::minutes(5);
        assert_eq!(Health::of(None), Health::NoWorker);
        assert_eq!(Health::of(Some(&LaneState::default())), Health::Delivering);
        let halted = LaneState { circuit: Circuit::Halted, last_error: err(t, "halt"), ..Default::default() };
        assert_eq!(Health::of(Some(&halted)), Health::Halted);
        let open = LaneState { circuit: Circuit::Open, ..Default::default() };
        assert_eq!(Health::of(Some(&open)), Health::CircuitOpen);
        let retrying = LaneState { last_error: err(t, "retry"), last_success: Some(earlier), ..Default::default() };
        assert_eq!(Health::of(Some(&retrying)), Health::Retrying);
        let failing = LaneState { last_error: err(t, "rejected"), ..Default::default() };
        assert_eq!(Health::of(Some(&failing)), Health::Failing);
        let recovered = LaneState { last_error: err(earlier, "rejected"), last_success: Some(t), ..Default::default() };
        assert_eq!(Health::of(Some(&recovered)), Health::Delivering);
    }

    #[test]
    fn the_line_says_the_mode_and_the_sample() {
        let now = Utc::now();
        let line = |mode, sample: Option<&str>| Line {
            destination: "meta".into(),
            health: Health::Delivering,
            last_error: None,
            next_try: None,
            depth: 0,
            oldest: None,
            dead: 0,
            rejected: 0,
            in_doubt: 0,
            mode,
            sample: sample.map(str::to_owned),
        };
        let mut out = String::new();
        write(&mut out, &[line(Some("validate"), Some("kinds order_paid; share 10%"))], now).unwrap();
        assert!(out.contains("data-mode=\"validate\""), "{out}");
        assert!(out.contains(">validate mode</span>") && out.contains("sample: kinds order_paid; share 10%"), "{out}");
        let mut out = String::new();
        write(&mut out, &[line(Some("live"), None), line(None, None)], now).unwrap();
        assert!(out.contains("<span class=\"muted\">live</span>") && !out.contains("validate mode"), "{out}");
        assert!(!out.contains("sample:"), "{out}");
    }

    #[test]
    fn a_paused_destination_never_shows_a_next_try_in_the_past() {
        let now = Utc::now();
        let past = now - chrono::Duration::hours(1);
        let later = now + chrono::Duration::minutes(10);
        let halted = LaneState { circuit: Circuit::Halted, open_until: Some(later), ..Default::default() };
        assert_eq!(next_try(Some(&halted), Some(past), now), Some(later), "not before the circuit reopens");
        let reopened = LaneState { circuit: Circuit::Halted, open_until: Some(past), ..Default::default() };
        assert_eq!(next_try(Some(&reopened), Some(past), now), Some(now), "a due probe is now, not an hour ago");
        assert_eq!(next_try(Some(&halted), None, now), None, "nothing waits: nothing to probe with");
        let far = now + chrono::Duration::hours(2);
        assert_eq!(next_try(Some(&halted), Some(far), now), Some(far));
    }
}
