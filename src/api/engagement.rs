//! Engagement: readers' views and reactions. Public, rate limited per client,
//! and acknowledged only once committed.

mod given;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::web::{self, Data, Path};
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, put};
use governor::clock::{Clock, DefaultClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, read_beacon_json};
use super::{Meta, WholeListMeta};
use crate::db::articles::{self, ArticleKey};
use crate::db::engagement::{self, ReactionOutcome, View, ViewOutcome};
use crate::db::{self, StoreError};
use crate::error::{ApiError, AppResult, FieldError, Location, Problem, echo};
use crate::recommend::Signal;
use crate::state::AppState;

pub use self::given::reactions_given;

/// Longest reader id.
pub const MAX_READER: usize = 64;

/// Checks a reader id: 1 to 64 of `A-Z a-z 0-9 _ -`; a bad one is a 400.
pub fn check_reader(reader: &str, location: Location) -> AppResult<()> {
    let valid = (1..=MAX_READER).contains(&reader.len())
        && reader
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::InvalidParameters(vec![FieldError::new(
            location,
            "reader",
            format!("must be 1 to {MAX_READER} of A-Z, a-z, 0-9, _ and -"),
        )]))
    }
}

/// Clients the limiter tracks before it forgets the ones at full allowance.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// Admission under the per-client limit on engagement writes.
#[derive(Debug, Clone, Copy)]
pub struct Limited;

impl FromRequest for Limited {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some((limiter, state)) = req
            .app_data::<Data<AppState>>()
            .and_then(|state| Some((state.limiter.as_ref()?, state)))
        else {
            return ready(Ok(Limited));
        };
        let client = super::client::limit_key(super::client::address(req, &state.trusted_proxies));
        // Forget clients whose allowance has refilled, so the table stays small.
        if limiter.len() > MAX_TRACKED_CLIENTS {
            limiter.retain_recent();
        }
        ready(
            limiter
                .check_key(&client)
                .map(|()| Limited)
                .map_err(|not_until| {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    ApiError::TooManyRequests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                }),
        )
    }
}

/// An engagement write's lack of a `reader` in the query: one sent as
/// `?reader=` would otherwise be dropped without a word, and the write
/// counted as anonymous. Other query parameters are ignored, as on every
/// route (a page's beacon may carry its `utm_source` or a cache-buster).
#[derive(Debug, Clone, Copy)]
pub struct NoReaderInQuery;

impl FromRequest for NoReaderInQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let misplaced =
            form_urlencoded::parse(req.query_string().as_bytes()).any(|(name, _)| name == "reader");
        ready(if misplaced {
            Err(ApiError::InvalidParameters(vec![FieldError::new(
                Location::Query,
                "reader",
                "is not read from the query; send it in the JSON body, as {\"reader\": \"...\"}",
            )]))
        } else {
            Ok(NoReaderInQuery)
        })
    }
}

/// A view; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewInput {
    /// The anonymous reader id the client keeps (1-64 of `A-Za-z0-9_-`), so
    /// that recommendations can learn from it.
    #[schema(
        example = "r-4f1c2b",
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub reader: Option<String>,
}

/// An article's view count after a view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewCount {
    /// The article viewed.
    pub article_id: i32,
    /// Its views, this one included.
    pub views: i64,
}

/// The answer to a view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewResponse {
    /// The new count.
    pub data: ViewCount,
    /// About the response.
    pub meta: Meta,
}

/// A reaction's author.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionInput {
    /// The anonymous reader id the client keeps (1-64 of `A-Za-z0-9_-`).
    #[schema(
        example = "r-4f1c2b",
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub reader: String,
}

/// A reaction count after a reaction is added or taken back.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionCount {
    /// The article.
    pub article_id: i32,
    /// The reaction kind.
    #[schema(example = "very_good")]
    pub kind: String,
    /// The article's count for this kind, now.
    #[schema(example = 187)]
    pub count: i64,
    /// False when the reader had already reacted (or not) this way: repeating
    /// a request changes nothing.
    pub changed: bool,
}

/// The answer to a reaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionResponse {
    /// The new count.
    pub data: ReactionCount,
    /// About the response.
    pub meta: Meta,
}

/// A kind of reaction readers can give.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionKind {
    /// Key used in URLs and in `stats.reactions`.
    #[schema(example = "very_good")]
    pub key: String,
    /// What a frontend shows.
    #[schema(example = "veryGood!")]
    pub label: String,
    /// Display order.
    pub position: i32,
}

impl From<&engagement::KindRow> for ReactionKind {
    fn from(row: &engagement::KindRow) -> Self {
        Self {
            key: row.key.clone(),
            label: row.label.clone(),
            position: row.position,
        }
    }
}

/// Every reaction kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionKindListResponse {
    /// The kinds, in display order.
    pub data: Vec<ReactionKind>,
    /// About the response.
    pub meta: WholeListMeta,
}

/// The reaction kinds readers can give, in display order.
#[utoipa::path(tag = "engagement", responses((status = 200, description = "The kinds", body = ReactionKindListResponse)))]
#[get("/reaction-kinds")]
pub async fn list_reaction_kinds(state: Data<AppState>) -> AppResult<HttpResponse> {
    let kinds = state.db.read(engagement::kinds).await?;
    let data = kinds.iter().map(ReactionKind::from).collect();
    Ok(HttpResponse::Ok().json(ReactionKindListResponse {
        data,
        meta: WholeListMeta::default(),
    }))
}

