//! Incidents and their timelines. The health tracker saves an incident
//! whole every time it changes, so saving replaces rather than appends:
//! the caller's copy is the truth and a retry cannot duplicate entries.

use std::collections::HashMap;

use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::sql::{ROWS_PER_STATEMENT, corrupt, insert_values, placeholders, to_i64, to_u64};
use crate::{Store, StoreError};

const INCIDENT_COLUMNS: &str = "id, title, status, worst, components, started_at_ms, \
    updated_at_ms, resolved_at_ms, affected, saved_by_fallback, from_cache, degraded, failed";

const TIMELINE_COLUMNS: &[&str] = &[
    "incident_id",
    "seq",
    "at_ms",
    "kind",
    "component",
    "status",
    "message",
];

fn read_incident(store: &Store, row: &AnyRow) -> Result<Incident, StoreError> {
    let get_err = |source| store.err("reading incidents")(source);
    let status: String = row.try_get("status").map_err(get_err)?;
    let worst: String = row.try_get("worst").map_err(get_err)?;
    let components: String = row.try_get("components").map_err(get_err)?;
    let count = |col: &str| row.try_get::<i64, _>(col).map(to_u64).map_err(get_err);
    Ok(Incident {
        id: row.try_get("id").map_err(get_err)?,
        title: row.try_get("title").map_err(get_err)?,
        status: IncidentStatus::parse(&status)
            .ok_or_else(|| corrupt("incident status", &status))?,
        worst: ComponentState::parse(&worst).ok_or_else(|| corrupt("component state", &worst))?,
        components: serde_json::from_str(&components)
            .map_err(|_| corrupt("incident component list", &components))?,
        started_at: row.try_get("started_at_ms").map_err(get_err)?,
        updated_at: row.try_get("updated_at_ms").map_err(get_err)?,
        resolved_at: row.try_get("resolved_at_ms").map_err(get_err)?,
        impact: Impact {
            affected: count("affected")?,
            saved_by_fallback: count("saved_by_fallback")?,
            from_cache: count("from_cache")?,
            degraded: count("degraded")?,
            failed: count("failed")?,
        },
        timeline: Vec::new(),
    })
}

fn read_entry(store: &Store, row: &AnyRow) -> Result<(String, TimelineEntry), StoreError> {
    let get_err = |source| store.err("reading incident timelines")(source);
    let kind: String = row.try_get("kind").map_err(get_err)?;
    let status: String = row.try_get("status").map_err(get_err)?;
    Ok((
        row.try_get("incident_id").map_err(get_err)?,
        TimelineEntry {
            at: row.try_get("at_ms").map_err(get_err)?,
            kind: TimelineKind::parse(&kind).ok_or_else(|| corrupt("timeline kind", &kind))?,
            component: row.try_get("component").map_err(get_err)?,
            status: IncidentStatus::parse(&status)
                .ok_or_else(|| corrupt("incident status", &status))?,
            message: row.try_get("message").map_err(get_err)?,
        },
    ))
}

impl Store {
    /// Inserts or updates the incident and replaces its timeline, in one
    /// transaction so readers never see an incident without its entries.
    pub async fn save_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        let op = "saving an incident";
        let components = serde_json::to_string(&incident.components).unwrap_or_default();
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        sqlx::query(
            "INSERT INTO incidents (id, title, status, worst, components, started_at_ms, \
             updated_at_ms, resolved_at_ms, affected, saved_by_fallback, from_cache, degraded, \
             failed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status, \
             worst = excluded.worst, components = excluded.components, \
             started_at_ms = excluded.started_at_ms, updated_at_ms = excluded.updated_at_ms, \
             resolved_at_ms = excluded.resolved_at_ms, affected = excluded.affected, \
             saved_by_fallback = excluded.saved_by_fallback, from_cache = excluded.from_cache, \
             degraded = excluded.degraded, failed = excluded.failed",
        )
        .bind(incident.id.clone())
        .bind(incident.title.clone())
        .bind(incident.status.as_str())
        .bind(incident.worst.as_str())
        .bind(components)
        .bind(incident.started_at)
        .bind(incident.updated_at)
        .bind(incident.resolved_at)
        .bind(to_i64(incident.impact.affected))
        .bind(to_i64(incident.impact.saved_by_fallback))
        .bind(to_i64(incident.impact.from_cache))
        .bind(to_i64(incident.impact.degraded))
        .bind(to_i64(incident.impact.failed))
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;

        sqlx::query("DELETE FROM incident_timeline WHERE incident_id = $1")
            .bind(incident.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let entries: Vec<(usize, &TimelineEntry)> = incident.timeline.iter().enumerate().collect();
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_values(
                self.backend,
                "incident_timeline",
                TIMELINE_COLUMNS,
                chunk.len(),
                "",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (seq, e) in chunk {
                q = q
                    .bind(incident.id.clone())
                    .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                    .bind(e.at)
                    .bind(e.kind.as_str())
                    .bind(e.component.clone())
                    .bind(e.status.as_str())
                    .bind(e.message.clone());
            }
            q.execute(&mut *tx).await.map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(())
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let op = "reading an incident";
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(op))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut incidents = vec![read_incident(self, &row)?];
        self.attach_timelines(&mut incidents).await?;
        Ok(incidents.pop())
    }

    /// The `limit` most recently started incidents, newest first.
    pub async fn incidents(&self, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let op = "listing incidents";
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY started_at_ms DESC, id DESC LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(self.err(op))?;
        let mut incidents = rows
            .iter()
            .map(|row| read_incident(self, row))
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_timelines(&mut incidents).await?;
        Ok(incidents)
    }

    async fn attach_timelines(&self, incidents: &mut [Incident]) -> Result<(), StoreError> {
        let op = "reading incident timelines";
        let index: HashMap<String, usize> = incidents
            .iter()
            .enumerate()
            .map(|(i, inc)| (inc.id.clone(), i))
            .collect();
        let ids: Vec<String> = index.keys().cloned().collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT incident_id, at_ms, kind, component, status, message \
                 FROM incident_timeline WHERE incident_id IN ({}) ORDER BY incident_id, seq",
                placeholders(self.backend, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.clone());
            }
            for row in q.fetch_all(&self.pool).await.map_err(self.err(op))? {
                let (id, entry) = read_entry(self, &row)?;
                if let Some(&i) = index.get(&id) {
                    incidents[i].timeline.push(entry);
                }
            }
        }
        Ok(())
    }
}
