//! HTTP caching and compression for GET responses: a strong `ETag` over
//! the body (a conditional GET with a matching `If-None-Match` gets a 304),
//! `Cache-Control` by route, hot public responses served from memory
//! ([`ResponseCache`]), and compression only for bodies of at least a
//! threshold size.
//!
//! Two middlewares sit on either side of actix's `Compress`:
//! [`conditional`] inside it tags the plain body and compresses it (see
//! [`encoding`]), keeping what it sent; [`after_compress`] outside it gives
//! a compressed response its own validator (`"tag-br"`, `"tag-gzip"`),
//! since a strong `ETag` names exact bytes. `Compress` itself is left the
//! responses without a tag: errors, writes.

mod encoding;
mod responses;

use std::time::Instant;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, ContentEncoding, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpResponse};
use base64::Engine;
use xxhash_rust::xxh3::xxh3_128;

use self::responses::{Cached, KeptBody, Lookup};
pub use self::responses::{ResponseCache, SWEEP_EVERY, ShownCounts, SplicedBody};
use crate::route_table::routed_path;
use crate::state::AppState;

/// `Content-Encoding` value that tells `Compress` to leave a body alone;
/// [`after_compress`] removes it again before the response leaves.
const LEAVE_UNCOMPRESSED: &str = "identity";
/// Encodings whose responses get a suffixed validator.
const ENCODINGS: [&str; 4] = ["br", "deflate", "gzip", "zstd"];

/// `Cache-Control` of an answer for one reader. The handlers that make
/// one say so themselves as well: such an answer is then never kept here
/// or marked public, however its address is spelt.
pub const PERSONAL: &str = "private, no-cache";

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
    /// The `Cache-Control` of a GET to `path` with `query`; `authorized`
    /// when it carried credentials (an admin may see drafts: never share
    /// those).
    pub fn cache_control(&self, path: &str, query: &str, authorized: bool) -> String {
        let public = |max_age: u32| {
            format!(
                "public, max-age={max_age}, stale-while-revalidate={}",
                self.stale_while_revalidate
            )
        };
        if authorized {
            PERSONAL.into()
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            "no-store".into()
        } else if is_personal(path, query) {
            // Must reflect the reader's latest view at once.
            PERSONAL.into()
        } else if path.starts_with("/api/v1/ranking")
            || path.starts_with("/feeds/")
            || shows_related(path, query)
            || included(query).contains("ranking")
        {
            // An article page that includes a feed is as fresh as the feed.
            public(self.feed_max_age)
        } else {
            public(self.max_age)
        }
    }
}

/// True when a GET to `path` with `query` answers for one reader:
/// recommendations, an article page that includes them, or the reactions
/// a reader gave. Any `include`
/// that names them counts, even one the handler will refuse: a personal
/// response must never be shared.
fn is_personal(path: &str, query: &str) -> bool {
    path.starts_with("/api/v1/recommendations")
        || path.ends_with("/reactions")
        || included(query).contains("recommendations")
}

/// True when a GET to `path` with `query` shows Related lists: the lists
/// themselves, or an article page that includes them.
fn shows_related(path: &str, query: &str) -> bool {
    path.ends_with("/related") || included(query).contains("related")
}

/// What the `include` parameters of `query` name, lower-cased and joined
/// (empty, without any parsing, for a query that has none).
fn included(query: &str) -> String {
    // A name may be spelt with escapes (`inc%6Cude`), as the handler
    // reads it.
    if !query.contains("include") && !query.contains('%') {
        return String::new();
    }
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "include")
        .map(|(_, value)| value.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// A strong validator for a body: its 128-bit XXH3 hash. A validator only
/// has to tell versions of one resource apart, not resist forgery, and
/// XXH3 costs far less per byte than the SHA-256 it replaced.
pub fn entity_tag(body: &[u8]) -> String {
    let digest = xxh3_128(body).to_le_bytes();
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("\"{tag}\"")
}

/// True when `If-None-Match` names `tag` (or any encoding of it), or is `*`.
fn matches(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim())
        .any(|candidate| candidate == "*" || names(candidate.trim_start_matches("W/"), tag))
}

/// True when the entity tag `candidate`, as a client sent it, is `tag` or
/// the tag of one of its encodings (`"tag-gzip"`): the same version. A
/// weak tag (`W/"..."`) never is, as `If-Match` compares strongly.
pub fn names(candidate: &str, tag: &str) -> bool {
    if candidate.starts_with("W/") {
        return false;
    }
    let bare = tag.trim_matches('"');
    let candidate = candidate.trim_matches('"');
    candidate == bare
        || ENCODINGS.iter().any(|encoding| {
            candidate
                .strip_suffix(encoding)
                .and_then(|rest| rest.strip_suffix('-'))
                == Some(bare)
        })
}

