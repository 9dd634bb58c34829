//! Helpers shared by the admin request types.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use crate::content;
use crate::error::{ApiError, AppResult, FieldError, Location};
use crate::state::AppState;

/// Deserialises a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Deserialises a field that may be absent (`None`) or set, but not null:
/// for fields a patch may change but never clear.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A field of a body whose value may be of the wrong kind: kept with what is
/// wrong with it, rather than failing the whole body at parsing, so that
/// validation names it together with the other fields' problems.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked<T> {
    Valid(T),
    /// What is wrong, as a field error's detail.
    Invalid(String),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Checked<T> {
    /// Any JSON value; one `T` does not read is kept as its problem.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(serde_json::from_value(value).map_or_else(
            |_| Checked::Invalid("must be one of the values the spec lists".into()),
            Checked::Valid,
        ))
    }
}

/// Longest name of a category, tag or author.
pub const MAX_NAME: usize = 100;

/// The names [`slug_and_name`] accepts, as a pattern for the spec: after
/// trimming white space (Unicode's, spelled out, as engines disagree on
/// `\s`), something is left, and it has no control characters other than
/// tab, line feed and carriage return (`\p{Cc}`, spelled out too).
pub const NAME_PATTERN: &str = concat!(
    "^[\\t\\n\\u000B\\u000C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*",
    "[^\\t\\n\\r \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000",
    "\\u0000-\\u001F\\u007F-\\u009F]",
    "[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*",
    "[\\t\\n\\u000B\\u000C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$",
);

/// The spec's schema of a name (see [`NAME_PATTERN`]).
pub fn name_schema() -> Object {
    name_object(
        Type::String.into(),
        "Display name: 1 to 100 characters, not all white space, without \
         control characters other than tab and line breaks.",
    )
}

/// [`name_schema`] for a patch, where the name may be left out.
pub fn optional_name_schema() -> Object {
    name_object(
        SchemaType::Type(Type::String),
        "New display name, as for a new one.",
    )
}

/// Written here rather than as doc comments: `schema_with` replaces those.
fn name_object(schema_type: SchemaType, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(MAX_NAME))
        .pattern(Some(NAME_PATTERN))
        .build()
}

/// Checks a name and an optional slug; derives the slug from the name.
pub fn slug_and_name(
    slug: Option<String>,
    name: Option<String>,
    errors: &mut Vec<FieldError>,
) -> (Option<String>, Option<String>) {
    let name = name.map(|n| n.trim().to_string());
    if let Some(name) = &name {
        if name.is_empty() {
            errors.push(FieldError::new(
                Location::Body,
                "name",
                "must have a character other than white space",
            ));
        } else if name.chars().count() > MAX_NAME {
            errors.push(FieldError::new(
                Location::Body,
                "name",
                format!("must be at most {MAX_NAME} characters"),
            ));
        } else if content::has_control(name) {
            errors.push(FieldError::new(
                Location::Body,
                "name",
                "must not contain control characters",
            ));
        }
    }
    let slug = slug.map(|s| s.trim().to_string());
    if let Some(problem) = slug
        .as_deref()
        .and_then(|s| content::slug_problem(s, content::MAX_TAXONOMY_SLUG))
    {
        errors.push(FieldError::new(Location::Body, "slug", problem));
    }
    (slug, name)
}

/// Longest author bio.
pub const MAX_BIO: usize = 2000;

/// A trimmed bio (blank is none), checked against the limits.
pub fn check_bio(bio: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let bio = bio
        .map(|bio| bio.trim().to_string())
        .filter(|bio| !bio.is_empty())?;
    if bio.chars().count() > MAX_BIO {
        errors.push(FieldError::new(
            Location::Body,
            "bio",
            format!("must be at most {MAX_BIO} characters"),
        ));
    }
    if content::has_control(&bio) {
        errors.push(FieldError::new(
            Location::Body,
            "bio",
            "must not contain control characters",
        ));
    }
    Some(bio)
}

/// Checks a category's parent slug, when there is one.
pub fn check_parent(parent: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(problem) = parent.and_then(|p| content::slug_problem(p, content::MAX_TAXONOMY_SLUG))
    {
        errors.push(FieldError::new(Location::Body, "parent", problem));
    }
}

/// The given slug, or one derived from the name.
pub fn derive_slug(
    slug: Option<String>,
    name: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> String {
    let slug = slug.unwrap_or_else(|| content::name_slug(name.unwrap_or_default()));
    if slug.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            Location::Body,
            "name",
            "must contain a letter or digit (the slug is derived from it)",
        ));
    }
    slug
}

/// `Ok` when no problem was found, else a 422 with all of them.
pub fn done(errors: Vec<FieldError>) -> AppResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// A 201 with a `Location` header naming `path` as clients reach it.
pub fn created(state: &AppState, path: &str, body: impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, state.feed_links.public_path(path)))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_name_pattern_accepts_exactly_the_names_the_server_does() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        let names = [
            "World",
            "  Économie ",
            "日本",
            "Line\nbreak\tand tab",
            "🙂",
            "",
            "   ",
            "\t\n",
            "bell\u{7}",
            "nul\u{0}",
            "delete\u{7f}",
            "c1 \u{85}",
            "\u{85}c1",
            "a\u{85}b",
            "\u{1c}World",
            "\u{3000}全角\u{3000}",
            "no\u{a0}break",
            "vertical\u{b}tab",
        ];
        for name in names {
            let mut errors = Vec::new();
            slug_and_name(None, Some(name.to_string()), &mut errors);
            assert_eq!(
                pattern.is_match(name),
                errors.is_empty(),
                "{name:?}: {errors:?}"
            );
        }
    }
}
