//! The audit trail made tamper-evident: a hash chain sealed over the rows in the order they are
//! sealed.
//!
//! Rows are written as before, in the batch's transaction (the hot path is unchanged). A sealer
//! (every instance runs one; a lock on the chain's head row makes them take turns) takes the
//! rows not sealed yet, in a fixed order, and gives each the next sequence number, the hash of
//! its content (reason, before, after) and the chain hash: SHA-256 over the previous row's
//! chain hash, the sequence number, the row's identity fields (task, version, time, actor, role,
//! action, command id) and its content hash. `callahead audit verify` recomputes the chain: a
//! row changed, removed from the middle or inserted after sealing breaks it at that row.
//!
//! Two legitimate changes keep the chain whole: an **erasure** replaces a row's content by a
//! marker but keeps its content hash (the chain still links; the report counts erased rows and
//! the erasure itself is audited); the **retention purge** deletes the oldest sealed rows as a
//! prefix of the chain (each row keeps the hash it was chained to, so verification starts at
//! the first row left). A row is open to undetected change only until it is sealed (about a
//! second). Still needed beside the chain: the service's database role without UPDATE or
//! DELETE on `audit` (docs/privacy.md shows the grants), so the chain is not the only defence.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// The chain hash before the first row.
pub const GENESIS: &str = "callahead-audit-chain-v1";

/// Rows sealed per round.
const PER_ROUND: i64 = 500;

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainReport {
    /// Rows checked (sealed).
    pub sealed: u64,
    /// Rows not sealed yet (written in the last moments).
    pub unsealed: u64,
    /// Sealed rows whose content an erasure replaced (their content cannot be checked; their
    /// place in the chain can).
    pub erased: u64,
    /// The first sequence number left (earlier rows purged by retention), if any row is.
    pub first_seq: Option<i64>,
    /// The first row where the chain breaks: (sequence number, task id, version, why).
    pub broken: Option<(i64, String, i64, String)>,
}

/// The hash of a row's content.
fn content_hash(reason: Option<&str>, before: Option<&str>, after: &str) -> String {
    let mut h = Sha256::new();
    for part in [reason, before, Some(after)] {
        match part {
            Some(text) => {
                h.update([1u8]);
                h.update((text.len() as u64).to_be_bytes());
                h.update(text.as_bytes());
            }
            None => h.update([0u8]),
        }
    }
    hex(&h.finalize())
}

