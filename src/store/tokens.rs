//! API tokens: only a SHA-256 hash of each token is stored (the token itself is shown once,
//! when created), with the holder's name and role. Lookup is by hash; a token's text never
//! reaches a log or a table.

use sqlx::Row;

use super::{bounded, StoreError, TaskStore};

/// A stored token (its hash, never the token).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub hash: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked: bool,
    /// When it stops working (milliseconds since the epoch); `None`: never.
    pub expires_ms: Option<i64>,
}

/// A row of `hash, name, role, created_at, revoked, expires_ms`.
fn token_row(r: &sqlx::any::AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        hash: r.try_get(0)?,
        name: r.try_get(1)?,
        role: r.try_get(2)?,
        created_at: r.try_get(3)?,
        revoked: r.try_get::<i64, _>(4)? != 0,
        expires_ms: r.try_get(5)?,
    })
}

impl TaskStore {
    /// Stores a new token's hash.
    pub async fn add_token(
        &self,
        hash: &str,
        name: &str,
        role: &str,
        created_at: &str,
        expires_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        bounded("adding a token", async {
            sqlx::query(
                "INSERT INTO api_tokens (hash, name, role, created_at, revoked, expires_ms) VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(hash)
            .bind(name)
            .bind(role)
            .bind(created_at)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// The token with this hash, if any (revoked ones too: the caller refuses them).
    pub async fn token(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        bounded("reading a token", async {
            let row = sqlx::query(
                "SELECT hash, name, role, created_at, revoked, expires_ms FROM api_tokens WHERE hash = $1",
            )
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.as_ref().map(token_row).transpose()?)
        })
        .await
    }

    /// Every stored token (hashes included: the caller shows none of them), newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        bounded("listing tokens", async {
            let rows = sqlx::query(
                "SELECT hash, name, role, created_at, revoked, expires_ms FROM api_tokens ORDER BY created_at DESC",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(token_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::Query)
        })
        .await
    }

    /// Revokes every token of `name`; returns how many.
    pub async fn revoke_tokens(&self, name: &str) -> Result<u64, StoreError> {
        bounded("revoking tokens", async {
            let done = sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE name = $1 AND revoked = 0")
                .bind(name)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
