//! Sentences for an outage fallback absorbed: "Anthropic is down; every
//! request is being served by OpenAI". The routes' states already say what
//! clients get, and the upstream group shows the red; this says why both
//! are true, which a reader would otherwise have to work out.

use std::collections::BTreeMap;

use bulwark::observe::component::ComponentState;
use bulwark::observe::snapshot::Absorbed;

/// One route's story, or several routes' with the same names merged.
struct Story {
    down: String,
    serving: String,
    /// Whether every upstream out is in a major outage, so the requests
    /// that succeeded are the backups'. With one only partly down, it
    /// answers some itself, and crediting every success to the backup
    /// would overstate what fallback does. `None` when upstream names are
    /// hidden, which hides their states too.
    all_major: Option<bool>,
    requests: u32,
    failed: u32,
}

/// One sentence per distinct outage and backup, routes with the same pair
/// counted together, in the order the routes come
/// (`StatusSnapshot::absorbed`). `provider_names` are providers' names for
/// people (`StatusSnapshot::provider_names`, [`display_names`]).
pub fn notices(absorbed: &[Absorbed], provider_names: &BTreeMap<String, String>) -> Vec<String> {
    let mut merged: Vec<Story> = Vec::new();
    for absorbed in absorbed {
        let (down, serving) = names(absorbed, provider_names);
        let all_major = (!absorbed.down.is_empty()).then(|| {
            absorbed
                .down
                .iter()
                .all(|(_, s)| *s == ComponentState::MajorOutage)
        });
        match merged
            .iter_mut()
            .find(|story| story.down == down && story.serving == serving)
        {
            Some(story) => {
                story.all_major = match (story.all_major, all_major) {
                    (Some(was), Some(is)) => Some(was && is),
                    _ => None,
                };
                story.requests += absorbed.requests;
                story.failed += absorbed.failed;
            }
            None => merged.push(Story {
                down,
                serving,
                all_major,
                requests: absorbed.requests,
                failed: absorbed.failed,
            }),
        }
    }
    merged.iter().map(sentence).collect()
}

fn sentence(story: &Story) -> String {
    let Story {
        down,
        serving,
        all_major,
        requests,
        failed,
    } = story;
    let plural = down.contains(" and ");
    // "Down" only when every upstream out is fully out: "Anthropic is
    // down" of one model out and another failing a few would overstate it.
    let verb = match (plural, all_major) {
        (false, None) => "has an outage",
        (true, None) => "have an outage",
        (false, Some(true)) => "is down",
        (false, Some(false)) => "is partly down",
        (true, Some(true)) => "are down",
        (true, Some(false)) => "are partly down",
    };
    let failing = (*requests > 0 && *failed > 0).then(|| {
        // Never round a failure away: 0.4 % failing still reads as 1 %.
        let failing = (f64::from(*failed) * 100.0 / f64::from(*requests)).ceil() as u32;
        failing.clamp(1, 100)
    });
    if *all_major == Some(true) {
        return match failing {
            None => format!("{down} {verb}; every request is being served by {serving}"),
            Some(failing) => format!(
                "{down} {verb}; {} % of requests are being served by {serving}, {failing} % fail",
                100 - failing
            ),
        };
    }
    let answers = if serving.contains(" and ") {
        "are answering"
    } else {
        "is answering"
    };
    let what = if plural {
        "what they cannot"
    } else {
        "what it cannot"
    };
    match failing {
        None => format!("{down} {verb}; {serving} {answers} {what}, and every request succeeds"),
        Some(failing) => format!(
            "{down} {verb}; {serving} {answers} {what}; {} % of requests succeed, {failing} % fail",
            100 - failing
        ),
    }
}

/// Provider names for people, or the whole `provider/model` where one
/// provider is on both sides (another model of the same provider took
/// over). Without names (`show_targets: false`), generic words.
fn names(absorbed: &Absorbed, provider_names: &BTreeMap<String, String>) -> (String, String) {
    if absorbed.down.is_empty() || absorbed.serving.is_empty() {
        return ("An upstream provider".to_string(), "a backup".to_string());
    }
    let down: Vec<&str> = absorbed.down.iter().map(|(t, _)| t.as_str()).collect();
    let serving: Vec<&str> = absorbed.serving.iter().map(String::as_str).collect();
    let providers = |targets: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for target in targets {
            let provider = target.split_once('/').map_or(*target, |(p, _)| p);
            let name = provider_names
                .get(provider)
                .cloned()
                .unwrap_or_else(|| display_name(provider, None));
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    };
    let (down_providers, serving_providers) = (providers(&down), providers(&serving));
    let shared = down_providers.iter().any(|p| serving_providers.contains(p));
    let (down, serving) = if shared {
        let whole = |ts: &[&str]| ts.iter().map(ToString::to_string).collect::<Vec<_>>();
        (whole(&down), whole(&serving))
    } else {
        (down_providers, serving_providers)
    };
    (join(&down), join(&serving))
}

/// Each provider's name for people, from its configured name and kind
/// (`kind:` as written in the config): a name that is a well-known
/// vendor's is spelled as the vendor does; otherwise a first-party or
/// cloud kind names it (`primary` of kind `openai` is OpenAI); an
/// `openai-compatible` one keeps the name it was given, the only thing
/// known about it.
pub fn display_names<'a>(
    providers: impl IntoIterator<Item = (String, &'a str)>,
) -> BTreeMap<String, String> {
    providers
        .into_iter()
        .map(|(name, kind)| {
            let display = display_name(&name, Some(kind));
            (name, display)
        })
        .collect()
}

