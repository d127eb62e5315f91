//! Splitting deliveries into GA4 requests: only events with the same request-level fields
//! (client id, user id, consent, user data, IP, user agent, location) may share a request, at most 25 of them, and the
//! body must stay under 130 kB (docs/platforms.md §GA4 "Consequence for batching", "Limits").

use std::collections::HashMap;

use super::payload::{body_len_bound, Ga4Event, MAX_BODY_BYTES};
use super::validate::MAX_EVENTS;

/// Groups `parts` into requests, as lists of indices into `parts`.
///
/// Deterministic: groups come in the order of their first event, and events keep their order
/// within a group. An event too large to share a request with anything goes alone (and is
/// then the platform's to refuse; validation at planning should have caught it).
pub fn split(parts: &[Ga4Event], batch_size: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.clamp(1, MAX_EVENTS);
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let g = *group_of.entry(p.header_json.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }

    let mut batches = Vec::new();
    for group in groups {
        let mut current: Vec<usize> = Vec::new();
        let mut events_len = 0;
        for i in group {
            let p = &parts[i];
            let header_len = p.header_json.len();
            let fits = current.len() < batch_size
                && body_len_bound(header_len, events_len + p.event_json.len(), current.len() + 1) < MAX_BODY_BYTES;
            if !current.is_empty() && !fits {
                batches.push(std::mem::take(&mut current));
                events_len = 0;
            }
            events_len += p.event_json.len();
            current.push(i);
        }
        if !current.is_empty() {
            batches.push(current);
        }
    }
    batches
}

/// Moves `items` into the batches `split` planned. Every item ends up in exactly one batch.
pub fn distribute<T>(items: Vec<T>, plan: &[Vec<usize>]) -> Vec<Vec<T>> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    plan.iter()
        .map(|batch| batch.iter().filter_map(|&i| slots.get_mut(i).and_then(Option::take)).collect())
        .filter(|b: &Vec<T>| !b.is_empty())
        .collect()
}
