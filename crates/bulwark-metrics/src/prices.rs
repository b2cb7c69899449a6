//! Configured token prices, for the estimated-spend counter.

use std::collections::HashMap;

/// USD per million tokens, input and output, by `provider/model` target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    pub per_target: HashMap<String, (f64, f64)>,
}

impl Prices {
    /// The configured prices, re-keyed from per-provider model names to the
    /// `provider/model` target labels records carry.
    pub fn from_config(config: &bulwark::Config) -> Prices {
        let per_target = config
            .providers
            .iter()
            .flat_map(|(provider, p)| {
                p.prices.iter().map(move |(model, price)| {
                    (format!("{provider}/{model}"), (price.input, price.output))
                })
            })
            .collect();
        Prices { per_target }
    }

    /// Cost of a call's tokens, if the target has a price.
    pub fn cost(&self, target: &str, input_tokens: u64, output_tokens: u64) -> Option<f64> {
        let (input, output) = self.per_target.get(target)?;
        Some((input_tokens as f64 * input + output_tokens as f64 * output) / 1_000_000.0)
    }
}
