//! Joining and planning: fill an event from the identity bridge, then decide for each routed
//! destination whether a delivery is due, and if not, why (SPEC §4 step 4, in its order).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::delivery::{reason, DeliveryState, Route};
use super::event::{Consent, ConsentState, Event, Identity};

mod sample;
pub use self::sample::{subject_in_share, subject_position, Sample};

/// Which consent a destination needs before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    Analytics,
    AdUserData,
}

/// What to do when `ad_user_data` consent is denied (or, unless assumed, missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPersonalDataDenied {
    /// Send without the personal fields.
    Strip,
    /// Do not send at all: `skipped:consent_denied`.
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentPolicy {
    pub purpose: ConsentPurpose,
    pub on_personal_data_denied: OnPersonalDataDenied,
    /// Treat consent that the event does not state as granted.
    pub assume_granted: bool,
}

/// The platform-specific rules planning asks of a destination. Pure: no IO.
pub trait Rules: Send + Sync {
    /// How old an event the platform accepts.
    fn window(&self) -> Duration;
    /// Whether the platform can attach the event to anyone.
    fn identity_ok(&self, event: &Event) -> bool;
    /// Every documented rule the would-be payload breaks; empty means valid.
    fn validate(&self, event: &Event, route: &Route, strip_personal: bool) -> Vec<String>;
    /// Whether the platform keeps one of a browser send and ours when they share an id.
    fn dedupes_with_browser(&self) -> bool;
    /// Whether a second send of this delivery is deduplicated by the platform on an id we fix (G4).
    fn dedupes_resend(&self, event: &Event, route: &Route) -> bool;
    /// How long after the event the platform still keeps one of the browser's copy and ours;
    /// `None`: no limit known (or no dedupe with the browser at all).
    fn browser_dedupe_window(&self) -> Option<Duration> {
        None
    }
    /// [`Rules::dedupes_resend`] for a resend leaving at `now`: a browser-tracked one past the
    /// dedupe window would not be kept apart from the browser's copy, so it is not resent.
    fn dedupes_resend_at(&self, event: &Event, route: &Route, now: DateTime<Utc>) -> bool {
        self.dedupes_resend(event, route) && past_browser_dedupe(self, event, route, now).is_none()
    }
    fn consent_policy(&self) -> &ConsentPolicy;
}

/// The plan for one destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub destination: String,
    pub route: Route,
    /// `Pending`, `Skipped` or `Rejected`.
    pub state: DeliveryState,
    pub reason: Option<&'static str>,
    pub messages: Vec<String>,
    pub strip_personal: bool,
    /// `Pending` with reason `awaiting_identity`: due (to be ended `skipped:no_identity`) at this
    /// time unless an identity capture re-plans it first.
    pub wait_until: Option<DateTime<Utc>>,
}

/// The catalog plus each destination's rules.
#[derive(Clone, Default)]
pub struct Planner {
    /// kind → [(destination name, route)], in configuration order.
    catalog: BTreeMap<String, Vec<(String, Route)>>,
    rules: BTreeMap<String, Arc<dyn Rules>>,
    /// destination → how long a delivery lacking identity waits for a capture (none: not at all).
    identity_waits: BTreeMap<String, Duration>,
    /// destination → its roll-out `sample` (none: everything).
    samples: BTreeMap<String, Sample>,
}

impl Planner {
    pub fn new(catalog: BTreeMap<String, Vec<(String, Route)>>, rules: BTreeMap<String, Arc<dyn Rules>>) -> Self {
        Self { catalog, rules, identity_waits: BTreeMap::new(), samples: BTreeMap::new() }
    }

    /// Sets each destination's `sample`: what it does not admit is planned `skipped:not_sampled`.
    pub fn with_samples(mut self, samples: BTreeMap<String, Sample>) -> Self {
        self.samples = samples;
        self
    }

    /// Why `destination`'s sample holds `event` back, if it does (the worker asks again of what a
    /// replay released: the sample may have changed since).
    pub fn sampled_out(&self, destination: &str, event: &Event) -> Option<String> {
        self.samples.get(destination)?.refusal(event)
    }

