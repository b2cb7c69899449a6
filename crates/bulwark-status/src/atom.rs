//! The Atom feed: one entry per incident update, so a feed reader or a
//! chat integration announces each step of an incident as it is posted.
//!
//! Written by hand: the format is a dozen elements, and every piece of
//! text goes through [`xml::escape`].

use std::fmt::Write as _;

use bulwark::observe::incident::{Incident, TimelineEntry};
use bulwark::observe::snapshot::StatusSnapshot;
use bulwark::observe::xml;

use crate::format::{page_id, rfc3339};
use crate::page_link;
use crate::statuspage::update_id;

/// Ids are URNs rather than URLs so they stay the same when the page's
/// public address is configured or changes; readers dedupe on them.
fn feed_urn(snapshot: &StatusSnapshot) -> String {
    format!("urn:bulwark-status:{}", page_id(&snapshot.page_name))
}

fn status_word(entry: &TimelineEntry) -> String {
    let s = entry.status.as_str();
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `GET /status/feed.atom`.
pub fn atom_feed(snapshot: &StatusSnapshot) -> String {
    let mut entries: Vec<(&Incident, usize, &TimelineEntry)> = snapshot
        .active_incidents
        .iter()
        .chain(&snapshot.recent_incidents)
        .flat_map(|inc| {
            inc.timeline
                .iter()
                .enumerate()
                .map(move |(i, entry)| (inc, i, entry))
        })
        .collect();
    // Newest first; ties keep timeline order reversed so the later update
    // of the same instant still comes first.
    entries.sort_by(|a, b| b.2.at.cmp(&a.2.at).then(b.1.cmp(&a.1)));

    let updated = entries
        .first()
        .map_or(snapshot.generated_at, |e| e.2.at)
        .max(
            snapshot
                .active_incidents
                .iter()
                .chain(&snapshot.recent_incidents)
                .map(|i| i.updated_at)
                .max()
                .unwrap_or(i64::MIN),
        );
    let name = xml::escape(&snapshot.page_name);
    let page = xml::escape(&page_link(snapshot, ""));
    let feed_id = feed_urn(snapshot);

    let mut out = String::with_capacity(1024 + entries.len() * 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n");
    let _ = writeln!(out, "  <id>{feed_id}</id>");
    let _ = writeln!(out, "  <title>{name} status</title>");
    let _ = writeln!(out, "  <subtitle>Incident updates for {name}</subtitle>");
    let _ = writeln!(out, "  <updated>{}</updated>", rfc3339(updated));
    let _ = writeln!(
        out,
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{page}\"/>"
    );
    let _ = writeln!(
        out,
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
        xml::escape(&page_link(snapshot, "/feed.atom"))
    );
    let _ = writeln!(out, "  <author><name>{name}</name></author>");
    out.push_str("  <generator>Bulwark</generator>\n");
    for (incident, index, entry) in entries {
        let title = format!("{}: {}", incident.title, status_word(entry));
        let href = page_link(snapshot, &format!("#{}", incident.id));
        let mut content = entry.message.clone();
        if let Some(component) = &entry.component {
            let _ = write!(content, " (component: {component})");
        }
        out.push_str("  <entry>\n");
        let _ = writeln!(
            out,
            "    <id>{feed_id}:{}</id>",
            xml::escape(&update_id(incident, index))
        );
        let _ = writeln!(out, "    <title>{}</title>", xml::escape(&title));
        let _ = writeln!(out, "    <updated>{}</updated>", rfc3339(entry.at));
        let _ = writeln!(out, "    <published>{}</published>", rfc3339(entry.at));
        let _ = writeln!(
            out,
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            xml::escape(&href)
        );
        let _ = writeln!(out, "    <category term=\"{}\"/>", entry.kind.as_str());
        let _ = writeln!(
            out,
            "    <content type=\"text\">{}</content>",
            xml::escape(&content)
        );
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}
