//! The Atom feed parses as XML and carries one entry per incident update.

mod common;

use bulwark_status::atom_feed;

const ATOM: &str = "http://www.w3.org/2005/Atom";

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|n| n.tag_name().name() == name && n.tag_name().namespace() == Some(ATOM))
}

#[expect(
    clippy::panic,
    reason = "an assertion helper: what is missing fails the test"
)]
fn text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    child(node, name)
        .and_then(|n| n.text())
        .unwrap_or_else(|| panic!("<{name}> missing or empty"))
}

#[test]
fn feed_is_valid_atom_with_an_entry_per_update() {
    let xml = atom_feed(&common::during_incident());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let feed = doc.root_element();
    assert_eq!(feed.tag_name().name(), "feed");
    assert_eq!(feed.tag_name().namespace(), Some(ATOM));
    assert!(text(feed, "id").starts_with("urn:bulwark-status:"));
    assert_eq!(text(feed, "title"), "Bulwark status");
    assert_eq!(text(feed, "updated"), "2026-11-29T10:05:01Z");
    let author = child(feed, "author").unwrap();
    assert_eq!(text(author, "name"), "Bulwark");
    let links: Vec<_> = feed
        .children()
        .filter(|n| n.tag_name().name() == "link")
        .collect();
    assert!(links.iter().any(|l| l.attribute("rel") == Some("self")
        && l.attribute("href") == Some("https://status.example.com/status/feed.atom")));

    let entries: Vec<_> = feed
        .children()
        .filter(|n| n.tag_name().name() == "entry")
        .collect();
    // Five updates of the open incident and two of the older one.
    assert_eq!(entries.len(), 7);
    let mut ids = Vec::new();
    for e in &entries {
        ids.push(text(*e, "id").to_string());
        assert!(!text(*e, "title").is_empty());
        let updated = text(*e, "updated");
        assert_eq!(updated.len(), 20, "{updated}");
        assert!(updated.ends_with('Z'));
        let content = child(*e, "content").unwrap();
        assert_eq!(content.attribute("type"), Some("text"));
        assert!(child(*e, "link").unwrap().attribute("href").is_some());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "entry ids must be unique");

    // Newest first.
    let first = entries[0];
    assert_eq!(
        text(first, "title"),
        "Elevated errors from openai/gpt-4o: Identified"
    );
    assert!(text(first, "content").starts_with("OpenAI confirmed"));
    assert!(text(first, "id").ends_with("inc-20261129-094501-3f2a-u5"));
    let detected = entries[4];
    assert!(text(detected, "content").contains("(component: openai/gpt-4o)"));
}

#[test]
fn feed_escapes_hostile_text() {
    let xml = atom_feed(&common::hostile());
    assert!(!xml.contains("<script>"));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let feed = doc.root_element();
    assert_eq!(
        text(feed, "title"),
        format!("Acme {} status", common::HOSTILE)
    );
    let entry = feed
        .children()
        .find(|n| n.tag_name().name() == "entry")
        .unwrap();
    assert!(text(entry, "title").starts_with(common::HOSTILE));
    assert!(text(entry, "content").contains(common::HOSTILE));
}

#[test]
fn quiet_feed_is_still_valid() {
    let mut snap = common::operational();
    snap.recent_incidents.clear();
    let xml = atom_feed(&snap);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        doc.root_element()
            .children()
            .filter(|n| n.tag_name().name() == "entry")
            .count(),
        0
    );
    assert_eq!(text(doc.root_element(), "updated"), "2026-11-29T08:00:00Z");
}