    /// Sets how long each destination waits for an identity that arrives after the event
    /// (`identity_wait_secs`); destinations not named, or with zero, do not wait.
    pub fn with_identity_waits(mut self, waits: BTreeMap<String, Duration>) -> Self {
        self.identity_waits = waits.into_iter().filter(|(_, w)| *w > Duration::zero()).collect();
        self
    }

    /// How long `destination` waits for a late identity.
    pub fn identity_wait(&self, destination: &str) -> Duration {
        self.identity_waits.get(destination).copied().unwrap_or_else(Duration::zero)
    }

    /// Plans one destination again with a stored route, after an identity capture joined more
    /// onto the event (`None`: the destination is no longer configured).
    pub fn replan(&self, event: &Event, destination: &str, route: &Route, now: DateTime<Utc>) -> Option<Planned> {
        let rules = self.rules.get(destination)?;
        let sample = self.samples.get(destination);
        Some(plan_one(destination, route, rules.as_ref(), self.identity_wait(destination), sample, event, now))
    }

    pub fn rules(&self, destination: &str) -> Option<&Arc<dyn Rules>> {
        self.rules.get(destination)
    }

    /// Plans every routed destination; an empty plan means the kind is `not_routed`.
    pub fn plan(&self, event: &Event, now: DateTime<Utc>) -> Vec<Planned> {
        let Some(routes) = self.catalog.get(event.kind.as_str()) else {
            return Vec::new();
        };
        routes
            .iter()
            .filter_map(|(dest, route)| {
                let rules = self.rules.get(dest)?;
                let sample = self.samples.get(dest);
                Some(plan_one(dest, route, rules.as_ref(), self.identity_wait(dest), sample, event, now))
            })
            .collect()
    }
}

fn plan_one(
    dest: &str,
    route: &Route,
    rules: &dyn Rules,
    identity_wait: Duration,
    sample: Option<&Sample>,
    event: &Event,
    now: DateTime<Utc>,
) -> Planned {
    let mut planned = Planned {
        destination: dest.to_owned(),
        route: route.clone(),
        state: DeliveryState::Pending,
        reason: None,
        messages: Vec::new(),
        strip_personal: false,
        wait_until: None,
    };
    // Identity may still arrive (a browser capture racing the webhook): until the wait ends, what
    // the capture can fill — the identity, and consent the event does not state — is not final.
    let wait_until = event.received_at.checked_add_signed(identity_wait).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let awaiting = identity_wait > Duration::zero() && now < wait_until && !rules.identity_ok(event);
    let end = |mut p: Planned, state, why: &'static str, messages: Vec<String>| {
        p.state = state;
        p.reason = Some(why);
        p.messages = messages;
        p
    };

    // 1. Consent.
    let policy = rules.consent_policy();
    let granted = |c: Option<ConsentState>| match c {
        Some(ConsentState::Granted) => true,
        Some(ConsentState::Denied) => false,
        None => policy.assume_granted,
    };
    let purpose_ok = match policy.purpose {
        ConsentPurpose::Analytics => granted(event.consent.analytics),
        ConsentPurpose::AdUserData => granted(event.consent.ad_user_data),
    };
    let purpose_unstated = match policy.purpose {
        ConsentPurpose::Analytics => event.consent.analytics.is_none(),
        ConsentPurpose::AdUserData => event.consent.ad_user_data.is_none(),
    };
    // Unstated consent may still come with the awaited capture; a denial is final.
    let decided_later = awaiting && purpose_unstated;
    if !purpose_ok && !decided_later {
        return end(planned, DeliveryState::Skipped, reason::CONSENT_DENIED, vec![]);
    }
    if !granted(event.consent.ad_user_data) && has_personal(&event.identity) {
        match policy.on_personal_data_denied {
            OnPersonalDataDenied::Strip => planned.strip_personal = true,
            OnPersonalDataDenied::Skip if awaiting && event.consent.ad_user_data.is_none() => {}
            OnPersonalDataDenied::Skip => {
                return end(planned, DeliveryState::Skipped, reason::CONSENT_DENIED, vec![]);
            }
        }
    }

    // 2. Browser overlap.
    if route.browser_tracked && !rules.dedupes_with_browser() {
        return end(planned, DeliveryState::Skipped, reason::BROWSER_TRACKED, vec![]);
    }

    // 3. Identity: wait for a capture while the destination's wait lasts, else skip.
    if !awaiting && !rules.identity_ok(event) {
        return end(planned, DeliveryState::Skipped, reason::NO_IDENTITY, vec![]);
    }

    // 4. Time window: never re-timed to fit.
    if outside_window(event, rules.window(), now) {
        return end(planned, DeliveryState::Skipped, reason::OUTSIDE_WINDOW, vec![]);
    }
    // The browser overlap again, in time: within the window, but past the platform's dedupe
    // window a server copy would be counted beside the browser's.
    if let Some(why) = past_browser_dedupe(rules, event, route, now) {
        return end(planned, DeliveryState::Skipped, reason::BROWSER_TRACKED, vec![why]);
    }
    // The roll-out's sample: only what would otherwise be sent (or wait) is held back, so a
    // replay after the sample widens sends nothing the checks above would have stopped.
    if let Some(why) = sample.and_then(|s| s.refusal(event)) {
        return end(planned, DeliveryState::Skipped, reason::NOT_SAMPLED, vec![why]);
    }
    if awaiting {
        // Validated when the capture re-plans it; ended by the worker if none comes.
        planned.reason = Some(reason::AWAITING_IDENTITY);
        planned.wait_until = Some(wait_until);
        return planned;
    }

    // 5. The platform's documented rules.
    let messages = rules.validate(event, route, planned.strip_personal);
    if !messages.is_empty() {
        return end(planned, DeliveryState::Rejected, reason::INVALID, messages);
    }
    planned
}

