//! Which routes fallback is carrying: a route with an upstream in an
//! outage whose requests other upstreams are answering. Made from the live
//! component states and from which targets actually answered the route's
//! recent requests, so the page can say "Anthropic is down; every request
//! is being served by OpenAI" instead of showing red next to green.

use bulwark::observe::component::ComponentState;
use bulwark::observe::snapshot::Absorbed;

use crate::window::Served;

/// One route's entry, or `None` when nothing is being absorbed: no
/// upstream of the route is out, or none of its requests was answered by
/// an upstream that is not out (then the route's own state tells it).
/// `targets` are the route's upstreams with their shown state.
pub(crate) fn absorbed(
    route: &str,
    targets: &[(String, ComponentState)],
    served: &Served,
) -> Option<Absorbed> {
    // Maintenance sorts below outages and is announced by an admin, not
    // something fallback "absorbs".
    let down: Vec<(String, ComponentState)> = targets
        .iter()
        .filter(|(_, state)| *state >= ComponentState::PartialOutage)
        .cloned()
        .collect();
    if down.is_empty() {
        return None;
    }
    let serving: Vec<String> = served
        .by_target
        .iter()
        .filter(|(target, count)| *count > 0 && !down.iter().any(|(d, _)| d == target))
        .map(|(target, _)| target.clone())
        .collect();
    if serving.is_empty() {
        return None;
    }
    Some(Absorbed {
        route: route.to_string(),
        down,
        serving,
        requests: served.requests,
        failed: served.failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::*;

    fn targets(states: &[(&str, ComponentState)]) -> Vec<(String, ComponentState)> {
        states.iter().map(|(t, s)| (t.to_string(), *s)).collect()
    }

    fn served(requests: u32, failed: u32, by: &[(&str, u32)]) -> Served {
        Served {
            requests,
            failed,
            by_target: by.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn a_primary_out_and_a_backup_answering_is_absorbed() {
        let found = absorbed(
            "chat",
            &targets(&[
                ("anthropic/claude", MajorOutage),
                ("openai/gpt", Operational),
            ]),
            &served(40, 0, &[("openai/gpt", 40)]),
        );
        assert_eq!(
            found,
            Some(Absorbed {
                route: "chat".into(),
                down: vec![("anthropic/claude".into(), MajorOutage)],
                serving: vec!["openai/gpt".into()],
                requests: 40,
                failed: 0,
            })
        );
    }

    #[test]
    fn nothing_is_absorbed_without_an_outage_or_without_a_backup_answering() {
        let healthy = targets(&[("a/x", DegradedPerformance), ("b/y", UnderMaintenance)]);
        assert_eq!(
            absorbed("chat", &healthy, &served(5, 0, &[("a/x", 5)])),
            None
        );
        let out = targets(&[("a/x", MajorOutage), ("b/y", PartialOutage)]);
        // Only the failing upstreams answered: that is the route's outage.
        assert_eq!(absorbed("chat", &out, &served(5, 3, &[("b/y", 2)])), None);
        assert_eq!(absorbed("chat", &out, &served(0, 0, &[])), None);
    }
}
