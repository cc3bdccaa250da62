//! Target order for one request: lower `priority` first; within a priority, a weighted
//! random permutation, so traffic splits by weight and each target is tried at most once
//! per round.

use rand::Rng;

use super::Target;

/// Indices into `targets`, in the order they should be tried.
pub fn attempt_order(targets: &[Target], rng: &mut impl Rng) -> Vec<usize> {
    let mut ranked: Vec<(usize, &Target)> = targets.iter().enumerate().collect();
    ranked.sort_by_key(|(_, t)| t.priority);
    let mut out = Vec::with_capacity(ranked.len());
    for same_priority in ranked.chunk_by(|a, b| a.1.priority == b.1.priority) {
        let mut group: Vec<(usize, u64)> = same_priority
            .iter()
            .map(|(i, t)| (*i, u64::from(t.weight)))
            .collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|(_, w)| w).sum();
            let mut pick = rng.random_range(0..total.max(1));
            let pos = group
                .iter()
                .position(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(group.remove(pos).0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn t(weight: u32, priority: u32) -> Target {
        Target {
            provider: 0,
            upstream_model: String::new(),
            weight,
            priority,
        }
    }

    #[test]
    fn priorities_come_first() {
        let targets = vec![t(1, 2), t(1, 0), t(1, 1)];
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(attempt_order(&targets, &mut rng), vec![1, 2, 0]);
    }

    #[test]
    fn weights_split_traffic() {
        let targets = vec![t(3, 0), t(1, 0)];
        let mut rng = StdRng::seed_from_u64(1);
        let firsts = (0..4000)
            .filter(|_| attempt_order(&targets, &mut rng)[0] == 0)
            .count();
        // Expect ~3000 of 4000; the bound is > 6 standard deviations wide.
        assert!((2800..3200).contains(&firsts), "{firsts}");
    }

    #[test]
    fn every_target_appears_once() {
        let targets = vec![t(5, 0), t(1, 0), t(2, 1), t(9, 1)];
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            let mut order = attempt_order(&targets, &mut rng);
            order.sort();
            assert_eq!(order, vec![0, 1, 2, 3]);
        }
    }
}
