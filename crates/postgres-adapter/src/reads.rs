//! How this store runs the shared statements (`store_sql::Runner`): values bound as
//! PostgreSQL types (arrays, `timestamptz`), every statement prepared once per connection.
//! The reads themselves are `store_sql::SqlReads`: each is one statement, so it sees one
//! consistent snapshot, takes no lock and waits for no writer.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::store::Stored;
use domain::{Event, Readiness, Reservation, ReservationId};
use store_sql::{Bind, Dialect, Runner};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::statement::Prepared;
use crate::store::Session;

/// The ids, as PostgreSQL binds them.
pub(crate) fn uuids(ids: &[ReservationId]) -> Vec<Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}

impl Runner for Session<'_> {
    type Backend = Pg;
    type EventRow = EventRow;
    type ReservationRow = ReservationRow;
    const DIALECT: Dialect = Dialect::Postgres;

    fn load<R: QueryableByName<Pg> + 'static>(
        &mut self,
        sql: &'static str,
        binds: Vec<Bind<'_>>,
    ) -> Stored<Vec<R>> {
        let mut statement = Prepared::new(sql);
        for value in binds {
            statement = match value {
                Bind::Int8(v) => statement.bind::<BigInt, _>(v),
                Bind::Int4(v) => statement.bind::<Int4, _>(v),
                Bind::OptInt4(v) => statement.bind::<Nullable<Int4>, _>(v),
                Bind::OptText(v) => statement.bind::<Nullable<Text>, _>(v),
                Bind::Text(v) => statement.bind::<Text, _>(v.into_owned()),
                Bind::At(v) => statement.bind::<Timestamptz, _>(v),
                Bind::Int8s(v) => statement.bind::<Array<BigInt>, _>(v),
                Bind::Reservations(v) => statement.bind::<Array<SqlUuid>, _>(uuids(&v)),
            };
        }
        Ok(statement.load(self.conn).map_err(PgStoreError::from)?)
    }

    fn event(row: EventRow) -> Stored<Event> {
        Ok(row.into())
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
}
