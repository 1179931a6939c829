//! The embedded migrations, applied under the write lock so that several processes starting
//! at once on one file do not race each other.

use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::SqliteStoreError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

pub(crate) fn run_pending(conn: &mut SqliteConnection) -> Result<Vec<String>, SqliteStoreError> {
    conn.immediate_transaction(|conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| SqliteStoreError::Migration(e.to_string()))
    })
}

/// How many migrations of this build the file lacks.
pub(crate) fn pending(conn: &mut SqliteConnection) -> Result<usize, SqliteStoreError> {
    conn.pending_migrations(MIGRATIONS)
        .map(|pending| pending.len())
        .map_err(|e| SqliteStoreError::Migration(e.to_string()))
}
