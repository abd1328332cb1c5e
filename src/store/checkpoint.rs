//! Per-partition state checkpoints in the store: each customer's encoded state as a row keyed by
//! (consumer group, partition, customer), and per partition the input offsets the rows cover.
//!
//! A checkpoint writes the customers that changed since the previous one and the partition's new
//! offsets in one transaction, so the rows and the offsets always agree: an upsert per customer
//! is a changelog compacted as it is written.
//!
//! Fencing: an instance *claims* a partition before restoring it, which increments the
//! partition's epoch; a checkpoint is written only under the epoch its writer claimed. An
//! instance that lost the partition without noticing (it was expelled from the group while the
//! database hung) cannot overwrite the new owner's state: its checkpoint fails with
//! [`StoreError::Fenced`]. The epoch row is updated first in the checkpoint's transaction, so a
//! claim waits for a checkpoint in flight and then sees it whole. Restoring a partition reads its rows page by page
//! (keyset pagination on the primary key) and its offsets; the service then skips input below
//! those offsets and replays the rest.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// Rows per multi-row upsert: 4 parameters each stays under SQLite's 999-parameter limit.
const ROWS_PER_STATEMENT: usize = 200;
/// Rows per page when restoring.
const RESTORE_PAGE: i64 = 5_000;

/// What a partition's checkpoint covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionCheckpoint {
    /// Next offset to apply, per input topic.
    pub offsets: BTreeMap<String, i64>,
    /// Newest event time applied (milliseconds), to restore the watermark.
    pub newest: i64,
}

/// A partition's offsets as stored (JSON: topic → next offset).
fn parse_offsets(partition: i32, text: String) -> Result<BTreeMap<String, i64>, StoreError> {
    serde_json::from_str(&text)
        .map_err(|source| StoreError::Encode { id: format!("partition {partition} offsets"), source })
}

/// The time of day for `updated_at` (for people reading the table; never compared).
fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Progress of a restore, reported once per page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreProgress {
    pub customers: u64,
    pub bytes: u64,
}

