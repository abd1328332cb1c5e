//! The audit trail: one append-only row per task version (who, when, what, before and after,
//! why), written in the same transaction as the version itself. Never updated or deleted.

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::{bounded, StoreError, TaskStore};
use crate::task::AuditRecord;

/// One audit record as stored (`before` and `after` as JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub task_id: String,
    pub version: i64,
    pub at: String,
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub reason: Option<String>,
    pub command_id: Option<String>,
    pub before: Option<String>,
    pub after: String,
}

const COLUMNS: &str =
    "task_id, version, at, at_ms, actor, role, action, reason, command_id, before_json, after_json";

fn audit_row(r: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        task_id: r.try_get(0)?,
        version: r.try_get(1)?,
        at: r.try_get(2)?,
        at_ms: r.try_get(3)?,
        actor: r.try_get(4)?,
        role: r.try_get(5)?,
        action: r.try_get(6)?,
        reason: r.try_get(7)?,
        command_id: r.try_get(8)?,
        before: r.try_get(9)?,
        after: r.try_get(10)?,
    })
}

impl TaskStore {
    /// Appends audit records, several per statement (a re-processed version's record is
    /// already there: kept).
    pub(super) async fn insert_audits(
        &self,
        tx: &mut Transaction<'_, Any>,
        records: &[&AuditRecord],
    ) -> Result<(), StoreError> {
        const WIDTH: usize = 11;
        let json = |v: &dyn erased::Json| v.to_json();
        for chunk in records.chunks(super::rows_per_statement(WIDTH)) {
            let sql = format!(
                "INSERT INTO audit ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
                super::values_list(WIDTH, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for a in chunk {
                query = query
                    .bind(&a.task_id)
                    .bind(i64::from(a.version))
                    .bind(a.at.to_string())
                    .bind(a.at.0)
                    .bind(&a.actor)
                    .bind(&a.role)
                    .bind(&a.action)
                    .bind(a.reason.clone())
                    .bind(a.command_id.clone())
                    .bind(a.before.as_ref().map(|b| json(b)))
                    .bind(json(&a.after));
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Appends audit records that belong to no task version (commands refused for their
    /// signature, access events).
    pub async fn append_audits(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        super::bounded("auditing refused commands", async {
            let mut tx = self.pool.begin().await?;
            self.insert_audits(&mut tx, &records.iter().collect::<Vec<_>>()).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Records an access event, not a task's change (a console login or logout, a failed
    /// authentication, a token created or revoked, a rule pack reloaded or refused), filed
    /// under `security_<random>`. Never a secret in `reason` (the caller's duty: addresses and
    /// names, not tokens).
    pub async fn audit_access(
        &self,
        action: &str,
        actor: &str,
        role: &str,
        reason: String,
    ) -> Result<(), StoreError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).expect("the operating system's random source");
        let record = AuditRecord {
            task_id: format!("security_{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            version: 1,
            at: crate::api::now(),
            actor: actor.chars().take(200).collect(),
            role: role.to_string(),
            action: action.to_string(),
            reason: Some(reason),
            command_id: None,
            before: None,
            after: crate::task::AuditView::nothing(),
        };
        self.append_audits(std::slice::from_ref(&record)).await
    }

    /// The same, in the background: a failed write is logged, never in the caller's way.
    pub fn audit_access_later(&self, action: &'static str, actor: String, role: String, reason: String) {
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.audit_access(action, &actor, &role, reason).await {
                tracing::warn!(error = %e, action, "cannot audit an access event");
            }
        });
    }

    /// A task's audit trail, oldest first.
    pub async fn audit_of_task(&self, task_id: &str) -> Result<Vec<AuditRow>, StoreError> {
        bounded("reading the audit trail", async {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM audit WHERE task_id = $1 ORDER BY version"
            )))
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(audit_row).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// What one actor did, newest first, at most `limit` records before `before_ms` (a page).
    pub async fn audit_of_actor(
        &self,
        actor: &str,
        before_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        bounded("reading the audit trail", async {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM audit WHERE actor = $1 AND at_ms < $2 ORDER BY at_ms DESC, task_id, version LIMIT $3"
            )))
            .bind(actor)
            .bind(before_ms.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(audit_row).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// JSON text of the audit views (their `Serialize` cannot fail: plain fields only).
mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".to_string())
        }
    }
}
