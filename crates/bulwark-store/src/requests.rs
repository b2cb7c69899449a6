//! The request log: one row per request, one per upstream attempt, and the
//! hourly per-route counts that SLOs read so they never scan the log.

use std::collections::{BTreeMap, HashMap, HashSet};

use bulwark::observe::UnixMs;
use bulwark::observe::record::{AttemptRecord, RequestRecord};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::sql::{ROWS_PER_STATEMENT, get_bool, insert_values, to_i64, to_u64};
use crate::{Backend, Store, StoreError};

const HOUR_MS: i64 = 3_600_000;

const REQUEST_COLUMNS: &[&str] = &[
    "id",
    "at_ms",
    "route",
    "client_format",
    "stream",
    "status",
    "error_class",
    "target",
    "fallback",
    "cache",
    "degraded",
    "dropped",
    "latency_ms",
    "first_token_ms",
    "input_tokens",
    "output_tokens",
    "key_id",
    "request_body",
    "client_request_id",
];

const ATTEMPT_COLUMNS: &[&str] = &[
    "request_id",
    "seq",
    "request_at_ms",
    "target",
    "at_ms",
    "latency_ms",
    "first_token_ms",
    "status",
    "error_class",
    "hedge",
];

const ROLLUP_COLUMNS: &[&str] = &["route", "hour_start_ms", "total", "good"];

/// The start of the UTC hour holding `at`.
pub(crate) fn hour_start(at: UnixMs) -> UnixMs {
    at.div_euclid(HOUR_MS) * HOUR_MS
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

fn bind_request<'q>(q: AnyQuery<'q>, r: &RequestRecord) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(r.at)
        .bind(r.route.clone())
        .bind(r.client_format.clone())
        .bind(r.stream)
        .bind(i64::from(r.status))
        .bind(r.error_class.clone())
        .bind(r.target.clone())
        .bind(r.fallback)
        .bind(r.cache.clone())
        .bind(r.degraded.clone())
        .bind((!r.dropped.is_empty()).then(|| r.dropped.join(",")))
        .bind(r.latency_ms)
        .bind(r.first_token_ms)
        .bind(r.input_tokens.map(to_i64))
        .bind(r.output_tokens.map(to_i64))
        .bind(r.key_id.clone())
        .bind(r.request_body.clone())
        .bind(r.client_request_id.clone())
}

fn bind_attempt<'q>(
    q: AnyQuery<'q>,
    r: &RequestRecord,
    seq: usize,
    a: &AttemptRecord,
) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(r.at)
        .bind(a.target.clone())
        .bind(a.at)
        .bind(a.latency_ms)
        .bind(a.first_token_ms)
        .bind(a.status.map(i64::from))
        .bind(a.error_class.clone())
        .bind(a.hedge)
}

/// Counts per (route, hour) for the records that count towards SLOs:
/// client errors are the client's fault, not the service's.
fn rollups<'a>(
    records: impl IntoIterator<Item = &'a RequestRecord>,
) -> BTreeMap<(&'a str, UnixMs), (i64, i64)> {
    let mut out = BTreeMap::new();
    for r in records {
        if r.is_client_error() {
            continue;
        }
        let entry = out
            .entry((r.route.as_str(), hour_start(r.at)))
            .or_insert((0, 0));
        entry.0 += 1;
        entry.1 += i64::from(r.is_good());
    }
    out
}

fn u16_from(n: Option<i64>) -> Option<u16> {
    n.map(|n| u16::try_from(n).unwrap_or(u16::MAX))
}

