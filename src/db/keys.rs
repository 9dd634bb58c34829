//! Admin API keys, stored as hashes.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::schema::api_keys;
use super::{StoreError, StoreResult};

/// A stored key, without its secret.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: i32,
    pub name: String,
    pub prefix: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// Space-separated scopes (see [`crate::auth::Scope`]).
    pub scopes: String,
}

/// Stores a new key under its hash; returns its id.
pub fn insert(
    conn: &mut SqliteConnection,
    name: &str,
    prefix: &str,
    hash: &[u8],
    scopes: &str,
) -> StoreResult<i32> {
    Ok(diesel::insert_into(api_keys::table)
        .values((
            api_keys::name.eq(name),
            api_keys::scopes.eq(scopes),
            api_keys::prefix.eq(prefix),
            api_keys::key_hash.eq(hash),
            api_keys::created_at.eq(Utc::now().naive_utc()),
        ))
        .returning(api_keys::id)
        .get_result(conn)?)
}

/// The stored hash and scopes of the live (not revoked) key with this hash.
pub fn find_live(
    conn: &mut SqliteConnection,
    hash: &[u8],
) -> StoreResult<Option<(Vec<u8>, String)>> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(hash))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::key_hash, api_keys::scopes))
        .get_result(conn)
        .optional()?)
}

/// Every key, oldest first.
pub fn list(conn: &mut SqliteConnection) -> StoreResult<Vec<KeyRow>> {
    Ok(api_keys::table
        .order(api_keys::id)
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Revokes a key by id; revoking twice is harmless.
pub fn revoke(conn: &mut SqliteConnection, id: i32) -> StoreResult<()> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(api_keys::table.find(id))).get_result(conn)?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now().naive_utc()))
    .execute(conn)?;
    Ok(())
}
