//! What the public surfaces may show.
//!
//! A client key may be limited to some models (`/v1/models` lists only
//! those), so a page that names every `provider/model` behind the routes
//! would tell anyone what the key filter keeps quiet. With
//! `status_page.show_targets: false` the gateway passes every snapshot and
//! every live update through one [`PublicView`] before any renderer sees
//! it: target components are left out, and incidents name the routes a
//! target serves, or [`UPSTREAM`] where no route fits. Doing it on the data,
//! not in each renderer, means a new surface cannot forget it.

use std::collections::{BTreeMap, BTreeSet};

use bulwark::observe::component::ComponentKind;
use bulwark::observe::incident::{Incident, TimelineEntry};
use bulwark::observe::snapshot::StatusSnapshot;
use serde_json::Value;

/// What a hidden upstream is called in text.
pub const UPSTREAM: &str = "an upstream provider";

/// Shows everything (the default), or hides upstream names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublicView {
    hidden: Option<Hidden>,
    /// Providers' names for people, handed to shown snapshots.
    provider_names: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Hidden {
    /// Each target's label, with the routes that use it, in config order.
    routes_of: BTreeMap<String, Vec<String>>,
    routes: BTreeSet<String>,
    /// Provider names, lowercase: these may be followed by `/model`.
    providers: BTreeSet<String>,
    /// Provider and model names, lowercase, longest first, so that a name
    /// starting with another is matched whole.
    words: Vec<String>,
}

impl PublicView {
    /// Shows every component and name as it is.
    pub fn everything() -> PublicView {
        PublicView::default()
    }

    /// Hides upstreams. `routes` is every route with its targets'
    /// `provider/model` labels; `providers` every configured provider name.
    pub fn without_targets<R, T, P>(routes: R, providers: P) -> PublicView
    where
        R: IntoIterator<Item = (String, T)>,
        T: IntoIterator<Item = String>,
        P: IntoIterator<Item = String>,
    {
        let mut routes_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut names = BTreeSet::new();
        let mut providers: BTreeSet<String> = providers
            .into_iter()
            .map(|p| p.to_ascii_lowercase())
            .collect();
        let mut models = BTreeSet::new();
        for (route, targets) in routes {
            for target in targets {
                // A target's provider is hidden even if the caller left it
                // out of `providers`; its model alone says as much.
                if let Some((provider, model)) = target.split_once('/') {
                    providers.insert(provider.to_ascii_lowercase());
                    models.insert(model.to_ascii_lowercase());
                }
                let users = routes_of.entry(target).or_default();
                if !users.contains(&route) {
                    users.push(route.clone());
                }
            }
            names.insert(route);
        }
        providers.remove("");
        models.remove("");
        let mut words: Vec<String> = providers.union(&models).cloned().collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        PublicView {
            provider_names: BTreeMap::new(),
            hidden: Some(Hidden {
                routes_of,
                routes: names,
                providers,
                words,
            }),
        }
    }

    /// Providers' names for people ([`crate::display_names`]), which a
    /// view that shows targets puts in its snapshots.
    pub fn with_provider_names(mut self, names: BTreeMap<String, String>) -> PublicView {
        self.provider_names = names;
        self
    }

    /// Every provider's name for people, shown or not: for the admin API.
    pub fn provider_names(&self) -> &BTreeMap<String, String> {
        &self.provider_names
    }

    pub fn shows_targets(&self) -> bool {
        self.hidden.is_none()
    }

    /// Whether a component belongs on the public surfaces.
    pub fn shows(&self, kind: ComponentKind, name: &str) -> bool {
        match &self.hidden {
            None => true,
            Some(hidden) => kind != ComponentKind::Target && !hidden.is_target(name),
        }
    }

