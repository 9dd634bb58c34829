//! Timestamps read as the store writes them, without chrono's format parser.
//!
//! Diesel reads a SQLite `TIMESTAMP` by trying chrono's `parse_from_str`
//! with one format after another, which reads the format string on every
//! call: about 200 ns a timestamp. An article shown from the store carries
//! three, and a Related list shows a dozen articles, so at a million
//! articles (where most reads miss every cache) parsing them took 4% of a
//! Related request (perf). Diesel writes `%F %T%.f`; that form, with `T`
//! for the space and a trailing `Z` besides, is read here by position, and
//! any other is left to Diesel, which reads it as it always did.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A `TIMESTAMP` column, read fast (see the module docs); use it as
/// `#[diesel(deserialize_as = StoredTime)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct StoredTime(NaiveDateTime);

/// A nullable `TIMESTAMP` column, read as [`StoredTime`] reads one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct MaybeStoredTime(Option<NaiveDateTime>);

impl From<StoredTime> for NaiveDateTime {
    fn from(time: StoredTime) -> Self {
        time.0
    }
}

impl From<MaybeStoredTime> for Option<NaiveDateTime> {
    fn from(time: MaybeStoredTime) -> Self {
        time.0
    }
}

impl FromSql<Timestamp, Sqlite> for StoredTime {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        if let Some(time) = parse(value.read_text()) {
            return Ok(Self(time));
        }
        // Written by something else (another tool, SQL by hand).
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Self)
    }
}

impl FromSql<Nullable<Timestamp>, Sqlite> for MaybeStoredTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        <StoredTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(|time| Self(Some(time.0)))
    }

    fn from_nullable_sql(value: Option<SqliteValue<'_, '_, '_>>) -> deserialize::Result<Self> {
        match value {
            Some(value) => Self::from_sql(value),
            None => Ok(Self(None)),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS`, with `T` for the space, then optionally `.` and
/// one to nine digits of a second, then optionally `Z`.
fn parse(text: &str) -> Option<NaiveDateTime> {
    let bytes = text.strip_suffix('Z').unwrap_or(text).as_bytes();
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b' ' | b'T')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let nanos = match &bytes[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        number(&bytes[0..4])? as i32,
        number(&bytes[5..7])?,
        number(&bytes[8..10])?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(
        number(&bytes[11..13])?,
        number(&bytes[14..16])?,
        number(&bytes[17..19])?,
        nanos,
    )?;
    Some(date.and_time(time))
}

/// Decimal digits, and nothing else, as a number (at most nine of them).
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |sum, &digit| {
        digit
            .is_ascii_digit()
            .then(|| sum * 10 + u32::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What chrono reads for the format Diesel writes.
    fn chrono(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%F %T%.f").unwrap()
    }

    #[test]
    fn reads_what_diesel_writes_as_chrono_does() {
        for text in [
            "2026-01-02 09:30:00",
            "2026-01-02 09:30:00.250",
            "2026-01-02 09:30:00.5",
            "1999-12-31 23:59:59.123456789",
            "2024-02-29 00:00:00.000001",
        ] {
            assert_eq!(parse(text), Some(chrono(text)), "{text}");
            let written = chrono(text).format("%F %T%.f").to_string();
            assert_eq!(parse(&written), Some(chrono(text)), "{written}");
        }
        assert_eq!(
            parse("2026-01-02T09:30:00.250Z"),
            Some(chrono("2026-01-02 09:30:00.250"))
        );
    }

    /// A column holding `text`, read as an article's timestamps are.
    fn column<T>(text: &str) -> deserialize::Result<T>
    where
        T: 'static + diesel::Queryable<Nullable<Timestamp>, Sqlite>,
        T::Row: diesel::deserialize::FromStaticSqlRow<Nullable<Timestamp>, Sqlite>,
    {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        diesel::select(diesel::dsl::sql::<Nullable<Timestamp>>(text))
            .get_result::<T>(&mut conn)
            .map_err(Into::into)
    }

    #[test]
    fn columns_read_what_diesel_reads_and_refuse_what_it_refuses() {
        let time = |text| column::<MaybeStoredTime>(text).unwrap().0;
        assert_eq!(
            time("'2026-01-02 09:30:00.250'"),
            Some(chrono("2026-01-02 09:30:00.250"))
        );
        assert_eq!(time("NULL"), None);
        // Not the form Diesel writes, but one it reads: left to Diesel.
        for text in [
            "'2026-01-02 09:30'",
            "'2026-01-02 09:30:00+00:00'",
            "2461043.0",
        ] {
            assert_eq!(
                time(text),
                column::<Option<NaiveDateTime>>(text).unwrap(),
                "{text}"
            );
            assert!(time(text).is_some(), "{text}");
        }
        assert!(column::<MaybeStoredTime>("'yesterday'").is_err());
    }

    #[test]
    fn anything_else_is_not_a_time() {
        for text in [
            "",
            "2026-01-02",
            "2026-01-02 09:30",
            "2026-02-30 09:30:00",
            "2026-01-02 24:00:00",
            "2026-01-02 09:30:00.",
            "2026-01-02 09:30:00.1234567890",
            "2026-01-02 09:30:00+01:00",
            "2026/01/02 09:30:00",
            "2026-01-02 09:3a:00",
            "2460000.5",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
