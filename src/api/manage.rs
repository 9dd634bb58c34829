//! Admin article writes: create, replace, patch, delete and bulk import.
//! Every route needs `Authorization: Bearer <key>`.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, delete, patch, post, put};
use serde::Serialize;
use utoipa::ToSchema;

use super::Meta;
use super::article_input::{ArticleInput, ArticlePatch};
use super::articles::{Article, ArticleResponse, ArticleSummary, JsonText};
use super::extract::{JSON_BODY_LIMIT, JsonBody, parse_json_checked, read_body, text_field};
use super::import::{
    BulkReport, Import, every_problem, line_errors, ndjson_lines, taxonomy_of, unknown_references,
    upsert_batch,
};
use super::keys::Admin;
use super::preconditions;
use crate::db::article_writes::{self, ArticleWrite, PublishTime};
use crate::db::articles::{self, ArticleKey, Taxonomy};
use crate::db::{self, StoreError, shown};
use crate::error::{ApiError, AppResult, FieldError, Location, Problem};
use crate::state::AppState;

/// Largest NDJSON body a bulk import takes.
pub const BULK_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Most lines one bulk import takes.
pub const BULK_MAX_LINES: usize = 10_000;
/// Lines committed per transaction during a bulk import.
pub const BULK_BATCH: usize = 500;

/// `input` checked and prepared for the store. A refused input is also
/// checked for an unknown category or author (which the write would find
/// only after its other problems were fixed), so one answer names them all.
async fn validated(state: &AppState, input: ArticleInput) -> AppResult<ArticleWrite> {
    let (category, author) = taxonomy_of(&input);
    // Sanitising takes time that grows with the square of the body's
    // nesting: seconds for legacy markup with thousands of unclosed tags.
    let checked = super::off_worker("article check", move || input.validate(db::now())).await?;
    let errors = match checked {
        Ok(write) => return Ok(write),
        Err(errors) => errors,
    };
    let unknown = state
        .db
        .read(move |conn| article_writes::unknown_taxonomy(conn, &category, author.as_deref()))
        .await?;
    Err(ApiError::Validation(every_problem(errors, unknown)))
}

/// The body as an article input, read off the async worker: the checks of
/// a body that does not read whole sanitise the rest of it (see
/// `validated`).
async fn article_input(state: &AppState, body: &JsonBody) -> AppResult<ArticleInput> {
    let parsing = body.clone();
    let parsed = super::off_worker("article check", move || {
        parsing.parse_checked(ArticleInput::problems)
    })
    .await?;
    naming_unknown_taxonomy(state, body, parsed).await
}

/// `parsed`, the body as an article input or patch. One refused for a
/// field of the wrong type or an unknown field is also checked for an
/// unknown category or author, as [`validated`] checks one that reads, so
/// that one answer names every problem. A body that reads costs no await:
/// a patch is queued at its first poll.
async fn naming_unknown_taxonomy<T>(
    state: &AppState,
    body: &JsonBody,
    parsed: AppResult<T>,
) -> AppResult<T> {
    let errors = match parsed {
        Err(ApiError::Validation(errors)) => errors,
        parsed => return parsed,
    };
    let (category, author) = (body.text_of("category"), body.text_of("author"));
    if category.is_none() && author.is_none() {
        return Err(ApiError::Validation(errors));
    }
    let looked_up = category.clone().unwrap_or_default();
    let mut unknown = state
        .db
        .read(move |conn| article_writes::unknown_taxonomy(conn, &looked_up, author.as_deref()))
        .await?;
    // A patch that leaves the category alone names none.
    unknown.retain(|problem| problem.field != "category" || category.is_some());
    Err(ApiError::Validation(every_problem(errors, unknown)))
}

/// The id of the article with this id or slug, whatever its status.
fn resolve_id(conn: &mut diesel::SqliteConnection, key: &ArticleKey) -> Result<i32, StoreError> {
    articles::find(conn, key)?
        .map(|row| row.id)
        .ok_or(StoreError::NotFound)
}

