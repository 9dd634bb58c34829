//! HTTP caching and compression for GET responses: a strong `ETag` over
//! the body (a conditional GET with a matching `If-None-Match` gets a 304),
//! `Cache-Control` by route, and compression (actix's `Compress`) only for
//! bodies of at least a threshold size.
//!
//! Two middlewares sit on either side of `Compress`: [`conditional`]
//! inside it sees the plain body; [`after_compress`] outside it gives a
//! compressed response its own validator (`"tag-br"`, `"tag-gzip"`), since a
//! strong `ETag` names exact bytes.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpResponse};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::app::AppState;

/// `Content-Encoding` value that tells `Compress` to leave a body alone;
/// [`after_compress`] removes it again before the response leaves.
const LEAVE_UNCOMPRESSED: &str = "identity";
/// Encodings whose responses get a suffixed validator.
const ENCODINGS: [&str; 3] = ["br", "gzip", "zstd"];

/// How long clients and shared caches may keep responses, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// `max-age` of articles and list pages, in seconds.
    pub max_age: u32,
    /// `max-age` of the feeds (ranking, related), in seconds.
    pub feed_max_age: u32,
    /// `stale-while-revalidate` of public responses, in seconds.
    pub stale_while_revalidate: u32,
    /// Bodies smaller than this many bytes are sent uncompressed.
    pub compress_min_bytes: usize,
}

impl CachePolicy {
    /// The `Cache-Control` of a GET to `path`; `authorized` when it carried
    /// credentials (an admin may see drafts: never share those).
    pub fn cache_control(&self, path: &str, authorized: bool) -> String {
        let public = |max_age: u32| {
            format!(
                "public, max-age={max_age}, stale-while-revalidate={}",
                self.stale_while_revalidate
            )
        };
        if authorized {
            "private, no-cache".into()
        } else if path == "/healthz" || path == "/readyz" {
            "no-store".into()
        } else if path.starts_with("/api/v1/recommendations") {
            // Personal, and must reflect the reader's latest view at once.
            "private, no-cache".into()
        } else if path.starts_with("/api/v1/ranking") || path.ends_with("/related") {
            public(self.feed_max_age)
        } else {
            public(self.max_age)
        }
    }
}

/// A strong validator for a body: its SHA-256, shortened.
pub fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..15]);
    format!("\"{tag}\"")
}

/// True when `If-None-Match` names `tag` (or any encoding of it), or is `*`.
fn matches(headers: &HeaderMap, tag: &str) -> bool {
    let bare = tag.trim_matches('"');
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim())
        .any(|candidate| {
            if candidate == "*" {
                return true;
            }
            let candidate = candidate.trim_start_matches("W/").trim_matches('"');
            candidate == bare
                || ENCODINGS.iter().any(|encoding| {
                    candidate
                        .strip_suffix(encoding)
                        .and_then(|rest| rest.strip_suffix('-'))
                        == Some(bare)
                })
        })
}

/// Tags successful GET responses, answers conditional GETs with 304, sets
/// `Cache-Control`, and marks small bodies to stay uncompressed.
pub async fn conditional(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let policy = req
        .app_data::<Data<AppState>>()
        .map(|state| state.cache_policy);
    let wanted = req.method() == Method::GET;
    let conditions = req.headers().clone();
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    let Some(policy) = policy.filter(|_| wanted && res.status() == StatusCode::OK) else {
        return Ok(res.map_into_boxed_body());
    };
    let (req, res) = res.into_parts();
    let (mut res, body) = res.into_parts();
    let bytes = body::to_bytes(body).await.map_err(Into::into)?;
    let tag = entity_tag(&bytes);
    let headers = res.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(&tag)?);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&policy.cache_control(&path, authorized))?,
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if matches(&conditions, &tag) {
        let mut not_modified = HttpResponse::NotModified();
        for name in [
            header::ETAG,
            header::CACHE_CONTROL,
            header::VARY,
            header::LAST_MODIFIED,
        ] {
            if let Some(value) = res.headers().get(&name) {
                not_modified.insert_header((name, value.clone()));
            }
        }
        return Ok(ServiceResponse::new(req, not_modified.finish()));
    }
    if bytes.len() < policy.compress_min_bytes
        && !res.headers().contains_key(header::CONTENT_ENCODING)
    {
        res.headers_mut().insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(LEAVE_UNCOMPRESSED),
        );
    }
    Ok(ServiceResponse::new(req, res.set_body(BoxBody::new(bytes))))
}

/// Drops the marker [`conditional`] left on small bodies, and suffixes the
/// validator of a compressed body with its encoding.
pub async fn after_compress(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match encoding.as_deref() {
        Some(LEAVE_UNCOMPRESSED) => {
            headers.remove(header::CONTENT_ENCODING);
        }
        Some(encoding) if ENCODINGS.contains(&encoding) => {
            if let Some(tag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) {
                let suffixed = format!("\"{}-{encoding}\"", tag.trim_matches('"'));
                headers.insert(header::ETAG, HeaderValue::from_str(&suffixed)?);
            }
        }
        _ => {}
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn if_none_match_accepts_the_tag_its_encodings_and_star() {
        let tag = entity_tag(b"{}");
        let bare = tag.trim_matches('"');
        assert!(matches(&with_if_none_match(&tag), &tag));
        assert!(matches(
            &with_if_none_match(&format!("\"x\", \"{bare}-br\"")),
            &tag
        ));
        assert!(matches(
            &with_if_none_match(&format!("W/\"{bare}-gzip\"")),
            &tag
        ));
        assert!(matches(&with_if_none_match("*"), &tag));
        assert!(!matches(&with_if_none_match("\"other\""), &tag));
        assert!(!matches(
            &with_if_none_match(&format!("\"{bare}-xz\"")),
            &tag
        ));
        assert!(!matches(&HeaderMap::new(), &tag));
    }

    #[test]
    fn personal_and_admin_responses_are_never_shared() {
        let policy = CachePolicy {
            max_age: 30,
            feed_max_age: 10,
            stale_while_revalidate: 60,
            compress_min_bytes: 1024,
        };
        assert_eq!(
            policy.cache_control("/api/v1/articles/5", false),
            "public, max-age=30, stale-while-revalidate=60"
        );
        assert_eq!(
            policy.cache_control("/api/v1/articles/5/related", false),
            "public, max-age=10, stale-while-revalidate=60"
        );
        assert_eq!(
            policy.cache_control("/api/v1/articles/5", true),
            "private, no-cache"
        );
        assert_eq!(
            policy.cache_control("/api/v1/recommendations", false),
            "private, no-cache"
        );
        assert_eq!(policy.cache_control("/readyz", false), "no-store");
    }
}
