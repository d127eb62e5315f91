//! Batching: at most `batch_size` events and ten conversion actions per request.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::platforms::google_ads::batch::split;
use crate::platforms::google_ads::MAX_DESTINATIONS;

fn parts(actions: &[u32]) -> Vec<IngestEvent> {
    let shape = shape();
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| IngestEvent::new(&purchase(&i.to_string()), &route(&a.to_string()), false, &shape))
        .collect()
}

#[test]
fn actions_stay_together_and_requests_close_at_ten_actions() {
    let p = parts(&[1, 2, 1, 3, 2]);
    assert_eq!(split(&p, 2000), vec![vec![0, 2, 1, 4, 3]]);
    assert_eq!(split(&p, 2), vec![vec![0, 2], vec![1, 4], vec![3]]);
    let twelve: Vec<u32> = (1..=12).collect();
    let batches = split(&parts(&twelve), 2000);
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].len(), 10);
    assert_eq!(batches[1], vec![10, 11]);
}

proptest! {
    #[test]
    fn every_event_once_within_the_limits(actions in proptest::collection::vec(1u32..15, 0..60), size in 1usize..8) {
        let p = parts(&actions);
        let batches = split(&p, size);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..p.len()).collect::<Vec<_>>());
        for b in &batches {
            prop_assert!(!b.is_empty() && b.len() <= size);
            let distinct: BTreeSet<&str> = b.iter().map(|&i| p[i].action.as_str()).collect();
            prop_assert!(distinct.len() <= MAX_DESTINATIONS);
            // Within one action, events keep their order.
            for a in &distinct {
                let order: Vec<usize> = b.iter().copied().filter(|&i| p[i].action == *a).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
            }
        }
        prop_assert_eq!(batches.clone(), split(&p, size), "deterministic");
    }
}
