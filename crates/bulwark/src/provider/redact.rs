//! Keeps a provider's credentials out of every error text it causes.
//! Providers quote keys back, whole or as fragments (`sk-proj-abcd...wxyz`,
//! `sk-abc…3456`, `sk-abc1****************wxyz`), in error bodies, in error
//! events inside 200 streams, and in the text a decode error quotes; that
//! text goes to clients and into logs. Every `UpstreamError` a provider
//! makes passes through [`Redactor::error`].

use crate::error::{UpstreamError, UpstreamFailure};

/// What a secret or a quoted fragment of one is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// A quoted fragment needs at least this many of the key's first
/// characters before its ellipsis: fewer say nothing about the key, and
/// would match ordinary words.
const MIN_PREFIX: usize = 4;
/// Likewise for the key's last characters after an ellipsis.
const MIN_SUFFIX: usize = 4;
/// A credential header's value shorter than this is a setting (`x-auth-mode:
/// on`), not a secret: replacing it everywhere would garble every message.
const MIN_HEADER_SECRET: usize = 8;

/// The secrets of one provider: its key and the values of its credential
/// headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn new<'a>(
        api_key: Option<&str>,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        cloud: &[&str],
    ) -> Redactor {
        // A cloud's secrets (an AWS secret key, an Entra client secret, a
        // service account's private key) are never sent, but are kept out
        // of errors all the same.
        let mut secrets: Vec<String> = api_key
            .into_iter()
            .chain(cloud.iter().copied())
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        for (name, value) in headers {
            if !is_credential_header(name) {
                continue;
            }
            let value = value.trim();
            // `Bearer <token>`: the token is quoted alone too.
            let token = value.rsplit_once(' ').map(|(_, token)| token);
            for secret in std::iter::once(value).chain(token) {
                if secret.chars().count() >= MIN_HEADER_SECRET {
                    secrets.push(secret.to_string());
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        // An empty secret would match everywhere, without moving on.
        secrets.retain(|s| !s.is_empty());
        Redactor { secrets }
    }

    /// An error of this provider, with every secret and quoted fragment of
    /// one removed from its message and provider code: the one way a
    /// provider's `UpstreamError` is made.
    pub(crate) fn error(
        &self,
        target: &str,
        failure: UpstreamFailure,
        message: impl Into<String>,
    ) -> UpstreamError {
        let failure = match failure {
            UpstreamFailure::Status {
                status,
                provider_code,
            } => UpstreamFailure::Status {
                status,
                provider_code: provider_code.map(|c| self.redact(&c)),
            },
            UpstreamFailure::Stream { provider_code } => UpstreamFailure::Stream {
                provider_code: provider_code.map(|c| self.redact(&c)),
            },
            other => other,
        };
        UpstreamError::new(target, failure, self.redact(&message.into()))
    }

    /// `text` without any of the secrets, whole or quoted in part.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_string();
        }
        redact_all(text, &self.secrets)
    }
}

/// Headers whose values are credentials, by the names they are given.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["key", "token", "secret", "auth", "password", "credential"]
        .iter()
        .any(|word| name.contains(word))
}

/// Characters a key is made of; a fragment extends over them.
fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// The length in bytes of the ellipsis at the start of `text`: a run of
/// `.`, `*` and `…` with at least three dots or asterisks or one `…`.
fn ellipsis_len(text: &str) -> usize {
    let run: usize = text
        .chars()
        .take_while(|c| matches!(c, '.' | '*' | '…'))
        .map(char::len_utf8)
        .sum();
    let marker = &text[..run];
    if marker.contains('…') || marker.len() >= 3 {
        run
    } else {
        0
    }
}

/// The length in bytes of the run of key characters at the start of `text`.
fn key_run_len(text: &str) -> usize {
    text.chars()
        .take_while(|&c| is_key_char(c))
        .map(char::len_utf8)
        .sum()
}

/// How many characters (and bytes) `text` and `secret` have in common at
/// their start.
fn common_prefix(text: &str, secret: &str) -> (usize, usize) {
    let mut chars = 0;
    let mut bytes = 0;
    for (a, b) in text.chars().zip(secret.chars()) {
        if a != b {
            break;
        }
        chars += 1;
        bytes += a.len_utf8();
    }
    (chars, bytes)
}

/// Replaces, in one pass over `text`, for each of `secrets`:
/// - the whole secret, anywhere;
/// - a quoted fragment: at least [`MIN_PREFIX`] of the secret's first
///   characters, starting a word, directly followed by an ellipsis and the
///   key characters after it (`sk-SECR...3456`, `sk-SECR****`);
/// - an ellipsis directly followed by at least [`MIN_SUFFIX`] of the
///   secret's last characters, ending a word (`...3456`).
///
/// One pass for all secrets, so that replacing part of a quote for one (the
/// `...3456` a longer secret also ends with) cannot hide the rest of it from
/// another. Ordinary text is left alone: it would have to begin a word with
/// the key's own first characters and an ellipsis, or end one with an
/// ellipsis and the key's own last characters.
fn redact_all(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut previous: Option<char> = None;
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        if let Some(len) = matched_len(rest, previous, secrets) {
            out.push_str(REDACTED);
            previous = rest[..len].chars().last();
            i += len;
            continue;
        }
        out.push(c);
        previous = Some(c);
        i += c.len_utf8();
    }
    out
}

