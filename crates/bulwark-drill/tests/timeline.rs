//! A tiny scenario replayed at high speed against real simulators.

use std::collections::HashMap;
use std::time::Duration;

use bulwark_drill::{Scenario, Speed, Timeline, scenario_to_wall, sim_config};
use bulwark_sim::SimServer;
use serde_json::json;

// At speed 10 each 3 s phase lasts 300 ms of wall time.
const YAML: &str = r#"
name: tiny
duration: 9s
primary: a
providers:
  a:
    format: openai
    models: [gpt-4o-mini]
    phases:
      - { name: healthy, until: 3s }
      - { name: broken, until: 6s, errors: { 503: 1.0 } }
      - { name: limited, rpm: 1 }
  b:
    format: anthropic
    models: [claude-sonnet-4-5]
    phases:
      - { name: healthy, until: 3s }
      - name: flapping
        flap: { period: 2s, down_for: 1s, down: { errors: { 529: 1.0 } } }
"#;

#[expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]
async fn status(client: &reqwest::Client, url: &str) -> u16 {
    let body = json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}]});
    client
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn phases_switch_on_the_compressed_clock() {
    let scenario = Scenario::parse(YAML, "tiny.yaml").unwrap();
    let speed = Speed::new(10.0).unwrap();
    let a = SimServer::start("127.0.0.1:0", sim_config(&scenario.providers["a"], speed))
        .await
        .unwrap();
    let b = SimServer::start("127.0.0.1:0", sim_config(&scenario.providers["b"], speed))
        .await
        .unwrap();
    let sims = HashMap::from([
        ("a".to_string(), a.sim.clone()),
        ("b".to_string(), b.sim.clone()),
    ]);
    let mut timeline = Timeline::start(&scenario, speed, sims).unwrap();
    assert_eq!(timeline.current_phase("a"), Some("healthy"));
    assert_eq!(timeline.current_phase("nope"), None);
    assert_eq!(timeline.phases().len(), 5);
    assert_eq!(b.sim.config().speed, 10.0);

    let client = reqwest::Client::new();
    // Sample every provider's status at a point well inside each phase;
    // only count a sample when the phase was the same before and after it.
    let mut seen: HashMap<&str, Vec<u16>> = HashMap::new();
    for t in [1500, 4500, 7500] {
        let at = timeline.started() + scenario_to_wall(Duration::from_millis(t), speed);
        tokio::time::sleep_until(at).await;
        let before = timeline.current_phase("a").unwrap().to_string();
        let first = status(&client, &a.url()).await;
        let second = status(&client, &a.url()).await;
        if timeline.current_phase("a").unwrap() == before {
            let name: &str = match before.as_str() {
                "healthy" => "healthy",
                "broken" => "broken",
                _ => "limited",
            };
            seen.entry(name).or_default().extend([first, second]);
        }
    }
    assert_eq!(seen.get("healthy"), Some(&vec![200, 200]), "{seen:?}");
    assert_eq!(seen.get("broken"), Some(&vec![503, 503]), "{seen:?}");
    // One request a scenario minute: the second in the same window is refused.
    assert_eq!(seen.get("limited"), Some(&vec![200, 429]), "{seen:?}");

    // b flaps from 3 s: down 3-4 s, up 4-5 s, down 5-6 s, ...
    assert_eq!(timeline.current_phase("b"), Some("flapping"));
    let flaps: Vec<_> = timeline
        .segments()
        .iter()
        .filter(|s| s.provider == 1 && s.phase == 1)
        .map(|s| (s.start.as_secs(), s.down))
        .collect();
    assert_eq!(flaps[..3], [(3, true), (4, false), (5, true)]);

    tokio::time::timeout(Duration::from_secs(2), timeline.finished())
        .await
        .unwrap()
        .unwrap();
    assert!(timeline.is_finished());
    assert_eq!(timeline.elapsed(), Duration::from_secs(9));
    assert_eq!(timeline.current_phase("a"), Some("limited"));
}

#[tokio::test]
async fn a_missing_simulator_is_an_error() {
    let scenario = Scenario::parse(YAML, "tiny.yaml").unwrap();
    let speed = Speed::new(10.0).unwrap();
    let a = SimServer::start("127.0.0.1:0", sim_config(&scenario.providers["a"], speed))
        .await
        .unwrap();
    let sims = HashMap::from([("a".to_string(), a.sim.clone())]);
    let err = Timeline::start(&scenario, speed, sims).err().unwrap();
    assert_eq!(err.to_string(), "no simulator was given for provider `b`");
}
