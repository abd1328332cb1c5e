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
//! claim waits for a checkpoint in flight and then sees it whole. Restoring a partition reads its
//! offsets, then streams its rows in one query, in chunks, to decoders on other threads; the
//! service then skips input below those offsets and replays the rest.
//!
//! On SQLite these tables live in a database file of their own (`state_db.rs`), so the
//! checkpoint's write transaction and the task writer's never wait for each other.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// Rows per multi-row upsert or delete: 2 parameters each (and 2 shared) stays under SQLite's
/// historical 999-parameter limit; fewer statements are fewer round trips to PostgreSQL.
const ROWS_PER_STATEMENT: usize = 498;
/// Rows per chunk a restore hands to its decoders: large enough that handing over costs
/// nothing next to decoding (~1 ms of work), small enough to spread over every core.
pub const RESTORE_CHUNK: usize = 1_024;

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

/// A chunk of customers as stored, read by a restore: ids and encoded states packed into two
/// buffers, so a chunk is three allocations however many customers it holds (they are made by
/// the reading thread and freed by a decoding one, where each allocation costs more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCustomers {
    ids: String,
    bodies: Vec<u8>,
    /// Where each customer's id and body end in `ids` and `bodies`.
    ends: Vec<(usize, usize)>,
}

impl StoredCustomers {
    /// An empty chunk with room for `customers` of about 1 KB each.
    pub fn with_capacity(customers: usize) -> StoredCustomers {
        StoredCustomers {
            ids: String::with_capacity(customers * 16),
            bodies: Vec::with_capacity(customers * 1_024),
            ends: Vec::with_capacity(customers),
        }
    }

    /// Adds a customer: its id and encoded state.
    pub fn push(&mut self, id: &str, body: &[u8]) {
        self.ids.push_str(id);
        self.bodies.extend_from_slice(body);
        self.ends.push((self.ids.len(), self.bodies.len()));
    }

    /// Customers in the chunk.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the chunk holds no customer.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of encoded state in the chunk.
    pub fn bytes(&self) -> usize {
        self.bodies.len()
    }

