//! E-mail outreach in the store: the jobs (a transactional outbox: a job is written in the
//! transaction of the task version that asked for it, and a sender off the event path delivers
//! it), the signed answer links (their fields, so a link is short, and when each was used: a
//! link works once), and customers who unsubscribed from care e-mails.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{bounded, StoreError, TaskStore};
use crate::task::Task;
use crate::vocab::Outreach;

/// An e-mail to send (or sent, deferred, suppressed, failed).
#[derive(Debug, Clone, PartialEq)]
pub struct OutreachJob {
    /// `<task id>.<template>`: stable, so a task version re-processed after a crash adds
    /// nothing, and the Message-ID derived from it is the same if a send is repeated.
    pub job_id: String,
    pub task_id: String,
    pub customer_id: String,
    pub template: String,
    pub any_hour: bool,
    /// `pending`, `deferred`, `sent`, `suppressed` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
}

/// A signed answer link as stored (the token carries only its key id, nonce and MAC).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub nonce: String,
    pub kid: String,
    pub job_id: String,
    pub task_id: String,
    pub customer_id: String,
    /// `yes`, `no` or `unsubscribe`.
    pub answer: String,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    /// When an agent resolved the link's task (the page then says the matter is closed; a
    /// "no" still reaches a person).
    pub voided_ms: Option<i64>,
}

const JOB_COLUMNS: &str =
    "job_id, task_id, customer_id, template, any_hour, status, attempts, next_ms, created_ms, sent_ms";

fn job(r: &AnyRow) -> Result<OutreachJob, sqlx::Error> {
    Ok(OutreachJob {
        job_id: r.try_get(0)?,
        task_id: r.try_get(1)?,
        customer_id: r.try_get(2)?,
        template: r.try_get(3)?,
        any_hour: r.try_get::<i64, _>(4)? != 0,
        status: r.try_get(5)?,
        attempts: r.try_get(6)?,
        next_ms: r.try_get(7)?,
        created_ms: r.try_get(8)?,
        sent_ms: r.try_get(9)?,
    })
}

