//! Routes for embeddings. A route is one when a target's model names an
//! embedding model (its name contains `embed`, as every provider's do:
//! `text-embedding-3-small`, `text-embedding-004`, `gemini-embedding-001`,
//! `embed-english-v3.0`). Its fallback must give vectors of the same space,
//! so every target names the same model (at another provider or
//! deployment), and every target's kind must serve embeddings at all.

use std::collections::BTreeMap;

use super::{Issue, ProviderConfig, ProviderKind, TargetRef};

/// Whether `model` names an embedding model.
pub fn is_embedding_model(model: &str) -> bool {
    model.to_ascii_lowercase().contains("embed")
}

/// The problems of route `path` with `targets`, if it is an embeddings
/// route.
pub(super) fn check_route(
    path: &str,
    targets: &[TargetRef],
    providers: &BTreeMap<String, ProviderConfig>,
    issues: &mut Vec<Issue>,
) {
    let Some(first) = targets.iter().find(|t| is_embedding_model(&t.model)) else {
        return;
    };
    if targets.iter().any(|t| t.model != first.model) {
        let mut models: Vec<&str> = targets.iter().map(|t| t.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        issues.push(Issue::new(
            format!("{path}.targets"),
            format!(
                "an embeddings route must name one embedding model at every target, so that a fallback gives vectors of the same space; this one names {}",
                models
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for (i, target) in targets.iter().enumerate() {
        let Some(provider) = providers.get(&target.provider) else {
            continue;
        };
        // Of the clouds, only Azure's embeddings endpoints are wired up:
        // the others' targets would always be passed over.
        let cloud_without = provider.kind.is_cloud() && provider.kind != ProviderKind::AzureOpenAi;
        if !crate::wire::upstream(provider.kind).embeds() || cloud_without {
            issues.push(Issue::new(
                format!("{path}.targets[{i}]"),
                format!(
                    "provider `{}` is of kind `{}`, which serves no embeddings (openai, openai-compatible, azure-openai and gemini do)",
                    target.provider,
                    provider.kind.name()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(routes: &str) -> Vec<String> {
        let yaml = format!(
            "providers:\n  o: {{ kind: openai, api_key: k }}\n  g: {{ kind: gemini, api_key: k }}\n  a: {{ kind: anthropic, api_key: k }}\nroutes:\n{routes}"
        );
        match Config::from_yaml(&yaml, "test.yaml", &|_| None) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .issues
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message))
                .collect(),
        }
    }

    #[test]
    fn one_embedding_model_at_several_providers_is_a_valid_route() {
        assert_eq!(
            problems("  e: { targets: [o/text-embedding-004, g/text-embedding-004] }\n"),
            Vec::<String>::new()
        );
        // A chat route is not held to it.
        assert_eq!(
            problems("  c: { targets: [o/gpt-4o, a/claude-sonnet-4-5] }\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_route_mixing_embedding_models_is_refused() {
        let found =
            problems("  e: { targets: [o/text-embedding-3-small, g/gemini-embedding-001] }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("routes.e.targets: "), "{found:?}");
        assert!(
            found[0].contains("`gemini-embedding-001`, `text-embedding-3-small`"),
            "{found:?}"
        );
    }

    #[test]
    fn a_kind_without_embeddings_in_an_embeddings_route_is_named() {
        let found = problems("  e: { targets: [o/voyage-embed, a/voyage-embed] }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("routes.e.targets[1]: "), "{found:?}");
        assert!(found[0].contains("`anthropic`"), "{found:?}");
    }

    #[test]
    fn azure_serves_embeddings_and_the_other_clouds_do_not() {
        let yaml = "providers:\n  az: { kind: azure-openai, base_url: \"https://r.openai.azure.com\", api_key: k }\n  b: { kind: bedrock, region: us-east-1, api_key: k }\nroutes:\n  e: { targets: [az/text-embedding-3-small, b/text-embedding-3-small] }\n";
        let Err(error) = Config::from_yaml(yaml, "test.yaml", &|_| None) else {
            panic!("a bedrock embeddings target was taken");
        };
        let found: Vec<String> = error
            .issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("routes.e.targets[1]: "), "{found:?}");
    }

    #[test]
    fn the_kinds_that_say_they_embed_are_those_that_build_calls() {
        let request = crate::unary::EmbeddingsRequest::decode(br#"{"model": "m", "input": "x"}"#);
        let Ok(request) = request else {
            panic!("refused");
        };
        let operation = crate::unary::Unary::Embeddings(request);
        for kind in [
            crate::config::ProviderKind::OpenAi,
            crate::config::ProviderKind::OpenAiCompatible,
            crate::config::ProviderKind::Anthropic,
            crate::config::ProviderKind::Gemini,
        ] {
            let dialect = crate::wire::upstream(kind);
            assert_eq!(
                dialect.embeds(),
                dialect.unary(&operation, "http://x", "m").is_some(),
                "{kind:?}"
            );
        }
    }
}
