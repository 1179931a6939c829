//! How this store runs the shared statements (`store_sql::Runner`): lists bound as one JSON
//! text whatever their length, instants as fixed-width UTC text. The reads themselves are
//! `store_sql::SqlReads`: each is one statement, so it sees one consistent snapshot; in WAL
//! mode it runs beside the writer and waits for none.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use domain::store::Stored;
use domain::{Event, Readiness, Reservation};
use store_sql::{Bind, Dialect, Runner};

use crate::error::SqliteStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::store::Session;
use crate::time::to_text;

/// A JSON array of the values, bound as one text whatever their number (SQLite allows at
/// most 32,766 parameters in a statement).
pub(crate) fn json_array<T: std::fmt::Display>(
    values: impl Iterator<Item = T>,
    quoted: bool,
) -> String {
    let items: Vec<String> = values
        .map(|v| {
            if quoted {
                format!("\"{v}\"")
            } else {
                v.to_string()
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

impl Runner for Session<'_> {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Backend = Sqlite;
    type EventRow = EventRow;
    type ReservationRow = ReservationRow;

    fn event(row: EventRow) -> Stored<Event> {
        let event: Result<Event, SqliteStoreError> = row.try_into();
        Ok(event?)
    }

    fn reservation(row: ReservationRow) -> Stored<Reservation> {
        Ok(Reservation::try_from(row)?)
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        Ok(Readiness {
            pending_migrations: crate::migrations::pending(self.conn)?,
            webhook_backlog: 0,
        })
    }

    fn load<R: QueryableByName<Sqlite> + 'static>(
        &mut self,
        sql: &'static str,
        binds: Vec<Bind<'_>>,
    ) -> Stored<Vec<R>> {
        let mut statement = diesel::sql_query(sql).into_boxed::<Sqlite>();
        for value in binds {
            // SQLite stores integers and text: everything else is bound as its text.
            let text = match value {
                Bind::Int8(v) => {
                    statement = statement.bind::<BigInt, _>(v);
                    continue;
                }
                Bind::Int4(v) => {
                    statement = statement.bind::<Integer, _>(v);
                    continue;
                }
                Bind::OptInt4(v) => {
                    statement = statement.bind::<Nullable<Integer>, _>(v);
                    continue;
                }
                Bind::OptText(v) => {
                    statement = statement.bind::<Nullable<Text>, _>(v);
                    continue;
                }
                Bind::Text(v) => v.into_owned(),
                Bind::At(v) => to_text(v),
                Bind::Int8s(v) => json_array(v.iter(), false),
                // Reservation ids are hyphenated UUIDs: nothing in them needs escaping in JSON.
                Bind::Reservations(v) => json_array(v.iter(), true),
            };
            statement = statement.bind::<Text, _>(text);
        }
        Ok(statement.load(self.conn).map_err(SqliteStoreError::from)?)
    }
}
