//! `keys`: the admin API keys of a store.

use anyhow::Context;

use super::{open_existing, read_existing};
use crate::auth::{self, Scope};
use crate::config::Config;
use crate::db::{StoreError, keys};

/// The longest name a key may have.
const MAX_NAME: usize = 100;

/// Creates a key named `name` with `scopes` (all of them when empty) and
/// prints it: the only time it is shown, as only its hash is stored.
pub fn create(config: &Config, name: &str, scopes: Vec<Scope>) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    let name = name.trim();
    if name.is_empty() {
        anyhow::bail!("give the key a name, e.g. `frontpage keys create importer`");
    }
    // Shown in one row of `keys list`.
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        anyhow::bail!(
            "a key's name is one line of at most {MAX_NAME} characters, e.g. `frontpage keys create importer`"
        );
    }
    let scopes = if scopes.is_empty() {
        Scope::ALL.to_vec()
    } else {
        scopes
    };
    let scopes = Scope::list_to_string(&scopes);
    let key = auth::generate_key();
    let (stored, prefix, hash, granted) = (
        name.to_string(),
        auth::shown_prefix(&key),
        auth::hash_key(&key),
        scopes.clone(),
    );
    let id =
        db.write_blocking(move |conn| keys::insert(conn, &stored, &prefix, &hash, &granted))?;
    println!("{key}");
    eprintln!("created key {id} ({name}, scopes: {scopes}); this is the only time it is shown");
    Ok(())
}

/// Prints every key as a table, never its secret.
pub fn list(config: &Config) -> anyhow::Result<()> {
    let mut conn = read_existing(config)?;
    println!(
        "{:<5} {:<12} {:<20} {:<20} {:<18} name",
        "id", "prefix", "created", "revoked", "scopes"
    );
    for key in keys::list(&mut conn)? {
        let revoked = key
            .revoked_at
            .map_or_else(|| "-".to_string(), |at| at.format("%F %T").to_string());
        println!(
            "{:<5} {:<12} {:<20} {:<20} {:<18} {}",
            key.id,
            key.prefix,
            key.created_at.format("%F %T"),
            revoked,
            key.scopes,
            key.name
        );
    }
    Ok(())
}

/// Revokes key `id`; it stops working at once.
pub fn revoke(config: &Config, id: i32) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    match db.write_blocking(move |conn| keys::revoke(conn, id)) {
        Err(StoreError::NotFound) => {
            anyhow::bail!("no key has the id {id} (see `frontpage keys list`)")
        }
        other => other.with_context(|| format!("revoking key {id}"))?,
    }
    println!("revoked key {id}");
    Ok(())
}