impl TaskStore {
    /// Adds an e-mail job for a task version (kept if it exists: one job per task and template).
    pub(super) async fn insert_job(
        &self,
        tx: &mut Transaction<'_, Any>,
        task: &Task,
        o: &Outreach,
    ) -> Result<(), StoreError> {
        let at = crate::api::now().0;
        sqlx::query(
            "INSERT INTO outreach_jobs (job_id, task_id, customer_id, template, any_hour, status, attempts, next_ms, created_ms)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT DO NOTHING",
        )
        .bind(format!("{}.{}", task.id, o.template))
        .bind(&task.id)
        .bind(&task.customer_id)
        .bind(&o.template)
        .bind(i64::from(o.any_hour))
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Jobs due at `now_ms` (pending or deferred), oldest first.
    pub async fn due_jobs(&self, now_ms: i64, limit: i64) -> Result<Vec<OutreachJob>, StoreError> {
        bounded("reading outreach jobs", async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM outreach_jobs WHERE status IN ('pending', 'deferred') AND next_ms <= $1
                 ORDER BY next_ms LIMIT $2"
            )))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(job).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Every job of a task.
    pub async fn jobs_of_task(&self, task_id: &str) -> Result<Vec<OutreachJob>, StoreError> {
        bounded("reading outreach jobs", async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM outreach_jobs WHERE task_id = $1 ORDER BY created_ms"
            )))
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(job).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Moves a job on: its new status, when to look at it again, attempts, the error.
    pub async fn update_job(
        &self,
        job_id: &str,
        status: &str,
        next_ms: i64,
        attempts: i64,
        sent: Option<(i64, &str)>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        bounded("updating an outreach job", async {
            sqlx::query(
                "UPDATE outreach_jobs SET status = $2, next_ms = $3, attempts = $4,
                   sent_ms = COALESCE($5, sent_ms), message_id = COALESCE($6, message_id), last_error = $7
                 WHERE job_id = $1",
            )
            .bind(job_id)
            .bind(status)
            .bind(next_ms)
            .bind(attempts)
            .bind(sent.map(|s| s.0))
            .bind(sent.map(|s| s.1.to_string()))
            .bind(error.map(str::to_string))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// E-mails sent to a customer since `since_ms`.
    pub async fn sent_since(&self, customer_id: &str, since_ms: i64) -> Result<i64, StoreError> {
        bounded("counting e-mails", async {
            let row =
                sqlx::query("SELECT COUNT(*) FROM outreach_jobs WHERE customer_id = $1 AND sent_ms >= $2")
                    .bind(customer_id)
                    .bind(since_ms)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(row.try_get(0)?)
        })
        .await
    }

    /// E-mails sent for a task so far.
    pub async fn sent_for_task(&self, task_id: &str) -> Result<i64, StoreError> {
        bounded("counting a task's e-mails", async {
            let row =
                sqlx::query("SELECT COUNT(*) FROM outreach_jobs WHERE task_id = $1 AND sent_ms IS NOT NULL")
                    .bind(task_id)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(row.try_get(0)?)
        })
        .await
    }

    /// Whether a fraud contact with the customer is in progress: when the last fraud e-mail
    /// was sent (`now_ms` for one queued, deferred or being retried), if any, and whether an agent holds one of their fraud tasks (claimed or
    /// contacted).
    pub async fn fraud_contact(
        &self,
        customer_id: &str,
        now_ms: i64,
    ) -> Result<(Option<i64>, bool), StoreError> {
        bounded("reading fraud contacts", async {
            // Sent, or still to be sent (queued, deferred, being retried): a fraud e-mail about to
            // go holds care e-mails as one already sent does.
            let last = sqlx::query(
                "SELECT MAX(COALESCE(j.sent_ms, $2)) FROM outreach_jobs j JOIN tasks t ON t.id = j.task_id
                 WHERE j.customer_id = $1 AND t.queue = 'fraud'
                   AND (j.sent_ms IS NOT NULL OR j.status IN ('pending', 'deferred'))",
            )
            .bind(customer_id)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get::<Option<i64>, _>(0)?;
            let held = sqlx::query(
                "SELECT COUNT(*) FROM tasks
                 WHERE customer_id = $1 AND queue = 'fraud' AND status IN ('claimed', 'contacted')",
            )
            .bind(customer_id)
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>(0)?;
            Ok((last, held > 0))
        })
        .await
    }

    /// True if the customer answered an e-mail of `template` since `since_ms`.
    pub async fn answered_since(
        &self,
        customer_id: &str,
        template: &str,
        since_ms: i64,
    ) -> Result<bool, StoreError> {
        bounded("reading answers", async {
            let row = sqlx::query(
                "SELECT COUNT(*) FROM outreach_links l JOIN outreach_jobs j ON j.job_id = l.job_id
                 WHERE l.customer_id = $1 AND j.template = $2 AND l.used_ms >= $3 AND l.answer <> 'unsubscribe'",
            )
            .bind(customer_id)
            .bind(template)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get::<i64, _>(0)? > 0)
        })
        .await
    }

    /// Stores a link's fields (before the e-mail carrying it is sent).
    pub async fn add_link(&self, l: &LinkRow) -> Result<(), StoreError> {
        bounded("storing a link", async {
            sqlx::query(
                "INSERT INTO outreach_links (nonce, kid, job_id, task_id, customer_id, answer, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&l.nonce)
            .bind(&l.kid)
            .bind(&l.job_id)
            .bind(&l.task_id)
            .bind(&l.customer_id)
            .bind(&l.answer)
            .bind(l.expires_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// A link's fields by its nonce.
    pub async fn link(&self, nonce: &str) -> Result<Option<LinkRow>, StoreError> {
        bounded("reading a link", async {
            let row = sqlx::query(
                "SELECT nonce, kid, job_id, task_id, customer_id, answer, expires_ms, used_ms, voided_ms
                 FROM outreach_links WHERE nonce = $1",
            )
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row
                .map(|r| -> Result<LinkRow, sqlx::Error> {
                    Ok(LinkRow {
                        nonce: r.try_get(0)?,
                        kid: r.try_get(1)?,
                        job_id: r.try_get(2)?,
                        task_id: r.try_get(3)?,
                        customer_id: r.try_get(4)?,
                        answer: r.try_get(5)?,
                        expires_ms: r.try_get(6)?,
                        used_ms: r.try_get(7)?,
                        voided_ms: r.try_get(8)?,
                    })
                })
                .transpose()?)
        })
        .await
    }

    /// Marks a link used, and every other link of its job with it (an e-mail is answered once);
    /// false if it was used already (a reused link changes nothing).
    pub async fn use_link(&self, nonce: &str, job_id: &str, at_ms: i64) -> Result<bool, StoreError> {
        bounded("using a link", async {
            let mut tx = self.pool.begin().await?;
            let done =
                sqlx::query("UPDATE outreach_links SET used_ms = $2 WHERE nonce = $1 AND used_ms IS NULL")
                    .bind(nonce)
                    .bind(at_ms)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 1 {
                // The sibling "yes" stops working once either is used; it is not counted as used.
                // A "no" keeps working after a "yes" (whoever clicked "yes" may not be the
                // customer, and the customer's "no" must reach a person).
                sqlx::query(
                    "UPDATE outreach_links SET expires_ms = 0 WHERE job_id = $1 AND nonce <> $2 AND answer = 'yes'",
                )
                    .bind(job_id)
                    .bind(nonce)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Records that a customer unsubscribed from care e-mails.
    pub async fn opt_out(&self, customer_id: &str, at: &str) -> Result<(), StoreError> {
        bounded("recording an opt-out", async {
            sqlx::query(
                "INSERT INTO email_opt_outs (customer_id, at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// True if the customer unsubscribed from care e-mails.
    pub async fn opted_out(&self, customer_id: &str) -> Result<bool, StoreError> {
        bounded("reading opt-outs", async {
            let row = sqlx::query("SELECT COUNT(*) FROM email_opt_outs WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_one(&self.pool)
                .await?;
            Ok(row.try_get::<i64, _>(0)? > 0)
        })
        .await
    }
}
