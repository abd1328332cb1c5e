//! The outboxes: task versions written but not yet on the tasks topic, and requests to the card
//! system (`task::CardAction`) not yet on the actions topic. Rows are added in the task write's
//! transaction (`tasks.rs`) and removed by the relay once the broker acknowledged them, so a
//! stored version or a requested block is never missing from its topic.

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

/// One request to the card system waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    /// The idempotency key (also the row's key: a request is stored once).
    pub action_id: String,
    pub customer_id: String,
    pub payload: String,
}

impl TaskStore {
    /// Requests to the card system not yet published, oldest first.
    pub async fn pending_actions(&self, limit: i64) -> Result<Vec<ActionRow>, StoreError> {
        let rows = bounded("reading the actions outbox", async {
            Ok(sqlx::query(
                "SELECT action_id, customer_id, payload FROM action_outbox ORDER BY created_ms, action_id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActionRow { action_id: r.try_get(0)?, customer_id: r.try_get(1)?, payload: r.try_get(2)? })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// Removes published requests from the actions outbox.
    pub async fn mark_actions_published(&self, rows: &[ActionRow]) -> Result<(), StoreError> {
        bounded("clearing the actions outbox", async {
            let mut tx = self.pool.begin().await?;
            for r in rows {
                sqlx::query("DELETE FROM action_outbox WHERE action_id = $1")
                    .bind(&r.action_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
