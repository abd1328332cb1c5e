//! Where the checkpoint tables (`checkpoint.rs`) live.
//!
//! On PostgreSQL, beside the tasks: its row locks and MVCC let a checkpoint's transaction and a
//! task write run at the same time. On SQLite, which has one writer per database file, they live
//! in a **file of their own** beside the task database (`<path>-state`: `callahead.db-state` for
//! `sqlite://callahead.db`), reached through a second pool. A checkpoint's transaction (tens of
//! milliseconds for a second of changed customers) then never holds a task write behind it. What
//! the checkpoint must keep atomic, a partition's customer rows and its offsets row, lives in that
//! one file; no transaction needs both files (tasks are idempotent by version, see `tasks.rs`).
//!
//! A task database from before the split holds the checkpoint tables itself. The first connect
//! copies them into the state file and records that in the state file's schema table, in one
//! transaction; only then does it drop them from the task database. A crash in between is
//! harmless: the next connect sees the record and only drops them. An in-memory SQLite database
//! keeps everything in one database (there is no file to put beside it).

use sqlx::any::AnyRow;
use sqlx::AnyPool;

use super::StoreError;

/// Suffix of the state file's name after the task database's.
const STATE_FILE_SUFFIX: &str = "-state";

/// The state file's schema version that records "the task database's old checkpoint tables were
/// moved here" (a step in code, not SQL: it needs the task database's path).
const MOVED_FROM_TASK_DB: i64 = 2;

/// Run on each connection to the state file. A restore reads a partition's rows in key order,
/// which is not the order they were first written in (the order customers first changed), so
/// it visits the table's pages at random: memory-mapped, such a visit is a memory read instead
/// of a system call and a copy per page (SQLite's default cache holds 2 MB). 2 GiB is SQLite's
/// default ceiling; a larger file is read normally past it.
pub(super) const PER_CONNECTION: &[&str] = &["PRAGMA mmap_size = 2147418112"];

/// The state file's migrations, recorded in its own `callahead_schema`. Version 1 is the
/// layout of the task database's migrations 2 and 3 for these tables (PostgreSQL keeps them
/// there).
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(
    1,
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
    );
    CREATE INDEX IF NOT EXISTS state_customers_by_id ON state_customers (group_id, customer_id)",
)];

/// A file-backed SQLite task database: its path (for `ATTACH`) and the URL of its state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StateFile {
    /// The task database's path, as SQLite opens it.
    pub task_db_path: String,
    /// `sqlite://…-state`, with the task database's URL parameters.
    pub url: String,
}

/// Where the state file of `task_db_url` is: `None` for PostgreSQL and in-memory SQLite, which
/// keep the checkpoint tables with the tasks.
pub(super) fn state_file(task_db_url: &str) -> Option<StateFile> {
    let rest = task_db_url.strip_prefix("sqlite:")?;
    let (prefix, rest) = match rest.strip_prefix("//") {
        Some(rest) => ("sqlite://", rest),
        None => ("sqlite:", rest),
    };
    let (path, params) = match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    };
    let in_memory = path.is_empty()
        || path == ":memory:"
        || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
    if in_memory {
        return None;
    }
    let task_db_path = percent_decode(path);
    let url = match params {
        Some(params) => format!("{prefix}{path}{STATE_FILE_SUFFIX}?{params}"),
        None => format!("{prefix}{path}{STATE_FILE_SUFFIX}"),
    };
    Some(StateFile { task_db_path, url })
}

/// `%XX` escapes decoded, as sqlx decodes an SQLite URL's path (anything malformed is kept).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// Moves the checkpoint tables of a task database from before the split into the state file
/// (see the module doc), then drops them from the task database. Does nothing when they are gone.
pub(super) async fn move_from_task_db(
    tasks: &AnyPool,
    state: &AnyPool,
    file: &StateFile,
) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migrate { version: MOVED_FROM_TASK_DB, source };
    let legacy: Option<AnyRow> =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'state_customers'")
            .fetch_optional(tasks)
            .await
            .map_err(failed)?;
    if legacy.is_none() {
        return Ok(());
    }
    let moved: Option<AnyRow> = sqlx::query("SELECT version FROM callahead_schema WHERE version = $1")
        .bind(MOVED_FROM_TASK_DB)
        .fetch_optional(state)
        .await
        .map_err(failed)?;
    if moved.is_none() {
        let mut connection = state.acquire().await.map_err(failed)?;
        // ATTACH is refused inside a transaction: attach first, copy in one transaction.
        sqlx::query("ATTACH DATABASE $1 AS task_db")
            .bind(&file.task_db_path)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
        let copied = copy_attached(&mut connection).await;
        let detached = sqlx::query("DETACH DATABASE task_db").execute(&mut *connection).await;
        let customers = copied.map_err(failed)?;
        detached.map_err(failed)?;
        tracing::info!(
            customers,
            state_file = %file.url,
            "moved the state checkpoints from the task database into their own file"
        );
    }
    let mut tx = tasks.begin().await.map_err(failed)?;
    sqlx::query("DROP TABLE IF EXISTS state_customers").execute(&mut *tx).await.map_err(failed)?;
    sqlx::query("DROP TABLE IF EXISTS state_partitions").execute(&mut *tx).await.map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(())
}

