//! Request extractors whose failures are problems, not actix's plain text:
//! query strings and JSON bodies name the bad field (keys are checked in
//! [`super::keys`]).

use std::borrow::Cow;
use std::future::{Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError, Location};

/// The name a serde error is about: its path, or the field it quotes.
fn field_name(path: &serde_path_to_error::Path, message: &str) -> String {
    let path = path.to_string();
    if path != "." {
        return path;
    }
    // Missing, unknown and duplicate fields are reported at the root, naming the field.
    message
        .split('`')
        .nth(1)
        .map_or_else(|| "(root)".to_string(), str::to_string)
}

/// A query string deserialised into `T`; failures name the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a raw query string. A parameter that does not read (of the
    /// wrong type, or a value it does not take) is left out and the rest
    /// read again, so that one answer names each of them, as one for a body
    /// does. Ranges (`limit`) are checked by handlers, once all read.
    pub fn parse(query: &str) -> Result<T, ApiError> {
        // Copied only to leave a parameter out.
        let mut query = Cow::Borrowed(query);
        let mut errors = Vec::new();
        loop {
            let deserializer =
                serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
            let error = match serde_path_to_error::deserialize(deserializer) {
                Ok(value) if errors.is_empty() => return Ok(value),
                Ok(_) => break,
                Err(error) => error,
            };
            let detail = error.inner().to_string();
            let name = field_name(error.path(), &detail);
            // Left out, a required one is missing: named once, as given.
            if errors.iter().any(|named: &FieldError| named.name == name) {
                break;
            }
            let pairs = form_urlencoded::parse(query.as_bytes());
            let rest: Vec<_> = pairs.filter(|(key, _)| *key != name).collect();
            // None left out: the problem was not one parameter's (one missing).
            let none_left_out = rest.len() == pairs.count();
            errors.push(FieldError::new(Location::Query, name, detail));
            if none_left_out || errors.len() == MOST_NAMED {
                break;
            }
            query = Cow::Owned(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(rest)
                    .finish(),
            );
        }
        Err(ApiError::InvalidParameters(errors))
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()).map(Query))
    }
}

/// Largest JSON body accepted by admin writes.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body, read (within [`JSON_BODY_LIMIT`]) but not yet parsed, so that
/// handlers can check credentials before they judge the content.
#[derive(Debug, Clone)]
pub struct JsonBody(Bytes);

impl JsonBody {
    /// Parses the body; syntax errors are 400, wrong or missing fields 422.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.0)
    }

    /// The text the body's field `name` holds, trimmed, if the body is a
    /// JSON object with a string there: what a refused body said of a
    /// field that did read.
    pub fn text_of(&self, name: &str) -> Option<String> {
        text_field(&self.0, name)
    }

    /// [`JsonBody::parse`] with [`parse_json_checked`].
    pub fn parse_checked<T: DeserializeOwned>(
        &self,
        checks: impl FnOnce(T) -> Vec<FieldError>,
    ) -> Result<T, ApiError> {
        parse_json_checked(&self.0, checks)
    }
}

/// The text `json`'s field `name` holds, trimmed, if `json` is an object
/// with a string there.
pub fn text_field(json: &[u8], name: &str) -> Option<String> {
    let object: serde_json::Value = serde_json::from_slice(json).ok()?;
    Some(object.get(name)?.as_str()?.trim().to_string())
}

/// Parses one JSON document; syntax errors are 400, wrong or missing fields
/// 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_json_checked(bytes, |_: T| Vec::new())
}

