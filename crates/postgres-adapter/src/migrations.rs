//! The embedded migrations, applied under an advisory lock so that several servers starting
//! at once do not race each other.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::PgStoreError;
use crate::redaction::Secrets;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Where the migrations live in the repository, for tools that fingerprint them.
pub const MIGRATIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres");

/// An arbitrary key shared by every `ticketctl` process: "migrations are being applied".
const MIGRATION_LOCK_KEY: i64 = 0x0074_6963_6b65_7473;

pub(crate) fn run_pending(conn: &mut PgConnection) -> Result<Vec<String>, PgStoreError> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| PgStoreError::Migration(e.to_string()));
    let unlocked =
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(conn);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

/// How many migrations of this build the database lacks.
pub(crate) fn pending(conn: &mut PgConnection) -> Result<usize, PgStoreError> {
    conn.pending_migrations(MIGRATIONS)
        .map(|pending| pending.len())
        .map_err(|e| PgStoreError::Migration(e.to_string()))
}

/// Applies the pending migrations on a connection of its own, then closes it: for tools that
/// must leave no session behind (a template database cannot be copied while in use).
///
/// # Errors
/// [`PgStoreError::Connect`] or [`PgStoreError::Migration`].
pub fn migrate_url(url: &str) -> Result<Vec<String>, PgStoreError> {
    let mut conn = PgConnection::establish(url)
        .map_err(|e| PgStoreError::Connect(Secrets::of(url).scrub(&e.to_string())))?;
    run_pending(&mut conn)
}
