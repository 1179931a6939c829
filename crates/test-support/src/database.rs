//! Fresh databases from a migrated template.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::OnceLock;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::url::with_database;

/// The URL of the PostgreSQL server the tests use (see the crate docs), found once per process.
pub fn server_url() -> &'static str {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    match URL.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => crate::cluster::local_cluster_url()
            .or_else(|local| container_url().map_err(|docker| format!("{local}; {docker}"))),
    }) {
        Ok(url) => url,
        Err(why) => panic!(
            "no PostgreSQL server for the tests: {why}\n\
             Set DATABASE_URL to a server where this user may create databases \
             (e.g. postgres://postgres@127.0.0.1:5432/postgres), or install the PostgreSQL \
             server binaries (Debian: apt-get install postgresql) so the tests can start a \
             throwaway cluster, or run the tests with `--features test-support/docker` and a \
             Docker engine, or run `just db-up` to start one with Docker Compose."
        ),
    }
}

#[cfg(feature = "docker")]
fn container_url() -> Result<String, String> {
    crate::container::postgres_url()
}

#[cfg(not(feature = "docker"))]
fn container_url() -> Result<String, String> {
    Err("tests built without the docker feature".into())
}

/// A hash of every file under `dir`, so a changed migration gets a new template.
pub fn migrations_fingerprint(dir: &str) -> String {
    fn walk(path: &Path, hasher: &mut DefaultHasher) {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            entry.file_name().hash(hasher);
            if entry.is_dir() {
                walk(&entry, hasher);
            } else if let Ok(bytes) = std::fs::read(&entry) {
                bytes.hash(hasher);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    walk(Path::new(dir), &mut hasher);
    format!("{:016x}", hasher.finish())
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    ready: bool,
}

fn admin() -> PgConnection {
    PgConnection::establish(server_url())
        // Not the URL itself: a CI log must not show a password in DATABASE_URL.
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test server (DATABASE_URL, or the throwaway cluster): {e}"
            )
        })
}

/// Makes sure `template` exists and is fully migrated. Serialized across processes by an
/// advisory lock; readiness is marked by the template flag, set only after migrating.
fn ensure_template(template: &str, migrate: &dyn Fn(&str) -> Result<(), String>) {
    let mut conn = admin();
    let key = {
        let mut h = DefaultHasher::new();
        template.hash(&mut h);
        i64::from_ne_bytes(h.finish().to_ne_bytes())
    };
    let run = |conn: &mut PgConnection, sql: &str| {
        diesel::sql_query(sql)
            .execute(conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    run(&mut conn, &format!("SELECT pg_advisory_lock({key})"));
    let ready = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate) AS ready",
    )
    .bind::<Text, _>(template)
    .get_result::<Exists>(&mut conn)
    .is_ok_and(|r| r.ready);
    if !ready {
        run(
            &mut conn,
            &format!("DROP DATABASE IF EXISTS \"{template}\" WITH (FORCE)"),
        );
        run(&mut conn, &format!("CREATE DATABASE \"{template}\""));
        migrate(&with_database(server_url(), template))
            .unwrap_or_else(|e| panic!("migrating the template database {template}: {e}"));
        run(
            &mut conn,
            &format!("ALTER DATABASE \"{template}\" WITH IS_TEMPLATE true"),
        );
    }
    run(&mut conn, &format!("SELECT pg_advisory_unlock({key})"));
}

/// A database of its own for one test, dropped when this value is.
pub struct TestDatabase {
    name: String,
    url: String,
}

/// The name only: the URL may hold a password.
impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// A fresh copy of the template migrated by `migrate` from the migrations in
    /// `migrations_dir` (the directory only names the template: a changed migration makes a new
    /// one). `migrate` must close its connection before returning.
    pub fn create(migrations_dir: &str, migrate: &dyn Fn(&str) -> Result<(), String>) -> Self {
        let template = format!("ticketing_tpl_{}", migrations_fingerprint(migrations_dir));
        ensure_template(&template, migrate);
        let name = format!("ticketing_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin();
        let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let url = with_database(server_url(), &name);
        Self { name, url }
    }

    /// An empty database, not migrated: for testing the migrations themselves.
    pub fn empty() -> Self {
        let name = format!("ticketing_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin();
        let sql = format!("CREATE DATABASE \"{name}\"");
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let url = with_database(server_url(), &name);
        Self { name, url }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(server_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}
