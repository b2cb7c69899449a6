//! Where each phase starts and ends in scenario time: the named phases (for
//! shading charts) and the finer segments the timeline actually switches
//! at (a flapping phase is many down and up segments).

use std::time::Duration;

use crate::scenario::Scenario;

/// A named phase of one provider, in scenario time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSpan {
    pub provider: String,
    pub name: String,
    /// Position in the provider's `phases` list.
    pub index: usize,
    pub start: Duration,
    pub end: Duration,
}

/// A stretch with constant conditions: a whole phase, or one half of a
/// flap period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index into the scenario's providers in name order.
    pub provider: usize,
    /// Index into that provider's phases.
    pub phase: usize,
    /// In a flapping phase, whether this is the down half.
    pub down: bool,
    pub start: Duration,
    pub end: Duration,
}

/// Every provider's phases, providers in name order, phases in time order.
pub fn phase_spans(scenario: &Scenario) -> Vec<PhaseSpan> {
    scenario
        .providers
        .iter()
        .flat_map(|(name, provider)| {
            provider
                .phases
                .iter()
                .zip(scenario.phase_bounds(provider))
                .enumerate()
                .map(move |(index, (phase, (start, end)))| PhaseSpan {
                    provider: name.clone(),
                    name: phase.name.clone(),
                    index,
                    start,
                    end,
                })
        })
        .collect()
}

/// Every switch the timeline makes, sorted by start (ties keep provider
/// order). Flapping phases start down.
pub fn segments(scenario: &Scenario) -> Vec<Segment> {
    let mut out = Vec::new();
    for (p, provider) in scenario.providers.values().enumerate() {
        for (i, (start, end)) in scenario.phase_bounds(provider).into_iter().enumerate() {
            let flap = provider.phases.get(i).and_then(|ph| ph.flap.as_ref());
            let Some(flap) = flap.filter(|f| !f.period.is_zero()) else {
                out.push(Segment {
                    provider: p,
                    phase: i,
                    down: false,
                    start,
                    end,
                });
                continue;
            };
            let mut t = start;
            while t < end {
                let up_at = (t + flap.down_for).min(end);
                let next = (t + flap.period).min(end);
                out.push(Segment {
                    provider: p,
                    phase: i,
                    down: true,
                    start: t,
                    end: up_at,
                });
                if up_at < next {
                    out.push(Segment {
                        provider: p,
                        phase: i,
                        down: false,
                        start: up_at,
                        end: next,
                    });
                }
                t = next;
            }
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
name: t
duration: 20s
primary: a
providers:
  a:
    format: openai
    models: [m]
    phases:
      - { name: healthy, until: 5s }
      - name: flapping
        until: 12s
        flap: { period: 3s, down_for: 1s, down: { errors: { 503: 1.0 } } }
      - { name: recovered }
  b: { format: gemini, models: [g], phases: [ { name: healthy } ] }
"#;

    #[test]
    fn spans_and_flap_segments() {
        let s = Scenario::parse(YAML, "t.yaml").unwrap();
        let spans = phase_spans(&s);
        let secs = |n| Duration::from_secs(n);
        assert_eq!(spans.len(), 4);
        assert_eq!(
            (spans[1].name.as_str(), spans[1].start, spans[1].end),
            ("flapping", secs(5), secs(12))
        );
        assert_eq!((spans[3].provider.as_str(), spans[3].end), ("b", secs(20)));
        let a: Vec<(u64, u64, bool)> = segments(&s)
            .into_iter()
            .filter(|seg| seg.provider == 0)
            .map(|seg| (seg.start.as_secs(), seg.end.as_secs(), seg.down))
            .collect();
        assert_eq!(
            a,
            vec![
                (0, 5, false),
                (5, 6, true),
                (6, 8, false),
                (8, 9, true),
                (9, 11, false),
                (11, 12, true),
                (12, 20, false),
            ]
        );
    }
}
