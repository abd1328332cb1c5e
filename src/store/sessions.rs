//! The console's sessions: an opaque random id in the browser's cookie, only its SHA-256 here,
//! with who it belongs to and when it began and was last used. Ended server-side at logout
//! (and when the holder's tokens are revoked), so a copied cookie stops working.

use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// A live console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub name: String,
    pub role: String,
    pub created_ms: i64,
    pub last_ms: i64,
}

impl TaskStore {
    /// Stores a new session under the hash of its id.
    pub async fn create_session(
        &self,
        hash: &str,
        name: &str,
        role: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        bounded("creating a session", async {
            sqlx::query(
                "INSERT INTO console_sessions (hash, name, role, created_ms, last_ms) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(hash)
            .bind(name)
            .bind(role)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// The session under `hash`, if it exists.
    pub async fn session(&self, hash: &str) -> Result<Option<SessionRow>, StoreError> {
        bounded("reading a session", async {
            let row =
                sqlx::query("SELECT name, role, created_ms, last_ms FROM console_sessions WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row
                .map(|r| -> Result<SessionRow, sqlx::Error> {
                    Ok(SessionRow {
                        name: r.try_get(0)?,
                        role: r.try_get(1)?,
                        created_ms: r.try_get(2)?,
                        last_ms: r.try_get(3)?,
                    })
                })
                .transpose()?)
        })
        .await
    }

    /// Notes that a session was used now.
    pub async fn touch_session(&self, hash: &str, now_ms: i64) -> Result<(), StoreError> {
        bounded("touching a session", async {
            sqlx::query("UPDATE console_sessions SET last_ms = $2 WHERE hash = $1")
                .bind(hash)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Ends a session.
    pub async fn end_session(&self, hash: &str) -> Result<(), StoreError> {
        bounded("ending a session", async {
            sqlx::query("DELETE FROM console_sessions WHERE hash = $1")
                .bind(hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Ends every session of `name` (their tokens were revoked); returns how many.
    pub async fn end_sessions_of(&self, name: &str) -> Result<u64, StoreError> {
        bounded("ending sessions", async {
            Ok(sqlx::query("DELETE FROM console_sessions WHERE name = $1")
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }
}
