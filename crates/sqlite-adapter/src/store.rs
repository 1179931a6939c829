//! The ports on SQLite. A write takes this process's write turn, then a connection, then
//! SQLite's write lock (`BEGIN IMMEDIATE`); a read only takes a connection. Both are seen
//! through one [`Session`].

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::sqlite::SqliteConnection;
use domain::store::{ReadStore, ReadWork, Work, WriteStore};
use domain::DomainError;

use crate::error::SqliteStoreError;
use crate::pool::SqliteStore;

/// A connection seen through the domain's ports: its reads (`crate::reads`) and, inside a
/// transaction, the primitives of a unit of work (`crate::unit_of_work`).
pub(crate) struct Session<'c> {
    pub(crate) conn: &'c mut SqliteConnection,
}

impl WriteStore for SqliteStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let _turn = self.write_turn();
        let mut conn = self.conn()?;
        AnsiTransactionManager::begin_transaction_sql(&mut *conn, "BEGIN IMMEDIATE")
            .map_err(SqliteStoreError::from)?;
        if let Err(err) = work(&mut store_sql::SqlWork(&mut Session { conn: &mut conn })) {
            let _ = AnsiTransactionManager::rollback_transaction(&mut *conn);
            return Err(err);
        }
        // SQLite commits atomically or not at all, and reports which.
        AnsiTransactionManager::commit_transaction(&mut *conn)
            .map_err(|e| DomainError::from(SqliteStoreError::from(e)))
    }
}

impl ReadStore for SqliteStore {
    fn read(&self, work: &mut ReadWork<'_>) -> Result<(), DomainError> {
        let mut conn = self.conn()?;
        work(&mut store_sql::SqlReads(&mut Session { conn: &mut conn }))
    }
}
