//! Splitting deliveries into `events:ingest` requests: at most `batch_size` (≤ 2,000) events and
//! at most 10 destinations — conversion actions — per request (ingestion_service.proto;
//! docs/platforms.md §Google Ads). Consent travels per event, so it does not split requests.

use super::payload::IngestEvent;
use super::validate::{MAX_DESTINATIONS, MAX_EVENTS};

/// Groups `parts` into requests, as lists of indices into `parts`.
///
/// Deterministic: events of one conversion action stay together and in order, actions come in
/// the order of their first event, and a request is closed when full or when an eleventh action
/// would join it.
pub fn split(parts: &[IngestEvent], batch_size: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.clamp(1, MAX_EVENTS);
    let mut actions: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        match actions.iter_mut().find(|(a, _)| *a == p.action) {
            Some((_, members)) => members.push(i),
            None => actions.push((&p.action, vec![i])),
        }
    }
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_actions = 0;
    for (_, members) in actions {
        if current_actions == MAX_DESTINATIONS {
            batches.push(std::mem::take(&mut current));
            current_actions = 0;
        }
        current_actions += 1;
        for i in members {
            if current.len() == batch_size {
                batches.push(std::mem::take(&mut current));
                current_actions = 1;
            }
            current.push(i);
        }
    }
    if !current.is_empty() {
        batches.push(current);
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
