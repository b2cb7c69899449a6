//! What the judge decided, kept in Redis so that every instance's status
//! surfaces show the same thing: component states with their reasons and
//! times, burn rates, the incidents, and when it was judged.

use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::Incident;
use bulwark::shared::{Shared, SharedError};
use bulwark_health::ComponentView;
use serde::{Deserialize, Serialize};

/// Kept long after it stops being fresh: a new judge adopts the open
/// incident from it even when the old judge died a while ago.
const KEEP: Duration = Duration::from_secs(3600);

/// A status larger than this is not ours: ignored.
const MAX_STATUS: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Judged {
    pub leader: String,
    pub generated_at: UnixMs,
    pub components: Vec<JudgedComponent>,
    pub burn: Vec<JudgedBurn>,
    /// The judge's incidents, open and resolved, newest first.
    pub incidents: Vec<Incident>,
    /// Outages fallback absorbed, as the judge saw them: every instance
    /// tells the same story.
    #[serde(default)]
    pub absorbed: Vec<bulwark::observe::snapshot::Absorbed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JudgedComponent {
    pub name: String,
    pub kind: ComponentKind,
    pub state: ComponentState,
    pub reason: Option<String>,
    pub updated_at: UnixMs,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// A route's burn rates; `None` stands for "not a number" (no traffic),
/// which JSON cannot carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JudgedBurn {
    pub route: String,
    pub rate_1h: Option<f64>,
    pub rate_6h: Option<f64>,
}

impl From<ComponentView> for JudgedComponent {
    fn from(c: ComponentView) -> JudgedComponent {
        JudgedComponent {
            name: c.name,
            kind: c.kind,
            state: c.state,
            reason: c.reason,
            updated_at: c.updated_at,
            p50_ms: c.first_token_p50_ms,
            p95_ms: c.first_token_p95_ms,
        }
    }
}

impl From<JudgedComponent> for ComponentView {
    fn from(c: JudgedComponent) -> ComponentView {
        ComponentView {
            name: c.name,
            kind: c.kind,
            state: c.state,
            reason: c.reason,
            updated_at: c.updated_at,
            first_token_p50_ms: c.p50_ms,
            first_token_p95_ms: c.p95_ms,
        }
    }
}

impl Judged {
    pub fn open_incident(&self) -> Option<&Incident> {
        self.incidents.iter().find(|i| !i.status.is_closed())
    }

    pub fn burn(&self, route: &str) -> (f64, f64) {
        self.burn
            .iter()
            .find(|b| b.route == route)
            .map_or((f64::NAN, f64::NAN), |b| {
                (b.rate_1h.unwrap_or(f64::NAN), b.rate_6h.unwrap_or(f64::NAN))
            })
    }
}

/// A burn rate as JSON can carry it.
pub(crate) fn finite(rate: f64) -> Option<f64> {
    rate.is_finite().then_some(rate)
}

pub(super) async fn publish(shared: &Shared, judged: &Judged) -> Result<(), SharedError> {
    let Ok(body) = serde_json::to_vec(judged) else {
        return Ok(());
    };
    let key = shared.key("health:status");
    shared
        .run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(body)
                .arg("PX")
                .arg(KEEP.as_millis() as u64)
                .query_async::<()>(&mut c)
                .await
        })
        .await
}

/// The judge's last word, whatever its age.
pub(super) async fn read(shared: &Shared) -> Result<Option<Judged>, SharedError> {
    let key = shared.key("health:status");
    let body: Option<Vec<u8>> = shared
        .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
        .await?;
    Ok(body
        .filter(|b| b.len() <= MAX_STATUS)
        .and_then(|b| serde_json::from_slice(&b).ok()))
}
