//! The SQL task store: PostgreSQL in production, an embedded SQLite file by default. One code
//! path (sqlx's `Any` driver, runtime queries) and one schema for both.
//!
//! The `tasks` table is a *projection* of the engine's output, never a source of truth: agents'
//! actions reach the engine as commands and come back here as new task versions.
//!
//! Writes are batched: all task changes of a batch go in one transaction ([`TaskStore::write`],
//! `tasks.rs`) that (1) upserts each task's latest version (an older version never overwrites a
//! newer one, so re-processing after a crash is idempotent), (2) records every version and its
//! audit record (append-only), (3) adds each version to the outbox, (4) records the outcomes of
//! resolved tasks per rule, and (5) records what became of each command, which the API waits
//! for. The relay then sends outbox rows to the tasks topic and deletes them (`outbox.rs`), so
//! a written task is never missing from the topic (at worst it is published twice, with the
//! same id and version, for consumers to de-duplicate).
//!
//! One file per table family: `tasks.rs` (tasks, versions, rule outcomes), `audit.rs`,
//! `commands.rs` (command results), `outbox.rs`, `outreach.rs` (e-mail jobs, answer links,
//! opt-outs), `tokens.rs` (API tokens), `checkpoint.rs` (per-partition state), `state_db.rs`
//! (where the checkpoint tables live: on SQLite, a database file of their own).

mod audit;
mod audit_chain;
mod checkpoint;
mod commands;
mod outbox;
mod outreach;
mod privacy;
mod sessions;
mod state_db;
mod tasks;
mod tokens;

pub use audit::AuditRow;
pub use audit_chain::{ChainReport, GENESIS};
pub use checkpoint::{PartitionCheckpoint, StoredCustomers, RESTORE_CHUNK};
pub use outbox::{ActionRow, OutboxRow};
pub use outreach::{LinkRow, OutreachJob};
pub use privacy::{Purged, Retention};
pub use sessions::SessionRow;
pub use tasks::{Cursor, Page, RuleOutcomes, TaskFilter, TaskRow};
pub use tokens::TokenRow;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

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
    (
        3,
        "ALTER TABLE tasks ADD COLUMN assignee TEXT;
    ALTER TABLE tasks ADD COLUMN escalated BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN due_ms BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN snoozed_ms BIGINT;
    ALTER TABLE tasks ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
    CREATE INDEX IF NOT EXISTS tasks_queue_order ON tasks (queue, status, priority, due_ms, id);
    CREATE INDEX IF NOT EXISTS tasks_order ON tasks (priority, due_ms, id);
    CREATE INDEX IF NOT EXISTS tasks_assignee ON tasks (assignee);
    ALTER TABLE task_versions ADD COLUMN kind TEXT NOT NULL DEFAULT '';
    ALTER TABLE task_versions ADD COLUMN at TEXT NOT NULL DEFAULT '';
    CREATE TABLE IF NOT EXISTS audit (
        task_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        at TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT,
        command_id TEXT,
        before_json TEXT,
        after_json TEXT NOT NULL,
        PRIMARY KEY (task_id, version)
    );
    CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, at_ms);
    CREATE TABLE IF NOT EXISTS command_results (
        command_id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        at TEXT NOT NULL,
        version BIGINT,
        refusal TEXT,
        detail TEXT,
        holder TEXT
    );
    CREATE TABLE IF NOT EXISTS rule_outcomes (
        task_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        queue TEXT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (task_id, rule)
    );
    CREATE TABLE IF NOT EXISTS api_tokens (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS state_customers_by_id ON state_customers (group_id, customer_id)",
    ),
    (
        4,
        "CREATE TABLE IF NOT EXISTS outreach_jobs (
        job_id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        template TEXT NOT NULL,
        any_hour BIGINT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_ms BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        sent_ms BIGINT,
        message_id TEXT,
        last_error TEXT
    );
    CREATE INDEX IF NOT EXISTS outreach_due ON outreach_jobs (status, next_ms);
    CREATE INDEX IF NOT EXISTS outreach_customer ON outreach_jobs (customer_id, sent_ms);
    CREATE TABLE IF NOT EXISTS outreach_links (
        nonce TEXT PRIMARY KEY,
        kid TEXT NOT NULL,
        job_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        answer TEXT NOT NULL,
        expires_ms BIGINT NOT NULL,
        used_ms BIGINT
    );
    CREATE INDEX IF NOT EXISTS outreach_links_customer ON outreach_links (customer_id, used_ms);
    CREATE TABLE IF NOT EXISTS email_opt_outs (
        customer_id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    )",
    ),
    (
        5,
        // Covers the queue's filters and order, so a page is found without reading task bodies.
        "CREATE INDEX IF NOT EXISTS tasks_listing ON tasks (queue, status, priority, due_ms, id, snoozed_ms, assignee)",
    ),
    (
        6,
        // Migration 1's queue index orders by `due_at` text, which no query uses any more; SQLite
        // still chose it for lists and then sorted every row.
        "DROP INDEX IF EXISTS tasks_queue_open",
    ),
    (
        7,
        // Requests to the card system waiting for the actions topic (written with the task
        // version that asked); answer links voided when an agent resolves their task.
        "CREATE TABLE IF NOT EXISTS action_outbox (
        action_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    ALTER TABLE outreach_links ADD COLUMN voided_ms BIGINT",
    ),
    (
        8,
        // The audit's hash chain (`audit_chain.rs`): per row its place, the hash it links to,
        // its content's hash and its own; the chain's head.
        "ALTER TABLE audit ADD COLUMN chain_seq BIGINT;
    ALTER TABLE audit ADD COLUMN prev_hash TEXT;
    ALTER TABLE audit ADD COLUMN content_hash TEXT;
    ALTER TABLE audit ADD COLUMN chain_hash TEXT;
    CREATE INDEX IF NOT EXISTS audit_unsealed ON audit (chain_seq, at_ms);
    CREATE TABLE IF NOT EXISTS audit_chain (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
    INSERT INTO audit_chain (id, seq, hash) VALUES (1, 0, 'callahead-audit-chain-v1')",
    ),
    (
        9,
        // The console's own sessions (`sessions.rs`): only the id's hash is stored.
        "CREATE TABLE IF NOT EXISTS console_sessions (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        last_ms BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS console_sessions_name ON console_sessions (name)",
    ),
    (
        10,
        // Stored API tokens expire (NULL: never, for tokens from before).
        "ALTER TABLE api_tokens ADD COLUMN expires_ms BIGINT",
    ),
];

