//! Runs the gateway's clocks at the drill's speed. The simulated providers
//! compress their phases, latencies and hangs by `speed`; if the gateway
//! kept real-time timeouts, a 47 s hang compressed to 0.8 s would never
//! trip a 3 s first-token timeout, and a 30 s breaker ejection would last
//! half an hour of scenario time. So every duration in the config that
//! governs behaviour is divided by the same factor, and the whole system
//! plays the incident as it would happen, only faster.
//!
//! Not compressed: client-side quotas (`limits`), whose one-minute window
//! is fixed in the limiter; SLO windows, which the drill does not report
//! on; and the retry budget. The budget is a rate relative to the request
//! rate, and the drill's load is sent at real requests per second (time
//! compression shortens the drill, it does not multiply the load), so the
//! budget stays in real time too.

use std::time::Duration;

use bulwark::route::HedgeAfter;
use bulwark_gateway::GatewayConfig;

/// Durations never go below this: zero means "off" or "invalid" in places.
const FLOOR: Duration = Duration::from_micros(100);

/// `rps` is the drill's request rate in real seconds: the health window is
/// stretched, if need be, to hold enough requests to judge a rate by.
pub fn compress(config: &mut GatewayConfig, speed: f64, rps: f64) {
    if speed <= 1.0 {
        return;
    }
    let s = |d: Duration| d.div_f64(speed).max(FLOOR);
    for route in config.engine.routes.values_mut() {
        let route = &mut route.policy;
        let t = &mut route.timeouts;
        (t.deadline, t.attempt, t.first_token, t.stream_idle) = (
            s(t.deadline),
            s(t.attempt),
            s(t.first_token),
            s(t.stream_idle),
        );
        let b = &mut route.retry.backoff;
        (b.base, b.cap) = (s(b.base), s(b.cap));
        route.hedge_after = route.hedge_after.map(|h| match h {
            HedgeAfter::Fixed(d) => HedgeAfter::Fixed(s(d)),
            HedgeAfter::Percentile {
                percentile,
                fallback,
            } => HedgeAfter::Percentile {
                percentile,
                fallback: s(fallback),
            },
        });
        if let Some(cache) = &mut route.cache {
            (cache.ttl, cache.max_stale) = (s(cache.ttl), s(cache.max_stale));
        }
    }
    for provider in config.engine.providers.values_mut() {
        provider.connect_timeout = s(provider.connect_timeout);
        if let Some(probe) = &mut provider.probe {
            probe.every = s(probe.every);
        }
    }
    let b = &mut config.engine.breaker;
    b.window = s(b.window);
    b.slow_call = b.slow_call.map(s);
    (b.base_ejection, b.max_ejection, b.probe_timeout) =
        (s(b.base_ejection), s(b.max_ejection), s(b.probe_timeout));
    let h = &mut config.observe.health;
    (
        h.window,
        h.evaluate_every,
        h.incident_after,
        h.resolve_after,
    ) = (
        s(h.window),
        s(h.evaluate_every),
        s(h.incident_after),
        s(h.resolve_after),
    );
    // The load is not compressed, so a compressed window may hold only a
    // request or two: too few to judge an error rate by, and a failing
    // target would look healthy. Four times `min_volume` are kept in it.
    if rps > 0.0 {
        let needed = Duration::from_secs_f64(f64::from(h.min_volume.max(1)) * 4.0 / rps);
        h.window = h.window.max(needed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behavioural_duration_runs_faster() {
        let yaml = "providers:\n  p: { kind: openai, api_key: k }\nroutes:\n  r: { targets: [p/m], deadline: 60s, first_token_timeout: 3s, hedge_after: 2s }\nbreaker: { base_ejection: 30s }\n";
        let Ok(mut config) = GatewayConfig::from_yaml(yaml, "test", &|_| None) else {
            panic!("valid config");
        };
        compress(&mut config, 60.0, 10.0);
        let Some(route) = config.engine.routes.get("r").map(|r| &r.policy) else {
            panic!("route");
        };
        assert_eq!(route.timeouts.deadline, Duration::from_secs(1));
        assert_eq!(route.timeouts.first_token, Duration::from_millis(50));
        assert_eq!(
            route.hedge_after,
            Some(HedgeAfter::Fixed(Duration::from_secs(2).div_f64(60.0)))
        );
        assert_eq!(
            config.engine.breaker.base_ejection,
            Duration::from_millis(500)
        );
        assert_eq!(
            config.observe.health.evaluate_every,
            Duration::from_secs(5).div_f64(60.0)
        );
        assert_eq!(config.engine.retry_budget.min_per_second, 10.0);
        // 60 s / 60 is 1 s, which would hold 10 requests at 10 rps; the
        // window must hold 4 × min_volume (5) = 20.
        assert_eq!(config.observe.health.window, Duration::from_secs(2));
    }
}