fn read_request(row: &AnyRow) -> Result<RequestRecord, sqlx::Error> {
    Ok(RequestRecord {
        id: row.try_get("id")?,
        at: row.try_get("at_ms")?,
        route: row.try_get("route")?,
        client_format: row.try_get("client_format")?,
        stream: get_bool(row, "stream")?,
        status: u16_from(Some(row.try_get("status")?)).unwrap_or(0),
        error_class: row.try_get("error_class")?,
        target: row.try_get("target")?,
        fallback: get_bool(row, "fallback")?,
        cache: row.try_get("cache")?,
        degraded: row.try_get("degraded")?,
        dropped: row
            .try_get::<Option<String>, _>("dropped")?
            .map(|d| d.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        latency_ms: row.try_get("latency_ms")?,
        first_token_ms: row.try_get("first_token_ms")?,
        input_tokens: row.try_get::<Option<i64>, _>("input_tokens")?.map(to_u64),
        output_tokens: row.try_get::<Option<i64>, _>("output_tokens")?.map(to_u64),
        key_id: row.try_get("key_id")?,
        request_body: row.try_get("request_body")?,
        client_request_id: row.try_get("client_request_id")?,
        attempts: Vec::new(),
    })
}

fn read_attempt(row: &AnyRow) -> Result<(String, AttemptRecord), sqlx::Error> {
    Ok((
        row.try_get("request_id")?,
        AttemptRecord {
            target: row.try_get("target")?,
            at: row.try_get("at_ms")?,
            latency_ms: row.try_get("latency_ms")?,
            first_token_ms: row.try_get("first_token_ms")?,
            status: u16_from(row.try_get("status")?),
            error_class: row.try_get("error_class")?,
            hedge: get_bool(row, "hedge")?,
        },
    ))
}

impl Store {
    /// Whether statements binding an `Option<f64>` may be prepared once and
    /// cached. Not on PostgreSQL: sqlx 0.9's Any driver types a NULL f64 as
    /// FLOAT4 (its `Null(Double)` maps to `Option<f32>`) and PostgreSQL
    /// keeps a cached statement's parameter types, so a later execution
    /// with a real f64 in that slot fails with "incorrect binary data
    /// format". Re-preparing costs one parse per 500 rows.
    fn cache_nullable_floats(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// Writes a batch in one transaction, so a batch is either logged and
    /// counted in the rollups or not at all.
    ///
    /// A request id already stored is skipped, attempts and rollups
    /// included: a batch retried after an ambiguous failure must not count
    /// twice towards an SLO.
    pub async fn insert_requests(&self, batch: &[RequestRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let op = "writing request log rows";
        let mut seen = HashSet::new();
        let unique: Vec<&RequestRecord> = batch
            .iter()
            .filter(|r| seen.insert(r.id.as_str()))
            .collect();

        let mut tx = self.pool.begin().await.map_err(self.err(op))?;

        let mut inserted: HashSet<String> = HashSet::with_capacity(unique.len());
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_values(
                self.backend,
                "requests",
                REQUEST_COLUMNS,
                chunk.len(),
                " ON CONFLICT (id) DO NOTHING RETURNING id",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(self.cache_nullable_floats());
            for r in chunk {
                q = bind_request(q, r);
            }
            for row in q.fetch_all(&mut *tx).await.map_err(self.err(op))? {
                inserted.insert(row.try_get::<String, _>(0).map_err(self.err(op))?);
            }
        }
        let fresh: Vec<&RequestRecord> = unique
            .into_iter()
            .filter(|r| inserted.contains(&r.id))
            .collect();

        let attempts: Vec<(&RequestRecord, usize, &AttemptRecord)> = fresh
            .iter()
            .flat_map(|r| r.attempts.iter().enumerate().map(move |(i, a)| (*r, i, a)))
            .collect();
        for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_values(
                self.backend,
                "attempts",
                ATTEMPT_COLUMNS,
                chunk.len(),
                " ON CONFLICT (request_id, seq) DO NOTHING",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(self.cache_nullable_floats());
            for (r, seq, a) in chunk {
                q = bind_attempt(q, r, *seq, a);
            }
            q.execute(&mut *tx).await.map_err(self.err(op))?;
        }

        let counts: Vec<_> = rollups(fresh.iter().copied()).into_iter().collect();
        for chunk in counts.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_values(
                self.backend,
                "route_hourly",
                ROLLUP_COLUMNS,
                chunk.len(),
                " ON CONFLICT (route, hour_start_ms) DO UPDATE SET \
                 total = route_hourly.total + excluded.total, \
                 good = route_hourly.good + excluded.good",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for ((route, hour), (total, good)) in chunk {
                q = q
                    .bind(route.to_string())
                    .bind(*hour)
                    .bind(*total)
                    .bind(*good);
            }
            q.execute(&mut *tx).await.map_err(self.err(op))?;
        }

        tx.commit().await.map_err(self.err(op))?;
        Ok(())
    }

    /// Requests that arrived in `[from, to)`, oldest first, each with its
    /// attempts in the order they were made. With a `limit`, the oldest
    /// `limit` of them.
    pub async fn requests_between(
        &self,
        from: UnixMs,
        to: UnixMs,
        limit: Option<usize>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let op = "reading the request log";
        let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT id, at_ms, route, client_format, stream, status, error_class, target, \
             fallback, cache, degraded, dropped, latency_ms, first_token_ms, input_tokens, \
             output_tokens, key_id, request_body, client_request_id \
             FROM requests WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, id LIMIT $3",
        )
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err(op))?;
        let mut records = rows
            .iter()
            .map(read_request)
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err(op))?;
        let Some(last_at) = records.last().map(|r| r.at) else {
            return Ok(records);
        };

        // Attempts carry their request's time, so one range scan finds them
        // all without an IN list as long as the page.
        let rows = sqlx::query(
            "SELECT request_id, target, at_ms, latency_ms, first_token_ms, status, \
             error_class, hedge FROM attempts \
             WHERE request_at_ms >= $1 AND request_at_ms <= $2 ORDER BY request_id, seq",
        )
        .bind(from)
        .bind(last_at)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err(op))?;
        let index: HashMap<String, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for row in &rows {
            let (request_id, attempt) = read_attempt(row).map_err(self.err(op))?;
            if let Some(&i) = index.get(&request_id) {
                records[i].attempts.push(attempt);
            }
        }
        Ok(records)
    }

    /// `(total, good)` for a route over every UTC hour that overlaps
    /// `[from, to)`: hour-granular, which is what SLO windows of hours and
    /// days need, and cheap however much traffic there was.
    pub async fn route_counts(
        &self,
        route: &str,
        from: UnixMs,
        to: UnixMs,
    ) -> Result<(u64, u64), StoreError> {
        let op = "reading route counts";
        // SUM of BIGINT is NUMERIC on PostgreSQL, which Any cannot decode.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS total, \
             CAST(COALESCE(SUM(good), 0) AS BIGINT) AS good \
             FROM route_hourly WHERE route = $1 AND hour_start_ms >= $2 AND hour_start_ms < $3",
        )
        .bind(route.to_string())
        .bind(hour_start(from))
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err(op))?;
        let total: i64 = row.try_get("total").map_err(self.err(op))?;
        let good: i64 = row.try_get("good").map_err(self.err(op))?;
        Ok((to_u64(total), to_u64(good)))
    }

    /// Deletes requests (and their attempts) that arrived before `cutoff`;
    /// returns how many requests went. Rollups, incidents and uptime stay:
    /// they are small and SLOs and the status page need their history.
    pub async fn purge_before(&self, cutoff: UnixMs) -> Result<u64, StoreError> {
        let op = "purging old request log rows";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        sqlx::query("DELETE FROM attempts WHERE request_at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let done = sqlx::query("DELETE FROM requests WHERE at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &str, at: UnixMs, status: u16) -> RequestRecord {
        RequestRecord {
            id: format!("{route}-{at}"),
            at,
            route: route.into(),
            client_format: "openai".into(),
            status,
            error_class: (status >= 500).then(|| "overloaded".to_string()),
            latency_ms: 1.0,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn hours_floor_even_before_the_epoch() {
        assert_eq!(hour_start(3_600_000 + 5), 3_600_000);
        assert_eq!(hour_start(3_599_999), 0);
        assert_eq!(hour_start(-1), -3_600_000);
    }

    #[test]
    fn rollups_skip_client_errors_and_count_good() {
        let records = [
            record("a", 10, 200),
            record("a", 20, 503),
            record("a", 30, 400),
            record("a", HOUR_MS + 1, 200),
            record("b", 40, 200),
        ];
        let r = rollups(records.iter());
        assert_eq!(r.get(&("a", 0)), Some(&(2, 1)));
        assert_eq!(r.get(&("a", HOUR_MS)), Some(&(1, 1)));
        assert_eq!(r.get(&("b", 0)), Some(&(1, 1)));
        assert_eq!(r.len(), 3);
    }
}