/// Longest wait for one store operation: a database that stops answering (a network partition,
/// a hung server) becomes an error, so the service reports not ready and retries, instead of
/// waiting forever on a dead connection.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bind parameters one statement may carry: SQLite's historical limit (PostgreSQL allows more).
const MAX_BINDS: usize = 999;

/// Rows of `columns` values each that fit one multi-row statement under [`MAX_BINDS`].
fn rows_per_statement(columns: usize) -> usize {
    MAX_BINDS / columns
}

/// The `VALUES` list of a multi-row insert: `rows` groups of `columns` numbered placeholders
/// (`($1, $2), ($3, $4)`), numbered from `$1`. Only placeholders are formatted in; every value
/// is bound.
fn values_list(columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

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

/// Opens a pool on `url` (creating an SQLite file if needed; write-ahead log on SQLite), running
/// `per_connection` statements on each new connection (SQLite pragmas that are not kept in the
/// file).
async fn open_pool(url: &str, per_connection: &'static [&'static str]) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") && !url.contains('?') {
        format!("{url}?mode=rwc")
    } else {
        with_tls_default(url)
    };
    let sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        // SQLite has one writer: one connection avoids "database is locked".
        .max_connections(if sqlite { 1 } else { 4 })
        .acquire_timeout(std::time::Duration::from_secs(10))
        .after_connect(move |connection, _| {
            Box::pin(async move {
                for statement in per_connection {
                    sqlx::query(*statement).execute(&mut *connection).await?;
                }
                Ok(())
            })
        })
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
    Ok(pool)
}