fn display_name(provider: &str, kind: Option<&str>) -> String {
    let known = |name: &str| -> Option<&'static str> {
        Some(match name.to_ascii_lowercase().as_str() {
            "anthropic" => "Anthropic",
            "openai" => "OpenAI",
            "gemini" => "Gemini",
            "google" => "Google",
            "azure" | "azure-openai" => "Azure OpenAI",
            "bedrock" => "Amazon Bedrock",
            "vertex" => "Vertex AI",
            "mistral" => "Mistral",
            "cohere" => "Cohere",
            "groq" => "Groq",
            "deepseek" => "DeepSeek",
            "ollama" => "Ollama",
            _ => return None,
        })
    };
    known(provider)
        .or_else(|| kind.filter(|k| *k != "openai-compatible").and_then(known))
        .map_or_else(|| provider.to_string(), ToString::to_string)
}

fn join(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::*;

    fn absorbed(down: &[(&str, ComponentState)], serving: &[&str], failed: u32) -> Absorbed {
        Absorbed {
            route: "chat".into(),
            down: down.iter().map(|(t, s)| (t.to_string(), *s)).collect(),
            serving: serving.iter().map(ToString::to_string).collect(),
            requests: 200,
            failed,
        }
    }

    fn texts(entries: Vec<Absorbed>) -> Vec<String> {
        notices(&entries, &BTreeMap::new())
    }

    #[test]
    fn names_the_providers_by_their_display_names() {
        assert_eq!(
            texts(vec![absorbed(
                &[("anthropic/claude-sonnet", MajorOutage)],
                &["openai/gpt-4o"],
                0
            )]),
            ["Anthropic is down; every request is being served by OpenAI"]
        );
    }

    #[test]
    fn says_what_share_fails() {
        assert_eq!(
            texts(vec![absorbed(
                &[("anthropic/claude", MajorOutage)],
                &["openai/gpt-4o", "acme/llama"],
                1
            )]),
            ["Anthropic is down; 99 % of requests are being served by OpenAI and acme, 1 % fail"]
        );
    }

    /// A partly down upstream still answers some requests itself: the
    /// requests that succeed are not all the backup's.
    #[test]
    fn a_partly_down_upstream_is_not_said_to_hand_every_request_over() {
        assert_eq!(
            texts(vec![absorbed(
                &[("anthropic/claude", PartialOutage)],
                &["openai/gpt-4o", "acme/llama"],
                1
            )]),
            [
                "Anthropic is partly down; OpenAI and acme are answering what it cannot; 99 % of requests succeed, 1 % fail"
            ]
        );
        assert_eq!(
            texts(vec![absorbed(
                &[("anthropic/claude", PartialOutage)],
                &["openai/gpt-4o"],
                0
            )]),
            [
                "Anthropic is partly down; OpenAI is answering what it cannot, and every request succeeds"
            ]
        );
        // One of two down only partly: still some answered by the primaries.
        assert_eq!(
            texts(vec![absorbed(
                &[
                    ("anthropic/claude", MajorOutage),
                    ("gemini/pro", PartialOutage)
                ],
                &["openai/gpt-4o"],
                0
            )]),
            [
                "Anthropic and Gemini are partly down; OpenAI is answering what they cannot, and every request succeeds"
            ]
        );
    }

    /// Routes with the same names but one upstream only partly down on one
    /// of them: the merged sentence credits the backup with no more than
    /// the partial route allows.
    #[test]
    fn merged_routes_credit_the_backup_only_when_each_route_does() {
        let mut partial = absorbed(&[("anthropic/haiku", PartialOutage)], &["openai/gpt-4o"], 0);
        partial.route = "fast".into();
        assert_eq!(
            texts(vec![
                absorbed(&[("anthropic/claude", MajorOutage)], &["openai/gpt-4o"], 0),
                partial
            ]),
            [
                "Anthropic is partly down; OpenAI is answering what it cannot, and every request succeeds"
            ]
        );
    }

    #[test]
    fn one_provider_on_both_sides_is_named_by_model() {
        assert_eq!(
            texts(vec![absorbed(
                &[("openai/gpt-4o", MajorOutage)],
                &["openai/gpt-4o-mini"],
                0
            )]),
            ["openai/gpt-4o is down; every request is being served by openai/gpt-4o-mini"]
        );
    }

    #[test]
    fn a_provider_is_named_by_its_kind_when_its_name_says_nothing() {
        let names = display_names([
            ("primary".to_string(), "openai"),
            ("backup".to_string(), "bedrock"),
            ("local".to_string(), "openai-compatible"),
            ("anthropic".to_string(), "vertex"),
        ]);
        let entries = vec![absorbed(
            &[
                ("primary/gpt-4o", MajorOutage),
                ("anthropic/claude", MajorOutage),
            ],
            &["backup/claude", "local/llama"],
            0,
        )];
        assert_eq!(
            notices(&entries, &names),
            [
                "OpenAI and Anthropic are down; every request is being served by Amazon Bedrock and local"
            ]
        );
    }

    /// Hidden names hide the upstreams' states too: the sentence claims
    /// neither a whole outage nor that the backup answers everything.
    #[test]
    fn hidden_upstreams_are_not_named_and_routes_with_one_story_merge() {
        let mut other = absorbed(&[], &[], 0);
        other.route = "fast".into();
        assert_eq!(
            texts(vec![absorbed(&[], &[], 0), other]),
            [
                "An upstream provider has an outage; a backup is answering what it cannot, and every request succeeds"
            ]
        );
        assert_eq!(
            texts(vec![absorbed(&[], &[], 2)]),
            [
                "An upstream provider has an outage; a backup is answering what it cannot; 99 % of requests succeed, 1 % fail"
            ]
        );
    }
}
