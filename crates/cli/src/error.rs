//! Errors of the command line.
//!
//! Error policy: every failure ends the process with exit code 1 and one line on stderr that
//! names the cause (a wrong URL, an unreachable database, a taken port) — never a panic or a
//! backtrace. Usage errors are clap's and exit with 2.

use domain::DomainError;
use postgres_adapter::PgStoreError;
use sqlite_adapter::SqliteStoreError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The PostgreSQL store could not be opened or migrated.
    #[error(transparent)]
    Postgres(#[from] PgStoreError),
    /// The SQLite store could not be opened or migrated.
    #[error(transparent)]
    Sqlite(#[from] SqliteStoreError),
    /// A use case failed.
    #[error("{0}")]
    Domain(#[from] DomainError),
    /// A flag's value was refused after parsing.
    #[error("{0}")]
    Config(String),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("server failed: {0}")]
    Server(std::io::Error),
    /// `bench --verify` found a problem.
    #[error("verification failed: {0}")]
    Verify(String),
    /// An event's check found a problem: the events, as a phrase (`event 5`, `2 of 40 events`).
    #[error("{0} inconsistent: see the printed audit")]
    Inconsistent(String),
}

impl CliError {
    /// The message on one line: libpq's messages span several.
    pub fn one_line(&self) -> String {
        self.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}
