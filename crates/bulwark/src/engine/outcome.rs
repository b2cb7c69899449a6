//! How a request ends: served (and how), or failed (and why), with the
//! error the client is told when no target could answer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::api::WireFormat;
use crate::cache::CacheStatus;
use crate::error::{ApiError, ErrorKind, UpstreamError, UpstreamFailure};
use crate::observe::record::AttemptRecord;
use crate::provider::{Chunk, ChunkStream};
use crate::resilience::classify::{Action, classify, every_target_failed, is_translation_refused};

use super::Run;

/// How many kinds of refused field an error names; the rest are counted.
const LISTED_FIELDS: usize = 16;

/// The most of an error's text (or `param`) built from what the client
/// sent: a field's path is the client's key, of any length.
const MAX_ERROR_TEXT: usize = 4096;

/// `text`, cut to [`MAX_ERROR_TEXT`] bytes at a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Whether the caller reads the answer as it streams or wants it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream,
    Complete,
}

pub enum Answer {
    /// Chunks from the first content event on; an `Err` item ends it.
    Stream(ChunkStream),
    /// Every chunk of a complete answer.
    Complete(Vec<Chunk>),
}

/// A successful answer and how it was obtained.
pub struct Served<T> {
    pub value: T,
    /// `provider/model` that answered.
    pub target: String,
    /// The wire format of the provider that answered.
    pub format: WireFormat,
    /// Upstream attempts made, including the successful one.
    pub attempts: u32,
    /// The answer came from a target other than the route's first.
    pub fallback: bool,
    /// Set when the route caches answers.
    pub cache: Option<CacheStatus>,
    /// How the answer was degraded, when every target failed: `stale-cache`,
    /// the degrade target's `provider/model`, or `static`.
    pub degraded: Option<String>,
    /// Every upstream attempt, in the order they ended, for the request log.
    pub attempt_log: Vec<AttemptRecord>,
    /// Features of the client's request the answering target's format
    /// could not carry and was sent without (`x-bulwark-dropped`), unique,
    /// in the order first met.
    pub dropped: Vec<&'static str>,
}

impl<T> Served<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served {
            value: f(self.value),
            target: self.target,
            format: self.format,
            attempts: self.attempts,
            fallback: self.fallback,
            cache: self.cache,
            degraded: self.degraded,
            attempt_log: self.attempt_log,
            dropped: self.dropped,
        }
    }
}

/// The request could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    pub error: ApiError,
    pub attempts: u32,
    /// Every failed attempt, in order.
    pub failures: Vec<UpstreamError>,
    /// Every upstream attempt, for the request log.
    pub attempt_log: Vec<AttemptRecord>,
}

impl Failed {
    pub fn before_any_attempt(error: ApiError) -> Failed {
        Failed {
            error,
            attempts: 0,
            failures: Vec::new(),
            attempt_log: Vec::new(),
        }
    }
}

