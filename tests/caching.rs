//! HTTP caching: strong validators and conditional GETs, Cache-Control by
//! route, Last-Modified on articles, and compression above a size.

mod common;

use std::io::Read;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use common::{
    ADMIN, admin, article, create, eventually, get, public, seed_categories, send, test_app,
    test_app_with,
};
use serde_json::json;

/// Creates an article in `category`; returns its slug and its URI.
async fn new_article<S, B>(app: &S, category: &str) -> (String, String)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let created = create(app, article("Harbour strike ends", category)).await;
    let slug = created["slug"].as_str().expect("a slug").to_string();
    let uri = format!("/api/v1/articles/{slug}");
    (slug, uri)
}

fn conditional_get(uri: &str, tag: &str) -> actix_http::Request {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("if-none-match", tag))
        .to_request()
}

#[actix_web::test]
async fn an_unchanged_article_answers_304_and_a_changed_one_a_new_tag() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let (_, uri) = new_article(&app, "news").await;

    let first = send(&app, get(&uri)).await;
    assert_eq!(first.status, 200);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "strong: {tag}");
    assert_eq!(
        first.header("cache-control"),
        Some("public, max-age=30, stale-while-revalidate=60")
    );
    assert!(
        first
            .header("last-modified")
            .is_some_and(|v| v.ends_with("GMT"))
    );
    // The same bytes give the same tag.
    assert_eq!(
        send(&app, get(&uri)).await.header("etag"),
        Some(tag.as_str())
    );

    let again = send(&app, conditional_get(&uri, &tag)).await;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, serde_json::Value::Null);
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let other = send(&app, conditional_get(&uri, "\"something-else\"")).await;
    assert_eq!(other.status, 200);

    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"title": "Harbour strike over"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let changed = send(&app, conditional_get(&uri, &tag)).await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body["data"]["title"], "Harbour strike over");
    assert_ne!(changed.header("etag"), Some(tag.as_str()));
}

#[actix_web::test]
async fn large_bodies_are_compressed_and_small_ones_are_not() {
    let (app, _dir) = test_app(true).await;
    let request = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("accept-encoding", "gzip"))
            .to_request()
    };
    let response = test::call_service(&app, request("/api/v1/articles?limit=20")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
    let vary: Vec<_> = headers.get_all("vary").collect();
    assert_eq!(vary.len(), 1, "{vary:?}");
    assert!(
        vary[0]
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("accept-encoding")
    );
    let tag = headers.get("etag").unwrap().to_str().unwrap().to_string();
    assert!(
        tag.ends_with("-gzip\""),
        "the gzip body has its own tag: {tag}"
    );
    let compressed = test::read_body(response).await;
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut plain)
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 20);
    assert!(compressed.len() < plain.len() / 2);

    // The compressed tag validates too, and the 304 names the tag the 200
    // would have had.
    let req = test::TestRequest::get()
        .uri("/api/v1/articles?limit=20")
        .insert_header(("accept-encoding", "gzip"))
        .insert_header(("if-none-match", tag.as_str()))
        .to_request();
    let not_modified = test::call_service(&app, req).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers().get("etag").unwrap(), tag.as_str());

    // Every encoding gets its own tag.
    let deflated = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/articles?limit=20")
            .insert_header(("accept-encoding", "deflate"))
            .to_request(),
    )
    .await;
    assert_eq!(
        deflated.headers().get("content-encoding").unwrap(),
        "deflate"
    );
    let deflate_tag = deflated.headers().get("etag").unwrap().to_str().unwrap();
    assert_eq!(deflate_tag, tag.replace("-gzip", "-deflate"));

    let small = test::call_service(&app, request("/api/v1/reaction-kinds")).await;
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none());
    assert_eq!(small.headers().get("vary").unwrap(), "Accept-Encoding");
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(small).await).unwrap();
    assert_eq!(body["data"][0]["key"], "very_good");
}

