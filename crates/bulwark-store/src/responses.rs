//! Stored OpenAI Responses: the conversation state behind
//! `previous_response_id`, kept here rather than at a provider so that a
//! fallback target on another provider can be given the whole history.
//!
//! A row holds a response's full expanded input, not a pointer to its
//! predecessor, so continuing a conversation is one read and deleting one
//! response never breaks the responses that followed it.
//!
//! Every read and delete names the tenant (the client key's name, `None`
//! on a gateway without keys): another tenant's id reads as missing. The
//! JSON is kept as text; the store never looks inside it.

use bulwark::observe::UnixMs;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Store, StoreError};

/// One stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The Response object's `id`.
    pub id: String,
    /// The client key's name; `None` on a gateway without keys.
    pub tenant: Option<String>,
    /// When it was stored; expiry counts from here.
    pub created_ms: UnixMs,
    /// The request's input items, previous turns included, as a JSON array.
    pub input_items: String,
    /// The Response object as the client received it.
    pub response: String,
}

impl StoredResponse {
    /// What the size cap counts: the two JSON texts.
    pub fn size(&self) -> usize {
        self.input_items.len().saturating_add(self.response.len())
    }
}

/// How much [`Store::put_response`] may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// One stored response's JSON, its whole history included.
    pub max_bytes: usize,
    /// Every stored response of one tenant together: each turn stores its
    /// whole history again, so without this a client could fill the store
    /// by continuing one large conversation over and over.
    pub max_tenant_bytes: u64,
}

/// Whether [`Store::put_response`] kept a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// The id belongs to another tenant's response, which is left alone.
    IdTaken,
}

/// `tenant = $n`, or `tenant IS NULL` for a keyless gateway, whose rows
/// must not match a keyed tenant's and vice versa. Returns the clause and
/// whether it takes a parameter.
fn tenant_clause(tenant: Option<&str>, n: usize) -> (String, bool) {
    match tenant {
        Some(_) => (format!("tenant = ${n}"), true),
        None => ("tenant IS NULL".to_string(), false),
    }
}

fn read_row(row: &AnyRow) -> Result<StoredResponse, sqlx::Error> {
    Ok(StoredResponse {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        created_ms: row.try_get("created_ms")?,
        input_items: row.try_get("input_items")?,
        response: row.try_get("response")?,
    })
}

impl Store {
    /// Stores a response, replacing the same tenant's row with that id.
    /// Refuses, without writing, one whose JSON is over
    /// `limits.max_bytes` (a conversation must not grow without bound), or
    /// that would bring its tenant's stored responses over
    /// `limits.max_tenant_bytes`.
    pub async fn put_response(
        &self,
        stored: &StoredResponse,
        limits: ResponseLimits,
    ) -> Result<PutOutcome, StoreError> {
        let size = stored.size();
        if size > limits.max_bytes {
            return Err(StoreError::ResponseTooLarge {
                id: stored.id.clone(),
                bytes: size,
                max_bytes: limits.max_bytes,
            });
        }
        let op = "storing a response";
        let bytes = i64::try_from(size).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        // Read and written in one transaction; several instances writing
        // for one tenant at once may each pass, overshooting by at most
        // one response each. PostgreSQL sums BIGINT as NUMERIC, which the
        // Any driver cannot read: hence the cast.
        let (clause, binds_tenant) = tenant_clause(stored.tenant.as_deref(), 1);
        let mut used = sqlx::query(AssertSqlSafe(format!(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS used FROM responses WHERE {clause}"
        )));
        if binds_tenant {
            used = used.bind(stored.tenant.clone());
        }
        let used: i64 = used
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("used"))
            .map_err(self.err(op))?;
        let total = u64::try_from(used)
            .unwrap_or(0)
            .saturating_add(u64::try_from(size).unwrap_or(u64::MAX));
        if total > limits.max_tenant_bytes {
            return Err(StoreError::KeyBudgetExceeded {
                id: stored.id.clone(),
                bytes: size,
                total,
                max_bytes: limits.max_tenant_bytes,
            });
        }
        let (clause, binds_tenant) = tenant_clause(stored.tenant.as_deref(), 6);
        let mut update = sqlx::query(AssertSqlSafe(format!(
            "UPDATE responses SET created_ms = $1, input_items = $2, response = $3, bytes = $4 \
             WHERE id = $5 AND {clause}"
        )))
        .bind(stored.created_ms)
        .bind(stored.input_items.clone())
        .bind(stored.response.clone())
        .bind(bytes)
        .bind(stored.id.clone());
        if binds_tenant {
            update = update.bind(stored.tenant.clone());
        }
        let updated = update.execute(&mut *tx).await.map_err(self.err(op))?;
        if updated.rows_affected() > 0 {
            tx.commit().await.map_err(self.err(op))?;
            return Ok(PutOutcome::Stored);
        }
        let inserted = sqlx::query(
            "INSERT INTO responses (id, tenant, created_ms, input_items, response, bytes) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stored.id.clone())
        .bind(stored.tenant.clone())
        .bind(stored.created_ms)
        .bind(stored.input_items.clone())
        .bind(stored.response.clone())
        .bind(bytes)
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(if inserted.rows_affected() > 0 {
            PutOutcome::Stored
        } else {
            PutOutcome::IdTaken
        })
    }

