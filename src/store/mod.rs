//! The SQL task store: PostgreSQL in production, an embedded SQLite file by default. One code
//! path (sqlx's `Any` driver, runtime queries) and one schema for both.
//!
//! Writes are batched: all task changes of a batch of events go in one transaction that
//! (1) upserts each task's latest version (an older version never overwrites a newer one, so
//! re-processing after a crash is idempotent), (2) records every version, and (3) adds each
//! version to the outbox. The publisher then sends outbox rows to the tasks topic and deletes
//! them, so a written task is never missing from the topic (at worst it is published twice,
//! with the same id and version, for consumers to de-duplicate).

mod checkpoint;

pub use checkpoint::{PartitionCheckpoint, RestoreProgress};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::task::TaskChange;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the task store at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("task store migration {version} failed: {source}")]
    Migrate { version: i64, source: sqlx::Error },
    #[error("task store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("partition {partition} was claimed by another instance (epoch {epoch} is no longer current): not writing its state")]
    Fenced { partition: i32, epoch: i64 },
    #[error("task store did not answer within {0:?} ({1}); the operation is retried")]
    Timeout(std::time::Duration, &'static str),
    #[error("cannot encode task {id}: {source}")]
    Encode { id: String, source: serde_json::Error },
}

/// Schema migrations, applied in order and recorded in `callahead_schema`. SQL common to
/// PostgreSQL and SQLite only.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        queue TEXT NOT NULL,
        status TEXT NOT NULL,
        priority BIGINT NOT NULL,
        version BIGINT NOT NULL,
        opened_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS tasks_queue_open ON tasks (queue, status, priority, due_at);
    CREATE INDEX IF NOT EXISTS tasks_customer ON tasks (customer_id);
    CREATE TABLE IF NOT EXISTS task_versions (
        id TEXT NOT NULL,
        version BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (id, version)
    );
    CREATE TABLE IF NOT EXISTS outbox (
        task_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        customer_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (task_id, version)
    )",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS state_partitions (
        group_id TEXT NOT NULL,
        partition_id BIGINT NOT NULL,
        offsets TEXT NOT NULL,
        newest BIGINT NOT NULL,
        updated_at TEXT NOT NULL,
        epoch BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (group_id, partition_id)
    );
    CREATE TABLE IF NOT EXISTS state_customers (
        group_id TEXT NOT NULL,
        partition_id BIGINT NOT NULL,
        customer_id TEXT NOT NULL,
        body BYTEA NOT NULL,
        PRIMARY KEY (group_id, partition_id, customer_id)
    )",
    ),
];

/// Longest wait for one store operation: a database that stops answering (a network partition,
/// a hung server) becomes an error, so the service reports not ready and retries, instead of
/// waiting forever on a dead connection.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a store operation with [`OPERATION_TIMEOUT`].
async fn bounded<T>(
    what: &'static str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    within(OPERATION_TIMEOUT, what, operation).await
}

/// Runs a store operation with a time limit: past it, a [`StoreError::Timeout`].
async fn within<T>(
    limit: std::time::Duration,
    what: &'static str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, operation).await.unwrap_or(Err(StoreError::Timeout(limit, what)))
}

/// One task version waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub task_id: String,
    pub version: i64,
    pub customer_id: String,
    pub payload: String,
}

/// The task store.
#[derive(Clone, Debug)]
pub struct TaskStore {
    pool: AnyPool,
}

impl TaskStore {
    /// Connects (creating an SQLite file if needed) and applies migrations.
    pub async fn connect(url: &str) -> Result<TaskStore, StoreError> {
        sqlx::any::install_default_drivers();
        let url = if url.starts_with("sqlite:") && !url.contains('?') {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            // SQLite has one writer: one connection avoids "database is locked".
            .max_connections(if sqlite { 1 } else { 4 })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect { url: redact(&url), source })?;
        if sqlite {
            // Write-ahead log: a commit is one append and one fsync (still durable:
            // `synchronous` stays FULL), instead of the rollback journal's copy and several
            // fsyncs. Kept in the file, so every later connection uses it too.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_all(&pool)
                .await
                .map_err(|source| StoreError::Connect { url: redact(&url), source })?;
        }
        let store = TaskStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS callahead_schema (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate { version: 0, source })?;
        for (version, sql) in MIGRATIONS {
            let done: Option<AnyRow> = sqlx::query("SELECT version FROM callahead_schema WHERE version = $1")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migrate { version: *version, source })?;
            }
            sqlx::query("INSERT INTO callahead_schema (version) VALUES ($1)")
                .bind(*version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Writes a batch of task changes in one transaction (see the module doc).
    pub async fn write(&self, changes: &[TaskChange]) -> Result<(), StoreError> {
        bounded("writing tasks", self.write_unbounded(changes)).await
    }

    async fn write_unbounded(&self, changes: &[TaskChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for change in changes {
            let t = &change.task;
            let body =
                serde_json::to_string(t).map_err(|source| StoreError::Encode { id: t.id.clone(), source })?;
            let status = serde_json::to_value(t.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO tasks (id, customer_id, queue, status, priority, version, opened_at, due_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,
                   version = excluded.version, due_at = excluded.due_at, body = excluded.body
                 WHERE tasks.version < excluded.version",
            )
            .bind(&t.id)
            .bind(&t.customer_id)
            .bind(t.queue.as_str())
            .bind(status)
            .bind(i64::from(t.priority))
            .bind(i64::from(t.version))
            .bind(t.opened_at.to_string())
            .bind(t.due_at.to_string())
            .bind(&body)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO task_versions (id, version, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&t.id)
            .bind(i64::from(t.version))
            .bind(&body)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                continue; // re-processed after a restore: this version is stored and published
            }
            sqlx::query(
                "INSERT INTO outbox (task_id, version, customer_id, payload) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&t.id)
            .bind(i64::from(t.version))
            .bind(&t.customer_id)
            .bind(&body)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Task versions written but not yet published, oldest task versions first.
    pub async fn pending_outbox(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = bounded("reading the outbox", async {
            Ok(sqlx::query(
            "SELECT task_id, version, customer_id, payload FROM outbox ORDER BY task_id, version LIMIT $1",
        )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    task_id: r.try_get(0)?,
                    version: r.try_get(1)?,
                    customer_id: r.try_get(2)?,
                    payload: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// Removes published rows from the outbox.
    pub async fn mark_published(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        bounded("clearing the outbox", self.mark_published_unbounded(rows)).await
    }

    async fn mark_published_unbounded(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query("DELETE FROM outbox WHERE task_id = $1 AND version = $2")
                .bind(&r.task_id)
                .bind(r.version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest stored version of a task and its JSON.
    pub async fn task(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// Every stored task's id and version, ordered by id.
    pub async fn task_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, version FROM tasks ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// Checks the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = async { Ok(sqlx::query("SELECT 1").fetch_one(&self.pool).await.map(|_| ())?) };
        within(std::time::Duration::from_secs(5), "ping", ping).await
    }
}

/// A connection URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