impl TaskStore {
    /// Claims `partition` for this instance: returns the new epoch under which it may write the
    /// partition's checkpoints (any earlier owner's writes are refused from now on).
    pub async fn claim_partition(&self, group: &str, partition: i32) -> Result<i64, StoreError> {
        bounded("claiming a partition", async {
            let row = sqlx::query(
                "INSERT INTO state_partitions (group_id, partition_id, offsets, newest, updated_at, epoch)
                 VALUES ($1, $2, '{}', $3, $4, 1)
                 ON CONFLICT (group_id, partition_id) DO UPDATE SET epoch = state_partitions.epoch + 1
                 RETURNING epoch",
            )
            .bind(group)
            .bind(i64::from(partition))
            .bind(i64::MIN)
            .bind(now())
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get(0)?)
        })
        .await
    }

    /// Writes changed customers of `partition` and the offsets they bring it to, atomically, if
    /// `epoch` is still the partition's (else [`StoreError::Fenced`], and nothing is written).
    pub async fn save_checkpoint(
        &self,
        group: &str,
        partition: i32,
        epoch: i64,
        checkpoint: &PartitionCheckpoint,
        customers: &[(Box<str>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let save = self.save_unbounded(group, partition, epoch, checkpoint, customers);
        bounded("writing a state checkpoint", save).await
    }

    async fn save_unbounded(
        &self,
        group: &str,
        partition: i32,
        epoch: i64,
        checkpoint: &PartitionCheckpoint,
        customers: &[(Box<str>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let offsets = serde_json::to_string(&checkpoint.offsets)
            .map_err(|source| StoreError::Encode { id: format!("partition {partition}"), source })?;
        let mut tx = self.pool.begin().await?;
        // First, under the epoch: this locks the partition's row until commit.
        let updated = sqlx::query(
            "UPDATE state_partitions SET offsets = $1, newest = $2, updated_at = $3
             WHERE group_id = $4 AND partition_id = $5 AND epoch = $6",
        )
        .bind(offsets)
        .bind(checkpoint.newest)
        .bind(now())
        .bind(group)
        .bind(i64::from(partition))
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Fenced { partition, epoch }); // rolled back on drop
        }
        for chunk in customers.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO state_customers (group_id, partition_id, customer_id, body) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 4;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
            }
            sql.push_str(
                " ON CONFLICT (group_id, partition_id, customer_id) DO UPDATE SET body = excluded.body",
            );
            // Only placeholders are formatted in; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, body) in chunk {
                query = query.bind(group).bind(i64::from(partition)).bind(&**id).bind(body.as_slice());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The checkpoint of `partition`, if one was written, feeding its customers to `each` page by
    /// page (customer id, encoded state) and reporting progress after each page.
    pub async fn load_checkpoint(
        &self,
        group: &str,
        partition: i32,
        mut each: impl FnMut(String, Vec<u8>),
        mut progress: impl FnMut(RestoreProgress),
    ) -> Result<Option<PartitionCheckpoint>, StoreError> {
        // Read the offsets first: rows are written with their offsets in one transaction, and
        // only this instance writes the partition while it owns it, so both agree.
        let row = bounded("reading a state checkpoint", async {
            Ok(sqlx::query(
                "SELECT offsets, newest FROM state_partitions WHERE group_id = $1 AND partition_id = $2",
            )
            .bind(group)
            .bind(i64::from(partition))
            .fetch_optional(&self.pool)
            .await?)
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        let checkpoint = PartitionCheckpoint {
            offsets: parse_offsets(partition, row.try_get(0)?)?,
            newest: row.try_get(1)?,
        };
        let mut done = RestoreProgress::default();
        let mut after = String::new();
        loop {
            let rows = bounded("reading a state checkpoint", async {
                Ok(sqlx::query(
                    "SELECT customer_id, body FROM state_customers
                     WHERE group_id = $1 AND partition_id = $2 AND customer_id > $3
                     ORDER BY customer_id LIMIT $4",
                )
                .bind(group)
                .bind(i64::from(partition))
                .bind(&after)
                .bind(RESTORE_PAGE)
                .fetch_all(&self.pool)
                .await?)
            })
            .await?;
            let page = rows.len();
            for r in rows {
                let id: String = r.try_get(0)?;
                let body: Vec<u8> = r.try_get(1)?;
                done.customers += 1;
                done.bytes += body.len() as u64;
                after.clone_from(&id);
                each(id, body);
            }
            progress(done);
            if (page as i64) < RESTORE_PAGE {
                return Ok(Some(checkpoint));
            }
        }
    }

    /// Deletes every checkpoint of a consumer group (a state reset); returns the rows removed.
    pub async fn reset_state(&self, group: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let customers = sqlx::query("DELETE FROM state_customers WHERE group_id = $1")
            .bind(group)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM state_partitions WHERE group_id = $1").bind(group).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(customers.rows_affected())
    }

    /// The offsets a partition's checkpoint covers (empty if it has none).
    pub async fn checkpoint_offsets(
        &self,
        group: &str,
        partition: i32,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let row =
            sqlx::query("SELECT offsets FROM state_partitions WHERE group_id = $1 AND partition_id = $2")
                .bind(group)
                .bind(i64::from(partition))
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(BTreeMap::new()) };
        parse_offsets(partition, row.try_get(0)?)
    }

    /// Customers and bytes of state stored for a group, per partition.
    pub async fn state_sizes(&self, group: &str) -> Result<Vec<(i32, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT partition_id, COUNT(*), SUM(LENGTH(body)) FROM state_customers WHERE group_id = $1
             GROUP BY partition_id ORDER BY partition_id",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let p: i64 = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
                let b: i64 = r.try_get(2)?;
                Ok((p as i32, n as u64, b as u64))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }
}

impl TaskStore {
    /// One customer's state as of its partition's last checkpoint (encoded), if checkpointed.
    pub async fn customer_state(
        &self,
        group: &str,
        customer_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        bounded("reading a customer's state", async {
            let row =
                sqlx::query("SELECT body FROM state_customers WHERE group_id = $1 AND customer_id = $2")
                    .bind(group)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
        .await
    }
}