/// A 404 may be kept as long as the article would be once it is there (a
/// scheduled one comes due); another error is not kept at all.
#[actix_web::test]
async fn a_404_is_kept_as_long_as_an_article_and_other_errors_not_at_all() {
    let (app, _dir) = test_app(false).await;
    let missing = send(&app, get("/api/v1/articles/not-published-yet")).await;
    assert_eq!(missing.status, 404);
    let found = send(&app, get("/api/v1/categories")).await;
    assert_eq!(
        missing.header("cache-control"),
        found.header("cache-control")
    );
    assert!(
        found
            .header("cache-control")
            .unwrap()
            .contains("max-age=30")
    );
    let bad = send(&app, get("/api/v1/articles?limit=0")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("cache-control"), Some("no-store"));
}

#[actix_web::test]
async fn personal_and_admin_reads_are_private() {
    let (app, _dir) = test_app(true).await;
    let reply = send(&app, get("/api/v1/recommendations?reader=r1")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("private, no-cache"));

    let req = test::TestRequest::get()
        .uri("/api/v1/articles?status=draft")
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .to_request();
    let reply = send(&app, req).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("private, no-cache"));

    let reply = send(
        &app,
        get("/api/v1/articles/1?include=recommendations&reader=r1"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("private, no-cache"));

    let reply = send(&app, get("/api/v1/ranking")).await;
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=10, stale-while-revalidate=60")
    );
}

#[actix_web::test]
async fn an_answer_for_one_reader_is_never_shared_however_its_address_is_spelt() {
    let (app, _dir) = test_app_with(true, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    for uri in [
        "/api/v1/%72ecommendations?reader=r1",
        "/api/v1/articles/1?inc%6Cude=recommendations&reader=r1",
        "/api/v1/articles/1/%72eactions?reader=r1",
    ] {
        for _ in 0..3 {
            let before = hits(&app, "responses").await;
            let reply = send(&app, get(uri)).await;
            assert_eq!(reply.status, 200, "{uri}: {}", reply.body);
            assert_eq!(
                reply.header("cache-control"),
                Some("private, no-cache"),
                "{uri}"
            );
            assert_eq!(hits(&app, "responses").await, before, "{uri} kept");
        }
    }
    // Whatever the handler says, the caching layer reads the path as the
    // router does: this is the ranking feed, kept as long as a feed.
    let reply = send(&app, get("/api/v1/%72anking")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=10, stale-while-revalidate=60")
    );
}

#[actix_web::test]
async fn cached_responses_may_lag_on_counts_but_never_on_content() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    seed_categories(&app).await;
    let (_, uri) = new_article(&app, "news").await;
    // Kept once asked for a second time.
    let first = send(&app, get(&uri)).await;
    assert_eq!(first.body["data"]["stats"]["views"], 0);
    assert_eq!(send(&app, get(&uri)).await.body, first.body);

    // A view is acknowledged, but the cached page may show the old count.
    let view = send(&app, public("POST", &format!("{uri}/views"), json!({}))).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let cached = send(&app, get(&uri)).await;
    assert_eq!(cached.body, first.body, "served from memory");
    assert_eq!(cached.header("etag"), first.header("etag"));
    let tag = first.header("etag").unwrap().to_string();
    assert_eq!(send(&app, conditional_get(&uri, &tag)).await.status, 304);

    // A content write is seen at once, with the view it had missed.
    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"title": "Harbour strike over"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let fresh = send(&app, get(&uri)).await;
    assert_eq!(fresh.body["data"]["title"], "Harbour strike over");
    assert_eq!(fresh.body["data"]["stats"]["views"], 1);
    // Kept before, it was kept again at once.
    let before = hits(&app, "responses").await;
    assert_eq!(send(&app, get(&uri)).await.body, fresh.body);
    assert_eq!(hits(&app, "responses").await, before + 1);
}

#[actix_web::test]
async fn a_response_is_kept_once_it_is_asked_for_again() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    seed_categories(&app).await;
    let (_, uri) = new_article(&app, "news").await;
    let before = hits(&app, "responses").await;
    let first = send(&app, get(&uri)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // Asked for once, it was not kept: the second request makes it again.
    assert_eq!(send(&app, get(&uri)).await.body, first.body);
    assert_eq!(hits(&app, "responses").await, before);
    // Asked for a second time, it was: kept as parts (the body shared with
    // the article kept), it is sent as the very bytes its tag names.
    let third = test::call_service(&app, get(&uri)).await;
    let tag = third.headers().get("etag").cloned().expect("an ETag");
    let bytes = test::read_body(third).await;
    assert_eq!(hits(&app, "responses").await, before + 1);
    assert_eq!(Some(tag.to_str().unwrap()), first.header("etag"));
    assert_eq!(
        frontpage::http_cache::entity_tag(&bytes),
        tag.to_str().unwrap()
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        first.body
    );
}

