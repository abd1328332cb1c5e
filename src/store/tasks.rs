//! Tasks as stored: the latest version of each (the projection agents list and read), every
//! version, the outcome of each resolved task per rule (precision), and the batched write that
//! puts a batch's task changes, audit records, outbox rows and command results in one
//! transaction.

use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

use sqlx::{AssertSqlSafe, Row};

use super::{bounded, StoreError, TaskStore};
use crate::command::CommandResult;
use crate::task::{ChangeKind, TaskChange};

/// Which tasks to list. Every field narrows the list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only these queues (an agent's role limits this before the store is asked).
    pub queues: Vec<String>,
    pub statuses: Vec<String>,
    pub priority: Option<i64>,
    pub assignee: Option<String>,
    /// Only tasks nobody holds.
    pub unassigned: bool,
    pub customer_id: Option<String>,
    /// Only open or claimed tasks past due (`now_ms`), or only those not past due.
    pub overdue: Option<bool>,
    /// Include tasks snoozed past `now_ms` (hidden by default).
    pub include_snoozed: bool,
    pub now_ms: i64,
}

/// Where a page starts: after this (priority, due, id) in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub priority: i64,
    pub due_ms: i64,
    pub id: String,
}

impl Cursor {
    /// The opaque text form given to clients.
    pub fn encode(&self) -> String {
        let text = format!("{}:{}:{}", self.priority, self.due_ms, self.id);
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`Cursor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Cursor> {
        if text.len() % 2 != 0 || text.len() > 600 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect();
        let text = String::from_utf8(bytes?).ok()?;
        let mut parts = text.splitn(3, ':');
        let priority = parts.next()?.parse().ok()?;
        let due_ms = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        (!id.is_empty()).then_some(Cursor { priority, due_ms, id })
    }
}

/// A stored task: its ordering columns and its JSON body.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: String,
    pub customer_id: String,
    pub queue: String,
    pub status: String,
    pub priority: i64,
    pub version: i64,
    pub due_ms: i64,
    pub assignee: Option<String>,
    pub body: String,
}

/// One page of tasks and the cursor of the next page (if there is one).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Outcomes of one rule's resolved tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleOutcomes {
    pub rule: String,
    /// (outcome, tasks)
    pub outcomes: Vec<(String, i64)>,
}

const TASK_COLUMNS: &str = "id, customer_id, queue, status, priority, version, due_ms, assignee, body";

fn task_row(r: &AnyRow) -> Result<TaskRow, sqlx::Error> {
    Ok(TaskRow {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        queue: r.try_get(2)?,
        status: r.try_get(3)?,
        priority: r.try_get(4)?,
        version: r.try_get(5)?,
        due_ms: r.try_get(6)?,
        assignee: r.try_get(7)?,
        body: r.try_get(8)?,
    })
}

/// A task change with its JSON body, status word and change time, encoded once for every
/// statement.
struct Encoded<'a> {
    change: &'a TaskChange,
    body: String,
    status: String,
    updated_at: String,
}

impl Encoded<'_> {
    fn of(change: &TaskChange) -> Result<Encoded<'_>, StoreError> {
        let t = &change.task;
        let body =
            serde_json::to_string(t).map_err(|source| StoreError::Encode { id: t.id.clone(), source })?;
        let status = serde_json::to_value(t.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Encoded { change, body, status, updated_at: t.updated_at.to_string() })
    }
}

/// A text bind or a number bind, for queries built from a filter.
enum Bind {
    Text(String),
    Int(i64),
}

impl TaskStore {
    /// Writes a batch of task changes and command results in one transaction (see the module
    /// doc of `store`).
    pub async fn write(&self, changes: &[TaskChange], results: &[CommandResult]) -> Result<(), StoreError> {
        bounded("writing tasks", self.write_unbounded(changes, results)).await
    }

    /// A batch in one transaction: the command results, then the task changes in a handful of
    /// multi-row statements per stretch between erasures (see [`Self::write_changes`]), each
    /// erasure applied at its place in the batch, so a change before it is erased and one after
    /// it (the customer came back) is kept.
    async fn write_unbounded(
        &self,
        changes: &[TaskChange],
        results: &[CommandResult],
    ) -> Result<(), StoreError> {
        if changes.is_empty() && results.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in results {
            self.insert_result(&mut tx, r).await?;
        }
        for stretch in changes.split_inclusive(|c| c.kind == ChangeKind::Erased) {
            match stretch.split_last() {
                Some((erasure, before)) if erasure.kind == ChangeKind::Erased => {
                    self.write_changes(&mut tx, before).await?;
                    self.erase_in(&mut tx, erasure).await?;
                }
                _ => self.write_changes(&mut tx, stretch).await?,
            }
        }
        tx.commit().await?;
        for erasure in changes.iter().filter(|c| c.kind == ChangeKind::Erased) {
            self.erase_state(&erasure.task.customer_id).await?;
        }
        Ok(())
    }

    /// Task changes in a handful of multi-row statements, whatever their number: every version
    /// (returning those that are new), the latest version of each task, then for the new
    /// versions only their audit records and outbox rows; the rare parts (e-mail jobs, card
    /// actions, rule outcomes) one by one, in the batch's order.
    async fn write_changes(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        changes: &[TaskChange],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let encoded = changes.iter().map(Encoded::of).collect::<Result<Vec<_>, _>>()?;
        let mut fresh = self.insert_versions(tx, &encoded).await?;
        self.upsert_latest(tx, &encoded).await?;
        // A version already stored was published before (re-processed after a restore): only
        // the new ones get audit records and outbox rows. Each is consumed once.
        let new: Vec<&Encoded> = encoded
            .iter()
            .filter(|e| fresh.remove(&(e.change.task.id.as_str(), i64::from(e.change.task.version))))
            .collect();
        self.insert_audits(tx, &new.iter().map(|e| &e.change.audit).collect::<Vec<_>>()).await?;
        for chunk in new.chunks(super::rows_per_statement(4)) {
            let sql = format!(
                "INSERT INTO outbox (task_id, version, customer_id, payload) VALUES {} ON CONFLICT DO NOTHING",
                super::values_list(4, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                let t = &e.change.task;
                query = query.bind(&t.id).bind(i64::from(t.version)).bind(&t.customer_id).bind(&e.body);
            }
            query.execute(&mut **tx).await?;
        }
        for e in &new {
            let (t, change) = (&e.change.task, e.change);
            for o in &change.outreach {
                self.insert_job(tx, t, o).await?;
            }
            for action in &change.actions {
                let payload = serde_json::to_string(action)
                    .map_err(|source| StoreError::Encode { id: t.id.clone(), source })?;
                sqlx::query(
                    "INSERT INTO action_outbox (action_id, customer_id, payload, created_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&action.action_id)
                .bind(&action.customer_id)
                .bind(payload)
                .bind(action.requested_at.0)
                .execute(&mut **tx)
                .await?;
            }
            // Resolved by an agent: the customer's answer links are void (a "no" on one still
            // reaches a person; the page says the matter is closed).
            if change.kind == ChangeKind::Resolved && change.audit.role != "customer" {
                sqlx::query(
                    "UPDATE outreach_links SET voided_ms = $1 WHERE task_id = $2 AND voided_ms IS NULL",
                )
                .bind(change.audit.at.0)
                .bind(&t.id)
                .execute(&mut **tx)
                .await?;
            }
            match change.kind {
                ChangeKind::Resolved => {
                    for rule in &t.rules {
                        sqlx::query(
                            "INSERT INTO rule_outcomes (task_id, rule, queue, outcome) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (task_id, rule) DO UPDATE SET outcome = excluded.outcome",
                        )
                        .bind(&t.id)
                        .bind(rule)
                        .bind(t.queue.as_str())
                        .bind(t.outcome.map_or("", |o| o.as_str()))
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                ChangeKind::Reopened => {
                    sqlx::query("DELETE FROM rule_outcomes WHERE task_id = $1")
                        .bind(&t.id)
                        .execute(&mut **tx)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Inserts every version of the batch; returns (task id, version) of those not stored
    /// before.
    async fn insert_versions<'a>(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        encoded: &'a [Encoded<'a>],
    ) -> Result<HashSet<(&'a str, i64)>, StoreError> {
        const WIDTH: usize = 5;
        let mut fresh = HashSet::new();
        for chunk in encoded.chunks(super::rows_per_statement(WIDTH)) {
            let sql = format!(
                "INSERT INTO task_versions (id, version, body, kind, at) VALUES {} ON CONFLICT DO NOTHING
                 RETURNING id, version",
                super::values_list(WIDTH, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                let t = &e.change.task;
                query = query
                    .bind(&t.id)
                    .bind(i64::from(t.version))
                    .bind(&e.body)
                    .bind(e.change.kind.as_str())
                    .bind(&e.updated_at);
            }
            // Borrow the returned ids from the batch rather than keep the copies.
            let ids: HashSet<&'a str> = chunk.iter().map(|e| e.change.task.id.as_str()).collect();
            for row in query.fetch_all(&mut **tx).await? {
                let (id, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                if let Some(&id) = ids.get(id.as_str()) {
                    fresh.insert((id, version));
                }
            }
        }
        Ok(fresh)
    }

    /// Upserts the newest version of each task of the batch into `tasks` (an older version than
    /// the stored one changes nothing).
    async fn upsert_latest(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        encoded: &[Encoded<'_>],
    ) -> Result<(), StoreError> {
        const WIDTH: usize = 14;
        // One row per task: a statement may not update the same row twice.
        let mut latest: HashMap<&str, &Encoded> = HashMap::new();
        for e in encoded {
            let t = &e.change.task;
            let newer = latest.get(t.id.as_str()).is_none_or(|seen| seen.change.task.version < t.version);
            if newer {
                latest.insert(&t.id, e);
            }
        }
        let mut latest: Vec<&Encoded> = latest.into_values().collect();
        latest.sort_by(|a, b| a.change.task.id.cmp(&b.change.task.id)); // a stable lock order
        for chunk in latest.chunks(super::rows_per_statement(WIDTH)) {
            let sql = format!(
                "INSERT INTO tasks (id, customer_id, queue, status, priority, version, opened_at, due_at, body,
                   assignee, escalated, due_ms, snoozed_ms, updated_at)
                 VALUES {}
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,
                   version = excluded.version, due_at = excluded.due_at, body = excluded.body,
                   assignee = excluded.assignee, escalated = excluded.escalated, due_ms = excluded.due_ms,
                   snoozed_ms = excluded.snoozed_ms, updated_at = excluded.updated_at
                 WHERE tasks.version < excluded.version",
                super::values_list(WIDTH, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                let t = &e.change.task;
                query = query
                    .bind(&t.id)
                    .bind(&t.customer_id)
                    .bind(t.queue.as_str())
                    .bind(&e.status)
                    .bind(i64::from(t.priority))
                    .bind(i64::from(t.version))
                    .bind(t.opened_at.to_string())
                    .bind(t.due_at.to_string())
                    .bind(&e.body)
                    .bind(t.work.assignee.clone())
                    .bind(i64::from(t.work.escalated))
                    .bind(t.due_at.0)
                    .bind(t.work.snoozed_until.map(|s| s.0))
                    .bind(&e.updated_at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The latest stored version of a task and its JSON.
    pub async fn task(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self.task_row(id).await?.map(|r| (r.version, r.body)))
    }

    /// The latest stored version of a task with its columns.
    pub async fn task_row(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        bounded("reading a task", async {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
            Ok(row.as_ref().map(task_row).transpose()?)
        })
        .await
    }

    /// Every stored task's id and version, ordered by id.
    pub async fn task_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, version FROM tasks ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// The versions of one task: (version, change kind, when), oldest first.
    pub async fn versions_of(&self, id: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        bounded("reading task versions", async {
            let rows =
                sqlx::query("SELECT version, kind, at FROM task_versions WHERE id = $1 ORDER BY version")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?)
        })
        .await
    }

    /// One stored version of a task (its JSON).
    pub async fn task_version(&self, id: &str, version: i64) -> Result<Option<String>, StoreError> {
        bounded("reading a task version", async {
            let row = sqlx::query("SELECT body FROM task_versions WHERE id = $1 AND version = $2")
                .bind(id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
        .await
    }

    /// Tasks in queue order (most urgent first: priority, then due time, then id), one page of
    /// at most `limit` after `after`.
    pub async fn list_tasks(
        &self,
        filter: &TaskFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Page<TaskRow>, StoreError> {
        bounded("listing tasks", async {
            let mut conditions: Vec<String> = Vec::new();
            let mut binds: Vec<Bind> = Vec::new();
            let mut param = |b: Bind, binds: &mut Vec<Bind>| {
                binds.push(b);
                format!("${}", binds.len())
            };
            let list = |values: &[String],
                        binds: &mut Vec<Bind>,
                        param: &mut dyn FnMut(Bind, &mut Vec<Bind>) -> String| {
                values.iter().map(|v| param(Bind::Text(v.clone()), binds)).collect::<Vec<_>>().join(", ")
            };
            if !filter.queues.is_empty() {
                let l = list(&filter.queues, &mut binds, &mut param);
                conditions.push(format!("queue IN ({l})"));
            }
            if !filter.statuses.is_empty() {
                let l = list(&filter.statuses, &mut binds, &mut param);
                conditions.push(format!("status IN ({l})"));
            }
            if let Some(p) = filter.priority {
                conditions.push(format!("priority = {}", param(Bind::Int(p), &mut binds)));
            }
            if let Some(a) = &filter.assignee {
                conditions.push(format!("assignee = {}", param(Bind::Text(a.clone()), &mut binds)));
            }
            if filter.unassigned {
                conditions.push("assignee IS NULL".to_string());
            }
            if let Some(c) = &filter.customer_id {
                conditions.push(format!("customer_id = {}", param(Bind::Text(c.clone()), &mut binds)));
            }
            match filter.overdue {
                Some(true) => {
                    let now = param(Bind::Int(filter.now_ms), &mut binds);
                    conditions.push(format!("status IN ('open', 'claimed') AND due_ms < {now}"));
                }
                Some(false) => {
                    let now = param(Bind::Int(filter.now_ms), &mut binds);
                    conditions.push(format!("NOT (status IN ('open', 'claimed') AND due_ms < {now})"));
                }
                None => {}
            }
            if !filter.include_snoozed {
                let now = param(Bind::Int(filter.now_ms), &mut binds);
                conditions.push(format!("(snoozed_ms IS NULL OR snoozed_ms <= {now})"));
            }
            if let Some(c) = after {
                let p = param(Bind::Int(c.priority), &mut binds);
                let d = param(Bind::Int(c.due_ms), &mut binds);
                let i = param(Bind::Text(c.id.clone()), &mut binds);
                // A row-value comparison: both stores walk the index from the cursor on.
                conditions.push(format!("(priority, due_ms, id) > ({p}, {d}, {i})"));
            }
            let limit_param = param(Bind::Int(limit + 1), &mut binds);
            let filter_sql = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            // The page's ids first, from the covering index (only small keys are sorted), then
            // their rows: sorting whole rows (bodies of kilobytes) made a page of 100,000 tasks
            // cost ~100 ms on SQLite.
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN (
                   SELECT id FROM tasks {filter_sql} ORDER BY priority, due_ms, id LIMIT {limit_param})
                 ORDER BY priority, due_ms, id"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for b in binds {
                query = match b {
                    Bind::Text(t) => query.bind(t),
                    Bind::Int(i) => query.bind(i),
                };
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut items = rows.iter().map(task_row).collect::<Result<Vec<_>, _>>()?;
            let next = if items.len() as i64 > limit {
                items.truncate(limit as usize);
                items
                    .last()
                    .map(|t| Cursor { priority: t.priority, due_ms: t.due_ms, id: t.id.clone() }.encode())
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    /// Open or claimed tasks past due and not yet escalated: (task, customer, version).
    pub async fn overdue_unescalated(&self, now_ms: i64, limit: i64) -> Result<Vec<TaskRow>, StoreError> {
        bounded("finding overdue tasks", async {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ('open', 'claimed') AND escalated = 0
                 AND due_ms < $1 ORDER BY due_ms LIMIT $2"
            );
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(now_ms).bind(limit).fetch_all(&self.pool).await?;
            Ok(rows.iter().map(task_row).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Claimed or contacted tasks (held by someone), for the idle-claim check.
    pub async fn held_tasks(&self, limit: i64) -> Result<Vec<TaskRow>, StoreError> {
        bounded("finding held tasks", async {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE assignee IS NOT NULL AND status <> 'resolved' LIMIT $1"
            );
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(limit).fetch_all(&self.pool).await?;
            Ok(rows.iter().map(task_row).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Outcomes of resolved tasks, per rule.
    pub async fn rule_outcomes(&self) -> Result<Vec<RuleOutcomes>, StoreError> {
        bounded("reading rule outcomes", async {
            let rows = sqlx::query(
                "SELECT rule, outcome, COUNT(*) FROM rule_outcomes GROUP BY rule, outcome ORDER BY rule, outcome",
            )
            .fetch_all(&self.pool)
            .await?;
            let mut out: Vec<RuleOutcomes> = Vec::new();
            for r in &rows {
                let rule: String = r.try_get(0)?;
                let outcome: String = r.try_get(1)?;
                let n: i64 = r.try_get(2)?;
                match out.last_mut() {
                    Some(last) if last.rule == rule => last.outcomes.push((outcome, n)),
                    _ => out.push(RuleOutcomes { rule, outcomes: vec![(outcome, n)] }),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Open tasks per queue and how many of them are overdue at `now_ms`.
    pub async fn queue_counts(&self, now_ms: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        bounded("counting open tasks", async {
            let rows = sqlx::query(
                "SELECT queue, COUNT(*), SUM(CASE WHEN status IN ('open', 'claimed') AND due_ms < $1 THEN 1 ELSE 0 END)
                 FROM tasks WHERE status <> 'resolved' GROUP BY queue ORDER BY queue",
            )
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<Option<i64>, _>(2)?.unwrap_or(0))))
                .collect::<Result<_, sqlx::Error>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor { priority: 2, due_ms: 1_780_000_000_000, id: "tsk_00ff".into() };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "zz", "abc", "3a3a", "313a323a", &"41".repeat(400)] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    use crate::engine::{Engine, EngineConfig};
    use crate::event::decode;
    use crate::ingest::generator::{generate, StreamSpec};
    use crate::rules::RuleSet;

    /// The task changes the default rules make of a generated stream with its planted
    /// incidents (several versions of some tasks), ten times under different task ids: more
    /// changes than one statement carries.
    fn changes() -> Vec<TaskChange> {
        let rules = RuleSet::load_dir(std::path::Path::new("rules")).expect("default rules");
        let engine = Engine::new(EngineConfig::default());
        let spec = StreamSpec { customers: 500, days: 30, seed: 11, scenarios: true, noise: false };
        let lines = generate(&spec).lines;
        let once: Vec<TaskChange> = lines
            .iter()
            .flat_map(|l| engine.process(&rules, &decode(l.as_bytes()).expect("valid")).changes)
            .collect();
        (0..10)
            .flat_map(|copy| {
                once.iter().map(move |c| {
                    let mut c = c.clone();
                    c.task.id = format!("{}-{copy}", c.task.id);
                    c.audit.task_id.clone_from(&c.task.id);
                    c
                })
            })
            .collect()
    }

    /// One batch in a few multi-row statements stores what one statement per row did: the latest
    /// version of each task, every version with one audit record and one outbox row; written
    /// again (re-processed after a restore), nothing is added or doubled.
    #[tokio::test]
    async fn a_batch_is_stored_whole_and_a_second_write_adds_nothing() {
        let changes = changes();
        let versions = changes.len() as i64;
        let mut latest: HashMap<&str, u32> = HashMap::new();
        for c in &changes {
            let v = latest.entry(&c.task.id).or_default();
            *v = (*v).max(c.task.version);
        }
        assert!(changes.len() > 2 * super::super::rows_per_statement(14), "{} changes", changes.len());
        assert!(latest.len() < changes.len(), "some tasks have several versions");
        let dir = std::env::temp_dir().join(format!("callahead-tasks-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store =
            TaskStore::connect(&format!("sqlite://{}", dir.join("t.db").display())).await.expect("store");
        let count = |sql: &'static str| {
            let pool = store.pool.clone();
            async move {
                sqlx::query(sql).fetch_one(&pool).await.expect(sql).try_get::<i64, _>(0).expect("a count")
            }
        };
        for round in 0..2 {
            store.write(&changes, &[]).await.expect("written");
            assert_eq!(count("SELECT COUNT(*) FROM task_versions").await, versions, "round {round}");
            assert_eq!(count("SELECT COUNT(*) FROM audit").await, versions, "round {round}");
            assert_eq!(count("SELECT COUNT(*) FROM tasks").await, latest.len() as i64, "round {round}");
            // The relay publishes and deletes outbox rows; a version stored before is not put
            // back (it would be published twice).
            let outbox = if round == 0 { versions } else { 0 };
            assert_eq!(count("SELECT COUNT(*) FROM outbox").await, outbox, "round {round}");
            sqlx::query("DELETE FROM outbox").execute(&store.pool).await.expect("relayed");
        }
        for (id, version) in &latest {
            let (stored, _) = store.task(id).await.expect("read").expect("stored");
            assert_eq!(stored, i64::from(*version), "{id}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
