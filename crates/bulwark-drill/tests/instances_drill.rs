//! `bulwark drill --instances 3`: the article's outage against three
//! gateways sharing the machine's Redis. The load is spread over all three,
//! and the deployment must behave as one gateway: as available as one, and
//! one incident and one alert for the one outage, whichever instances saw it.

mod common;

use common::{demo_config, shipped};

use bulwark::config::Secret;
use bulwark::config::shared::SharedConfig;
use bulwark_drill::Speed;
use bulwark_drill::report::Report;
use bulwark_drill::run::{DrillError, DrillOptions, run};

fn options(instances: usize, redis: bool, speed: Speed) -> DrillOptions {
    let mut config = demo_config();
    config.engine.shared = redis.then(|| SharedConfig {
        url: Secret::new("redis://127.0.0.1:6379/0"),
        // A loaded 2-core test machine answers slower than production.
        timeout: std::time::Duration::from_millis(500),
        key_prefix: "test:instances-drill:".into(),
    });
    DrillOptions {
        scenario: shipped("provider-outage.yaml"),
        config,
        config_name: "demo".into(),
        route: None,
        speed,
        rps: Some(8.0),
        duration: None,
        store: None,
        listen: "127.0.0.1:0".into(),
        seed: 7,
        instances,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_ride_out_the_outage_as_one_gateway() {
    let drill = run(options(3, true, Speed::new(240.0).unwrap()), |_| {})
        .await
        .unwrap();
    let report = Report::from_data(&drill.data);
    eprintln!(
        "bulwark {}/{} ok, direct {}/{}, incidents {:?}, incident alerts {}",
        report.bulwark.ok,
        report.bulwark.sent,
        report.direct.ok,
        report.direct.sent,
        report.incidents.iter().map(|i| &i.id).collect::<Vec<_>>(),
        report.incident_alerts
    );
    assert!(drill.data.config_name.contains("3 instances"));
    assert!(report.bulwark.sent > 300, "{}", report.bulwark.sent);
    assert!(
        report.bulwark.ok * 1000 >= report.bulwark.sent * 999,
        "{} of {}",
        report.bulwark.ok,
        report.bulwark.sent
    );
    assert!(
        report.direct.ok * 10 < report.direct.sent * 9,
        "the outage hit the direct path"
    );
    // One judge for the deployment: never two incidents open at once, and
    // each announced once. Without it each instance would open (and
    // announce) its own copy of the same outage, overlapping. (At this
    // speed the 2-minute resolve hysteresis is half a second, so the
    // outage's flapping restoration may end one incident and open the
    // next; at --speed 60 it is one.)
    assert!(
        !report.incidents.is_empty(),
        "the outage opened an incident"
    );
    let mut incidents = report.incidents.clone();
    incidents.sort_by_key(|i| i.started_at);
    for pair in incidents.windows(2) {
        let ended = pair[0].resolved_at.unwrap_or(i64::MAX);
        assert!(
            ended <= pair[1].started_at,
            "two incidents open at once: {pair:?}"
        );
    }
    assert_eq!(report.incident_alerts, incidents.len() as u64);
}

#[tokio::test]
async fn several_instances_without_redis_are_refused() {
    let Err(error) = run(options(2, false, Speed::new(240.0).unwrap()), |_| {}).await else {
        panic!("two instances without redis: ran");
    };
    assert!(matches!(error, DrillError::NeedsRedis(2)), "{error}");
    assert!(error.to_string().contains("redis:"));
}