/// Article `id` as the write that just stored it left it, read in the
/// write's own transaction: an answer read afterwards would need a reader
/// connection, and one not free in time made a committed create answer
/// "busy, retry", which stored the article twice when retried.
fn written(conn: &mut diesel::SqliteConnection, id: i32) -> Result<Article, StoreError> {
    let found = shown::find(conn, &ArticleKey::Id(id))?.ok_or(StoreError::NotFound)?;
    let (row, body_html, extras) = shown::one_with_extras(found, Taxonomy::load(conn)?);
    Ok(Article {
        summary: ArticleSummary::new(row, &extras),
        body_html: JsonText::new(&body_html),
    })
}

/// A store error of a write to article `id_or_slug`, "not found" naming it.
fn or_no_article(id_or_slug: &str) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |error| ApiError::from(error).not_found_as(|| ApiError::article_not_found(id_or_slug))
}

/// The article as written, with its `Last-Modified`: the next conditional
/// write can name it without another read.
fn respond_with(article: Article, mut response: actix_web::HttpResponseBuilder) -> HttpResponse {
    let last_modified = std::time::SystemTime::from(article.summary.updated_at);
    response.insert_header(header::LastModified(last_modified.into()));
    // The time of the answer, to the second: actix-web's own `Date` is
    // read from a clock it sets every half second, which would put it
    // before the `Last-Modified` of a write made just after a second began.
    response.insert_header(header::Date(std::time::SystemTime::now().into()));
    response.json(ArticleResponse {
        data: article,
        meta: Meta::default(),
    })
}

/// Create an article.
///
/// The slug is derived from the title when not given (with a numeric suffix
/// if that slug is taken); a given slug that is taken is a 409.
#[utoipa::path(
    tag = "articles",
    request_body = ArticleInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ArticleResponse,
            headers(("Location" = String, description = "URL of the new article"))),
    )
)]
#[post("/articles")]
pub async fn create_article(
    state: Data<AppState>,
    _admin: Admin,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let write = validated(&state, article_input(&state, &body).await?).await?;
    let article = AppState::write_articles(
        &state,
        move |conn| {
            let id = article_writes::create(conn, &write)?;
            written(conn, id)
        },
        |article| article.summary.id,
    )
    .await?;
    let mut created = HttpResponse::Created();
    let location = state
        .feed_links
        .public_path(&format!("/api/v1/articles/{}", article.summary.id));
    created.insert_header((header::LOCATION, location));
    Ok(respond_with(article, created))
}

/// Replace an article.
///
/// Every field is set from the body, as on create. Without `slug` the
/// article keeps its slug; with `published_at` absent a published article
/// keeps its date.
#[utoipa::path(
    tag = "articles",
    request_body = ArticleInput,
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is still this version: the `ETag` its `GET` answered (or `*`: if it exists). The `ETag` follows its view and reaction counts too"),
        ("If-Unmodified-Since" = Option<String>, Header, nullable = false, description = "Write only if the article's content has not changed since this HTTP date: its `Last-Modified`"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is not this version (`*`: refused whenever it exists)"),),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = ArticleResponse,
            headers(("Last-Modified" = String, description = "When its content last changed: for `If-Unmodified-Since` on the next write"))),
        (status = 404, description = "No article has this id or slug", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match`, `If-Unmodified-Since` or `If-None-Match` does not hold: the article changed since, or is the version named", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/articles/{id_or_slug}")]
pub async fn replace_article(
    state: Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
    id_or_slug: Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input = article_input(&state, &body).await?;
    let mut write = validated(&state, input).await?;
    let key = ArticleKey::parse(&id_or_slug);
    let expected = preconditions::check(&state, &req, &key).await?;
    after_its_last_second(&state, &key).await?;
    let article = AppState::write_articles(
        &state,
        move |conn| {
            write.now = db::now();
            let id = resolve_id(conn, &key)?;
            article_writes::unchanged_since(conn, id, expected)?;
            article_writes::replace(conn, id, &write)?;
            written(conn, id)
        },
        |article| article.summary.id,
    )
    .await
    .map_err(or_no_article(&id_or_slug))?;
    Ok(respond_with(article, HttpResponse::Ok()))
}

/// Change some fields of an article.
///
/// A JSON merge patch: absent fields stay, `null` clears an optional field.
/// Accepts `application/json` and `application/merge-patch+json`.
#[utoipa::path(
    tag = "articles",
    request_body(content = ArticlePatch, content_type = "application/merge-patch+json"),
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is still this version: the `ETag` its `GET` answered (or `*`: if it exists). The `ETag` follows its view and reaction counts too"),
        ("If-Unmodified-Since" = Option<String>, Header, nullable = false, description = "Write only if the article's content has not changed since this HTTP date: its `Last-Modified`"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is not this version (`*`: refused whenever it exists)"),),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = ArticleResponse,
            headers(("Last-Modified" = String, description = "When its content last changed: for `If-Unmodified-Since` on the next write"))),
        (status = 404, description = "No article has this id or slug", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match`, `If-Unmodified-Since` or `If-None-Match` does not hold: the article changed since, or is the version named", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/articles/{id_or_slug}")]
