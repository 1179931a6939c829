//! Hand-written statements that PostgreSQL prepares once per connection.
//!
//! Diesel caches prepared statements for its query builder, but never for `sql_query` (it
//! cannot know the text is fixed), so every `sql_query` is parsed and planned again. The
//! statements on the hot path are fixed texts whose arrays carry any number of rows; this
//! wrapper tells Diesel so, and the text becomes the cache key.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;
use std::marker::PhantomData;

/// One bound value of a [`Prepared`] statement.
trait Bind {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Value<ST, V> {
    value: V,
    _type: PhantomData<ST>,
}

impl<ST, V> Bind for Value<ST, V>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(&self.value)
    }
}

/// A statement of fixed text with `$1`, `$2`, ... placeholders (a number may appear more than
/// once), prepared on first use and reused on every later one.
#[must_use = "a statement runs only when executed or loaded"]
pub(crate) struct Prepared<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn Bind + 'a>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub(crate) fn bind<ST: 'a, V: ToSql<ST, Pg> + 'a>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
    {
        self.binds.push(Box::new(Value::<ST, V> {
            value,
            _type: PhantomData,
        }));
        self
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Each `$n` in the text is replaced by a fresh placeholder bound to value n, so the
        // text Diesel sends (and caches by) is the same on every call.
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let number: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| {
                diesel::result::Error::QueryBuilderError(
                    format!("a `$` without a parameter number in: {}", self.sql).into(),
                )
            })?;
            let bind = number
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("${number} is not bound in: {}", self.sql).into(),
                    )
                })?;
            bind.push(&mut out)?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::sql_types::{BigInt, Text};

    use super::*;

    #[test]
    fn placeholders_are_renumbered_in_order_and_may_repeat() {
        let q = Prepared::new("SELECT $2::text, $1 + $1 FROM t WHERE a = $2")
            .bind::<BigInt, _>(7_i64)
            .bind::<Text, _>("x");
        let sql = debug_query::<Pg, _>(&q).to_string();
        assert!(
            sql.starts_with("SELECT $1::text, $2 + $3 FROM t WHERE a = $4"),
            "{sql}"
        );
        assert!(sql.contains("[\"x\", 7, 7, \"x\"]"), "{sql}");
    }
}
