//! The order in which one request tries a route's targets. Tiers are tried
//! in order; within a tier, targets share the load, by weighted random draw
//! or by least latency (power of two choices over peak-EWMA first-token
//! time: two random picks, the faster one first). The rest of the tier
//! follows as fallbacks.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    Weighted,
    LeastLatency,
}

/// `tiers` are ranges of target indices; `weights` and `costs` (seconds of
/// estimated first-token time, `None` when unknown) are per target.
pub fn plan(
    tiers: &[Range<usize>],
    weights: &[u32],
    costs: &[Option<f64>],
    balance: Balance,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let mut order = Vec::with_capacity(weights.len());
    for tier in tiers {
        let members: Vec<usize> = tier.clone().collect();
        if members.len() < 2 {
            order.extend(members);
            continue;
        }
        match balance {
            Balance::Weighted => order.extend(weighted_order(members, weights, rng)),
            Balance::LeastLatency => order.extend(least_latency_order(members, costs, rng)),
        }
    }
    order
}

/// Draws without replacement, each pick in proportion to its weight.
fn weighted_order(mut members: Vec<usize>, weights: &[u32], rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order = Vec::with_capacity(members.len());
    while !members.is_empty() {
        let total: u64 = members.iter().map(|&m| u64::from(weights[m])).sum();
        let pick = if total == 0 {
            rng.usize(..members.len())
        } else {
            let mut ticket = rng.u64(..total);
            members
                .iter()
                .position(|&m| {
                    let weight = u64::from(weights[m]);
                    if ticket < weight {
                        true
                    } else {
                        ticket -= weight;
                        false
                    }
                })
                .unwrap_or(0)
        };
        order.push(members.swap_remove(pick));
    }
    order
}

fn least_latency_order(
    mut members: Vec<usize>,
    costs: &[Option<f64>],
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    // An untried target is assumed fast, so that it gets tried.
    let cost = |m: usize| costs[m].unwrap_or(0.0);
    let a = rng.usize(..members.len());
    let mut b = rng.usize(..members.len() - 1);
    if b >= a {
        b += 1;
    }
    let first = if cost(members[b]) < cost(members[a]) {
        members[b]
    } else {
        members[a]
    };
    members.retain(|&m| m != first);
    members.sort_by(|&x, &y| cost(x).total_cmp(&cost(y)));
    let mut order = vec![first];
    order.extend(members);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_stay_in_order_and_weights_share_the_load() {
        let tiers = [0..2, 2..3];
        let weights = [3, 1, 1];
        let costs = [None; 3];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first = [0u32; 3];
        for _ in 0..4000 {
            let order = plan(&tiers, &weights, &costs, Balance::Weighted, &mut rng);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "the second tier always comes last");
            first[order[0]] += 1;
        }
        let share = f64::from(first[0]) / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "weight 3 of 4 took {share}");
    }

    #[test]
    fn least_latency_prefers_the_faster_of_two_choices() {
        let tiers: Vec<Range<usize>> = std::iter::once(0..3).collect();
        let costs = [Some(2.0), Some(0.1), Some(1.0)];
        let mut rng = fastrand::Rng::with_seed(1);
        let mut first = [0u32; 3];
        for _ in 0..3000 {
            let order = plan(&tiers, &[1, 1, 1], &costs, Balance::LeastLatency, &mut rng);
            first[order[0]] += 1;
        }
        // The slowest target can never win a pair; the fastest wins every
        // pair it is drawn into (2 of 3 pairs).
        assert_eq!(first[0], 0);
        let fastest = f64::from(first[1]) / 3000.0;
        assert!((fastest - 2.0 / 3.0).abs() < 0.04, "{fastest}");
    }
}