/// Count a view of a published article.
///
/// The body is optional: `{"reader": "..."}` links the view to a reader for
/// recommendations. A 200 means the view is committed to disk. The body may
/// also come as `text/plain` (still JSON), as `navigator.sendBeacon` sends
/// a string, so that a page can count its view as it unloads, from another
/// origin without a CORS preflight.
#[utoipa::path(
    tag = "engagement",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42")),
    request_body(
        content(
            (Option<ViewInput> = "application/json"),
            (Option<String> = "text/plain")
        ),
        description = "Optional: who viewed. As `text/plain` (what `sendBeacon` sends), the \
                       same JSON as text"
    ),
    responses(
        (status = 200, description = "Counted", body = ViewResponse),
        (status = 400, description = "The reader id is malformed, or sent in the query (it goes in the body)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article has this id or slug", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many engagement writes from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
#[post("/articles/{id_or_slug}/views")]
pub async fn record_view(
    state: Data<AppState>,
    _limit: Limited,
    _no_reader_in_query: NoReaderInQuery,
    id_or_slug: Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let input: ViewInput = read_beacon_json(&req, &mut payload.into_inner()).await?;
    if let Some(reader) = &input.reader {
        check_reader(reader, Location::Body)?;
    }
    let now = db::now();
    let reader = input.reader;
    let view = View {
        article: ArticleKey::parse(&id_or_slug),
        reader: reader.clone(),
        at: now,
        visible_at: Some(now),
    };
    let outcome = state
        .db
        .tally(move |tally| engagement::record_view(tally, view))
        .await?;
    let Some(&ViewOutcome::Counted { article_id, views }) = outcome.get() else {
        return Err(ApiError::article_not_found(&id_or_slug));
    };
    if let Some(reader) = reader {
        state
            .recommend
            .record(&reader, article_id, now, Signal::View);
    }
    Ok(HttpResponse::Ok().json(ViewResponse {
        data: ViewCount { article_id, views },
        meta: Meta::default(),
    }))
}

/// Whether a reaction is being given or taken back.
#[derive(Debug, Clone, Copy)]
enum Change {
    Add,
    Remove,
}

async fn change_reaction(
    state: &AppState,
    id_or_slug: &str,
    kind: String,
    body: &JsonBody,
    change: Change,
) -> AppResult<HttpResponse> {
    let input: ReactionInput = body.parse()?;
    check_reader(&input.reader, Location::Body)?;
    let key = ArticleKey::parse(id_or_slug);
    let now = db::now();
    let stored_kind = kind.clone();
    let reader = input.reader.clone();
    let outcome: Option<(i32, ReactionOutcome)> = state
        .db
        .write_tallied(move |conn, tally| {
            let id = articles::visible_id(conn, &key, now)?.ok_or(StoreError::NotFound)?;
            if !engagement::kind_exists(conn, &stored_kind)? {
                return Ok(None);
            }
            let outcome = match change {
                Change::Add => {
                    engagement::add_reaction(conn, tally, id, &stored_kind, &input.reader, now)?
                }
                Change::Remove => {
                    engagement::remove_reaction(conn, tally, id, &stored_kind, &input.reader)?
                }
            };
            Ok(Some((id, outcome)))
        })
        .await
        .map_err(|error| {
            ApiError::from(error).not_found_as(|| ApiError::article_not_found(id_or_slug))
        })?;
    let (article_id, outcome) = outcome.ok_or_else(|| {
        ApiError::NotFound(format!(
            "There is no reaction kind `{}`; GET /api/v1/reaction-kinds lists them.",
            echo(&kind)
        ))
    })?;
    if matches!(change, Change::Add) {
        state
            .recommend
            .record(&reader, article_id, now, Signal::Reaction);
    }
    let data = ReactionCount {
        article_id,
        kind,
        count: outcome.count,
        changed: outcome.changed,
    };
    Ok(HttpResponse::Ok().json(ReactionResponse {
        data,
        meta: Meta::default(),
    }))
}

/// React to a published article.
///
/// Idempotent per reader and kind: reacting twice counts once. The answer
/// carries the kind's new count.
#[utoipa::path(
    tag = "engagement",
    params(
        ("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"),
        ("kind" = String, Path, description = "Reaction kind key (see /api/v1/reaction-kinds)", example = "very_good"),
    ),
    request_body = ReactionInput,
    responses(
        (status = 200, description = "Counted (or already counted)", body = ReactionResponse),
        (status = 400, description = "The reader id is malformed, or sent in the query (it goes in the body)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article, or no such reaction kind", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many engagement writes from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
#[put("/articles/{id_or_slug}/reactions/{kind}")]
pub async fn add_reaction(
    state: Data<AppState>,
    _limit: Limited,
    _no_reader_in_query: NoReaderInQuery,
    path: Path<(String, String)>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let (id_or_slug, kind) = path.into_inner();
    change_reaction(&state, &id_or_slug, kind, &body, Change::Add).await
}

/// Take back a reaction.
///
/// Taking back a reaction that was never given changes nothing.
#[utoipa::path(
    tag = "engagement",
    params(
        ("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"),
        ("kind" = String, Path, description = "Reaction kind key (see /api/v1/reaction-kinds)", example = "very_good"),
    ),
    request_body = ReactionInput,
    responses(
        (status = 200, description = "Taken back (or was not there)", body = ReactionResponse),
        (status = 400, description = "The reader id is malformed, or sent in the query (it goes in the body)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article, or no such reaction kind", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many engagement writes from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
#[delete("/articles/{id_or_slug}/reactions/{kind}")]
pub async fn remove_reaction(
    state: Data<AppState>,
    _limit: Limited,
    _no_reader_in_query: NoReaderInQuery,
    path: Path<(String, String)>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let (id_or_slug, kind) = path.into_inner();
    change_reaction(&state, &id_or_slug, kind, &body, Change::Remove).await
}