#[actix_web::test]
async fn an_articles_response_is_kept_without_a_copy_of_its_body() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    seed_categories(&app).await;
    let mut input = article("Harbour strike ends", "news");
    input["body_html"] = json!("<p>The dockers voted to go back to work.</p>".repeat(500));
    let created = send(&app, admin("POST", "/api/v1/articles", input)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let uri = format!("/api/v1/articles/{}", created.body["data"]["id"]);
    let first = test::call_service(&app, get(&uri)).await;
    let first = test::read_body(first).await;
    assert!(first.len() > 20_000, "{} bytes", first.len());
    assert_eq!(send(&app, get(&uri)).await.status, 200);

    // Kept, it weighs its key, its head and tail, and a little more: the
    // body is the article cache's.
    let held = sample(&app, r#"frontpage_cache_bytes{cache="responses"}"#).await;
    assert!(held.is_some_and(|held| held < 2_000), "{held:?}");
    let before = hits(&app, "responses").await;
    let kept = test::read_body(test::call_service(&app, get(&uri)).await).await;
    assert_eq!(hits(&app, "responses").await, before + 1);
    assert_eq!(kept, first);

    // A write that drops every article (a new category) drops every kept
    // response, and with them the bodies they shared.
    let category = json!({"slug": "business", "name": "Business", "parent": "news"});
    let created = send(&app, admin("POST", "/api/v1/categories", category)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let held = sample(&app, r#"frontpage_cache_bytes{cache="responses"}"#).await;
    assert_eq!(held, Some(0));
}

/// What a browser asks for, `Accept-Encoding` and all.
fn browser_get(uri: &str, encoding: &str) -> actix_http::Request {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("accept-encoding", encoding))
        .to_request()
}

#[actix_web::test]
async fn a_compressed_response_is_kept_compressed_and_never_outlives_a_write() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    seed_categories(&app).await;
    let mut input = article("Harbour strike ends", "news");
    input["body_html"] = json!("<p>The dockers voted to go back to work.</p>".repeat(50));
    let created = send(&app, admin("POST", "/api/v1/articles", input)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let uri = format!("/api/v1/articles/{}", created.body["data"]["id"]);
    let plain = test::read_body(test::call_service(&app, get(&uri)).await).await;
    let tag = frontpage::http_cache::entity_tag(&plain);
    let unbrotli = |bytes: &[u8]| {
        let mut plain = Vec::new();
        brotli::Decompressor::new(bytes, 4096)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    };

    let br_tag = format!("\"{}-br\"", tag.trim_matches('"'));

    // Made twice, then kept: the third is the same bytes, from memory.
    let mut sent = Vec::new();
    for _ in 0..3 {
        let before = hits(&app, "responses").await;
        let response = test::call_service(&app, browser_get(&uri, "gzip, deflate, br, zstd")).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers.get("content-encoding").unwrap(), "br");
        assert_eq!(headers.get("vary").unwrap(), "Accept-Encoding");
        assert_eq!(headers.get("etag").unwrap().to_str().unwrap(), br_tag);
        let body = test::read_body(response).await;
        assert_eq!(unbrotli(&body), plain);
        sent.push((body, hits(&app, "responses").await - before));
    }
    assert_eq!(sent[2].1, 1, "the third from memory");
    assert_eq!(sent[0].0, sent[2].0);
    // Kept apart from the plain response: its own tag, and a 304 for it.
    let again = test::TestRequest::get()
        .uri(&uri)
        .insert_header(("accept-encoding", "br"))
        .insert_header(("if-none-match", br_tag.as_str()))
        .to_request();
    assert_eq!(test::call_service(&app, again).await.status(), 304);
    let identity = test::call_service(&app, get(&uri)).await;
    assert!(identity.headers().get("content-encoding").is_none());
    assert_eq!(test::read_body(identity).await, plain);

    // A write drops it with the rest.
    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"title": "Harbour strike over"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let response = test::call_service(&app, browser_get(&uri, "br")).await;
    let body = unbrotli(&test::read_body(response).await);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["data"]["title"], "Harbour strike over");
}

