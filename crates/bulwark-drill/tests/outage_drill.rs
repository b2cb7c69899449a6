//! The headline check: the provider outage from the mission brief, against
//! the demo config, through a real gateway and real simulated providers.

mod common;

use common::{demo_config, shipped};

use bulwark_drill::Speed;
use bulwark_drill::outcome::Path as Via;
use bulwark_drill::run::{DrillOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_outage_is_invisible_through_bulwark() {
    // Fast enough for a test, slow enough that a debug build's own work
    // (a few milliseconds a request) stays well inside the compressed
    // timeouts: 10 s to the first token is 42 ms here.
    let speed = 240.0;
    let drill = run(
        DrillOptions {
            scenario: shipped("provider-outage.yaml"),
            config: demo_config(),
            config_name: "demo".into(),
            route: None,
            speed: Speed::new(speed).unwrap(),
            rps: Some(8.0),
            duration: None,
            store: None,
            listen: "127.0.0.1:0".into(),
            seed: 42,
            instances: 1,
        },
        |_| {},
    )
    .await
    .unwrap();
    let data = &drill.data;
    let bulwark: Vec<_> = data
        .sent
        .iter()
        .filter(|s| s.path == Via::Bulwark)
        .collect();
    let direct: Vec<_> = data.sent.iter().filter(|s| s.path == Via::Direct).collect();
    let ok = |v: &[&bulwark_drill::outcome::Sent]| v.iter().filter(|s| s.ok).count();
    eprintln!(
        "bulwark {}/{} ok, direct {}/{} ok, calls {:?}, allowance {}, markers {}",
        ok(&bulwark),
        bulwark.len(),
        ok(&direct),
        direct.len(),
        data.upstream_calls,
        data.retry_budget_allowance,
        data.markers.len()
    );
    for failed in bulwark.iter().filter(|s| !s.ok) {
        eprintln!("failed through bulwark: {failed:?}");
    }
    // Every request sent on both paths, each once.
    assert_eq!(bulwark.len(), direct.len());
    assert!(bulwark.len() > 300, "{}", bulwark.len());
    // At least 99.9 % through Bulwark.
    assert!(
        ok(&bulwark) * 1000 >= bulwark.len() * 999,
        "{} of {}",
        ok(&bulwark),
        bulwark.len()
    );
    // Direct fails for most of the outage.
    let outage = |s: &&&bulwark_drill::outcome::Sent| {
        let t = data.scenario_time(s.at);
        t >= std::time::Duration::from_secs(30 * 60) && t < std::time::Duration::from_secs(120 * 60)
    };
    let in_outage: Vec<_> = direct.iter().filter(outage).collect();
    let direct_ok_in_outage = in_outage.iter().filter(|s| s.ok).count();
    assert!(
        direct_ok_in_outage * 2 < in_outage.len(),
        "{direct_ok_in_outage} of {}",
        in_outage.len()
    );
    // No answer through Bulwark took longer than the route's deadline
    // (latencies are in scenario time).
    let slowest = bulwark.iter().map(|s| s.latency).max().unwrap();
    assert!(
        slowest <= data.deadline,
        "{slowest:?} > {:?}",
        data.deadline
    );
    // Amplification within the retry budget.
    let calls: u64 = data.upstream_calls.iter().map(|(_, n)| n).sum();
    assert!(
        calls <= data.retry_budget_allowance,
        "{calls} > {}",
        data.retry_budget_allowance
    );
    assert!(!data.incidents.is_empty(), "an incident was opened");
}
