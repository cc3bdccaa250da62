//! Target order for one request: lower `priority` first; within a priority, a weighted
//! random permutation, so traffic splits by weight and each target is tried at most once
//! per round.

use rand::Rng;

use super::Target;

/// Indices into `targets`, in the order they should be tried.
pub fn attempt_order(targets: &[Target], rng: &mut impl Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..targets.len()).collect();
    idx.sort_by_key(|&i| targets[i].priority);
    let mut out = Vec::with_capacity(idx.len());
    let mut start = 0;
    while start < idx.len() {
        let prio = targets[idx[start]].priority;
        let end = idx[start..]
            .iter()
            .position(|&i| targets[i].priority != prio)
            .map_or(idx.len(), |p| start + p);
        let mut group: Vec<usize> = idx[start..end].to_vec();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|&i| targets[i].weight as u64).sum();
            let mut pick = rng.random_range(0..total.max(1));
            let pos = group
                .iter()
                .position(|&i| {
                    let w = targets[i].weight as u64;
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(group.remove(pos));
        }
        start = end;
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