/// How many lookups the cache `name` (`responses`, `articles`) answered so
/// far.
async fn hits<S, B>(app: &S, name: &str) -> u64
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let series = format!(r#"frontpage_cache_lookups_total{{cache="{name}",result="hit"}}"#);
    sample(app, &series).await.unwrap_or(0)
}

const ARTICLES_HELD: &str = r#"frontpage_cache_bytes{cache="articles"}"#;

/// What the article cache holds once it holds at least `bytes`, or after
/// ten seconds.
async fn articles_held<S, B>(app: &S, bytes: u64) -> u64
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut held = 0;
    for _ in 0..200 {
        held = sample(app, ARTICLES_HELD).await.unwrap_or(0);
        if held >= bytes {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    held
}

/// A category write forgets every article, and the article cache is warmed
/// again soon after, with the write: feeds do not fill it, and would
/// otherwise read every teaser from the store until each article was read
/// alone.
#[actix_web::test]
async fn the_articles_are_warmed_again_after_a_category_write() {
    let (app, _dir) = test_app(true).await;
    let warmed = articles_held(&app, 1).await;
    assert!(warmed > 0, "warmed at start");
    let listed = send(&app, get("/api/v1/articles?limit=1")).await;
    let newest = &listed.body["data"][0];
    let article = format!("/api/v1/articles/{}", newest["id"]);
    let category = format!(
        "/api/v1/categories/{}",
        newest["category"]["slug"].as_str().expect("a slug")
    );
    let held = sample(&app, ARTICLES_HELD).await.expect("the cache's size");

    let renamed = send(
        &app,
        admin("PATCH", &category, json!({"name": "Science and space"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);

    // A name does not weigh: every article is back when it holds as much.
    assert!(articles_held(&app, held).await >= held, "warmed again");
    let before = hits(&app, "articles").await;
    let shown = send(&app, get(&article)).await;
    assert_eq!(shown.body["data"]["category"]["name"], "Science and space");
    assert_eq!(
        hits(&app, "articles").await,
        before + 1,
        "answered from memory"
    );
}

/// An edit drops the edited article from the article cache, and only it:
/// the others are still answered from memory, and every way of reading the
/// edited one shows the edit.
#[actix_web::test]
async fn an_edit_keeps_the_other_articles_in_memory() {
    // The response cache is off (the test default): what is kept is the
    // articles themselves.
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let (old_slug, edited) = new_article(&app, "news").await;
    let (_, other) = new_article(&app, "news").await;
    let id = send(&app, get(&edited)).await.body["data"]["id"].clone();
    let by_id = format!("/api/v1/articles/{id}");
    for uri in [&edited, &by_id, &other] {
        assert_eq!(send(&app, get(uri)).await.status, 200);
    }

    let patched = send(
        &app,
        admin(
            "PATCH",
            &edited,
            json!({"title": "Harbour strike over", "slug": "harbour-strike-over"}),
        ),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);

    let before = hits(&app, "articles").await;
    let shown = send(&app, get(&other)).await;
    assert_eq!(shown.body["data"]["title"], "Harbour strike ends");
    assert_eq!(
        hits(&app, "articles").await,
        before + 1,
        "the other article is still in memory"
    );
    assert_eq!(
        send(&app, get(&by_id)).await.body["data"]["title"],
        "Harbour strike over"
    );
    let by_new_slug = send(&app, get("/api/v1/articles/harbour-strike-over")).await;
    assert_eq!(by_new_slug.body["data"]["title"], "Harbour strike over");
    // The old slug is not served from memory: it sends readers on.
    let by_old_slug = send(&app, get(&format!("/api/v1/articles/{old_slug}"))).await;
    assert_eq!(by_old_slug.status, 308, "{}", by_old_slug.body);
    assert_eq!(
        by_old_slug.header("location"),
        Some("/api/v1/articles/harbour-strike-over")
    );

    let deleted = send(&app, admin("DELETE", &by_id, json!(null))).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(send(&app, get(&by_id)).await.status, 404);
    assert_eq!(
        send(&app, get("/api/v1/articles/harbour-strike-over"))
            .await
            .status,
        404
    );
    assert_eq!(send(&app, get(&other)).await.status, 200);
}

#[actix_web::test]
async fn an_articles_response_outlives_the_lag_until_its_own_counts_change() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "1")]).await;
    seed_categories(&app).await;
    let (_, viewed) = new_article(&app, "news").await;
    let (_, other) = new_article(&app, "news").await;
    // Each asked for twice: kept.
    for uri in [&viewed, &viewed, &other, &other] {
        assert_eq!(send(&app, get(uri)).await.body["data"]["stats"]["views"], 0);
    }
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1_200)).await;

    // Past the lag, but nothing either shows has changed.
    let before = hits(&app, "responses").await;
    assert_eq!(
        send(&app, get(&viewed)).await.body["data"]["stats"]["views"],
        0
    );
    assert_eq!(hits(&app, "responses").await, before + 1);

    // A counted view ends the viewed article's response, not the other's.
    let view = send(&app, public("POST", &format!("{viewed}/views"), json!({}))).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let before = hits(&app, "responses").await;
    assert_eq!(
        send(&app, get(&viewed)).await.body["data"]["stats"]["views"],
        1
    );
    assert_eq!(hits(&app, "responses").await, before);
    assert_eq!(
        send(&app, get(&other)).await.body["data"]["stats"]["views"],
        0
    );
    assert_eq!(hits(&app, "responses").await, before + 1);
}

