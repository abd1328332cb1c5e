//! The outbox: task versions written but not yet on the tasks topic. Rows are added in the
//! task write's transaction (`tasks.rs`) and removed by the relay once the broker acknowledged
//! them, so a stored version is never missing from the topic.

use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// One task version waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub task_id: String,
    pub version: i64,
    pub customer_id: String,
    pub payload: String,
}

impl TaskStore {
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
        bounded("clearing the outbox", async {
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
        })
        .await
    }
}