/// The length in bytes of the secret or quoted fragment `rest` starts with,
/// if any; `previous` is the character before it.
fn matched_len(rest: &str, previous: Option<char>, secrets: &[String]) -> Option<usize> {
    if let Some(secret) = secrets.iter().find(|s| rest.starts_with(s.as_str())) {
        return Some(secret.len());
    }
    if !previous.is_some_and(is_key_char) {
        let fragment = secrets
            .iter()
            .filter_map(|secret| {
                let (chars, bytes) = common_prefix(rest, secret);
                let marker = ellipsis_len(&rest[bytes..]);
                (chars >= MIN_PREFIX && marker > 0)
                    .then(|| bytes + marker + key_run_len(&rest[bytes + marker..]))
            })
            .max();
        if fragment.is_some() {
            return fragment;
        }
    }
    let marker = ellipsis_len(rest);
    if marker > 0 {
        let run = key_run_len(&rest[marker..]);
        let tail = &rest[marker..marker + run];
        if tail.chars().count() >= MIN_SUFFIX && secrets.iter().any(|s| s.ends_with(tail)) {
            return Some(marker + run);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-proj-SECRETabcdef123456";

    fn redactor() -> Redactor {
        Redactor::new(Some(KEY), [], &[])
    }

    #[test]
    fn the_whole_key_and_its_quoted_fragments_are_redacted() {
        let r = redactor();
        for quoted in [
            KEY,
            "sk-p...3456",
            "sk-proj-SECR...3456",
            "sk-proj-SECR…3456",
            "sk-proj-SECR....",
            "sk-proj-SECRETab****************3456",
            "sk-proj-********************3456",
            "sk-proj-SECR***",
            "...3456",
            "…123456",
            "****3456",
        ] {
            for text in [
                format!("Incorrect API key provided: {quoted}. Find your key at x."),
                format!("key '{quoted}'"),
                quoted.to_string(),
            ] {
                let redacted = r.redact(&text);
                assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
                assert!(!redacted.contains("3456"), "{text} -> {redacted}");
                assert!(!redacted.contains("sk-p"), "{text} -> {redacted}");
            }
        }
        assert_eq!(
            r.redact("Incorrect API key provided: sk-proj-SECR...3456. See the docs..."),
            "Incorrect API key provided: [redacted]. See the docs..."
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let r = redactor();
        for text in [
            "The server is overloaded... please retry in 3456 ms",
            "sk-p is not a fragment without its ellipsis, nor sk-pro without its ellipsis",
            "a task... done",
            "Rate limit reached... 123456 tokens per minute",
            "wait... 3456",
            "value ...3456789 (longer than the key's end)",
            "a prompt about sk-projects...",
            "",
            "…",
            "fin…",
        ] {
            assert_eq!(r.redact(text), text);
        }
        // Fewer than four of the key's characters are not a fragment.
        assert_eq!(r.redact("sk-...3"), "sk-...3");
    }

    #[test]
    fn credential_headers_are_secrets_and_other_headers_are_not() {
        let r = Redactor::new(
            None,
            [
                ("Authorization", "Bearer tok-ABCDEFGH12345678"),
                ("x-custom-api-key", "custom-KEY-987654321"),
                ("anthropic-version", "2023-06-01"),
                ("OpenAI-Organization", "org-visible"),
                ("x-auth-mode", "on"),
            ],
            &["aws-SECRET-key-0123456789"],
        );
        assert_eq!(
            r.redact("signed with aws-SECRET-key-0123456789"),
            "signed with [redacted]"
        );
        assert_eq!(r.redact("connection failed"), "connection failed");
        assert_eq!(
            r.redact(
                "tok-ABCDEFGH12345678 tok-ABCD...5678 custom-KEY-9... for 2023-06-01 org-visible"
            ),
            "[redacted] [redacted] [redacted] for 2023-06-01 org-visible"
        );
    }

    #[test]
    fn errors_are_redacted_in_message_and_provider_code() {
        let r = redactor();
        let error = r.error(
            "p/m",
            UpstreamFailure::Stream {
                provider_code: Some(format!("bad_key:{KEY}")),
            },
            format!("error event in stream: invalid key {KEY}"),
        );
        assert_eq!(
            error.message,
            "error event in stream: invalid key [redacted]"
        );
        assert_eq!(
            error.failure,
            UpstreamFailure::Stream {
                provider_code: Some("bad_key:[redacted]".into())
            }
        );
    }
}