#[actix_web::test]
async fn a_kept_article_shows_fresh_counts_and_every_content_change() {
    // The response cache is off (the test default): what is kept is the
    // article itself, and its counts must still be current.
    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let (slug, uri) = new_article(&app, "world").await;
    assert_eq!(
        send(&app, get(&uri)).await.body["data"]["stats"]["views"],
        0
    );

    for _ in 0..2 {
        let view = send(&app, public("POST", &format!("{uri}/views"), json!({}))).await;
        assert_eq!(view.status, 200, "{}", view.body);
    }
    let reaction = send(
        &app,
        public(
            "PUT",
            &format!("{uri}/reactions/very_good"),
            json!({"reader": "r-1"}),
        ),
    )
    .await;
    assert_eq!(reaction.status, 200, "{}", reaction.body);
    let counted = send(&app, get(&uri)).await.body;
    assert_eq!(counted["data"]["stats"]["views"], 2);
    assert_eq!(counted["data"]["stats"]["reactions"]["very_good"], 1);

    // Renaming the category changes the breadcrumb, not the article row.
    let renamed = send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/world",
            json!({"name": "World news"}),
        ),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let shown = send(&app, get(&uri)).await.body;
    assert_eq!(shown["data"]["category"]["name"], "World news");

    // Another process (an import script, say) edits the store directly.
    let path = dir.path().join("frontpage.db");
    let mut conn =
        <diesel::SqliteConnection as diesel::Connection>::establish(path.to_str().unwrap())
            .unwrap();
    // The server's writer may hold the write lock for a moment.
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 5000")
        .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE articles SET title = 'Harbour strike over', \
             updated_at = datetime(updated_at, '+1 second') WHERE slug = '{slug}'"
        )),
        &mut conn,
    )
    .unwrap();
    // The server's writer looks for other processes' commits four times a
    // second; the README promises they show within that.
    let edited = eventually(&app, &uri, |body| {
        body["data"]["title"] == "Harbour strike over"
    })
    .await;
    assert_eq!(
        edited["data"]["stats"]["views"], 2,
        "counts survive the reload"
    );

    // Counters written by another process show too (the kept ones are
    // dropped with the content).
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE article_counts SET count = count + 40 WHERE counter = 'view'"),
        &mut conn,
    )
    .unwrap();
    eventually(&app, &uri, |body| body["data"]["stats"]["views"] == 42).await;

    let deleted = send(&app, admin("DELETE", &uri, json!(null))).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(send(&app, get(&uri)).await.status, 404);
}