pub async fn patch_article(
    state: Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
    id_or_slug: Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let parsed = body.parse_checked(ArticlePatch::problems);
    let patch: ArticlePatch = naming_unknown_taxonomy(&state, &body, parsed).await?;
    let key = ArticleKey::parse(&id_or_slug);
    let expected = preconditions::check(&state, &req, &key).await?;
    after_its_last_second(&state, &key).await?;
    // Read, merge and write in one transaction, so concurrent patches cannot
    // undo each other.
    let article = AppState::write_articles(
        &state,
        move |conn| {
            let found = shown::find(conn, &key)?.ok_or(StoreError::NotFound)?;
            article_writes::same_version(found.row.updated_at, expected)?;
            let (row, body_html, extras) = shown::one_with_extras(found, Taxonomy::load(conn)?);
            let (id, summary_derived) = (row.id, row.summary_derived);
            let current = ArticleSummary::new(row, &extras);
            let (input, clears_published_at) = patch.apply(current, body_html, summary_derived);
            let (category, author) = taxonomy_of(&input);
            let mut write = match input.validate(db::now()) {
                Ok(write) => write,
                Err(errors) => {
                    let unknown =
                        article_writes::unknown_taxonomy(conn, &category, author.as_deref())?;
                    let problems = every_problem(errors, unknown);
                    return Err(StoreError::Invalid(
                        problems.into_iter().map(to_invalid).collect(),
                    ));
                }
            };
            if clears_published_at {
                write.published_at = PublishTime::Clear;
            }
            article_writes::replace(conn, id, &write)?;
            written(conn, id)
        },
        |article| article.summary.id,
    )
    .await
    .map_err(or_no_article(&id_or_slug))?;
    Ok(respond_with(article, HttpResponse::Ok()))
}

/// Waits, when the article was last written within the current second,
/// for that second to pass. An article's `updated_at` (its `Last-Modified`)
/// is in whole seconds, as HTTP dates are, and moves on with each content
/// write, which is what makes `If-Unmodified-Since` exact for an edit; two
/// edits within one second would otherwise put it ahead of the clock (see
/// `article_writes::replace`), and a client's `If-Unmodified-Since` with
/// the time it read the article would fail.
async fn after_its_last_second(state: &AppState, key: &ArticleKey) -> AppResult<()> {
    let last = state
        .db
        .lookup_one(|conn| articles::last_written(conn, key))?;
    // A second at most: one further ahead (two edits raced, or stored so
    // by an older version) is passed by the write itself.
    let wait = last.and_then(|last| {
        let next = last + chrono::TimeDelta::seconds(1);
        let wait = (next - chrono::Utc::now().naive_utc()).to_std().ok()?;
        Some(wait.min(std::time::Duration::from_secs(1)))
    });
    if let Some(wait) = wait {
        actix_web::rt::time::sleep(wait).await;
    }
    Ok(())
}

fn to_invalid(error: FieldError) -> db::Invalid {
    db::Invalid {
        field: error.name,
        message: error.detail,
    }
}

/// Delete an article.
#[utoipa::path(
    tag = "articles",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is still this version: the `ETag` its `GET` answered (or `*`: if it exists). The `ETag` follows its view and reaction counts too"),
        ("If-Unmodified-Since" = Option<String>, Header, nullable = false, description = "Write only if the article's content has not changed since this HTTP date: its `Last-Modified`"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "Write only if the article is not this version (`*`: refused whenever it exists)"),),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No article has this id or slug", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match`, `If-Unmodified-Since` or `If-None-Match` does not hold: the article changed since, or is the version named", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/articles/{id_or_slug}")]