impl Run<'_> {
    pub(super) fn deadline_exceeded(&self) -> Failed {
        let mut error = ApiError::new(
            ErrorKind::Timeout,
            format!(
                "no answer within the request deadline of {:?} (route `{}`){}",
                self.deadline.budget(),
                self.route.name,
                self.summary()
            ),
        );
        error.code = Some("deadline_exceeded".into());
        Failed {
            error,
            attempts: self.attempts,
            failures: self.failures.clone(),
            // Attempts the caller's own deadline cut short are not held
            // against their providers.
            attempt_log: self.log.snapshot(
                &self.route.targets,
                if self.deadline.set_by_caller() {
                    "deadline"
                } else {
                    "timeout"
                },
            ),
        }
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.target, f.message))
            .collect();
        parts.extend(self.skipped.iter().map(|s| format!("{s}: skipped")));
        parts.extend(self.refused.iter().map(|(target, refusal)| {
            format!("{target}: cannot take {}", bounded(refusal.paths()))
        }));
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        }
    }

    /// The error for a request no target could serve. A request the client
    /// got wrong keeps its own error; otherwise the client learns every
    /// attempt. A target that could not take the request never hides what
    /// the others said: once any target was tried and failed upstream, or
    /// one is only resting (its breaker open), the client hears about the
    /// outage, not its request, which some target could take.
    /// A target's 4xx to a translation it was sent ranks below every real
    /// upstream failure: it is the client's answer only when no target
    /// failed otherwise, and then it is the provider's own word on the
    /// request.
    pub(super) fn give_up(&self) -> Failed {
        let upstream = self.failures.iter().rev().find(|f| {
            !matches!(f.failure, UpstreamFailure::Rejected(_)) && !is_translation_refused(f)
        });
        let error = match (upstream, self.failures.last()) {
            (None, _) if !self.skipped.is_empty() => {
                let mut error = ApiError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "every target of route `{}` is unavailable{}",
                        self.route.name,
                        self.summary()
                    ),
                );
                error.retry_after = Some(self.min_open_wait().as_secs().max(1));
                error
            }
            (None, None) if !self.refused.is_empty() => self.no_target_can_take(),
            (None, None) => ApiError::new(
                ErrorKind::Api,
                format!("route `{}` has no targets", self.route.name),
            ),
            // Only encoders or translations' targets refused: the client's
            // request is what failed, in a provider's words if one answered.
            (None, Some(last)) => self
                .failures
                .iter()
                .rev()
                .find(|f| is_translation_refused(f))
                .unwrap_or(last)
                .to_api_error(),
            (Some(last), _) if classify(last).action == Action::FailFast => last.to_api_error(),
            (Some(last), _)
                if self.failures.len() == 1
                    && self.skipped.is_empty()
                    && self.refused.is_empty() =>
            {
                every_target_failed(last.to_api_error())
            }
            (Some(last), _) => {
                let mut error = last.to_api_error();
                error.message = format!(
                    "every target of route `{}` failed ({} attempts){}",
                    self.route.name,
                    self.attempts,
                    self.summary()
                );
                every_target_failed(error)
            }
        };
        Failed {
            error,
            attempts: self.attempts,
            failures: self.failures.clone(),
            attempt_log: self.log.snapshot(&self.route.targets, "cancelled"),
        }
    }

    /// A 400 for a request no target of the route can take: each kind of
    /// field (feature and reason) once, with its first path, how many more
    /// fields are like it, and which targets refused it. The decoder records
    /// a bounded list (`translate::MAX_UNMAPPED`, counting the rest), and
    /// the message names at most [`LISTED_FIELDS`] kinds, so a body of a
    /// million unknown blocks gets a short error, in the log as well.
    fn no_target_can_take(&self) -> ApiError {
        struct Kind<'r> {
            described: String,
            path: &'r str,
            count: usize,
            targets: Vec<&'r str>,
        }
        let mut kinds: Vec<Kind<'_>> = Vec::new();
        let mut known: HashMap<String, usize> = HashMap::new();
        for (target, refusal) in &self.refused {
            let mut counted: HashSet<usize> = HashSet::new();
            let mut counts: HashMap<usize, usize> = HashMap::new();
            for field in &refusal.fields {
                let described = format!("({}): {}", field.feature, field.reason);
                let at = match known.get(&described) {
                    Some(&at) => at,
                    None => {
                        known.insert(described.clone(), kinds.len());
                        kinds.push(Kind {
                            described,
                            path: &field.path,
                            count: 0,
                            targets: Vec::new(),
                        });
                        kinds.len() - 1
                    }
                };
                *counts.entry(at).or_default() += 1 + field.more;
                if counted.insert(at) {
                    kinds[at].targets.push(target);
                }
            }
            // Every target is refused the same body: one target's count
            // is the body's.
            for (at, count) in counts {
                kinds[at].count = kinds[at].count.max(count);
            }
        }
        let mut described: Vec<String> = kinds
            .iter()
            .take(LISTED_FIELDS)
            .map(|kind| {
                let like_it = match kind.count {
                    0 | 1 => String::new(),
                    n => format!(" and {} more like it", n - 1),
                };
                format!(
                    "`{}`{like_it} {} (refused by {})",
                    kind.path,
                    kind.described,
                    kind.targets.join(", ")
                )
            })
            .collect();
        let unlisted = kinds.len().saturating_sub(LISTED_FIELDS);
        if unlisted > 0 {
            described.push(format!("…and {unlisted} more kinds of field"));
        }
        let paths: Vec<&str> = kinds.iter().take(LISTED_FIELDS).map(|k| k.path).collect();
        let fields: usize = kinds.iter().map(|k| k.count).sum();
        let message = format!(
            "no target of route `{}` can take this request: {}; remove {} or route the request to a provider that speaks the client's format",
            self.route.name,
            described.join("; "),
            if fields == 1 {
                "the field"
            } else {
                "the fields"
            }
        );
        ApiError::invalid_param(bounded(paths.join(", ")), bounded(message))
    }

    /// How long until the first skipped target's breaker lets a call through.
    fn min_open_wait(&self) -> Duration {
        let now = Instant::now();
        self.route
            .targets
            .iter()
            .filter_map(|t| t.state.with_breaker(|b| b.admit_preview(now)))
            .min()
            .unwrap_or(Duration::from_secs(1))
    }
}