/// The value of a metric sample, once it is reported.
async fn sample<S, B>(app: &S, name: &str) -> Option<u64>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let metrics = send(app, get("/metrics")).await;
    let text = metrics.body.as_str().expect("a text body").to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Each cache's share of the budget (articles, neighbour lists, responses,
/// older Related lists) once the caches are sized, filled and sized again
/// by what they hold: the first shares seen equal to `settled`, or the last
/// seen in ten seconds.
async fn settled_shares<S, B>(app: &S, settled: [u64; 4]) -> [u64; 4]
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut shares = [0; 4];
    for _ in 0..200 {
        if sample(app, "frontpage_memory_grown_bytes").await.is_some() {
            for (share, cache) in shares.iter_mut().zip([
                "articles",
                "neighbours",
                "responses",
                "older related lists",
            ]) {
                let name = format!(r#"frontpage_cache_capacity_bytes{{cache="{cache}"}}"#);
                *share = sample(app, &name).await.expect("a share per cache");
            }
            if shares == settled {
                break;
            }
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shares
}

#[actix_web::test]
async fn caches_get_what_they_can_use_within_the_budget_and_the_floor_past_it() {
    const MIB: u64 = 1 << 20;
    let (roomy, _dir) = test_app_with(
        true,
        &[
            ("FRONTPAGE_ARTICLE_CACHE_MB", "40"),
            ("FRONTPAGE_RESPONSE_CACHE_MB", "8"),
            ("FRONTPAGE_RESPONSE_CACHE_SECS", "2"),
        ],
    )
    .await;
    // Articles, neighbour lists and older Related lists get no more than
    // every article's would take (a demo store's, under the 4 MiB floor);
    // responses their bound.
    let settled = [4 * MIB, 4 * MIB, 8 * MIB, 4 * MIB];
    assert_eq!(settled_shares(&roomy, settled).await, settled);

    // A response cache turned off is given nothing to leave unused.
    let (uncached, _dir) = test_app_with(
        true,
        &[
            ("FRONTPAGE_ARTICLE_CACHE_MB", "40"),
            ("FRONTPAGE_RESPONSE_CACHE_SECS", "0"),
        ],
    )
    .await;
    let settled = [4 * MIB, 4 * MIB, 0, 4 * MIB];
    assert_eq!(settled_shares(&uncached, settled).await, settled);

    // The demo store's index, lists and reading graph take most of a
    // one-MiB budget: every cache is left at the floor.
    let (tight, _dir) = test_app_with(
        true,
        &[
            ("FRONTPAGE_MEMORY_MB", "1"),
            ("FRONTPAGE_RESPONSE_CACHE_SECS", "2"),
        ],
    )
    .await;
    assert_eq!(settled_shares(&tight, [4 * MIB; 4]).await, [4 * MIB; 4]);
    let grown = sample(&tight, "frontpage_memory_grown_bytes")
        .await
        .unwrap();
    assert!(
        grown > MIB / 2,
        "the demo store's index and graph hold {grown} bytes"
    );
}

#[actix_web::test]
async fn an_edit_whose_client_hung_up_still_empties_the_caches() {
    use futures_util::FutureExt;

    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let (_, uri) = new_article(&app, "news").await;
    // Cached as it is now, in the article cache and as a response.
    for _ in 0..2 {
        assert_eq!(
            send(&app, get(&uri)).await.body["data"]["title"],
            "Harbour strike ends"
        );
    }
    // Past the second the article was written in: an edit within it would
    // first wait for the next, and not be queued at its first poll.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The edit is queued, then its request is dropped before it answers.
    let edit = admin("PATCH", &uri, json!({"title": "Harbour strike resumes"}));
    let answered = app.call(edit).now_or_never();
    assert!(answered.is_none(), "the edit answered before its commit");
    eventually(&app, &uri, |body| {
        body["data"]["title"] == "Harbour strike resumes"
    })
    .await;
}
