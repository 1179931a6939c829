//! Timestamps as fixed-width UTC text, so that text order is time order in SQL.

use chrono::{DateTime, Utc};

use crate::error::SqliteStoreError;

pub(crate) fn to_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn from_text(s: &str) -> Result<DateTime<Utc>, SqliteStoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| SqliteStoreError::CorruptRow(format!("timestamp {s:?}: {e}")))
}

pub(crate) fn from_optional(s: Option<&str>) -> Result<Option<DateTime<Utc>>, SqliteStoreError> {
    s.map(from_text).transpose()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn text_round_trips_and_sorts_like_time() {
        let t = DateTime::from_timestamp(1_800_000_000, 5_000).unwrap_or_default();
        assert_eq!(to_text(t), "2027-01-15T08:00:00.000005Z");
        assert_eq!(from_text(&to_text(t)).ok(), Some(t));
        let later = t + TimeDelta::microseconds(995);
        assert!(to_text(t) < to_text(later));
        assert!(to_text(later) < to_text(t + TimeDelta::seconds(1)));
    }
}