    /// The customers, in the order read: (customer id, encoded state).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let starts = std::iter::once((0, 0)).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|((id_start, body_start), &(id_end, body_end))| {
            (&self.ids[id_start..id_end], &self.bodies[body_start..body_end])
        })
    }
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
            .fetch_one(&self.state)
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
        self.save_checkpoint_removing(group, partition, epoch, checkpoint, customers, &[]).await
    }

    /// [`TaskStore::save_checkpoint`] that also deletes the rows of `removed` customers (expired
    /// from memory), in the same transaction: a partition's rows are the customers it holds.
    pub async fn save_checkpoint_removing(
        &self,
        group: &str,
        partition: i32,
        epoch: i64,
        checkpoint: &PartitionCheckpoint,
        customers: &[(Box<str>, Vec<u8>)],
        removed: &[Box<str>],
    ) -> Result<(), StoreError> {
        let save = self.save_unbounded(group, partition, epoch, checkpoint, customers, removed);
        bounded("writing a state checkpoint", save).await
    }

    async fn save_unbounded(
        &self,
        group: &str,
        partition: i32,
        epoch: i64,
        checkpoint: &PartitionCheckpoint,
        customers: &[(Box<str>, Vec<u8>)],
        removed: &[Box<str>],
    ) -> Result<(), StoreError> {
        let offsets = serde_json::to_string(&checkpoint.offsets)
            .map_err(|source| StoreError::Encode { id: format!("partition {partition}"), source })?;
        let mut tx = self.state.begin().await?;
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
            // $1 and $2 (group, partition) are bound once and shared by every row.
            for i in 0..chunk.len() {
                let b = 2 + i * 2;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("($1, $2, ${}, ${})", b + 1, b + 2));
            }
            sql.push_str(
                " ON CONFLICT (group_id, partition_id, customer_id) DO UPDATE SET body = excluded.body",
            );
            // Only placeholders are formatted in; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group).bind(i64::from(partition));
            for (id, body) in chunk {
                query = query.bind(&**id).bind(body.as_slice());
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in removed.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "DELETE FROM state_customers WHERE group_id = $1 AND partition_id = $2 AND customer_id IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i + 3));
            }
            sql.push(')');
            // Only placeholders are formatted in; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group).bind(i64::from(partition));
            for id in chunk {
                query = query.bind(&**id);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The checkpoint of `partition`, if one was written, sending its customers to `chunks` as
    /// they are read, [`RESTORE_CHUNK`] at a time: one query streamed, not pages, so the rows are
    /// one consistent read and decoding (by the receiver, on other threads) overlaps reading. A
    /// full channel holds the read back (the rows in flight stay bounded); a closed one ends it
    /// early (`Ok`, with the checkpoint). Each chunk must arrive within [`OPERATION_TIMEOUT`].
    ///
    /// [`OPERATION_TIMEOUT`]: super::OPERATION_TIMEOUT
    pub async fn load_checkpoint(
        &self,
        group: &str,
        partition: i32,
        chunks: tokio::sync::mpsc::Sender<StoredCustomers>,
    ) -> Result<Option<PartitionCheckpoint>, StoreError> {
        // Read the offsets first. The caller claimed the partition before, so no other instance
        // writes it any more, and a checkpoint in flight when it claimed had finished (see the
        // module doc): the rows read next are the ones these offsets cover.
        let row = bounded("reading a state checkpoint", async {
            Ok(sqlx::query(
                "SELECT offsets, newest FROM state_partitions WHERE group_id = $1 AND partition_id = $2",
            )
            .bind(group)
            .bind(i64::from(partition))
            .fetch_optional(&self.state)
            .await?)
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        let checkpoint = PartitionCheckpoint {
            offsets: parse_offsets(partition, row.try_get(0)?)?,
            newest: row.try_get(1)?,
        };
        // No ORDER BY: the database's cheapest order (SQLite walks the primary key's index,
        // PostgreSQL the partition's rows as they lie); the receiver does not need any.
        let mut rows = sqlx::query(
            "SELECT customer_id, body FROM state_customers WHERE group_id = $1 AND partition_id = $2",
        )
        .bind(group)
        .bind(i64::from(partition))
        .fetch(&self.state);
        loop {
            let chunk = bounded("reading a state checkpoint", async {
                let mut chunk = StoredCustomers::with_capacity(RESTORE_CHUNK);
                while chunk.len() < RESTORE_CHUNK {
                    // `fetch` gives a boxed `dyn Stream`, whose methods need no import.
                    let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await else {
                        break;
                    };
                    let row = row?;
                    chunk.push(row.try_get(0)?, row.try_get(1)?);
                }
                Ok(chunk)
            })
            .await?;
            let last = chunk.len() < RESTORE_CHUNK;
            if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
                return Ok(Some(checkpoint)); // the receiver stopped: nothing more to read for
            }
            if last {
                return Ok(Some(checkpoint));
            }
        }
    }

    /// The checkpoint of `partition` and all its customers, collected (for tests and tools; a
    /// restore uses [`TaskStore::load_checkpoint`], which streams).
    pub async fn read_checkpoint(
        &self,
        group: &str,
        partition: i32,
    ) -> Result<Option<(PartitionCheckpoint, Vec<(String, Vec<u8>)>)>, StoreError> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<StoredCustomers>(4);
        let collect = async {
            let mut all = Vec::new();
            while let Some(chunk) = receiver.recv().await {
                all.extend(chunk.iter().map(|(id, body)| (id.to_owned(), body.to_vec())));
            }
            all
        };
        let (checkpoint, customers) = tokio::join!(self.load_checkpoint(group, partition, sender), collect);
        Ok(checkpoint?.map(|c| (c, customers)))
    }

    /// Deletes every checkpoint of a consumer group (a state reset); returns the rows removed.
    pub async fn reset_state(&self, group: &str) -> Result<u64, StoreError> {
        let mut tx = self.state.begin().await?;
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
                .fetch_optional(&self.state)
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
        .fetch_all(&self.state)
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
                    .fetch_optional(&self.state)
                    .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_gives_back_each_customer_as_pushed() {
        let mut chunk = StoredCustomers::with_capacity(2);
        assert!(chunk.is_empty());
        chunk.push("c1", &[1, 2, 3]);
        chunk.push("", &[]);
        chunk.push("ключ", &[4]);
        assert_eq!(chunk.len(), 3);
        assert_eq!(chunk.bytes(), 4);
        let items: Vec<(&str, &[u8])> = chunk.iter().collect();
        assert_eq!(items, vec![("c1", &[1u8, 2, 3][..]), ("", &[][..]), ("ключ", &[4u8][..])]);
    }
}