/// Tags successful GET responses, answers conditional GETs with 304, sets
/// `Cache-Control`, compresses bodies of at least the threshold size when
/// the client asks, and serves and fills the [`ResponseCache`], which keeps
/// a response as each encoding sends it.
pub async fn conditional(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    state.notice_other_writers();
    // Only the validators are needed after the request is handed on.
    let mut conditions = HeaderMap::new();
    for value in req.headers().get_all(header::IF_NONE_MATCH) {
        conditions.append(header::IF_NONE_MATCH, value.clone());
    }
    let wanted = req.method() == Method::GET;
    let encoding = wanted.then(|| encoding::negotiated(&req)).flatten();
    let conditions = Conditions {
        if_none_match: conditions,
        encoding,
    };
    // A space never appears in a URI.
    let mut cache_key = state.responses.may_keep(&req).then(|| match encoding {
        Some(encoding) => format!("{} {}", req.uri(), encoding.as_str()),
        None => req.uri().to_string(),
    });
    let lookup = cache_key
        .as_deref()
        .map(|key| state.responses.get(key, &state.db.changes().counters));
    if let Some(Lookup::Hit(cached)) = lookup {
        let (req, _) = req.into_parts();
        let mut res = HttpResponse::Ok();
        for header in &cached.headers {
            res.append_header(header.clone());
        }
        let res = finish(res.body(cached.body.bytes()), &conditions);
        return Ok(ServiceResponse::new(req, res));
    }
    if let Some(Lookup::Miss { keep: false }) = lookup {
        cache_key = None;
    }
    let generation = state.responses.generation();
    // Only what is kept needs it.
    let path = routed_path(req.request());
    let related_generation = (cache_key.is_some() && shows_related(path, req.query_string()))
        .then(|| state.responses.related_generation());
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    let control = state
        .cache_policy
        .cache_control(path, req.query_string(), authorized);
    let mut res = next.call(req).await?;
    if !wanted || res.status() != StatusCode::OK {
        let status = res.status();
        let headers = res.headers_mut();
        if wanted && status == StatusCode::NOT_FOUND && !headers.contains_key(header::CACHE_CONTROL)
        {
            // Kept no longer than what the address will show once it is
            // found (an article whose time comes): as long as a 200 would
            // be. Any other error is not kept (see `app::security_headers`).
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&control)?);
        }
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (mut res, body) = res.into_parts();
    let bytes = body::to_bytes(body).await.map_err(Into::into)?;
    let policy = &state.cache_policy;
    let headers = res.headers_mut();
    let tag = entity_tag(&bytes);
    headers.insert(header::ETAG, HeaderValue::from_str(&tag)?);
    // A handler that says how long its answer may be kept knows better
    // (a Related list not made yet: `no-store`); nor is it kept here.
    let said = headers.contains_key(header::CACHE_CONTROL);
    if !said {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&control)?);
    }
    // A handler that encoded its body itself is left to it.
    let own_encoding = headers.contains_key(header::CONTENT_ENCODING);
    let encoding = conditions.encoding.filter(|_| {
        !own_encoding && bytes.len() >= policy.compress_min_bytes && encoding::compressible(headers)
    });
    let cache_key = cache_key.filter(|_| !said);
    // A 304 sends no body: one is compressed for it only to be kept.
    let unsent = matches(&conditions.if_none_match, &tag) && cache_key.is_none();
    let (bytes, encoded) = match encoding {
        Some(encoding) if unsent => (bytes, Some(encoding)),
        Some(encoding) => match encoding::encode(encoding, bytes.clone()).await {
            Ok(encoded) => (encoded, Some(encoding)),
            Err(err) => {
                tracing::warn!(error = %err, "compressing a response failed; sent as it is");
                (bytes, None)
            }
        },
        None => (bytes, None),
    };
    if !own_encoding {
        let sent_as = match encoded {
            Some(encoding) => encoding.to_header_value(),
            // Left as it is by `Compress` too.
            None => HeaderValue::from_static(LEAVE_UNCOMPRESSED),
        };
        res.headers_mut().insert(header::CONTENT_ENCODING, sent_as);
    }
    if let Some(key) = cache_key {
        let spliced = res.extensions_mut().remove::<SplicedBody>();
        let body = match spliced {
            Some(spliced) if encoded.is_none() && spliced.is(&bytes) => {
                KeptBody::Spliced(spliced.into_kept())
            }
            _ => KeptBody::Whole(bytes.clone()),
        };
        let cached = Cached {
            body,
            headers: res
                .headers()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            generation,
            related_generation,
            stored_at: Instant::now(),
            shown: res.extensions().get::<ShownCounts>().cloned(),
        };
        state.responses.put(key, cached);
    }
    let res = finish(res.set_body(BoxBody::new(bytes)), &conditions);
    Ok(ServiceResponse::new(req, res))
}

