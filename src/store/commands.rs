//! What became of each command: applied (with the task version it produced) or refused (with
//! why, and who holds the task). Written in the transaction of the batch that applied it; the
//! API polls it to answer with what it asked for (read-your-writes).

use sqlx::{Any, Row, Transaction};

use super::{bounded, StoreError, TaskStore};
use crate::command::{CommandResult, Refusal};
use crate::time::Timestamp;

impl TaskStore {
    /// Records a command's result (a re-applied command's result is already there: kept).
    pub(super) async fn insert_result(
        &self,
        tx: &mut Transaction<'_, Any>,
        r: &CommandResult,
    ) -> Result<(), StoreError> {
        let refusal = r.refusal.map(|f| match f {
            Refusal::NotFound => "not_found",
            Refusal::Conflict => "conflict",
            Refusal::Invalid => "invalid",
        });
        sqlx::query(
            "INSERT INTO command_results (command_id, task_id, customer_id, at, version, refusal, detail, holder)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&r.command_id)
        .bind(&r.task_id)
        .bind(&r.customer_id)
        .bind(r.at.to_string())
        .bind(r.version.map(i64::from))
        .bind(refusal)
        .bind(r.detail.clone())
        .bind(r.holder.clone())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Waits up to `limit` for a command's result (polled: 2 ms, doubling to 25 ms); `None` if
    /// the engine has not applied it by then.
    pub async fn await_command_result(
        &self,
        command_id: &str,
        limit: std::time::Duration,
    ) -> Result<Option<CommandResult>, StoreError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            if let Some(r) = self.command_result(command_id).await? {
                return Ok(Some(r));
            }
            if started.elapsed() >= limit {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(25));
        }
    }

    /// The result of a command, once the engine has applied it and the batch is durable.
    pub async fn command_result(&self, command_id: &str) -> Result<Option<CommandResult>, StoreError> {
        bounded("reading a command result", async {
            let row = sqlx::query(
                "SELECT command_id, task_id, customer_id, at, version, refusal, detail, holder
                 FROM command_results WHERE command_id = $1",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let at: String = r.try_get(3)?;
            let version: Option<i64> = r.try_get(4)?;
            let refusal: Option<String> = r.try_get(5)?;
            Ok(Some(CommandResult {
                command_id: r.try_get(0)?,
                task_id: r.try_get(1)?,
                customer_id: r.try_get(2)?,
                at: Timestamp::parse_rfc3339(&at).unwrap_or(Timestamp(0)),
                version: version.map(|v| v as u32),
                refusal: refusal.map(|f| match f.as_str() {
                    "not_found" => Refusal::NotFound,
                    "conflict" => Refusal::Conflict,
                    _ => Refusal::Invalid,
                }),
                detail: r.try_get(6)?,
                holder: r.try_get(7)?,
            }))
        })
        .await
    }
}
