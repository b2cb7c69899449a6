//! What a target's model can do (reason, read images), told by its name
//! unless the provider's `models:` config says otherwise.

use crate::config::ModelTraitsOverride;

/// What a target's model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTraits {
    /// It reasons before answering: a thinking budget or effort reaches it.
    pub reasons: bool,
    /// It reads images.
    pub vision: bool,
    /// It takes the effort `minimal` (the o-series takes `low` and up).
    pub minimal_effort: bool,
    /// The thinking budgets it takes, where its provider limits them.
    pub budget_range: Option<(u32, u32)>,
}

/// What `model` can do: the provider's `models:` entry where it says,
/// otherwise guessed from the name. Every model is taken to read images
/// unless configured otherwise: a wrong guess there would refuse requests a
/// provider takes.
pub fn traits(model: &str, configured: Option<&ModelTraitsOverride>) -> ModelTraits {
    let configured = configured.copied().unwrap_or_default();
    ModelTraits {
        reasons: configured
            .reasoning
            .unwrap_or_else(|| reasons_by_name(model)),
        vision: configured.vision.unwrap_or(true),
        minimal_effort: !is_o_series(&family(model)),
        budget_range: gemini_budget_range(&family(model)),
    }
}

/// A model's name without a vendor prefix (`models/`, `openai/`), lowercased.
fn family(model: &str) -> String {
    model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase()
}

/// OpenAI's o1, o3 and o4 models, which take `reasoning_effort` `low`,
/// `medium` and `high` only.
fn is_o_series(name: &str) -> bool {
    ["o1", "o3", "o4"]
        .iter()
        .any(|family| name == *family || name.starts_with(&format!("{family}-")))
}

/// The `thinkingBudget` a Gemini model takes, per Google's Gemini API
/// thinking guide (ai.google.dev/gemini-api/docs/thinking, "Set budgets"):
/// 2.5 Pro 128 to 32768 (thinking cannot be turned off), 2.5 Flash 0 to
/// 24576, 2.5 Flash-Lite 512 to 24576. Other models are sent the budget as
/// asked. Flash-Lite is matched before Flash, whose name it starts with.
fn gemini_budget_range(name: &str) -> Option<(u32, u32)> {
    const RANGES: [(&str, (u32, u32)); 3] = [
        ("gemini-2.5-pro", (128, 32768)),
        ("gemini-2.5-flash-lite", (512, 24576)),
        ("gemini-2.5-flash", (0, 24576)),
    ];
    RANGES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, range)| *range)
}

/// The model families known to reason. Names may carry a vendor prefix
/// (`us.anthropic.`, `models/`), so the family is looked for after the last
/// `/` and anywhere in the name for Claude.
fn reasons_by_name(model: &str) -> bool {
    let name = family(model);
    // o1-mini and o1-preview reason but refuse `reasoning_effort`, and the
    // gpt-5 chat models do not reason: no setting reaches them.
    let openai =
        (is_o_series(&name) && !name.starts_with("o1-mini") && !name.starts_with("o1-preview"))
            || (name.starts_with("gpt-5") && !name.starts_with("gpt-5-chat"));
    let claude = name.contains("claude-3-7")
        || name.contains("sonnet-4")
        || name.contains("opus-4")
        || name.contains("haiku-4")
        || (name.contains("claude-") && name.contains("-4"));
    let gemini = name.starts_with("gemini-2.5") || name.starts_with("gemini-3");
    openai || claude || gemini
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_models_are_told_by_name_and_config_wins() {
        for model in [
            "o3-mini",
            "o1",
            "gpt-5-mini",
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-3-7-sonnet-latest",
            "us.anthropic.claude-haiku-4-5",
            "gemini-2.5-flash",
            "models/gemini-3-pro",
        ] {
            assert!(traits(model, None).reasons, "{model}");
        }
        for model in [
            "gpt-4o",
            "gpt-4o-mini",
            // They reject `reasoning_effort`.
            "o1-mini",
            "o1-preview-2024-09-12",
            "gpt-5-chat-latest",
            "claude-3-5-haiku",
            "gemini-2.0-flash",
            "llama3",
        ] {
            assert!(!traits(model, None).reasons, "{model}");
        }
        let configured = ModelTraitsOverride {
            reasoning: Some(true),
            vision: Some(false),
        };
        let llama = traits("llama3", Some(&configured));
        assert!(llama.reasons && !llama.vision);
    }
}