/// Why a browser-tracked delivery leaving at `now` would be counted twice: the platform dedupes
/// the browser's copy and ours only within its dedupe window after the event. `None`: it may go.
pub fn past_browser_dedupe<R: Rules + ?Sized>(
    rules: &R,
    event: &Event,
    route: &Route,
    now: DateTime<Utc>,
) -> Option<String> {
    let window = rules.browser_dedupe_window().filter(|_| route.browser_tracked)?;
    let age = now - event.occurred_at;
    (age > window).then(|| {
        format!(
            "outside the dedupe window: the browser's copy is {} h old, the platform dedupes ours with it for {} h",
            age.num_hours(),
            window.num_hours()
        )
    })
}

/// An event is outside the window when it is older than the window allows at `now`.
pub fn outside_window(event: &Event, window: Duration, now: DateTime<Utc>) -> bool {
    now - event.occurred_at > window
}

pub fn has_personal(identity: &Identity) -> bool {
    !identity.personal_fields().is_empty()
}

/// Fills the event's missing identity and consent fields from the identity bridge and records
/// which ones were joined. What the event itself carries always wins.
pub fn join(event: &mut Event, bridge: &Identity, bridge_consent: &Consent) {
    let identity = &mut event.identity;
    let mut joined = Vec::new();
    {
        macro_rules! fill_id {
            ($($field:ident),+) => {$(
                if identity.$field.is_none() && bridge.$field.is_some() {
                    identity.$field = bridge.$field.clone();
                    joined.push(concat!("identity.", stringify!($field)).to_owned());
                }
            )+};
        }
        fill_id!(
            client_id,
            session_id,
            user_id,
            email,
            phone,
            first_name,
            last_name,
            street,
            gender,
            date_of_birth,
            city,
            region,
            postal_code,
            country,
            gclid,
            gbraid,
            wbraid,
            fbp,
            fbc,
            li_fat_id,
            ip,
            user_agent,
            browser_event_id
        );
    }
    event.joined.extend(joined);
    let consent = &mut event.consent;
    let mut joined = Vec::new();
    for (target, source, name) in [
        (&mut consent.analytics, bridge_consent.analytics, "consent.analytics"),
        (&mut consent.ad_user_data, bridge_consent.ad_user_data, "consent.ad_user_data"),
        (&mut consent.ad_personalization, bridge_consent.ad_personalization, "consent.ad_personalization"),
    ] {
        if target.is_none() && source.is_some() {
            *target = source;
            joined.push(name.to_owned());
        }
    }
    event.joined.extend(joined);
}

#[cfg(test)]
mod tests;