/// [`parse_json`]; and when fields of the wrong type or unknown fail it,
/// `checks` of what the rest reads as (a `T` without those fields) joins
/// them, but for the fields named already, so that one 422 names every
/// problem: the checks a handler would make of a `T` that read whole.
pub fn parse_json_checked<T: DeserializeOwned>(
    bytes: &[u8],
    checks: impl FnOnce(T) -> Vec<FieldError>,
) -> Result<T, ApiError> {
    let malformed = |error: &serde_json::Error| {
        ApiError::Malformed(format!("The body is not valid JSON: {error}."))
    };
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    if bytes.trim_ascii().is_empty() {
        return Err(ApiError::Malformed(NO_BODY.into()));
    }
    // JSON is UTF-8 (RFC 8259); serde_json would name the field holding
    // the bad bytes, as if its value were wrong rather than the body.
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::Malformed("The body is not UTF-8.".into()));
    }
    if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b != b'{')
    {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|error| malformed(&error))?;
        return Err(ApiError::Malformed(
            "The body must be a JSON object.".into(),
        ));
    }
    // Syntax first, so that broken JSON is a 400 whatever its fields.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|error| malformed(&error))?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // The syntax is sound, so whatever fails now is about a field (serde_json
    // reports a null enum as a syntax error, but it is the field that is wrong).
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|error| malformed(&error))?;
            Ok(value)
        }
        Err(error) => {
            let (mut errors, rest) = field_errors::<T>(bytes, &error);
            if let Some(rest) = rest {
                let more: Vec<FieldError> = checks(rest)
                    .into_iter()
                    .filter(|found| !errors.iter().any(|named| named.name == found.name))
                    .collect();
                errors.extend(more);
            }
            Err(ApiError::Validation(errors))
        }
    }
}

/// Most fields one answer names as of the wrong type or unknown: more
/// than an article input has.
const MOST_NAMED: usize = 16;

/// Every field of a body that `T` does not read, the first being the one
/// `first` is about: each is left out in turn and the rest read again, so
/// that one answer names them all (a wrong type, an unknown field) rather
/// than one per attempt. And the `T` the rest reads as, when it does.
fn field_errors<T: DeserializeOwned>(
    bytes: &[u8],
    first: &serde_path_to_error::Error<serde_json::Error>,
) -> (Vec<FieldError>, Option<T>) {
    let problem = |error: &serde_path_to_error::Error<serde_json::Error>| {
        let detail = error.inner().to_string();
        let detail = detail.split(" at line ").next().unwrap_or_default();
        let name = field_name(error.path(), detail);
        // The body's own key: the first segment of a path like `tags[2]`.
        let key = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => name.clone(),
        };
        (key, FieldError::new(Location::Body, name, detail))
    };
    let (mut key, error) = problem(first);
    let mut errors = vec![error];
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return (errors, None);
    };
    // Each attempt reads the whole body again: a body of thousands of
    // unknown fields must not cost thousands of reads.
    while errors.len() < MOST_NAMED
        && body
            .as_object_mut()
            .is_some_and(|fields| fields.remove(&key).is_some())
    {
        let error = match serde_path_to_error::deserialize::<_, T>(&body) {
            Ok(rest) => return (errors, Some(rest)),
            Err(error) => error,
        };
        let (next, error) = problem(&error);
        // A field left out is then missing: it was named already.
        if errors.iter().any(|named| named.name == error.name) {
            break;
        }
        errors.push(error);
        key = next;
    }
    (errors, None)
}

/// Reads a body of `content_type` (or a `+json` variant) within `limit` bytes.
pub async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    expected: &'static str,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    let accepted = match content_type.as_deref() {
        Some(found) => {
            found == expected || (expected == "application/json" && found.ends_with("+json"))
        }
        None => false,
    };
    if !accepted {
        return Err(ApiError::UnsupportedMediaType(expected));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let encoding = match req.headers().get(header::CONTENT_ENCODING) {
        None => None,
        Some(value) => {
            let name = value
                .to_str()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "identity" => None,
                "gzip" | "x-gzip" => Some(Compressed::Gzip),
                "deflate" => Some(Compressed::Deflate),
                _ => return Err(ApiError::UnsupportedEncoding(name)),
            }
        }
    };
    let read = async {
        let mut bytes = BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::Malformed(format!("The body could not be read: {error}."))
            })?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    };
    // How long a client has to send the whole body once its request head is
    // in (the head itself must arrive within actix-web's 5 s): a client that
    // trickles a body gets 408 rather than holding a connection.
    let timeout = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map_or(crate::config::DEFAULT_BODY_TIMEOUT, |state| {
            state.body_timeout
        });
    let bytes = actix_web::rt::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(ApiError::BodyTimeout(timeout.as_secs())))?;
    match encoding {
        None => Ok(bytes),
        Some(encoding) => decode(&bytes, encoding, limit),
    }
}

