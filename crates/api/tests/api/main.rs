//! HTTP feature tests: the real actix app on a real socket, on a real PostgreSQL database of
//! its own per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod helpers;

mod concurrency;
mod envelope;
mod events;
mod group_commit;
mod purchase;
mod reservations;
mod reserve;
