//! Fault mixes: "45 % 529, 25 % 500, 10 % hangs" as an operator says it.
//!
//! Rules are checked in order and the first that fires wins, so a rule's
//! `probability` is conditional on every earlier rule having passed. Writing
//! the unconditional shares straight into rules would under-serve every
//! later fault (a 40 % / 20 % mix would give 40 % and 12 %); [`mix_rules`]
//! does the conversion once, here.

use crate::fault::{Fault, FaultRule};

/// Rules that give each fault its unconditional `share` of matching
/// requests (shares are clamped to 0..=1). Entries are served in order, so
/// once the shares reach a total of 1 the later entries never fire.
pub fn mix_rules(shares: impl IntoIterator<Item = (Fault, f64)>) -> Vec<FaultRule> {
    let mut remaining = 1.0_f64;
    let mut rules = Vec::new();
    for (fault, share) in shares {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let probability = if remaining <= f64::EPSILON {
            0.0
        } else {
            (share / remaining).min(1.0)
        };
        remaining = (remaining - share).max(0.0);
        if probability > 0.0 {
            rules.push(FaultRule::always(fault).with_probability(probability));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::select;
    use crate::format::Format;
    use std::collections::BTreeMap;

    #[test]
    fn conditional_probabilities() {
        let rules = mix_rules([(Fault::status(529), 0.4), (Fault::status(500), 0.2)]);
        assert_eq!(rules.len(), 2);
        assert!((rules[0].probability - 0.4).abs() < 1e-12);
        assert!((rules[1].probability - 0.2 / 0.6).abs() < 1e-12);
        let full = mix_rules([(Fault::status(503), 1.0), (Fault::status(500), 0.5)]);
        assert_eq!(full.len(), 1);
        assert!(mix_rules([(Fault::status(503), 0.0)]).is_empty());
    }

    #[test]
    fn drawn_shares_match_the_mix() {
        fastrand::seed(20_240_910);
        let mix = [
            (Fault::status(529), 0.40),
            (Fault::status(500), 0.20),
            (Fault::status(503), 0.05),
            (Fault::hang(47_000), 0.10),
            (Fault::stall(3, 5_000), 0.05),
        ];
        let mut rules = mix_rules(mix.clone());
        let n = 20_000;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let label = select(&mut rules, Format::Anthropic, "m", true)
                .map_or_else(|| "none".to_string(), |f| f.label());
            *seen.entry(label).or_default() += 1;
        }
        let share = |label: &str| *seen.get(label).unwrap_or(&0) as f64 / n as f64;
        for (label, want) in [
            ("status_529", 0.40),
            ("status_500", 0.20),
            ("status_503", 0.05),
            ("hang", 0.10),
            ("stall", 0.05),
            ("none", 0.20),
        ] {
            let got = share(label);
            assert!((got - want).abs() < 0.02, "{label}: {got} vs {want}");
        }
    }
}
