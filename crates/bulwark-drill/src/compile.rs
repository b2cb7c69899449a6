//! Turns a scenario's conditions into simulator settings: latency spreads
//! into sampled distributions, fault shares into first-match rules with the
//! right conditional probabilities, quotas as they are.

use std::time::Duration;

use bulwark_sim::{
    Distribution, Fault, Latency, LatencyDist, SimConfig, SimPhase, StatusFault, mix_rules,
};

use crate::clock::Speed;
use crate::scenario::{Conditions, ErrorShare, LatencySpec, Provider, Spread};

/// Quantiles standing in for a spread of hang or stall lengths: the sim's
/// faults have one length each, so a spread becomes five equally likely
/// lengths at the 10th, 30th, 50th, 70th and 90th percentiles.
const BUCKET_Z: [f64; 5] = [-1.281_551_6, -0.524_400_5, 0.0, 0.524_400_5, 1.281_551_6];

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn distribution(s: Spread) -> Distribution {
    match s {
        Spread::Fixed(d) => Distribution::Fixed(millis(d)),
        Spread::Percentiles { p50, p95 } => {
            Distribution::log_normal(p50.as_secs_f64() * 1000.0, p95.as_secs_f64() * 1000.0)
        }
    }
}

/// Fixed components go into the base pacing, spreads into the sampled
/// distribution (so `GET /_sim/phase` reads the way the scenario does).
fn latency(spec: &LatencySpec) -> (Latency, Option<LatencyDist>) {
    let mut base = Latency::default();
    let mut dist = LatencyDist::default();
    let parts: [(Option<Spread>, &mut u64, &mut Option<Distribution>); 3] = [
        (spec.headers, &mut base.headers_ms, &mut dist.headers),
        (
            spec.first_token,
            &mut base.first_token_ms,
            &mut dist.first_token,
        ),
        (
            spec.per_token,
            &mut base.token_interval_ms,
            &mut dist.token_interval,
        ),
    ];
    for (spread, fixed, sampled) in parts {
        match spread {
            Some(Spread::Fixed(d)) => *fixed = millis(d),
            Some(s @ Spread::Percentiles { .. }) => *sampled = Some(distribution(s)),
            None => {}
        }
    }
    let any_sampled = dist != LatencyDist::default();
    (base, any_sampled.then_some(dist))
}

/// Lengths (ms) and their shares for a hang or stall of `share` of requests.
fn lengths(spread: Spread, share: f64) -> Vec<(u64, f64)> {
    match distribution(spread) {
        Distribution::Fixed(ms) => vec![(ms, share)],
        d => match d.log_normal_params() {
            Some((mu, sigma)) => BUCKET_Z
                .iter()
                .map(|z| {
                    let ms = (mu + z * sigma).exp().round() as u64;
                    (ms, share / BUCKET_Z.len() as f64)
                })
                .collect(),
            None => vec![(0, share)],
        },
    }
}

fn status_fault(status: u16, e: &ErrorShare) -> Fault {
    let ErrorShare::Detailed(d) = e else {
        return Fault::status(status);
    };
    Fault::Status(StatusFault {
        error_type: d.error_type.clone(),
        code: d.code.clone(),
        message: d.message.clone(),
        retry_after: d.retry_after.map(|r| r.as_secs_f64().ceil() as u64),
        html: d.html,
        ..StatusFault::new(status)
    })
}

/// Each fault with its unconditional share of requests.
pub fn fault_shares(c: &Conditions) -> Vec<(Fault, f64)> {
    let mut out: Vec<(Fault, f64)> = c
        .errors
        .iter()
        .map(|(status, e)| (status_fault(*status, e), e.share()))
        .collect();
    if let Some(e) = c.error_event {
        let fault = Fault::ErrorEvent {
            after_chunks: e.after,
            status: e.status,
        };
        out.push((fault, e.share));
    }
    if let Some(share) = c.reset {
        out.push((Fault::ConnectionReset, share));
    }
    if let Some(h) = &c.hang {
        out.extend(
            lengths(h.length, h.share)
                .into_iter()
                .map(|(ms, share)| (Fault::hang(ms), share)),
        );
    }
    if let Some(s) = &c.stall {
        out.extend(
            lengths(s.length, s.share)
                .into_iter()
                .map(|(ms, share)| (Fault::stall(s.after, ms), share)),
        );
    }
    if let Some(cut) = c.cut {
        out.push((Fault::cut(cut.after), cut.share));
    }
    out
}

