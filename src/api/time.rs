//! RFC 3339 timestamps on the wire, limited to years 0001-9999 so that they
//! store and sort as the text SQLite compares.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

use super::input::Checked;

const EXPECTED: &str = "must be an RFC 3339 date-time in years 0001-9999, such as 2026-11-20T08:30:00Z \
(in a query string, write + as %2B)";

/// Parses an RFC 3339 date-time within the supported years.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .ok()?
        .with_timezone(&Utc);
    (1..=9999).contains(&at.year()).then_some(at)
}

/// Deserialises an optional date-time, with a message that says what is expected.
pub fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(EXPECTED)),
    }
}

/// A date-time field as [`checked`] reads it.
pub type CheckedTime = Checked<DateTime<Utc>>;

/// Like [`optional`], but a value that is not a date-time is kept as a
/// problem rather than failing the whole body: validation then names it
/// with the other fields' problems.
pub fn checked<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<CheckedTime>, D::Error> {
    Ok(
        Option::<serde_json::Value>::deserialize(deserializer)?.map(|value| {
            value
                .as_str()
                .and_then(parse)
                .map_or_else(|| Checked::Invalid(EXPECTED.into()), Checked::Valid)
        }),
    )
}

/// Like [`checked`], telling an explicit `null` (`Some(None)`) from absence.
pub fn checked_nullable<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<CheckedTime>>, D::Error> {
    checked(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_converted_and_years_are_bounded() {
        assert_eq!(
            parse("2026-11-20T09:30:00+01:00").unwrap().to_rfc3339(),
            "2026-11-20T08:30:00+00:00"
        );
        assert!(
            parse("9999-12-31T23:59:59-05:00").is_none(),
            "year 10000 in UTC"
        );
        assert!(
            parse("0000-01-01T00:00:00+01:00").is_none(),
            "year 0 in UTC"
        );
        assert!(parse("2026-11-20").is_none());
    }
}
