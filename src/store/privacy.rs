//! Personal data in the store: erasing a customer, their subject-access export, and the
//! retention purge. What is stored, where, for how long and why: `docs/privacy.md`.
//!
//! An erasure runs inside the batch transaction that carries the engine's erasure marker
//! (`ChangeKind::Erased`), at its place among the batch's changes: the customer's tasks and
//! every version (each with a copy of the profile, the notes and the outreach records), e-mail
//! jobs and answer links, the opt-out and command results are deleted (and right after, the
//! checkpointed state, which may live in a database of its own); the
//! audit keeps every record of their tasks with the free text and before/after views replaced
//! by a marker, and one record of the erasure itself (by whom, when, under a hash of the
//! customer id); the tasks topic gets a tombstone per task (key: the customer id, header
//! `task_id`), through the outbox like any version.

use serde_json::{json, Value};
use sqlx::{Any, Row, Transaction};

use super::{bounded, StoreError, TaskStore};
use crate::task::TaskChange;
use crate::time::DAY;

/// What the audit keeps of a record about an erased customer's task.
pub(super) const ERASED: &str = r#"{"erased":true}"#;

/// How long each kind of record is kept (`[retention]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Resolved tasks (and their versions), by their last change.
    pub resolved_tasks_days: i64,
    /// Audit records.
    pub audit_days: i64,
    /// E-mail jobs and their answer links, by when the job was created.
    pub outreach_days: i64,
}

/// Rows a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub resolved_tasks: u64,
    pub audit: u64,
    pub outreach: u64,
}