/// The simulator phase for `conditions`, with `provider_latency` filling
/// the latency components the conditions leave out.
pub fn sim_phase(conditions: &Conditions, provider_latency: Option<&LatencySpec>) -> SimPhase {
    let spec = match &conditions.latency {
        Some(l) => l.over(provider_latency),
        None => provider_latency.cloned().unwrap_or_default(),
    };
    let (latency, latency_dist) = latency(&spec);
    SimPhase {
        latency,
        latency_dist,
        faults: mix_rules(fault_shares(conditions)),
        rate_limit_rpm: conditions.rpm,
    }
}

/// A config to start a provider's simulator with: its models, the speed,
/// and its first phase already in place.
pub fn sim_config(provider: &Provider, speed: Speed) -> SimConfig {
    let mut config = SimConfig {
        models: provider.models.clone(),
        speed: speed.factor(),
        ..SimConfig::default()
    };
    if let Some(first) = provider.phases.first() {
        sim_phase(&first.conditions(), provider.latency.as_ref()).apply_to(&mut config);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{HangSpec, StallSpec};
    use std::collections::BTreeMap;

    #[test]
    fn shares_become_conditional_rules() {
        let c = Conditions {
            errors: BTreeMap::from([(529, ErrorShare::Share(0.4)), (500, ErrorShare::Share(0.2))]),
            hang: Some(HangSpec {
                share: 0.1,
                length: Spread::Fixed(Duration::from_secs(47)),
            }),
            rpm: Some(30),
            ..Conditions::default()
        };
        let phase = sim_phase(&c, None);
        let p: Vec<f64> = phase.faults.iter().map(|r| r.probability).collect();
        // BTreeMap order: 500 first.
        assert!((p[0] - 0.2).abs() < 1e-12);
        assert!((p[1] - 0.4 / 0.8).abs() < 1e-12);
        assert!((p[2] - 0.1 / 0.4).abs() < 1e-12);
        assert_eq!(phase.faults[2].fault, Fault::hang(47_000));
        assert_eq!(phase.rate_limit_rpm, Some(30));
    }

    #[test]
    fn spread_lengths_become_five_buckets() {
        let c = Conditions {
            stall: Some(StallSpec {
                share: 0.5,
                after: 2,
                length: Spread::Percentiles {
                    p50: Duration::from_secs(10),
                    p95: Duration::from_secs(40),
                },
            }),
            ..Conditions::default()
        };
        let shares = fault_shares(&c);
        assert_eq!(shares.len(), 5);
        assert!((shares.iter().map(|s| s.1).sum::<f64>() - 0.5).abs() < 1e-12);
        assert_eq!(shares[2].0, Fault::stall(2, 10_000));
        let Fault::Stall { duration_ms, .. } = shares[4].0 else {
            panic!("not a stall")
        };
        assert!((10_000..40_000).contains(&duration_ms), "{duration_ms}");
    }

    #[test]
    fn latency_inherits_from_the_provider() {
        let provider = LatencySpec {
            first_token: Some(Spread::Fixed(Duration::from_millis(300))),
            per_token: Some(Spread::Fixed(Duration::from_millis(20))),
            ..LatencySpec::default()
        };
        let c = Conditions {
            latency: Some(LatencySpec {
                first_token: Some(Spread::Percentiles {
                    p50: Duration::from_secs(2),
                    p95: Duration::from_secs(8),
                }),
                ..LatencySpec::default()
            }),
            ..Conditions::default()
        };
        let phase = sim_phase(&c, Some(&provider));
        assert_eq!(phase.latency.token_interval_ms, 20);
        assert_eq!(
            phase.latency_dist.unwrap().first_token,
            Some(Distribution::log_normal(2000.0, 8000.0))
        );
        let healthy = sim_phase(&Conditions::default(), Some(&provider));
        assert_eq!(healthy.latency.first_token_ms, 300);
        assert!(healthy.latency_dist.is_none());
        assert!(healthy.faults.is_empty());
    }
}