/// The chain hash of a row.
#[allow(clippy::too_many_arguments)]
fn chain_hash(
    prev: &str,
    seq: i64,
    task_id: &str,
    version: i64,
    at_ms: i64,
    actor: &str,
    role: &str,
    action: &str,
    command_id: Option<&str>,
    content: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_be_bytes());
    for text in [task_id, actor, role, action, command_id.unwrap_or("\u{0}"), content] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.update(version.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True if a row's content is an erasure's marker.
fn erased(reason: Option<&str>, before: Option<&str>, after: &str) -> bool {
    reason.is_none() && before.is_none() && after == super::privacy::ERASED
}

const ROW: &str = "task_id, version, at_ms, actor, role, action, command_id, reason, before_json, after_json";

struct Sealable {
    task_id: String,
    version: i64,
    at_ms: i64,
    actor: String,
    role: String,
    action: String,
    command_id: Option<String>,
    reason: Option<String>,
    before: Option<String>,
    after: String,
}

impl Sealable {
    /// The row's content hash, from what it holds now.
    fn content_hash(&self) -> String {
        content_hash(self.reason.as_deref(), self.before.as_deref(), &self.after)
    }

    /// The row's chain hash at place `seq` after `prev`, with content hash `content`.
    fn chain_hash(&self, prev: &str, seq: i64, content: &str) -> String {
        chain_hash(
            prev,
            seq,
            &self.task_id,
            self.version,
            self.at_ms,
            &self.actor,
            &self.role,
            &self.action,
            self.command_id.as_deref(),
            content,
        )
    }

    /// True if an erasure replaced the row's content.
    fn erased(&self) -> bool {
        erased(self.reason.as_deref(), self.before.as_deref(), &self.after)
    }
}

fn sealable(r: &AnyRow) -> Result<Sealable, sqlx::Error> {
    Ok(Sealable {
        task_id: r.try_get(0)?,
        version: r.try_get(1)?,
        at_ms: r.try_get(2)?,
        actor: r.try_get(3)?,
        role: r.try_get(4)?,
        action: r.try_get(5)?,
        command_id: r.try_get(6)?,
        reason: r.try_get(7)?,
        before: r.try_get(8)?,
        after: r.try_get(9)?,
    })
}

impl TaskStore {
    /// Seals the rows not sealed yet (at most a round's worth); returns how many.
    pub async fn seal_audit(&self) -> Result<u64, StoreError> {
        bounded("sealing the audit", async {
            let mut tx = self.pool.begin().await?;
            // Takes the head's row lock (PostgreSQL), so instances seal one at a time.
            sqlx::query("UPDATE audit_chain SET seq = seq WHERE id = 1").execute(&mut *tx).await?;
            let head =
                sqlx::query("SELECT seq, hash FROM audit_chain WHERE id = 1").fetch_one(&mut *tx).await?;
            let (mut seq, mut prev): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ROW} FROM audit WHERE chain_seq IS NULL ORDER BY at_ms, task_id, version LIMIT $1"
            )))
            .bind(PER_ROUND)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let r = sealable(r)?;
                seq += 1;
                let content = r.content_hash();
                let hash = r.chain_hash(&prev, seq, &content);
                sqlx::query(
                    "UPDATE audit SET chain_seq = $3, prev_hash = $4, content_hash = $5, chain_hash = $6
                     WHERE task_id = $1 AND version = $2",
                )
                .bind(&r.task_id)
                .bind(r.version)
                .bind(seq)
                .bind(&prev)
                .bind(&content)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
                prev = hash;
            }
            sqlx::query("UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(&prev)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(rows.len() as u64)
        })
        .await
    }

    /// Recomputes the whole chain (`callahead audit verify`).
    pub async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        let mut report = ChainReport::default();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROW}, chain_seq, prev_hash, content_hash, chain_hash FROM audit
             WHERE chain_seq IS NOT NULL ORDER BY chain_seq"
        )))
        .fetch_all(&self.pool)
        .await?;
        report.unsealed = sqlx::query("SELECT COUNT(*) FROM audit WHERE chain_seq IS NULL")
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>(0)? as u64;
        let mut expected_prev: Option<String> = None;
        let mut expected_seq: Option<i64> = None;
        for row in &rows {
            let r = sealable(row)?;
            let seq: i64 = row.try_get(10)?;
            let prev: String = row.try_get(11)?;
            let content: String = row.try_get(12)?;
            let hash: String = row.try_get(13)?;
            report.first_seq.get_or_insert(seq);
            let mut fail = |why: &str| {
                report.broken = Some((seq, r.task_id.clone(), r.version, why.to_string()));
            };
            if expected_seq.is_some_and(|e| e != seq) {
                fail("a row is missing before this one");
                break;
            }
            if expected_prev.as_ref().is_some_and(|e| *e != prev) {
                fail("the row does not link to the one before");
                break;
            }
            if r.erased() {
                report.erased += 1;
            } else if r.content_hash() != content {
                fail("the row's reason, before or after was changed");
                break;
            }
            if r.chain_hash(&prev, seq, &content) != hash {
                fail("the row's identity fields (task, version, time, actor, role, action) were changed");
                break;
            }
            report.sealed += 1;
            expected_prev = Some(hash);
            expected_seq = Some(seq + 1);
        }
        if report.broken.is_none() {
            // The head must be the last row's hash (rows removed from the end show here).
            let head =
                sqlx::query("SELECT seq, hash FROM audit_chain WHERE id = 1").fetch_one(&self.pool).await?;
            let (seq, hash): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
            if let Some(last) = expected_prev {
                if last != hash || expected_seq != Some(seq + 1) {
                    report.broken =
                        Some((seq, String::new(), 0, "the newest sealed rows were removed".into()));
                }
            } else if seq != 0 && report.first_seq.is_none() {
                report.broken = Some((seq, String::new(), 0, "every sealed row was removed".into()));
            }
        }
        Ok(report)
    }
}