    /// The tenant's response `id`, unless it was stored before `not_before`
    /// (expired, awaiting the next purge).
    pub async fn response(
        &self,
        id: &str,
        tenant: Option<&str>,
        not_before: UnixMs,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let (clause, binds_tenant) = tenant_clause(tenant, 3);
        let mut query = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, tenant, created_ms, input_items, response FROM responses \
             WHERE id = $1 AND created_ms >= $2 AND {clause}"
        )))
        .bind(id.to_string())
        .bind(not_before);
        if binds_tenant {
            query = query.bind(tenant.map(str::to_string));
        }
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading a stored response"))?;
        row.as_ref()
            .map(read_row)
            .transpose()
            .map_err(self.err("reading a stored response"))
    }

    /// The input items (a JSON array) of the tenant's response `id`,
    /// without reading the response itself.
    pub async fn response_input_items(
        &self,
        id: &str,
        tenant: Option<&str>,
        not_before: UnixMs,
    ) -> Result<Option<String>, StoreError> {
        let (clause, binds_tenant) = tenant_clause(tenant, 3);
        let mut query = sqlx::query(AssertSqlSafe(format!(
            "SELECT input_items FROM responses \
             WHERE id = $1 AND created_ms >= $2 AND {clause}"
        )))
        .bind(id.to_string())
        .bind(not_before);
        if binds_tenant {
            query = query.bind(tenant.map(str::to_string));
        }
        let op = "reading a stored response's input items";
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(op))?;
        row.map(|r| r.try_get::<String, _>("input_items"))
            .transpose()
            .map_err(self.err(op))
    }

    /// Deletes the tenant's response `id`; whether there was one.
    pub async fn delete_response(
        &self,
        id: &str,
        tenant: Option<&str>,
        not_before: UnixMs,
    ) -> Result<bool, StoreError> {
        let (clause, binds_tenant) = tenant_clause(tenant, 3);
        let mut query = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM responses WHERE id = $1 AND created_ms >= $2 AND {clause}"
        )))
        .bind(id.to_string())
        .bind(not_before);
        if binds_tenant {
            query = query.bind(tenant.map(str::to_string));
        }
        let done = query
            .execute(&self.pool)
            .await
            .map_err(self.err("deleting a stored response"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes responses stored before `cutoff`; how many.
    pub async fn purge_responses_before(&self, cutoff: UnixMs) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM responses WHERE created_ms < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(self.err("purging expired responses"))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyless_tenant_matches_only_keyless_rows() {
        assert_eq!(
            tenant_clause(Some("team"), 3),
            ("tenant = $3".to_string(), true)
        );
        assert_eq!(
            tenant_clause(None, 3),
            ("tenant IS NULL".to_string(), false)
        );
    }
}