    /// The snapshot as the public may see it.
    pub fn snapshot(&self, mut snapshot: StatusSnapshot) -> StatusSnapshot {
        let Some(hidden) = &self.hidden else {
            snapshot.provider_names = self.provider_names.clone();
            return snapshot;
        };
        snapshot.provider_names.clear();
        snapshot
            .components
            .retain(|c| c.kind != ComponentKind::Target && !hidden.is_target(&c.name));
        for component in &mut snapshot.components {
            component.reason = component.reason.as_deref().map(|r| hidden.text(r));
        }
        // Which upstream is out and which answers is exactly what is
        // hidden; that fallback is carrying the route is not.
        for absorbed in &mut snapshot.absorbed {
            absorbed.down.clear();
            absorbed.serving.clear();
        }
        for incident in snapshot
            .active_incidents
            .iter_mut()
            .chain(&mut snapshot.recent_incidents)
        {
            hidden.incident(incident);
        }
        snapshot
    }

    /// An incident as the public may see it.
    pub fn incident(&self, mut incident: Incident) -> Incident {
        if let Some(hidden) = &self.hidden {
            hidden.incident(&mut incident);
        }
        incident
    }

    /// Free text with every upstream name replaced by [`UPSTREAM`].
    pub fn text(&self, text: &str) -> String {
        match &self.hidden {
            None => text.to_string(),
            Some(hidden) => hidden.text(text),
        }
    }

    /// A live update (the JSON `/status/events` streams) as the public may
    /// see it; `None` when it is about a hidden component, or cannot be
    /// read and so cannot be checked.
    pub fn update(&self, update: &str) -> Option<String> {
        let Some(hidden) = &self.hidden else {
            return Some(update.to_string());
        };
        let mut value: Value = serde_json::from_str(update).ok()?;
        if value.get("type").and_then(Value::as_str) == Some("component")
            && value
                .get("component")
                .and_then(Value::as_str)
                .is_none_or(|name| hidden.is_target(name))
        {
            return None;
        }
        if let Some(title) = value.get_mut("title")
            && let Some(text) = title.as_str()
        {
            *title = Value::from(hidden.title(text));
        }
        // Every other string too, so a field added later is covered.
        hidden.scrub_json(&mut value);
        Some(value.to_string())
    }
}

impl Hidden {
    fn is_target(&self, name: &str) -> bool {
        !self.routes.contains(name) && (self.routes_of.contains_key(name) || name.contains('/'))
    }

    /// The public names for a component an incident names: a target's
    /// routes (none if no configured route uses it), anything else as it
    /// is, scrubbed in case it is an old name that holds a provider's.
    fn names_for(&self, name: &str) -> Vec<String> {
        if self.routes.contains(name) {
            vec![name.to_string()]
        } else if self.is_target(name) {
            self.routes_of.get(name).cloned().unwrap_or_default()
        } else {
            vec![self.text(name)]
        }
    }

    fn incident(&self, incident: &mut Incident) {
        incident.title = self.title(&incident.title);
        let mut components = Vec::new();
        for name in &incident.components {
            for public in self.names_for(name) {
                if !components.contains(&public) {
                    components.push(public);
                }
            }
        }
        incident.components = components;
        for entry in &mut incident.timeline {
            self.entry(entry);
        }
    }

    fn entry(&self, entry: &mut TimelineEntry) {
        entry.component = entry.component.take().and_then(|name| {
            // A target used by one route is that route's trouble; one
            // shared by several cannot be pinned on any of them.
            match self.names_for(&name).as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        });
        entry.message = self.text(&entry.message);
    }

    /// Titles read `<state> of <component>, <component>`: a target becomes
    /// its routes, so the title still says what clients felt.
    fn title(&self, title: &str) -> String {
        let Some((state, rest)) = title.split_once(" of ") else {
            return self.text(title);
        };
        let mut names: Vec<String> = Vec::new();
        for name in rest.split(", ") {
            let public = self.names_for(name);
            let public = if public.is_empty() {
                vec![UPSTREAM.to_string()]
            } else {
                public
            };
            for name in public {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        self.text(&format!("{state} of {}", names.join(", ")))
    }

    fn scrub_json(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.scrub_json(v)),
            _ => {}
        }
    }

