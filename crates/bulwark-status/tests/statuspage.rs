//! The JSON endpoints, checked field by field against the Statuspage v2
//! shapes that existing pollers parse.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "assertion helpers: a missing field fails the test"
)]

mod common;

use bulwark::observe::component::ComponentState;
use bulwark_status::{components_json, incidents_json, status_json, summary_json};
use serde_json::Value;

fn is_iso(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    // 2026-11-29T09:45:01.000Z
    s.len() == 24
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
        && s.ends_with('Z')
}

fn is_iso_or_null(v: &Value) -> bool {
    v.is_null() || is_iso(v)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn check_page(page: &Value) {
    for key in ["id", "name", "url", "time_zone", "updated_at"] {
        assert!(page.get(key).is_some(), "page.{key} missing: {page}");
    }
    assert_eq!(page["name"], "Bulwark");
    assert_eq!(page["url"], "https://status.example.com/status");
    assert_eq!(page["time_zone"], "Etc/UTC");
    assert!(is_iso(&page["updated_at"]));
    assert_eq!(page["id"].as_str().unwrap().len(), 12);
}

fn check_component(c: &Value, page_id: &str) {
    for key in [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "position",
        "description",
        "showcase",
        "start_date",
        "group_id",
        "page_id",
        "group",
        "only_show_if_degraded",
    ] {
        assert!(c.get(key).is_some(), "component.{key} missing: {c}");
    }
    assert!(c["id"].is_string());
    assert!(c["name"].is_string());
    let status = c["status"].as_str().unwrap();
    assert!(
        ComponentState::parse(status).is_some(),
        "bad status {status}"
    );
    assert!(is_iso(&c["created_at"]));
    assert!(is_iso(&c["updated_at"]));
    assert!(c["position"].as_u64().unwrap() >= 1);
    assert!(c["description"].is_null() || c["description"].is_string());
    assert!(c["showcase"].is_boolean());
    assert!(c["start_date"].is_null() || c["start_date"].as_str().unwrap().len() == 10);
    assert!(c["group_id"].is_null() || c["group_id"].is_string());
    assert_eq!(c["page_id"], page_id);
    assert!(c["group"].is_boolean());
    assert_eq!(c["only_show_if_degraded"], false);
}

fn check_incident(i: &Value, page_id: &str) {
    for key in [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "monitoring_at",
        "resolved_at",
        "impact",
        "shortlink",
        "started_at",
        "page_id",
        "incident_updates",
        "components",
    ] {
        assert!(i.get(key).is_some(), "incident.{key} missing: {i}");
    }
    assert!(i["id"].is_string() && i["name"].is_string());
    assert!(
        [
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "postmortem"
        ]
        .contains(&i["status"].as_str().unwrap())
    );
    assert!(
        ["none", "minor", "major", "critical", "maintenance"]
            .contains(&i["impact"].as_str().unwrap())
    );
    assert!(is_iso(&i["created_at"]) && is_iso(&i["updated_at"]) && is_iso(&i["started_at"]));
    assert!(is_iso_or_null(&i["monitoring_at"]) && is_iso_or_null(&i["resolved_at"]));
    assert!(i["shortlink"].as_str().unwrap().starts_with("https://"));
    assert_eq!(i["page_id"], page_id);
    let updates = i["incident_updates"].as_array().unwrap();
    assert!(!updates.is_empty());
    for u in updates {
        assert_eq!(
            keys(u),
            [
                "affected_components",
                "body",
                "created_at",
                "custom_tweet",
                "deliver_notifications",
                "display_at",
                "id",
                "incident_id",
                "status",
                "tweet_id",
                "updated_at"
            ]
        );
        assert_eq!(u["incident_id"], i["id"]);
        assert!(u["body"].is_string());
        assert!(is_iso(&u["created_at"]) && is_iso(&u["display_at"]));
        assert_eq!(u["deliver_notifications"], true);
        match &u["affected_components"] {
            Value::Null => {}
            Value::Array(list) => {
                for a in list {
                    assert!(a["code"].is_string() && a["name"].is_string());
                }
            }
            other => panic!("affected_components is {other}"),
        }
    }
    // Newest first, as Statuspage lists them.
    let times: Vec<&str> = updates
        .iter()
        .map(|u| u["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    for c in i["components"].as_array().unwrap() {
        check_component(c, page_id);
    }
}

#[test]
fn summary_during_an_incident_has_every_field() {
    let snap = common::during_incident();
    let v = summary_json(&snap);
    assert_eq!(
        keys(&v),
        [
            "components",
            "incidents",
            "notices",
            "page",
            "scheduled_maintenances",
            "status"
        ]
    );
    check_page(&v["page"]);
    let page_id = v["page"]["id"].as_str().unwrap().to_string();
    // From the routes: the upstream's major outage is not the page's.
    assert_eq!(v["status"]["indicator"], "major");
    assert_eq!(v["status"]["description"], "Partial System Outage");
    assert_eq!(v["notices"], serde_json::json!([]));
    assert_eq!(v["scheduled_maintenances"], serde_json::json!([]));

    let components = v["components"].as_array().unwrap();
    // Two groups plus six components.
    assert_eq!(components.len(), 8);
    for c in components {
        check_component(c, &page_id);
    }
    let positions: Vec<u64> = components
        .iter()
        .map(|c| c["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=8).collect::<Vec<u64>>());

    let by_name = |name: &str| {
        components
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no component {name}"))
    };
    let target = by_name(common::TARGET_DOWN);
    assert_eq!(target["status"], "major_outage");
    assert_eq!(target["group"], false);
    assert_eq!(
        target["description"],
        "error rate 62 % over 60 s; circuit breaker open"
    );
    assert_eq!(by_name(common::ROUTE_HIT)["status"], "partial_outage");
    assert_eq!(by_name("embeddings")["status"], "operational");

    // Routes first, as on the page, then the upstreams' group.
    assert_eq!(components[0]["name"], "Routes");
    assert_eq!(components[4]["name"], "Upstream providers");
    let targets = by_name("Upstream providers");
    assert_eq!(targets["group"], true);
    assert_eq!(targets["status"], "major_outage");
    assert_eq!(targets["components"].as_array().unwrap().len(), 3);
    assert!(
        targets["components"]
            .as_array()
            .unwrap()
            .contains(&target["id"])
    );
    assert_eq!(target["group_id"], targets["id"]);
    let routes = by_name("Routes");
    assert_eq!(routes["status"], "partial_outage");
    assert_eq!(by_name(common::ROUTE_HIT)["group_id"], routes["id"]);

    // Summary lists unresolved incidents only.
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    let inc = &incidents[0];
    check_incident(inc, &page_id);
    assert_eq!(inc["id"], "inc-20261129-094501-3f2a");
    assert_eq!(inc["status"], "identified");
    // 5 % of affected requests failed, the rest answered by fallback, the
    // cache or a degrade step: minor for clients, whatever the upstream's.
    assert_eq!(inc["impact"], "minor");
    assert_eq!(inc["created_at"], "2026-11-29T09:45:01.000Z");
    assert!(inc["resolved_at"].is_null());
    assert!(inc["monitoring_at"].is_null());
    assert_eq!(
        inc["shortlink"],
        "https://status.example.com/status#inc-20261129-094501-3f2a"
    );
    let updates = inc["incident_updates"].as_array().unwrap();
    assert_eq!(updates.len(), 5);
    assert_eq!(updates[0]["id"], "inc-20261129-094501-3f2a-u5");
    assert_eq!(updates[4]["status"], "investigating");
    assert!(updates[4]["body"].as_str().unwrap().contains("62 %"));
    assert_eq!(updates[4]["affected_components"][0]["code"], target["id"]);
    assert!(updates[0]["affected_components"].is_null());
    let inc_components = inc["components"].as_array().unwrap();
    assert_eq!(inc_components.len(), 2);
    assert_eq!(inc_components[0]["id"], target["id"]);
}

#[test]
fn indicator_follows_the_worst_component() {
    let mut snap = common::operational();
    let cases = [
        (
            ComponentState::Operational,
            "none",
            "All Systems Operational",
        ),
        (
            ComponentState::UnderMaintenance,
            "maintenance",
            "Service Under Maintenance",
        ),
        (
            ComponentState::DegradedPerformance,
            "minor",
            "Minor Service Outage",
        ),
        (
            ComponentState::PartialOutage,
            "major",
            "Partial System Outage",
        ),
        (
            ComponentState::MajorOutage,
            "critical",
            "Major System Outage",
        ),
    ];
    for (state, indicator, description) in cases {
        snap.components[4].state = state;
        let v = status_json(&snap);
        assert_eq!(keys(&v), ["page", "status"]);
        assert_eq!(v["status"]["indicator"], indicator, "{state:?}");
        assert_eq!(v["status"]["description"], description);
        check_page(&v["page"]);
    }
}

#[test]
fn incidents_lists_active_then_recent() {
    let snap = common::during_incident();
    let v = incidents_json(&snap);
    assert_eq!(keys(&v), ["incidents", "page"]);
    let list = v["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "identified");
    assert_eq!(list[1]["status"], "resolved");
    let page_id = v["page"]["id"].as_str().unwrap();
    for i in list {
        check_incident(i, page_id);
    }

    let after = incidents_json(&common::after_resolution());
    let resolved = &after["incidents"][0];
    check_incident(resolved, page_id);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_at"], "2026-11-29T11:02:01.000Z");
    assert_eq!(resolved["monitoring_at"], "2026-11-29T10:41:01.000Z");
    assert_eq!(resolved["incident_updates"].as_array().unwrap().len(), 8);
    assert_eq!(resolved["incident_updates"][0]["status"], "resolved");
    // After resolution the summary has no incidents and says all is well.
    let summary = summary_json(&common::after_resolution());
    assert_eq!(summary["incidents"], serde_json::json!([]));
    assert_eq!(summary["status"]["indicator"], "none");
}

#[test]
fn components_are_stable_and_complete() {
    let a = components_json(&common::operational());
    let b = components_json(&common::during_incident());
    assert_eq!(keys(&a), ["components", "page"]);
    let ids = |v: &Value| -> Vec<(String, String)> {
        v["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Same names, same ids, whatever the state.
    assert_eq!(ids(&a), ids(&b));
    let mut unique: Vec<String> = ids(&a).into_iter().map(|p| p.1).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8);
    for c in a["components"].as_array().unwrap() {
        check_component(c, a["page"]["id"].as_str().unwrap());
        assert!(c["status"] == "operational");
    }
    // A component added 64 days ago starts then.
    let gemini = a["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "google/gemini-2.5-flash")
        .unwrap();
    assert_eq!(gemini["start_date"], "2026-09-27");
    assert_eq!(gemini["created_at"], "2026-09-27T00:00:00.000Z");
}

#[test]
fn empty_page_still_has_the_shape() {
    let mut snap = common::operational();
    snap.components.clear();
    snap.recent_incidents.clear();
    snap.page_url = None;
    let v = summary_json(&snap);
    assert_eq!(v["components"], serde_json::json!([]));
    assert_eq!(v["status"]["indicator"], "none");
    assert_eq!(v["page"]["url"], "/status");
}

#[test]
fn an_outage_fallback_absorbs_is_minor_and_grouped_beneath() {
    let v = summary_json(&common::absorbed());
    assert_eq!(v["status"]["indicator"], "minor");
    assert_eq!(
        v["notices"],
        serde_json::json!(["OpenAI is down; every request is being served by Anthropic"])
    );
    let Some(components) = v["components"].as_array() else {
        panic!("no components: {v}");
    };
    let by_name = |name: &str| {
        let Some(found) = components.iter().find(|c| c["name"] == name) else {
            panic!("no component {name}");
        };
        found
    };
    let routes = by_name("Routes");
    let upstreams = by_name("Upstream providers");
    assert_eq!(routes["status"], "degraded_performance");
    assert_eq!(upstreams["status"], "major_outage");
    let target = by_name(common::TARGET_DOWN);
    assert_eq!(target["status"], "major_outage");
    assert_eq!(target["group_id"], upstreams["id"]);
    assert_eq!(by_name(common::ROUTE_HIT)["group_id"], routes["id"]);
    let Some(members) = upstreams["components"].as_array() else {
        panic!("group without members: {upstreams}");
    };
    assert!(members.contains(&target["id"]));
    let [incident] = v["incidents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    else {
        panic!("one open incident: {v}");
    };
    assert_eq!(incident["impact"], "minor");
}