impl TaskStore {
    /// Erases the customer of an erasure marker, inside the batch's transaction.
    pub(super) async fn erase_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        erasure: &TaskChange,
    ) -> Result<(), StoreError> {
        let customer = erasure.task.customer_id.as_str();
        let ids: Vec<String> = sqlx::query("SELECT id FROM tasks WHERE customer_id = $1")
            .bind(customer)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        sqlx::query("DELETE FROM outbox WHERE customer_id = $1").bind(customer).execute(&mut **tx).await?;
        for id in &ids {
            sqlx::query("DELETE FROM task_versions WHERE id = $1").bind(id).execute(&mut **tx).await?;
            sqlx::query(
                "UPDATE audit SET reason = NULL, before_json = NULL, after_json = $2 WHERE task_id = $1",
            )
            .bind(id)
            .bind(ERASED)
            .execute(&mut **tx)
            .await?;
            // A tombstone: an empty payload, published as a null value under the customer's key.
            sqlx::query(
                "INSERT INTO outbox (task_id, version, customer_id, payload) VALUES ($1, -1, $2, '')
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(customer)
            .execute(&mut **tx)
            .await?;
        }
        for table in ["tasks", "command_results", "outreach_links", "outreach_jobs", "email_opt_outs"] {
            // Table names are this list's, never input.
            let sql = format!("DELETE FROM {table} WHERE customer_id = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(customer).execute(&mut **tx).await?;
        }
        self.insert_audits(tx, &[&erasure.audit]).await
    }

    /// Deletes an erased customer's checkpointed state (in the state database, which on SQLite
    /// is a file of its own: after the batch's transaction, not in it). The engine no longer
    /// holds them, so no later checkpoint writes them again; one prepared before the erasure is
    /// followed by the erasure command again on a restore from it.
    pub(super) async fn erase_state(&self, customer_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM state_customers WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&self.state)
            .await?;
        Ok(())
    }

    /// Everything the store holds about a customer, for a subject-access request: their tasks
    /// (latest version, with the profile copy, notes, contact attempts and answers), every
    /// version's kind and time, the audit of their tasks, e-mails (template, status, times;
    /// never link secrets) and answers, the opt-out, and command results. `None` if the store
    /// holds nothing about them.
    pub async fn export_customer(&self, customer_id: &str) -> Result<Option<Value>, StoreError> {
        bounded("exporting a customer", async {
            let text = |r: &sqlx::any::AnyRow, i: usize| r.try_get::<Option<String>, _>(i).ok().flatten();
            let mut tasks = Vec::new();
            for row in sqlx::query("SELECT id, body FROM tasks WHERE customer_id = $1 ORDER BY id")
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?
            {
                let id: String = row.try_get(0)?;
                let body: String = row.try_get(1)?;
                let versions: Vec<Value> =
                    sqlx::query("SELECT version, kind, at FROM task_versions WHERE id = $1 ORDER BY version")
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|v| json!({"version": v.try_get::<i64, _>(0).ok(), "change": text(v, 1), "at": text(v, 2)}))
                        .collect();
                let audit: Vec<Value> = sqlx::query(
                    "SELECT version, at, actor, role, action, reason FROM audit WHERE task_id = $1 ORDER BY version",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|a| {
                    json!({"version": a.try_get::<i64, _>(0).ok(), "at": text(a, 1), "actor": text(a, 2),
                           "role": text(a, 3), "action": text(a, 4), "reason": text(a, 5)})
                })
                .collect();
                let task: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                tasks.push(json!({"task": task, "versions": versions, "audit": audit}));
            }
            let emails: Vec<Value> = sqlx::query(
                "SELECT job_id, task_id, template, status, created_ms, sent_ms FROM outreach_jobs
                 WHERE customer_id = $1 ORDER BY created_ms",
            )
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|j| {
                json!({"job": text(j, 0), "task_id": text(j, 1), "template": text(j, 2), "status": text(j, 3),
                       "created_ms": j.try_get::<i64, _>(4).ok(), "sent_ms": j.try_get::<Option<i64>, _>(5).ok().flatten()})
            })
            .collect();
            let answers: Vec<Value> = sqlx::query(
                "SELECT task_id, answer, used_ms FROM outreach_links WHERE customer_id = $1 AND used_ms IS NOT NULL",
            )
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|l| json!({"task_id": text(l, 0), "answer": text(l, 1), "at_ms": l.try_get::<Option<i64>, _>(2).ok().flatten()}))
            .collect();
            let opted_out: Option<String> = sqlx::query("SELECT at FROM email_opt_outs WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?
                .and_then(|r| r.try_get(0).ok());
            let commands: Vec<Value> = sqlx::query(
                "SELECT command_id, task_id, at, refusal, detail FROM command_results WHERE customer_id = $1 ORDER BY at",
            )
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|c| json!({"command_id": text(c, 0), "task_id": text(c, 1), "at": text(c, 2), "refusal": text(c, 3), "detail": text(c, 4)}))
            .collect();
            let checkpointed: i64 = sqlx::query("SELECT COUNT(*) FROM state_customers WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_one(&self.state)
                .await?
                .try_get(0)?;
            if tasks.is_empty() && emails.is_empty() && opted_out.is_none() && commands.is_empty() && checkpointed == 0 {
                return Ok(None);
            }
            Ok(Some(json!({
                "customer_id": customer_id,
                "tasks": tasks,
                "emails": emails,
                "answers": answers,
                "email_opt_out": opted_out,
                "command_results": commands,
                "engine_state_checkpoints": checkpointed,
            })))
        })
        .await
    }

    /// Deletes what has outlived its retention at `now_ms`: resolved tasks with their versions
    /// and outbox rows (their audit stays for its own period), audit records, e-mail jobs with
    /// their links.
    pub async fn purge(&self, retention: &Retention, now_ms: i64) -> Result<Purged, StoreError> {
        bounded("purging old records", async {
            let mut tx = self.pool.begin().await?;
            let cutoff = |days: i64| now_ms - days * DAY;
            let old: Vec<String> = sqlx::query(
                "SELECT id FROM tasks WHERE status = 'resolved' AND updated_at <> '' AND updated_at < $1",
            )
            // RFC 3339 in one fixed form (UTC, milliseconds): text order is time order.
            .bind(crate::time::Timestamp(cutoff(retention.resolved_tasks_days)).to_string())
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
            for id in &old {
                for sql in [
                    "DELETE FROM task_versions WHERE id = $1",
                    "DELETE FROM outbox WHERE task_id = $1",
                    "DELETE FROM tasks WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
            }
            // The oldest sealed rows, as a prefix of the hash chain (`audit_chain`): a row is
            // deleted only when every row sealed before it is old enough too.
            let audit = sqlx::query(
                "DELETE FROM audit WHERE chain_seq IS NOT NULL AND chain_seq < (
                     SELECT COALESCE(MIN(chain_seq), (SELECT seq + 1 FROM audit_chain WHERE id = 1))
                     FROM audit WHERE chain_seq IS NOT NULL AND at_ms >= $1)",
            )
            .bind(cutoff(retention.audit_days))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let outreach_cutoff = cutoff(retention.outreach_days);
            sqlx::query(
                "DELETE FROM outreach_links WHERE job_id IN (SELECT job_id FROM outreach_jobs WHERE created_ms < $1)",
            )
            .bind(outreach_cutoff)
            .execute(&mut *tx)
            .await?;
            let outreach = sqlx::query(
                "DELETE FROM outreach_jobs WHERE created_ms < $1 AND status IN ('sent', 'suppressed', 'failed')",
            )
            .bind(outreach_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(Purged { resolved_tasks: old.len() as u64, audit, outreach })
        })
        .await
    }
}