/// Copies the attached task database's checkpoint rows and records the move, in one transaction
/// of the state file; returns the customers copied.
async fn copy_attached(connection: &mut sqlx::AnyConnection) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    let mut tx = connection.begin().await?;
    sqlx::query(
        "INSERT INTO state_partitions (group_id, partition_id, offsets, newest, updated_at, epoch)
         SELECT group_id, partition_id, offsets, newest, updated_at, epoch FROM task_db.state_partitions",
    )
    .execute(&mut *tx)
    .await?;
    let customers = sqlx::query(
        "INSERT INTO state_customers (group_id, partition_id, customer_id, body)
         SELECT group_id, partition_id, customer_id, body FROM task_db.state_customers",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("INSERT INTO callahead_schema (version) VALUES ($1)")
        .bind(MOVED_FROM_TASK_DB)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(customers)
}

/// Reads one value, to check a pool answers with the expected schema (tests).
#[cfg(test)]
async fn count(pool: &AnyPool, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql).fetch_one(pool).await.expect("query").try_get(0).expect("a count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_sits_beside_the_task_database() {
        let file = state_file("sqlite://callahead.db").expect("a file");
        assert_eq!(file.url, "sqlite://callahead.db-state");
        assert_eq!(file.task_db_path, "callahead.db");
        let file = state_file("sqlite:///var/lib/callahead/callahead.db?mode=rwc").expect("a file");
        assert_eq!(file.url, "sqlite:///var/lib/callahead/callahead.db-state?mode=rwc");
        assert_eq!(file.task_db_path, "/var/lib/callahead/callahead.db");
        let file = state_file("sqlite:/tmp/my%20tasks.db").expect("a file");
        assert_eq!(file.url, "sqlite:/tmp/my%20tasks.db-state");
        assert_eq!(file.task_db_path, "/tmp/my tasks.db");
    }

    #[test]
    fn postgres_and_memory_keep_one_database() {
        assert_eq!(state_file("postgres://u@h/db"), None);
        assert_eq!(state_file("sqlite::memory:"), None);
        assert_eq!(state_file("sqlite://:memory:"), None);
        assert_eq!(state_file("sqlite://?mode=memory"), None);
        assert_eq!(state_file("sqlite://x.db?mode=memory&cache=shared"), None);
    }

    /// A task database written before the split (checkpoint tables inside) still restores:
    /// its checkpoints move to the state file once, and the task database no longer has them.
    #[tokio::test]
    async fn an_old_single_file_database_moves_its_checkpoints() {
        use crate::store::{PartitionCheckpoint, TaskStore};
        let dir = std::env::temp_dir().join(format!("callahead-state-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tasks.db");
        for f in ["tasks.db", "tasks.db-state"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let url = format!("sqlite://{}", path.display());
        // Before the split: everything in one file (the task database's own migrations).
        {
            let old = TaskStore::connect_single_file(&url).await.expect("old layout");
            let epoch = old.claim_partition("g", 3).await.expect("claim");
            let checkpoint = PartitionCheckpoint { offsets: [("events".to_string(), 42)].into(), newest: 7 };
            let rows = vec![("c1".into(), vec![1u8, 2, 3]), ("c2".into(), vec![4u8])];
            old.save_checkpoint("g", 3, epoch, &checkpoint, &rows).await.expect("checkpoint");
            old.pool.close().await;
        }
        for _ in 0..2 {
            // Twice: the second connect finds the move done and changes nothing.
            let store = TaskStore::connect(&url).await.expect("split layout");
            let (checkpoint, mut restored) =
                store.read_checkpoint("g", 3).await.expect("load").expect("a checkpoint");
            restored.sort();
            assert_eq!(checkpoint.offsets["events"], 42);
            assert_eq!(checkpoint.newest, 7);
            assert_eq!(restored, vec![("c1".to_string(), vec![1u8, 2, 3]), ("c2".to_string(), vec![4u8])]);
            let left = count(
                &store.pool,
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('state_customers', 'state_partitions')",
            )
            .await;
            assert_eq!(left, 0, "the task database keeps no checkpoint tables");
            assert_eq!(count(&store.state, "SELECT COUNT(*) FROM state_customers").await, 2);
            store.pool.close().await;
            store.state.close().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