/// A PostgreSQL URL to a host other than this one without an `sslmode` gets
/// `sslmode=verify-full`: the link is encrypted and the server's certificate checked against the
/// system's CAs (or `sslrootcert=`), never a silent fall-back to clear text. On loopback (and a
/// Unix socket) the default stays PostgreSQL's `prefer`. An explicit `sslmode` is kept as given.
pub fn with_tls_default(url: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
        return url.to_string();
    };
    if url.contains("sslmode=") {
        return url.to_string();
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    // An empty host is a Unix socket: this machine too.
    if host.is_empty() || crate::config::is_this_host(host) {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=verify-full")
}

/// Applies the `migrations` a database has not had yet, each in one transaction, recording
/// each in its `callahead_schema` table.
async fn migrate(pool: &AnyPool, migrations: &[(i64, &'static str)]) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS callahead_schema (version BIGINT PRIMARY KEY)")
        .execute(pool)
        .await
        .map_err(|source| StoreError::Migrate { version: 0, source })?;
    for (version, sql) in migrations {
        let done: Option<AnyRow> = sqlx::query("SELECT version FROM callahead_schema WHERE version = $1")
            .bind(*version)
            .fetch_optional(pool)
            .await?;
        if done.is_some() {
            continue;
        }
        let mut tx = pool.begin().await?;
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

/// The task store.
#[derive(Clone, Debug)]
pub struct TaskStore {
    pool: AnyPool,
    /// The checkpoint tables' pool (`checkpoint.rs`): `pool` itself on PostgreSQL; on SQLite a
    /// database file of its own (`state_db.rs`), so a checkpoint never holds a task write.
    state: AnyPool,
}

impl TaskStore {
    /// Connects (creating an SQLite file if needed) and applies migrations. With a file-backed
    /// SQLite database, the checkpoint tables are in a second file beside it (`state_db.rs`),
    /// moved there from the task database on the first connect after an upgrade.
    pub async fn connect(url: &str) -> Result<TaskStore, StoreError> {
        let pool = open_pool(url, &[]).await?;
        migrate(&pool, MIGRATIONS).await?;
        let Some(file) = state_db::state_file(url) else {
            return Ok(TaskStore { state: pool.clone(), pool });
        };
        let state = open_pool(&file.url, state_db::PER_CONNECTION).await?;
        migrate(&state, state_db::MIGRATIONS).await?;
        state_db::move_from_task_db(&pool, &state, &file).await?;
        Ok(TaskStore { pool, state })
    }

    /// The layout before the checkpoint tables had a file of their own (upgrade tests).
    #[cfg(test)]
    async fn connect_single_file(url: &str) -> Result<TaskStore, StoreError> {
        let pool = open_pool(url, &[]).await?;
        migrate(&pool, MIGRATIONS).await?;
        Ok(TaskStore { state: pool.clone(), pool })
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
    #[test]
    fn a_remote_database_is_reached_over_verified_tls_unless_told_otherwise() {
        use super::with_tls_default as tls;
        assert_eq!(
            tls("postgres://u:p@db.bank:5432/cah"),
            "postgres://u:p@db.bank:5432/cah?sslmode=verify-full"
        );
        assert_eq!(
            tls("postgres://db.bank/cah?application_name=x"),
            "postgres://db.bank/cah?application_name=x&sslmode=verify-full"
        );
        assert_eq!(
            tls("postgresql://u@[2001:db8::1]:5432/cah"),
            "postgresql://u@[2001:db8::1]:5432/cah?sslmode=verify-full"
        );
        for kept in [
            "postgres://u@db.bank/cah?sslmode=disable",
            "postgres://root@127.0.0.1:5432/test",
            "postgres://u@localhost/cah",
            "postgres://u@[::1]/cah",
            "sqlite://x.db",
        ] {
            assert_eq!(tls(kept), kept);
        }
    }

    #[test]
    fn a_values_list_numbers_every_placeholder_once() {
        assert_eq!(super::values_list(2, 3), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(super::values_list(1, 1), "($1)");
        assert_eq!(super::rows_per_statement(14), 71);
    }

    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