/// A `Content-Encoding` of a request body that is decoded.
#[derive(Debug, Clone, Copy)]
enum Compressed {
    Gzip,
    /// HTTP's `deflate`: a zlib stream.
    Deflate,
}

/// `body` decoded, within `limit` decoded bytes. Read through a decoder
/// that stops at the limit, so a small body that unfolds into gigabytes
/// costs no more than about twice the limit (the buffer doubles as it
/// grows); brotli and zstd, which unfold far more per byte than gzip, are
/// not taken. Decoded on the worker thread: the largest body, a 32 MiB
/// bulk import, takes about a tenth of a second.
fn decode(body: &[u8], encoding: Compressed, limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let decoder: Box<dyn Read + '_> = match encoding {
        Compressed::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Compressed::Deflate => Box::new(flate2::read::ZlibDecoder::new(body)),
    };
    let mut decoded = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| ApiError::Malformed(format!("The body could not be decoded: {error}.")))?;
    if decoded.len() > limit {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    Ok(decoded.into())
}

/// A JSON body that may be left out: no body (and no `Content-Type`), an
/// empty one or `null` gives `T::default()`; anything else must be a JSON
/// object. A `text/plain` body is read as JSON too: `navigator.sendBeacon` sends a
/// string so, and a browser sends it to another origin without a preflight,
/// which a JSON body needs.
pub async fn read_beacon_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Result<T, ApiError> {
    let plain = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/plain"));
    let expected = if plain {
        "text/plain"
    } else {
        "application/json"
    };
    read_optional(req, payload, expected).await
}

/// Whether the request came with no body and said nothing of one (no
/// length but zero, no type, no chunks).
fn sent_nothing(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let declared_empty = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.trim() == "0");
    declared_empty
        && !headers.contains_key(header::CONTENT_TYPE)
        && !headers.contains_key(header::TRANSFER_ENCODING)
}

/// What a request that needs a JSON body and sent none is told, rather
/// than that its (absent) body has the wrong type, or ends early.
const NO_BODY: &str = "The body is empty: send a JSON object, as `application/json`.";

/// An optional JSON body sent as `expected`.
async fn read_optional<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: &mut Payload,
    expected: &'static str,
) -> Result<T, ApiError> {
    if sent_nothing(req) {
        return Ok(T::default());
    }
    let bytes = read_body(req, payload, expected, JSON_BODY_LIMIT).await?;
    // An empty body, or JSON `null` (what a generated client may send for
    // an optional body it was not given), is no body.
    if bytes.trim_ascii().is_empty() || bytes.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    parse_json(&bytes)
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if sent_nothing(&req) {
                return Err(ApiError::Malformed(NO_BODY.into()));
            }
            read_body(&req, &mut payload, "application/json", JSON_BODY_LIMIT)
                .await
                .map(JsonBody)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        title: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn named(body: &str) -> Vec<String> {
        match parse_json::<Input>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.name).collect(),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn every_field_of_the_wrong_type_or_unknown_is_named_once() {
        let mut all = named(r#"{"title": 7, "tags": [1], "colour": "red"}"#);
        all.sort();
        assert_eq!(all, ["colour", "tags[0]", "title"]);
        // Left out, a required field is missing: it is not named again.
        assert_eq!(named(r#"{"title": null}"#), ["title"]);
        assert!(parse_json::<Input>(br#"{"title": "x"}"#).is_ok());
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed_not_a_bad_field() {
        let body = b"{\"title\": \"caf\xe9\"}";
        assert!(matches!(
            parse_json::<Input>(body),
            Err(ApiError::Malformed(detail)) if detail.contains("UTF-8")
        ));
    }

    #[test]
    fn a_body_of_many_unknown_fields_names_a_bounded_number() {
        let fields: Vec<String> = (0..5_000).map(|i| format!("\"f{i}\": {i}")).collect();
        let body = format!("{{\"title\": \"x\", {}}}", fields.join(", "));
        assert_eq!(named(&body).len(), MOST_NAMED);
    }
}
