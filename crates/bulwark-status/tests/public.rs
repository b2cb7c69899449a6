//! The public view (`status_page.show_targets: false`): every rendering of
//! a snapshot passed through it names routes only, and with targets shown
//! it changes nothing.

mod common;

use bulwark::observe::component::ComponentKind;
use bulwark::observe::snapshot::StatusSnapshot;
use bulwark_status::{
    PublicView, UPSTREAM, atom_feed, components_json, incidents_json, render_html, status_json,
    summary_json,
};

/// Provider and model names in the fixtures.
const HIDDEN: [&str; 6] = [
    "openai",
    "anthropic",
    "google",
    "gpt-4o",
    "claude-sonnet-4-5",
    "gemini-2.5-flash",
];

fn hiding() -> PublicView {
    let targets = || {
        [
            common::TARGET_DOWN,
            "anthropic/claude-sonnet-4-5",
            "google/gemini-2.5-flash",
        ]
        .map(String::from)
    };
    PublicView::without_targets(
        [
            ("chat".to_string(), targets().to_vec()),
            ("summarise-long".to_string(), targets()[1..2].to_vec()),
            ("embeddings".to_string(), Vec::new()),
        ],
        ["openai", "anthropic", "google"].map(String::from),
    )
}

fn renderings(snapshot: &StatusSnapshot) -> Vec<(&'static str, String)> {
    vec![
        ("html", render_html(snapshot)),
        ("summary", summary_json(snapshot).to_string()),
        ("status", status_json(snapshot).to_string()),
        ("components", components_json(snapshot).to_string()),
        ("incidents", incidents_json(snapshot).to_string()),
        ("atom", atom_feed(snapshot)),
    ]
}

#[test]
fn hidden_targets_leave_no_name_behind() {
    for snapshot in [
        common::during_incident(),
        common::after_resolution(),
        common::operational(),
    ] {
        let public = hiding().snapshot(snapshot);
        assert!(
            public
                .components
                .iter()
                .all(|c| c.kind == ComponentKind::Route),
            "{:?}",
            public.components
        );
        for (surface, text) in renderings(&public) {
            let lower = text.to_lowercase();
            for name in HIDDEN {
                assert!(!lower.contains(name), "{surface} names `{name}`:\n{text}");
            }
            if surface != "status" {
                assert!(text.contains("chat"), "{surface} lost the route:\n{text}");
            }
        }
    }
}

#[test]
fn incidents_on_targets_name_their_routes() {
    let public = hiding().incident(common::open_incident());
    assert_eq!(public.title, format!("Elevated errors from {UPSTREAM}"));
    assert_eq!(public.components, ["chat"]);
    // The target is chat's alone, so its entries are chat's.
    assert_eq!(public.timeline[0].component.as_deref(), Some("chat"));
    assert_eq!(
        public.timeline[0].message,
        format!("Error rate on {UPSTREAM} rose to 62 % over 60 s (overloaded, HTTP 529).")
    );
    assert_eq!(public.impact, common::open_incident().impact);
    // A target two routes share cannot be pinned on one.
    let mut shared = common::open_incident();
    shared.components = vec!["anthropic/claude-sonnet-4-5".into()];
    shared.title = "Major outage of anthropic/claude-sonnet-4-5".into();
    shared.timeline[0].component = Some("anthropic/claude-sonnet-4-5".into());
    let shared = hiding().incident(shared);
    assert_eq!(shared.title, "Major outage of chat, summarise-long");
    assert_eq!(shared.components, ["chat", "summarise-long"]);
    assert_eq!(shared.timeline[0].component, None);
}

#[test]
fn showing_targets_changes_nothing() {
    for snapshot in [common::during_incident(), common::after_resolution()] {
        assert_eq!(
            PublicView::everything().snapshot(snapshot.clone()),
            snapshot
        );
    }
}

#[test]
fn an_absorbed_outage_is_told_without_names_when_targets_are_hidden() {
    let snapshot = hiding().snapshot(common::absorbed());
    assert_eq!(
        bulwark_status::notices(&snapshot.absorbed, &snapshot.provider_names),
        [
            "An upstream provider has an outage; a backup is answering what it cannot, and every request succeeds"
        ]
    );
    let html = render_html(&snapshot);
    let json = summary_json(&snapshot).to_string();
    for rendered in [&html, &json] {
        let lower = rendered.to_ascii_lowercase();
        for name in HIDDEN {
            assert!(!lower.contains(name), "{name} leaked");
        }
    }
    assert!(!html.contains("Upstream providers"));
    // Shown, the same snapshot names both, by the names the view gives.
    let names = bulwark_status::display_names([
        ("openai".to_string(), "openai"),
        ("anthropic".to_string(), "vertex"),
    ]);
    let shown = PublicView::everything()
        .with_provider_names(names)
        .snapshot(common::absorbed());
    assert_eq!(
        shown.provider_names.get("anthropic").map(String::as_str),
        Some("Anthropic")
    );
    assert_eq!(
        bulwark_status::notices(&shown.absorbed, &shown.provider_names),
        ["OpenAI is down; every request is being served by Anthropic"]
    );
    // Hidden, the view hands no names on.
    assert!(
        hiding()
            .with_provider_names(shown.provider_names.clone())
            .snapshot(common::absorbed())
            .provider_names
            .is_empty()
    );
}
