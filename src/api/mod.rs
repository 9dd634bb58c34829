//! The wire contract: request and response types and their handlers, one
//! module per resource. Every JSON success body is `{"data": ..., "meta": ...}`.

pub mod article_input;
pub mod articles;
pub mod authors;
pub mod categories;
pub mod client;
pub mod cursor;
pub mod engagement;
pub mod extract;
pub mod feeds;
pub mod import;
pub mod input;
pub mod keys;
pub mod manage;
pub mod ops;
pub mod page;
pub mod paging;
pub mod preconditions;
pub mod problems;
pub mod ranking;
pub mod recommend;
pub mod related;
pub mod tags;
pub mod time;

use std::cell::RefCell;

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, AppResult};
use crate::http_cache::SplicedBody;

/// The most a worker keeps of the buffer it serialises answers into: a
/// feed of ten articles is about 9 KB, a bulk import's report can be
/// megabytes.
const JSON_SCRATCH_KEPT: usize = 64 * 1024;

thread_local! {
    /// Each worker's buffer for serialising answers, reused: serde_json's
    /// own starts at 128 bytes and is copied each time it doubles.
    static JSON_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` (`what` it is, for the log) on the blocking pool: work that
/// may take milliseconds or more of CPU would hold up every other
/// connection of the async worker that took the request.
pub async fn off_worker<T, F>(what: &str, work: F) -> AppResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    actix_web::rt::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::Internal(format!("{what} task failed: {error}")))
}

/// A JSON response of `body`, which the response cache may keep as its
/// parts.
pub fn spliced_json(mut response: HttpResponseBuilder, body: SplicedBody) -> HttpResponse {
    let bytes = body.to_bytes();
    response.extensions_mut().insert(body);
    response.content_type(ContentType::json()).body(bytes)
}

/// `response` with `body` as its JSON. The body is copied out of the
/// worker's buffer at its exact length: a cached response holds no more
/// than the bytes it counts.
pub fn json(response: HttpResponseBuilder, body: &impl Serialize) -> HttpResponse {
    JSON_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let answer = json_into(&mut scratch, response, body);
            if scratch.capacity() > JSON_SCRATCH_KEPT {
                *scratch = Vec::new();
            }
            answer
        }
        // Only while serialising another answer: a buffer of its own.
        Err(_) => json_into(&mut Vec::new(), response, body),
    })
}

fn json_into(
    scratch: &mut Vec<u8>,
    mut response: HttpResponseBuilder,
    body: &impl Serialize,
) -> HttpResponse {
    scratch.clear();
    match serde_json::to_writer(&mut *scratch, body) {
        Ok(()) => response
            .content_type(ContentType::json())
            .body(Bytes::copy_from_slice(scratch)),
        Err(error) => crate::error::ApiError::Internal(format!("serialising the answer: {error}"))
            .error_response(),
    }
}

/// `meta` of a single resource (empty for now; reserved for future keys).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Meta {}

/// `meta` of a list that comes whole, in one page. It has no next page,
/// but says so as every list's `meta` does.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct WholeListMeta {
    /// Always null: the whole list is in this response.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `meta` of a list page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListMeta {
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// The page size that was applied.
    #[schema(example = 20, minimum = 1)]
    pub limit: u32,
    /// How many items match, over all pages; present only when asked for
    /// with `total=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub total: Option<i64>,
}

/// Registers every `/api/v1` route. Both the server and the spec use this,
/// so a handler cannot be served without being documented.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(articles::list_articles)
        .service(manage::bulk_import)
        .service(manage::create_article)
        .service(page::get_article)
        .service(related::get_related)
        .service(engagement::record_view)
        .service(engagement::add_reaction)
        .service(engagement::remove_reaction)
        .service(engagement::reactions_given)
        .service(engagement::list_reaction_kinds)
        .service(ranking::get_ranking)
        .service(recommend::get_recommendations)
        .service(manage::replace_article)
        .service(manage::patch_article)
        .service(manage::delete_article)
        .service(categories::list_categories)
        .service(categories::create_category)
        .service(categories::get_category)
        .service(categories::update_category)
        .service(categories::delete_category)
        .service(tags::list_tags)
        .service(tags::create_tag)
        .service(tags::get_tag)
        .service(tags::update_tag)
        .service(tags::delete_tag)
        .service(authors::list_authors)
        .service(authors::create_author)
        .service(authors::get_author)
        .service(authors::update_author)
        .service(authors::delete_author);
}