pub async fn delete_article(
    state: Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
    id_or_slug: Path<String>,
) -> AppResult<HttpResponse> {
    let key = ArticleKey::parse(&id_or_slug);
    let expected = preconditions::check(&state, &req, &key).await?;
    AppState::write_articles(
        &state,
        move |conn| {
            let id = resolve_id(conn, &key)?;
            article_writes::unchanged_since(conn, id, expected)?;
            article_writes::delete(conn, id)?;
            Ok(id)
        },
        |id| *id,
    )
    .await
    .map_err(or_no_article(&id_or_slug))?;
    Ok(HttpResponse::NoContent().finish())
}

/// The problems of a bulk line, or for a line of an export's categories,
/// authors and tags (which has a `kind`), that it is one: `frontpage
/// import` reads those, not this endpoint.
fn export_taxonomy_line(errors: Vec<FieldError>) -> Vec<FieldError> {
    if errors.iter().any(|error| error.name == "kind") {
        return vec![FieldError::new(
            Location::Body,
            "kind",
            "is a category, author, tag or feed entry line of an export, which \
             `frontpage import` reads; this endpoint takes articles",
        )];
    }
    errors
}

/// The result of a bulk import.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    /// The resource.
    pub data: BulkReport,
    /// About the response.
    pub meta: Meta,
}

/// Import articles from NDJSON, upserting by slug.
///
/// One article input per line (`application/x-ndjson`); blank lines are
/// skipped. Each line is stored whole or not at all: valid lines are stored,
/// each bad line is reported with its line number. Importing the same file
/// twice changes nothing the second time. At most 10,000 lines and 32 MiB.
#[utoipa::path(
    tag = "articles",
    request_body(content = Vec<ArticleInput>, content_type = "application/x-ndjson",
        description = "One ArticleInput JSON object per line (the schema describes the lines as an array)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every line was processed; see the counts", body = BulkResponse),
        (status = 400, description = "The body has no lines, or too many", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/articles/bulk")]
pub async fn bulk_import(
    state: Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> AppResult<HttpResponse> {
    let mut payload: Payload = payload.into_inner();
    let body = read_body(&req, &mut payload, "application/x-ndjson", BULK_BODY_LIMIT).await?;
    let lines = ndjson_lines(&body).count();
    if lines == 0 || lines > BULK_MAX_LINES {
        return Err(ApiError::Malformed(format!(
            "Send between 1 and {BULK_MAX_LINES} NDJSON lines; this body has {lines}."
        )));
    }
    // Off the async worker, as `validated` checks an article.
    let (mut import, mut valid) =
        super::off_worker("bulk import check", move || checked_lines(&body)).await?;
    let unlooked = import.unlooked();
    if !unlooked.is_empty() {
        let found = state
            .db
            .read(move |conn| unknown_references(conn, unlooked))
            .await?;
        import.name_unknown(found);
    }
    while !valid.is_empty() {
        let batch: Vec<_> = valid.drain(..valid.len().min(BULK_BATCH)).collect();
        let written = import.written();
        let outcomes =
            AppState::write_content(&state, move |conn| upsert_batch(conn, batch, &written))
                .await?;
        import.record(outcomes);
    }
    let report = import.finish();
    Ok(HttpResponse::Ok().json(BulkResponse {
        data: report,
        meta: Meta::default(),
    }))
}

/// The lines of a bulk body, each checked: the import that reports on
/// them, and the writes of the valid ones.
fn checked_lines(body: &[u8]) -> (Import, Vec<(usize, ArticleWrite)>) {
    let mut import = Import::new(db::now());
    let mut valid = Vec::new();
    for (line, text) in ndjson_lines(body) {
        let input = match text {
            Err(not_utf8) => Err(vec![not_utf8]),
            Ok(text) if text.len() > JSON_BODY_LIMIT => Err(vec![FieldError::new(
                Location::Body,
                "(line)",
                format!("is over {JSON_BODY_LIMIT} bytes"),
            )]),
            Ok(text) => {
                let input = parse_json_checked(text.as_bytes(), ArticleInput::problems)
                    .map_err(line_errors)
                    .map_err(export_taxonomy_line);
                if input.is_err() {
                    // Named with its other problems, as `parsed` names them.
                    let category = text_field(text.as_bytes(), "category");
                    let author = text_field(text.as_bytes(), "author");
                    if let Some(category) = category {
                        import.look_up(line, category, author);
                    }
                }
                input
            }
        };
        valid.extend(import.check(line, input, None));
    }
    (import, valid)
}
