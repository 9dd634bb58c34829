//! Helpers shared by the admin request types.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::{Deserialize, Deserializer, Serialize};

use crate::content;
use crate::error::{ApiError, AppResult, FieldError, Location};

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

/// Longest name of a category, tag or author.
pub const MAX_NAME: usize = 100;

/// Checks a name and an optional slug; derives the slug from the name.
pub fn slug_and_name(
    slug: Option<String>,
    name: Option<String>,
    errors: &mut Vec<FieldError>,
) -> (Option<String>, Option<String>) {
    let name = name.map(|n| n.trim().to_string());
    if let Some(name) = &name {
        if name.is_empty() || name.chars().count() > MAX_NAME {
            errors.push(FieldError::new(
                Location::Body,
                "name",
                format!("must be 1 to {MAX_NAME} characters"),
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

/// The given slug, or one derived from the name.
pub fn derive_slug(
    slug: Option<String>,
    name: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> String {
    let slug = slug.unwrap_or_else(|| content::slugify(name.unwrap_or_default()));
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

/// A 201 with a `Location` header.
pub fn created(location: String, body: impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}