/// What of a request decides how a tagged response leaves.
struct Conditions {
    /// Its `If-None-Match` headers.
    if_none_match: HeaderMap,
    /// The encoding it asks for, if not identity.
    encoding: Option<ContentEncoding>,
}

/// A tagged 200, compressed or marked to stay as it is, as it leaves: a
/// 304 when `If-None-Match` names its tag.
fn finish(res: HttpResponse, conditions: &Conditions) -> HttpResponse {
    let tag = res
        .headers()
        .get(header::ETAG)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if matches(&conditions.if_none_match, tag) {
        let mut not_modified = HttpResponse::NotModified();
        // What a 200 would have said of caching it (RFC 9110, 15.4.5).
        for name in [header::CACHE_CONTROL, header::LAST_MODIFIED, header::VARY] {
            for value in res.headers().get_all(&name) {
                not_modified.append_header((name.clone(), value.clone()));
            }
        }
        // The tag of the body a 200 would have sent: `after_compress`
        // suffixes only a compressed body's.
        let encoding = res
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .filter(|encoding| ENCODINGS.contains(encoding));
        let sent = match encoding {
            Some(encoding) => encoded_tag(tag, encoding),
            None => tag.to_string(),
        };
        if let Ok(sent) = HeaderValue::from_str(&sent) {
            not_modified.insert_header((header::ETAG, sent));
        }
        return not_modified.finish();
    }
    res
}

/// Drops the marker [`conditional`] left on small bodies, suffixes the
/// validator of a compressed body with its encoding, and makes sure a
/// tagged response varies on `Accept-Encoding`.
pub async fn after_compress(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    // A tagged body's bytes depend on `Accept-Encoding`; `Compress` says so
    // only when it compressed.
    let varies_by_encoding = headers.get_all(header::VARY).any(|value| {
        value
            .to_str()
            .is_ok_and(|value| value.to_ascii_lowercase().contains("accept-encoding"))
    });
    if headers.contains_key(header::ETAG) && !varies_by_encoding {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
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
                let suffixed = encoded_tag(tag, encoding);
                headers.insert(header::ETAG, HeaderValue::from_str(&suffixed)?);
            }
        }
        _ => {}
    }
    Ok(res)
}

/// The validator of `tag`'s body sent with `encoding`.
fn encoded_tag(tag: &str, encoding: &str) -> String {
    format!("\"{}-{encoding}\"", tag.trim_matches('"'))
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
            policy.cache_control("/api/v1/articles/5", "", false),
            "public, max-age=30, stale-while-revalidate=60"
        );
        assert_eq!(
            policy.cache_control("/api/v1/articles/5/related", "limit=5", false),
            "public, max-age=10, stale-while-revalidate=60"
        );
        assert_eq!(
            policy.cache_control("/api/v1/articles/5", "", true),
            "private, no-cache"
        );
        assert_eq!(
            policy.cache_control("/api/v1/recommendations", "reader=r1", false),
            "private, no-cache"
        );
        assert_eq!(policy.cache_control("/readyz", "", false), "no-store");
        assert_eq!(
            policy.cache_control(
                "/api/v1/articles/5",
                "include=recommendations&reader=r1",
                false
            ),
            "private, no-cache"
        );
        assert_eq!(
            policy.cache_control(
                "/api/v1/articles/5",
                "include=related%2CRecommendations&reader=r1",
                false
            ),
            "private, no-cache"
        );
        assert_eq!(
            policy.cache_control("/api/v1/articles/5", "include=ranking", false),
            "public, max-age=10, stale-while-revalidate=60"
        );
        assert_eq!(
            policy.cache_control(
                "/api/v1/articles/5",
                "inc%6Cude=recommendations&reader=r1",
                false
            ),
            "private, no-cache",
            "a name spelt with escapes is read as the handler reads it"
        );
        // Only `include` makes a page personal: a search for the word is
        // the same for everyone.
        assert_eq!(
            policy.cache_control("/api/v1/articles", "q=recommendations", false),
            "public, max-age=30, stale-while-revalidate=60"
        );
    }
}