    /// Replaces each provider or model name (any case, as a whole word),
    /// and a provider's `/model`, with [`UPSTREAM`]. A bare name that is
    /// also a route's is left: routes are public.
    fn text(&self, text: &str) -> String {
        let lower = text.to_ascii_lowercase();
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut at = 0;
        while at < text.len() {
            let starts_word = at == 0 || !is_word(bytes[at - 1]);
            let found = starts_word
                .then(|| self.match_at(&lower, bytes, at))
                .flatten();
            match found {
                Some(end) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(UPSTREAM);
                    copied = end;
                    at = end;
                }
                None => at += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Where a hidden name starting at `at` (with a provider's `/model`)
    /// ends.
    fn match_at(&self, lower: &str, bytes: &[u8], at: usize) -> Option<usize> {
        let rest = lower.get(at..)?;
        self.words.iter().find_map(|word| {
            if !rest.starts_with(word.as_str()) {
                return None;
            }
            let end = at + word.len();
            match bytes.get(end) {
                Some(b'/') if self.providers.contains(word) => Some(model_end(bytes, end + 1)),
                Some(&b) if is_word(b) => None,
                _ if self.routes.iter().any(|r| r.eq_ignore_ascii_case(word)) => None,
                _ => Some(end),
            }
        })
    }
}

/// Letters, digits, `_` and `-` continue a name; anything else ends it.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The end of a model name starting at `from`: models hold `.`, `:` and
/// `@` (`llama3.1:8b`), but one at the very end is the sentence's.
fn model_end(bytes: &[u8], from: usize) -> usize {
    let mut end = from;
    while let Some(&b) = bytes.get(end) {
        if is_word(b) || matches!(b, b'.' | b':' | b'@' | b'/') || b >= 0x80 {
            end += 1;
        } else {
            break;
        }
    }
    while end > from && matches!(bytes[end - 1], b'.' | b':') {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> PublicView {
        PublicView::without_targets(
            [
                (
                    "chat".to_string(),
                    vec!["openai/gpt-4o".to_string(), "acme/claude".to_string()],
                ),
                ("fast".to_string(), vec!["openai/gpt-4o".to_string()]),
            ],
            [
                "openai".to_string(),
                "acme".to_string(),
                "spare".to_string(),
            ],
        )
    }

    #[test]
    fn text_loses_every_upstream_name() {
        let view = view();
        assert_eq!(
            view.text("circuit breaker for openai/gpt-4o opened: traffic moved"),
            "circuit breaker for an upstream provider opened: traffic moved"
        );
        assert_eq!(
            view.text("fallback engaged: requests on chat answered by Acme/claude."),
            "fallback engaged: requests on chat answered by an upstream provider."
        );
        assert_eq!(
            view.text("spare/llama3.1:8b is down; OpenAI says so"),
            "an upstream provider is down; an upstream provider says so"
        );
        // Only whole words: `spares` and `openai-like` are other names.
        assert_eq!(view.text("spares openai-like"), "spares openai-like");
        // A model alone, but not a route of the same name.
        assert_eq!(
            view.text("GPT-4o is slow, gpt-4o-mini is not; fast is fine"),
            "an upstream provider is slow, gpt-4o-mini is not; fast is fine"
        );
    }

    #[test]
    fn titles_name_routes() {
        let view = view();
        let hidden = view
            .hidden
            .as_ref()
            .map(|h| h.title("Major outage of openai/gpt-4o, chat"));
        assert_eq!(hidden.as_deref(), Some("Major outage of chat, fast"));
        let gone = view
            .hidden
            .as_ref()
            .map(|h| h.title("Partial outage of gone/model"));
        assert_eq!(
            gone.as_deref(),
            Some("Partial outage of an upstream provider")
        );
    }

    #[test]
    fn everything_changes_nothing() {
        let view = PublicView::everything();
        assert_eq!(view.text("openai/gpt-4o"), "openai/gpt-4o");
        let update = r#"{"type":"component","component":"openai/gpt-4o"}"#;
        assert_eq!(view.update(update).as_deref(), Some(update));
    }

    #[test]
    fn updates_about_targets_are_dropped() {
        let view = view();
        assert_eq!(
            view.update(r#"{"type":"component","component":"openai/gpt-4o","reason":"x"}"#),
            None
        );
        let kept = view
            .update(r#"{"type":"incident","title":"Major outage of acme/claude"}"#)
            .and_then(|json| serde_json::from_str::<Value>(&json).ok());
        assert_eq!(
            kept,
            Some(serde_json::json!({"type": "incident", "title": "Major outage of chat"}))
        );
    }
}
